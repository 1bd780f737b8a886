/*  broker.h - private umbrella header of skick-broker

    skick-broker routes envelopes between shards and clients, keeps the
    cluster's directory and hash store, and detects lost shards. Everything
    runs on one thread: one poll loop (broker_main.c) over three sockets and
    a timer. The state is one broker_t, owned by main and passed to every
    function; nothing here is thread-safe and nothing needs to be.

    Modules (one per file):
      broker_main.c     options, signals, the poll loop and its timer
      broker_net.c      sockets: binding, CURVE, the control endpoint's
                        permissions, and sending envelopes on them
      broker_auth.c     the ZAP handler (admitted keys per role) and the
                        role checks at HELLO and on CONTROL
      broker_peers.c    the peer table: HELLO and the welcome, heartbeats,
                        loss detection and the LOST fan-out
      broker_route.c    everything read from the two ROUTERs: link checks,
                        who may send what on which ROUTER, routing, dead
                        letters, malformed frames
      broker_dir.c      the directory: each shard's own entry in over its
                        link, every entry out on the XPUB
      broker_control.c  CONTROL requests addressed to the broker, and which
                        of them a shard may make
      broker_hash.c     the cluster's hash store (tables of JSON values)
      broker_util.c     ids as text, rate-limited logging, small JSON helpers

    Ownership: the broker owns every peer (broker_peer_t) through its two
    tables; a peer owns its JSON members. Envelopes passed to a send function
    are borrowed; envelopes received are destroyed by the reader.
*/
#ifndef BROKER_H_INCLUDED
#define BROKER_H_INCLUDED

#include <czmq.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "skick/err.h"
#include "skick/log.h"
#include "skick_envelope.h"
#include "skick_wire.h"

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

/*  A log-line budget: at most BROKER_RL_LINES lines per BROKER_RL_WINDOW_MS. */
#define BROKER_RL_LINES 10
#define BROKER_RL_WINDOW_MS 10000
typedef struct {
    int64_t window_ms;   /* start of the current window (monotonic ms) */
    unsigned lines;      /* lines logged in this window */
    uint64_t suppressed; /* lines skipped since the last one logged */
} broker_ratelimit_t;

/*  The role of the CURVE key a connection authenticated with (broker_auth.c);
    NONE without CURVE. */
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
} broker_config_t;

typedef struct broker_hash_t broker_hash_t;

/*  The whole broker. */
typedef struct {
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
    broker_hash_t *hash;             /* the hash store */
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
} broker_t;

/* broker_net.c -------------------------------------------------------------- */

/*  broker_net_open: create and bind the three sockets (CURVE servers when
    configured). Returns 0, or -1 after logging why (bind failed, certificate
    unreadable); what was created is freed by broker_net_close. */
int broker_net_open(broker_t *b);

/*  broker_net_close: close every socket, stop the ZAP handler, free the
    certificate. */
void broker_net_close(broker_t *b);

/*  broker_net_send: send e to routing id rid on ROUTER sock, never blocking.
    e is borrowed. Returns 0, or -1 with errno (EHOSTUNREACH: no such
    connection; EAGAIN: its queue is full). */
int broker_net_send(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                    const skick_envelope_t *e);

/*  broker_net_forward: send a received message's frames to rid on ROUTER
    sock with seq (skick_wire_forward). Returns as broker_net_send. */
int broker_net_forward(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                       skick_wire_held_t *m, uint64_t seq);

/*  broker_net_publish: publish e on the XPUB (best effort; e borrowed). */
void broker_net_publish(broker_t *b, const skick_envelope_t *e);

/* broker_auth.c ------------------------------------------------------------- */

/*  broker_auth_start: start the ZAP handler over b->cfg.curve_allow (its
    shards/, bridges/ and clients/ directories), before any CURVE socket is
    bound. Returns 0, or -1 after logging why (not a directory,
    certificates directly in it: the layout before roles). */
int broker_auth_start(broker_t *b);

/*  broker_auth_stop: stop the ZAP handler (NULL-safe). */
void broker_auth_stop(broker_t *b);

/*  broker_auth_reload: make the ZAP handler read the keys again (SIGHUP). */
void broker_auth_reload(broker_t *b);

/*  The ZAP domain of each CURVE socket is this prefix and the socket's name
    ("shard", "control", "directory-out"): it tells the ZAP
    handler what a connection is for. */
#define BROKER_ZAP_DOMAIN "skick."

/*  broker_auth_role_name: "shard", "bridge", "client" or "none". */
const char *broker_auth_role_name(int role);

/*  broker_auth_frame_role: the BROKER_ROLE_* that the ZAP handler gave the
    connection frame came from (its User-Id), NONE without one. */
int broker_auth_frame_role(zmq_msg_t *frame);

/*  broker_auth_hello: check a HELLO (m, borrowed) against the role of the
    key its connection authenticated with, which is stored in *role. shard:
    the HELLO says "peer": "shard". Returns NULL when it may join, else why
    not (refused with ECONTEXT). Without CURVE: NULL, role NONE. */
const char *broker_auth_hello(broker_t *b, skick_wire_held_t *m, bool shard, int *role);

/*  broker_auth_may_control: true when peer p may send CONTROL e (to the
    broker or forwarded to a shard); else false with *why (ECONTEXT). A
    shard key may run only `hash` on the broker. */
bool broker_auth_may_control(const broker_peer_t *p, const skick_envelope_t *e, const char **why);

/* broker_peers.c ------------------------------------------------------------ */

/*  broker_peers_init: create the peer tables. Returns 0 or -1. */
int broker_peers_init(broker_t *b);

/*  broker_peers_destroy: forget every peer and free the tables. */
void broker_peers_destroy(broker_t *b);

/*  broker_peer_by_id: the joined peer with this id, or NULL (borrowed). */
broker_peer_t *broker_peer_by_id(broker_t *b, uint64_t id);

/*  broker_peer_by_rid: the joined peer behind routing id rid on ROUTER sock,
    or NULL (borrowed). */
broker_peer_t *broker_peer_by_rid(broker_t *b, int sock, const uint8_t *rid, size_t rid_len);

/*  broker_peer_is_lost: true when id was declared lost (a rejoin gets ELOST). */
bool broker_peer_is_lost(broker_t *b, uint64_t id);

/*  broker_peer_addr: the address the broker writes in `to` of its own
    envelopes to p: a shard's shard actor (id:id) or a client's actor-side
    address (id:1). */
void broker_peer_addr(const broker_peer_t *p, uint64_t *shard, uint64_t *actor);

/*  broker_peer_send: send e to p on its link: e->seq is set to the link's
    next number, which is consumed only when the send succeeds. e is
    borrowed. Returns 0 or -1 with errno as broker_net_send. */
int broker_peer_send(broker_t *b, broker_peer_t *p, skick_envelope_t *e);

/*  broker_peer_forward: send a received message's own frames on to p on its
    link (skick_wire_forward: nothing copied), under the link's next number,
    consumed only when the send succeeds. Returns 0 (m's frames are gone) or
    -1 with errno as broker_net_send (m unchanged). */
int broker_peer_forward(broker_t *b, broker_peer_t *p, skick_wire_held_t *m);

/*  broker_peers_hello: handle a HELLO m (borrowed; its frames carry the
    CURVE role) read from routing id rid on ROUTER sock over connection fd
    (broker_route_srcfd): welcome the peer (joining it, or re-joining: on
    the same connection, or for a shard on a new one that took over its
    routing id when the HELLO carries the welcome's token) or refuse it
    with a welcome false. */
void broker_peers_hello(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, int fd,
                        skick_wire_held_t *m);

/*  broker_peers_heartbeat: account a HEARTBEAT from p (a shard's body is
    its load: kept for ps, "delivered" feeds msgs_per_s). e is borrowed. */
void broker_peers_heartbeat(broker_t *b, broker_peer_t *p, const skick_envelope_t *e);

/*  broker_peers_leave: handle a LOST envelope from p. About p itself it is a
    clean leave (a shard is declared lost with reason "left", a client is
    forgotten); about anyone else it is refused with EPROTO. e borrowed. */
void broker_peers_leave(broker_t *b, broker_peer_t *p, const skick_envelope_t *e);

/*  broker_peers_tick: the timer: send heartbeats when due, declare silent
    shards lost and forget silent clients. now is monotonic ms. */
void broker_peers_tick(broker_t *b, int64_t now);

/*  broker_peers_lose: declare shard p lost: forget it, remember its id,
    send LOST to every other peer (shards and clients) and publish its
    directory removal. p is freed. reason is the text sent in LOST. */
void broker_peers_lose(broker_t *b, broker_peer_t *p, const char *reason);

/*  broker_peers_list: the joined peers as a new list (caller destroys the
    list; the peers are borrowed and stay valid until the table changes). */
zlistx_t *broker_peers_list(broker_t *b);

/* broker_route.c ------------------------------------------------------------ */

/*  broker_route_drain: read up to BROKER_BATCH messages from ROUTER sock and
    handle each one (join, heartbeat, route, control, refuse). Returns the
    number of messages read (fewer than BROKER_BATCH: the last receive found
    nothing); -1 on a socket error (errno from libzmq; EINTR: interrupted,
    drain again). The directory drains below count the same way. */
int broker_route_drain(broker_t *b, int sock);

/*  broker_route_handle: handle one message m read whole from routing id rid
    on ROUTER sock (what broker_route_drain does with each envelope it
    reads; the seam tests/fuzz/fuzz_broker.c drives without sockets). m is
    borrowed: its frames may have been forwarded, the caller closes it. */
void broker_route_handle(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                         skick_wire_held_t *m);

/*  broker_route_watch: start watching the shard ROUTER's disconnections
    (a socket monitor into b->shard_events), so that a connection that
    later gets the same descriptor is not taken for the one that is gone.
    Returns 0, or -1 after logging why. */
int broker_route_watch(broker_t *b);

/*  broker_route_unwatch: stop it (before the ROUTER is closed). */
void broker_route_unwatch(broker_t *b);

/*  broker_route_srcfd: the descriptor of the connection m was read from
    (ZMQ_SRCFD), -1 when it was not read from one: which connection of a
    routing id sent it. */
int broker_route_srcfd(skick_wire_held_t *m);

/*  broker_route_malformed: count, log and answer (DEAD_LETTER EPROTO, when
    there is a routing id) a frame set from rid on ROUTER sock that is not
    an envelope; why says what was wrong. */
void broker_route_malformed(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                            const char *why);

/*  broker_route_dead_letter: send a DEAD_LETTER about e (borrowed; NULL for
    a frame that could not be decoded) to the peer on (sock, rid) that sent
    it: from and to copied from e when they are full addresses (else 0/0),
    body with code, error, the message's action (at most 64 bytes) and cid.
    p may be NULL for a peer that has not joined. Counts nothing: the caller
    does. */
void broker_route_dead_letter(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                              broker_peer_t *p, const skick_envelope_t *e, int code,
                              const char *error);

/*  broker_route_reply: send a REPLY with body (taken: *body_p is set to
    NULL) to the peer on (sock, rid); p may be NULL for a peer that has not
    joined. to_shard/to_id name the recipient; when they are not a full
    address the REPLY goes to p's own address (or 0/0 without p), so that
    the broker never sends half an address. Returns 0 or -1 (errno). */
int broker_route_reply(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, broker_peer_t *p,
                       uint64_t to_shard, uint64_t to_id, json_object **body_p);

/* broker_dir.c -------------------------------------------------------------- */

/*  broker_dir_advert: a DIRECTORY envelope e (borrowed) read from joined
    peer p over its own link: taken and republished when it is p's own entry
    (a shard's, "shard" == p's id) and newer than the last one taken from
    this connection; else dropped (not newer) or refused (logged under a
    budget, counted). */
void broker_dir_advert(broker_t *b, broker_peer_t *p, const skick_envelope_t *e);

/*  broker_dir_drain_subs: read up to BROKER_BATCH subscription messages from
    the XPUB; a new subscription sets b->republish. Returns the count or -1. */
int broker_dir_drain_subs(broker_t *b);

/*  broker_dir_republish_all: publish every entry held (new subscriber). */
void broker_dir_republish_all(broker_t *b);

/*  broker_dir_forget: publish {"shard": id, "lost": true} for lost peer p
    and drop its entry. */
void broker_dir_forget(broker_t *b, broker_peer_t *p);

/* broker_control.c ---------------------------------------------------------- */

/*  broker_control_shard_may: true when a CONTROL envelope e (borrowed, its
    body parsed when to_shard is 0) from a peer on the shard endpoint is one
    a shard needs: a hash operation addressed to the broker. Everything else
    (ps, directory, services, stats, and every request forwarded to a shard)
    belongs to the control plane, on the control endpoint. */
bool broker_control_shard_may(const skick_envelope_t *e);

/*  broker_control_handle: answer a CONTROL request e (borrowed) addressed to
    the broker, from peer p on (sock, rid), with one REPLY. */
void broker_control_handle(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                           broker_peer_t *p, const skick_envelope_t *e);

/* broker_hash.c ------------------------------------------------------------- */

/*  broker_hash_new: an empty store. Caller owns it; never NULL. */
broker_hash_t *broker_hash_new(void);

/*  broker_hash_destroy: free the store and every value; NULL-safe; sets
 *self_p to NULL. */
void broker_hash_destroy(broker_hash_t **self_p);

/*  broker_hash_get: the value of key in table, borrowed (may be NULL for a
    JSON null). Returns 0, or -1 when there is no such key. */
int broker_hash_get(broker_hash_t *self, const char *table, const char *key, json_object **value);

/*  broker_hash_set: set key in table to *value_p (taken; *value_p is set to
    NULL). Creates the table. Returns 0. */
int broker_hash_set(broker_hash_t *self, const char *table, const char *key, json_object **value_p);

/*  broker_hash_delete: remove key from table (an emptied table goes too).
    Returns 0, or -1 when there was no such key. */
int broker_hash_delete(broker_hash_t *self, const char *table, const char *key);

/*  broker_hash_contains: true when table holds key. */
bool broker_hash_contains(broker_hash_t *self, const char *table, const char *key);

/*  broker_hash_tables: number of tables. */
size_t broker_hash_tables(broker_hash_t *self);

/*  broker_hash_keys: number of keys over all tables. */
size_t broker_hash_keys(broker_hash_t *self);

/* broker_util.c ------------------------------------------------------------- */

/*  broker_id_hex: write id as 16 lowhex (plus NUL) into out. */
void broker_id_hex(uint64_t id, char out[17]);

/*  broker_id_parse: parse exactly 16 lowhex. Returns 0 with *id set, or -1. */
int broker_id_parse(const char *text, uint64_t *id);

/*  broker_alloc: n zeroed bytes (caller frees); aborts the process when
    memory is exhausted, like CZMQ's own allocations. */
void *broker_alloc(size_t n);

/*  broker_random64: a random nonzero 64-bit number (getrandom). */
uint64_t broker_random64(void);

/*  broker_log_limited: log one line at level under rl's budget (at most
    BROKER_RL_LINES per BROKER_RL_WINDOW_MS); a line after some were skipped
    says how many. */
void broker_log_limited(broker_ratelimit_t *rl, int level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*  broker_json_str: the string member key of obj, or NULL (borrowed). */
const char *broker_json_str(json_object *obj, const char *key);

/*  broker_json_addr: a new JSON string "SHARD:ACTOR" (caller owns). */
json_object *broker_json_addr(uint64_t shard, uint64_t actor);

#endif
