/*  skick_redis_conn - one hiredis async connection running hash operations, on any event loop

    States: DOWN (operations refused at once: EUNREACH, or EBACKEND after a
    refused AUTH or SELECT), CONNECTING (operations are queued behind the
    handshake [AUTH] [SELECT] PING and fail with it), READY. A lost or
    failed connection is retried after a back-off of 100 ms doubling to
    5 s, reset by a connection that was ready; the loss is logged once and
    the recovery once. A connection not ready within 2 s is dropped.

    An operation is a skick_redis_pend_t, owned by hiredis's callback from
    the moment its command is queued: the callback runs exactly once (with
    the answer, or NULL when the connection goes) and frees it (a keys
    listing is a chain of SCAN steps, each step's callback queuing the
    next). Its asker (arg) is cleared when it is answered early (timed
    out) or cancelled, so a late answer touches nothing. Pending
    operations with an asker are linked in `head` in the order they were
    accepted, which is their deadline order: the one deadline timer looks
    at the head only. At most max_inflight are in flight, cancelled ones
    included until Redis answers them: beyond, EBACKLOG at once, so a
    stopped Redis costs bounded memory.

    hiredis frees its context itself after a disconnect, from inside
    redisAsyncHandleRead/Write, and calls ev.cleanup there (twice in
    0.14): s_ev_cleanup forgets the context and its descriptor, and the
    loop's calls look at self->ac again after each hiredis call.
*/
#include "skick_redis_conn.h"
#include "skick_clock.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skick/err.h"
#include "skick/log.h"
#include "skick_json.h"
#include "skick_loglimit.h"

#define S_SCAN_COUNT "1000"    /* keys Redis looks at per SCAN step */

typedef enum { S_DOWN, S_CONNECTING, S_READY } s_state_t;

struct skick_redis_conn_t {
    skick_redis_url_t url;        /* where, and how to log in */
    char shown[700];              /* the URL for logs, the password as *** */
    skick_redis_loop_t loop;      /* the caller's loop */
    skick_redis_conn_opts_t opts; /* bounds, texts, the refusal hook */
    redisAsyncContext *ac;        /* the connection, NULL when down */
    int fd;                       /* its descriptor while on the loop, else -1 */
    bool reading, writing;        /* hiredis's interest */
    s_state_t state;              /* see above */
    bool closing;                 /* destroy in progress: no reconnect */
    bool refused;                 /* the last handshake was refused (AUTH, SELECT) */
    bool ever_ready;              /* a handshake succeeded once */
    bool down_logged;             /* the loss (or failure to connect) was logged */
    char why[256];                /* why the connection went, for the log */
    char answer[900];             /* an error text handed out as why */
    int64_t backoff_ms;           /* the next reconnect delay */
    uint64_t retry_timer;         /* DOWN: the reconnect, 0 none */
    uint64_t connect_timer;       /* CONNECTING: the handshake's deadline, 0 none */
    uint64_t deadline_timer;      /* the head's deadline (timeout_ms), 0 none */
    size_t inflight;              /* operations whose callback has not run */
    skick_redis_pend_t *head, *tail; /* operations with an asker, oldest first */
    skick_loglimit_t rl;          /* log budget: error answers, the bound */
};

struct skick_redis_pend_t {
    skick_redis_conn_t *c;
    skick_redis_done_fn *done;     /* gets the answer */
    void *arg;                     /* the asker's; NULL once answered or cancelled */
    bool linked;                   /* in c's list (while arg is set) */
    skick_redis_cmd_t cmd;         /* what the answer means */
    bool nx;                       /* set: a nil answer means "present" */
    int64_t deadline;              /* timeout_ms: when it ends ETIMEDOUT (monotonic ms) */
    skick_redis_pend_t *prev, *next;
    /* keys only */
    json_object *keys;       /* the keys found so far */
    json_object *seen;       /* the same key may come twice in a SCAN: name -> null */
    size_t max;              /* keys wanted at most */
    size_t prefix;           /* length of "<table>:" */
    char match[2 * 256 + 3]; /* the SCAN MATCH pattern */
};

static void s_connect(skick_redis_conn_t *c);


/* ------------------------------------------------------------------------- */
/* The adapter: hiredis's interest on the caller's loop                       */

static void s_interest(skick_redis_conn_t *c, bool *which, bool on)
{
    *which = on;
    if (c->fd >= 0)
        c->loop.io_watch(c->loop.loop, c->fd, c->reading, c->writing);
}

static void s_ev_add_read(void *p) { s_interest(p, &((skick_redis_conn_t *) p)->reading, true); }
static void s_ev_del_read(void *p) { s_interest(p, &((skick_redis_conn_t *) p)->reading, false); }
static void s_ev_add_write(void *p) { s_interest(p, &((skick_redis_conn_t *) p)->writing, true); }
static void s_ev_del_write(void *p) { s_interest(p, &((skick_redis_conn_t *) p)->writing, false); }

static void s_cancel_timer(skick_redis_conn_t *c, uint64_t *id)
{
    if (*id)
        c->loop.timer_cancel(c->loop.loop, *id);
    *id = 0;
}

/*  The connection is gone (or never came): log it once, retry later. */
static void s_down(skick_redis_conn_t *c, const char *why)
{
    s_state_t was = c->state;
    c->state = S_DOWN;
    c->ac = NULL;
    if (c->fd >= 0)
        c->loop.io_remove(c->loop.loop, c->fd);
    c->fd = -1;
    c->reading = c->writing = false;
    s_cancel_timer(c, &c->connect_timer);
    if (c->closing)
        return;
    if (!c->down_logged && !c->refused) {
        if (was == S_READY)
            SKICK_LOG(SKICK_LOG_WARNING, "redis", "lost the connection to %s (%s): %s fail with "
                      "EUNREACH until it is back; reconnecting", c->shown, why, c->opts.ops);
        else
            SKICK_LOG(SKICK_LOG_WARNING, "redis", "cannot connect to %s (%s): %s fail with "
                      "EUNREACH until it answers; retrying (is redis-server running?)", c->shown,
                      why, c->opts.ops);
        c->down_logged = true;
    }
    if (was == S_READY)
        c->backoff_ms = SKICK_REDIS_BACKOFF_MIN_MS;
    c->retry_timer = c->loop.timer_add(c->loop.loop, c->backoff_ms, c);
    c->backoff_ms = c->backoff_ms * 2 > SKICK_REDIS_BACKOFF_MAX_MS ? SKICK_REDIS_BACKOFF_MAX_MS
                                                                   : c->backoff_ms * 2;
}

static void s_ev_cleanup(void *p)
{
    skick_redis_conn_t *c = p;
    if (!c->ac)
        return; /* hiredis 0.14 calls it again from __redisAsyncFree */
    char why[sizeof c->why];
    snprintf(why, sizeof why, "%s",
             c->why[0] ? c->why : c->ac->err ? c->ac->errstr : "closed by the server");
    c->why[0] = '\0';
    s_down(c, why);
}

/* ------------------------------------------------------------------------- */
/* Connecting: [AUTH] [SELECT] PING before any operation                      */

/*  The handshake failed: AUTH or SELECT refused, or a password missing. */
static void s_refused(skick_redis_conn_t *c, const char *step, const char *answer)
{
    const char *what = strncmp(answer, "NOAUTH", 6) == 0 ? "access without a password" : step;
    if (!c->refused)
        SKICK_LOG(SKICK_LOG_ERROR, "redis", "%s refused %s: %s; %s fail with EBACKEND (check "
                  "the user, password and database in %s)", c->shown, what, answer, c->opts.ops,
                  c->opts.option);
    c->refused = true;
    snprintf(c->why, sizeof c->why, "%s refused", what);
    if (c->opts.refused)
        c->opts.refused(c->opts.refused_arg, c->ever_ready);
    redisAsyncFree(c->ac); /* deferred by hiredis until this callback returns */
}

static void s_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    skick_redis_conn_t *c = ac->ev.data;
    const char *step = privdata;
    redisReply *rep = reply;
    if (!rep || c->closing || c->ac != ac)
        return; /* the connection went: s_ev_cleanup saw to it */
    if (rep->type == REDIS_REPLY_ERROR) {
        s_refused(c, step, rep->str);
        return;
    }
    if (strcmp(step, "PING") != 0 || c->state != S_CONNECTING)
        return;
    c->state = S_READY;
    c->backoff_ms = SKICK_REDIS_BACKOFF_MIN_MS;
    s_cancel_timer(c, &c->connect_timer);
    if (c->down_logged || c->refused)
        SKICK_LOG(SKICK_LOG_NOTICE, "redis", "connected to %s again", c->shown);
    else if (!c->ever_ready)
        SKICK_LOG(SKICK_LOG_INFO, "redis", "%s %s", c->opts.ready, c->shown);
    c->down_logged = c->refused = false;
    c->ever_ready = true;
}

static void s_connect(skick_redis_conn_t *c)
{
    c->state = S_CONNECTING;
    redisAsyncContext *ac = c->url.unix_socket ? redisAsyncConnectUnix(c->url.path)
                                               : redisAsyncConnect(c->url.host, c->url.port);
    if (!ac || ac->err) {
        char why[256];
        snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac); /* no adapter yet: nothing of ours is called */
        s_down(c, why);
        return;
    }
    c->ac = ac;
    c->fd = c->loop.io_add(c->loop.loop, ac->c.fd, c) == 0 ? ac->c.fd : -1;
    ac->ev.data = c;
    ac->ev.addRead = s_ev_add_read;
    ac->ev.delRead = s_ev_del_read;
    ac->ev.addWrite = s_ev_add_write;
    ac->ev.delWrite = s_ev_del_write;
    ac->ev.cleanup = s_ev_cleanup;
    c->connect_timer = c->loop.timer_add(c->loop.loop, SKICK_REDIS_CONNECT_MS, c);
    if (c->url.has_password && c->url.user[0])
        redisAsyncCommand(ac, s_handshake, "AUTH", "AUTH %s %s", c->url.user, c->url.password);
    else if (c->url.has_password)
        redisAsyncCommand(ac, s_handshake, "AUTH", "AUTH %s", c->url.password);
    if (c->url.db)
        redisAsyncCommand(ac, s_handshake, "SELECT", "SELECT %d", c->url.db);
    redisAsyncCommand(ac, s_handshake, "PING", "PING");
}

/* ------------------------------------------------------------------------- */
/* Operations                                                                 */

/*  Arm the deadline timer for the head, if there is a bound and none armed. */
static void s_arm_deadline(skick_redis_conn_t *c)
{
    if (c->opts.timeout_ms <= 0 || c->deadline_timer || !c->head || c->closing)
        return;
    int64_t ms = c->head->deadline - skick_clock_ms();
    c->deadline_timer = c->loop.timer_add(c->loop.loop, ms > 0 ? ms : 0, c);
}

static void s_unlink(skick_redis_pend_t *q)
{
    skick_redis_conn_t *c = q->c;
    if (!q->linked)
        return;
    *(q->prev ? &q->prev->next : &c->head) = q->next;
    *(q->next ? &q->next->prev : &c->tail) = q->prev;
    q->prev = q->next = NULL;
    q->linked = false;
}

/*  End q's asker (if it still waits) with res; the caller frees q. */
static void s_answer(skick_redis_pend_t *q, skick_redis_result_t *res)
{
    if (q->arg) {
        void *arg = q->arg;
        q->arg = NULL;
        s_unlink(q);
        q->done(arg, res);
    }
    json_object_put(res->value);
    res->value = NULL;
}

static void s_fail(skick_redis_pend_t *q, int code, const char *why)
{
    s_answer(q, &(skick_redis_result_t){.code = code, .why = why});
}

static void s_pend_free(skick_redis_pend_t *q)
{
    json_object_put(q->keys);
    json_object_put(q->seen);
    free(q);
}

static void s_reply(redisAsyncContext *ac, void *reply, void *privdata);

/*  Queue argv for q. false: the connection would not take it. */
static bool s_queue(skick_redis_pend_t *q, int argc, const char **argv, const size_t *lens)
{
    skick_redis_conn_t *c = q->c;
    return c->ac && redisAsyncCommandArgv(c->ac, s_reply, q, argc, argv, lens) == REDIS_OK;
}

static bool s_scan_step(skick_redis_pend_t *q, const char *cursor, size_t cursor_len)
{
    const char *argv[] = {"SCAN", cursor, "MATCH", q->match, "COUNT", S_SCAN_COUNT};
    size_t lens[] = {4, cursor_len, 5, strlen(q->match), 5, sizeof S_SCAN_COUNT - 1};
    return s_queue(q, 6, argv, lens);
}

/*  Take in one SCAN answer [cursor, [keys...]]. Returns 1 when the listing
    is over (its asker answered), 0 when the next step went out, -1 when
    the answer was not a SCAN answer. */
static int s_scan_more(skick_redis_pend_t *q, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    const redisReply *found = rep->element[1];
    bool more = false;
    for (size_t i = 0; i < found->elements && !more; i++) {
        const redisReply *k = found->element[i];
        if (k->type != REDIS_REPLY_STRING || (size_t) k->len <= q->prefix)
            continue;
        const char *name = k->str + q->prefix;
        size_t len = (size_t) k->len - q->prefix;
        if (memchr(name, '\0', len) || !skick_utf8_valid((const unsigned char *) name, len) ||
            json_object_object_get_ex(q->seen, name, NULL))
            continue; /* not a key the hash operations can name, or listed already */
        if (json_object_array_length(q->keys) == q->max) {
            more = true; /* one more than wanted: the table holds more */
            break;
        }
        json_object_object_add(q->seen, name, NULL);
        json_object_array_add(q->keys, json_object_new_string_len(name, (int) len));
    }
    const redisReply *cursor = rep->element[0];
    if (!more && !(cursor->len == 1 && cursor->str[0] == '0')) {
        if (s_scan_step(q, cursor->str, (size_t) cursor->len))
            return 0;
        s_fail(q, q->c->refused ? SKICK_EBACKEND : SKICK_EUNREACH,
               "the connection to Redis went during the listing");
        return 1;
    }
    skick_redis_result_t res = {.value = q->keys, .flag = more};
    q->keys = NULL;
    s_answer(q, &res);
    return 1;
}

/*  The answer to an error reply for q. */
static void s_error(skick_redis_pend_t *q, const char *text)
{
    skick_redis_conn_t *c = q->c;
    if (q->cmd == SKICK_REDIS_INCR && strstr(text, "overflow"))
        s_fail(q, SKICK_EINVAL, "hash incr: the result would overflow int64");
    else if (q->cmd == SKICK_REDIS_INCR &&
             (strstr(text, "not an integer") || strncmp(text, "WRONGTYPE", 9) == 0))
        s_fail(q, SKICK_ETYPE, "hash incr: the stored value is not an integer");
    else if (q->cmd == SKICK_REDIS_SET && strstr(text, "expire time"))
        s_fail(q, SKICK_EINVAL, "hash set: ttl_ms too large");
    else {
        skick_log_limited(&c->rl, SKICK_LOG_WARNING, "redis", "%s answered an error: %s",
                          c->shown, text);
        snprintf(c->answer, sizeof c->answer, "Redis answered: %s", text);
        s_fail(q, SKICK_EBACKEND, c->answer);
    }
}

/*  What reply rep (not an error, not a SCAN step) means for q. */
static void s_result(const skick_redis_pend_t *q, const redisReply *rep, skick_redis_result_t *res)
{
    res->code = SKICK_EBACKEND;
    res->why = "Redis gave an answer of an unexpected type";
    switch (q->cmd) {
    case SKICK_REDIS_GET:
        if (rep->type == REDIS_REPLY_NIL) {
            res->code = SKICK_ENOTFOUND;
            res->why = "no such key";
        } else if (rep->type == REDIS_REPLY_STRING &&
                   skick_redis_decode(rep->str, (size_t) rep->len, &res->value) == 0) {
            res->code = 0;
        } else {
            skick_log_limited(&q->c->rl, SKICK_LOG_WARNING, "redis",
                              "a value in %s is not text: EBACKEND", q->c->shown);
            res->why = "the value in Redis is not text";
        }
        return;
    case SKICK_REDIS_SET:
        if (rep->type == REDIS_REPLY_STATUS || (q->nx && rep->type == REDIS_REPLY_NIL)) {
            res->code = 0;
            res->flag = rep->type == REDIS_REPLY_STATUS; /* NX on a present key: nil */
        }
        return;
    case SKICK_REDIS_DELETE:
        if (rep->type == REDIS_REPLY_INTEGER) {
            res->code = rep->integer > 0 ? 0 : SKICK_ENOTFOUND;
            res->why = "no such key";
        }
        return;
    case SKICK_REDIS_CONTAINS:
    case SKICK_REDIS_INCR:
        if (rep->type == REDIS_REPLY_INTEGER) {
            res->code = 0;
            res->flag = rep->integer > 0;
            res->num = rep->integer;
        }
        return;
    case SKICK_REDIS_KEYS:
        return;
    }
}

static void s_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void) ac;
    skick_redis_pend_t *q = privdata;
    skick_redis_conn_t *c = q->c;
    const redisReply *rep = reply;
    if (!rep)
        s_fail(q, c->refused ? SKICK_EBACKEND : SKICK_EUNREACH,
               c->closing   ? "stopping: the connection to Redis is closed"
               : c->refused ? "Redis refused the login (see the log)"
                            : "the connection to Redis went before it answered");
    else if (!q->arg)
        ; /* timed out or cancelled: nobody waits for it any more */
    else if (rep->type == REDIS_REPLY_ERROR)
        s_error(q, rep->str);
    else if (q->cmd != SKICK_REDIS_KEYS) {
        skick_redis_result_t res = {0};
        s_result(q, rep, &res);
        s_answer(q, &res);
    } else {
        int rc = s_scan_more(q, rep);
        if (rc == 0)
            return; /* the next step has q now */
        if (rc < 0)
            s_fail(q, SKICK_EBACKEND, "Redis gave SCAN an unexpected answer");
    }
    c->inflight--;
    s_pend_free(q);
}

/*  Why an operation cannot be queued now (0: it can), with *why. */
static int s_refuse_now(skick_redis_conn_t *c, const char **why)
{
    if (!c->ac && c->refused) {
        *why = "Redis refused the login (see the log)";
        return SKICK_EBACKEND;
    }
    if (!c->ac) {
        snprintf(c->answer, sizeof c->answer, "Redis (%s) cannot be reached", c->shown);
        *why = c->answer;
        return SKICK_EUNREACH;
    }
    if (c->inflight >= c->opts.max_inflight) {
        skick_log_limited(&c->rl, SKICK_LOG_WARNING, "redis",
                          "%zu %s in flight to %s (the bound): refusing more with EBACKLOG; "
                          "is Redis slow?", c->inflight, c->opts.ops, c->shown);
        *why = "too many hash operations in flight to Redis";
        return SKICK_EBACKLOG;
    }
    return 0;
}

/*  Queue the command of op for q, its key k[0..kn) and value text[0..tn). */
static bool s_send(skick_redis_pend_t *q, const skick_redis_op_t *op, const char *k, size_t kn,
                   const char *text, size_t tn)
{
    static const char *const names[] = {
        [SKICK_REDIS_GET] = "GET",     [SKICK_REDIS_SET] = "SET",
        [SKICK_REDIS_DELETE] = "DEL",  [SKICK_REDIS_CONTAINS] = "EXISTS",
        [SKICK_REDIS_INCR] = "INCRBY", [SKICK_REDIS_KEYS] = "SCAN",
    };
    if (op->cmd == SKICK_REDIS_KEYS)
        return s_scan_step(q, "0", 1);
    char num[24];
    const char *argv[6] = {names[op->cmd], k};
    size_t lens[6] = {strlen(names[op->cmd]), kn};
    int argc = 2;
    if (op->cmd == SKICK_REDIS_INCR) {
        snprintf(num, sizeof num, "%lld", (long long) op->delta);
        argv[argc] = num;
        lens[argc++] = strlen(num);
    } else if (op->cmd == SKICK_REDIS_SET) {
        argv[argc] = text;
        lens[argc++] = tn;
        if (op->ttl_ms > 0) {
            snprintf(num, sizeof num, "%lld", (long long) op->ttl_ms);
            argv[argc] = "PX";
            lens[argc++] = 2;
            argv[argc] = num;
            lens[argc++] = strlen(num);
        }
        if (op->nx) {
            argv[argc] = "NX";
            lens[argc++] = 2;
        }
    }
    return s_queue(q, argc, argv, lens);
}

int skick_redis_conn_run(skick_redis_conn_t *self, const skick_redis_op_t *op,
                         skick_redis_done_fn *done, void *arg, skick_redis_pend_t **pend,
                         const char **why)
{
    char key[SKICK_REDIS_KEY_MAX], match[sizeof ((skick_redis_pend_t *) 0)->match];
    int keylen = 0;
    char *text = NULL;
    size_t textlen = 0;
    if (pend)
        *pend = NULL;
    /* Bad input is EINVAL whatever the connection's state. */
    if (op->cmd != SKICK_REDIS_KEYS &&
        (keylen = skick_redis_key(key, sizeof key, op->table, op->key)) < 0) {
        *why = "hash: with Redis a key may not hold '{', '}' or ':'";
        return SKICK_EINVAL;
    }
    if (op->cmd == SKICK_REDIS_KEYS && skick_redis_match(match, sizeof match, op->table) < 0) {
        *why = "hash keys: the table name cannot be matched";
        return SKICK_EINVAL;
    }
    if (op->cmd == SKICK_REDIS_SET && skick_redis_encode(op->value, &text, &textlen) != 0) {
        *why = "hash set: the value cannot be stored (null, a string that is not UTF-8, "
               "NaN or infinity)";
        return SKICK_EINVAL;
    }
    int code = s_refuse_now(self, why);
    if (code) {
        free(text);
        return code;
    }
    skick_redis_pend_t *q = calloc(1, sizeof *q);
    if (!q)
        abort(); /* like every allocation of the processes that use this */
    *q = (skick_redis_pend_t){.c = self, .done = done, .arg = arg, .cmd = op->cmd, .nx = op->nx};
    if (op->cmd == SKICK_REDIS_KEYS) {
        memcpy(q->match, match, sizeof match);
        q->keys = json_object_new_array();
        q->seen = json_object_new_object();
        q->max = op->max;
        q->prefix = strlen(op->table) + 1;
    }
    bool sent = s_send(q, op, key, (size_t) keylen, text, textlen);
    free(text);
    if (!sent) {
        s_pend_free(q);
        *why = "the connection to Redis is closing";
        return SKICK_EUNREACH;
    }
    self->inflight++;
    q->deadline = skick_clock_ms() + self->opts.timeout_ms;
    q->linked = true;
    q->prev = self->tail;
    *(self->tail ? &self->tail->next : &self->head) = q;
    self->tail = q;
    s_arm_deadline(self);
    if (pend)
        *pend = q;
    return 0;
}

void skick_redis_conn_cancel(skick_redis_conn_t *self, skick_redis_pend_t *pend)
{
    (void) self;
    pend->arg = NULL; /* its answer, when it comes, frees it and nothing else */
    s_unlink(pend);
}

/* ------------------------------------------------------------------------- */
/* The loop's side                                                            */

skick_redis_conn_t *skick_redis_conn_new(const skick_redis_url_t *url,
                                         const skick_redis_loop_t *loop,
                                         const skick_redis_conn_opts_t *o)
{
    skick_redis_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->url = *url;
    c->loop = *loop;
    if (o)
        c->opts = *o;
    if (!c->opts.max_inflight)
        c->opts.max_inflight = SKICK_REDIS_INFLIGHT;
    if (!c->opts.ops)
        c->opts.ops = "hash operations";
    if (!c->opts.option)
        c->opts.option = "--hash";
    if (!c->opts.ready)
        c->opts.ready = "hashes are kept in";
    c->fd = -1;
    c->backoff_ms = SKICK_REDIS_BACKOFF_MIN_MS;
    skick_redis_url_format(url, c->shown, sizeof c->shown);
    s_connect(c);
    return c;
}

void skick_redis_conn_destroy(skick_redis_conn_t **self_p)
{
    skick_redis_conn_t *c = *self_p;
    if (!c)
        return;
    c->closing = true;
    if (c->ac)
        redisAsyncFree(c->ac); /* every operation's callback runs (NULL) and frees it */
    s_cancel_timer(c, &c->retry_timer);
    s_cancel_timer(c, &c->connect_timer);
    s_cancel_timer(c, &c->deadline_timer);
    free(c);
    *self_p = NULL;
}

void skick_redis_conn_read(skick_redis_conn_t *self)
{
    if (self->ac)
        redisAsyncHandleRead(self->ac); /* may free it: s_ev_cleanup clears self->ac */
}

void skick_redis_conn_write(skick_redis_conn_t *self)
{
    if (self->ac && self->writing)
        redisAsyncHandleWrite(self->ac);
}

void skick_redis_conn_timer(skick_redis_conn_t *self, uint64_t id)
{
    if (id == self->retry_timer) {
        self->retry_timer = 0;
        s_connect(self);
    } else if (id == self->connect_timer) {
        self->connect_timer = 0;
        if (self->ac && self->state == S_CONNECTING) {
            snprintf(self->why, sizeof self->why, "not ready within %d ms",
                     SKICK_REDIS_CONNECT_MS);
            redisAsyncFree(self->ac); /* its operations fail with EUNREACH, s_down retries */
        }
    } else if (id == self->deadline_timer) {
        self->deadline_timer = 0;
        int64_t now = skick_clock_ms();
        while (self->head && self->head->deadline <= now) {
            snprintf(self->answer, sizeof self->answer, "Redis (%s) did not answer within %d ms",
                     self->shown, self->opts.timeout_ms);
            s_fail(self->head, SKICK_ETIMEDOUT, self->answer); /* unlinks it */
        }
        s_arm_deadline(self);
    }
}

const char *skick_redis_conn_shown(const skick_redis_conn_t *self)
{
    return self->shown;
}

bool skick_redis_conn_ready(const skick_redis_conn_t *self)
{
    return self->state == S_READY;
}

size_t skick_redis_conn_inflight(const skick_redis_conn_t *self)
{
    return self->inflight;
}
