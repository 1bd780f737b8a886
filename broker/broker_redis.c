/*  broker_redis - the cluster's hash store in Redis: hiredis async on the broker's poll loop

    With --hash URL the broker keeps the tables of the hash op in Redis,
    with the layout, values and commands of the shards' Redis backend: the
    connection is proto/skick_redis_conn's (the handshake, the reconnects,
    the pipelined operations, each answered exactly once: with Redis's
    answer, EUNREACH when the connection goes, ETIMEDOUT past timeout_ms).
    What is this file's: the connection's place on broker_main.c's poll
    loop, and an answer turned into the hash op's result.

    The loop: the table below records hiredis's descriptor and interest
    (main polls it: broker_redis_fd, and calls broker_redis_io when it is
    ready), and keeps the connection's timers (at most three at a time:
    the reconnect, the handshake's deadline, the oldest operation's
    deadline) as times that broker_redis_tick, run every round of the loop,
    compares with the clock. One thread: the broker's.
*/
#include "broker_redis.h"
#include "broker_util.h"

#include <assert.h>
#include <czmq.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skick/err.h"

#define S_TIMERS 4 /* the connection's timers at once, at most (it uses three) */

struct broker_redis_t {
    skick_redis_conn_t *conn;  /* the connection */
    int fd;                    /* its descriptor, -1 when none */
    bool reading, writing;     /* hiredis's interest on it */
    struct {
        uint64_t id;           /* 0: a free slot */
        int64_t at;            /* when it fires (monotonic ms) */
    } timers[S_TIMERS];
    uint64_t next_timer;       /* the last id given */
};

/*  One request: its asker and how to read the answer. */
typedef struct {
    broker_redis_done_fn *done;
    void *arg;
    skick_redis_cmd_t cmd;
    bool nx;
} s_req_t;

/* ------------------------------------------------------------------------- */
/* The connection on the poll loop                                             */

static int s_io_add(void *loop, int fd, skick_redis_conn_t *c)
{
    (void) c;
    broker_redis_t *r = loop;
    r->fd = fd;
    r->reading = r->writing = false;
    return 0;
}

static void s_io_watch(void *loop, int fd, bool read, bool write)
{
    (void) fd;
    broker_redis_t *r = loop;
    r->reading = read;
    r->writing = write;
}

static void s_io_remove(void *loop, int fd)
{
    (void) fd;
    broker_redis_t *r = loop;
    r->fd = -1;
    r->reading = r->writing = false;
}

static uint64_t s_timer_add(void *loop, int64_t ms, skick_redis_conn_t *c)
{
    (void) c;
    broker_redis_t *r = loop;
    for (int i = 0; i < S_TIMERS; i++)
        if (!r->timers[i].id) {
            r->timers[i].id = ++r->next_timer;
            r->timers[i].at = zclock_mono() + ms;
            return r->timers[i].id;
        }
    assert(!"skick_redis_conn uses three timers at most");
    abort();
}

static void s_timer_cancel(void *loop, uint64_t id)
{
    broker_redis_t *r = loop;
    for (int i = 0; i < S_TIMERS; i++)
        if (r->timers[i].id == id)
            r->timers[i].id = 0;
}

/* ------------------------------------------------------------------------- */
/* Requests                                                                   */

/*  The hash op's result for an answer res to q. */
static json_object *s_result(const s_req_t *q, skick_redis_result_t *res)
{
    json_object *v = NULL;
    switch (q->cmd) {
    case SKICK_REDIS_GET:
        v = res->value;
        res->value = NULL;
        break;
    case SKICK_REDIS_SET:
        if (q->nx)
            v = json_object_new_boolean(res->flag);
        break;
    case SKICK_REDIS_DELETE:
        break;
    case SKICK_REDIS_CONTAINS:
        v = json_object_new_boolean(res->flag);
        break;
    case SKICK_REDIS_INCR:
        v = json_object_new_int64(res->num);
        break;
    case SKICK_REDIS_KEYS:
        v = json_object_new_object();
        json_object_object_add(v, "keys", res->value);
        json_object_object_add(v, "truncated", json_object_new_boolean(res->flag));
        res->value = NULL;
        break;
    }
    return v;
}

static void s_done(void *arg, skick_redis_result_t *res)
{
    s_req_t *q = arg;
    if (res->code)
        q->done(q->arg, res->code, NULL, res->why);
    else
        q->done(q->arg, 0, s_result(q, res), NULL);
    free(q);
}

int broker_redis_run(broker_redis_t *self, const skick_redis_op_t *op, broker_redis_done_fn *done,
                     void *arg, const char **why)
{
    assert(self && op && done && arg);
    s_req_t *q = broker_alloc(sizeof *q);
    *q = (s_req_t){.done = done, .arg = arg, .cmd = op->cmd, .nx = op->nx};
    int code = skick_redis_conn_run(self->conn, op, s_done, q, NULL, why);
    if (code)
        free(q);
    return code;
}

/* ------------------------------------------------------------------------- */
/* The loop's side                                                            */

broker_redis_t *broker_redis_new(const skick_redis_url_t *url, size_t max_inflight, int timeout_ms)
{
    assert(url);
    broker_redis_t *r = broker_alloc(sizeof *r);
    r->fd = -1;
    skick_redis_loop_t loop = {.loop = r, .io_add = s_io_add, .io_watch = s_io_watch,
                               .io_remove = s_io_remove, .timer_add = s_timer_add,
                               .timer_cancel = s_timer_cancel};
    r->conn = skick_redis_conn_new(
        url, &loop,
        &(skick_redis_conn_opts_t){.max_inflight = max_inflight,
                                   .timeout_ms = timeout_ms > 0 ? timeout_ms
                                                                : BROKER_REDIS_TIMEOUT_MS,
                                   .ops = "hash requests", .option = "the broker's --hash",
                                   .ready = "the hash store is"});
    return r;
}

void broker_redis_destroy(broker_redis_t **self_p)
{
    broker_redis_t *r = *self_p;
    if (!r)
        return;
    skick_redis_conn_destroy(&r->conn); /* every request still pending is answered first */
    free(r);
    *self_p = NULL;
}

int broker_redis_fd(broker_redis_t *self, short *events)
{
    *events = (short) ((self->reading ? POLLIN : 0) | (self->writing ? POLLOUT : 0));
    return self->fd;
}

void broker_redis_io(broker_redis_t *self, short revents)
{
    if (self->fd >= 0 && (revents & (POLLIN | POLLERR | POLLHUP)))
        skick_redis_conn_read(self->conn); /* may drop the connection: self->fd is -1 then */
    if (self->fd >= 0 && (revents & POLLOUT))
        skick_redis_conn_write(self->conn);
}

void broker_redis_tick(broker_redis_t *self, int64_t now)
{
    for (int i = 0; i < S_TIMERS; i++) {
        uint64_t id = self->timers[i].id;
        if (id && self->timers[i].at <= now) {
            self->timers[i].id = 0; /* the call may take the slot again */
            skick_redis_conn_timer(self->conn, id);
        }
    }
}

const char *broker_redis_shown(const broker_redis_t *self)
{
    return skick_redis_conn_shown(self->conn);
}

bool broker_redis_connected(const broker_redis_t *self)
{
    return skick_redis_conn_ready(self->conn);
}

size_t broker_redis_inflight(const broker_redis_t *self)
{
    return skick_redis_conn_inflight(self->conn);
}
