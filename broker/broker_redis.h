/*  broker_redis - the cluster's hash store in Redis (skick-broker --hash URL)

    Told by broker_control.c (the hash op: broker_redis_run) and by
    broker_main.c (created, destroyed, and driven from the poll loop: the
    descriptor and its interest, the I/O, the timer). Uses broker_util.c
    and proto/skick_redis_conn (the connection, the commands, the key
    layout and the value mapping the shards' Redis backend uses, so a
    shard with --hash and the broker with --hash see the same data). The
    operation (skick_redis_op_t) is the connection's.

    Asynchronous: an operation is queued on the one connection (pipelined)
    and answered later through the done function given with it, exactly
    once per accepted operation: with Redis's
    answer, EUNREACH when the connection goes (or is not there), ETIMEDOUT
    when Redis has not answered within the bound. Nothing here blocks the
    broker except a host name's resolution at connect (give an address).
*/
#ifndef BROKER_REDIS_H_INCLUDED
#define BROKER_REDIS_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skick_redis_conn.h"

typedef struct broker_redis_t broker_redis_t;

#define BROKER_REDIS_INFLIGHT SKICK_REDIS_INFLIGHT /* default bound on operations in flight */
#define BROKER_REDIS_TIMEOUT_MS 5000 /* default answer bound (the shards' call timeout) */

/*  The answer of an accepted operation: arg as given to broker_redis_run,
    code 0 with result (taken; the hash op's result: the value, null, a
    boolean, the integer or {"keys", "truncated"}) or an error code with
    why (borrowed for the call). */
typedef void broker_redis_done_fn(void *arg, int code, json_object *result, const char *why);

/*  broker_redis_new: a store in the Redis at url (copied), connecting at
    once (a failure is logged and retried: the broker starts all the same).
    At most max_inflight operations in flight (0: BROKER_REDIS_INFLIGHT),
    each answered within timeout_ms (0: BROKER_REDIS_TIMEOUT_MS). Caller
    owns; never NULL. */
broker_redis_t *broker_redis_new(const skick_redis_url_t *url, size_t max_inflight, int timeout_ms);

/*  broker_redis_destroy: close the connection; every operation still
    pending is answered EUNREACH first. NULL-safe; sets *self_p to NULL. */
void broker_redis_destroy(broker_redis_t **self_p);

/*  broker_redis_run: queue op; done(arg, ...) gets its answer. 0:
    accepted, done runs later exactly once (never from inside this call). Otherwise the error
    code (done never runs for it) with *why: EINVAL (a key or table the
    layout refuses, a value Redis cannot hold), EUNREACH (no connection),
    EBACKEND (Redis refused the login), EBACKLOG (max_inflight reached). */
int broker_redis_run(broker_redis_t *self, const skick_redis_op_t *op, broker_redis_done_fn *done,
                     void *arg, const char **why);

/*  broker_redis_fd: the connection's descriptor and the poll events
    hiredis wants on it (*events), or -1 when there is none. */
int broker_redis_fd(broker_redis_t *self, short *events);

/*  broker_redis_io: the descriptor is ready (revents from poll). */
void broker_redis_io(broker_redis_t *self, short revents);

/*  broker_redis_tick: the time-driven part, at monotonic time now: answer
    ETIMEDOUT what waited past the bound, drop a connection not ready in
    time, reconnect when the back-off is over. Cheap: call it every round. */
void broker_redis_tick(broker_redis_t *self, int64_t now);

/*  broker_redis_shown: the URL for logs and stats, the password as ***
    (borrowed). */
const char *broker_redis_shown(const broker_redis_t *self);

/*  broker_redis_connected: whether the connection is ready. */
bool broker_redis_connected(const broker_redis_t *self);

/*  broker_redis_inflight: operations sent whose answer has not come (timed
    out ones included until Redis answers them). */
size_t broker_redis_inflight(const broker_redis_t *self);

#endif
