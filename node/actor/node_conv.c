/*  node_conv - conversations: skick_call, converse / respond, and their waits

    A conversation is identified by its cid (128 random bits as 32 hex
    digits) and lives on one actor; the other side has its own object with
    the same cid. Turns travel as the seed's messages:

        {"action":"receive_reply","cid":C,"sender":A,"message":M}
        {"action":"end_conversation","cid":C}

    plus two additions old peers ignore: "last": true on a receive_reply
    that also ends the conversation (skick_reply), and "error"/"code" on an
    end_conversation that ends it abnormally (the partner failed, stopped,
    refused the message, or was never there). Those frames are routed at
    delivery straight to the conversation, never through the mailbox, so a
    handler blocked in skick_call still gets its answer.

    Index: one shard-wide u64 map keyed by actor id + cid; each actor also
    lists its conversations so they can be ended when it stops.
*/
#include "node_actor.h"

#include <stdlib.h>
#include <string.h>

typedef struct node_inbox {
    struct node_inbox *next; /* FIFO link */
    json_object *msg;        /* owned "message" value */
} node_inbox_t;

struct skick_conv {
    skick_actor_t *actor;     /* owner */
    skick_conv_t *next;       /* owner's list */
    skick_conv_t *prev;
    skick_conv_t *hnext;      /* index chain for colliding keys */
    uint64_t key;             /* index key */
    node_inbox_t *in_head;    /* turns not yet received */
    node_inbox_t *in_tail;
    node_wait_t *waiter;      /* skick_conv_recv in progress, or NULL */
    bool ended;               /* the partner ended it (or sent its last turn) */
    bool timed_out;           /* a wait for its partner timed out */
    int end_err;              /* ECLOSED or EPARTNER once ended */
    char cid[33];             /* conversation id */
    char partner[SKICK_ADDR_LEN + 1];
};

/*  Index key: 64 bits of the cid mixed with the actor id. The cid is random,
    so keys rarely collide; a chain per key (hnext) handles it when they do,
    and lookups always compare the full cid and the actor. */
static uint64_t s_key(const skick_actor_t *a, const char *cid)
{
    uint64_t k = node_hash_str(cid) ^ (a->id * 0x9e3779b97f4a7c15ULL);
    return k ? k : 1;
}

void node_conv_init(node_shard_t *sh)
{
    node_u64map_t *m = node_malloc(sizeof *m);
    node_u64map_init(m);
    sh->convs = m;
}

void node_conv_fini(node_shard_t *sh)
{
    node_u64map_free(sh->convs);
    free(sh->convs);
    sh->convs = NULL;
}

static skick_conv_t *s_find(skick_actor_t *a, const char *cid)
{
    if (!a->x || !a->x->convs || strnlen(cid, 33) != 32)
        return NULL;
    skick_conv_t *c = node_u64map_get(a->shard->convs, s_key(a, cid));
    while (c && (c->actor != a || memcmp(c->cid, cid, 32) != 0))
        c = c->hnext;
    return c;
}

static skick_conv_t *s_new(skick_actor_t *a, const char *cid, const char *partner)
{
    skick_conv_t *c = node_calloc(1, sizeof *c);
    c->actor = a;
    if (cid) {
        memcpy(c->cid, cid, 32);
        c->cid[32] = '\0';
    } else {
        node_new_cid(c->cid);
    }
    memcpy(c->partner, partner, SKICK_ADDR_LEN);
    c->partner[SKICK_ADDR_LEN] = '\0';
    node_extra_t *x = node_extra(a);
    c->next = x->convs;
    if (x->convs)
        x->convs->prev = c;
    x->convs = c;
    c->key = s_key(a, c->cid);
    c->hnext = node_u64map_get(a->shard->convs, c->key);
    node_u64map_put(a->shard->convs, c->key, c);
    return c;
}

static void s_free(skick_conv_t *c)
{
    skick_actor_t *a = c->actor;
    int outcome = c->timed_out ? SKICK_ETIMEDOUT : c->ended ? c->end_err : SKICK_OK;
    if (outcome == SKICK_ECLOSED)
        outcome = SKICK_OK; /* the partner ended it without an error */
    a->shard->conv_outcomes[outcome > 0 && outcome < SKICK_ERR_COUNT_ ? outcome : 0]++;
    node_u64map_t *idx = a->shard->convs;
    skick_conv_t *head = node_u64map_get(idx, c->key);
    if (head == c) {
        if (c->hnext)
            node_u64map_put(idx, c->key, c->hnext);
        else
            node_u64map_del(idx, c->key);
    } else {
        while (head && head->hnext != c)
            head = head->hnext;
        if (head)
            head->hnext = c->hnext;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        a->x->convs = c->next;
    if (c->next)
        c->next->prev = c->prev;
    while (c->in_head) {
        node_inbox_t *n = c->in_head;
        c->in_head = n->next;
        json_object_put(n->msg);
        free(n);
    }
    free(c);
}

static int s_send_frame(skick_conv_t *c, json_object **frame)
{
    return node_deliver(c->actor->shard, node_ref_of(c->actor), c->partner, frame);
}

static void s_send_end(skick_conv_t *c, const char *error, int code)
{
    json_object *end = json_object_new_object();
    json_object_object_add(end, "action", json_object_new_string("end_conversation"));
    json_object_object_add(end, "cid", json_object_new_string(c->cid));
    if (error) {
        json_object_object_add(end, "error", json_object_new_string(error));
        json_object_object_add(end, "code", json_object_new_string(skick_err_name(code)));
    }
    if (s_send_frame(c, &end) != 0)
        SKICK_LOG(SKICK_LOG_DEBUG, "conv", "%s: partner of %s already gone",
                  c->actor->addr, c->cid);
}

/* ------------------------------------------------------------------------- */

void node_conv_deliver(skick_actor_t *a, json_object **body)
{
    node_shard_t *sh = a->shard;
    json_object *b = *body;
    *body = NULL;
    const char *cid = skick_get_string(b, "cid", NULL);
    skick_conv_t *c = cid ? s_find(a, cid) : NULL;
    if (!c || c->ended) {
        sh->stats.stale_replies++;
        SKICK_LOG(SKICK_LOG_DEBUG, "conv", "%s: frame for unknown or ended conversation",
                  a->addr);
        json_object_put(b);
        return;
    }
    const char *action = skick_get_string(b, "action", "");
    if (strcmp(action, "receive_reply") == 0) {
        json_object *m = NULL;
        json_object_object_get_ex(b, "message", &m);
        node_inbox_t *n = node_malloc(sizeof *n);
        n->next = NULL;
        n->msg = json_object_get(m);
        if (c->in_tail)
            c->in_tail->next = n;
        else
            c->in_head = n;
        c->in_tail = n;
        if (skick_get_bool(b, "last", false)) {
            c->ended = true;
            c->end_err = SKICK_ECLOSED;
        }
    } else {
        c->ended = true;
        /* keep EDEAD, ESCHEMA, EACTION... */
        c->end_err = skick_err_code(skick_get_string(b, "code", NULL),
                                    skick_get_string(b, "error", NULL) ? SKICK_EPARTNER
                                                                       : SKICK_ECLOSED);
        SKICK_LOG(SKICK_LOG_DEBUG, "conv", "%s: conversation %s ended by partner: %s",
                  a->addr, c->cid, skick_get_string(b, "error", "normally"));
    }
    json_object_put(b);
    if (c->waiter)
        node_wait_complete(c->waiter, SKICK_OK);
}

void node_conv_end_all(skick_actor_t *a, int err, const char *reason)
{
    while (a->x && a->x->convs) {
        skick_conv_t *c = a->x->convs;
        if (!c->ended)
            s_send_end(c, reason, err);
        s_free(c);
    }
}

/* ------------------------------------------------------------------------- */

static int64_t s_timeout(skick_actor_t *a, int64_t t)
{
    return t < 0 ? a->shard->cfg.call_timeout_ms : t;
}

skick_conv_t *skick_converse(skick_actor_t *self, const char *address,
                             json_object **greeting)
{
    node_ref_t ref;
    if (!greeting || !*greeting || !json_object_is_type(*greeting, json_type_object) ||
        !address || node_parse_addr(address, &ref) != 0) {
        if (greeting) {
            json_object_put(*greeting);
            *greeting = NULL;
        }
        skick_set_errno(SKICK_EINVAL);
        return NULL;
    }
    skick_conv_t *c = s_new(self, NULL, address);
    json_object_object_add(*greeting, "sender", json_object_new_string(self->addr));
    json_object_object_add(*greeting, "cid", json_object_new_string(c->cid));
    if (node_deliver_ref(self->shard, node_ref_of(self), ref, greeting, false) != 0) {
        s_free(c);
        return NULL;
    }
    return c;
}

skick_conv_t *skick_respond(skick_actor_t *self, json_object *msg)
{
    node_ref_t ref;
    const char *cid = skick_get_string(msg, "cid", NULL);
    const char *sender = skick_get_string(msg, "sender", NULL);
    if (!cid || strnlen(cid, 33) != 32 || !sender || node_parse_addr(sender, &ref) != 0) {
        skick_set_errno(SKICK_EFORMAT);
        return NULL;
    }
    if (node_cur && node_cur->msg && node_cur->msg->body == msg)
        node_cur->answered = true;
    skick_conv_t *c = s_find(self, cid);
    return c ? c : s_new(self, cid, sender);
}

static json_object *s_turn(skick_conv_t *c, json_object **msg, bool last)
{
    json_object *f = json_object_new_object();
    json_object_object_add(f, "action", json_object_new_string("receive_reply"));
    json_object_object_add(f, "cid", json_object_new_string(c ? c->cid : ""));
    json_object_object_add(f, "sender", json_object_new_string(c ? c->actor->addr : ""));
    json_object_object_add(f, "message", *msg);
    *msg = NULL;
    if (last)
        json_object_object_add(f, "last", json_object_new_boolean(1));
    return f;
}

int skick_conv_send(skick_conv_t *conv, json_object **msg)
{
    if (!conv || !msg || !*msg) {
        if (msg) {
            json_object_put(*msg);
            *msg = NULL;
        }
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    if (conv->ended) {
        json_object_put(*msg);
        *msg = NULL;
        skick_set_errno(conv->end_err);
        return -1;
    }
    json_object *f = s_turn(conv, msg, false);
    return s_send_frame(conv, &f);
}

json_object *skick_conv_recv(skick_conv_t *conv, int64_t timeout_ms)
{
    if (!conv) {
        skick_set_errno(SKICK_EINVAL);
        return NULL;
    }
    if (!conv->in_head && !conv->ended && timeout_ms == 0) {
        skick_set_errno(SKICK_ETIMEDOUT); /* a look, not a wait (skick.h) */
        return NULL;
    }
    if (!conv->in_head && !conv->ended) {
        node_wait_t w;
        node_wait_init(&w);
        conv->waiter = &w;
        int rc = node_wait(&w, s_timeout(conv->actor, timeout_ms));
        conv->waiter = NULL;
        conv->timed_out |= rc == SKICK_ETIMEDOUT && !conv->in_head;
        if (rc != SKICK_OK && !conv->in_head) {
            skick_set_errno(rc);
            return NULL;
        }
    }
    if (conv->in_head) {
        node_inbox_t *n = conv->in_head;
        conv->in_head = n->next;
        if (!conv->in_head)
            conv->in_tail = NULL;
        json_object *m = n->msg;
        free(n);
        return m ? m : json_object_new_object(); /* a null turn arrives as {} */
    }
    skick_set_errno(conv->end_err);
    return NULL;
}

json_object *skick_conv_ask(skick_conv_t *conv, json_object **msg, int64_t timeout_ms)
{
    if (skick_conv_send(conv, msg) != 0)
        return NULL;
    return skick_conv_recv(conv, timeout_ms);
}

void skick_conv_close(skick_conv_t **conv_p)
{
    skick_conv_t *c = conv_p ? *conv_p : NULL;
    if (!c)
        return;
    *conv_p = NULL;
    if (!c->ended)
        s_send_end(c, NULL, 0);
    s_free(c);
}

json_object *skick_call(skick_actor_t *self, const char *address, json_object **msg,
                        int64_t timeout_ms)
{
    skick_conv_t *c = skick_converse(self, address, msg);
    if (!c)
        return NULL;
    json_object *reply = skick_conv_recv(c, timeout_ms);
    int err = reply ? SKICK_OK : skick_errno();
    if (!reply && (err == SKICK_ETIMEDOUT || err == SKICK_ESTOPPED) && !c->ended)
        s_send_end(c, "the caller gave up waiting", err);
    else if (!c->ended)
        s_send_end(c, NULL, 0); /* one question, one answer: we are done */
    s_free(c);
    if (!reply)
        skick_set_errno(err);
    return reply;
}

int skick_reply(skick_actor_t *self, json_object *msg, json_object **reply)
{
    const char *cid = skick_get_string(msg, "cid", NULL);
    const char *sender = skick_get_string(msg, "sender", NULL);
    node_ref_t ref;
    if (!reply || !*reply || !cid || strnlen(cid, 33) != 32 || !sender ||
        node_parse_addr(sender, &ref) != 0) {
        if (reply) {
            json_object_put(*reply);
            *reply = NULL;
        }
        skick_set_errno(SKICK_EFORMAT);
        return -1;
    }
    if (node_cur && node_cur->msg && node_cur->msg->body == msg)
        node_cur->answered = true;
    skick_conv_t *c = s_find(self, cid);
    json_object *f = json_object_new_object();
    json_object_object_add(f, "action", json_object_new_string("receive_reply"));
    json_object_object_add(f, "cid", json_object_new_string(cid));
    json_object_object_add(f, "sender", json_object_new_string(self->addr));
    json_object_object_add(f, "message", *reply);
    json_object_object_add(f, "last", json_object_new_boolean(1));
    *reply = NULL;
    if (c)
        s_free(c);
    return node_deliver_ref(self->shard, node_ref_of(self), ref, &f, false);
}

/* ------------------------------------------------------------------------- */

typedef struct {
    skick_handler_fn *fn; /* body */
    json_object *msg;     /* owned, lent to fn */
} node_task_arg_t;

static void s_task_body(node_exec_t *exec, void *arg)
{
    node_task_arg_t *t = arg;
    if (!exec->cancelled)
        t->fn(exec->actor, t->msg);
    json_object_put(t->msg);
    free(t);
}

int skick_spawn_task(skick_actor_t *self, skick_handler_fn *fn, json_object **msg)
{
    json_object *m = msg ? *msg : NULL;
    if (msg)
        *msg = NULL;
    if (!fn || (self->flags & (NODE_A_STOPPING | NODE_A_STOPPED))) {
        json_object_put(m);
        skick_set_errno(fn ? SKICK_ESTOPPED : SKICK_EINVAL);
        return -1;
    }
    node_task_arg_t *t = node_malloc(sizeof *t);
    t->fn = fn;
    t->msg = m ? m : json_object_new_object();
    node_task_post(self->shard, self, NODE_EXEC_TASK, s_task_body, t);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* The cluster                                                                */

static void s_end_with(skick_conv_t *c, int err)
{
    c->ended = true;
    c->end_err = err;
    if (c->waiter)
        node_wait_complete(c->waiter, SKICK_OK);
}

void node_conv_shard_lost(node_shard_t *sh, uint64_t id, int err)
{
    node_u64map_t *idx = sh->convs;
    char prefix[17];
    node_format_id(prefix, id ? id : sh->id);
    for (size_t i = 0; idx && i < idx->cap; i++)
        for (skick_conv_t *c = idx->keys[i] ? idx->vals[i] : NULL; c; c = c->hnext)
            if (!c->ended && (memcmp(c->partner, prefix, 16) == 0) == (id != 0))
                s_end_with(c, err);
}

void node_conv_fail(skick_actor_t *a, const char *cid, int err, const char *why)
{
    skick_conv_t *c = s_find(a, cid);
    if (!c || c->ended)
        return;
    SKICK_LOG(SKICK_LOG_DEBUG, "conv", "%s: conversation %s failed: %s", a->addr, c->cid, why);
    s_end_with(c, err);
}
