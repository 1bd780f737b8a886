/*  node_cluster.h - the state of a shard's membership in a cluster (private)

    Shared by node_cluster.c (the broker link), node_directory.c (what the
    other shards offer), node_remote.c (remote delivery, watches, loss) and
    node_cluster_hash.c (the broker's hash store). Owned by the shard
    (sh->cluster) and touched only from its reactor thread.
*/
#ifndef NODE_CLUSTER_H_INCLUDED
#define NODE_CLUSTER_H_INCLUDED

#include <czmq.h>

#include "node.h"
#include "skick_wire.h"

/*  An envelope waiting for room on the DEALER (its pipe to the broker is
    full): sent in order, before anything newer, from the poll hook. */
typedef struct node_backlog {
    struct node_backlog *next;
    skick_envelope_t e; /* seq is assigned when it is really sent */
} node_backlog_t;

#define NODE_CLUSTER_BACKLOG_MAX 1000000 /* envelopes; beyond: EFULL to the sender */

/*  Waiting for the broker's welcome (node_admit.c). */
typedef struct {
    zsock_t *monitor;    /* PAIR receiving the DEALER's socket events (owned) */
    bool curve;          /* CURVE is configured: for the hints */
    char dir_out[300];   /* the directory endpoint, to connect again */
    int conn;            /* what the monitor last said (node_admit.c) */
    bool reconnect;      /* disconnected after a failed handshake: connect again */
    int64_t since;       /* shard clock: waiting for a welcome since */
    int64_t retry_ms;    /* back-off of HELLO and of connecting again */
    int64_t next_retry;  /* when the next HELLO (or connect) is due */
    int64_t report_ms;   /* back-off of the "not admitted" warning */
    int64_t next_report; /* when the next warning is due */
    unsigned reports;    /* warnings logged in this wait */
    unsigned early;      /* of which logged at once, for a new reason */
    uint64_t hellos;     /* HELLOs that left in this wait */
    char why[256];       /* the best reason known, "" when none */
    bool why_handshake;  /* why is a failed handshake (a good one clears it) */
} node_admit_t;

struct node_cluster {
    zsock_t *dealer;           /* actor envelopes, control and our directory entry, to
                                  the broker's ROUTER */
    zsock_t *sub;              /* everyone's entries, from the broker's XPUB */
    char endpoint[256];        /* the broker's ROUTER endpoint */
    skick_link_t link;         /* sequence numbers on the DEALER link */
    bool welcomed;             /* the broker accepted our HELLO and is alive */
    uint64_t broker_id;        /* the broker instance that welcomed us (0: none yet) */
    int64_t last_heard;        /* shard clock: last envelope from the broker */
    int64_t last_beat;         /* last HEARTBEAT sent */
    int64_t last_pub;          /* last directory publication */
    int64_t heartbeat_ms;      /* from the welcome */
    int64_t lost_after_ms;     /* from the welcome */
    uint64_t tick;             /* housekeeping timer */
    uint64_t dir_version;      /* our entry's version */
    bool dir_dirty;            /* our entry changed since it was published */
    json_object *hello;        /* the HELLO body (owned) */
    node_u64map_t dir;         /* shard id -> node_dir_entry_t* (node_directory.c) */
    node_strmap_t handshakes;  /* handshake schema text -> skick_schema_t* (owned) */
    node_u64map_t watches;     /* remote shard id -> node_u64map_t* of actor id ->
                                  node_watchers_t* (node_watch.c) */
    size_t nwatches;           /* (remote actor, watcher) pairs in watches */
    node_u64map_t lost;        /* shard ids declared lost (value: (void *) 1) */
    node_u64map_t hash_pending; /* request id -> node_hash_req_t* (node_cluster_hash.c) */
    uint64_t next_req;         /* last hash request id */
    node_backlog_t *bl_head;   /* envelopes waiting for room, oldest first */
    node_backlog_t *bl_tail;
    size_t bl_count;
    bool sub_ready;            /* the SUB's descriptor fired: drain it at the next poll */
    bool dealer_ready;         /* the DEALER's descriptor fired, or a drain stopped at
                                  its limit: drain it at the next poll */
    bool dealer_sent;          /* sent on since its last drain ran dry (s_poll_hook) */
    uint32_t sends;            /* envelopes sent, for periodic checks in the send path */
    node_admit_t admit;        /* waiting for the welcome (node_admit.c) */
};

/*  node_cluster_hello sends HELLO (the link restarts at seq 1). 0, or -1
    when it could not leave (no connection to the broker yet). */
int node_cluster_hello(node_shard_t *sh);

/*  node_admit_hello_body: the HELLO body for options o (caller owns). */
json_object *node_admit_hello_body(node_shard_t *sh, const node_cluster_opts_t *o);
/*  node_admit_init watches the DEALER (a socket monitor) before it
    connects; dir_out is the directory endpoint, curve whether CURVE is on.
    0, or -1 (libzmq refused the monitor). */
int node_admit_init(node_shard_t *sh, bool curve, const char *dir_out);
/*  node_admit_fini stops the monitor (before the DEALER is closed). */
void node_admit_fini(node_shard_t *sh);
/*  node_admit_wait: no welcome now (start, or the link was lost): HELLO
    now and on the back-off, warnings from NODE_ADMIT_REPORT_FIRST_MS on. */
void node_admit_wait(node_shard_t *sh);
/*  node_admit_tick: from the cluster tick: read the monitor's events, and
    while not welcomed retry and warn when due. */
void node_admit_tick(node_shard_t *sh);
/*  node_admit_welcomed: the welcome arrived ("joined the cluster"). */
void node_admit_welcomed(node_shard_t *sh, const char *broker);
/*  node_admit_refused: the broker refused our HELLO with code (EVERSION)
    and why, and we keep trying: the reason the next warning gives. */
void node_admit_refused(node_shard_t *sh, const char *code, const char *why);
/*  node_admit_foreign: the broker sent an envelope of another protocol
    version (why names both). */
void node_admit_foreign(node_shard_t *sh, const char *why);

/*  Fail every pending hash request with EBACKEND (the broker is gone). */
void node_cluster_hash_fail_all(node_shard_t *sh);
/*  A REPLY to one of our hash requests (body borrowed). */
void node_cluster_hash_reply(node_shard_t *sh, json_object *body);
/*  An envelope that will never leave (no broker): tell its sender as for a
    local dead letter (opener refused, counted); body taken. */
void node_remote_undeliverable(node_shard_t *sh, node_ref_t to, json_object **body, int err);
/*  Free the watch tables (shard teardown). */
void node_watch_fini(node_cluster_t *c);
/*  A new "exception" sentinel about shard:id with reason why (caller owns),
    made on the ended actor's behalf: its shard was lost, or it could not be
    spawned. */
json_object *node_watch_sentinel(uint64_t shard, uint64_t id, const char *why);

#endif
