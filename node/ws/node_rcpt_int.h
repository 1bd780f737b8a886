/*  node_rcpt_int.h - what the receptionist's files share (private)

    The receptionist (the front half of a session, one actor per websocket)
    is three files, all on the front shard's reactor:

      node_receptionist.c   its life: creation, the entry points from
                            node_ws.c, writing to the client and the send
                            queue reports, the timer tick (handshake, idle
                            and start timeouts), the drain before a limit
                            close, sentinels and on_stop.
      node_rcpt_handshake.c the first client message: placement of the
                            requested session type and the session's start.
      node_rcpt_client.c    client messages once the session is there: the
                            schema sets, query replies, the messages held
                            while STARTING, and the session's messages about
                            schemas, socket sends and queries.

    Ownership: rcpt_t is the actor's state (skick_state_new in
    node_receptionist.c's factory, freed by its s_rcpt_free); the other two
    files borrow it through the actor for the length of a call. Nothing here
    is touched by another thread. The phases and the reasons behind them are
    in node_receptionist.c's header comment.
*/
#ifndef NODE_RCPT_INT_H_INCLUDED
#define NODE_RCPT_INT_H_INCLUDED

#include "node_ws.h"

#define NODE_RCPT_PENDING 64   /* client messages held until the session is ready */
#define NODE_RCPT_DRAIN_MS 2000 /* how long a limit close waits for the session */
#define NODE_RCPT_START_MS 10000 /* how long a session may take to start */

enum { R_HANDSHAKE, R_STARTING, R_READY };

/*  One shipped pair of schema documents, compiled; sh->schema_sets owns it
    (node_rcpt_client.c), receptionists only point at it. */
typedef struct {
    node_strmap_t sockets; /* action -> const skick_schema_t* (shard cache) */
    node_strmap_t queries; /* subschema name -> skick_schema_t* (owned) */
} node_schema_set_t;

/*  A receptionist's state, owned by its actor (skick_state_new in
    node_receptionist.c, freed with it); the other files borrow it. */
typedef struct {
    uint64_t conn;                 /* websocket connection id */
    node_ws_t *ws;                 /* the server */
    int phase;                     /* R_* */
    node_ref_t session;            /* the session actor once created */
    char session_addr[SKICK_ADDR_LEN + 1];
    uint32_t gen;                  /* schema generation in force */
    const node_schema_set_t *set;  /* the schemas of that generation */
    node_strmap_t queries;         /* open query id -> subschema name (owned) */
    struct node_rcpt_pending {
        json_object *msg;          /* owned; NULL for JSON null or invalid JSON */
        bool json_error;           /* it was not valid JSON */
    } *pending;                    /* NODE_RCPT_PENDING held while STARTING (allocated
                                      on first use: most sessions never need it) */
    int npending;
    int64_t last_input;            /* shard clock of the last client message */
    int64_t started;               /* shard clock of the handshake (STARTING since) */
    int64_t idle_ms;               /* idle timeout in force */
    uint64_t tick;                 /* pending handshake/idle timer */
    int session_end;               /* -1, or how the session ended (node_end_t) */
    bool conn_gone;                /* the client side closed */
    bool denied;                   /* closed already (refused, timed out, too slow) */
    int close_code;                /* a limit close waiting for the drain, or 0 */
    char close_reason[64];         /* and its reason */
    skick_send_policy_t policy;    /* what a full send queue means */
    bool reported_refusal;         /* the session was told of a refusal since the
                                      queue last drained */
    char peer[64];                 /* remote address, for logs */
    char type[64];                 /* session type name, once chosen */
    node_shard_t *sh;              /* owner, for the client count */
    skick_actor_t *self;           /* the receptionist */
} rcpt_t;

/* node_receptionist.c */
/*  node_rcpt_write writes or queues one frame for the client. 0, or -1 with
    skick_errno (node_ws_send); a full queue under the close policy ends the
    pair. */
int node_rcpt_write(rcpt_t *r, const char *text, size_t len);
/*  node_rcpt_send writes a NUL-terminated text frame (node_rcpt_write). */
int node_rcpt_send(rcpt_t *r, const char *text);
/*  node_rcpt_send_json writes v, borrowed, as one text frame (node_rcpt_write). */
int node_rcpt_send_json(rcpt_t *r, json_object *v);
/*  node_rcpt_from_session says whether the message being handled comes from
    r's session actor. */
bool node_rcpt_from_session(skick_actor_t *self, rcpt_t *r);
/*  node_rcpt_arm_tick (re)arms the receptionist's single timer for ms from
    now, cancelling the one pending. */
void node_rcpt_arm_tick(skick_actor_t *self, int64_t ms);
/*  node_rcpt_drain_then_close sends the session the drain marker behind the
    client's admitted messages; its answer (skick.drained) or the tick closes
    the client with r->close_code. */
void node_rcpt_drain_then_close(skick_actor_t *a, rcpt_t *r);

/* node_rcpt_handshake.c */
/*  node_rcpt_handshake handles the client's first message: places the
    requested session type and starts the session (R_STARTING), or denies
    it. Takes *msg (sets it to NULL) when it becomes the session's init. */
void node_rcpt_handshake(skick_actor_t *a, rcpt_t *r, json_object **msg, bool json_error);

/* node_rcpt_client.c */
/*  node_rcpt_client checks one client message once the session is READY and
    forwards it (taking *msg) or answers it with an error object. */
void node_rcpt_client(skick_actor_t *a, rcpt_t *r, json_object **msg, bool json_error);
/*  node_rcpt_on_schemas is the session_schemas action: a new schema
    generation; the first makes the receptionist READY. */
void node_rcpt_on_schemas(skick_actor_t *self, json_object *msg);
/*  node_rcpt_on_flush is skick.flush (from itself): hand the messages held
    while STARTING to node_rcpt_client, in order. */
void node_rcpt_on_flush(skick_actor_t *self, json_object *msg);
/*  node_rcpt_on_socksend is the socksend action: one message for the client. */
void node_rcpt_on_socksend(skick_actor_t *self, json_object *msg);
/*  node_rcpt_on_new_query is the new_query action: ask the client a question. */
void node_rcpt_on_new_query(skick_actor_t *self, json_object *msg);
/*  node_rcpt_on_cancel_query is the cancel_query action: forget a question. */
void node_rcpt_on_cancel_query(skick_actor_t *self, json_object *msg);

#endif
