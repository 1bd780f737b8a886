/*  broker_redis - the cluster's hash store in Redis: hiredis async on the broker's poll loop

    With --hash URL the broker keeps the tables of the hash op in Redis,
    with the layout and values of the shards' Redis backend
    (proto/skick_redis: one string per key, "<table>:<key>"), and the same
    commands: GET, SET [PX ms] [NX], DEL, EXISTS, INCRBY, SCAN MATCH COUNT.

    The connection is hiredis's async context, driven by broker_main.c's
    poll loop: the adapter below records hiredis's read and write interest
    (ev.addRead and the others), main polls the descriptor with it
    (broker_redis_fd) and calls broker_redis_io when it is ready, and
    broker_redis_tick does the timed work. Operations are pipelined: each
    is one command appended to the connection (a keys listing is a chain of
    SCAN steps), Redis answers in order, and each answer completes its
    request. A request is an s_req_t, owned by hiredis's callback from the
    moment its command is queued: the callback runs exactly once (with the
    answer, or NULL when the connection goes) and frees it.

    Every accepted request is answered exactly once through the done
    function: with the answer; EUNREACH when the connection goes (hiredis
    runs the pending callbacks with NULL); ETIMEDOUT when it waited
    timeout_ms (the bound is checked by broker_redis_tick, every round of
    the loop; such a request is only unlinked from `waiting` and its
    answer, when it comes, is dropped: a SET that timed out may still have
    happened). Requests wait in `waiting` in the order they were accepted,
    which is their deadline order, so the timer looks at the head only.

    States: DOWN (requests refused at once: EUNREACH, or EBACKEND after a
    refused AUTH or SELECT), CONNECTING (requests are queued behind the
    handshake [AUTH] [SELECT] PING, and fail with it), READY. A lost or
    failed connection is retried after a back-off of 100 ms doubling to
    5 s; the loss is logged once and the recovery once. At most
    max_inflight requests are in flight, timed-out ones included until
    Redis answers them: beyond, EBACKLOG at once, so a stopped Redis costs
    bounded memory.

    hiredis frees its context itself after a disconnect, from inside
    redisAsyncHandleRead/Write, and calls ev.cleanup there (twice in
    0.14): s_ev_cleanup forgets the context, and broker_redis_io looks at
    self->ac again after each hiredis call. One thread: the broker's.
*/
#include "broker_redis.h"
#include "broker_util.h"

#include <assert.h>
#include <czmq.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skick/err.h"
#include "skick/log.h"
#include "skick_json.h"

typedef enum { S_DOWN, S_CONNECTING, S_READY } s_state_t;

typedef struct s_req s_req_t;

struct broker_redis_t {
    skick_redis_url_t url; /* where, and how to log in */
    char shown[700];       /* the URL for logs, the password as *** */
    size_t max_inflight;   /* bound on inflight */
    int timeout_ms;        /* answer bound */
    redisAsyncContext *ac; /* the connection, NULL when down */
    bool reading, writing; /* hiredis's interest on ac's descriptor */
    s_state_t state;       /* see above */
    bool closing;          /* destroy in progress: no reconnect */
    bool refused;          /* the last handshake was refused (AUTH, SELECT) */
    bool ever_ready;       /* a handshake succeeded once */
    bool down_logged;      /* the loss (or failure to connect) was logged */
    char why[256];         /* why the connection went, for the log */
    char answer[900];      /* an error text handed out as *why */
    int64_t backoff_ms;    /* the next reconnect delay */
    int64_t retry_at;      /* DOWN: when to connect again, 0 = not scheduled */
    int64_t ready_by;      /* CONNECTING: the handshake's deadline */
    size_t inflight;       /* requests whose callback has not run */
    s_req_t *head, *tail;  /* requests waiting for an answer, oldest first */
    broker_ratelimit_t rl; /* log budget: error answers */
};

struct s_req {
    broker_redis_t *r;          /* the store */
    broker_redis_done_fn *done; /* gets the answer */
    void *arg;                  /* the asker's, NULL once answered (timed out) */
    broker_redis_cmd_t cmd;     /* what the answer means */
    bool nx;                    /* set: a nil answer means "present" */
    int64_t deadline;           /* when it times out (monotonic ms) */
    s_req_t *prev, *next;       /* in r's waiting list while arg is set */
    /* keys only */
    json_object *keys;       /* the keys found so far */
    zhashx_t *seen;          /* the same key may come twice in a SCAN */
    size_t max;              /* keys wanted at most */
    size_t prefix;           /* length of "<table>:" */
    char match[2 * 256 + 3]; /* the SCAN MATCH pattern */
};

#define S_SCAN_COUNT "1000" /* keys Redis looks at per SCAN step */

static void s_connect(broker_redis_t *r, int64_t now);

/* ------------------------------------------------------------------------- */
/* The adapter: hiredis's interest, polled by broker_main.c                   */

static void s_add_read(void *p)
{
    ((broker_redis_t *) p)->reading = true;
}
static void s_del_read(void *p)
{
    ((broker_redis_t *) p)->reading = false;
}
static void s_add_write(void *p)
{
    ((broker_redis_t *) p)->writing = true;
}
static void s_del_write(void *p)
{
    ((broker_redis_t *) p)->writing = false;
}

/*  The connection is gone (or never came): log it once, retry later. */
static void s_down(broker_redis_t *r, const char *why)
{
    s_state_t was = r->state;
    r->state = S_DOWN;
    r->ac = NULL;
    r->reading = r->writing = false;
    if (r->closing)
        return;
    if (!r->down_logged && !r->refused) {
        if (was == S_READY)
            SKICK_LOG(SKICK_LOG_WARNING, "redis",
                      "lost the connection to %s (%s): hash requests fail with EUNREACH "
                      "until it is back; reconnecting",
                      r->shown, why);
        else
            SKICK_LOG(SKICK_LOG_WARNING, "redis",
                      "cannot connect to %s (%s): hash requests fail with EUNREACH until it "
                      "answers; retrying (is redis-server running?)",
                      r->shown, why);
        r->down_logged = true;
    }
    if (was == S_READY)
        r->backoff_ms = BROKER_REDIS_BACKOFF_MIN_MS;
    r->retry_at = zclock_mono() + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BROKER_REDIS_BACKOFF_MAX_MS ? BROKER_REDIS_BACKOFF_MAX_MS
                                                                    : r->backoff_ms * 2;
}

static void s_ev_cleanup(void *p)
{
    broker_redis_t *r = p;
    if (!r->ac)
        return; /* hiredis 0.14 calls it again from __redisAsyncFree */
    char why[sizeof r->why];
    snprintf(why, sizeof why, "%s",
             r->why[0]    ? r->why
             : r->ac->err ? r->ac->errstr
                          : "closed by the server");
    r->why[0] = '\0';
    s_down(r, why);
}

/* ------------------------------------------------------------------------- */
/* Connecting: [AUTH] [SELECT] PING before any request                        */

static void s_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    broker_redis_t *r = ac->ev.data;
    const char *step = privdata;
    redisReply *rep = reply;
    if (!rep || r->closing || r->ac != ac)
        return; /* the connection went: s_ev_cleanup saw to it */
    if (rep->type == REDIS_REPLY_ERROR) {
        const char *what = strncmp(rep->str, "NOAUTH", 6) == 0 ? "access without a password" : step;
        if (!r->refused)
            SKICK_LOG(SKICK_LOG_ERROR, "redis",
                      "%s refused %s: %s; hash requests fail with EBACKEND (check the user, "
                      "password and database in the broker's --hash)",
                      r->shown, what, rep->str);
        r->refused = true;
        snprintf(r->why, sizeof r->why, "%s refused", what);
        redisAsyncFree(ac); /* deferred by hiredis until this callback returns */
        return;
    }
    if (strcmp(step, "PING") != 0 || r->state != S_CONNECTING)
        return;
    r->state = S_READY;
    r->backoff_ms = BROKER_REDIS_BACKOFF_MIN_MS;
    if (r->down_logged || r->refused)
        SKICK_LOG(SKICK_LOG_NOTICE, "redis", "connected to %s again", r->shown);
    else if (!r->ever_ready)
        SKICK_LOG(SKICK_LOG_INFO, "redis", "the hash store is %s", r->shown);
    r->down_logged = r->refused = false;
    r->ever_ready = true;
}

static void s_connect(broker_redis_t *r, int64_t now)
{
    r->retry_at = 0;
    r->state = S_CONNECTING;
    redisAsyncContext *ac = r->url.unix_socket ? redisAsyncConnectUnix(r->url.path)
                                               : redisAsyncConnect(r->url.host, r->url.port);
    if (!ac || ac->err) {
        char why[256];
        snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac); /* no adapter yet: nothing of ours is called */
        s_down(r, why);
        return;
    }
    r->ac = ac;
    r->ready_by = now + BROKER_REDIS_CONNECT_MS;
    ac->ev.data = r;
    ac->ev.addRead = s_add_read;
    ac->ev.delRead = s_del_read;
    ac->ev.addWrite = s_add_write;
    ac->ev.delWrite = s_del_write;
    ac->ev.cleanup = s_ev_cleanup;
    if (r->url.has_password && r->url.user[0])
        redisAsyncCommand(ac, s_handshake, "AUTH", "AUTH %s %s", r->url.user, r->url.password);
    else if (r->url.has_password)
        redisAsyncCommand(ac, s_handshake, "AUTH", "AUTH %s", r->url.password);
    if (r->url.db)
        redisAsyncCommand(ac, s_handshake, "SELECT", "SELECT %d", r->url.db);
    redisAsyncCommand(ac, s_handshake, "PING", "PING");
}

/* ------------------------------------------------------------------------- */
/* Requests                                                                   */

static void s_unlink(s_req_t *q)
{
    broker_redis_t *r = q->r;
    *(q->prev ? &q->prev->next : &r->head) = q->next;
    *(q->next ? &q->next->prev : &r->tail) = q->prev;
    q->prev = q->next = NULL;
}

/*  Answer q's asker (if it still waits) and forget it; the caller frees q. */
static void s_answer(s_req_t *q, int code, json_object *result, const char *why)
{
    if (!q->arg) {
        json_object_put(result);
        return;
    }
    void *arg = q->arg;
    q->arg = NULL;
    s_unlink(q);
    q->done(arg, code, result, why);
}

static void s_req_free(s_req_t *q)
{
    json_object_put(q->keys);
    zhashx_destroy(&q->seen);
    free(q);
}

static void s_reply(redisAsyncContext *ac, void *reply, void *privdata);

/*  Queue argv for q (not yet counted). false: the connection would not
    take it (q untouched). */
static bool s_queue(s_req_t *q, int argc, const char **argv, const size_t *lens)
{
    broker_redis_t *r = q->r;
    return r->ac && redisAsyncCommandArgv(r->ac, s_reply, q, argc, argv, lens) == REDIS_OK;
}

static bool s_scan_step(s_req_t *q, const char *cursor, size_t cursor_len)
{
    const char *argv[] = {"SCAN", cursor, "MATCH", q->match, "COUNT", S_SCAN_COUNT};
    size_t lens[] = {4, cursor_len, 5, strlen(q->match), 5, sizeof S_SCAN_COUNT - 1};
    return s_queue(q, 6, argv, lens);
}

/*  Take in one SCAN answer [cursor, [keys...]]. Returns 1 when the listing
    is complete (its result answered), 0 when the next step went out, -1
    when the answer was not a SCAN answer. */
static int s_scan_more(s_req_t *q, const redisReply *rep)
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
            zhashx_lookup(q->seen, name))
            continue; /* not a key the hash op can name, or listed already */
        if (json_object_array_length(q->keys) == q->max) {
            more = true; /* one more than wanted: the table holds more */
            break;
        }
        zhashx_insert(q->seen, name, q);
        json_object_array_add(q->keys, json_object_new_string_len(name, (int) len));
    }
    const redisReply *cursor = rep->element[0];
    if (!more && !(cursor->len == 1 && cursor->str[0] == '0')) {
        if (s_scan_step(q, cursor->str, (size_t) cursor->len))
            return 0;
        s_answer(q, SKICK_EUNREACH, NULL, "the connection to Redis went during the listing");
        return 1;
    }
    json_object *result = json_object_new_object();
    json_object_object_add(result, "keys", q->keys);
    json_object_object_add(result, "truncated", json_object_new_boolean(more));
    q->keys = NULL;
    s_answer(q, 0, result, NULL);
    return 1;
}

/*  The answer to an error reply for q. */
static void s_error(s_req_t *q, const char *text)
{
    if (q->cmd == BROKER_REDIS_INCR && strstr(text, "overflow"))
        s_answer(q, SKICK_EINVAL, NULL, "hash incr: the result would overflow int64");
    else if (q->cmd == BROKER_REDIS_INCR &&
             (strstr(text, "not an integer") || strncmp(text, "WRONGTYPE", 9) == 0))
        s_answer(q, SKICK_ETYPE, NULL, "hash incr: the stored value is not an integer");
    else if (q->cmd == BROKER_REDIS_SET && strstr(text, "expire time"))
        s_answer(q, SKICK_EINVAL, NULL, "hash set: ttl_ms too large");
    else {
        broker_log_limited(&q->r->rl, SKICK_LOG_WARNING, "redis", "%s answered an error: %s",
                           q->r->shown, text);
        snprintf(q->r->answer, sizeof q->r->answer, "Redis answered: %s", text);
        s_answer(q, SKICK_EBACKEND, NULL, q->r->answer);
    }
}

/*  The result of reply rep (not an error, not a SCAN step) for q: 0 with
 *v (may stay NULL: a JSON null), or an error code with *why. */
static int s_result(const s_req_t *q, const redisReply *rep, json_object **v, const char **why)
{
    *why = "Redis gave an answer of an unexpected type";
    switch (q->cmd) {
    case BROKER_REDIS_GET:
        if (rep->type == REDIS_REPLY_NIL) {
            *why = "no such key";
            return SKICK_ENOTFOUND;
        }
        if (rep->type != REDIS_REPLY_STRING ||
            skick_redis_decode(rep->str, (size_t) rep->len, v) != 0) {
            *why = "the value in Redis is not text";
            return SKICK_EBACKEND;
        }
        return 0;
    case BROKER_REDIS_SET:
        if (rep->type != REDIS_REPLY_STATUS && !(q->nx && rep->type == REDIS_REPLY_NIL))
            return SKICK_EBACKEND;
        if (q->nx) /* NX on a present key: nil */
            *v = json_object_new_boolean(rep->type == REDIS_REPLY_STATUS);
        return 0;
    case BROKER_REDIS_DELETE:
        if (rep->type != REDIS_REPLY_INTEGER)
            return SKICK_EBACKEND;
        *why = "no such key";
        return rep->integer > 0 ? 0 : SKICK_ENOTFOUND;
    case BROKER_REDIS_CONTAINS:
    case BROKER_REDIS_INCR:
        if (rep->type != REDIS_REPLY_INTEGER)
            return SKICK_EBACKEND;
        *v = q->cmd == BROKER_REDIS_INCR ? json_object_new_int64(rep->integer)
                                         : json_object_new_boolean(rep->integer > 0);
        return 0;
    case BROKER_REDIS_KEYS:
        break;
    }
    return SKICK_EBACKEND;
}

static void s_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void) ac;
    s_req_t *q = privdata;
    broker_redis_t *r = q->r;
    const redisReply *rep = reply;
    if (!rep)
        s_answer(q, r->refused ? SKICK_EBACKEND : SKICK_EUNREACH, NULL,
                 r->closing   ? "the broker is stopping"
                 : r->refused ? "Redis refused the broker's login (see the broker's log)"
                              : "the connection to Redis went before it answered");
    else if (!q->arg)
        ; /* timed out: nobody waits for it any more */
    else if (rep->type == REDIS_REPLY_ERROR)
        s_error(q, rep->str);
    else if (q->cmd != BROKER_REDIS_KEYS) {
        json_object *v = NULL;
        const char *why;
        int code = s_result(q, rep, &v, &why);
        s_answer(q, code, v, code ? why : NULL);
    } else {
        int rc = s_scan_more(q, rep);
        if (rc == 0)
            return; /* the next step has q now */
        if (rc < 0)
            s_answer(q, SKICK_EBACKEND, NULL, "Redis gave SCAN an unexpected answer");
    }
    r->inflight--;
    s_req_free(q);
}

/*  Why a request cannot be queued now (0: it can), with *why. */
static int s_refuse_now(broker_redis_t *r, const char **why)
{
    if (!r->ac && r->refused) {
        *why = "Redis refused the broker's login (see the broker's log)";
        return SKICK_EBACKEND;
    }
    if (!r->ac) {
        snprintf(r->answer, sizeof r->answer, "the broker's Redis (%s) cannot be reached",
                 r->shown);
        *why = r->answer;
        return SKICK_EUNREACH;
    }
    if (r->inflight >= r->max_inflight) {
        broker_log_limited(&r->rl, SKICK_LOG_WARNING, "redis",
                           "%zu hash requests in flight to %s (the bound): refusing more with "
                           "EBACKLOG; is Redis slow?",
                           r->inflight, r->shown);
        *why = "too many hash requests in flight to Redis";
        return SKICK_EBACKLOG;
    }
    return 0;
}

/*  Queue the command of op for q. false: the connection would not take it. */
static bool s_send(s_req_t *q, const broker_redis_op_t *op, const char *key, size_t keylen,
                   const char *text, size_t textlen)
{
    static const char *const names[] = {
        [BROKER_REDIS_GET] = "GET",     [BROKER_REDIS_SET] = "SET",
        [BROKER_REDIS_DELETE] = "DEL",  [BROKER_REDIS_CONTAINS] = "EXISTS",
        [BROKER_REDIS_INCR] = "INCRBY", [BROKER_REDIS_KEYS] = "SCAN",
    };
    if (op->cmd == BROKER_REDIS_KEYS)
        return s_scan_step(q, "0", 1);
    char num[24];
    const char *argv[6] = {names[op->cmd], key};
    size_t lens[6] = {strlen(names[op->cmd]), keylen};
    int argc = 2;
    if (op->cmd == BROKER_REDIS_INCR) {
        snprintf(num, sizeof num, "%lld", (long long) op->delta);
        argv[argc] = num;
        lens[argc++] = strlen(num);
    } else if (op->cmd == BROKER_REDIS_SET) {
        argv[argc] = text;
        lens[argc++] = textlen;
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

int broker_redis_run(broker_redis_t *self, const broker_redis_op_t *op, broker_redis_done_fn *done,
                     void *arg, const char **why)
{
    assert(self && op && done && arg);
    char key[SKICK_REDIS_KEY_MAX];
    int keylen = 0;
    if (op->cmd != BROKER_REDIS_KEYS &&
        (keylen = skick_redis_key(key, sizeof key, op->table, op->key)) < 0) {
        *why = "hash: with Redis a key may not hold '{', '}' or ':'";
        return SKICK_EINVAL;
    }
    int code = s_refuse_now(self, why);
    if (code)
        return code;
    s_req_t *q = broker_alloc(sizeof *q);
    *q = (s_req_t){.r = self, .done = done, .arg = arg, .cmd = op->cmd, .nx = op->nx};
    char *text = NULL;
    size_t textlen = 0;
    if (op->cmd == BROKER_REDIS_SET && skick_redis_encode(op->value, &text, &textlen) != 0) {
        free(q);
        *why = "hash set: the value cannot be stored (null, a string that is not UTF-8, "
               "NaN or infinity)";
        return SKICK_EINVAL;
    }
    if (op->cmd == BROKER_REDIS_KEYS) {
        if (skick_redis_match(q->match, sizeof q->match, op->table) < 0) {
            free(q);
            *why = "hash keys: the table name cannot be matched";
            return SKICK_EINVAL;
        }
        q->keys = json_object_new_array();
        q->seen = zhashx_new();
        q->max = op->max;
        q->prefix = strlen(op->table) + 1;
    }
    bool sent = s_send(q, op, key, (size_t) keylen, text, textlen);
    free(text);
    if (!sent) {
        s_req_free(q);
        *why = "the connection to Redis is closing";
        return SKICK_EUNREACH;
    }
    self->inflight++;
    q->deadline = zclock_mono() + self->timeout_ms;
    q->prev = self->tail;
    *(self->tail ? &self->tail->next : &self->head) = q;
    self->tail = q;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* The loop's side                                                            */

broker_redis_t *broker_redis_new(const skick_redis_url_t *url, size_t max_inflight, int timeout_ms)
{
    assert(url);
    broker_redis_t *r = broker_alloc(sizeof *r);
    *r = (broker_redis_t){.url = *url,
                          .max_inflight = max_inflight ? max_inflight : BROKER_REDIS_INFLIGHT,
                          .timeout_ms = timeout_ms > 0 ? timeout_ms : BROKER_REDIS_TIMEOUT_MS,
                          .backoff_ms = BROKER_REDIS_BACKOFF_MIN_MS};
    skick_redis_url_format(url, r->shown, sizeof r->shown);
    s_connect(r, zclock_mono());
    return r;
}

void broker_redis_destroy(broker_redis_t **self_p)
{
    broker_redis_t *r = *self_p;
    if (!r)
        return;
    r->closing = true;
    if (r->ac)
        redisAsyncFree(r->ac); /* every request's callback runs (NULL) and frees it */
    assert(!r->head && r->inflight == 0);
    free(r);
    *self_p = NULL;
}

int broker_redis_fd(broker_redis_t *self, short *events)
{
    *events = (short) ((self->reading ? POLLIN : 0) | (self->writing ? POLLOUT : 0));
    return self->ac ? self->ac->c.fd : -1;
}

void broker_redis_io(broker_redis_t *self, short revents)
{
    if (self->ac && (revents & (POLLIN | POLLERR | POLLHUP)))
        redisAsyncHandleRead(self->ac); /* may free it: s_ev_cleanup clears self->ac */
    if (self->ac && (revents & POLLOUT) && self->writing)
        redisAsyncHandleWrite(self->ac);
}

void broker_redis_tick(broker_redis_t *self, int64_t now)
{
    while (self->head && self->head->deadline <= now) {
        snprintf(self->answer, sizeof self->answer, "Redis (%s) did not answer within %d ms",
                 self->shown, self->timeout_ms);
        s_answer(self->head, SKICK_ETIMEDOUT, NULL, self->answer); /* unlinks it */
    }
    if (self->state == S_CONNECTING && self->ac && now >= self->ready_by) {
        snprintf(self->why, sizeof self->why, "not ready within %d ms", BROKER_REDIS_CONNECT_MS);
        redisAsyncFree(self->ac); /* its requests fail with EUNREACH, s_ev_cleanup retries */
    }
    if (self->state == S_DOWN && self->retry_at && now >= self->retry_at)
        s_connect(self, now);
}

const char *broker_redis_shown(const broker_redis_t *self)
{
    return self->shown;
}

bool broker_redis_connected(const broker_redis_t *self)
{
    return self->state == S_READY;
}

size_t broker_redis_inflight(const broker_redis_t *self)
{
    return self->inflight;
}
