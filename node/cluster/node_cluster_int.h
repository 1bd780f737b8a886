/*  node_cluster.h - the state of a shard's membership in a cluster (private)

    Shared by node_cluster.c (the broker link), node_directory.c (what the
    other shards offer), node_remote.c (remote delivery, watches, loss) and
    node_cluster_hash.c (the broker's hash store). Owned by the shard
    (sh->cluster) and touched only from its reactor thread.
*/
#ifndef NODE_CLUSTER_INT_H_INCLUDED
#define NODE_CLUSTER_INT_H_INCLUDED

#include <czmq.h>

#include "node_cluster.h"
#include "node_ws.h"
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
    uint64_t links;            /* welcomes so far: the link's generation */
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
    struct node_cluster_metrics *metrics; /* node_cluster_metrics.c, NULL: metrics off */
};

/*  node_cluster_hello sends HELLO (the link restarts at seq 1). 0, or -1
    when it could not leave (no connection to the broker yet). */
/* node_cluster_metrics.c: per-peer traffic and the link RTT, when metrics are on */
void node_cluster_metrics_start(node_shard_t *sh);
void node_cluster_metrics_fini(node_cluster_t *c);
/*  Count one actor or client envelope to (out) or from a peer shard. */
void node_cluster_metrics_count(node_cluster_t *c, uint64_t peer, bool out);
/*  A HEARTBEAT from the broker: the answer to our "ping_us", if it is one. */
void node_cluster_metrics_pong(node_cluster_t *c, json_object *body);
/*  This process's monotonic clock in microseconds (the heartbeat's ping_us). */
int64_t node_cluster_clock_us(void);

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

/* ------------------------------------------------------------------------- */
/* Between the cluster's files                                                */

/*  Send one envelope on the broker link (body taken, may be NULL).
    0, or -1 with EUNREACH (no broker) in skick_errno. */
int node_cluster_send(node_shard_t *sh, int kind, node_ref_t from, node_ref_t to,
                      json_object **body, bool control, uint32_t gen);
/*  Ask for a directory publication at the next poll (services changed). */
void node_cluster_dir_dirty(node_shard_t *sh);

/* node_directory.c: entries of the other shards, keyed by shard id; ours. */
void node_directory_init(node_cluster_t *c);
void node_directory_fini(node_cluster_t *c);
/*  Apply a DIRECTORY body from the broker (borrowed). */
void node_directory_update(node_shard_t *sh, json_object *body);
/*  Forget shard id's entry (lost). Returns whether it was known. */
bool node_directory_forget(node_shard_t *sh, uint64_t id);
/*  A random back shard advertising actor type, or 0. */
uint64_t node_directory_pick_type(node_shard_t *sh, const char *type);
/*  A random back shard advertising requestable session type name, or 0;
    *entry gets its session object (borrowed: valid until the next update). */
uint64_t node_directory_pick_session(node_shard_t *sh, const char *name, json_object **entry);
/*  A random remote provider of service name; 0 when none. */
int node_directory_pick_service(node_shard_t *sh, const char *name, node_ref_t *out);
/*  The compiled handshake schema advertised with a remote session type
    (cached per text), or NULL when it has none or it does not compile. */
const skick_schema_t *node_directory_handshake(node_shard_t *sh, json_object *session);
/*  The shard's own directory entry with that version (caller owns). */
json_object *node_directory_own_entry(node_shard_t *sh, uint64_t version);
/*  Mark every entry unconfirmed (a new broker); entries not re-received
    within grace_ms are then treated as lost by node_directory_expire. */
void node_directory_unconfirm(node_shard_t *sh);
void node_directory_expire(node_shard_t *sh, int64_t grace_ms);

/* node_remote.c */
/*  Deliver to an actor on another shard (body taken): kind ACTOR or CLIENT.
    Failures are handled like local ones: the opener is refused, the
    letter counted. 0 or -1 with skick_errno. */
int node_remote_deliver(node_shard_t *sh, int kind, node_ref_t from, node_ref_t to,
                        json_object **body, bool control, uint32_t gen);
/*  An envelope from the broker for this shard (taken). */
void node_remote_receive(node_shard_t *sh, skick_envelope_t *env);
/*  Spawn type on the remote shard `where` (skick_spawn's remote branch). */
skick_addr_t node_remote_spawn(skick_actor_t *self, uint64_t where, const char *type,
                               json_object **init, node_ref_t parent,
                               const char *const *monitors, size_t n);
/*  Ask back shard `where` for a session actor of type for receptionist rcpt
    (init taken). Returns the session's address (decided here). */
node_ref_t node_remote_spawn_session(node_shard_t *sh, uint64_t where, const char *type,
                                     json_object **init, node_ref_t rcpt);

/* node_watch.c: which local actors get a sentinel when another shard is lost */
/*  node_watch_add remembers that local actor watcher monitors remote actor
    `remote`, so that it gets a sentinel if remote's shard is lost. */
void node_watch_add(node_shard_t *sh, node_ref_t remote, node_ref_t watcher);
/*  node_watch_drop forgets it (remote's own sentinel arrived, or the
    request that made it could not leave). */
void node_watch_drop(node_shard_t *sh, node_ref_t remote, node_ref_t watcher);
/*  node_watch_sent records the watches an ACTOR message to `to` makes for
    our own actors, once it has left: a "monitor" naming one of them, a
    spawn request naming its address and listing them in add_monitor.
    body borrowed; action is its "action". */
void node_watch_sent(node_shard_t *sh, node_ref_t to, json_object *body, const char *action);
/*  node_watch_tell tells the shard of remote actor monitor that it now
    monitors our actor watched (a "watch" notice; nothing when monitor is
    ours or on a lost shard; a notice that cannot leave is counted and
    logged). */
void node_watch_tell(node_shard_t *sh, node_ref_t watched, node_ref_t monitor);
/*  node_watch_notice applies a "watch" notice from remote actor `from`
    (body borrowed); a malformed one is counted and logged. */
void node_watch_notice(node_shard_t *sh, node_ref_t from, json_object *body);
/*  node_watch_count: the (remote actor, local watcher) pairs held. */
size_t node_watch_count(node_shard_t *sh);
/*  node_watch_shard_lost: shard id was lost: sentinels for its watchers,
    its conversations end, it leaves the directory (PROTOCOL.md). */
void node_watch_shard_lost(node_shard_t *sh, uint64_t id, const char *reason);
/*  node_watch_link_lost: the link to the broker went down: what crossed it
    may be lost, so every watch of a remote actor fires (a sentinel saying
    why) and every conversation with a remote partner ends with EUNREACH.
    The remote shards are not marked lost: they may be alive and rejoin. */
void node_watch_link_lost(node_shard_t *sh, const char *why);


/* node_control.c: a CONTROL request for this shard (body borrowed); returns
    the REPLY body (caller owns). */
json_object *node_control_handle(node_shard_t *sh, json_object *req);
/*  The shard's counters and load (the `stats` result and the heartbeat
    body; caller owns). */
json_object *node_control_stats(node_shard_t *sh);

/*  The broker's hash store (node_cluster_hash.c), the backend in a cluster. */
extern node_hash_backend_t node_hash_broker;
/*  The transport the cluster gives the actor layer (node_remote.c). */
extern const node_transport_t node_cluster_transport;

/* node_cluster.c, for node_cluster_join.c: the link's traffic */
#define NODE_CLUSTER_TICK_MS 100   /* housekeeping period */
#define NODE_CLUSTER_LINGER_MS 250 /* at close; never 0 (node_cluster_join.c says why) */
/*  Send one envelope now, numbered on the link (body borrowed). 0 or -1. */
int node_cluster_send_raw(node_shard_t *sh, int kind, node_ref_t from, node_ref_t to,
                          json_object *body, bool control, uint32_t gen);
/*  Send what waits in the backlog while the DEALER takes it; how many went. */
size_t node_cluster_flush(node_shard_t *sh);
/*  Refuse everything in the backlog (the link is gone). */
void node_cluster_fail_backlog(node_shard_t *sh);
/*  The loop's poll hook, the sockets' readable callback and the
    housekeeping timer (heartbeats, loss, republication, admission). */
bool node_cluster_poll_hook(node_shard_t *sh);
void node_cluster_on_fd(node_shard_t *sh, int fd, void *arg);
void node_cluster_tick(node_shard_t *sh, void *arg, uint64_t id);

#endif
