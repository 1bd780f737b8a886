/*  skick_client - a program outside the cluster talking to the broker: the link

    One DEALER on the broker's control endpoint (PROTOCOL.md "The cluster").
    The client says HELLO as a "client" peer, is welcomed, and from then on
    every envelope it sends carries the next link sequence number; incoming
    ones are checked against the broker's numbering (gaps and duplicates are
    counted and logged) by skick_client_recv.c.

    Nothing runs in the background. Every call that waits goes through
    skick__client_wait, which reads the socket and dispatches what arrives
    (skick__client_drain, skick_client_recv.c: welcome, REPLY, conversation
    turns, dead letters, heartbeats), sends heartbeats and HELLOs when due,
    and returns when the caller's condition holds or its deadline passes.
    The operations themselves (requests, sends, conversations) are in
    skick_client_ops.c. Turns for open conversations are queued on the
    conversation; anything else that nobody waits for is counted and
    dropped. When the broker does not know us (it restarted, or forgot an
    idle client) it answers with a dead letter (EUNREACH) and "say HELLO":
    we say HELLO again and the waiting operation re-sends its envelope once.
    A CURVE secret key file that others may read is refused (EINVAL).

    This file owns the link itself: the error text, the shared helpers,
    sending with sequence numbers, HELLO and heartbeats, the wait loop,
    connecting (endpoint and CURVE checks) and destroying.

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

/* ---- waiting ------------------------------------------------------------- */

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
