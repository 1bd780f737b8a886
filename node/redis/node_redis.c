/*  node_redis - the Redis hash backend: hiredis async on the shard's reactor

    One connection per shard (proto/skick_redis_conn: the handshake, the
    reconnects, the pipelined operations and what their answers mean),
    driven by the shard's own loop: the table below attaches it with
    node_io_add_rw and node_io_watch (hiredis's read and write interest)
    and node_timer_add (no thread, no blocking connect). What is this
    file's: turning a hash call into an operation and its result into the
    waiter's, and forgetting a waiter that gives up.

    Each waiting call is an s_ask_t, found by `pending` (wait -> ask); a
    waiter that gives up (timeout, stop) is forgotten there (cancel) and
    its operation cancelled, so a late answer touches nothing: the result
    pointers live on the waiter's stack. The connection has no answer
    bound of its own (timeout_ms 0): the waiter's is the call timeout.
*/
#include "node_redis.h"

#include "skick_redis_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    node_shard_t *sh;          /* the shard whose loop drives the connection */
    node_redis_opts_t opts;    /* bounds, exit on refusal */
    skick_redis_conn_t *conn;  /* NULL: a bad URL, every operation fails with EBACKEND */
    node_u64map_t pending;     /* (uintptr_t) node_wait_t* -> s_ask_t* */
} s_redis_t;

typedef struct {
    s_redis_t *r;
    node_wait_t *w;            /* the waiter */
    skick_redis_pend_t *pend;  /* its operation, to cancel */
    json_object **out;         /* get: the value; keys: the array */
    bool *flag;                /* contains: present; set: stored; keys: truncated */
    int64_t *num;              /* incr: the result */
} s_ask_t;

/* ------------------------------------------------------------------------- */
/* The connection on the shard's loop                                          */

static void s_on_read(node_shard_t *sh, int fd, void *arg)
{
    skick_redis_conn_read(arg);
}

static void s_on_write(node_shard_t *sh, int fd, void *arg)
{
    skick_redis_conn_write(arg);
}

static void s_on_timer(node_shard_t *sh, void *arg, uint64_t id)
{
    skick_redis_conn_timer(arg, id);
}

static int s_io_add(void *loop, int fd, skick_redis_conn_t *c)
{
    return node_io_add_rw(loop, fd, s_on_read, s_on_write, c);
}

static void s_io_watch(void *loop, int fd, bool read, bool write)
{
    node_io_watch(loop, fd, read, write);
}

static void s_io_remove(void *loop, int fd)
{
    node_io_remove(loop, fd);
}

static uint64_t s_timer_add(void *loop, int64_t ms, skick_redis_conn_t *c)
{
    return node_timer_add(loop, ms, s_on_timer, c);
}

static void s_timer_cancel(void *loop, uint64_t id)
{
    node_timer_cancel(loop, id);
}

/*  The first connection's AUTH or SELECT was refused: a configuration
    error, not an outage (node_redis_opts_t.exit_on_refusal). */
static void s_refused(void *arg, bool ever_ready)
{
    s_redis_t *r = arg;
    if (!ever_ready && r->opts.exit_on_refusal && !r->sh->stopping) {
        SKICK_LOG(SKICK_LOG_ERROR, "redis", "the first connection to Redis was refused: "
                  "stopping the shard");
        r->sh->exit_status = 1;
        node_shard_stop(r->sh);
    }
}

/* ------------------------------------------------------------------------- */
/* Operations                                                                 */

static void s_done(void *arg, skick_redis_result_t *res)
{
    s_ask_t *a = arg;
    node_u64map_del(&a->r->pending, (uintptr_t) a->w);
    if (res->code == SKICK_OK) {
        if (a->out) {
            *a->out = res->value;
            res->value = NULL;
        }
        if (a->flag)
            *a->flag = res->flag;
        if (a->num)
            *a->num = res->num;
    }
    node_wait_complete(a->w, res->code);
    free(a);
}

/*  Run op for waiter w, the results through the pointers of res. */
static void s_run(void *state, const skick_redis_op_t *op, node_wait_t *w, s_ask_t res)
{
    s_redis_t *r = state;
    if (!r->conn) {
        node_wait_complete(w, SKICK_EBACKEND);
        return;
    }
    s_ask_t *a = node_malloc(sizeof *a);
    *a = res;
    a->r = r;
    a->w = w;
    const char *why;
    int err = skick_redis_conn_run(r->conn, op, s_done, a, &a->pend, &why);
    if (err) {
        free(a);
        node_wait_complete(w, err);
        return;
    }
    node_u64map_put(&r->pending, (uintptr_t) w, a);
}

static void s_get(void *state, const char *table, const char *key, json_object **out,
                  node_wait_t *w)
{
    s_run(state, &(skick_redis_op_t){.cmd = SKICK_REDIS_GET, .table = table, .key = key}, w,
          (s_ask_t){.out = out});
}

static void s_del(void *state, const char *table, const char *key, node_wait_t *w)
{
    s_run(state, &(skick_redis_op_t){.cmd = SKICK_REDIS_DELETE, .table = table, .key = key}, w,
          (s_ask_t){0});
}

static void s_contains(void *state, const char *table, const char *key, bool *out,
                       node_wait_t *w)
{
    s_run(state, &(skick_redis_op_t){.cmd = SKICK_REDIS_CONTAINS, .table = table, .key = key},
          w, (s_ask_t){.flag = out});
}

static void s_incr(void *state, const char *table, const char *key, int64_t delta,
                   int64_t *out, node_wait_t *w)
{
    s_run(state,
          &(skick_redis_op_t){.cmd = SKICK_REDIS_INCR, .table = table, .key = key,
                              .delta = delta},
          w, (s_ask_t){.num = out});
}

static void s_set_ex(void *state, const char *table, const char *key, json_object **value,
                     int64_t ttl_ms, bool nx, bool *stored, node_wait_t *w)
{
    *stored = false; /* *value stays the caller's: the command holds its text */
    s_run(state,
          &(skick_redis_op_t){.cmd = SKICK_REDIS_SET, .table = table, .key = key,
                              .value = *value, .ttl_ms = ttl_ms, .nx = nx},
          w, (s_ask_t){.flag = stored});
}

static void s_keys(void *state, const char *table, size_t max, json_object **out,
                   bool *truncated, node_wait_t *w)
{
    *truncated = false;
    s_run(state, &(skick_redis_op_t){.cmd = SKICK_REDIS_KEYS, .table = table, .max = max}, w,
          (s_ask_t){.out = out, .flag = truncated});
}

static void s_cancel(void *state, node_wait_t *w)
{
    s_redis_t *r = state;
    s_ask_t *a = node_u64map_del(&r->pending, (uintptr_t) w);
    if (a) {
        skick_redis_conn_cancel(r->conn, a->pend); /* its answer frees nothing of ours */
        free(a);
    }
}

/* ------------------------------------------------------------------------- */
/* Opening and closing                                                        */

void *node_redis_open(node_shard_t *sh, const skick_redis_url_t *url,
                      const node_redis_opts_t *o)
{
    s_redis_t *r = node_calloc(1, sizeof *r);
    r->sh = sh;
    node_u64map_init(&r->pending);
    if (o)
        r->opts = *o;
    if (!url)
        return r;
    skick_redis_loop_t loop = {.loop = sh, .io_add = s_io_add, .io_watch = s_io_watch,
                               .io_remove = s_io_remove, .timer_add = s_timer_add,
                               .timer_cancel = s_timer_cancel};
    r->conn = skick_redis_conn_new(
        url, &loop,
        &(skick_redis_conn_opts_t){.max_inflight = r->opts.max_inflight,
                                   .ops = "hash operations", .option = "--hash",
                                   .ready = "hashes are kept in", .refused = s_refused,
                                   .refused_arg = r});
    return r;
}

static void *s_open(node_shard_t *sh, const char *text)
{
    skick_redis_url_t url;
    char err[512];
    if (skick_redis_url_parse(text, &url, err, sizeof err) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "redis", "%s: hash operations fail with EBACKEND", err);
        return node_redis_open(sh, NULL, NULL);
    }
    return node_redis_open(sh, &url, NULL);
}

static void s_close(void *state)
{
    s_redis_t *r = state;
    /* The waiters are gone with their fibers: forget them all first. */
    for (size_t i = 0; i < r->pending.cap; i++)
        if (r->pending.keys[i]) {
            s_ask_t *a = r->pending.vals[i];
            skick_redis_conn_cancel(r->conn, a->pend);
            free(a);
        }
    node_u64map_free(&r->pending);
    skick_redis_conn_destroy(&r->conn); /* every operation's answer runs (NULL) and is dropped */
    free(r);
}

size_t node_redis_inflight(void *state)
{
    s_redis_t *r = state;
    return r->conn ? skick_redis_conn_inflight(r->conn) : 0;
}

node_hash_backend_t node_hash_redis = {
    .name = "redis",
    .open = s_open,
    .close = s_close,
    .get = s_get,
    .set_ex = s_set_ex,
    .del = s_del,
    .contains = s_contains,
    .incr = s_incr,
    .keys = s_keys,
    .cancel = s_cancel,
};
