/*  skick/testkit.h - run actors in-process, deterministically, for tests

    The stagecrew "test kit": a shard without threads, sockets or real time.
    Spawn actors, inject messages, capture what they send with probes,
    advance a virtual clock, and call into the actor system from outside
    (skick_tk_call, the stagecrew "future from outside"). Nothing runs until
    you call skick_tk_run / skick_tk_advance (or a function that says it runs
    the shard), so a test controls every interleaving.

        skick_tk_t *tk = skick_tk_new(my_module_init);
        skick_addr_t acc = skick_tk_spawn(tk, "accumulator", "{\"initial_tally\": 1}", NULL);
        json_object *r = skick_tk_call(tk, acc.str, "{\"action\":\"add\",\"number\":2}", 1000);
        ...
        skick_tk_destroy(&tk);

    Ownership as in skick.h: returned json_object values belong to the
    caller. One test kit per thread at a time.
*/
#ifndef SKICK_TESTKIT_H_INCLUDED
#define SKICK_TESTKIT_H_INCLUDED

#include "skick/skick.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skick_tk skick_tk_t;

/*  Create a test shard. init (may be NULL) is a module init (the function a
    SKICK_MODULE body becomes, or your own) run against the shard's app before
    the shard starts, so its types and hooks are in place; the app's on_start
    hook runs on the first skick_tk_run. Caller owns the result. */
skick_tk_t *skick_tk_new(skick_module_init_fn *init);

/*  Stop every actor (on_stop hooks run, virtual time advances as needed up
    to the stop timeout) and free the test kit; NULL-safe; sets *tk_p NULL. */
void skick_tk_destroy(skick_tk_t **tk_p);

/*  Register an actor type (like skick_actor). 0 or -1. */
int skick_tk_actor(skick_tk_t *tk, const char *type, skick_factory_fn *factory);

/*  Change the shard's settings (0 leaves one unchanged). */
void skick_tk_config(skick_tk_t *tk, uint32_t mailbox_capacity, int64_t call_timeout_ms);

/*  The shard actor's address. */
skick_addr_t skick_tk_shard(skick_tk_t *tk);

/*  Spawn an actor of type with init JSON text (NULL = {}); monitor, if not
    NULL, becomes a monitor (usually a probe). The factory runs now; on_start
    on the next run. Returns the address, empty with ENOTYPE/EINVAL. */
skick_addr_t skick_tk_spawn(skick_tk_t *tk, const char *type, const char *init_json,
                            const char *monitor);

/*  A probe: an address whose incoming messages are captured, not handled. */
skick_addr_t skick_tk_probe(skick_tk_t *tk);

/*  Inject a message (JSON text) as if sent by from (NULL: from outside the
    system, no sender). Returns 0, or -1 with the error a sender would get
    (EINVAL for malformed JSON, EDEAD, EFULL...). Does not run the shard. */
int skick_tk_send(skick_tk_t *tk, const char *from, const char *to, const char *json);

/*  Inject an already built message (taken). */
int skick_tk_send_obj(skick_tk_t *tk, const char *from, const char *to, json_object **msg);

/*  Run until nothing is runnable and no timer is due (virtual time stands). */
void skick_tk_run(skick_tk_t *tk);

/*  Advance virtual time by ms, firing due timers in order and running the
    shard until idle after each. */
void skick_tk_advance(skick_tk_t *tk, int64_t ms);

/*  Virtual milliseconds since the test kit started. */
int64_t skick_tk_now(skick_tk_t *tk);

/*  Run the shard, then pop the next message captured by probe (caller owns)
    or NULL if there is none. */
json_object *skick_tk_recv(skick_tk_t *tk, const char *probe);

/*  Messages waiting in probe (runs the shard first). */
size_t skick_tk_pending(skick_tk_t *tk, const char *probe);

/*  Ask from outside: send json (an object with "action") to `to` as a
    conversation opener from a fresh probe, run the shard and advance virtual
    time until the first reply or timeout_ms. Returns the reply's "message"
    (caller owns) or NULL with ETIMEDOUT, ECLOSED, EPARTNER, EDEAD, EINVAL. */
json_object *skick_tk_call(skick_tk_t *tk, const char *to, const char *json,
                           int64_t timeout_ms);

/*  Whether an actor lives at addr. */
bool skick_tk_alive(skick_tk_t *tk, const char *addr);

/*  Stop the actor at addr from outside (like `skickctl stop`): it ends with
    a "cancellation" sentinel. Does not run the shard. 0 or -1 (EDEAD). */
int skick_tk_stop(skick_tk_t *tk, const char *addr);

/*  A shard counter by name: "delivered", "dead_letters", "refused_full",
    "schema_failures", "unknown_actions", "spawned", "stopped", "failed",
    "stale_replies", "lost_sentinels", "switches", "sent_local", "live", "fibers".
    Unknown names give 0. */
uint64_t skick_tk_stat(skick_tk_t *tk, const char *name);

/* ---------------------------------------------------------------------------
   Fake websocket clients: test sessions without a server. The client side
   talks to a real receptionist and session actor through the same code as a
   front shard, minus civetweb: frames are recorded instead of written, and
   the size and rate limits (enforced on civetweb's threads) do not apply.
   ------------------------------------------------------------------------- */

/*  Open a client connection; nothing is sent yet (send the handshake). */
uint64_t skick_tk_ws_open(skick_tk_t *tk);

/*  The client sends one message (text, as it would be in a frame). 0, or -1
    when the connection is closed. Does not run the shard. */
int skick_tk_ws_send(skick_tk_t *tk, uint64_t client, const char *text);

/*  The same for a frame of len bytes, which may hold NUL bytes (a frame is
    not a C string): what a fuzzer or a test of raw frames sends. */
int skick_tk_ws_send_len(skick_tk_t *tk, uint64_t client, const char *data, size_t len);

/*  Run the shard, then pop the next frame the server sent to client (caller
    frees), or NULL when there is none. */
char *skick_tk_ws_recv(skick_tk_t *tk, uint64_t client);

/*  Like skick_tk_ws_recv, parsed: NULL when there is no frame or it is not
    JSON (the literal "denied" is returned as the JSON string "denied"). */
json_object *skick_tk_ws_recv_json(skick_tk_t *tk, uint64_t client);

/*  Run the shard; whether the server has closed client, with its close code
    and reason (borrowed until the test kit is destroyed). */
bool skick_tk_ws_closed(skick_tk_t *tk, uint64_t client, int *code, const char **reason);

/*  The client disconnects (as if the socket dropped). */
void skick_tk_ws_drop(skick_tk_t *tk, uint64_t client);

/*  Set the handshake and idle timeouts of later connections (0: keep). */
void skick_tk_ws_timeouts(skick_tk_t *tk, int64_t handshake_ms, int64_t idle_ms);

/*  The client stops reading (paused = true) or reads again. While it does
    not read, frames sent to it wait in its send queue, bounded and with the
    send policy as on a real server: skick_tk_ws_recv returns none of them,
    and a full queue closes the client (1008 "send queue full") or refuses
    the frame (SKICK_SEND_REFUSE). Reading again delivers what waited. */
void skick_tk_ws_pause(skick_tk_t *tk, uint64_t client, bool paused);

/*  Set the send queue bound (bytes) and the policy of later connections
    (0: keep), as skick-node's --send-queue does. */
void skick_tk_ws_send_queue(skick_tk_t *tk, size_t bytes, skick_send_policy_t policy);

/*  Turn the shard's metrics on, as a front shard or --metrics has them:
    the hot paths count from now on. 0, or -1 when out of memory. */
int skick_tk_metrics(skick_tk_t *tk);

/*  Mirror the shard's counters into its metrics (what the shard's
    once-a-second timer does; the test kit's clock is virtual) and return
    the Prometheus text (caller frees), or NULL when metrics are off. Call
    between runs, from the thread that runs the shard. */
char *skick_tk_metrics_text(skick_tk_t *tk);

/*  The last published text, from any thread (what a scrape gets): NULL
    when metrics are off or nothing was published yet. Caller frees. */
char *skick_tk_metrics_scrape(skick_tk_t *tk);

#ifdef __cplusplus
}
#endif
#endif
