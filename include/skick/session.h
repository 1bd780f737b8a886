/*  skick/session.h - websocket sessions: what browsers talk to

    A client opens a websocket to a front shard and sends
    {"session_type": "hello"}. The front shard creates a *receptionist*
    (runtime code: it validates every client message against the session's
    socket schemas and answers bad ones with the seed's error objects) and a
    *session actor* from the session type's factory (your code: a normal
    actor plus the socket functions below). The two live and die together:
    when either ends or the client goes away, both stop and the socket
    closes with a code and a reason. The session actor may be on another
    shard than the receptionist; it ships its socket schemas to the
    receptionist, so front shards need no application code.

    Included by skick/skick.h. Same ownership rules as there.
*/
#ifndef SKICK_SESSION_H_INCLUDED
#define SKICK_SESSION_H_INCLUDED

#ifndef SKICK_H_INCLUDED
#error "include <skick/skick.h>, not <skick/session.h>"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
   Registering session types (in a SKICK_MODULE)
   ------------------------------------------------------------------------- */

/*  Register a session type a client may request by name. The factory runs
    for each new session with the handshake object as init (only its
    "session_type" unless a handshake schema admits more). 0 or -1 (EINVAL:
    bad or taken name). */
int skick_session(skick_app_t *app, const char *name, skick_factory_fn *factory);

/*  Register a subsession: reachable only by skick_replace from a session. */
int skick_subsession(skick_app_t *app, const char *name, skick_factory_fn *factory);

/*  Register a handshake sequence (the seed's @skick.handshake): session
    `name` runs first; subsession "name:final" runs final. The steps pass
    the handshake along and the last one calls
    skick_replace(self, "name:final", &msg). Clients cannot request
    "name:final" directly. */
int skick_handshake(skick_app_t *app, const char *name, skick_factory_fn *first,
                    skick_factory_fn *final);

/*  Declare the schema of the handshake object of session name (shorthand;
    "session_type" is implied). Without one, fields other than session_type
    are dropped before the factory sees them. A handshake failing the schema
    is denied. */
int skick_session_handshake_schema(skick_app_t *app, const char *name, const char *schema);

/*  What a front shard does with a message for a client whose send queue is
    full (the client is not reading fast enough; PROTOCOL.md "Slow clients"). */
typedef enum {
    SKICK_SEND_DEFAULT = 0, /* the server's setting (SKICK_SEND_CLOSE unless changed) */
    SKICK_SEND_CLOSE,       /* close the client with 1008 "send queue full"; the
                               session ends as on any close */
    SKICK_SEND_REFUSE,      /* refuse that message (skick_socksend fails with
                               EBACKLOG) and keep the client: for sessions that
                               coalesce or drop their own updates */
} skick_send_policy_t;

/*  Limits for one session type; 0 fields keep the server's settings. */
typedef struct {
    size_t max_message;      /* bytes per client message */
    double rate;             /* messages per second (negative: unlimited) */
    double burst;            /* token bucket size */
    int64_t idle_timeout_ms; /* close after this long without a client message */
    size_t send_queue;       /* bytes waiting for the client at most (--send-queue) */
    skick_send_policy_t send_policy; /* when that queue is full */
} skick_session_limits_t;

/*  Set the limits of session name (applied after its handshake). 0 or -1. */
int skick_session_limits(skick_app_t *app, const char *name,
                         const skick_session_limits_t *limits);

/* ---------------------------------------------------------------------------
   Inside a session's factory and handlers
   ------------------------------------------------------------------------- */

/*  Register a socket action: clients may send {"action": name, ...}
    conforming to schema (shorthand or full JSON Schema; NULL means the
    message is {"action": name} and nothing else); fn handles it like an
    action. Other actors may send it too (without the client check). Only
    in a session. 0 or -1 (ECONTEXT outside a session, ESCHEMA, ERESERVED). */
int skick_socket(skick_actor_t *self, const char *name, const char *schema,
                 skick_handler_fn *fn);

/*  Register a query subschema for skick_query (a full JSON Schema for the
    answer's value). Built in: default, str, int, float, bool, list. */
int skick_query_schema(skick_actor_t *self, const char *name, const char *schema);

/*  Send *msg (taken) to the client as one text frame of compact JSON. It
    is written at once if the client's socket takes it, else queued (bounded:
    skick_session_limits_t.send_queue). 0 when written or queued; -1 with
    EDEAD (the client is gone or closing), EBACKLOG (the send queue is full:
    the client is being closed, or, under SKICK_SEND_REFUSE, the message is
    dropped and the client stays), ETOOBIG (larger than the whole send
    queue) or ECONTEXT (not a session). When the client's front shard is
    another shard, 0 means handed to it; refusals there are reported back
    and show in skick_socket_status. */
int skick_socksend(skick_actor_t *self, json_object **msg);

/*  The state of a session's send queue. */
typedef struct {
    size_t queued;     /* bytes waiting to be written to the client */
    size_t limit;      /* the queue's bound in bytes */
    uint64_t refused;  /* messages refused so far (EBACKLOG, ETOOBIG) */
    bool exact;        /* queued is current (the client is on this shard); else
                          it is the front shard's last report, sent when the
                          queue crosses half its bound and when it drains */
} skick_socket_status_t;

/*  Fill *st for session self: lets a session coalesce or skip updates while
    its client is slow. 0, or -1 with ECONTEXT (not a session). */
int skick_socket_status(skick_actor_t *self, skick_socket_status_t *st);

/*  Ask the client (the seed's SocketQuery): send *payload (taken) as
    {"action":"SocketQuery","query_id":..,"message":payload,"schema":name},
    suspend until the client's query_reply passes subschema (NULL:
    "default"), and return its value (caller owns). Answers that fail the
    subschema are refused at the receptionist and the question stays open.
    Any number may be open; usable in handlers, conversations and daemons.
    NULL with ETIMEDOUT, ESTOPPED (the session is ending) or ECONTEXT. */
json_object *skick_query(skick_actor_t *self, json_object **payload, const char *subschema,
                         int64_t timeout_ms);

/*  True when self is a session actor. */
bool skick_is_session(skick_actor_t *self);

#ifdef __cplusplus
}
#endif
#endif
