/*  node_ws_write - the sending side of the websocket server

    The reactor never waits for a client. node_ws_send writes a frame with
    one non-blocking system call when the connection's outbox is empty (the
    common case: no copy, no queue); whatever the socket does not take waits
    in the outbox (node_ws_outbox.c), and the socket joins the server's
    writability set, an epoll descriptor the loop polls like any other. When
    it fires, s_on_writable writes each ready connection's backlog until the
    socket is full again or the backlog is gone.

    The outbox is bounded (--send-queue bytes, --send-queue-frames). A frame
    that does not fit is handled by the connection's send policy: CLOSE
    queues a close frame 1008 "send queue full" behind what is queued and
    gives the client the close timeout to take it all before the socket is
    shut down; REFUSE refuses that frame and keeps the client. Either way the
    caller learns it (EBACKLOG), and only that client is affected.

    Why we write to the socket ourselves: civetweb 1.15's writes wait until
    the kernel has taken every byte, and its API has no way to write without
    waiting. So at connect time (node_ws_socket.c) we find the connection's
    socket (a duplicate descriptor of our own, so that it can never be
    confused with a reused number) and, for wss://, civetweb's TLS session,
    and after the upgrade every byte to the client goes through this file:
    data frames from the reactor, pongs and close answers from the connection's civetweb
    thread. civetweb's own pings are off (we ping from the sweep below), so
    nothing else writes and frames never interleave.

    Locking: a connection's sending side is guarded by its lock; both
    threads take it only around non-blocking calls. The descriptor stays
    valid until civetweb's close callback (node_ws_conn_gone), which takes
    the same lock: a write never meets a closed or reused descriptor.
    Connections are named by id in the writability set and in timers, and
    looked up (with a reference) when those fire.
*/
#include "node_ws_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum { OP_TEXT = 1, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

#define S_PING_SILENCE 3 /* pings intervals without a frame before giving up */

/* ------------------------------------------------------------------------- */
/* The transport: one non-blocking write                                      */

/*  Write iov without waiting: bytes written (>= 0), or -1 with errno
    (EAGAIN: the socket is full; anything else: it failed). */
static ssize_t s_write(node_ws_conn_t *e, const struct iovec *iov, int n)
{
    if (!e->ssl) {
        struct msghdr mh = {.msg_iov = (struct iovec *) iov, .msg_iovlen = (size_t) n};
        ssize_t w;
        do
            w = sendmsg(e->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        return w;
    }
    /* TLS wants one buffer; the frame header is copied next to the payload
       (on the stack for the usual sizes: both threads write here, and a
       thread-local buffer would outlive civetweb's worker threads). A write
       that must be repeated is repeated with at least the same bytes (the
       outbox only grows at the back), which SSL_MODE_ACCEPT_MOVING_WRITE_
       BUFFER allows from another address. */
    char small[4096], *flat = NULL; /* small: this may run on a fiber stack */
    const void *p = iov[0].iov_base;
    size_t len = iov[0].iov_len;
    if (n > 1) {
        len = 0;
        for (int i = 0; i < n; i++)
            len += iov[i].iov_len;
        flat = len <= sizeof small ? small : node_malloc(len);
        size_t o = 0;
        for (int i = 0; i < n; i++) {
            memcpy(flat + o, iov[i].iov_base, iov[i].iov_len);
            o += iov[i].iov_len;
        }
        p = flat;
    }
    ssize_t w = 0;
    if (len) {
        ERR_clear_error();
        int rc = SSL_write(e->ssl, p, len > (size_t) 1 << 30 ? 1 << 30 : (int) len);
        int err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(e->ssl, rc);
        ERR_clear_error();
        w = rc > 0 ? rc : -1;
        if (rc <= 0)
            errno = (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) ? EAGAIN : EPIPE;
    }
    if (flat != small)
        free(flat);
    return w;
}

/*  Put e in the writability set or take it out (under e->lock). */
static void s_arm(node_ws_conn_t *e, bool want)
{
    if (want == e->armed || e->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = e->id};
    if (epoll_ctl(e->ws->wfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, e->fd, &ev) == 0 || !want)
        e->armed = want;
    else
        SKICK_LOG(SKICK_LOG_ERROR, "ws", "connection %llu: cannot watch the socket: %s",
                  (unsigned long long) e->id, strerror(errno));
}

/*  Shut the socket down (under e->lock): civetweb's thread sees the end of
    the stream at once and runs the close callback. What was queued is
    dropped, and so is what the kernel still holds for the client: with
    SO_LINGER 0 the last close resets the connection instead of keeping an
    orphaned socket (and its buffers) waiting on a client that does not read. */
static void s_abort(node_ws_conn_t *e, const char *why)
{
    if (e->state >= NODE_WS_ABORTED)
        return;
    s_arm(e, false);
    struct linger reset = {1, 0};
    setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    shutdown(e->fd, SHUT_RDWR);
    node_outbox_free(&e->out);
    node_ws_outbox_counted(e);
    e->state = NODE_WS_ABORTED;
    atomic_store(&e->input_off, true);
    atomic_fetch_add_explicit(&e->ws->n.aborted, 1, memory_order_relaxed);
    NODE_LOG_LIMITED(SKICK_LOG_INFO, "ws", "connection %llu: %s: socket shut down",
                     (unsigned long long) e->id, why);
}

void node_ws_outbox_counted(node_ws_conn_t *e)
{
    size_t now = node_outbox_bytes(&e->out);
    if (now != e->out_counted && e->ws)
        atomic_fetch_add_explicit(&e->ws->n.outbox_bytes, (long) now - (long) e->out_counted,
                                  memory_order_relaxed);
    e->out_counted = now;
}

/*  Write the backlog until the socket is full (under e->lock). 0, or -1
    when the socket failed (e is then ABORTED). */
static int s_flush(node_ws_conn_t *e)
{
    while (node_outbox_bytes(&e->out)) {
        struct iovec iov;
        const char *p;
        node_outbox_peek(&e->out, &p, &iov.iov_len);
        iov.iov_base = (void *) p;
        ssize_t w = s_write(e, &iov, 1);
        if (w > 0) {
            node_outbox_wrote(&e->out, (size_t) w);
        } else if (w < 0 && errno != EAGAIN) {
            s_abort(e, "the client's socket failed");
            return -1;
        } else {
            break;
        }
    }
    s_arm(e, node_outbox_bytes(&e->out) > 0);
    node_ws_outbox_counted(e);
    return 0;
}

/*  Write or queue one frame (under e->lock, state OPEN). Data frames are
    admitted by the bounds first; control frames are exempt. 0, or a
    SKICK_E* code: EBACKLOG / ETOOBIG (not admitted), EDEAD (socket failed). */
static int s_frame(node_ws_conn_t *e, int opcode, const char *data, size_t len, bool control)
{
    unsigned char hdr[NODE_WS_HEADER_MAX];
    size_t h = node_ws_frame_header(hdr, opcode, len);
    if (!control) {
        int rc = node_outbox_admit(&e->out, &e->limits, h + len);
        if (rc)
            return rc;
    }
    if (node_outbox_bytes(&e->out)) { /* behind the backlog: the set is armed */
        node_outbox_push(&e->out, hdr, h, data, len, 0);
        node_ws_outbox_counted(e);
        return 0;
    }
    struct iovec iov[2] = {{hdr, h}, {(void *) data, len}};
    ssize_t w = s_write(e, iov, len ? 2 : 1);
    if (w < 0 && errno != EAGAIN) {
        s_abort(e, "the client's socket failed");
        return SKICK_EDEAD;
    }
    size_t done = w > 0 ? (size_t) w : 0;
    if (done == h + len)
        return 0;
    node_outbox_push(&e->out, hdr, h, data, len, done);
    node_ws_outbox_counted(e);
    atomic_fetch_add_explicit(&e->ws->n.queued_frames, 1, memory_order_relaxed);
    s_arm(e, true);
    return 0;
}

static void s_close_deadline(node_shard_t *sh, void *arg, uint64_t timer)
{
    (void) sh;
    (void) timer;
    node_ws_t *ws = sh->ws;
    node_ws_conn_t *e = ws ? node_ws_conn_get(ws, (uint64_t) (uintptr_t) arg) : NULL;
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->close_timer = 0;
    if (e->state == NODE_WS_CLOSING)
        s_abort(e, e->client_closed ? "the client did not take our close frame"
                                    : "the client did not answer our close frame in time");
    pthread_mutex_unlock(&e->lock);
    node_ws_conn_unref(e);
}

/*  Queue our close frame and start the close timeout (reactor, under
    e->lock, state OPEN). */
static void s_begin_close(node_ws_conn_t *e, int code, const char *reason)
{
    char payload[125];
    size_t n = strnlen(reason, sizeof payload - 2);
    payload[0] = (char) ((code >> 8) & 0xff);
    payload[1] = (char) (code & 0xff);
    memcpy(payload + 2, reason, n);
    atomic_store(&e->input_off, true);
    if (s_frame(e, OP_CLOSE, payload, n + 2, true) != 0)
        return; /* the socket failed: ABORTED */
    e->state = NODE_WS_CLOSING;
    node_shard_t *sh = e->ws->sh;
    e->close_timer = node_timer_add(sh, e->ws->cfg.close_timeout_ms, s_close_deadline,
                                    (void *) (uintptr_t) e->id);
}

/* ------------------------------------------------------------------------- */
/* The reactor's calls                                                        */

int node_ws_send(node_ws_t *ws, uint64_t id, const char *text, size_t len, bool *went_high)
{
    if (went_high)
        *went_high = false;
    if (ws->fake)
        return node_ws_fake_record(ws, id, text, len, went_high);
    node_ws_conn_t *e = node_ws_conn_get(ws, id);
    if (!e) {
        skick_set_errno(SKICK_EDEAD);
        return -1;
    }
    pthread_mutex_lock(&e->lock);
    int rc = e->state == NODE_WS_OPEN ? s_frame(e, OP_TEXT, text, len, false) : SKICK_EDEAD;
    if (rc == SKICK_EBACKLOG || rc == SKICK_ETOOBIG) {
        e->refused++;
        if (rc == SKICK_EBACKLOG && e->limits.policy != SKICK_SEND_REFUSE) {
            /* Too slow: close it. The close frame goes behind what is queued,
               which was accepted (skick_socksend said so) and is written if
               the client reads within the close timeout. */
            atomic_fetch_add_explicit(&ws->n.slow_closed, 1, memory_order_relaxed);
            NODE_LOG_LIMITED(SKICK_LOG_NOTICE, "ws",
                             "connection %llu: client too slow: send queue full (%zu bytes, "
                             "%zu frames), closing it",
                             (unsigned long long) id, e->limits.bytes, e->limits.frames);
            s_begin_close(e, 1008, "send queue full");
        } else {
            atomic_fetch_add_explicit(&ws->n.refused_frames, 1, memory_order_relaxed);
        }
    }
    if (rc == 0) {
        atomic_fetch_add_explicit(&ws->n.msgs_out, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&ws->n.bytes_out, len, memory_order_relaxed);
    }
    if (rc == 0 && !e->high && node_outbox_bytes(&e->out) >= e->limits.bytes / 2) {
        e->high = true; /* reported once; s_on_writable reports the drain */
        if (went_high)
            *went_high = true;
    }
    pthread_mutex_unlock(&e->lock);
    node_ws_conn_unref(e);
    if (rc) {
        skick_set_errno(rc);
        return -1;
    }
    return 0;
}

void node_ws_close(node_ws_t *ws, uint64_t id, int code, const char *reason)
{
    if (ws->fake) {
        node_ws_fake_record_close(ws, id, code, reason);
        return;
    }
    node_ws_conn_t *e = node_ws_conn_get(ws, id);
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    if (e->state == NODE_WS_OPEN)
        s_begin_close(e, code, reason);
    pthread_mutex_unlock(&e->lock);
    node_ws_conn_unref(e);
}

int node_ws_status(node_ws_t *ws, uint64_t id, skick_socket_status_t *st)
{
    memset(st, 0, sizeof *st);
    st->exact = true;
    if (ws->fake) {
        node_ws_fake_status(ws, id, st);
        return 0;
    }
    node_ws_conn_t *e = node_ws_conn_get(ws, id);
    if (!e)
        return -1;
    pthread_mutex_lock(&e->lock);
    st->queued = node_outbox_bytes(&e->out);
    st->limit = e->limits.bytes;
    st->refused = e->refused;
    pthread_mutex_unlock(&e->lock);
    node_ws_conn_unref(e);
    return 0;
}

/*  The writability set fired: write each ready connection's backlog. */
static void s_on_writable(node_shard_t *sh, int fd, void *arg)
{
    node_ws_t *ws = arg;
    struct epoll_event evs[64];
    int n = epoll_wait(fd, evs, 64, 0);
    for (int i = 0; i < n; i++) {
        uint64_t id = evs[i].data.u64;
        node_ws_conn_t *e = node_ws_conn_get(ws, id);
        if (!e)
            continue;
        pthread_mutex_lock(&e->lock);
        if (e->state == NODE_WS_OPEN || e->state == NODE_WS_CLOSING)
            s_flush(e);
        size_t queued = node_outbox_bytes(&e->out);
        bool drained = e->high && e->state == NODE_WS_OPEN && queued <= e->limits.bytes / 8;
        if (drained)
            e->high = false;
        pthread_mutex_unlock(&e->lock);
        node_ws_conn_unref(e);
        uint64_t actor = (uint64_t) (uintptr_t) node_u64map_get(&ws->binds, id);
        if (drained && actor)
            node_receptionist_pressure(sh, actor);
    }
}

/* ------------------------------------------------------------------------- */
/* The worker thread's calls                                                  */

void node_ws_conn_attach(node_ws_conn_t *e, int fd, struct ssl_st *ssl)
{
    pthread_mutex_lock(&e->lock);
    e->fd = fd;
    e->ssl = ssl;
    e->state = NODE_WS_OPEN;
    e->limits = node_ws_default_limits(&e->ws->cfg);
    node_outbox_init(&e->out);
    if (ssl)
        SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int sndbuf = (int) e->ws->cfg.socket_buffer;
    if (sndbuf > 0) /* bounds the kernel's share of a stalled client's memory */
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    pthread_mutex_unlock(&e->lock);
    atomic_store(&e->last_rx, node_ws_mono_ms());
}

void node_ws_conn_control(node_ws_conn_t *e, int opcode, const char *data, size_t len)
{
    pthread_mutex_lock(&e->lock);
    if (e->state == NODE_WS_OPEN)
        s_frame(e, opcode, data, len < 125 ? len : 125, true);
    pthread_mutex_unlock(&e->lock);
}

void node_ws_conn_client_close(node_ws_conn_t *e, const char *data, size_t len)
{
    atomic_store(&e->input_off, true);
    pthread_mutex_lock(&e->lock);
    e->client_closed = true;
    if (e->state == NODE_WS_OPEN) { /* answer with the client's code (civetweb does not) */
        if (s_frame(e, OP_CLOSE, data, len >= 2 ? 2 : 0, true) == 0)
            e->state = NODE_WS_CLOSING;
    }
    int64_t deadline = node_ws_mono_ms() + e->ws->cfg.close_timeout_ms;
    while (e->state == NODE_WS_CLOSING && s_flush(e) == 0 && node_outbox_bytes(&e->out)) {
        int64_t left = deadline - node_ws_mono_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = e->fd, .events = POLLOUT};
        pthread_mutex_unlock(&e->lock);
        poll(&pfd, 1, (int) (left < 100 ? left : 100));
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
}

void node_ws_conn_gone(node_ws_conn_t *e)
{
    pthread_mutex_lock(&e->lock);
    s_arm(e, false);
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    e->ssl = NULL; /* civetweb frees it right after */
    e->state = NODE_WS_GONE;
    node_outbox_free(&e->out);
    node_ws_outbox_counted(e);
    pthread_mutex_unlock(&e->lock);
}

/* ------------------------------------------------------------------------- */
/* Every connection: the ping sweep and the shutdown                          */

/*  Apply fn to every registered connection, under its lock. Returns how
    many are still open or closing afterwards. */
static size_t s_each(node_ws_t *ws, void (*fn)(node_ws_conn_t *e, void *arg), void *arg)
{
    pthread_mutex_lock(&ws->lock);
    size_t n = 0;
    uint64_t *ids = node_malloc((ws->conns.count + 1) * sizeof *ids);
    for (size_t i = 0; i < ws->conns.cap; i++)
        if (ws->conns.keys[i])
            ids[n++] = ws->conns.keys[i];
    pthread_mutex_unlock(&ws->lock);
    size_t busy = 0;
    for (size_t i = 0; i < n; i++) {
        node_ws_conn_t *e = node_ws_conn_get(ws, ids[i]);
        if (!e)
            continue;
        pthread_mutex_lock(&e->lock);
        fn(e, arg);
        busy += e->state == NODE_WS_OPEN || e->state == NODE_WS_CLOSING;
        pthread_mutex_unlock(&e->lock);
        node_ws_conn_unref(e);
    }
    free(ids);
    return busy;
}

/*  Ping a connection quiet for an interval; shut down one quiet for
    S_PING_SILENCE intervals (a stopped or vanished client: its thread and
    descriptor come back). */
static void s_ping(node_ws_conn_t *e, void *arg)
{
    int64_t now = *(const int64_t *) arg, every = e->ws->cfg.ping_ms;
    int64_t quiet = now - atomic_load(&e->last_rx);
    if (e->state != NODE_WS_OPEN || quiet < every)
        return;
    if (quiet >= S_PING_SILENCE * every) {
        atomic_fetch_add_explicit(&e->ws->n.ping_timeouts, 1, memory_order_relaxed);
        s_abort(e, "no answer to pings");
    } else if (now - e->ping_sent >= every) {
        e->ping_sent = now;
        s_frame(e, OP_PING, "skick", 5, true);
    }
}

static void s_sweep(node_shard_t *sh, void *arg, uint64_t timer)
{
    (void) timer;
    node_ws_t *ws = arg;
    int64_t now = node_ws_mono_ms();
    s_each(ws, s_ping, &now);
    ws->ping_timer = node_timer_add(sh, ws->cfg.ping_ms / 2 > 0 ? ws->cfg.ping_ms / 2 : 1,
                                    s_sweep, ws);
}

int node_ws_writer_start(node_ws_t *ws)
{
    ws->wfd = epoll_create1(EPOLL_CLOEXEC);
    if (ws->wfd < 0)
        return -1;
    node_io_add(ws->sh, ws->wfd, s_on_writable, ws);
    ws->ping_timer = node_timer_add(ws->sh, ws->cfg.ping_ms / 2 > 0 ? ws->cfg.ping_ms / 2 : 1,
                                    s_sweep, ws);
    return 0;
}

static void s_stop_close(node_ws_conn_t *e, void *arg)
{
    (void) arg;
    if (e->state == NODE_WS_OPEN)
        s_begin_close(e, 1001, "server shutting down");
    else if (e->state == NODE_WS_CLOSING)
        s_flush(e);
}

static void s_stop_flush(node_ws_conn_t *e, void *arg)
{
    (void) arg;
    if (e->state == NODE_WS_CLOSING)
        s_flush(e);
}

static void s_stop_abort(node_ws_conn_t *e, void *arg)
{
    (void) arg;
    s_abort(e, "server shutting down");
}

void node_ws_writer_stop(node_ws_t *ws, int64_t ms)
{
    if (ws->ping_timer)
        node_timer_cancel(ws->sh, ws->ping_timer);
    ws->ping_timer = 0;
    int64_t deadline = node_ws_mono_ms() + ms;
    size_t busy = s_each(ws, s_stop_close, NULL);
    while (busy && node_ws_mono_ms() < deadline) {
        usleep(10 * 1000); /* the shard is stopping: nothing else runs on the loop */
        busy = s_each(ws, s_stop_flush, NULL);
    }
    s_each(ws, s_stop_abort, NULL);
    node_io_remove(ws->sh, ws->wfd);
    close(ws->wfd);
    ws->wfd = -1;
}
