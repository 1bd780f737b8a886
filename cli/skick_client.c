/*  skick_client - a program outside the cluster talking to the broker

    One DEALER on the broker's control endpoint (PROTOCOL.md "The cluster").
    The client says HELLO as a "client" peer, is welcomed, and from then on
    every envelope it sends carries the next link sequence number; incoming
    ones are checked against the broker's numbering (gaps and duplicates are
    counted and logged).

    Nothing runs in the background. Every call that waits goes through
    skick__client_wait, which reads the socket, dispatches what arrives
    (welcome, REPLY, conversation turns, dead letters, heartbeats), sends
    heartbeats and HELLOs when due, and returns when the caller's condition
    holds or its deadline passes. The operations themselves (requests,
    sends, conversations) are in skick_client_ops.c. Turns for open conversations are queued on the
    conversation; anything else that nobody waits for is counted and
    dropped. When the broker does not know us (it restarted, or forgot an
    idle client) it answers with a dead letter (EUNREACH) and "say HELLO":
    we say HELLO again and the waiting operation re-sends its envelope once.
    A CURVE secret key file that others may read is refused (EINVAL).

    Ownership: the client owns its socket, context and conversations' queued
    turns; conversations are owned by the caller and detached (client =
    NULL) when the client goes first.
*/
#include "skick/client.h"

#include <czmq.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "skick/log.h"
#include "skick/skick.h"
#include "skick_secure.h"
#include "skick_client_int.h"
#include "skick_wire.h"

#define HELLO_EVERY_MS 1000 /* re-send HELLO this often until welcomed */
#define LINGER_MS 1000      /* time given to queued sends at destroy */

static _Thread_local char s_errmsg[512];

int skick__client_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_errmsg, sizeof s_errmsg, fmt, ap);
    va_end(ap);
    skick_set_errno(code);
    return -1;
}

const char *skick_client_last_error(void)
{
    return s_errmsg;
}

int64_t skick__client_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t skick__client_random64(void)
{
    uint64_t v = 0;
    while (v == 0) {
        if (getrandom(&v, sizeof v, 0) != (ssize_t) sizeof v)
            v = ((uint64_t) rand() << 32) ^ (uint64_t) rand() ^ (uint64_t) skick__client_now();
    }
    return v;
}

static int s_code_from_name(const char *name)
{
    if (!name)
        return SKICK_EPROTO;
    for (int i = 1; i < SKICK_ERR_COUNT_; i++)
        if (strcmp(skick_err_name(i), name) == 0)
            return i;
    return SKICK_EPROTO; /* a code this build does not know */
}

const char *skick__client_str(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

bool skick__client_has(json_object *o, const char *key, json_object **v)
{
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, v);
}

static bool s_lowhex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static uint64_t s_hex64(const char *s)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++)
        v = (v << 4) | (uint64_t) (s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
    return v;
}

bool skick_client_parse_address(const char *text, uint64_t *shard, uint64_t *actor)
{
    if (!text || strlen(text) != 33 || text[16] != ':' || !s_lowhex(text, 16) ||
        !s_lowhex(text + 17, 16))
        return false;
    uint64_t s = s_hex64(text), a = s_hex64(text + 17);
    if (s == 0 || a == 0)
        return false;
    if (shard)
        *shard = s;
    if (actor)
        *actor = a;
    return true;
}

bool skick__client_parse_shard(const char *text, uint64_t *out)
{
    if (!text || strlen(text) != 16 || !s_lowhex(text, 16) || s_hex64(text) == 0)
        return false;
    *out = s_hex64(text);
    return true;
}

/* ---- sending ------------------------------------------------------------- */

/*  Send one envelope (body borrowed). Returns 0 or -1 with EUNREACH. */
int skick__client_send(skick_client_t *c, int kind, uint32_t flags, uint64_t from_shard,
                       uint64_t from_id, uint64_t to_shard, uint64_t to_id, json_object *body)
{
    skick_envelope_t e = {.kind = (uint8_t) kind,
                          .flags = flags,
                          .from_shard = from_shard,
                          .from_id = from_id,
                          .to_shard = to_shard,
                          .to_id = to_id,
                          .body = body};
    skick_link_t saved = c->link;
    e.seq = skick_link_next(&c->link);
    if (skick_wire_send(c->sock, NULL, 0, &e, ZMQ_DONTWAIT) != 0) {
        c->link = saved; /* nothing left: the number is still free */
        if (errno == EAGAIN)
            return skick__client_fail(SKICK_EUNREACH,
                                      "cannot send to the broker at %s: not connected "
                                      "(is it running?)",
                                      c->endpoint);
        return skick__client_fail(SKICK_EUNREACH, "cannot send to the broker at %s: %s",
                                  c->endpoint, zmq_strerror(errno));
    }
    c->last_out_ms = skick__client_now();
    return 0;
}

/*  Our own link traffic (HELLO, HEARTBEAT, CONTROL): from our own address
    CLIENTID:0000000000000001, to the broker (0/0) (PROTOCOL.md "Joining"). */
static int s_send_link(skick_client_t *c, int kind, json_object *body)
{
    return skick__client_send(c, kind, 0, c->id, CLIENT_ACTOR_ID, 0, 0, body);
}

/*  Actor traffic: from our actor address. */
int skick__client_send_actor(skick_client_t *c, uint64_t to_shard, uint64_t to_id,
                             json_object *body)
{
    return skick__client_send(c, SKICK_KIND_ACTOR, 0, c->id, CLIENT_ACTOR_ID, to_shard, to_id,
                              body);
}

static void s_send_hello(skick_client_t *c)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_object *b = json_object_new_object();
    json_object_object_add(b, "peer", json_object_new_string("client"));
    json_object_object_add(b, "pid", json_object_new_int64((int64_t) getpid()));
    json_object_object_add(b, "host", json_object_new_string(host));
    json_object_object_add(b, "version", json_object_new_string(SKICK_VERSION_STRING));
    skick_link_t saved = c->link;
    skick_link_reset(&c->link); /* the HELLO carries seq 1 */
    if (s_send_link(c, SKICK_KIND_HELLO, b) == 0)
        c->last_hello_ms = skick__client_now();
    else
        c->link = saved; /* not connected yet: try again on the next turn */
    json_object_put(b);
}

/* ---- receiving ----------------------------------------------------------- */

/*  Read one envelope from the DEALER: 1 with *out, 0 when nothing waits, -1
    refused (logged), -2 socket error. */
static int s_recv(skick_client_t *c, skick_envelope_t **out)
{
    char why[128] = "";
    int rc = skick_wire_recv(c->sock, false, ZMQ_DONTWAIT, NULL, NULL, out, why, sizeof why);
    if (rc == -1 && skick_errno() == SKICK_EVERSION && !c->welcomed) {
        c->fatal = SKICK_EVERSION; /* waiting longer cannot help */
        snprintf(c->fatal_error, sizeof c->fatal_error,
                 "the broker at %.200s speaks another protocol version (%.120s)", c->endpoint,
                 why);
    } else if (rc == -1) {
        SKICK_LOG(SKICK_LOG_WARNING, "client", "refused an envelope from the broker: %s", why);
    }
    return rc;
}

static skick_client_conv_t *s_conv_find(skick_client_t *c, const char *cid)
{
    if (!cid)
        return NULL;
    for (skick_client_conv_t *v = c->convs; v; v = v->next)
        if (strcmp(v->cid, cid) == 0)
            return v;
    return NULL;
}

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

/*  Work the link until cond(c, arg) holds (0) or the deadline passes (-1,
    ETIMEDOUT; EUNREACH when we are not welcomed or the broker went quiet;
    the broker's code after a refusal). cond NULL: until the deadline, 0. */
int skick__client_wait(skick_client_t *c, int64_t deadline, cond_fn cond, void *arg)
{
    int64_t quiet_since =
        skick__client_now(); /* silence is measured from here: we may have been idle */
    for (;;) {
        if (skick__client_drain(c) != 0)
            return -1;
        if (c->fatal)
            return skick__client_fail(c->fatal, "%s", c->fatal_error);
        if (c->welcomed && cond && cond(c, arg))
            return 0;
        int64_t now = skick__client_now();
        if (!c->welcomed && now - c->last_hello_ms >= HELLO_EVERY_MS)
            s_send_hello(c);
        if (c->welcomed && now - c->last_out_ms >= c->heartbeat_ms) {
            json_object *b = json_object_new_object();
            s_send_link(c, SKICK_KIND_HEARTBEAT, b);
            json_object_put(b);
        }
        int64_t heard = c->last_in_ms > quiet_since ? c->last_in_ms : quiet_since;
        if (c->welcomed && now - heard > c->lost_after_ms + c->heartbeat_ms)
            return skick__client_fail(SKICK_EUNREACH,
                                      "the broker at %s went silent (nothing for %lld ms)",
                                      c->endpoint, (long long) (now - heard));
        if (now >= deadline) {
            if (!cond)
                return 0;
            if (!c->welcomed)
                return skick__client_fail(SKICK_EUNREACH,
                                          "no welcome from the broker at %s (is it "
                                          "running? is CURVE configured alike on both sides?)",
                                          c->endpoint);
            return skick__client_fail(SKICK_ETIMEDOUT, "timed out");
        }
        int64_t next = deadline;
        if (!c->welcomed) {
            int64_t h = c->last_hello_ms ? c->last_hello_ms + HELLO_EVERY_MS : now + 50;
            if (h < next)
                next = h;
        } else if (c->last_out_ms + c->heartbeat_ms < next) {
            next = c->last_out_ms + c->heartbeat_ms;
        }
        int64_t wait = next - now;
        if (wait < 1)
            wait = 1;
        if (wait > 1000)
            wait = 1000;
        zmq_pollitem_t item = {.socket = c->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, (long) wait) < 0 && errno != EINTR)
            return skick__client_fail(SKICK_EUNREACH, "broker link: %s", zmq_strerror(errno));
    }
}

int64_t skick__client_deadline(skick_client_t *c, int timeout_ms)
{
    return skick__client_now() + (timeout_ms > 0 ? timeout_ms : c->timeout_ms);
}

/* ---- connecting ---------------------------------------------------------- */

static int s_check_endpoint(const char *ep)
{
    if (!ep || strlen(ep) >= 500)
        return skick__client_fail(SKICK_EINVAL, "no endpoint, or one too long");
    if (strncmp(ep, "ipc://", 6) == 0) {
        const char *path = ep + 6;
        struct stat st;
        if (!*path)
            return skick__client_fail(SKICK_EINVAL, "endpoint '%s' has no path", ep);
        if (path[0] != '@' && stat(path, &st) != 0)
            return skick__client_fail(SKICK_EUNREACH, "no broker at %s: %s (is the cluster up?)",
                                      ep, strerror(errno));
        return 0;
    }
    if (strncmp(ep, "tcp://", 6) == 0) {
        const char *colon = strrchr(ep + 6, ':');
        if (!colon || colon == ep + 6 || !colon[1])
            return skick__client_fail(SKICK_EINVAL, "endpoint '%s' has no port", ep);
        return 0;
    }
    return skick__client_fail(SKICK_EINVAL, "endpoint '%s' is neither ipc:// nor tcp://", ep);
}

static int s_apply_curve(skick_client_t *c, const skick_client_opts_t *o)
{
    if (!o || (!o->curve_secret && !o->curve_server))
        return 0;
    if (!o->curve_secret || !o->curve_server)
        return skick__client_fail(SKICK_EINVAL,
                                  "CURVE needs both the own secret certificate and the "
                                  "broker's public certificate");
    char err[600];
    if (skick_secret_file_check(o->curve_secret, err, sizeof err) != 0)
        return skick__client_fail(SKICK_EINVAL, "%s", err);
    zcert_t *own = zcert_load(o->curve_secret);
    if (!own)
        return skick__client_fail(SKICK_EINVAL, "cannot load the certificate %s", o->curve_secret);
    static const char zeros[41] = "0000000000000000000000000000000000000000";
    if (strcmp(zcert_secret_txt(own), zeros) == 0) {
        zcert_destroy(&own);
        return skick__client_fail(
            SKICK_EINVAL, "%s holds no secret key (give the .cert_secret file)", o->curve_secret);
    }
    zcert_t *server = zcert_load(o->curve_server);
    if (!server) {
        zcert_destroy(&own);
        return skick__client_fail(SKICK_EINVAL, "cannot load the certificate %s", o->curve_server);
    }
    zcert_apply(own, c->sock);
    int rc = zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, zcert_public_key(server), 32);
    zcert_destroy(&own);
    zcert_destroy(&server);
    if (rc != 0)
        return skick__client_fail(SKICK_EINVAL, "CURVE: %s", zmq_strerror(errno));
    return 0;
}

bool skick__client_welcomed(skick_client_t *c, void *arg)
{
    (void) arg;
    return c->welcomed;
}

skick_client_t *skick_client_connect(const char *endpoint, const skick_client_opts_t *opts)
{
    if (s_check_endpoint(endpoint) != 0)
        return NULL;
    skick_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        skick__client_fail(SKICK_ENOMEM, "out of memory");
        return NULL;
    }
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : SKICK_CLIENT_TIMEOUT_DEFAULT;
    c->heartbeat_ms = 500;
    c->lost_after_ms = 3000;
    c->id = skick__client_random64();
    snprintf(c->address, sizeof c->address, "%016llx:%016llx", (unsigned long long) c->id,
             (unsigned long long) CLIENT_ACTOR_ID);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    skick_link_reset(&c->link);
    c->ctx = zmq_ctx_new();
    c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
    if (!c->sock) {
        skick__client_fail(SKICK_ENOMEM, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
        skick_client_destroy(&c);
        return NULL;
    }
    uint8_t rid[8];
    skick_id_to_rid(c->id, rid);
    int one = 1, linger = LINGER_MS;
    zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, rid, sizeof rid);
    zmq_setsockopt(c->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (s_apply_curve(c, opts) != 0) {
        skick_client_destroy(&c);
        return NULL;
    }
    if (zmq_connect(c->sock, endpoint) != 0) {
        skick__client_fail(SKICK_EINVAL, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        skick_client_destroy(&c);
        return NULL;
    }
    if (skick__client_wait(c, skick__client_deadline(c, 0), skick__client_welcomed, NULL) != 0) {
        skick_client_destroy(&c);
        return NULL;
    }
    return c;
}

void skick_client_destroy(skick_client_t **self_p)
{
    skick_client_t *c = self_p ? *self_p : NULL;
    if (!c)
        return;
    *self_p = NULL;
    for (skick_client_conv_t *v = c->convs; v; v = v->next)
        v->client = NULL;
    json_object_put(c->req.result);
    json_object_put(c->req.body);
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c);
}

const char *skick_client_address(skick_client_t *self)
{
    return self->address;
}

const char *skick_client_broker(skick_client_t *self)
{
    return self->broker;
}

int skick_client_pump(skick_client_t *self, int timeout_ms)
{
    return skick__client_wait(self, skick__client_now() + (timeout_ms > 0 ? timeout_ms : 0), NULL,
                              NULL);
}
