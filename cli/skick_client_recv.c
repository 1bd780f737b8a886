/*  skick_client_recv - what the client does with each envelope from the broker

    skick__client_drain reads every envelope waiting on the DEALER and
    dispatches it: the welcome (or a refusal, or "say HELLO"), a REPLY for
    the request being waited for, conversation turns and ends, dead letters
    (matched to the request, the conversation or the send_confirm they
    settle) and shard losses. Incoming envelopes are checked against the
    broker's link numbering first (gaps and duplicates are counted and
    logged). Nothing here sends or waits: skick__client_wait
    (skick_client.c) calls the drain and tests the caller's condition
    against what it recorded.

    Ownership: a turn's message is taken (json_object_get) into the
    conversation's queue, a REPLY's result into c->req.result; the envelope
    itself stays the caller's (drain destroys each one it read).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "skick/log.h"
#include "skick_client_int.h"
#include "skick_wire.h"

/*  The error code a wire code name ("EUNREACH") stands for; SKICK_EPROTO
    for none, or for a name this build does not know. */
static int s_code_from_name(const char *name)
{
    if (!name)
        return SKICK_EPROTO;
    for (int i = 1; i < SKICK_ERR_COUNT_; i++)
        if (strcmp(skick_err_name(i), name) == 0)
            return i;
    return SKICK_EPROTO; /* a code this build does not know */
}

/* ---- reading ------------------------------------------------------------- */

/*  Read one envelope from the DEALER: 1 with *out, 0 when nothing waits, -1
    refused (logged), -2 socket error. */
static int s_recv(skick_client_t *c, skick_envelope_t **out)
{
    char why[128] = "";
    int rc = skick_wire_recv(c->sock, false, ZMQ_DONTWAIT, NULL, NULL, out, why, sizeof why);
    if (rc == -1 && skick_errno() == SKICK_EVERSION && !c->welcomed) {
        c->fatal = SKICK_EVERSION; /* waiting longer cannot help */
        snprintf(c->fatal_error, sizeof c->fatal_error,
                 "the broker at %.200s speaks another protocol version (%.120s)", c->endpoint, why);
    } else if (rc == -1) {
        SKICK_LOG(SKICK_LOG_WARNING, "client", "refused an envelope from the broker: %s", why);
    }
    return rc;
}

/* ---- dispatching --------------------------------------------------------- */

/*  The open conversation cid names, or NULL. */
static skick_client_conv_t *s_conv_find(skick_client_t *c, const char *cid)
{
    if (!cid)
        return NULL;
    for (skick_client_conv_t *v = c->convs; v; v = v->next)
        if (strcmp(v->cid, cid) == 0)
            return v;
    return NULL;
}

/*  End v with code and error (once: later ends are ignored); its opener
    is not re-sent any more. */
static void s_conv_end(skick_client_conv_t *v, int code, const char *error)
{
    if (v->ended)
        return;
    v->ended = true;
    v->end_code = code;
    snprintf(v->end_error, sizeof v->end_error, "%s", error ? error : "");
    json_object_put(v->opener);
    v->opener = NULL;
}

static void s_on_welcome(skick_client_t *c, skick_envelope_t *e, json_object *welcome)
{
    json_object *b = e->body;
    if (json_object_get_boolean(welcome)) {
        const char *broker = skick__client_str(b, "broker");
        snprintf(c->broker, sizeof c->broker, "%s", broker ? broker : "");
        json_object *v;
        c->heartbeat_ms = skick__client_has(b, "heartbeat_ms", &v) ? json_object_get_int(v) : 500;
        c->lost_after_ms =
            skick__client_has(b, "lost_after_ms", &v) ? json_object_get_int(v) : 3000;
        if (c->heartbeat_ms < 10 || c->heartbeat_ms > 60000)
            c->heartbeat_ms = 500;
        if (c->lost_after_ms < c->heartbeat_ms || c->lost_after_ms > 600000)
            c->lost_after_ms = 3000;
        c->welcomed = true;
        c->welcome_gen++;
        c->link.last_in = 0; /* the broker's numbering restarts at its welcome */
        skick_link_accept(&c->link, e->seq);
        return;
    }
    const char *code = skick__client_str(b, "code");
    const char *error = skick__client_str(b, "error");
    if (error && strcmp(error, "say HELLO") == 0) {
        SKICK_LOG(SKICK_LOG_DEBUG, "client", "the broker does not know us: saying HELLO again");
        c->welcomed = false;
        c->last_hello_ms = 0;
        return;
    }
    c->welcomed = false;
    c->fatal = s_code_from_name(code);
    snprintf(c->fatal_error, sizeof c->fatal_error, "the broker refused us (%s): %s",
             code ? code : "?", error ? error : "no reason given");
}

static void s_on_reply(skick_client_t *c, skick_envelope_t *e)
{
    json_object *v;
    if (skick__client_has(e->body, "welcome", &v)) {
        s_on_welcome(c, e, v);
        return;
    }
    request_t *r = &c->req;
    if (!skick__client_has(e->body, "id", &v) || !r->id || r->done ||
        (uint64_t) json_object_get_int64(v) != r->id) {
        c->dropped++;
        SKICK_LOG(SKICK_LOG_DEBUG, "client", "dropped a REPLY nobody waits for");
        return;
    }
    r->done = true;
    json_object *ok;
    if (skick__client_has(e->body, "ok", &ok) && json_object_get_boolean(ok)) {
        r->code = SKICK_OK;
        json_object *res = NULL;
        skick__client_has(e->body, "result", &res);
        r->result = json_object_get(res);
        return;
    }
    const char *code = skick__client_str(e->body, "code"),
               *error = skick__client_str(e->body, "error");
    r->code = s_code_from_name(code);
    snprintf(r->error, sizeof r->error, "%s", error ? error : skick_strerror(r->code));
}

static void s_on_actor(skick_client_t *c, skick_envelope_t *e)
{
    const char *action = skick__client_str(e->body, "action");
    skick_client_conv_t *v = s_conv_find(c, skick__client_str(e->body, "cid"));
    if (!action || !v || v->ended) {
        c->dropped++;
        SKICK_LOG(SKICK_LOG_DEBUG, "client", "dropped an actor message (%s) nobody waits for",
                  action ? action : "no action");
        return;
    }
    if (strcmp(action, "receive_reply") == 0) {
        if (v->partner_last) {
            c->dropped++;
            return;
        }
        turn_t *t = calloc(1, sizeof *t);
        if (!t)
            return;
        json_object *m = NULL;
        skick__client_has(e->body, "message", &m);
        t->msg = json_object_get(m);
        if (v->tail)
            v->tail->next = t;
        else
            v->head = t;
        v->tail = t;
        json_object *last;
        if (skick__client_has(e->body, "last", &last) && json_object_get_boolean(last))
            v->partner_last = true;
        json_object_put(v->opener); /* answered: no re-send any more */
        v->opener = NULL;
        const char *sender = skick__client_str(e->body, "sender");
        uint64_t s, a;
        if (skick_client_parse_address(sender, &s, &a)) {
            v->to_shard = s;
            v->to_id = a;
        }
    } else if (strcmp(action, "end_conversation") == 0) {
        const char *code = skick__client_str(e->body, "code");
        const char *error = skick__client_str(e->body, "error");
        s_conv_end(v, code ? s_code_from_name(code) : SKICK_OK, error);
    } else {
        c->dropped++;
    }
}

static void s_on_dead_letter(skick_client_t *c, skick_envelope_t *e)
{
    c->dead_letters++;
    const char *code_name = skick__client_str(e->body, "code"),
               *error = skick__client_str(e->body, "error");
    const char *action = skick__client_str(e->body, "action");
    int code = s_code_from_name(code_name);
    if (code == SKICK_EUNREACH && e->from_shard == c->id) {
        /* The broker does not know us: a "say HELLO" follows; the waiting
           operation re-sends after the new welcome. */
        c->welcomed = false;
        c->last_hello_ms = 0;
        return;
    }
    char text[300];
    snprintf(text, sizeof text, "%s%s%s", error ? error : skick_strerror(code),
             action ? ", undelivered action: " : "", action ? action : "");
    if (code == SKICK_EPROTO && (!e->to_shard || e->to_shard == c->id)) {
        /* The broker could not read what we sent (it cannot name the
           recipient: 0/0, or our own address). Before
           the welcome that was our HELLO: retrying cannot help. */
        if (!c->welcomed) {
            c->fatal = SKICK_EPROTO;
            snprintf(c->fatal_error, sizeof c->fatal_error,
                     "the broker refused our HELLO as malformed: %s", text);
            return;
        }
        if (c->req.id && !c->req.done) {
            c->req.done = true;
            c->req.code = SKICK_EPROTO;
            snprintf(c->req.error, sizeof c->req.error, "the broker refused the request: %s", text);
            return;
        }
    }
    skick_client_conv_t *v = s_conv_find(c, skick__client_str(e->body, "cid"));
    if (v) {
        s_conv_end(v, code, text);
        return;
    }
    request_t *r = &c->req;
    if (r->id && !r->done && e->to_shard == r->shard && (!action || strcmp(action, r->op) == 0)) {
        r->done = true;
        r->code = code;
        snprintf(r->error, sizeof r->error, "%s", text);
        return;
    }
    if (c->confirm_shard && e->to_shard == c->confirm_shard && e->to_id == c->confirm_id &&
        !c->confirm_code) {
        c->confirm_code = code;
        snprintf(c->confirm_error, sizeof c->confirm_error, "%s", text);
        return;
    }
    SKICK_LOG(SKICK_LOG_WARNING, "client", "dead letter for %016llx:%016llx: %s (%s)",
              (unsigned long long) e->to_shard, (unsigned long long) e->to_id,
              code_name ? code_name : "?", text);
}

static void s_on_lost(skick_client_t *c, skick_envelope_t *e)
{
    uint64_t lost;
    if (!skick__client_parse_shard(skick__client_str(e->body, "shard"), &lost))
        return;
    const char *reason = skick__client_str(e->body, "reason");
    char text[200];
    snprintf(text, sizeof text, "shard %016llx was lost (%.120s)", (unsigned long long) lost,
             reason ? reason : "no reason given");
    for (skick_client_conv_t *v = c->convs; v; v = v->next)
        if (v->to_shard == lost && !v->ended) {
            char why[sizeof text + 24];
            snprintf(why, sizeof why, "the partner's %s", text);
            s_conv_end(v, SKICK_EPARTNER, why);
        }
    if (c->req.id && !c->req.done && c->req.shard == lost) {
        c->req.done = true;
        c->req.code = SKICK_EUNREACH;
        snprintf(c->req.error, sizeof c->req.error, "%s", text);
    }
}

static void s_dispatch(skick_client_t *c, skick_envelope_t *e)
{
    c->last_in_ms = skick__client_now();
    bool welcome_reply = e->kind == SKICK_KIND_REPLY && skick__client_has(e->body, "welcome", NULL);
    if (c->welcomed && !welcome_reply) {
        int64_t missing = skick_link_accept(&c->link, e->seq);
        if (missing < 0) {
            SKICK_LOG(SKICK_LOG_DEBUG, "client", "dropped a duplicate envelope (seq %llu)",
                      (unsigned long long) e->seq);
            return;
        }
        if (missing > 0)
            SKICK_LOG(SKICK_LOG_WARNING, "client",
                      "%lld envelope(s) from the broker missing "
                      "before seq %llu",
                      (long long) missing, (unsigned long long) e->seq);
    }
    switch (e->kind) {
    case SKICK_KIND_REPLY:
        s_on_reply(c, e);
        break;
    case SKICK_KIND_ACTOR:
        s_on_actor(c, e);
        break;
    case SKICK_KIND_DEAD_LETTER:
        s_on_dead_letter(c, e);
        break;
    case SKICK_KIND_LOST:
        s_on_lost(c, e);
        break;
    case SKICK_KIND_HEARTBEAT:
    case SKICK_KIND_DIRECTORY:
        break;
    default:
        c->dropped++;
        SKICK_LOG(SKICK_LOG_DEBUG, "client", "ignored a %s envelope", skick_kind_name(e->kind));
    }
}

/*  Read everything waiting. 0, or -1 with EUNREACH on a socket error. */
int skick__client_drain(skick_client_t *c)
{
    for (;;) {
        skick_envelope_t *e = NULL;
        int rc = s_recv(c, &e);
        if (rc == 0)
            return 0;
        if (rc == -2)
            return skick__client_fail(SKICK_EUNREACH, "broker link: %s", zmq_strerror(errno));
        if (rc == 1) {
            s_dispatch(c, e);
            skick_envelope_destroy(&e);
        }
    }
}
