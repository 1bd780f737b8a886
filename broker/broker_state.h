/*  broker_state - the state every file of skick-broker shares

    One broker_t, owned by main (on its stack) and passed to every
    function; one thread, so nothing here is locked. Each field is written
    by one file, named in its comment or below, and read by the files below
    it that need it:
      broker_t.by_id, by_rid, lost_*   broker_peers.c (the peer table; it
                                       owns every broker_peer_t), read by
                                       route, control and dir
      broker_t.router, xpub, shard_events, auth, cert, control_*
                                       broker_net.c (auth: broker_auth.c)
      broker_t.stats, rl_*             counted and spent by whoever sees it
      broker_t.sent_on                 broker_net.c sets, broker_main.c clears
      broker_t.hash, redis, answer_later  broker_main.c (the stores are told
                                       by broker_control.c)
      broker_peer_t.dir, dir_version   broker_dir.c; the rest broker_peers.c
    A peer owns its JSON members. The functions are declared in one header
    per file (broker.h lists them and their levels).
*/
#ifndef BROKER_STATE_H_INCLUDED
#define BROKER_STATE_H_INCLUDED

#include <czmq.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "skick/err.h"
#include "skick/log.h"
#include "skick_envelope.h"
#include "skick_wire.h"

#include "broker_hash.h"
#include "broker_redis.h"
#include "broker_util.h"

#define BROKER_BATCH 256         /* messages read per socket per poll round */
#define BROKER_HWM 10000         /* send/receive high-water mark per peer pipe */
/* Never 0: with ZMQ_LINGER 0, libzmq 4.3.4 aborts (session_base.cpp:260,
   clean_pipes) when a peer's connection fails while the socket is being
   closed and a multipart message is half written to that peer. A positive
   linger keeps the pipe readable until its delimiter. It also bounds how
   long the broker waits at exit for peers that do not read. */
#define BROKER_LINGER_MS 250
#define BROKER_LOST_MEMORY 65536 /* lost shard ids remembered (oldest forgotten first) */
#define BROKER_EP_MAX 1024       /* longest endpoint we accept */
#define BROKER_ACTION_MAX 64     /* bytes of an action quoted in a dead letter */
#define BROKER_CLIENT_ACTOR 1    /* a client's actor-side address is CLIENTID:1 */
#define BROKER_FD_GONE (-2)      /* broker_peer_t.fd of a connection that is gone */

/*  The two ROUTER sockets; a peer lives on one of them. */
enum { BROKER_SOCK_SHARD = 0, BROKER_SOCK_CONTROL = 1, BROKER_ROUTERS = 2 };
enum { BROKER_SOCK_XPUB = 2, BROKER_SOCKS = 3 };

/*  The role of the CURVE key a connection authenticated with (set at HELLO
    from broker_auth.c's answer); NONE without CURVE. */
enum { BROKER_ROLE_NONE = 0, BROKER_ROLE_SHARD, BROKER_ROLE_BRIDGE, BROKER_ROLE_CLIENT };

/*  One joined peer: a shard or a client, on one ROUTER. */
typedef struct {
    uint64_t id;                /* the peer id (never 0) */
    char hex[17];               /* id as 16 lowhex */
    bool shard;                 /* shard (true) or client */
    int sock;                   /* BROKER_SOCK_* it joined on */
    uint8_t rid[SKICK_RID_MAX]; /* its routing id on that socket */
    size_t rid_len;             /* length of rid */
    int fd;                     /* the connection that said HELLO (ZMQ_SRCFD; -1: none,
                                   BROKER_FD_GONE: it disconnected) */
    char token[17];             /* given in the welcome: a shard that joins again from
                                   a new connection shows it (16 lowhex) */
    char *rid_key;              /* key in broker_t.by_rid (owned) */
    skick_link_t link;          /* sequence numbers, both directions */
    int64_t joined_wall_ms;     /* wall-clock time of the (last) welcome */
    int64_t last_seen_ms;       /* monotonic time of its last envelope */
    int64_t last_hb_ms;         /* monotonic time of its last HEARTBEAT, 0 = none */
    json_object *hello;         /* the HELLO body (owned) */
    json_object *load;          /* the last HEARTBEAT body (owned), or NULL */
    int64_t rate_ms;            /* msgs_per_s: time of the sample point, 0 = none */
    uint64_t rate_delivered;    /* msgs_per_s: "delivered" at the sample point */
    double msgs_per_s;          /* last computed delivery rate */
    json_object *dir;           /* its directory entry (owned), or NULL */
    int64_t dir_version;        /* version of the last entry taken from this
                                   connection since its HELLO; 0 = none */
    int role;                   /* BROKER_ROLE_* of the key it joined with */
} broker_peer_t;

/*  Counters reported by the stats op. */
typedef struct {
    uint64_t routed;       /* envelopes forwarded to another peer */
    uint64_t dead_letters; /* envelopes the broker could not deliver */
    uint64_t dead_full;    /* of which: the recipient's queue at the broker was full */
    uint64_t malformed;    /* frames and envelopes refused as protocol errors */
    uint64_t gaps;         /* envelopes found missing on links (all peers, ever) */
    uint64_t duplicates;   /* duplicate envelopes dropped */
    uint64_t lost;         /* shards declared lost (including clean leaves) */
    uint64_t strangers;    /* envelopes from peers that had not joined */
    uint64_t dir_dropped;  /* directory entries not newer than the one held */
    uint64_t dir_accepted; /* directory entries accepted and republished */
    uint64_t dir_refused;  /* directory entries refused: not the sender's own */
    uint64_t control_refused; /* CONTROL requests refused: control plane only */
    uint64_t hello_refused;   /* HELLOs refused: the wrong role for the endpoint */
} broker_stats_t;

/*  Configuration from the command line. Strings are borrowed from argv. */
typedef struct {
    const char *bind;            /* shard ROUTER endpoint */
    char control[BROKER_EP_MAX]; /* control ROUTER endpoint */
    char dir_out[BROKER_EP_MAX]; /* XPUB endpoint, derived from bind */
    int heartbeat_ms;            /* heartbeat interval, both directions */
    int lost_after_ms;           /* silence after which a shard is lost */
    int client_timeout_ms;       /* silence after which a client is forgotten */
    const char *pid_file;        /* or NULL */
    const char *curve_secret;    /* the broker's CZMQ secret certificate, or NULL */
    const char *curve_allow;     /* directory of the role directories of keys, or NULL */
    bool insecure;               /* --insecure: no CURVE on a non-loopback endpoint */
    const char *hash;            /* the Redis URL, or NULL: the memory store */
    const char *hash_arg;        /* --hash URL */
    const char *hash_file;       /* --hash-file PATH */
    char hash_text[SKICK_REDIS_URL_MAX]; /* the URL chosen (skick_redis_url_choose) */
    skick_redis_url_t hash_url;  /* the URL parsed */
    int hash_inflight;           /* --hash-inflight: requests in flight to Redis at most */
    int hash_timeout_ms;         /* --hash-timeout-ms: Redis's answer bound */
    const char *metrics;         /* --metrics HOST:PORT, or NULL: no endpoint */
} broker_config_t;

typedef struct broker_s broker_t;

/*  Who asked a CONTROL request whose answer comes later (a hash op when
    the store is Redis): enough to find the peer again, if it is still
    there, and to address the REPLY as broker_peer_reply would have. */
typedef struct {
    int sock;                   /* the ROUTER it came on */
    uint8_t rid[SKICK_RID_MAX]; /* its routing id */
    size_t rid_len;             /* length of rid */
    uint64_t peer;              /* the peer's id (0: it had not joined) */
    uint64_t to_shard, to_id;   /* the request's from: where the REPLY goes */
} broker_asker_t;

/*  Send a REPLY with *body_p (taken) to asker, when the peer is still the
    one that asked. Set by main (broker_route_answer_later): how a file
    below route sends an answer that came later. */
typedef void broker_answer_fn(broker_t *b, const broker_asker_t *asker, json_object **body_p);

/*  The whole broker. */
struct broker_s {
    broker_config_t cfg;             /* options */
    uint64_t instance;               /* random id of this broker process */
    char instance_hex[17];           /* instance as 16 lowhex */
    zsock_t *router[BROKER_ROUTERS]; /* shard and control ROUTERs */
    zsock_t *xpub;                   /* directory out */
    zsock_t *shard_events;           /* PAIR: the shard ROUTER's disconnections, or NULL */
    zactor_t *auth;                  /* the ZAP handler (CURVE on), or NULL */
    zcert_t *cert;                   /* the broker's certificate (CURVE on), or NULL */
    char *control_path;              /* ipc control socket file (owned), or NULL */
    dev_t control_dev;               /* its device and inode, to remove only */
    ino_t control_ino;               /* our own socket file at exit */
    zhashx_t *by_id;                 /* "16 lowhex id" -> broker_peer_t (owns peers) */
    zhashx_t *by_rid;                /* rid key -> broker_peer_t (borrowed) */
    zhashx_t *lost_ids;              /* "16 lowhex id" of lost shards -> (void *) 1 */
    uint64_t *lost_ring;             /* the same ids, oldest first (ring buffer) */
    size_t lost_head, lost_count;    /* ring position and fill */
    broker_hash_t *hash;             /* the memory hash store (the default) */
    broker_redis_t *redis;           /* the Redis hash store (--hash), or NULL */
    struct broker_metrics *metrics;  /* --metrics: the Prometheus endpoint, or NULL */
    broker_answer_fn *answer_later;  /* sends answers that come later (main sets it) */
    broker_stats_t stats;            /* counters */
    int64_t started_ms;              /* monotonic start time */
    int64_t next_hb_ms;              /* when the next heartbeats go out */
    int64_t last_tick_ms;            /* when the timer last ran */
    bool republish;                  /* a new subscriber appeared: send all entries */
    bool sent_on[BROKER_SOCKS];      /* sent on since last read dry (broker_main.c) */
    broker_ratelimit_t rl_malformed; /* log budget: malformed input */
    broker_ratelimit_t rl_link;      /* log budget: gaps and duplicates */
    broker_ratelimit_t rl_dead;      /* log budget: dead letters */
    broker_ratelimit_t rl_stranger;  /* log budget: envelopes from unknown peers */
    broker_ratelimit_t rl_refused;   /* log budget: refused by role (control, directory) */
};

#endif
