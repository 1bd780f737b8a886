/*  skick/client.h - talk to a Skick cluster from outside (libskick-client)

    A program that is not a shard (skickctl, a test, a script's helper)
    connects a DEALER to the broker's control endpoint, says HELLO as a
    "client" peer and is welcomed (PROTOCOL.md, "The cluster"). It can then
    send actor messages, ask actors (a conversation: one answer, or a stream
    of turns), and make control requests to the broker or to one shard.

    Threading: a skick_client_t belongs to the thread that made it (ZeroMQ
    sockets are not thread-safe). Use one client per thread.

    Nothing runs in the background: the library reads the socket, answers
    the link's bookkeeping (sequence numbers, heartbeats every heartbeat_ms,
    a new HELLO when the broker says "say HELLO") only inside the calls
    below. Every wait is bounded by a timeout. A program that stays idle for
    long may call skick_client_pump now and then; if it does not, the broker
    forgets it after 30 s and the next call says HELLO again by itself.

    Errors: a failing call returns -1 or NULL, sets skick_errno() (a code of
    skick/err.h: ETIMEDOUT, EUNREACH, EDEAD, EPARTNER...) and a one-line
    message for skick_client_last_error(). Both are per thread.

    Ownership (CZMQ style): _connect returns an object the caller owns and
    frees with _destroy(&p), which sets p to NULL. json_object arguments are
    borrowed (the library serializes them; it never keeps or changes them).
    A json_object ** out-parameter receives a new reference the caller owns
    (json_object_put); it may be NULL when the answer is JSON null.
    Returned strings are borrowed from the client and live as long as it.
*/
#ifndef SKICK_CLIENT_H_INCLUDED
#define SKICK_CLIENT_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "skick/err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skick_client skick_client_t;
typedef struct skick_client_conv skick_client_conv_t;

#define SKICK_CLIENT_TIMEOUT_DEFAULT 5000 /* ms, when opts->timeout_ms is 0 */

/*  Connection options; a zeroed struct (or NULL) means the defaults. */
typedef struct {
    int timeout_ms;           /* bound on the welcome and the default for requests
                                 made with timeout 0 (0: SKICK_CLIENT_TIMEOUT_DEFAULT) */
    const char *curve_secret; /* own certificate, secret file (CZMQ zcert format), or NULL */
    const char *curve_server; /* the broker's public certificate file, or NULL */
} skick_client_opts_t;

/*  Connect to the broker's control endpoint (ipc://PATH or tcp://HOST:PORT)
    and wait for the welcome. CURVE is on when both curve files are given.
    Returns a new client (caller owns), or NULL with skick_errno():
    EINVAL (bad endpoint or options, unreadable certificate), EUNREACH (no
    broker: the ipc socket does not exist, or nothing answered in time), or
    the code of the broker's refusal (EINVAL: the id is taken; EPROTO: it
    could not read our HELLO; EVERSION: it speaks another protocol version;
    codes this build does not know become EPROTO). */
skick_client_t *skick_client_connect(const char *endpoint, const skick_client_opts_t *opts);

/*  Close the connection (pending sends get up to 1 s to leave) and free the
    client. Conversations still open are detached: close them afterwards
    to free them. NULL-safe; sets *self_p to NULL. */
void skick_client_destroy(skick_client_t **self_p);

/*  The client's actor address "CLIENTID:0000000000000001" (borrowed). */
const char *skick_client_address(skick_client_t *self);

/*  The welcoming broker's instance id, 16 lowhex (borrowed). */
const char *skick_client_broker(skick_client_t *self);

/*  The message of the last failing skick_client_* call on this thread
    ("" when none). Static per thread; valid until the next failing call. */
const char *skick_client_last_error(void);

/*  Read and handle whatever the broker sent, and send a heartbeat when one
    is due, waiting at most timeout_ms for traffic. For programs that keep a
    client idle. 0, or -1 with skick_errno (EUNREACH, EPROTO). */
int skick_client_pump(skick_client_t *self, int timeout_ms);

/* ---- actor messages ------------------------------------------------------ */

/*  Send msg (a JSON object with a string "action"; borrowed) to the actor at
    address "SHARD:ACTOR" as an ACTOR envelope from the client's address.
    Fire and forget: returns 0 once ZeroMQ took it, -1 with EINVAL (bad
    address or message) or EUNREACH. A dead letter that comes back later is
    counted and logged, not reported. */
int skick_client_send(skick_client_t *self, const char *to, json_object *msg);

/*  Like skick_client_send, then confirm with the recipient's shard: a
    control round trip on the same ordered path, so that a dead letter for
    the message (EDEAD: no such shard or actor; EFULL: mailbox full) arrives
    first. 0: the shard accepted it; -1 with that code, ETIMEDOUT or
    EUNREACH. timeout_ms 0 means the client's default. */
int skick_client_send_confirm(skick_client_t *self, const char *to, json_object *msg,
                              int timeout_ms);

/*  Ask: send msg as a conversation opener (the library adds "cid" and
    "sender") and wait for the first answer. 0 with *answer set to the first
    turn's "message" (caller owns; NULL for JSON null). -1 with skick_errno:
    the code of an end_conversation (EACTION, ESCHEMA, EPARTNER...), ECLOSED
    when the partner ended it without an answer, the code of a dead letter
    (EDEAD, EFULL, EUNREACH), EPARTNER as soon as the broker declares the
    partner's shard lost (its loss timeout, not the ask's), ETIMEDOUT. The
    conversation is closed before returning (end_conversation, unless the
    answer carried "last"). */
int skick_client_ask(skick_client_t *self, const char *to, json_object *msg, int timeout_ms,
                     json_object **answer);

/* ---- conversations (a stream of turns) ----------------------------------- */

/*  Open a conversation with the actor at to by sending msg (borrowed) with
    "cid" and "sender" added. Returns a new conversation (caller owns; close
    it with skick_client_conv_close), or NULL with skick_errno. */
skick_client_conv_t *skick_client_converse(skick_client_t *self, const char *to, json_object *msg);

/*  Wait for the partner's next turn. Returns 1 with *message set (caller
    owns; NULL for JSON null), 0 when the conversation has ended normally
    (the previous turn carried "last", or an end_conversation without a
    code), -1 with skick_errno (the end code, a dead letter's code,
    EPARTNER when the partner's shard is declared lost, ETIMEDOUT: the
    conversation stays open after a timeout). */
int skick_client_conv_recv(skick_client_conv_t *self, int timeout_ms, json_object **message);

/*  Send the partner a turn ({"action":"receive_reply","message":msg,...});
    last: close our side with it. 0, or -1 with skick_errno (ECLOSED when
    the conversation is over). msg is borrowed; NULL sends JSON null. */
int skick_client_conv_send(skick_client_conv_t *self, json_object *msg, bool last);

/*  The conversation id, 32 lowhex (borrowed). */
const char *skick_client_conv_cid(skick_client_conv_t *self);

/*  End the conversation: the partner gets end_conversation unless it is
    already over, and the turns still queued are freed. NULL-safe; sets
    *self_p to NULL. */
void skick_client_conv_close(skick_client_conv_t **self_p);

/* ---- control requests ---------------------------------------------------- */

/*  Send the control request op to the broker (shard NULL) or to the shard
    with that 16-lowhex id, with the members of args (a JSON object,
    borrowed, or NULL) as arguments, and wait for the REPLY. 0 with *result
    set to its "result" (caller owns; NULL for JSON null; result may be NULL
    to discard it), or -1 with skick_errno: the reply's code (EINVAL,
    ENOTFOUND, EDEAD...), a dead letter's code (EDEAD: no such shard),
    ETIMEDOUT, EUNREACH. timeout_ms 0 means the client's default. */
int skick_client_request(skick_client_t *self, const char *shard, const char *op, json_object *args,
                         int timeout_ms, json_object **result);

/*  Broker requests (PROTOCOL.md "Control requests"): the array of shards;
    the directory object; services (name NULL for all); the broker's
    counters. Same returns as skick_client_request. */
int skick_client_ps(skick_client_t *self, int timeout_ms, json_object **result);
int skick_client_directory(skick_client_t *self, int timeout_ms, json_object **result);
int skick_client_services(skick_client_t *self, const char *name, int timeout_ms,
                          json_object **result);
int skick_client_stats(skick_client_t *self, int timeout_ms, json_object **result);

/*  Shard requests: the actors (at most limit; 0 for the shard's default of
    1000), the sessions of a front shard, the shard's counters. */
int skick_client_shard_actors(skick_client_t *self, const char *shard, int limit, int timeout_ms,
                              json_object **result);
int skick_client_shard_sessions(skick_client_t *self, const char *shard, int timeout_ms,
                                json_object **result);
int skick_client_shard_stats(skick_client_t *self, const char *shard, int timeout_ms,
                             json_object **result);

/*  Stop the actor at address (its shard is the address's first half): it
    ends with a "cancellation" sentinel. 0, or -1 with EDEAD (no such
    actor), EINVAL, ETIMEDOUT... */
int skick_client_stop(skick_client_t *self, const char *address, int timeout_ms);

/*  True when text is an address "SHARD:ACTOR" (16 lowhex each, actor not 0);
 *shard and *actor (may be NULL) get the two ids. */
bool skick_client_parse_address(const char *text, uint64_t *shard, uint64_t *actor);

#ifdef __cplusplus
}
#endif
#endif
