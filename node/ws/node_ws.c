/*  node_ws - the websocket server of a front shard, on civetweb

    Threads. civetweb calls node_ws_on_connect, node_ws_on_ready,
    node_ws_on_data and node_ws_on_close (node_ws_conn.c) on the worker
    thread that owns the connection, for its whole life. Those functions
    touch only their own connection's entry, the registry (under
    ws->lock) and the event queue (under ws->lock). Everything that concerns
    actors happens on the reactor, which drains the queue when the eventfd
    fires (s_drain). Parsing JSON happens on the worker thread, so the two
    cores share that work; the parsed object is handed over whole and never
    touched by the worker again.

    Lifetime of a connection entry: created by node_ws_on_connect (one
    reference for civetweb), entered in the registry by node_ws_on_ready (a
    second one), released by node_ws_on_close (both). Anyone else (a reactor
    write, a timer, the writability set) looks the entry up by id and holds
    a reference while it uses it.

    Writes never go through civetweb: at connect time we take our own
    duplicate of the connection's socket (and civetweb's TLS session for
    wss://), and node_ws_write.c writes to it without waiting, queueing what
    the socket does not take. civetweb's pings are off; ours come from
    node_ws_write.c's sweep and pongs are queued like any frame, so every
    byte to the client has one path and frames never interleave.

    Files. This one is the server: the registry and the event queue, the
    reactor's side (s_drain hands each event to the connection's
    receptionist), the settings, civetweb's options, TLS, the built-in HTTP
    pages, start and stop. node_ws_conn.c has the websocket callbacks of the
    worker threads (origin and connection limits, fragments, the size and
    rate limits, JSON parsing, the events they queue); node_ws_socket.c
    finds a new connection's socket and TLS session; node_ws_write.c and
    node_ws_outbox.c are the write path. node_ws_int.h is what they share.
*/
#include "node_ws_int.h"

#include <civetweb.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

static node_ws_t *s_server; /* one per process: civetweb's log callback needs it */

/* ------------------------------------------------------------------------- */
/* Entries                                                                    */

void node_ws_conn_unref(node_ws_conn_t *e)
{
    if (atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    if (e->fd >= 0) /* never reached civetweb's close callback (refused at connect) */
        close(e->fd);
    node_outbox_free(&e->out);
    pthread_mutex_destroy(&e->lock);
    free(e->buf);
    free(e);
}

node_ws_conn_t *node_ws_conn_get(node_ws_t *ws, uint64_t id)
{
    pthread_mutex_lock(&ws->lock);
    node_ws_conn_t *e = node_u64map_get(&ws->conns, id);
    if (e)
        atomic_fetch_add(&e->refs, 1);
    pthread_mutex_unlock(&ws->lock);
    return e;
}

void node_ws_push(node_ws_t *ws, node_ws_event_t *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&ws->lock);
    bool was_empty = ws->head == NULL;
    if (ws->tail)
        ws->tail->next = ev;
    else
        ws->head = ev;
    ws->tail = ev;
    pthread_mutex_unlock(&ws->lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(ws->efd, &one, sizeof one);
        (void) w; /* a full counter still wakes the reactor */
    }
}

int64_t node_ws_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

node_outbox_limits_t node_ws_default_limits(const node_ws_config_t *c)
{
    return (node_outbox_limits_t){c->send_queue, c->send_queue_frames, c->send_policy};
}

/* ------------------------------------------------------------------------- */
/* civetweb's server-wide callbacks (worker threads)                          */

/*  civetweb closes any connection (HTTP too): release an entry whose
    upgrade never completed (the client went away during it), which got no
    ready or close callback. */
static void s_on_conn_close(const struct mg_connection *c)
{
    node_ws_conn_t *e = mg_get_user_connection_data(c);
    if (!e || !s_server)
        return;
    node_ws_conn_gone(e);
    atomic_fetch_sub(&s_server->open, 1);
    mg_set_user_connection_data(c, NULL);
    node_ws_conn_unref(e);
}

static int s_on_log(const struct mg_connection *c, const char *message)
{
    (void) c;
    if (s_server && !s_server->last_error[0]) /* the first line says why */
        snprintf(s_server->last_error, sizeof s_server->last_error, "%s", message);
    SKICK_LOG(SKICK_LOG_WARNING, "civetweb", "%s", message);
    return 1;
}

/* ------------------------------------------------------------------------- */
/* Reactor side                                                               */

static void s_drain(node_shard_t *sh, int fd, void *arg)
{
    node_ws_t *ws = arg;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void) r;
    pthread_mutex_lock(&ws->lock);
    node_ws_event_t *ev = ws->head;
    ws->head = ws->tail = NULL;
    pthread_mutex_unlock(&ws->lock);
    while (ev) {
        node_ws_event_t *next = ev->next;
        uint64_t actor = (uint64_t) (uintptr_t) node_u64map_get(&ws->binds, ev->id);
        if (ev->kind == EV_OPEN) {
            actor = node_receptionist_open(sh, ev->id, ev->peer);
            if (actor)
                node_u64map_put(&ws->binds, ev->id, (void *) (uintptr_t) actor);
        } else if (ev->kind == EV_MESSAGE && actor) {
            node_receptionist_input(sh, actor, &ev->msg, ev->json_error);
        } else if (ev->kind == EV_CLOSED && actor) {
            node_u64map_del(&ws->binds, ev->id);
            node_receptionist_closed(sh, actor);
        } else if (ev->kind == EV_REFUSED) {
            if (actor)
                node_receptionist_refused(sh, actor, ev->code, ev->peer, ev->drain);
            else
                node_ws_close(ws, ev->id, ev->code, ev->peer);
        }
        json_object_put(ev->msg);
        free(ev);
        ev = next;
    }
}

void node_ws_set_limits(node_ws_t *ws, uint64_t id, const skick_session_limits_t *l)
{
    if (ws->fake) { /* the size and rate limits live in the civetweb callbacks */
        node_outbox_limits_t q = node_ws_default_limits(&ws->cfg);
        if (l->send_queue)
            q.bytes = l->send_queue;
        if (l->send_policy)
            q.policy = l->send_policy;
        node_ws_fake_set_queue(ws, id, &q);
        return;
    }
    node_ws_conn_t *e = node_ws_conn_get(ws, id);
    if (!e)
        return;
    if (l->max_message)
        atomic_store(&e->max_message, l->max_message);
    if (l->rate)
        atomic_store(&e->rate, l->rate < 0 ? 0 : l->rate);
    if (l->burst > 0)
        atomic_store(&e->burst, l->burst);
    pthread_mutex_lock(&e->lock);
    if (l->send_queue)
        e->limits.bytes = l->send_queue;
    if (l->send_policy)
        e->limits.policy = l->send_policy;
    pthread_mutex_unlock(&e->lock);
    node_ws_conn_unref(e);
}

json_object *node_ws_stats_json(node_ws_t *ws)
{
    if (ws->fake)
        return NULL;
    json_object *o = json_object_new_object();
    node_ws_counters_t *n = &ws->n;
#define S_COUNT(name)                                                                      \
    json_object_object_add(o, #name, json_object_new_int64((int64_t) atomic_load(&n->name)))
    S_COUNT(slow_closed);
    S_COUNT(refused_frames);
    S_COUNT(queued_frames);
    S_COUNT(aborted);
    S_COUNT(ping_timeouts);
    S_COUNT(rate_limited);
    S_COUNT(too_big);
    S_COUNT(protocol_errors);
#undef S_COUNT
    json_object_object_add(o, "open", json_object_new_int64(atomic_load(&ws->open)));
    return o;
}

void node_ws_unbind(node_ws_t *ws, uint64_t id)
{
    if (ws)
        node_u64map_del(&ws->binds, id);
}

const node_ws_config_t *node_ws_config(node_ws_t *ws)
{
    return &ws->cfg;
}

node_ws_t *node_ws_of(node_shard_t *sh)
{
    return sh->ws;
}

node_type_t *node_ws_rcpt_type(node_ws_t *ws)
{
    if (!ws->rcpt_type.name)
        ws->rcpt_type = (node_type_t){.name = (char *) "receptionist", .module = "skick"};
    return &ws->rcpt_type;
}

const node_type_t *node_ws_rcpt_type_of(node_shard_t *sh)
{
    return sh->ws ? &sh->ws->rcpt_type : NULL;
}

void node_ws_rcpt_type_free(node_ws_t *ws)
{
    node_behaviour_unref(&ws->rcpt_type.cached);
}

/* ------------------------------------------------------------------------- */
/* HTTP: the browser client and the demo page                                 */

extern const char node_www_skick_js[];
extern const size_t node_www_skick_js_len;
extern const char node_www_index_html[];
extern const size_t node_www_index_html_len;

static int s_serve(struct mg_connection *c, const char *type, const char *body, size_t len)
{
    mg_printf(c,
              "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
              "Connection: close\r\n\r\n",
              type, len);
    mg_write(c, body, len);
    return 200;
}

static int s_on_js(struct mg_connection *c, void *cbdata)
{
    (void) cbdata;
    return s_serve(c, "application/javascript; charset=utf-8", node_www_skick_js,
                   node_www_skick_js_len);
}

static int s_on_index(struct mg_connection *c, void *cbdata)
{
    node_ws_t *ws = cbdata;
    if (ws->cfg.www)
        return 0; /* let civetweb serve index.html from the document root */
    return s_serve(c, "text/html; charset=utf-8", node_www_index_html,
                   node_www_index_html_len);
}

/* ------------------------------------------------------------------------- */
/* TLS                                                                        */

/*  civetweb 1.15 as Debian builds it dlopens "libssl.so" and needs
    SSL_get_peer_certificate, which OpenSSL 3 only has as a macro. Loading
    our shim (SONAME libssl.so, defining that one function over libssl.so.3)
    first, globally, makes civetweb's dlopen find it. See docs/internals/
    websockets.md. */
static int s_load_tls(char *err, size_t errlen)
{
    Dl_info info;
    char path[1024];
    const char *env = getenv("SKICK_SSL_SHIM");
    void *h = NULL;
    if (env)
        h = dlopen(env, RTLD_NOW | RTLD_GLOBAL);
    if (!h && dladdr((void *) &node_ws_start, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        int dir = slash ? (int) (slash - info.dli_fname) : 0;
        static const char *const names[] = {"/skick/libskick-sslshim.so",
                                            "/libskick-sslshim.so"};
        for (size_t i = 0; !h && i < 2; i++) {
            snprintf(path, sizeof path, "%.*s%s", dir, info.dli_fname, names[i]);
            h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
        }
    }
    if (!h) {
        snprintf(err, errlen, "TLS unavailable: cannot load the OpenSSL 3 shim for civetweb "
                 "(libskick-sslshim.so; set SKICK_SSL_SHIM to its path)");
        return -1;
    }
    if (!(mg_init_library(MG_FEATURES_TLS) & MG_FEATURES_TLS)) {
        snprintf(err, errlen, "TLS unavailable: civetweb could not load OpenSSL");
        return -1;
    }
    return 0;
}

static int s_password_cb(char *buf, int size, int rwflag, void *userdata)
{
    (void) rwflag;
    const char *pw = userdata;
    int n = (int) strnlen(pw, (size_t) size - 1);
    memcpy(buf, pw, (size_t) n);
    return n;
}

/*  civetweb's TLS context is ready: learn each connection's session when its
    handshake completes (node_ws_conn_socket), then load certificate and key
    ourselves when the key has a password (civetweb has no option for one).
    Returns 1: done, 0: let civetweb load them. */
static int s_init_ssl(void *ssl_ctx, void *user_data)
{
    node_ws_t *ws = user_data;
    SSL_CTX *ctx = ssl_ctx;
    SSL_CTX_set_info_callback(ctx, node_ws_tls_info); /* civetweb's own does nothing */
    if (!ws->cfg.key_password)
        return 0;
    SSL_CTX_set_default_passwd_cb(ctx, s_password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *) ws->cfg.key_password);
    if (SSL_CTX_use_certificate_chain_file(ctx, ws->cfg.cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, ws->cfg.cert, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SKICK_LOG(SKICK_LOG_ERROR, "ws", "cannot load %s with the given password",
                  ws->cfg.cert);
        return -1;
    }
    return 1;
}

/* ------------------------------------------------------------------------- */

void node_ws_defaults(node_ws_config_t *c)
{
    if (!c->host)
        c->host = "127.0.0.1";
    if (!c->port)
        c->port = 8000;
    if (!c->threads)
        c->threads = 1100;
    if (!c->max_connections || c->max_connections > c->threads - 8)
        c->max_connections = c->threads > 24 ? c->threads - 16 : c->threads / 2 + 1;
    if (!c->max_message)
        c->max_message = 65536;
    if (c->rate < 0)
        c->rate = 100;
    if (!c->burst)
        c->burst = c->rate > 0 ? 2 * c->rate : 1;
    if (!c->handshake_timeout_ms)
        c->handshake_timeout_ms = 10000;
    if (!c->idle_timeout_ms)
        c->idle_timeout_ms = 300000;
    if (!c->ping_ms)
        c->ping_ms = 20000;
    if (!c->send_queue)
        c->send_queue = 1 << 20;
    if (!c->send_queue_frames)
        c->send_queue_frames = 8192;
    if (!c->send_policy)
        c->send_policy = SKICK_SEND_CLOSE;
    if (!c->close_timeout_ms)
        c->close_timeout_ms = 2000;
}

node_ws_t *node_ws_start(node_shard_t *sh, const node_ws_config_t *cfg, char *err,
                         size_t errlen)
{
    if (s_server) {
        snprintf(err, errlen, "one websocket server per process");
        return NULL;
    }
    node_ws_t *ws = node_calloc(1, sizeof *ws);
    ws->sh = sh;
    ws->cfg = *cfg;
    node_ws_defaults(&ws->cfg);
    pthread_mutex_init(&ws->lock, NULL);
    node_u64map_init(&ws->conns);
    node_u64map_init(&ws->binds);
    atomic_init(&ws->open, 0);
    ws->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ws->wfd = -1;
    s_server = ws;
    if (ws->cfg.cert && s_load_tls(err, errlen) != 0)
        goto fail;
    if (!ws->cfg.cert)
        mg_init_library(0);
    char ports[300], threads[16], ping[24];
    snprintf(ports, sizeof ports, "%s:%d%s", ws->cfg.host, ws->cfg.port,
             ws->cfg.cert ? "s" : "");
    snprintf(threads, sizeof threads, "%d", ws->cfg.threads);
    snprintf(ping, sizeof ping, "%lld", (long long) ws->cfg.ping_ms);
    const char *opts[64];
    size_t n = 0;
    const char *base[] = {"listening_ports", ports, "num_threads", threads, "tcp_nodelay", "1",
                          /* our pings (node_ws_write.c): civetweb's would write on
                             its own and could split our frames */
                          "enable_websocket_ping_pong", "no", "websocket_timeout_ms", ping,
                          "request_timeout_ms", "5000", "enable_directory_listing", "no",
                          "enable_keep_alive", "no",
                          /* civetweb keeps this buffer per connection for its life: 8 KiB
                             holds any upgrade request and halves the cost of an idle
                             websocket (override with --civetweb max_request_size=N) */
                          "max_request_size", "8192"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        opts[n++] = base[i];
    if (ws->cfg.cert && !ws->cfg.key_password) {
        opts[n++] = "ssl_certificate";
        opts[n++] = ws->cfg.cert;
    }
    if (ws->cfg.www) {
        opts[n++] = "document_root";
        opts[n++] = ws->cfg.www;
    }
    for (size_t i = 0; i + 1 < ws->cfg.nextra * 2 && n + 2 < 63; i += 2) {
        opts[n++] = ws->cfg.extra[i];
        opts[n++] = ws->cfg.extra[i + 1];
    }
    opts[n] = NULL;
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = s_on_log;
    cb.init_ssl = s_init_ssl;
    cb.connection_close = s_on_conn_close;
    ws->ctx = mg_start(&cb, ws, opts);
    if (!ws->ctx) {
        snprintf(err, errlen, "cannot serve websockets on %s: %s", ports,
                 ws->last_error[0] ? ws->last_error : "civetweb failed to start");
        goto fail;
    }
    mg_set_websocket_handler(ws->ctx, "/$", node_ws_on_connect, node_ws_on_ready,
                             node_ws_on_data, node_ws_on_close, ws);
    mg_set_websocket_handler(ws->ctx, "/ws$", node_ws_on_connect, node_ws_on_ready,
                             node_ws_on_data, node_ws_on_close, ws);
    mg_set_request_handler(ws->ctx, "/skick.js$", s_on_js, ws);
    mg_set_request_handler(ws->ctx, "/$", s_on_index, ws);
    node_ws_metrics_start(ws);
    node_ws_view_start(ws);
    node_io_add(sh, ws->efd, s_drain, ws);
    if (node_ws_writer_start(ws) != 0) {
        snprintf(err, errlen, "cannot create the writability set: %s", strerror(errno));
        node_io_remove(sh, ws->efd);
        mg_stop(ws->ctx);
        goto fail;
    }
    sh->ws = ws;
    return ws;
fail:
    s_server = NULL;
    node_ws_view_stop(ws);
    close(ws->efd);
    node_u64map_free(&ws->conns);
    node_u64map_free(&ws->binds);
    pthread_mutex_destroy(&ws->lock);
    free(ws);
    return NULL;
}

void node_ws_stop(node_ws_t **ws_p)
{
    node_ws_t *ws = ws_p ? *ws_p : NULL;
    if (!ws)
        return;
    *ws_p = NULL;
    if (ws->fake) {
        node_ws_fake_free(ws);
        return;
    }
    node_io_remove(ws->sh, ws->efd);
    ws->sh->ws = NULL;
    node_ws_writer_stop(ws, 300); /* close frames out, then every socket shut down */
    mg_stop(ws->ctx);
    node_ws_view_stop(ws); /* no worker serves it any more */
    s_server = NULL;
    node_ws_event_t *ev = ws->head;
    while (ev) {
        node_ws_event_t *next = ev->next;
        json_object_put(ev->msg);
        free(ev);
        ev = next;
    }
    close(ws->efd);
    node_u64map_free(&ws->conns);
    node_u64map_free(&ws->binds);
    pthread_mutex_destroy(&ws->lock);
    node_ws_rcpt_type_free(ws);
    free(ws);
}
