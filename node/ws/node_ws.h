/*  node_ws.h - the websocket layer of the shard runtime (node/ws/), private

    What a front shard adds to the actor layer: the websocket server
    (civetweb: node_ws.c, node_ws_conn.c, node_ws_socket.c, node_ws_write.c,
    node_ws_outbox.c; the test kit's fake server node_ws_fake.c), the
    receptionist actor that speaks for one websocket (node_receptionist.c,
    node_rcpt_handshake.c, node_rcpt_client.c) and the session actors
    applications write (node_session.c). Session actors are an actor kind
    (node_actor_kind_t): the actor core hands them what is theirs through
    that table. A session on another shard is reached through sh->transport,
    which node/cluster provides; this layer never calls the cluster. This
    header declares what the layers above (node/cluster, node/) use.

    Two sides. civetweb's worker threads (one per open websocket) run the
    callbacks in node_ws_conn.c: they check origin and connection limits,
    reassemble fragments, enforce the size limit and the rate limit, parse
    JSON, and queue an event. The reactor drains the queue (an eventfd wakes
    it) and hands each event to the connection's receptionist
    (node_receptionist.c). Writes go the other way, on the reactor and never
    waiting for the client: node_ws_send writes what the socket takes and
    queues the rest in the connection's bounded outbox (node_ws_write.c).
*/
#ifndef NODE_WS_H_INCLUDED
#define NODE_WS_H_INCLUDED

#include "node_actor.h"

typedef struct node_ws node_ws_t;

/*  Server settings; zero fields take the defaults in brackets. */
typedef struct node_ws_config {
    const char *host;           /* listen address [127.0.0.1] */
    int port;                   /* [8000] */
    int threads;                /* civetweb workers = max open connections + spare [1100] */
    int max_connections;        /* websockets at once [threads - 16] */
    size_t max_message;         /* bytes per client message [65536] */
    double rate;                /* messages per second per connection, 0 = unlimited [100] */
    double burst;               /* token bucket size [200] */
    int64_t handshake_timeout_ms; /* [10000] */
    int64_t idle_timeout_ms;    /* no client message for this long closes [300000] */
    int64_t ping_ms;            /* ping quiet sockets this often; 3 intervals without a
                                   frame from the client shut it down [20000] */
    size_t send_queue;          /* bytes queued for one client at most [1 MiB] */
    size_t send_queue_frames;   /* frames queued for one client at most [8192] */
    size_t socket_buffer;       /* SO_SNDBUF of each client's socket, 0: the kernel's
                                   autotuning (up to net.ipv4.tcp_wmem) [0] */
    skick_send_policy_t send_policy; /* when a client's queue is full [SKICK_SEND_CLOSE] */
    int64_t close_timeout_ms;   /* a closing client has this long to take our close
                                   frame and answer it [2000] */
    const char *const *origins; /* allowed Origin values, "*" = any, NULL = same host only */
    size_t norigins;
    const char *cert;           /* PEM with certificate and key: serve wss:// */
    const char *key_password;   /* for an encrypted key, or NULL */
    const char *www;            /* document root for other HTTP paths, or NULL */
    bool cluster_view;          /* serve GET /skick/cluster.json (node_ws_view.c) [false] */
    const char *const *extra;   /* extra civetweb options, name/value pairs */
    size_t nextra;
} node_ws_config_t;

/*  Start listening; the shard's loop starts draining events. Returns the
    server, or NULL with a message in err (port in use, TLS unavailable...). */
node_ws_t *node_ws_start(node_shard_t *sh, const node_ws_config_t *cfg, char *err,
                         size_t errlen);

/*  Close every connection with 1001 and stop civetweb; NULL-safe. */
void node_ws_stop(node_ws_t **ws_p);

/*  The shards the layer above knows, for /skick/cluster.json: an array of
    at most max objects (caller owns; NULL: none known), each at least
    {"shard", "roles"}. Runs on the reactor once a second. */
typedef json_object *(node_ws_view_shards_fn)(node_shard_t *sh, size_t max, void *arg);
/*  Have /skick/cluster.json list the shards fn gives (the cluster's
    directory; without it, only this shard). NULL-safe. */
void node_ws_set_view_shards(node_ws_t *ws, node_ws_view_shards_fn *fn, void *arg);

/*  The effective settings (defaults filled in). */
const node_ws_config_t *node_ws_config(node_ws_t *ws);

/*  The shard's server, or NULL (back-only shards). */
node_ws_t *node_ws_of(node_shard_t *sh);

/*  The actor type of this server's receptionists (their behaviour is shared). */
node_type_t *node_ws_rcpt_type(node_ws_t *ws);
/*  The receptionist type of sh's server, or NULL: tells receptionists apart. */
const node_type_t *node_ws_rcpt_type_of(node_shard_t *sh);

/*  Write one text frame to connection id, or queue it if the socket does
    not take it now. 0, or -1 with skick_errno: EDEAD (gone or closing),
    ETOOBIG (larger than the send queue), EBACKLOG (the queue is full: under
    SKICK_SEND_CLOSE the connection is now closing with 1008). *went_high
    (may be NULL) is set when this frame made the queue pass half its bound
    for the first time since it last drained. */
int node_ws_send(node_ws_t *ws, uint64_t id, const char *text, size_t len, bool *went_high);

/*  Queue a close frame (code, reason) behind what is queued and stop
    admitting the client's frames; the socket is shut down when the client
    answers, or after the close timeout. Idempotent. */
void node_ws_close(node_ws_t *ws, uint64_t id, int code, const char *reason);

/*  Apply a session type's limits to one connection (0 fields keep). */
void node_ws_set_limits(node_ws_t *ws, uint64_t id, const skick_session_limits_t *l);

/*  The state of connection id's send queue (exact). 0, or -1 if it is gone. */
int node_ws_status(node_ws_t *ws, uint64_t id, skick_socket_status_t *st);

/*  The server's counters as a JSON object (caller owns): for stats; NULL
    for the test kit's fake server. */
json_object *node_ws_stats_json(node_ws_t *ws);

/*  Forget the receptionist of id (it stopped). */
void node_ws_unbind(node_ws_t *ws, uint64_t id);

/* ---- the test kit's fake server: no civetweb, frames recorded ---- */

/*  A server for sh that records what is sent instead of writing to sockets. */
node_ws_t *node_ws_fake(node_shard_t *sh);
/*  Open a fake client connection (its receptionist is created). Returns its id. */
uint64_t node_ws_fake_open(node_ws_t *ws);
/*  The client sends text (parsed like a real frame, limits not applied). */
int node_ws_fake_input(node_ws_t *ws, uint64_t id, const char *text, size_t len);
/*  Pop the next frame the server sent to id (caller frees), or NULL. */
char *node_ws_fake_output(node_ws_t *ws, uint64_t id);
/*  Whether the server closed id; its code and reason. */
bool node_ws_fake_closed(node_ws_t *ws, uint64_t id, int *code, const char **reason);
/*  The client goes away. */
void node_ws_fake_drop(node_ws_t *ws, uint64_t id);
/*  The client stops reading (paused) or reads again: while paused, frames
    wait in the connection's send queue, bounded as on a real server. */
void node_ws_fake_pause(node_ws_t *ws, uint64_t id, bool paused);

/* ---- receptionist side (node_receptionist.c), called on the reactor ---- */

/*  A connection opened: create its receptionist. Returns its actor id. */
uint64_t node_receptionist_open(node_shard_t *sh, uint64_t conn, const char *peer);
/*  A client message (msg taken): NULL with json_error for invalid JSON, NULL
    without it for a JSON null. */
void node_receptionist_input(node_shard_t *sh, uint64_t actor, json_object **msg,
                             bool json_error);
/*  Send msg (borrowed) to the client of receptionist a right away: the local
    fast path of skick_socksend, allowed only when a has nothing queued (so
    order is kept). 0 written or queued; -1 refused (skick_errno, as
    node_ws_send); 1 when a is not ready for it (send through its mailbox). */
int node_receptionist_direct(skick_actor_t *a, json_object *msg);
/*  The send queue of receptionist a's client. 0, or -1 if a is not a
    receptionist with a connection. */
int node_receptionist_status(skick_actor_t *a, skick_socket_status_t *st);
/*  The client side is gone (closed, or the socket failed). */
void node_receptionist_closed(node_shard_t *sh, uint64_t actor);
/*  The client went over a limit (drain: deliver what was admitted before
    closing) or broke the protocol (close now), with close code and why. */
void node_receptionist_refused(node_shard_t *sh, uint64_t actor, int code, const char *why,
                               bool drain);
/*  The client's send queue drained after passing half its bound. */
void node_receptionist_pressure(node_shard_t *sh, uint64_t actor);
/*  {"receptionist","session","type","peer"} when a is a receptionist with a
    session (caller owns), else NULL: for skickctl sessions. */
json_object *node_receptionist_info(skick_actor_t *a);

/* ------------------------------------------------------------------------- */
/* Session actors (node_session.c)                                            */

typedef struct node_session_type {
    node_type_t as_type;       /* its actor type view: name, factory, shared behaviour */
    char *name;                /* owned (as_type.name points here too) */
    skick_factory_fn *factory; /* the factory */
    bool requestable;          /* a session (true) or only a subsession */
    skick_schema_t *handshake; /* compiled handshake schema, owned, or NULL */
    char *handshake_text;      /* its text (advertised to front shards), owned, or NULL */
    skick_session_limits_t limits;
    const char *module;        /* registering module */
} node_session_type_t;

const node_session_type_t *node_session_type(skick_app_t *app, const char *name);
/*  Spawn the session actor of type for the receptionist rcpt (init taken),
    with actor id want_id when nonzero and free. */
skick_actor_t *node_session_spawn(node_shard_t *sh, const node_session_type_t *type,
                                  json_object **init, node_ref_t rcpt, uint64_t want_id);
/*  Compile a handshake schema text the way skick_session_handshake_schema
    does (shorthand, "session_type" added). NULL with a reason in err. */
skick_schema_t *node_session_handshake_compile(const char *schema, char *err, size_t errlen);
/*  Deliver a client message checked under schema generation gen. */
int node_deliver_client(node_shard_t *sh, node_ref_t from, node_ref_t to, json_object **body,
                        uint32_t gen);

#endif
