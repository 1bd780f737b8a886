/*  node_ws_conn - the websocket callbacks of civetweb's worker threads

    civetweb calls node_ws_on_connect, node_ws_on_ready, node_ws_on_data and
    node_ws_on_close (registered by node_ws_start) on the worker thread that
    owns the connection, for its whole life. They check the origin and the
    connection limit, take our duplicate of the socket (node_ws_socket.c),
    reassemble fragments, enforce the size and rate limits, parse JSON, and
    queue one event per happening for the reactor (node_ws_push); they never
    touch an actor. They touch only their own connection's entry, the
    registry and the event queue (both under ws->lock). A parsed message is
    handed over whole in its event, which the reactor then owns.

    Ownership of the entry: node_ws_on_connect creates it with one
    reference (civetweb's), node_ws_on_ready enters it in the registry with
    a second, node_ws_on_close drops both (node_ws.c's header comment has
    the whole story). The worker-only fields of node_ws_conn_t (reassembly,
    token bucket) are used here and nowhere else.
*/
#include "node_ws_int.h"
#include "skick_envelope.h"

#include <civetweb.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

/* ------------------------------------------------------------------------- */
/* civetweb callbacks (worker threads)                                        */

static bool s_origin_allowed(node_ws_t *ws, const struct mg_connection *c)
{
    const char *origin = mg_get_header(c, "Origin");
    if (!origin)
        return true; /* not a browser: the origin check protects browsers */
    const node_ws_config_t *cfg = &ws->cfg;
    if (cfg->norigins) {
        for (size_t i = 0; i < cfg->norigins; i++)
            if (strcmp(cfg->origins[i], "*") == 0 || strcmp(cfg->origins[i], origin) == 0)
                return true;
        return false;
    }
    /* Default: the page must come from this server (scheme://Host). */
    const char *host = mg_get_header(c, "Host");
    const char *sep = strstr(origin, "://");
    return host && sep && strcmp(sep + 3, host) == 0;
}

int node_ws_on_connect(const struct mg_connection *c, void *cbdata)
{
    node_ws_t *ws = cbdata;
    if (!s_origin_allowed(ws, c)) {
        SKICK_LOG(SKICK_LOG_WARNING, "ws", "refused a websocket from origin '%.80s'",
                  mg_get_header(c, "Origin"));
        return 1;
    }
    if (atomic_fetch_add(&ws->open, 1) >= ws->cfg.max_connections) {
        atomic_fetch_sub(&ws->open, 1);
        SKICK_LOG(SKICK_LOG_WARNING, "ws", "refused a websocket: %d connections open "
                  "(--max-connections)", ws->cfg.max_connections);
        return 1;
    }
    SSL *ssl;
    int fd = node_ws_conn_socket(c, &ssl);
    if (fd < 0) {
        atomic_fetch_sub(&ws->open, 1);
        SKICK_LOG(SKICK_LOG_ERROR, "ws", "refused a websocket: cannot find its socket (%s)",
                  strerror(errno));
        return 1;
    }
    atomic_fetch_add_explicit(&ws->n.accepted, 1, memory_order_relaxed);
    node_ws_conn_t *e = node_calloc(1, sizeof *e);
    e->ws = ws;
    e->fd = -1;
    pthread_mutex_init(&e->lock, NULL);
    atomic_init(&e->refs, 1);
    atomic_init(&e->input_off, false);
    atomic_init(&e->max_message, ws->cfg.max_message);
    atomic_init(&e->rate, ws->cfg.rate);
    atomic_init(&e->burst, ws->cfg.burst);
    e->tokens = ws->cfg.burst;
    node_ws_conn_attach(e, fd, ssl);
    mg_set_user_connection_data(c, e);
    return 0;
}

void node_ws_on_ready(struct mg_connection *c, void *cbdata)
{
    node_ws_t *ws = cbdata;
    node_ws_conn_t *e = mg_get_user_connection_data(c);
    if (!e)
        return;
    atomic_fetch_add(&e->refs, 1); /* the registry's */
    pthread_mutex_lock(&ws->lock);
    e->id = ++ws->next_id;
    node_u64map_put(&ws->conns, e->id, e);
    pthread_mutex_unlock(&ws->lock);
    node_ws_event_t *ev = node_calloc(1, sizeof *ev);
    ev->kind = EV_OPEN;
    ev->id = e->id;
    const struct mg_request_info *ri = mg_get_request_info(c);
    snprintf(ev->peer, sizeof ev->peer, "%s:%d", ri ? ri->remote_addr : "?",
             ri ? ri->remote_port : 0);
    node_ws_push(ws, ev);
}

static int64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*  Take one token; false when the connection is over its rate. */
static bool s_take_token(node_ws_conn_t *e)
{
    double rate = atomic_load_explicit(&e->rate, memory_order_relaxed);
    if (rate <= 0)
        return true;
    double burst = atomic_load_explicit(&e->burst, memory_order_relaxed);
    int64_t now = s_mono_ns();
    if (e->refill_ns) {
        e->tokens += (double) (now - e->refill_ns) * rate / 1e9;
        if (e->tokens > burst)
            e->tokens = burst;
    }
    e->refill_ns = now;
    if (e->tokens < 1.0)
        return false;
    e->tokens -= 1.0;
    return true;
}

void node_ws_parse(node_ws_event_t *ev, const char *data, size_t len)
{
    /* One strict JSON value (proto/skick_json.c): UTF-8 checked (we echo
       client text in error objects, which must stay valid), no NaN, nesting
       within SKICK_JSON_DEPTH, no trailing bytes. */
    if (skick_json_parse_strict(data, len, &ev->msg) != 0) {
        ev->msg = NULL;
        ev->json_error = true;
    }
}

static void s_queue_message(node_ws_conn_t *e, const char *data, size_t len)
{
    node_ws_event_t *ev = node_calloc(1, sizeof *ev);
    ev->kind = EV_MESSAGE;
    ev->id = e->id;
    atomic_fetch_add_explicit(&e->ws->n.msgs_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->ws->n.bytes_in, len, memory_order_relaxed);
    node_ws_parse(ev, data, len);
    node_ws_push(e->ws, ev);
}

/*  Stop admitting the client's frames and tell the reactor, which closes
    the connection with code and why: after delivering what was admitted
    (drain: a limit the client went over) or at once (a protocol error).
    Frames that arrive meanwhile are dropped; their sender learns why from
    the close code. */
static int s_refuse(node_ws_conn_t *e, int code, const char *why, bool drain,
                    atomic_ulong *counter)
{
    if (atomic_exchange(&e->input_off, true))
        return 1;
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    NODE_LOG_LIMITED(SKICK_LOG_INFO, "ws", "connection %llu: %s: closing it (%d)",
                     (unsigned long long) e->id, why, code);
    node_ws_event_t *ev = node_calloc(1, sizeof *ev);
    ev->kind = EV_REFUSED;
    ev->id = e->id;
    ev->code = code;
    ev->drain = drain;
    snprintf(ev->peer, sizeof ev->peer, "%s", why);
    node_ws_push(e->ws, ev);
    return 1;
}

/*  A frame arrived after input was turned off: drop it; give up on a client
    that keeps talking instead of closing. */
static int s_drop_after_close(node_ws_conn_t *e)
{
    return ++e->dropped < 10000 ? 1 : 0;
}

int node_ws_on_data(struct mg_connection *c, int bits, char *data, size_t len, void *cbdata)
{
    (void) cbdata;
    node_ws_conn_t *e = mg_get_user_connection_data(c);
    int op = bits & 0x0f;
    bool fin = (bits & 0x80) != 0;
    if (!e)
        return 0;
    node_ws_counters_t *n = &e->ws->n;
    atomic_store_explicit(&e->last_rx, node_ws_mono_ms(), memory_order_relaxed);
    switch (op) {
    case MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE:
        node_ws_conn_client_close(e, data, len);
        return 0;
    case MG_WEBSOCKET_OPCODE_PING:
        node_ws_conn_control(e, MG_WEBSOCKET_OPCODE_PONG, data, len);
        return 1;
    case MG_WEBSOCKET_OPCODE_PONG:
        return 1;
    case MG_WEBSOCKET_OPCODE_TEXT:
    case MG_WEBSOCKET_OPCODE_BINARY:
        if (e->in_message)
            return s_refuse(e, 1002, "new message inside a fragmented one", false,
                            &n->protocol_errors);
        e->len = 0;
        break;
    case MG_WEBSOCKET_OPCODE_CONTINUATION:
        if (!e->in_message)
            return s_refuse(e, 1002, "continuation without a message", false,
                            &n->protocol_errors);
        break;
    default:
        return s_refuse(e, 1002, "unknown opcode", false, &n->protocol_errors);
    }
    if (atomic_load_explicit(&e->input_off, memory_order_relaxed))
        return s_drop_after_close(e);
    size_t max = atomic_load_explicit(&e->max_message, memory_order_relaxed);
    if (e->len + len > max)
        return s_refuse(e, 1009, "message too big", true, &n->too_big);
    if (fin && !e->in_message) {
        if (!s_take_token(e))
            return s_refuse(e, 1008, "rate limit exceeded", true, &n->rate_limited);
        s_queue_message(e, data, len); /* the common case: one frame, no copy */
        return 1;
    }
    if (e->len + len > e->cap) {
        e->cap = (e->len + len) * 2 < max ? (e->len + len) * 2 : max;
        e->buf = node_realloc(e->buf, e->cap);
    }
    memcpy(e->buf + e->len, data, len);
    e->len += len;
    e->in_message = !fin;
    if (!fin)
        return 1;
    if (!s_take_token(e))
        return s_refuse(e, 1008, "rate limit exceeded", true, &n->rate_limited);
    s_queue_message(e, e->buf, e->len);
    e->len = 0;
    return 1;
}

void node_ws_on_close(const struct mg_connection *c, void *cbdata)
{
    node_ws_t *ws = cbdata;
    node_ws_conn_t *e = mg_get_user_connection_data(c);
    if (!e)
        return;
    node_ws_conn_gone(e); /* civetweb closes the socket and frees c after we return */
    atomic_fetch_sub(&ws->open, 1);
    if (e->id) {
        pthread_mutex_lock(&ws->lock);
        node_u64map_del(&ws->conns, e->id);
        pthread_mutex_unlock(&ws->lock);
        node_ws_event_t *ev = node_calloc(1, sizeof *ev);
        ev->kind = EV_CLOSED;
        ev->id = e->id;
        node_ws_push(ws, ev);
        node_ws_conn_unref(e); /* the registry's */
    }
    mg_set_user_connection_data(c, NULL);
    node_ws_conn_unref(e); /* civetweb's */
}
