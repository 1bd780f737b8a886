/*  node_ws_int.h - what node_ws.c and node_ws_fake.c share (private)

    The connection entry, the event, the server struct, and the few helpers
    the test kit's fake server reuses. Ownership and threading rules are in
    node_ws.c's header comment.
*/
#ifndef NODE_WS_INT_H_INCLUDED
#define NODE_WS_INT_H_INCLUDED

#include "node_ws.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct node_ws_conn {
    uint64_t id;                 /* 0 until ready */
    node_ws_t *ws;               /* owner */
    struct mg_connection *conn;  /* civetweb's, NULL after its close callback */
    pthread_mutex_t lock;        /* guards conn, closing */
    atomic_int refs;             /* civetweb + registry + writers */
    bool closing;                /* we sent a close frame: drop input */
    unsigned dropped;            /* frames dropped while closing */
    /* worker thread only: */
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

enum { EV_OPEN, EV_MESSAGE, EV_CLOSED };


typedef struct node_ws_event {
    struct node_ws_event *next; /* queue link */
    int kind;                   /* EV_* */
    uint64_t id;                /* connection */
    json_object *msg;           /* EV_MESSAGE: parsed message, owned */
    bool json_error;            /* EV_MESSAGE: it was not valid JSON */
    char peer[64];              /* EV_OPEN: remote address */
} node_ws_event_t;

typedef struct node_ws_frame {
    struct node_ws_frame *next; /* FIFO link */
    char text[];                /* NUL-terminated copy */
} node_ws_frame_t;

/*  A test kit connection: what the server sent, and whether it closed. */
typedef struct node_ws_fake_conn {
    node_ws_frame_t *head, *tail; /* frames not yet read */
    bool closed;                  /* the server sent a close frame */
    int code;                     /* its code */
    char reason[124];             /* and reason */
} node_ws_fake_conn_t;

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
    atomic_int open;            /* websockets accepted and not closed */
    node_u64map_t binds;        /* reactor only: connection id -> receptionist id */
    char last_error[256];       /* civetweb's last log line, for start errors */
};


/*  Parse one client message into ev (msg or json_error). */
void node_ws_parse(node_ws_event_t *ev, const char *data, size_t len);
/*  Fill in the defaults of a configuration. */
void node_ws_defaults(node_ws_config_t *c);
/*  Drop the receptionists' shared behaviour. */
void node_ws_rcpt_type_free(node_ws_t *ws);

/* node_ws_fake.c: the test kit's recording server */
int node_ws_fake_record(node_ws_t *ws, uint64_t id, const char *text, size_t len);
void node_ws_fake_record_close(node_ws_t *ws, uint64_t id, int code, const char *reason);
void node_ws_fake_free(node_ws_t *ws);

#endif
