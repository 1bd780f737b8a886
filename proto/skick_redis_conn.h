/*  skick_redis_conn - one hiredis async connection running hash operations, on any event loop

    What a shard's Redis hash backend (node/redis/node_redis.c, on the
    shard's reactor) and the broker's store (broker/broker_redis.c, on its
    poll loop) have in common: the connection's state machine (connect,
    the [AUTH] [SELECT] PING handshake, ready, lost, the back-off of the
    reconnects, each said once in the log), the operations in flight
    (pipelined on the one connection, bounded, each ended exactly once:
    with Redis's answer, EUNREACH when the connection goes, ETIMEDOUT past
    the optional bound) and what an answer means (the commands and the
    layout of proto/skick_redis). The event loop is the caller's: it
    attaches the connection through a skick_redis_loop_t (watch a
    descriptor, run a timer) and tells the connection when the descriptor
    is ready (skick_redis_conn_read/_write) and when a timer fired
    (skick_redis_conn_timer). One thread: the loop's.

    Ownership: skick_redis_conn_new's result is the caller's
    (skick_redis_conn_destroy). A skick_redis_pend_t is the connection's;
    the caller may hold it only until its done function runs or it is
    cancelled. A result's value is the done function's to take (set it to
    NULL); what is left is freed after the call.
*/
#ifndef SKICK_REDIS_CONN_H_INCLUDED
#define SKICK_REDIS_CONN_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skick_redis.h"

#define SKICK_REDIS_INFLIGHT 10000      /* default bound on operations in flight */
#define SKICK_REDIS_BACKOFF_MIN_MS 100  /* first reconnect delay, doubled per failure */
#define SKICK_REDIS_BACKOFF_MAX_MS 5000 /* reconnect delay at most */
#define SKICK_REDIS_CONNECT_MS 2000     /* a connection not ready by then is dropped */

typedef struct skick_redis_conn_t skick_redis_conn_t;
typedef struct skick_redis_pend_t skick_redis_pend_t;

/*  How the connection sits on the caller's loop: every function gets loop.
    io_add starts watching fd (no interest yet; 0, or -1 when the loop
    cannot), io_watch sets the interest, io_remove stops; a readable fd
    gets skick_redis_conn_read(c), a writable one skick_redis_conn_write(c).
    timer_add runs skick_redis_conn_timer(c, id) once after ms and returns
    its id (never 0); timer_cancel forgets one that has not fired. */
typedef struct {
    void *loop;
    int (*io_add)(void *loop, int fd, skick_redis_conn_t *c);
    void (*io_watch)(void *loop, int fd, bool read, bool write);
    void (*io_remove)(void *loop, int fd);
    uint64_t (*timer_add)(void *loop, int64_t ms, skick_redis_conn_t *c);
    void (*timer_cancel)(void *loop, uint64_t id);
} skick_redis_loop_t;

/*  The caller's settings; the texts are borrowed for the connection's life. */
typedef struct {
    size_t max_inflight; /* operations in flight at most (0: SKICK_REDIS_INFLIGHT) */
    int timeout_ms;      /* > 0: an operation unanswered by then ends ETIMEDOUT; 0: never
                            (the caller bounds its waits and cancels) */
    const char *ops;     /* what the log calls the operations ("hash operations") */
    const char *option;  /* where the URL came from, for the log ("--hash") */
    const char *ready;   /* the first connection's log line, before the URL ("hashes are
                            kept in") */
    /*  AUTH or SELECT refused (or a password missing), after the error is
        logged; ever_ready: a handshake succeeded once. NULL: nothing. */
    void (*refused)(void *arg, bool ever_ready);
    void *refused_arg;
} skick_redis_conn_opts_t;

/*  The hash operations (PROTOCOL.md "The hash operation"). */
typedef enum {
    SKICK_REDIS_GET,      /* GET t:k */
    SKICK_REDIS_SET,      /* SET t:k text [PX ms] [NX] */
    SKICK_REDIS_DELETE,   /* DEL t:k */
    SKICK_REDIS_CONTAINS, /* EXISTS t:k */
    SKICK_REDIS_INCR,     /* INCRBY t:k delta */
    SKICK_REDIS_KEYS,     /* SCAN 0 MATCH t:* COUNT 1000, step by step */
} skick_redis_cmd_t;

/*  One operation; everything borrowed for the call. */
typedef struct {
    skick_redis_cmd_t cmd;
    const char *table;  /* the table */
    const char *key;    /* the key (not for keys) */
    json_object *value; /* set: the value (not taken) */
    int64_t ttl_ms;     /* set: > 0 gives a time to live */
    bool nx;            /* set: only when absent */
    int64_t delta;      /* incr: what to add */
    size_t max;         /* keys: at most this many */
} skick_redis_op_t;

/*  What an answer means. code 0: value (get: the value; keys: an array of
    the key names), flag (set: stored, false for NX on a present key;
    contains: present; keys: the table holds more than max), num (incr:
    the new value). Otherwise the error code, with why (borrowed for the
    call): ENOTFOUND (get, delete), ETYPE and EINVAL (incr on a
    non-integer, an overflow), EINVAL (set: a TTL Redis refuses),
    EBACKEND (an error answer, a value that is not text, a refused login),
    EUNREACH (the connection went), ETIMEDOUT (past timeout_ms). */
typedef struct {
    int code;
    const char *why;
    json_object *value;
    bool flag;
    int64_t num;
} skick_redis_result_t;

/*  An operation's end: arg as given to skick_redis_conn_run. */
typedef void skick_redis_done_fn(void *arg, skick_redis_result_t *res);

/*  A connection to url (copied) on loop (copied) with settings o (NULL:
    defaults), connecting at once; never blocks but for a host name's
    resolution (give an address). A failure is logged and retried. Caller
    owns; never NULL. */
skick_redis_conn_t *skick_redis_conn_new(const skick_redis_url_t *url,
                                         const skick_redis_loop_t *loop,
                                         const skick_redis_conn_opts_t *o);

/*  Close the connection and the timers: every operation still pending
    ends EUNREACH ("stopping") first (cancel those whose asker is gone).
    NULL-safe; sets *self_p to NULL. */
void skick_redis_conn_destroy(skick_redis_conn_t **self_p);

/*  Queue op; done(arg, ...) runs later exactly once (never from inside
    this call) unless the operation is cancelled, with *pend (may be NULL)
    the handle to cancel it by. Returns 0, or the error (done never runs
    for it) with *why: EINVAL (a key or table the layout refuses, a value
    Redis cannot hold), EUNREACH (no connection), EBACKEND (Redis refused
    the login), EBACKLOG (max_inflight reached; logged, rate-limited). */
int skick_redis_conn_run(skick_redis_conn_t *self, const skick_redis_op_t *op,
                         skick_redis_done_fn *done, void *arg, skick_redis_pend_t **pend,
                         const char **why);

/*  Forget pend's asker: its done never runs; its answer, when it comes, is
    dropped (it counts in flight until then). */
void skick_redis_conn_cancel(skick_redis_conn_t *self, skick_redis_pend_t *pend);

/*  The loop's calls: the descriptor is readable (or in error), writable;
    timer id fired. */
void skick_redis_conn_read(skick_redis_conn_t *self);
void skick_redis_conn_write(skick_redis_conn_t *self);
void skick_redis_conn_timer(skick_redis_conn_t *self, uint64_t id);

/*  The URL for logs and stats, the password as *** (borrowed). */
const char *skick_redis_conn_shown(const skick_redis_conn_t *self);

/*  Whether the handshake is done and operations go out. */
bool skick_redis_conn_ready(const skick_redis_conn_t *self);

/*  Operations sent whose answer has not come (cancelled and timed-out ones
    included until Redis answers them). */
size_t skick_redis_conn_inflight(const skick_redis_conn_t *self);

#endif
