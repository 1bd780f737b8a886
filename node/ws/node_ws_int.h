/*  node_ws_int.h - what the websocket server's files share (private)

    node_ws.c (the server: registry, event queue, reactor side, settings,
    TLS, start and stop), node_ws_conn.c (the websocket callbacks on
    civetweb's worker threads), node_ws_socket.c (a new connection's socket
    and TLS session), node_ws_write.c (the write path on the reactor: outboxes, writability,
    close deadlines, pings) and node_ws_fake.c (the test kit's recording
    server) share the connection entry, the event and the server struct.
    Ownership and threading rules are in node_ws.c's header comment; the
    write path's are in node_ws_write.c's.
*/
#ifndef NODE_WS_INT_H_INCLUDED
#define NODE_WS_INT_H_INCLUDED

#include "node_ws.h"
#include "node_ws_outbox.h"

#include <pthread.h>
#include <stdatomic.h>

struct ssl_st;
struct mg_connection;

/*  The life of a connection's sending side; every transition is in
    node_ws_write.c, under the entry's lock. */
typedef enum {
    NODE_WS_OPEN,    /* frames are written or queued */
    NODE_WS_CLOSING, /* our close frame is queued: nothing more is sent */
    NODE_WS_ABORTED, /* the socket was shut down: waiting for civetweb's close */
    NODE_WS_GONE,    /* civetweb's close callback ran: the socket is not ours */
} node_ws_state_t;

typedef struct node_ws_conn {
    uint64_t id;                 /* 0 until ready */
    node_ws_t *ws;               /* owner */
    atomic_int refs;             /* civetweb + registry + short-lived users */
    pthread_mutex_t lock;        /* guards the sending side below */
    /* sending side (under lock) */
    node_ws_state_t state;       /* see above */
    int fd;                      /* our duplicate of the socket; -1 once GONE */
    struct ssl_st *ssl;          /* civetweb's TLS session (wss://), or NULL */
    node_outbox_t out;           /* frames the socket has not taken yet */
    size_t out_counted;          /* its bytes as last added to the server's outbox_bytes */
    node_outbox_limits_t limits; /* its bounds and policy */
    bool armed;                  /* fd is in the server's writability set */
    bool high;                   /* the queue passed half its bound (reported) */
    bool client_closed;          /* the client's close frame arrived */
    uint64_t refused;            /* frames refused (EBACKLOG, ETOOBIG) */
    /* reactor only */
    uint64_t close_timer;        /* deadline of a close in progress, 0 none */
    int64_t ping_sent;           /* monotonic ms of our last ping, 0 none */
    /* both threads */
    atomic_bool input_off;       /* client frames are no longer admitted */
    _Atomic int64_t last_rx;     /* monotonic ms of the last frame from the client */
    /* worker thread only */
    unsigned dropped;            /* frames dropped while input is off */
    char *buf;                   /* message being reassembled */
    size_t len, cap;
    bool in_message;             /* a fragmented message is in progress */
    int64_t refill_ns;           /* token bucket: last refill */
    double tokens;
    /* set by the reactor, read by the worker (relaxed is enough: a stale
       value for one frame is harmless) */
    _Atomic size_t max_message;
    _Atomic double rate, burst;
} node_ws_conn_t;

enum { EV_OPEN, EV_MESSAGE, EV_CLOSED, EV_REFUSED };

typedef struct node_ws_event {
    struct node_ws_event *next; /* queue link */
    int kind;                   /* EV_* */
    uint64_t id;                /* connection */
    json_object *msg;           /* EV_MESSAGE: parsed message, owned */
    bool json_error;            /* EV_MESSAGE: it was not valid JSON */
    int code;                   /* EV_REFUSED: close code */
    bool drain;                 /* EV_REFUSED: deliver what was admitted first */
    char peer[64];              /* EV_OPEN: remote address; EV_REFUSED: reason */
} node_ws_event_t;

typedef struct node_ws_frame {
    struct node_ws_frame *next; /* FIFO link */
    size_t bytes;               /* as counted against the send queue */
    char text[];                /* NUL-terminated copy */
} node_ws_frame_t;

/*  A test kit connection: what the server sent, and whether it closed. */
typedef struct node_ws_fake_conn {
    node_ws_frame_t *head, *tail; /* frames sent, oldest first */
    node_ws_frame_t *unread;      /* first frame the client has not taken in
                                     while paused (NULL: all readable) */
    bool paused;                  /* the client is not reading */
    size_t queued;                /* bytes of the frames from `unread` on */
    size_t nqueued;               /* and their number */
    uint64_t refused;             /* frames refused */
    node_outbox_limits_t limits;  /* the connection's send queue */
    bool high;                    /* the queue passed half its bound */
    bool closed;                  /* the server sent a close frame */
    int code;                     /* its code */
    char reason[124];             /* and reason */
} node_ws_fake_conn_t;

/*  Counters of the websocket server (node_ws_stats_json). */
typedef struct node_ws_counters {
    atomic_ulong slow_closed;     /* clients closed: send queue full */
    atomic_ulong refused_frames;  /* frames refused (REFUSE policy, too big) */
    atomic_ulong aborted;         /* sockets shut down (close deadline, pings, errors) */
    atomic_ulong ping_timeouts;   /* of which: no answer to pings */
    atomic_ulong queued_frames;   /* frames that had to wait in an outbox */
    atomic_ulong rate_limited;    /* clients closed for their rate */
    atomic_ulong too_big;         /* clients closed for a message over the size limit */
    atomic_ulong protocol_errors; /* clients closed for a websocket protocol error */
    atomic_ulong msgs_in;         /* client messages admitted (after reassembly) */
    atomic_ulong bytes_in;        /* their bytes */
    atomic_ulong msgs_out;        /* text frames accepted for sending */
    atomic_ulong bytes_out;       /* their bytes */
    atomic_ulong accepted;        /* websockets accepted, ever */
    atomic_long outbox_bytes;     /* bytes queued in all outboxes now */
} node_ws_counters_t;

/*  Bring the server's outbox_bytes up to date with e's outbox (under
    e->lock, after the outbox changed). */
void node_ws_outbox_counted(node_ws_conn_t *e);

/*  NODE_WS_VIEW_MAX: bytes of /skick/cluster.json at most; the shard list
    holds NODE_WS_VIEW_SHARDS entries at most (node_ws_view.c). */
#define NODE_WS_VIEW_MAX (64 * 1024)
#define NODE_WS_VIEW_SHARDS 64

typedef struct {
    bool started;                 /* lock initialised */
    pthread_mutex_t lock;         /* text, len */
    char *text;                   /* the last rendering (owned), or NULL */
    size_t len;
    int64_t prev_ms;              /* reactor: the previous rendering's clock and totals */
    uint64_t delivered, in, out;
    bool have_prev;
    node_ws_view_shards_fn *shards; /* the layer above's shard list, or NULL */
    void *shards_arg;
} node_ws_view_t;

struct node_ws {
    bool fake;                  /* test kit: no civetweb, frames recorded */
    node_type_t rcpt_type;      /* the receptionists' type: their shared behaviour */
    node_shard_t *sh;           /* the reactor's shard */
    struct mg_context *ctx;     /* civetweb */
    node_ws_config_t cfg;       /* effective settings */
    pthread_mutex_t lock;       /* registry and queue */
    node_u64map_t conns;        /* id -> node_ws_conn_t* (under lock) */
    uint64_t next_id;           /* under lock */
    node_ws_event_t *head;      /* queue (under lock) */
    node_ws_event_t *tail;
    int efd;                    /* eventfd: queue became non-empty */
    int wfd;                    /* epoll set of sockets waiting to be writable */
    uint64_t ping_timer;        /* the ping sweep's timer */
    atomic_int open;            /* websockets accepted and not closed */
    node_ws_counters_t n;       /* counters */
    node_u64map_t binds;        /* reactor only: connection id -> receptionist id */
    char last_error[256];       /* civetweb's last log line, for start errors */
    node_ws_view_t view;        /* /skick/cluster.json (node_ws_view.c) */
};

/* node_ws_metrics.c */
/*  Add the websocket server's families to the shard's registry (when its
    metrics are on) and serve /metrics on the server's port. */
void node_ws_metrics_start(node_ws_t *ws);

/* node_ws_view.c */
/*  Serve /skick/cluster.json when cfg.cluster_view (rendered by the
    reactor once a second), and free what it holds. */
void node_ws_view_start(node_ws_t *ws);
void node_ws_view_stop(node_ws_t *ws);

/*  Parse one client message into ev (msg or json_error). */
void node_ws_parse(node_ws_event_t *ev, const char *data, size_t len);
/*  Fill in the defaults of a configuration. */
void node_ws_defaults(node_ws_config_t *c);
/*  Drop the receptionists' shared behaviour. */
void node_ws_rcpt_type_free(node_ws_t *ws);
/*  A connection's send queue as the server's settings make it. */
node_outbox_limits_t node_ws_default_limits(const node_ws_config_t *c);
/*  Take a reference to connection id (NULL if gone); node_ws_conn_unref. */
node_ws_conn_t *node_ws_conn_get(node_ws_t *ws, uint64_t id);
void node_ws_conn_unref(node_ws_conn_t *e);
/*  Queue an event for the reactor and wake it (worker threads). */
void node_ws_push(node_ws_t *ws, node_ws_event_t *ev);
/*  Monotonic milliseconds (the clock of pings and deadlines). */
int64_t node_ws_mono_ms(void);

/* node_ws_conn.c: civetweb's websocket callbacks (worker threads) */
/*  node_ws_on_connect checks origin and connection limit and creates the
    connection's entry (civetweb's reference). 0: accept, 1: refuse. */
int node_ws_on_connect(const struct mg_connection *c, void *cbdata);
/*  node_ws_on_ready enters the entry in the registry (a second reference)
    and queues EV_OPEN. */
void node_ws_on_ready(struct mg_connection *c, void *cbdata);
/*  node_ws_on_data takes one frame: control frames, reassembly, the size
    and rate limits, then EV_MESSAGE (or EV_REFUSED). 1: keep, 0: close. */
int node_ws_on_data(struct mg_connection *c, int bits, char *data, size_t len, void *cbdata);
/*  node_ws_on_close releases the entry (both references) and queues
    EV_CLOSED; civetweb closes the socket after it returns. */
void node_ws_on_close(const struct mg_connection *c, void *cbdata);

/* node_ws_socket.c: a new connection's socket (worker threads) */
/*  node_ws_conn_socket returns our own duplicate of connection c's socket
    (caller owns it; -1 if it cannot be found) and civetweb's TLS session in
    *ssl for wss:// (still civetweb's; NULL otherwise). */
int node_ws_conn_socket(const struct mg_connection *c, struct ssl_st **ssl);
/*  node_ws_tls_info is the info callback node_ws.c sets on civetweb's TLS
    context: it notes the session whose handshake the thread completed. */
void node_ws_tls_info(const struct ssl_st *ssl, int where, int ret);

/* node_ws_write.c: the sending side */
/*  Set up e's sending side on fd (ours: closed by node_ws_conn_gone) and
    ssl (civetweb's, or NULL). */
void node_ws_conn_attach(node_ws_conn_t *e, int fd, struct ssl_st *ssl);
/*  A control frame from the worker thread (a pong); dropped unless OPEN. */
void node_ws_conn_control(node_ws_conn_t *e, int opcode, const char *data, size_t len);
/*  The client's close frame arrived (worker thread): answer it unless we
    closed first, then wait (at most the close timeout) until our close
    frame is written. The worker may block: it serves only this client. */
void node_ws_conn_client_close(node_ws_conn_t *e, const char *data, size_t len);
/*  civetweb's close callback: the socket stops being ours. */
void node_ws_conn_gone(node_ws_conn_t *e);
/*  Start the writer: the writability set on the loop, the ping sweep. */
int node_ws_writer_start(node_ws_t *ws);
/*  Write what can be written without waiting, close every connection with
    1001 and give clients up to ms to take it, then shut the rest down. */
void node_ws_writer_stop(node_ws_t *ws, int64_t ms);

/* node_ws_fake.c: the test kit's recording server */
int node_ws_fake_record(node_ws_t *ws, uint64_t id, const char *text, size_t len,
                        bool *went_high);
void node_ws_fake_record_close(node_ws_t *ws, uint64_t id, int code, const char *reason);
void node_ws_fake_status(node_ws_t *ws, uint64_t id, skick_socket_status_t *st);
void node_ws_fake_set_queue(node_ws_t *ws, uint64_t id, const node_outbox_limits_t *l);
void node_ws_fake_free(node_ws_t *ws);

#endif
