/*  skick/skick.h - the Skick actor API (umbrella header)

    An application registers actor types (factories) in a module, and the
    shard spawns actors from them. A factory runs synchronously against a fresh
    actor and registers what the actor does: actions (message handlers, with
    optional schemas), on_start / on_stop hooks, daemons, sentinel handlers.
    Every handler, hook and daemon runs on a coroutine, so it may suspend:
    skick_call, skick_conv_recv, skick_sleep and the hash functions wait
    without blocking the shard.

    Threading: one shard is one reactor thread. Every function here must be
    called on that thread, from a factory, handler, hook or daemon of the
    actor passed as `self` (the "actor context"), unless said otherwise.

    Ownership, in one rule: a `json_object **` parameter takes the object and
    sets the caller's pointer to NULL, success or not (so nothing leaks on an
    error path); a `json_object *` parameter is borrowed for the call; a
    returned `json_object *` belongs to the caller (json_object_put it).
    Messages handed to a handler are borrowed for the handler's run: take a
    reference with json_object_get to keep one.

    Errors: functions return 0 / -1, a pointer / NULL, or an address whose
    string is empty; on failure skick_errno() says why (skick/err.h).
*/
#ifndef SKICK_H_INCLUDED
#define SKICK_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skick/err.h"
#include "skick/log.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SKICK_VERSION_MAJOR 0
#define SKICK_VERSION_MINOR 1
#define SKICK_VERSION_PATCH 0
#define SKICK_VERSION_STRING "0.1.0"

/*  An actor address: "<shard>:<actor>", 16 lowercase hex digits each. */
#define SKICK_ADDR_LEN 33
typedef struct {
    char str[SKICK_ADDR_LEN + 1]; /* NUL-terminated; empty string means "none" */
} skick_addr_t;

typedef struct skick_actor skick_actor_t; /* an actor; only valid in its own context */
typedef struct skick_app skick_app_t;     /* the registry a module fills in */
typedef struct skick_conv skick_conv_t;   /* one open conversation, owned by its actor */

typedef void(skick_factory_fn)(skick_actor_t *self, json_object *init);
typedef void(skick_handler_fn)(skick_actor_t *self, json_object *msg);
typedef void(skick_hook_fn)(skick_actor_t *self);

/* ---------------------------------------------------------------------------
   Registration inside a factory (the seed's decorators)
   ------------------------------------------------------------------------- */

/*  Register fn for messages whose "action" equals name. schema is NULL (any
    message) or schema text: the shorthand {"key": "integer", "opt?": "string"}
    or a full JSON Schema with "$schema" (see docs/schema.md); it is compiled
    once per shard and cached. A shorthand also admits the "cid" and "sender"
    keys that skick_call adds, so schema'd actions can be called. A message that fails the schema is not handed to
    fn: it is counted, logged, and if it opened a conversation the caller gets
    an error. While fn is suspended the actor handles no other message (replies
    to fn's own conversations still arrive). Reserved names (done, monitor,
    sentinel, receive_reply, end_conversation) are refused with ERESERVED.
    Registering a name again replaces it. Returns 0 or -1. */
int skick_action(skick_actor_t *self, const char *name, const char *schema,
                 skick_handler_fn *fn);

/*  Like skick_action, but fn runs as a conversation (the seed's
    @inst.conversation): while it is suspended the actor goes on handling
    other messages, and several may be in progress at once. */
int skick_conversation(skick_actor_t *self, const char *name, const char *schema,
                       skick_handler_fn *fn);

/*  Set the hook run once before the first message (may suspend; messages
    queue meanwhile), or when the actor stops (may suspend; bounded by the
    shard's stop timeout). A later call replaces the hook. */
void skick_on_start(skick_actor_t *self, skick_hook_fn *fn);
void skick_on_stop(skick_actor_t *self, skick_hook_fn *fn);

/*  Daemon flags. Without SKICK_RESTART the default is the dead man's switch:
    when the daemon returns or fails, on_failure runs and the actor stops with
    a "cancellation" sentinel. SKICK_RESTART restarts it after on_failure, with
    exponential back-off (100 ms doubling to 30 s; reset after 10 s of health).
    SKICK_DETACHED: neither; the daemon's end only runs on_failure. */
#define SKICK_DEAD_MANS_SWITCH 0x0
#define SKICK_RESTART 0x1
#define SKICK_DETACHED 0x2

/*  Register a daemon: fn runs on its own coroutine, started after on_start,
    concurrently with message handling. It should loop with skick_sleep (which
    fails when the actor stops) and return when asked to. on_failure may be
    NULL. Returns 0 or -1. */
int skick_daemon(skick_actor_t *self, const char *name, skick_hook_fn *fn, int flags,
                 skick_hook_fn *on_failure);

/*  Route sentinel messages about address to fn (the seed's
    inst.sentinel_handler). fn NULL removes the route. */
int skick_sentinel_handler(skick_actor_t *self, const char *address, skick_handler_fn *fn);

/*  Handle every sentinel message that has no per-address handler. */
void skick_default_sentinel(skick_actor_t *self, skick_handler_fn *fn);

/*  Allocate size zeroed bytes of actor state, owned by the actor and freed
    (after destructor, if not NULL) when it stops or is replaced. Replaces any
    earlier state. Returns the state (aborts on out of memory). */
void *skick_state_new(skick_actor_t *self, size_t size, void (*destructor)(void *state));

/*  The actor's state, or NULL. */
void *skick_state(skick_actor_t *self);

/* ---------------------------------------------------------------------------
   Identity and messaging
   ------------------------------------------------------------------------- */

/*  The actor's own address (borrowed, valid while the actor lives). */
const char *skick_self(skick_actor_t *self);

/*  The actor's type name (borrowed). */
const char *skick_type(skick_actor_t *self);

/*  The address of the sender of the message being handled, or "" when
    unknown (borrowed, valid until the handler returns or suspends). */
const char *skick_sender(skick_actor_t *self);

/*  Send *msg (a JSON object with an "action") to address; takes *msg.
    Local delivery passes the object itself, no copy. Errors (-1): EINVAL (not
    an object, bad address), EDEAD (no such actor), EFULL (mailbox full). A
    failed send is also counted as a dead letter. */
int skick_send(skick_actor_t *self, const char *address, json_object **msg);

/*  Deliver *msg to this actor after delay_ms (takes *msg). Returns a timer id
    (> 0) for skick_cancel, or 0 on error. Pending timers die with the actor. */
uint64_t skick_after(skick_actor_t *self, int64_t delay_ms, json_object **msg);

/*  Cancel a timer from skick_after. Returns 0, or -1 (ENOTFOUND) if it fired. */
int skick_cancel(skick_actor_t *self, uint64_t timer_id);

/*  Suspend the calling coroutine for ms milliseconds. Returns 0, or -1 with
    ESTOPPED when the actor is stopping (then return promptly). */
int skick_sleep(skick_actor_t *self, int64_t ms);

/*  Descriptor waits, for actors that drive a child process, a pipe or a
    socket themselves (tools.so's command executor: a child's pipes and its
    pidfd). Nothing else in this header lets actor code wait for a file
    descriptor without blocking the shard, and a thread per descriptor is
    what the reactor exists to avoid; this is poll(2) for one coroutine. */
#define SKICK_FD_READ 0x1  /* readable, or end of file / hang-up / error */
#define SKICK_FD_WRITE 0x2 /* writable, or hang-up / error */

typedef struct {
    int fd;      /* the descriptor (non-blocking is the caller's business) */
    int events;  /* SKICK_FD_READ | SKICK_FD_WRITE wanted; 0: ignored */
    int revents; /* set by skick_poll: what is ready (an error or hang-up
                    sets both bits asked for) */
} skick_pollfd_t;

/*  Suspend the calling coroutine until one of the n descriptors is ready
    for what it asks, or timeout_ms passes (< 0: no timeout; 0: only look).
    The descriptors are watched by the shard's reactor during the call only;
    one that is ready already answers at once, without a suspension. Returns
    the number of entries with revents set (0: the timeout passed), or -1
    with ESTOPPED (the actor is stopping: return promptly), ECONTEXT (not in
    a coroutine that may suspend), EINVAL (n is 0 or over 64, a negative fd,
    no events asked, or an fd the shard watches already). */
int skick_poll(skick_actor_t *self, skick_pollfd_t *fds, size_t n, int64_t timeout_ms);

/*  Milliseconds of the shard clock (monotonic; virtual under the test kit). */
int64_t skick_now(skick_actor_t *self);

/*  Log a line tagged with the actor's type and address. */
void skick_actor_log(skick_actor_t *self, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Build a JSON value from printf-style text; aborts on malformed JSON (it is
    for literals in code). Caller owns the result. Strings interpolated with %s
    are not escaped: use json_object_new_string for untrusted text. */
json_object *skick_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*  Read a member of obj with a default when it is missing or of another type. */
int64_t skick_get_int(json_object *obj, const char *key, int64_t dflt);
double skick_get_double(json_object *obj, const char *key, double dflt);
const char *skick_get_string(json_object *obj, const char *key, const char *dflt);
bool skick_get_bool(json_object *obj, const char *key, bool dflt);

/* ---------------------------------------------------------------------------
   Spawning, replacing, stopping, failing
   ------------------------------------------------------------------------- */

#define SKICK_MIXED 0x0       /* local if the type is here, else a remote shard */
#define SKICK_LOCAL 0x1       /* this shard only */
#define SKICK_REMOTE 0x2      /* another shard only */
#define SKICK_NO_MONITOR 0x10 /* do not make the spawner a monitor */

/*  Spawn an actor of type with init message *init (taken; NULL means {}).
    The factory runs now; on_start runs soon after, asynchronously (messages
    sent meanwhile queue). The shard always supervises it; the spawner becomes
    a monitor unless SKICK_NO_MONITOR. Returns the new address, or an empty one
    with ENOTYPE (no shard has the type), EINVAL, or ESTOPPED (the shard or the
    spawner is stopping). */
skick_addr_t skick_spawn(skick_actor_t *self, const char *type, json_object **init,
                         int flags);

/*  Spawn with an explicit list of extra monitors (n addresses). */
skick_addr_t skick_spawn_monitored(skick_actor_t *self, const char *type,
                                   json_object **init, int flags,
                                   const char *const *monitors, size_t n);

/*  Replace the actor's behaviour with that of the registered type (the
    seed's replace): clears actions, conversations (their partners get
    end_conversation), daemons, sentinel handlers, state and hooks (old on_stop
    runs first), then runs the new factory with *init (taken) and its on_start.
    Keeps address, mailbox and monitors. Takes effect when the current handler
    returns. Returns 0, or -1 with ENOTYPE. */
int skick_replace(skick_actor_t *self, const char *type, json_object **init);

/*  Same, with a factory function instead of a type name. */
int skick_replace_with(skick_actor_t *self, skick_factory_fn *factory, json_object **init);

/*  Stop the actor once the current handler returns: pending waits fail with
    ESTOPPED, on_stop runs, conversation partners are told, monitors get a
    "cancellation" sentinel. Idempotent. */
void skick_stop(skick_actor_t *self);

/*  The C form of raising: record reason and stop; monitors get an
    "exception" sentinel with "exception": reason. Return from the handler
    after calling it. Inside a daemon it fails only the daemon (its flags
    decide what happens next). */
void skick_fail(skick_actor_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*  Ask the actor at address to add this actor as a monitor (sends the seed's
    {"action":"monitor","address":self}). Returns 0 or -1 like skick_send. */
int skick_monitor(skick_actor_t *self, const char *address);

/* ---------------------------------------------------------------------------
   Conversations (the seed's Call / Respond, as coroutines)
   ------------------------------------------------------------------------- */

#define SKICK_TIMEOUT_DEFAULT (-1) /* the shard's default (5000 ms, --call-timeout) */

/*  Ask: send *msg (taken) to address as a conversation opener (with "cid"
    and "sender" added), suspend until the first reply, and close. Returns the
    reply's "message" value (caller owns), or NULL with ETIMEDOUT, ECLOSED (the
    partner ended it without answering), EPARTNER (it failed or stopped),
    EDEAD / EFULL (could not be delivered) or ESTOPPED. */
json_object *skick_call(skick_actor_t *self, const char *address, json_object **msg,
                        int64_t timeout_ms);

/*  Open a conversation with address, sending *greeting (taken) with "cid"
    and "sender". Returns the conversation (owned by the actor: close it with
    skick_conv_close; it is closed for you when the actor stops or is
    replaced), or NULL. */
skick_conv_t *skick_converse(skick_actor_t *self, const char *address,
                             json_object **greeting);

/*  Pick up a conversation opened by msg (which carries "cid" and "sender").
    Returns the conversation or NULL (EFORMAT when msg is not an opener). */
skick_conv_t *skick_respond(skick_actor_t *self, json_object *msg);

/*  Send the next turn (*msg taken) as receive_reply. 0 or -1. The
    conversation functions accept conv == NULL (failing with EINVAL), so a
    failed skick_respond or skick_converse can be passed on unchecked. */
int skick_conv_send(skick_conv_t *conv, json_object **msg);

/*  Suspend until the partner's next turn; returns its "message" (caller
    owns) or NULL with ETIMEDOUT, ECLOSED (the partner ended the
    conversation), EPARTNER (it failed or stopped) or ESTOPPED. timeout_ms 0
    only looks: a queued turn, the end, or ETIMEDOUT at once, not counted as
    a conversation that timed out (a responder checking, between its own
    waits, whether its caller has gone). */
json_object *skick_conv_recv(skick_conv_t *conv, int64_t timeout_ms);

/*  Send *msg and wait for the answer: skick_conv_send + skick_conv_recv. */
json_object *skick_conv_ask(skick_conv_t *conv, json_object **msg, int64_t timeout_ms);

/*  End the conversation: the partner gets end_conversation; conv is freed
    and *conv_p set to NULL. NULL-safe. */
void skick_conv_close(skick_conv_t **conv_p);

/*  Answer the conversation opener msg with one reply (*reply taken) and end
    it on our side: the one-line responder for skick_call. 0 or -1. */
int skick_reply(skick_actor_t *self, json_object *msg, json_object **reply);

/*  Start fn(self, msg) as a local conversation coroutine that runs alongside
    the mailbox (the seed's converse(message, prototype)). msg is taken and
    handed to fn borrowed. Returns 0 or -1. */
int skick_spawn_task(skick_actor_t *self, skick_handler_fn *fn, json_object **msg);

/* ---------------------------------------------------------------------------
   Services
   ------------------------------------------------------------------------- */

/*  Register this actor as a provider of service name. 0 or -1. */
int skick_register_service(skick_actor_t *self, const char *name);

/*  Withdraw this actor from service name (NULL: from every service). */
void skick_unregister_service(skick_actor_t *self, const char *name);

/*  A random live provider of name: SKICK_LOCAL (this shard), SKICK_MIXED
    (local if any, else remote) or SKICK_REMOTE. Empty address with ENOTFOUND
    when there is none. */
skick_addr_t skick_get_service(skick_actor_t *self, const char *name, int where);

/* ---------------------------------------------------------------------------
   Hashes: simple shared tables (in-process, broker or Redis backend)
   ------------------------------------------------------------------------- */

/*  Get key of table: returns the value (caller owns) or NULL with ENOTFOUND
    or EBACKEND. May suspend. */
json_object *skick_hash_get(skick_actor_t *self, const char *table, const char *key);

/*  Set key of table to *value (taken). May suspend. 0 or -1. */
int skick_hash_set(skick_actor_t *self, const char *table, const char *key,
                   json_object **value);

/*  Delete key. 0, or -1 with ENOTFOUND / EBACKEND. May suspend. */
int skick_hash_delete(skick_actor_t *self, const char *table, const char *key);

/*  Set *present to whether key exists. 0 or -1 (EBACKEND). May suspend. */
int skick_hash_contains(skick_actor_t *self, const char *table, const char *key,
                        bool *present);

/*  Set key of table to *value (taken) for ttl_ms milliseconds (> 0): then
    the key is gone, as if deleted. A later plain set makes it lasting.
    0 or -1 (EINVAL, EBACKEND, EUNREACH, ETIMEDOUT). May suspend. */
int skick_hash_set_ttl(skick_actor_t *self, const char *table, const char *key,
                       json_object **value, int64_t ttl_ms);

/*  Set key to *value (taken) only if it is absent, atomically: of several
    shards adding the same key at once exactly one stores it. ttl_ms > 0
    gives it a time to live as skick_hash_set_ttl does; 0: lasting. Returns
    1 when stored, 0 when the key was present (nothing changed), -1 on an
    error. May suspend. */
int skick_hash_add(skick_actor_t *self, const char *table, const char *key,
                   json_object **value, int64_t ttl_ms);

/*  Add delta to the integer stored at key, atomically (an absent key counts
    as 0 and is created; its time to live, if any, is kept) and set *value,
    if not NULL, to the result. -1 with ETYPE when the stored value is not an
    integer, EINVAL on overflow of int64_t. May suspend. */
int skick_hash_incr(skick_actor_t *self, const char *table, const char *key, int64_t delta,
                    int64_t *value);

/*  The keys of table as a JSON array of strings (caller owns), at most max
    of them (1..100000), in no particular order; *truncated (may be NULL)
    says whether the table has more. An absent or empty table gives [].
    NULL with EINVAL, EBACKEND, EUNREACH or ETIMEDOUT. May suspend. */
json_object *skick_hash_keys(skick_actor_t *self, const char *table, size_t max,
                             bool *truncated);

/* ---------------------------------------------------------------------------
   Modules and the shard (the seed's Skick object and Directory)
   ------------------------------------------------------------------------- */

/*  Register an actor type in the module's registry. 0 or -1 (EINVAL: bad
    name, or the name is taken). */
int skick_actor(skick_app_t *app, const char *type, skick_factory_fn *factory);

/*  Add a shard hook run once the shard is up (the seed's on_start(shard)):
    fn gets the shard actor, from which it may spawn, send and call. Each
    module may add its own; they run in module load order. If one fails
    (skick_fail) the shard does not start: the process exits with status 1. */
void skick_app_on_start(skick_app_t *app, skick_hook_fn *fn);

/*  Add a hook run first when the shard stops (the seed's Skick(on_stop)),
    while every actor is still alive; hooks run in reverse load order. */
void skick_app_on_stop(skick_app_t *app, skick_hook_fn *fn);

typedef void(skick_module_init_fn)(skick_app_t *app);

/*  Record a module; SKICK_MODULE calls it from a constructor when the
    program starts or the .so is loaded. name and init must be static. */
void skick_module_register(const char *name, skick_module_init_fn *init);

/*  Define a module (the seed's Directory). Put one per .so, or any number in
    a program that calls skick_run:

        SKICK_MODULE(app) { skick_actor(app, "accumulator", accumulator); }
*/
#define SKICK_MODULE(name)                                                          \
    static void skick_module_init_##name(skick_app_t *app);                         \
    __attribute__((constructor)) static void skick_module_ctor_##name(void)         \
    {                                                                               \
        skick_module_register(#name, skick_module_init_##name);                     \
    }                                                                               \
    static void skick_module_init_##name(skick_app_t *app)

/*  Run a shard with the modules linked into the program plus those named by
    --app (the seed's skick.start()). Parses argv (see skick-node --help),
    blocks until SIGINT/SIGTERM, and returns the process exit status: 0 after
    a clean stop, non-zero with a message when something cannot start. */
int skick_run(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#include "skick/session.h"
#endif
