/*  node_admit - getting admitted by the broker, and saying why not

    A shard joins by saying HELLO (its body is made here) until the broker
    welcomes it (the welcome itself is node_cluster.c's). From the start, or from the moment the
    broker link is lost, until the welcome, this file:

      * retries. HELLO goes again after NODE_ADMIT_RETRY_MIN_MS, doubling to
        NODE_ADMIT_RETRY_MAX_MS, while a connection is up and nobody
        answers; at once when a connection completes its handshake (a broker
        appeared). A HELLO that cannot leave (ZMQ_IMMEDIATE: no connection)
        is tried again on the next tick, which costs one failed send.
        libzmq's own TCP reconnects back off to the same maximum.
      * watches the DEALER's connection through a ZeroMQ socket monitor
        (zmq_socket_monitor: an inproc PAIR, read on the cluster tick):
        connected, handshake done, handshake failed. A failed handshake
        (CURVE: the broker does not admit our certificate, we have the wrong
        key for the broker, or only one side uses CURVE) makes libzmq give
        up on the endpoint in some cases (a ZAP refusal, a mechanism
        mismatch) and retry every ~100 ms in others (a wrong server key). So
        after one, the three sockets are disconnected, and they are
        connected again on the back-off.
      * says so. A warning after NODE_ADMIT_REPORT_FIRST_MS, then again with
        its own back-off up to NODE_ADMIT_REPORT_MAX_MS, names the best
        reason known: the broker's refusal (EVERSION), envelopes of another
        protocol version, a failed handshake, no connection, or no answer.
        A new reason of the first three kinds is logged at once, at most
        NODE_ADMIT_EARLY times per wait. The welcome ends the wait
        ("joined the cluster").

    Runs on the shard's reactor thread; the monitor PAIR is owned here.
*/
#include "node_cluster_int.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NODE_ADMIT_RETRY_MIN_MS 500
#define NODE_ADMIT_RETRY_MAX_MS 10000
#define NODE_ADMIT_REPORT_FIRST_MS 5000
#define NODE_ADMIT_REPORT_MAX_MS 300000
#define NODE_ADMIT_EARLY 3   /* reasons logged at once per wait */
#define NODE_ADMIT_EVENTS 64 /* monitor events read per tick */

enum { S_NO_CONNECTION, S_CONNECTED, S_HANDSHAKEN }; /* node_admit_t.conn */

int node_admit_init(node_shard_t *sh, bool curve, const char *dir_out)
{
    node_cluster_t *c = sh->cluster;
    node_admit_t *a = &c->admit;
    a->curve = curve;
    snprintf(a->dir_out, sizeof a->dir_out, "%s", dir_out);
    /* libzmq's own reconnects back off too (100 ms doubling to this) */
    zsock_set_reconnect_ivl_max(c->dealer, NODE_ADMIT_RETRY_MAX_MS);
    zsock_set_reconnect_ivl_max(c->sub, NODE_ADMIT_RETRY_MAX_MS);
    char ep[80];
    snprintf(ep, sizeof ep, "inproc://skick-admit-%016llx-%p", (unsigned long long) sh->id,
             (void *) c);
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED |
                 ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(zsock_resolve(c->dealer), ep, events) != 0)
        return -1;
    a->monitor = zsock_new(ZMQ_PAIR);
    if (!a->monitor || zsock_connect(a->monitor, "%s", ep) != 0) {
        zmq_socket_monitor(zsock_resolve(c->dealer), NULL, 0);
        zsock_destroy(&a->monitor);
        return -1;
    }
    return 0;
}

void node_admit_fini(node_shard_t *sh)
{
    node_cluster_t *c = sh->cluster;
    if (!c->admit.monitor)
        return;
    zmq_socket_monitor(zsock_resolve(c->dealer), NULL, 0);
    zsock_destroy(&c->admit.monitor);
}

json_object *node_admit_hello_body(node_shard_t *sh, const node_cluster_opts_t *o)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_object *b = json_object_new_object();
    json_object_object_add(b, "peer", json_object_new_string("shard"));
    json_object_object_add(b, "pid", json_object_new_int64(getpid()));
    json_object_object_add(b, "host", json_object_new_string(host));
    json_object_object_add(b, "version", json_object_new_string(SKICK_VERSION_STRING));
    json_object *roles = json_object_new_array();
    if (sh->front)
        json_object_array_add(roles, json_object_new_string("front"));
    if (sh->back)
        json_object_array_add(roles, json_object_new_string("back"));
    for (const char *const *r = o->roles; r && *r; r++)
        json_object_array_add(roles, json_object_new_string(*r));
    json_object_object_add(b, "roles", roles);
    json_object_object_add(b, "ws", o->ws_url ? json_object_new_string(o->ws_url) : NULL);
    json_object *apps = json_object_new_array();
    for (int i = 0; i < o->napps; i++) {
        const char *slash = strrchr(o->apps[i], '/');
        json_object_array_add(apps, json_object_new_string(slash ? slash + 1 : o->apps[i]));
    }
    json_object_object_add(b, "apps", apps);
    return b;
}

/* ------------------------------------------------------------------------- */
/* Retrying                                                                   */

static void s_back_off(node_admit_t *a, int64_t now)
{
    a->next_retry = now + a->retry_ms;
    a->retry_ms = a->retry_ms * 2 < NODE_ADMIT_RETRY_MAX_MS ? a->retry_ms * 2
                                                           : NODE_ADMIT_RETRY_MAX_MS;
}

/*  A HELLO, or, after a failed handshake, the sockets connected again. */
static void s_retry(node_shard_t *sh, int64_t now)
{
    node_cluster_t *c = sh->cluster;
    node_admit_t *a = &c->admit;
    if (a->reconnect) {
        a->reconnect = false;
        if (zsock_connect(c->dealer, "%s", c->endpoint) != 0 ||
            zsock_connect(c->sub, "%s", a->dir_out) != 0)
            SKICK_LOG(SKICK_LOG_WARNING, "cluster", "cannot connect to the broker at %s "
                      "again: %s", c->endpoint, zmq_strerror(zmq_errno()));
        s_back_off(a, now); /* the HELLO follows the handshake */
        return;
    }
    if (node_cluster_hello(sh) == 0) {
        a->hellos++;
        s_back_off(a, now);
    }
}

void node_admit_wait(node_shard_t *sh)
{
    node_admit_t *a = &sh->cluster->admit;
    int64_t now = node_now(sh);
    a->since = now;
    a->retry_ms = NODE_ADMIT_RETRY_MIN_MS;
    a->next_retry = now;
    a->report_ms = NODE_ADMIT_REPORT_FIRST_MS;
    a->next_report = now + NODE_ADMIT_REPORT_FIRST_MS;
    a->reports = a->early = 0;
    a->hellos = 0;
    a->why[0] = '\0';
    s_retry(sh, now);
}

/* ------------------------------------------------------------------------- */
/* Reasons                                                                    */

/*  A reason learnt now; a new one is logged at once (a few per wait). */
static void s_reason(node_shard_t *sh, bool handshake, const char *text)
{
    node_cluster_t *c = sh->cluster;
    node_admit_t *a = &c->admit;
    a->why_handshake = handshake;
    if (strcmp(text, a->why) == 0)
        return;
    snprintf(a->why, sizeof a->why, "%s", text);
    if (!c->welcomed && a->early < NODE_ADMIT_EARLY) {
        a->early++;
        a->next_report = node_now(sh);
    }
}

void node_admit_refused(node_shard_t *sh, const char *code, const char *why)
{
    char text[sizeof sh->cluster->admit.why];
    snprintf(text, sizeof text, "the broker refused it (%.20s: %.180s)", code, why);
    s_reason(sh, false, text);
}

void node_admit_foreign(node_shard_t *sh, const char *why)
{
    char text[sizeof sh->cluster->admit.why];
    snprintf(text, sizeof text, "the broker speaks another protocol version (%.150s): upgrade "
             "one side", why);
    s_reason(sh, false, text);
}

static void s_handshake_failed(node_shard_t *sh, int event, uint32_t value)
{
    node_cluster_t *c = sh->cluster;
    node_admit_t *a = &c->admit;
    char detail[160], text[sizeof a->why];
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf(detail, sizeof detail, "the broker does not admit this shard's certificate "
                 "(ZAP status %u: is its public key in the shards/ directory of the "
                 "broker's --curve-allow?)",
                 value);
    else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf(detail, sizeof detail, "the two sides use different security mechanisms "
                 "(is CURVE configured on one side only?)");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        snprintf(detail, sizeof detail, "protocol error 0x%08x (is the broker's public key "
                 "right?)", value);
    else
        snprintf(detail, sizeof detail, "the broker closed the connection during it (%s)",
                 a->curve ? "is the broker's public key right?"
                          : "does the broker use CURVE? is it a Skick broker?");
    snprintf(text, sizeof text, "%s handshake failed: %s", a->curve ? "CURVE" : "ZeroMQ", detail);
    s_reason(sh, true, text);
    a->conn = S_NO_CONNECTION;
    if (a->reconnect)
        return; /* already disconnected; more events of the same attempt */
    /* Stop libzmq's own retrying (none, or every ~100 ms) and connect again
       on the back-off. */
    zsock_disconnect(c->dealer, "%s", c->endpoint);
    zsock_disconnect(c->sub, "%s", a->dir_out);
    a->reconnect = true;
    s_back_off(a, node_now(sh));
}

static void s_event(node_shard_t *sh, int event, uint32_t value)
{
    node_cluster_t *c = sh->cluster;
    node_admit_t *a = &c->admit;
    switch (event) {
    case ZMQ_EVENT_CONNECTED:
        a->conn = S_CONNECTED;
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        a->conn = S_HANDSHAKEN;
        if (a->why_handshake)
            a->why[0] = '\0';
        if (!c->welcomed) { /* a broker is there: HELLO now */
            a->retry_ms = NODE_ADMIT_RETRY_MIN_MS;
            a->next_retry = node_now(sh);
        }
        break;
    case ZMQ_EVENT_DISCONNECTED:
    case ZMQ_EVENT_CLOSED:
        a->conn = S_NO_CONNECTION;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        s_handshake_failed(sh, event, value);
        break;
    default:
        break;
    }
}

/*  Read the monitor's events: two frames each, the first holding the event
    number (16 bits) and a value (32 bits) in host order. */
static void s_read_events(node_shard_t *sh)
{
    void *mon = zsock_resolve(sh->cluster->admit.monitor);
    for (int i = 0; i < NODE_ADMIT_EVENTS && sh->cluster; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&m) >= 6) {
            memcpy(&event, zmq_msg_data(&m), 2);
            memcpy(&value, (const uint8_t *) zmq_msg_data(&m) + 2, 4);
        }
        while (zmq_msg_more(&m) && zmq_msg_recv(&m, mon, 0) >= 0)
            ; /* the endpoint */
        zmq_msg_close(&m);
        s_event(sh, event, value);
    }
}

/*  The warning: the reason learnt, or a guess from the connection's state. */
static void s_report(node_shard_t *sh, int64_t now)
{
    node_cluster_t *c = sh->cluster;
    node_admit_t *a = &c->admit;
    const char *why = a->why;
    if (!why[0] && a->conn == S_NO_CONNECTION)
        why = "no connection (is the broker running? is the endpoint right?)";
    else if (!why[0] && a->conn == S_CONNECTED)
        why = a->curve ? "connected, but the CURVE handshake does not complete (is the key right?)"
                       : "connected, but the handshake does not complete";
    else if (!why[0])
        why = "no answer to HELLO (is it a Skick broker? is it overloaded?)";
    SKICK_LOG(SKICK_LOG_WARNING, "cluster", "not admitted by the broker at %s after %lld s: %s; "
              "still trying", c->endpoint, (long long) ((now - a->since) / 1000), why);
    a->reports++;
    a->next_report = now + a->report_ms;
    a->report_ms = a->report_ms * 2 < NODE_ADMIT_REPORT_MAX_MS ? a->report_ms * 2
                                                              : NODE_ADMIT_REPORT_MAX_MS;
}

void node_admit_tick(node_shard_t *sh)
{
    node_cluster_t *c = sh->cluster;
    node_admit_t *a = &c->admit;
    if (a->monitor)
        s_read_events(sh);
    if (c->welcomed)
        return;
    int64_t now = node_now(sh);
    if (now >= a->next_retry)
        s_retry(sh, now);
    if (now >= a->next_report)
        s_report(sh, now);
}

void node_admit_welcomed(node_shard_t *sh, const char *broker)
{
    node_cluster_t *c = sh->cluster;
    node_admit_t *a = &c->admit;
    if (a->reports)
        SKICK_LOG(SKICK_LOG_NOTICE, "cluster", "joined the cluster at %s (broker %.16s) after "
                  "%lld s", c->endpoint, broker, (long long) ((node_now(sh) - a->since) / 1000));
    else
        SKICK_LOG(SKICK_LOG_NOTICE, "cluster", "joined the cluster at %s (broker %.16s)",
                  c->endpoint, broker);
    a->reports = 0;
}
