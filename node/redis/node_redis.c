/*  node_redis - the Redis hash backend: hiredis async on the shard's reactor

    One connection per shard, driven by the shard's own loop (node_io_add_rw
    and node_io_watch carry hiredis's read and write interest; no thread, no
    blocking connect). Operations are pipelined: each one is a command
    appended to the connection, and many coroutines' commands are in flight
    at once; Redis answers in order and each answer completes its waiter.
    The layout and the values are proto/skick_redis.c's.

    An operation is an s_op_t, owned by hiredis's callback once its command
    is queued: the callback runs exactly once (with the answer, or with NULL
    when the connection is gone) and frees it. The waiter is found by
    `pending` (wait -> op); a waiter that gives up (timeout, stop) is
    forgotten there (cancel) and its op's w set to NULL, so a late answer
    touches nothing: the result pointers live on the waiter's stack.

    States: no connection (ops fail at once: EUNREACH, or EBACKEND after a
    refused AUTH/SELECT), connecting (ops are queued behind the handshake
    [AUTH] [SELECT] PING and fail with the connection if it fails), ready.
    A lost or failed connection is retried after a back-off of 100 ms
    doubling to 5 s; the loss is logged once and the recovery once. At most
    max_inflight operations are in flight: beyond, EBACKLOG at once, so
    only the coroutines that asked wait on a slow Redis.

    hiredis frees its context itself after a disconnect, from inside
    redisAsyncHandleRead/Write (ev.cleanup runs first, maybe twice in
    0.14): s_ev_cleanup forgets the context and its descriptor, and the io
    callbacks look at r->ac again after each hiredis call.

    One file (about 650 lines) on purpose: the connection's states and the
    operations' lifecycle (queued, answered, cancelled, failed with the
    connection) are one state machine, read together.
*/
#include "node_redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_DOWN, S_CONNECTING, S_READY } s_state_t;

typedef struct {
    node_shard_t *sh;            /* the shard whose loop drives the connection */
    skick_redis_url_t url;       /* where, and how to log in */
    char shown[700];             /* the URL for logs, without the password */
    node_redis_opts_t opts;      /* bounds, exit on refusal */
    bool inert;                  /* a bad URL: every operation fails with EBACKEND */
    bool closing;                /* close in progress: no reconnect, no waiter touched */
    redisAsyncContext *ac;       /* the connection, NULL when down */
    int fd;                      /* its descriptor while registered, else -1 */
    bool reading, writing;       /* hiredis's interest */
    s_state_t state;             /* see above */
    bool refused;                /* the last handshake was refused (AUTH, SELECT) */
    bool ever_ready;             /* a handshake succeeded once */
    bool down_logged;            /* the loss (or failure to connect) was logged */
    char why[256];               /* why the connection went, for the log */
    int64_t backoff_ms;          /* next reconnect delay */
    uint64_t retry_timer;        /* reconnect timer, 0 none */
    uint64_t connect_timer;      /* handshake deadline timer, 0 none */
    size_t inflight;             /* ops whose callback has not run */
    node_u64map_t pending;       /* (uintptr_t) node_wait_t* -> s_op_t* with a waiter */
} s_redis_t;

typedef enum { OP_GET, OP_SET, OP_DEL, OP_EXISTS, OP_INCR, OP_SCAN } s_kind_t;

typedef struct {
    s_redis_t *r;
    node_wait_t *w;     /* the waiter, NULL once it gave up or was completed */
    s_kind_t kind;      /* what the answer means */
    json_object **out;  /* get: the value; scan: the array */
    bool *flag;         /* exists: present; set: stored; scan: truncated */
    int64_t *num;       /* incr: the result */
    bool nx;            /* set: only if absent (a nil answer is "present") */
    /* scan only */
    json_object *keys;  /* keys found so far */
    node_strmap_t seen; /* the same key may come twice in a SCAN */
    size_t max;         /* keys wanted at most */
    size_t prefix;      /* length of "<table>:" */
    char *match;        /* MATCH pattern */
} s_op_t;

static void s_connect(s_redis_t *r);

/* ------------------------------------------------------------------------- */
/* The event adapter: hiredis's interest as node_io_watch                     */

static void s_watch(s_redis_t *r)
{
    if (r->fd >= 0)
        node_io_watch(r->sh, r->fd, r->reading, r->writing);
}

/*  hiredis turns its interest on and off through these four. */
static void s_interest(void *p, bool *which, bool on)
{
    *which = on;
    s_watch(p);
}

static void s_ev_add_read(void *p) { s_interest(p, &((s_redis_t *) p)->reading, true); }
static void s_ev_del_read(void *p) { s_interest(p, &((s_redis_t *) p)->reading, false); }
static void s_ev_add_write(void *p) { s_interest(p, &((s_redis_t *) p)->writing, true); }
static void s_ev_del_write(void *p) { s_interest(p, &((s_redis_t *) p)->writing, false); }

static void s_on_read(node_shard_t *sh, int fd, void *arg)
{
    s_redis_t *r = arg;
    if (r->ac)
        redisAsyncHandleRead(r->ac); /* may free it: s_ev_cleanup clears r->ac */
}

static void s_on_write(node_shard_t *sh, int fd, void *arg)
{
    s_redis_t *r = arg;
    if (r->ac)
        redisAsyncHandleWrite(r->ac);
}

static void s_retry(node_shard_t *sh, void *arg, uint64_t id)
{
    s_redis_t *r = arg;
    r->retry_timer = 0;
    s_connect(r);
}

/*  The connection is gone (or never came): log it once, retry later. */
static void s_gone(s_redis_t *r, const char *why)
{
    s_state_t was = r->state;
    r->state = S_DOWN;
    r->ac = NULL;
    if (r->fd >= 0)
        node_io_remove(r->sh, r->fd);
    r->fd = -1;
    r->reading = r->writing = false;
    if (r->connect_timer)
        node_timer_cancel(r->sh, r->connect_timer);
    r->connect_timer = 0;
    if (r->closing)
        return;
    if (!r->down_logged && !r->refused) {
        if (was == S_READY)
            SKICK_LOG(SKICK_LOG_WARNING, "redis", "lost the connection to %s (%s): hash "
                      "operations fail with EUNREACH until it is back; reconnecting",
                      r->shown, why);
        else
            SKICK_LOG(SKICK_LOG_WARNING, "redis", "cannot connect to %s (%s): hash operations "
                      "fail with EUNREACH until it answers; retrying (is redis-server "
                      "running?)", r->shown, why);
        r->down_logged = true;
    }
    if (was == S_READY)
        r->backoff_ms = NODE_REDIS_BACKOFF_MIN_MS;
    r->retry_timer = node_timer_add(r->sh, r->backoff_ms, s_retry, r);
    r->backoff_ms *= 2;
    if (r->backoff_ms > NODE_REDIS_BACKOFF_MAX_MS)
        r->backoff_ms = NODE_REDIS_BACKOFF_MAX_MS;
}

static void s_ev_cleanup(void *p)
{
    s_redis_t *r = p;
    if (!r->ac)
        return; /* 0.14 calls it again from __redisAsyncFree */
    const char *why = r->why[0] ? r->why : r->ac->err ? r->ac->errstr : "closed";
    char copy[sizeof r->why];
    snprintf(copy, sizeof copy, "%s", why);
    r->why[0] = '\0';
    s_gone(r, copy);
}

/* ------------------------------------------------------------------------- */
/* Connecting: [AUTH] [SELECT] PING before any operation                      */

/*  The handshake failed: AUTH or SELECT refused, or a password missing. */
static void s_refused(s_redis_t *r, const char *what, const char *answer)
{
    if (strncmp(answer, "NOAUTH", 6) == 0)
        what = "access without a password";
    if (!r->refused)
        SKICK_LOG(SKICK_LOG_ERROR, "redis", "%s refused %s: %s; hash operations fail with "
                  "EBACKEND (check the user, password and database in --hash)", r->shown,
                  what, answer);
    r->refused = true;
    snprintf(r->why, sizeof r->why, "%s refused", what);
    if (!r->ever_ready && r->opts.exit_on_refusal && !r->sh->stopping) {
        SKICK_LOG(SKICK_LOG_ERROR, "redis", "the first connection to Redis was refused: "
                  "stopping the shard");
        r->sh->exit_status = 1;
        node_shard_stop(r->sh);
    }
    redisAsyncFree(r->ac); /* deferred by hiredis until this callback returns */
}

static void s_on_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    s_redis_t *r = ac->ev.data;
    const char *what = privdata;
    redisReply *rep = reply;
    if (!rep || r->closing || r->ac != ac)
        return; /* the connection went: s_ev_cleanup saw to it */
    if (rep->type == REDIS_REPLY_ERROR) {
        s_refused(r, what, rep->str);
        return;
    }
    if (strcmp(what, "PING") != 0 || r->state != S_CONNECTING)
        return;
    r->state = S_READY;
    r->backoff_ms = NODE_REDIS_BACKOFF_MIN_MS;
    if (r->connect_timer)
        node_timer_cancel(r->sh, r->connect_timer);
    r->connect_timer = 0;
    if (r->down_logged || r->refused)
        SKICK_LOG(SKICK_LOG_NOTICE, "redis", "connected to %s again", r->shown);
    else if (!r->ever_ready)
        SKICK_LOG(SKICK_LOG_INFO, "redis", "hashes are kept in %s", r->shown);
    r->down_logged = r->refused = false;
    r->ever_ready = true;
}

static void s_connect_timeout(node_shard_t *sh, void *arg, uint64_t id)
{
    s_redis_t *r = arg;
    r->connect_timer = 0;
    if (r->ac && r->state == S_CONNECTING) {
        snprintf(r->why, sizeof r->why, "not ready within %d ms", NODE_REDIS_CONNECT_MS);
        redisAsyncFree(r->ac); /* its ops fail with EUNREACH, s_ev_cleanup retries */
    }
}

static void s_connect(s_redis_t *r)
{
    redisAsyncContext *ac = r->url.unix_socket ? redisAsyncConnectUnix(r->url.path)
                                               : redisAsyncConnect(r->url.host, r->url.port);
    if (!ac || ac->err) {
        char why[256];
        snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac); /* no adapter yet: nothing of ours is called */
        r->state = S_CONNECTING;
        s_gone(r, why);
        return;
    }
    r->ac = ac;
    r->fd = ac->c.fd;
    r->state = S_CONNECTING;
    if (node_io_add_rw(r->sh, r->fd, s_on_read, s_on_write, r) != 0)
        r->fd = -1; /* cannot happen: a fresh descriptor */
    ac->ev.data = r;
    ac->ev.addRead = s_ev_add_read;
    ac->ev.delRead = s_ev_del_read;
    ac->ev.addWrite = s_ev_add_write;
    ac->ev.delWrite = s_ev_del_write;
    ac->ev.cleanup = s_ev_cleanup;
    r->connect_timer = node_timer_add(r->sh, NODE_REDIS_CONNECT_MS, s_connect_timeout, r);
    if (r->url.has_password) {
        if (r->url.user[0])
            redisAsyncCommand(ac, s_on_handshake, "AUTH", "AUTH %s %s", r->url.user,
                              r->url.password);
        else
            redisAsyncCommand(ac, s_on_handshake, "AUTH", "AUTH %s", r->url.password);
    }
    if (r->url.db)
        redisAsyncCommand(ac, s_on_handshake, "SELECT", "SELECT %d", r->url.db);
    redisAsyncCommand(ac, s_on_handshake, "PING", "PING");
}

/* ------------------------------------------------------------------------- */
/* Operations                                                                 */

static void s_op_free(s_op_t *op)
{
    if (op->kind == OP_SCAN) {
        json_object_put(op->keys);
        node_strmap_free(&op->seen, NULL);
        free(op->match);
    }
    free(op);
}

/*  Complete op's waiter, if it still waits; the caller frees op. */
static void s_done(s_op_t *op, int err)
{
    if (!op->w)
        return;
    node_u64map_del(&op->r->pending, (uintptr_t) op->w);
    node_wait_complete(op->w, err);
    op->w = NULL;
}

/*  Why an operation cannot be sent now (0: it can). */
static int s_refuse_now(s_redis_t *r)
{
    if (r->inert)
        return SKICK_EBACKEND;
    if (!r->ac)
        return r->refused ? SKICK_EBACKEND : SKICK_EUNREACH;
    if (r->inflight >= r->opts.max_inflight) {
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "redis", "%zu hash operations in flight to %s "
                         "(the bound): refusing more with EBACKLOG; is Redis slow?",
                         r->inflight, r->shown);
        return SKICK_EBACKLOG;
    }
    return 0;
}

static void s_on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/*  Queue argv for op (taken: freed and its waiter completed on failure). */
static void s_send(s_op_t *op, int argc, const char **argv, const size_t *lens)
{
    s_redis_t *r = op->r;
    if (!r->ac || redisAsyncCommandArgv(r->ac, s_on_reply, op, argc, argv, lens) != REDIS_OK) {
        s_done(op, r->refused ? SKICK_EBACKEND : SKICK_EUNREACH);
        s_op_free(op);
        return;
    }
    r->inflight++;
    if (op->w)
        node_u64map_put(&r->pending, (uintptr_t) op->w, op);
}

/*  A new op for waiter w, or NULL with w completed (cannot send now). */
static s_op_t *s_op_new(s_redis_t *r, s_kind_t kind, node_wait_t *w)
{
    int err = s_refuse_now(r);
    if (err) {
        node_wait_complete(w, err);
        return NULL;
    }
    s_op_t *op = node_calloc(1, sizeof *op);
    op->r = r;
    op->w = w;
    op->kind = kind;
    return op;
}

/*  Send "cmd <table>:<key> [arg]" for waiter w, results through the
    pointers of res (out, flag, num). */
static void s_key_cmd(s_redis_t *r, s_kind_t kind, const char *cmd, const char *table,
                      const char *key, const char *arg, node_wait_t *w, s_op_t res)
{
    char k[SKICK_REDIS_KEY_MAX];
    int n = skick_redis_key(k, sizeof k, table, key);
    if (n < 0) {
        node_wait_complete(w, SKICK_EINVAL);
        return;
    }
    s_op_t *op = s_op_new(r, kind, w);
    if (!op)
        return;
    op->out = res.out;
    op->flag = res.flag;
    op->num = res.num;
    s_send(op, arg ? 3 : 2, (const char *[]){cmd, k, arg},
           (size_t[]){strlen(cmd), (size_t) n, arg ? strlen(arg) : 0});
}

static void s_get(void *state, const char *table, const char *key, json_object **out,
                  node_wait_t *w)
{
    s_key_cmd(state, OP_GET, "GET", table, key, NULL, w, (s_op_t){.out = out});
}

static void s_del(void *state, const char *table, const char *key, node_wait_t *w)
{
    s_key_cmd(state, OP_DEL, "DEL", table, key, NULL, w, (s_op_t){0});
}

static void s_contains(void *state, const char *table, const char *key, bool *out,
                       node_wait_t *w)
{
    s_key_cmd(state, OP_EXISTS, "EXISTS", table, key, NULL, w, (s_op_t){.flag = out});
}

static void s_incr(void *state, const char *table, const char *key, int64_t delta,
                   int64_t *out, node_wait_t *w)
{
    char d[24];
    snprintf(d, sizeof d, "%lld", (long long) delta);
    s_key_cmd(state, OP_INCR, "INCRBY", table, key, d, w, (s_op_t){.num = out});
}

static void s_set_ex(void *state, const char *table, const char *key, json_object **value,
                     int64_t ttl_ms, bool nx, bool *stored, node_wait_t *w)
{
    char k[SKICK_REDIS_KEY_MAX], ttl[24];
    char *text;
    size_t tl;
    *stored = false;
    int n = skick_redis_key(k, sizeof k, table, key);
    if (n < 0 || skick_redis_encode(*value, &text, &tl) != 0) {
        node_wait_complete(w, SKICK_EINVAL); /* *value stays the caller's */
        return;
    }
    s_op_t *op = s_op_new(state, OP_SET, w);
    if (op) {
        op->flag = stored;
        op->nx = nx;
        const char *argv[6] = {"SET", k, text};
        size_t lens[6] = {3, (size_t) n, tl};
        int argc = 3;
        if (ttl_ms > 0) {
            snprintf(ttl, sizeof ttl, "%lld", (long long) ttl_ms);
            argv[argc] = "PX";
            lens[argc++] = 2;
            argv[argc] = ttl;
            lens[argc++] = strlen(ttl);
        }
        if (nx) {
            argv[argc] = "NX";
            lens[argc++] = 2;
        }
        s_send(op, argc, argv, lens);
    }
    free(text);
}

#define S_SCAN_COUNT "1000" /* keys Redis looks at per SCAN step */

static void s_scan_step(s_op_t *op, const char *cursor, size_t cursor_len)
{
    s_send(op, 6, (const char *[]){"SCAN", cursor, "MATCH", op->match, "COUNT", S_SCAN_COUNT},
           (size_t[]){4, cursor_len, 5, strlen(op->match), 5, strlen(S_SCAN_COUNT)});
}

static void s_keys(void *state, const char *table, size_t max, json_object **out,
                   bool *truncated, node_wait_t *w)
{
    char match[2 * 256 + 3];
    int n = skick_redis_match(match, sizeof match, table);
    *truncated = false;
    if (n < 0) {
        node_wait_complete(w, SKICK_EINVAL);
        return;
    }
    s_op_t *op = s_op_new(state, OP_SCAN, w);
    if (!op)
        return;
    op->out = out;
    op->flag = truncated;
    op->keys = json_object_new_array();
    node_strmap_init(&op->seen);
    op->max = max;
    op->prefix = strlen(table) + 1;
    op->match = node_strdup(match);
    s_scan_step(op, "0", 1);
}

/*  One SCAN answer: [cursor, [keys...]]. Returns true when the op is done
    (with err set), false when the next step was sent. */
static bool s_scan_reply(s_op_t *op, redisReply *rep, int *err)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_ARRAY) {
        *err = SKICK_EBACKEND;
        return true;
    }
    redisReply *list = rep->element[1];
    for (size_t i = 0; i < list->elements; i++) {
        redisReply *k = list->element[i];
        if (k->type != REDIS_REPLY_STRING || (size_t) k->len <= op->prefix)
            continue;
        const char *name = k->str + op->prefix;
        size_t nl = (size_t) k->len - op->prefix;
        if (strlen(name) != nl || !skick_utf8_valid((const unsigned char *) name, nl) ||
            node_strmap_get(&op->seen, name))
            continue; /* not a name skick_hash_* can use, or seen already */
        if (json_object_array_length(op->keys) == op->max) {
            *op->flag = true; /* one more than wanted: the table has more */
            *err = SKICK_OK;
            return true;
        }
        node_strmap_put(&op->seen, name, op);
        json_object_array_add(op->keys, json_object_new_string_len(name, (int) nl));
    }
    redisReply *cur = rep->element[0];
    if (cur->len == 1 && cur->str[0] == '0') {
        *err = SKICK_OK;
        return true;
    }
    op->r->inflight--; /* s_send counts the next step again */
    node_u64map_del(&op->r->pending, (uintptr_t) op->w);
    s_scan_step(op, cur->str, (size_t) cur->len);
    return false;
}

/*  The error of an error answer. */
static int s_error_code(const s_op_t *op, const redisReply *rep)
{
    if (op->kind == OP_INCR) {
        if (strstr(rep->str, "overflow"))
            return SKICK_EINVAL;
        if (strstr(rep->str, "not an integer") || strncmp(rep->str, "WRONGTYPE", 9) == 0)
            return SKICK_ETYPE;
    }
    NODE_LOG_LIMITED(SKICK_LOG_WARNING, "redis", "%s answered an error: %s", op->r->shown,
                     rep->str);
    return SKICK_EBACKEND;
}

/*  The result of answer rep for op, written through its pointers. */
static int s_result(s_op_t *op, redisReply *rep)
{
    if (rep->type == REDIS_REPLY_ERROR)
        return s_error_code(op, rep);
    switch (op->kind) {
    case OP_GET:
        if (rep->type == REDIS_REPLY_NIL)
            return SKICK_ENOTFOUND;
        if (rep->type != REDIS_REPLY_STRING)
            return SKICK_EBACKEND;
        if (skick_redis_decode(rep->str, (size_t) rep->len, op->out) != 0) {
            NODE_LOG_LIMITED(SKICK_LOG_WARNING, "redis", "a value in %s is not text: "
                             "EBACKEND", op->r->shown);
            return SKICK_EBACKEND;
        }
        return SKICK_OK;
    case OP_SET:
        *op->flag = rep->type == REDIS_REPLY_STATUS; /* NX on a present key: nil */
        return rep->type == REDIS_REPLY_STATUS || (op->nx && rep->type == REDIS_REPLY_NIL)
                   ? SKICK_OK
                   : SKICK_EBACKEND;
    case OP_DEL:
        if (rep->type != REDIS_REPLY_INTEGER)
            return SKICK_EBACKEND;
        return rep->integer > 0 ? SKICK_OK : SKICK_ENOTFOUND;
    case OP_EXISTS:
        if (rep->type != REDIS_REPLY_INTEGER)
            return SKICK_EBACKEND;
        *op->flag = rep->integer > 0;
        return SKICK_OK;
    case OP_INCR:
        if (rep->type != REDIS_REPLY_INTEGER)
            return SKICK_EBACKEND;
        *op->num = rep->integer;
        return SKICK_OK;
    case OP_SCAN:
        break;
    }
    return SKICK_EBACKEND;
}

static void s_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    s_op_t *op = privdata;
    s_redis_t *r = op->r;
    redisReply *rep = reply;
    int err;
    if (!rep) {
        err = r->refused ? SKICK_EBACKEND : SKICK_EUNREACH; /* the connection went */
    } else if (!op->w) {
        err = SKICK_OK; /* nobody waits any more */
    } else if (op->kind == OP_SCAN && rep->type != REDIS_REPLY_ERROR) {
        if (!s_scan_reply(op, rep, &err))
            return; /* the next step owns op now */
        if (err == SKICK_OK) {
            *op->out = op->keys;
            op->keys = NULL;
        }
    } else {
        err = s_result(op, rep);
    }
    r->inflight--;
    s_done(op, err);
    s_op_free(op);
}

static void s_cancel(void *state, node_wait_t *w)
{
    s_redis_t *r = state;
    s_op_t *op = node_u64map_del(&r->pending, (uintptr_t) w);
    if (op)
        op->w = NULL; /* its answer, when it comes, frees it and nothing else */
}

/* ------------------------------------------------------------------------- */
/* Opening and closing                                                        */

void *node_redis_open(node_shard_t *sh, const skick_redis_url_t *url,
                      const node_redis_opts_t *o)
{
    s_redis_t *r = node_calloc(1, sizeof *r);
    r->sh = sh;
    r->fd = -1;
    r->backoff_ms = NODE_REDIS_BACKOFF_MIN_MS;
    node_u64map_init(&r->pending);
    if (o)
        r->opts = *o;
    if (!r->opts.max_inflight)
        r->opts.max_inflight = NODE_REDIS_INFLIGHT;
    if (!url) {
        r->inert = true;
        return r;
    }
    r->url = *url;
    skick_redis_url_format(url, r->shown, sizeof r->shown);
    s_connect(r);
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
    r->closing = true;
    /* The waiters are gone with their fibers: forget them all first. */
    for (size_t i = 0; i < r->pending.cap; i++)
        if (r->pending.keys[i])
            ((s_op_t *) r->pending.vals[i])->w = NULL;
    node_u64map_free(&r->pending);
    node_u64map_init(&r->pending);
    if (r->ac)
        redisAsyncFree(r->ac); /* every op's callback runs (NULL) and frees it */
    if (r->retry_timer)
        node_timer_cancel(r->sh, r->retry_timer);
    if (r->connect_timer)
        node_timer_cancel(r->sh, r->connect_timer);
    node_u64map_free(&r->pending);
    free(r);
}

size_t node_redis_inflight(void *state)
{
    return ((s_redis_t *) state)->inflight;
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
