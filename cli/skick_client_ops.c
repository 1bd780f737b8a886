/*  skick_client_ops - control requests, sends and conversations

    Built on the link of skick_client.c: each operation sends its envelope
    and waits with skick__client_wait for the condition that settles it (a
    REPLY with its id, a turn or end of its conversation, a dead letter). If
    the broker makes us say HELLO again meanwhile, what was sent may have
    been refused, so it is sent again once welcomed (s_wait_resending).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "skick_client_int.h"

/* ---- control requests ---------------------------------------------------- */

static bool s_cond_request(skick_client_t *c, void *arg)
{
    (void) arg;
    return c->req.done;
}

/*  Send c->req.body under the current welcome; 0 or -1. */
static int s_request_send(skick_client_t *c)
{
    request_t *r = &c->req;
    r->sent_gen = c->welcome_gen;
    /* From our own address; to the broker (0/0) or to the shard's own
       address S:S (PROTOCOL.md "Control requests"). */
    return skick__client_send(c, SKICK_KIND_CONTROL, 0, c->id, CLIENT_ACTOR_ID, r->shard, r->shard,
                              r->body);
}

typedef struct {
    cond_fn done;       /* what the caller waits for */
    void *arg;          /* its argument */
    unsigned *sent_gen; /* the welcome generation the envelope went out under */
} resend_wait_t;

static bool s_cond_resend(skick_client_t *c, void *arg)
{
    resend_wait_t *w = arg;
    return w->done(c, w->arg) || *w->sent_gen != c->welcome_gen;
}

/*  Wait until done(c, arg); when a new welcome arrives meanwhile (we said
    HELLO again: what we sent may have been refused), re-send with resend,
    which must update *sent_gen. */
static int s_wait_resending(skick_client_t *c, int64_t deadline, cond_fn done, void *arg,
                            unsigned *sent_gen, int (*resend)(skick_client_t *, void *), void *rarg)
{
    resend_wait_t w = {done, arg, sent_gen};
    for (int resent = 0;; resent++) {
        if (skick__client_wait(c, deadline, s_cond_resend, &w) != 0)
            return -1;
        if (done(c, arg))
            return 0;
        if (resent == 3)
            return skick__client_fail(SKICK_EUNREACH, "the broker at %s keeps forgetting us",
                                      c->endpoint);
        if (resend(c, rarg) != 0)
            return -1;
    }
}

static int s_request_resend(skick_client_t *c, void *arg)
{
    (void) arg;
    return s_request_send(c);
}

int skick_client_request(skick_client_t *self, const char *shard, const char *op, json_object *args,
                         int timeout_ms, json_object **result)
{
    if (result)
        *result = NULL;
    if (!self || !op || !*op)
        return skick__client_fail(SKICK_EINVAL, "no client or no operation");
    uint64_t to = 0;
    if (shard && !skick__client_parse_shard(shard, &to))
        return skick__client_fail(SKICK_EINVAL, "'%s' is not a shard id (16 lowhex)", shard);
    if (args && !json_object_is_type(args, json_type_object))
        return skick__client_fail(SKICK_EINVAL, "request arguments must be a JSON object");
    request_t *r = &self->req;
    json_object_put(r->body);
    json_object_put(r->result);
    memset(r, 0, sizeof *r);
    r->id = ++self->next_request;
    r->shard = to;
    r->op = op;
    r->body = json_object_new_object();
    if (args) {
        json_object_object_foreach(args, key, val)
        {
            if (strcmp(key, "op") != 0 && strcmp(key, "id") != 0)
                json_object_object_add(r->body, key, json_object_get(val));
        }
    }
    json_object_object_add(r->body, "op", json_object_new_string(op));
    json_object_object_add(r->body, "id", json_object_new_int64((int64_t) r->id));
    int64_t deadline = skick__client_deadline(self, timeout_ms);
    int rc = 0;
    if (!self->welcomed && skick__client_wait(self, deadline, skick__client_welcomed, NULL) != 0)
        rc = -1;
    if (rc == 0 && s_request_send(self) != 0)
        rc = -1;
    if (rc == 0)
        rc = s_wait_resending(self, deadline, s_cond_request, NULL, &r->sent_gen, s_request_resend,
                              NULL);
    if (rc == 0 && r->code != SKICK_OK)
        rc = skick__client_fail(r->code, "%s", r->error);
    else if (rc == 0 && result)
        *result = json_object_get(r->result);
    json_object_put(r->result);
    json_object_put(r->body);
    memset(r, 0, sizeof *r);
    return rc;
}

int skick_client_ps(skick_client_t *self, int timeout_ms, json_object **result)
{
    return skick_client_request(self, NULL, "ps", NULL, timeout_ms, result);
}

int skick_client_directory(skick_client_t *self, int timeout_ms, json_object **result)
{
    return skick_client_request(self, NULL, "directory", NULL, timeout_ms, result);
}

int skick_client_services(skick_client_t *self, const char *name, int timeout_ms,
                          json_object **result)
{
    json_object *args = json_object_new_object();
    if (name)
        json_object_object_add(args, "name", json_object_new_string(name));
    int rc = skick_client_request(self, NULL, "services", args, timeout_ms, result);
    json_object_put(args);
    return rc;
}

int skick_client_stats(skick_client_t *self, int timeout_ms, json_object **result)
{
    return skick_client_request(self, NULL, "stats", NULL, timeout_ms, result);
}

int skick_client_shard_actors(skick_client_t *self, const char *shard, int limit, int timeout_ms,
                              json_object **result)
{
    if (!shard)
        return skick__client_fail(SKICK_EINVAL, "no shard given");
    json_object *args = json_object_new_object();
    if (limit > 0)
        json_object_object_add(args, "limit", json_object_new_int(limit));
    int rc = skick_client_request(self, shard, "actors", args, timeout_ms, result);
    json_object_put(args);
    return rc;
}

int skick_client_shard_sessions(skick_client_t *self, const char *shard, int timeout_ms,
                                json_object **result)
{
    if (!shard)
        return skick__client_fail(SKICK_EINVAL, "no shard given");
    return skick_client_request(self, shard, "sessions", NULL, timeout_ms, result);
}

int skick_client_shard_stats(skick_client_t *self, const char *shard, int timeout_ms,
                             json_object **result)
{
    if (!shard)
        return skick__client_fail(SKICK_EINVAL, "no shard given");
    return skick_client_request(self, shard, "stats", NULL, timeout_ms, result);
}

int skick_client_stop(skick_client_t *self, const char *address, int timeout_ms)
{
    if (!skick_client_parse_address(address, NULL, NULL))
        return skick__client_fail(SKICK_EINVAL,
                                  "'%s' is not an address (SHARD:ACTOR, 16 lowhex each)",
                                  address ? address : "(null)");
    char shard[17];
    snprintf(shard, sizeof shard, "%.16s", address);
    json_object *args = json_object_new_object();
    json_object_object_add(args, "address", json_object_new_string(address));
    int rc = skick_client_request(self, shard, "stop", args, timeout_ms, NULL);
    json_object_put(args);
    return rc;
}

/* ---- actor messages ------------------------------------------------------ */

static int s_check_message(const char *to, json_object *msg, uint64_t *shard, uint64_t *actor)
{
    if (!skick_client_parse_address(to, shard, actor))
        return skick__client_fail(SKICK_EINVAL,
                                  "'%s' is not an address (SHARD:ACTOR, 16 lowhex each)",
                                  to ? to : "(null)");
    if (!msg || !json_object_is_type(msg, json_type_object) || !skick__client_str(msg, "action") ||
        !*skick__client_str(msg, "action"))
        return skick__client_fail(SKICK_EINVAL,
                                  "a message must be a JSON object with a string \"action\"");
    if (!skick_json_finite(msg))
        return skick__client_fail(SKICK_EINVAL, "a message cannot hold NaN or Infinity");
    return 0;
}

/*  Make sure the broker still knows us before a fire-and-forget send: after
    a long silence, one broker round trip (which says HELLO again if needed). */
static int s_fresh_link(skick_client_t *c)
{
    if (skick__client_drain(c) != 0)
        return -1;
    /* The broker forgets a client that sent nothing for 30 s. */
    if (c->welcomed && skick__client_now() - c->last_out_ms < IDLE_RECHECK_MS)
        return 0;
    int saved = skick_errno();
    int rc = skick_client_stats(c, 0, NULL);
    if (rc != 0 && skick_errno() != SKICK_EUNREACH && skick_errno() != SKICK_ETIMEDOUT) {
        skick_set_errno(saved); /* the broker answered: the link is fine */
        rc = 0;
    }
    return rc;
}

int skick_client_send(skick_client_t *self, const char *to, json_object *msg)
{
    uint64_t shard, actor;
    if (!self)
        return skick__client_fail(SKICK_EINVAL, "no client");
    if (s_check_message(to, msg, &shard, &actor) != 0 || s_fresh_link(self) != 0)
        return -1;
    return skick__client_send_actor(self, shard, actor, msg);
}

int skick_client_send_confirm(skick_client_t *self, const char *to, json_object *msg,
                              int timeout_ms)
{
    uint64_t shard, actor;
    if (!self)
        return skick__client_fail(SKICK_EINVAL, "no client");
    if (s_check_message(to, msg, &shard, &actor) != 0)
        return -1;
    char shard_text[17];
    snprintf(shard_text, sizeof shard_text, "%.16s", to);
    for (int attempt = 0;; attempt++) {
        if (s_fresh_link(self) != 0)
            return -1;
        unsigned gen = self->welcome_gen;
        self->confirm_shard = shard;
        self->confirm_id = actor;
        self->confirm_code = 0;
        if (skick__client_send_actor(self, shard, actor, msg) != 0) {
            self->confirm_shard = 0;
            return -1;
        }
        /* The same path, after the message: the broker's dead letter (no
           such shard) or the shard's (no such actor, mailbox full) arrives
           before this answer. */
        int rc = skick_client_request(self, shard_text, "stats", NULL, timeout_ms, NULL);
        int code = self->confirm_code;
        self->confirm_shard = 0;
        if (gen != self->welcome_gen && attempt < 2)
            continue; /* we said HELLO again meanwhile: the message may be lost */
        if (code)
            return skick__client_fail(code, "%s", self->confirm_error);
        return rc;
    }
}

/* ---- conversations ------------------------------------------------------- */

static void s_cid(char out[33])
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t) sizeof b) {
        uint64_t x = skick__client_random64(), y = skick__client_random64();
        memcpy(b, &x, 8);
        memcpy(b + 8, &y, 8);
    }
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int s_conv_send_opener(skick_client_t *c, void *arg)
{
    skick_client_conv_t *v = arg;
    v->sent_gen = c->welcome_gen;
    if (!v->opener)
        return 0; /* answered already: nothing to re-send */
    return skick__client_send_actor(c, v->to_shard, v->to_id, v->opener);
}

skick_client_conv_t *skick_client_converse(skick_client_t *self, const char *to, json_object *msg)
{
    uint64_t shard, actor;
    if (!self) {
        skick__client_fail(SKICK_EINVAL, "no client");
        return NULL;
    }
    if (s_check_message(to, msg, &shard, &actor) != 0)
        return NULL;
    skick_client_conv_t *v = calloc(1, sizeof *v);
    json_object *opener = NULL;
    if (!v || json_object_deep_copy(msg, &opener, NULL) != 0) {
        free(v);
        skick__client_fail(SKICK_ENOMEM, "out of memory");
        return NULL;
    }
    v->client = self;
    v->to_shard = shard;
    v->to_id = actor;
    s_cid(v->cid);
    json_object_object_add(opener, "cid", json_object_new_string(v->cid));
    json_object_object_add(opener, "sender", json_object_new_string(self->address));
    v->opener = opener;
    if (skick__client_drain(self) != 0 ||
        (!self->welcomed && skick__client_wait(self, skick__client_deadline(self, 0),
                                               skick__client_welcomed, NULL) != 0) ||
        s_conv_send_opener(self, v) != 0) {
        json_object_put(v->opener);
        free(v);
        return NULL;
    }
    v->next = self->convs;
    self->convs = v;
    return v;
}

static bool s_cond_turn(skick_client_t *c, void *arg)
{
    skick_client_conv_t *v = arg;
    return v->head || v->ended || v->partner_last;
}

int skick_client_conv_recv(skick_client_conv_t *v, int timeout_ms, json_object **message)
{
    if (message)
        *message = NULL;
    if (!v)
        return skick__client_fail(SKICK_EINVAL, "no conversation");
    skick_client_t *c = v->client;
    if (!v->head && !v->ended && !v->partner_last) {
        if (!c)
            return skick__client_fail(SKICK_ECLOSED, "the client of this conversation is gone");
        if (s_wait_resending(c, skick__client_deadline(c, timeout_ms), s_cond_turn, v, &v->sent_gen,
                             s_conv_send_opener, v) != 0)
            return -1;
    }
    if (v->head) {
        turn_t *t = v->head;
        v->head = t->next;
        if (!v->head)
            v->tail = NULL;
        if (message)
            *message = t->msg;
        else
            json_object_put(t->msg);
        free(t);
        return 1;
    }
    if (v->ended && v->end_code != SKICK_OK)
        return skick__client_fail(v->end_code, "%s",
                                  v->end_error[0] ? v->end_error : skick_strerror(v->end_code));
    return 0;
}

int skick_client_conv_send(skick_client_conv_t *v, json_object *msg, bool last)
{
    if (!v)
        return skick__client_fail(SKICK_EINVAL, "no conversation");
    skick_client_t *c = v->client;
    if (!c || v->ended || v->we_closed)
        return skick__client_fail(SKICK_ECLOSED, "the conversation is over");
    if (msg && !skick_json_finite(msg))
        return skick__client_fail(SKICK_EINVAL, "a message cannot hold NaN or Infinity");
    json_object *b = json_object_new_object();
    json_object_object_add(b, "action", json_object_new_string("receive_reply"));
    json_object_object_add(b, "cid", json_object_new_string(v->cid));
    json_object_object_add(b, "sender", json_object_new_string(c->address));
    json_object_object_add(b, "message", json_object_get(msg));
    if (last)
        json_object_object_add(b, "last", json_object_new_boolean(1));
    int rc = skick__client_send_actor(c, v->to_shard, v->to_id, b);
    json_object_put(b);
    if (rc == 0 && last)
        v->we_closed = true;
    return rc;
}

const char *skick_client_conv_cid(skick_client_conv_t *self)
{
    return self->cid;
}

/*  Tell the partner we are done, with a code when we gave up. */
static void s_conv_send_end(skick_client_conv_t *v, int code, const char *error)
{
    skick_client_t *c = v->client;
    if (!c || v->ended || v->we_closed || v->partner_last)
        return;
    json_object *b = json_object_new_object();
    json_object_object_add(b, "action", json_object_new_string("end_conversation"));
    json_object_object_add(b, "cid", json_object_new_string(v->cid));
    if (code) {
        json_object_object_add(b, "error", json_object_new_string(error));
        json_object_object_add(b, "code", json_object_new_string(skick_err_name(code)));
    }
    int saved = skick_errno();
    skick__client_send_actor(c, v->to_shard, v->to_id, b);
    skick_set_errno(saved);
    json_object_put(b);
    v->we_closed = true;
}

void skick_client_conv_close(skick_client_conv_t **self_p)
{
    skick_client_conv_t *v = self_p ? *self_p : NULL;
    if (!v)
        return;
    *self_p = NULL;
    s_conv_send_end(v, SKICK_OK, NULL);
    if (v->client) {
        for (skick_client_conv_t **p = &v->client->convs; *p; p = &(*p)->next)
            if (*p == v) {
                *p = v->next;
                break;
            }
    }
    while (v->head) {
        turn_t *t = v->head;
        v->head = t->next;
        json_object_put(t->msg);
        free(t);
    }
    json_object_put(v->opener);
    free(v);
}

int skick_client_ask(skick_client_t *self, const char *to, json_object *msg, int timeout_ms,
                     json_object **answer)
{
    if (answer)
        *answer = NULL;
    skick_client_conv_t *v = skick_client_converse(self, to, msg);
    if (!v)
        return -1;
    json_object *m = NULL;
    int rc = skick_client_conv_recv(v, timeout_ms, &m);
    int code = skick_errno();
    char text[512];
    snprintf(text, sizeof text, "%s", skick_client_last_error());
    if (rc < 0 && code == SKICK_ETIMEDOUT)
        s_conv_send_end(v, SKICK_ETIMEDOUT, "the caller gave up");
    skick_client_conv_close(&v);
    if (rc == 1) {
        if (answer)
            *answer = m;
        else
            json_object_put(m);
        return 0;
    }
    if (rc == 0)
        return skick__client_fail(SKICK_ECLOSED,
                                  "the partner ended the conversation without an answer");
    return skick__client_fail(code, "%s", text);
}
