/*  ws_load - one-thread websocket load client for the websocket benchmarks  */
/*  One file on purpose (it is over 600 lines): a benchmark client is read
    top to bottom to check what it measures, and it links nothing of Skick. */
/*
    A minimal RFC 6455 client (ws:// only) driving N connections from one
    thread with epoll and non-blocking sockets; no civetweb client code, so
    the client's own cost stays small and known (about three system calls
    per round trip: write, epoll_wait, read).

    Every connection is a small state machine (conn_t.state):

        CONNECTING -> UPGRADING -> [GREETING] -> READY <-> WAITING
                                                   |
                                                CLOSING -> DONE     (any -> FAILED)

    GREETING is the skick hello handshake: {"session_type":"hello"} sent,
    waiting for the first frame. A count per state is kept up to date by
    s_set_state, so the phases below only look at counters.

    Phases: setup (open all N connections, at most --parallel at once so
    a listen backlog is never overrun), then one of
      - run: every connection sends one request and waits for any reply
        (echo: the same size back) before the next, for S seconds; a reply
        counts if it arrives before the end; latencies go to a histogram
        (1 us steps below 10 ms, 1 ms steps above);
      - idle: hold every connection for S seconds (pings answered);
      - nothing (--setup-only): setups/s from the first connect to the
        last completed handshake;
    and last, close: a close frame (1000) on each open connection, waiting
    a bounded time for the server's close frame.

    Robustness: partial reads and writes are resumed, several frames per
    read are parsed, fragmented messages are reassembled by length only,
    buffers grow on demand up to WS_MAX_FRAME, every wait has a deadline
    (a request: --timeout, 2 s; a setup: 10 s; the close: --timeout) and
    a timeout counts as an error. A connection that fails is closed and
    counted; the exit status is 1 if any failed. In skick mode a reply
    {"action":"error",...} still ends the round trip but is counted
    (ws_skick_cN_error_replies) and makes the exit status 1 too: the app
    does not know "greet", and the figures would measure error handling.
*/
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define WS_MAX_FRAME (16u << 20)      /* largest frame accepted from the server */
#define WS_MAX_HEADER 8192            /* largest HTTP upgrade response */
#define WS_RBUF_INITIAL 2048
#define WS_SETUP_TIMEOUT_NS 10000000000LL
#define WS_SCAN_NS 100000000LL        /* timeouts are checked every 100 ms */
#define WS_HIST_FINE 10000            /* 1 us buckets below 10 ms */
#define WS_HIST_COARSE 10000          /* then 1 ms buckets up to 10 s */
#define WS_MAX_ERRORS_SHOWN 10
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum { OP_CONT = 0, OP_TEXT = 1, OP_BIN = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

typedef enum { MODE_ECHO, MODE_SKICK } load_mode_t;

typedef enum {
    CS_IDLE,        /* not opened yet */
    CS_CONNECTING,  /* non-blocking connect in progress */
    CS_UPGRADING,   /* upgrade request sent, waiting for "101" */
    CS_GREETING,    /* hello sent, waiting for the first frame */
    CS_READY,       /* set up, no request outstanding */
    CS_WAITING,     /* one request outstanding */
    CS_CLOSING,     /* close frame sent, waiting for the server's */
    CS_DONE,        /* closed cleanly */
    CS_FAILED,      /* closed after an error */
    CS_COUNT
} cstate_t;

typedef struct {
    uint8_t *data;
    size_t off;     /* first byte not yet consumed (read) or written (write) */
    size_t len;     /* bytes held */
    size_t cap;
} buf_t;

typedef struct {
    int fd;
    cstate_t state;
    bool want_out;          /* EPOLLOUT is registered */
    bool in_msg;            /* a fragmented message is being received */
    size_t msg_len;         /* its payload bytes so far */
    int64_t t_sent;         /* request sent (ns) */
    int64_t deadline;       /* of the current wait (ns) */
    char key[25];           /* Sec-WebSocket-Key */
    buf_t rb, wb;
} conn_t;

typedef struct {
    const char *host, *port, *path;
    int conns;
    double seconds;
    load_mode_t mode;
    size_t size;
    bool setup_only, idle;
    int parallel;
    int timeout_ms;
} opts_t;

typedef struct {
    uint8_t op;
    bool fin;
    const uint8_t *payload;
    size_t len;
} frame_t;

typedef struct {
    opts_t o;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int ep;
    conn_t *conns;
    int next_open;
    int count[CS_COUNT];
    int errors, setups, close_unclean, open_at_end;
    uint64_t error_replies;      /* skick: {"action":"error",...} answers */
    int64_t now, next_scan, t_first, t_last_setup, run_end;
    uint64_t round_trips;
    uint64_t *hist;
    uint8_t *request;
    size_t request_len;
    uint64_t rng;
} load_t;

/* ---- small helpers ------------------------------------------------------ */

static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t s_rand(load_t *L)
{
    L->rng ^= L->rng >> 12;
    L->rng ^= L->rng << 25;
    L->rng ^= L->rng >> 27;
    return L->rng * 2685821657736338717ULL;
}

static void s_set_state(load_t *L, conn_t *c, cstate_t st)
{
    L->count[c->state]--;
    L->count[st]++;
    c->state = st;
}

static int s_in_setup(const load_t *L)
{
    return L->count[CS_CONNECTING] + L->count[CS_UPGRADING] + L->count[CS_GREETING];
}

static void s_hist_add(load_t *L, int64_t ns)
{
    int64_t us = ns / 1000, ms = us / 1000;
    if (us < WS_HIST_FINE)
        L->hist[us]++;
    else
        L->hist[WS_HIST_FINE + (ms < WS_HIST_COARSE ? ms : WS_HIST_COARSE - 1)]++;
}

static int64_t s_hist_pct(const load_t *L, double pct)
{
    uint64_t total = L->round_trips, seen = 0;
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t) ((double) total * pct / 100.0 + 0.5);
    if (want < 1)
        want = 1;
    for (size_t b = 0; b < WS_HIST_FINE + WS_HIST_COARSE; b++) {
        seen += L->hist[b];
        if (seen >= want)
            return b < WS_HIST_FINE ? (int64_t) b : (int64_t) (b - WS_HIST_FINE) * 1000;
    }
    return 0;
}

/* ---- buffers ------------------------------------------------------------ */

/*  Room for `need` more bytes after len (plus one spare for a NUL). */
static bool s_buf_reserve(buf_t *b, size_t need, size_t max)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + need + 1 <= b->cap)
        return true;
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + need + 1 <= b->cap)
            return true;
    }
    size_t cap = b->cap ? b->cap : WS_RBUF_INITIAL;
    while (cap < b->len + need + 1)
        cap *= 2;
    if (cap > max)
        return false;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return false;
    b->data = d;
    b->cap = cap;
    return true;
}

static void s_buf_free(buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- connection life ---------------------------------------------------- */

static void s_close_fd(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    s_buf_free(&c->rb);
    s_buf_free(&c->wb);
}

static void s_finish(load_t *L, conn_t *c)
{
    s_close_fd(c);
    s_set_state(L, c, CS_DONE);
}

/*  A failure while closing is not an error: the session was over. */
static void s_fail(load_t *L, conn_t *c, const char *why)
{
    if (c->state == CS_CLOSING) {
        L->close_unclean++;
        s_finish(L, c);
        return;
    }
    if (L->errors++ < WS_MAX_ERRORS_SHOWN)
        fprintf(stderr, "ws_load: connection %td: %s\n", c - L->conns, why);
    s_close_fd(c);
    s_set_state(L, c, CS_FAILED);
}

static void s_want_out(load_t *L, conn_t *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/*  Write what is queued; false if the connection failed. */
static bool s_flush(load_t *L, conn_t *c)
{
    buf_t *b = &c->wb;
    while (b->off < b->len) {
        ssize_t n = send(c->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            s_fail(L, c, strerror(errno));
            return false;
        }
        b->off += (size_t) n;
    }
    if (b->off == b->len)
        b->off = b->len = 0;
    s_want_out(L, c, b->len > 0);
    return true;
}

static bool s_queue(load_t *L, conn_t *c, const void *p, size_t n)
{
    if (!s_buf_reserve(&c->wb, n, 2 * (size_t) WS_MAX_FRAME)) {
        s_fail(L, c, "write buffer full");
        return false;
    }
    memcpy(c->wb.data + c->wb.len, p, n);
    c->wb.len += n;
    return true;
}

/*  Queue one masked frame (FIN set) and write it. */
static bool s_send_frame(load_t *L, conn_t *c, int op, const uint8_t *p, size_t n)
{
    uint8_t hdr[14];
    size_t h = 0;
    hdr[h++] = (uint8_t) (0x80 | op);
    if (n < 126) {
        hdr[h++] = (uint8_t) (0x80 | n);
    } else if (n <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t) (n >> 8);
        hdr[h++] = (uint8_t) n;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t) ((uint64_t) n >> (8 * i));
    }
    uint32_t key = (uint32_t) s_rand(L);
    memcpy(hdr + h, &key, 4);
    const uint8_t *m = hdr + h;
    h += 4;
    if (!s_queue(L, c, hdr, h) || !s_buf_reserve(&c->wb, n, 2 * (size_t) WS_MAX_FRAME))
        return false;
    uint8_t *dst = c->wb.data + c->wb.len;
    for (size_t i = 0; i < n; i++)
        dst[i] = p[i] ^ m[i & 3];
    c->wb.len += n;
    return s_flush(L, c);
}

static bool s_send_text(load_t *L, conn_t *c, const char *text)
{
    return s_send_frame(L, c, OP_TEXT, (const uint8_t *) text, strlen(text));
}

static void s_send_request(load_t *L, conn_t *c)
{
    c->t_sent = s_now();
    c->deadline = c->t_sent + (int64_t) L->o.timeout_ms * 1000000;
    s_set_state(L, c, CS_WAITING);
    s_send_frame(L, c, OP_TEXT, L->request, L->request_len);
}

static void s_send_close(load_t *L, conn_t *c)
{
    static const uint8_t normal[2] = {0x03, 0xe8};   /* 1000 */
    s_set_state(L, c, CS_CLOSING);
    c->deadline = s_now() + (int64_t) L->o.timeout_ms * 1000000;
    s_send_frame(L, c, OP_CLOSE, normal, sizeof normal);
}

/* ---- opening and the HTTP upgrade --------------------------------------- */

static void s_open(load_t *L, conn_t *c)
{
    s_set_state(L, c, CS_CONNECTING);
    c->deadline = s_now() + WS_SETUP_TIMEOUT_NS;
    c->fd = socket(L->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        s_fail(L, c, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *) &L->addr, L->addrlen) < 0
        && errno != EINPROGRESS) {
        s_fail(L, c, strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        s_fail(L, c, strerror(errno));
        return;
    }
    c->want_out = true;
}

static void s_make_key(load_t *L, conn_t *c)
{
    uint64_t raw[2] = {s_rand(L), s_rand(L)};
    EVP_EncodeBlock((unsigned char *) c->key, (const unsigned char *) raw, 16);
}

static void s_on_connected(load_t *L, conn_t *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        s_fail(L, c, strerror(err));
        return;
    }
    s_make_key(L, c);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     L->o.path, L->o.host, L->o.port, c->key);
    s_set_state(L, c, CS_UPGRADING);
    if (n < 0 || (size_t) n >= sizeof req) {
        s_fail(L, c, "upgrade request too long");
        return;
    }
    if (s_queue(L, c, req, (size_t) n))
        s_flush(L, c);
}

static bool s_accept_ok(const conn_t *c, const char *hdr)
{
    char src[64], want[32];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(src, sizeof src, "%s%s", c->key, WS_GUID);
    if (!EVP_Digest(src, (size_t) n, md, &mdlen, EVP_sha1(), NULL))
        return false;
    EVP_EncodeBlock((unsigned char *) want, md, (int) mdlen);
    const char *h = strcasestr(hdr, "\r\nSec-WebSocket-Accept:");
    if (!h)
        return false;
    h += strlen("\r\nSec-WebSocket-Accept:");
    while (*h == ' ' || *h == '\t')
        h++;
    return strncmp(h, want, strlen(want)) == 0;
}

/*  The session is set up: the upgrade (echo) or the greeting (skick) arrived. */
static void s_setup_done(load_t *L, conn_t *c)
{
    s_set_state(L, c, CS_READY);
    L->setups++;
    L->t_last_setup = s_now();
}

/*  1: upgraded (bytes after the header stay in rb), 0: need more, -1: failed. */
static int s_parse_upgrade(load_t *L, conn_t *c)
{
    buf_t *b = &c->rb;
    char *start = (char *) b->data + b->off;
    char *end = memmem(start, b->len - b->off, "\r\n\r\n", 4);
    if (!end) {
        if (b->len - b->off > WS_MAX_HEADER)
            s_fail(L, c, "upgrade response too long");
        return b->len - b->off > WS_MAX_HEADER ? -1 : 0;
    }
    end += 2;                       /* keep one CRLF for the header search */
    char saved = *end;
    *end = '\0';
    bool ok = strncmp(start, "HTTP/1.1 101", 12) == 0 && s_accept_ok(c, start);
    *end = saved;
    if (!ok) {
        s_fail(L, c, "upgrade refused or bad Sec-WebSocket-Accept");
        return -1;
    }
    b->off = (size_t) (end + 2 - (char *) b->data);
    if (L->o.mode == MODE_ECHO) {
        s_setup_done(L, c);
        return 1;
    }
    s_set_state(L, c, CS_GREETING);
    return s_send_text(L, c, "{\"session_type\":\"hello\"}") ? 1 : -1;
}

/* ---- incoming frames ---------------------------------------------------- */

/*  The payload length (7, 16 or 64 bits) in *n, the header size in *h;
    false if the header is not complete yet. */
static bool s_frame_len(const uint8_t *p, size_t avail, uint64_t *n, size_t *h)
{
    *n = p[1] & 0x7f;
    *h = *n == 126 ? 4 : *n == 127 ? 10 : 2;
    if (avail < *h)
        return false;
    if (*h > 2)
        *n = 0;
    for (size_t i = 2; i < *h; i++)
        *n = *n << 8 | p[i];
    return true;
}

/*  1: one frame in f, 0: need more bytes, -1: protocol error. */
static int s_parse_frame(buf_t *b, frame_t *f)
{
    const uint8_t *p = b->data + b->off;
    size_t avail = b->len - b->off, h;
    uint64_t n;
    if (avail < 2 || !s_frame_len(p, avail, &n, &h))
        return 0;
    if ((p[0] & 0x70) || (p[1] & 0x80))
        return -1;                  /* reserved bits, or a masked server frame */
    f->fin = p[0] & 0x80;
    f->op = p[0] & 0x0f;
    if (n > WS_MAX_FRAME || (f->op >= 8 && (n > 125 || !f->fin)))
        return -1;
    if (avail < h + n)
        return 0;
    f->payload = p + h;
    f->len = (size_t) n;
    b->off += h + (size_t) n;
    return 1;
}

/*  A complete data message of len bytes; last: its final frame. */
static void s_on_message(load_t *L, conn_t *c, size_t len, const frame_t *last)
{
    if (c->state == CS_GREETING) {
        if (len == 6 && last->len == 6 && memcmp(last->payload, "denied", 6) == 0)
            s_fail(L, c, "hello session denied");
        else
            s_setup_done(L, c);
        return;
    }
    if (c->state != CS_WAITING)
        return;                     /* unsolicited push: ignored */
    int64_t t = s_now();
    if (L->o.mode == MODE_ECHO && len != L->request_len) {
        s_fail(L, c, "echo of the wrong size");
        return;
    }
    if (L->o.mode == MODE_SKICK && last->len >= 17
        && memcmp(last->payload, "{\"action\":\"error\"", 17) == 0)
        L->error_replies++;
    if (t <= L->run_end) {
        L->round_trips++;
        s_hist_add(L, t - c->t_sent);
    }
    s_set_state(L, c, CS_READY);
    if (t < L->run_end)
        s_send_request(L, c);
}

static void s_on_close_frame(load_t *L, conn_t *c, const frame_t *f)
{
    if (c->state == CS_CLOSING) {
        s_finish(L, c);
        return;
    }
    s_send_frame(L, c, OP_CLOSE, f->payload, f->len);
    if (c->fd < 0)
        return;
    char why[64];
    int code = f->len >= 2 ? f->payload[0] << 8 | f->payload[1] : 1005;
    snprintf(why, sizeof why, "server closed the connection (code %d)", code);
    s_fail(L, c, why);
}

/*  false if the connection is gone. */
static bool s_on_frame(load_t *L, conn_t *c, const frame_t *f)
{
    switch (f->op) {
    case OP_TEXT:
    case OP_BIN:
    case OP_CONT:
        if ((f->op == OP_CONT) != c->in_msg) {
            s_fail(L, c, "bad fragmentation");
            return false;
        }
        c->msg_len = (c->in_msg ? c->msg_len : 0) + f->len;
        c->in_msg = !f->fin;
        if (f->fin)
            s_on_message(L, c, c->msg_len, f);
        break;
    case OP_PING:
        s_send_frame(L, c, OP_PONG, f->payload, f->len);
        break;
    case OP_PONG:
        break;
    case OP_CLOSE:
        s_on_close_frame(L, c, f);
        break;
    default:
        s_fail(L, c, "unknown opcode");
        break;
    }
    return c->fd >= 0;
}

static void s_parse_frames(load_t *L, conn_t *c)
{
    frame_t f;
    int r;
    while (c->fd >= 0 && (r = s_parse_frame(&c->rb, &f)) != 0) {
        if (r < 0) {
            s_fail(L, c, "protocol error in a server frame");
            return;
        }
        if (!s_on_frame(L, c, &f))
            return;
    }
}

static void s_on_readable(load_t *L, conn_t *c)
{
    if (!s_buf_reserve(&c->rb, 1024, WS_MAX_FRAME + 16)) {
        s_fail(L, c, "read buffer full");
        return;
    }
    ssize_t n = recv(c->fd, c->rb.data + c->rb.len, c->rb.cap - c->rb.len - 1, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (n == 0 && c->state == CS_CLOSING)
            s_finish(L, c);
        else
            s_fail(L, c, n == 0 ? "connection closed by the server" : strerror(errno));
        return;
    }
    c->rb.len += (size_t) n;
    if (c->state == CS_UPGRADING && s_parse_upgrade(L, c) <= 0)
        return;
    s_parse_frames(L, c);
}

static void s_on_event(load_t *L, conn_t *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    if (c->state == CS_CONNECTING) {
        s_on_connected(L, c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        s_on_readable(L, c);
    if (c->fd >= 0 && (events & EPOLLOUT))
        s_flush(L, c);
}

/* ---- the loop and the phases -------------------------------------------- */

static void s_scan_timeouts(load_t *L)
{
    for (int i = 0; i < L->o.conns; i++) {
        conn_t *c = &L->conns[i];
        if (c->fd < 0 || c->state == CS_READY || L->now < c->deadline)
            continue;
        if (c->state == CS_CLOSING) {
            L->close_unclean++;
            s_finish(L, c);
        } else {
            s_fail(L, c, c->state == CS_WAITING ? "request timed out" : "setup timed out");
        }
    }
    L->next_scan = L->now + WS_SCAN_NS;
}

static void s_poll(load_t *L, int64_t until)
{
    struct epoll_event ev[256];
    int64_t left_ms = (until - s_now()) / 1000000;
    int timeout = left_ms < 0 ? 0 : left_ms > 50 ? 50 : (int) left_ms;
    int n = epoll_wait(L->ep, ev, 256, timeout);
    for (int i = 0; i < n; i++)
        s_on_event(L, ev[i].data.ptr, ev[i].events);
    L->now = s_now();
    if (L->now >= L->next_scan)
        s_scan_timeouts(L);
}

static void s_phase_setup(load_t *L)
{
    L->t_first = L->t_last_setup = s_now();
    while (L->next_open < L->o.conns || s_in_setup(L) > 0) {
        while (s_in_setup(L) < L->o.parallel && L->next_open < L->o.conns)
            s_open(L, &L->conns[L->next_open++]);
        s_poll(L, L->now + 50000000);
    }
}

static void s_phase_run(load_t *L)
{
    int64_t start = s_now();
    L->run_end = start + (int64_t) (L->o.seconds * 1e9);
    if (L->count[CS_READY] == 0)
        return;                     /* every connection failed: nothing to measure */
    for (int i = 0; i < L->o.conns; i++)
        if (L->conns[i].state == CS_READY)
            s_send_request(L, &L->conns[i]);
    int64_t t;
    while ((t = s_now()) < L->run_end || L->count[CS_WAITING] > 0)
        s_poll(L, t < L->run_end ? L->run_end : t + 50000000);
}

static void s_phase_idle(load_t *L)
{
    int64_t end = s_now() + (int64_t) (L->o.seconds * 1e9);
    while (s_now() < end)
        s_poll(L, end);
}

static void s_phase_close(load_t *L)
{
    for (int i = 0; i < L->o.conns; i++)
        if (L->conns[i].fd >= 0)
            s_send_close(L, &L->conns[i]);
    while (L->count[CS_CLOSING] > 0)
        s_poll(L, s_now() + 50000000);
}

/* ---- options, setup, report --------------------------------------------- */

static void s_usage(FILE *to)
{
    fprintf(to,
            "Usage: ws_load [--host H] [--port P] [--path /] [--connections N]\n"
            "               [--seconds S] [--mode echo|skick] [--size BYTES]\n"
            "               [--setup-only | --idle] [--parallel N] [--timeout MS]\n"
            "One-thread websocket load client; prints 'name value' lines.\n");
}

static bool s_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool s_parse_opt(opts_t *o, int ch, const char *arg)
{
    long v = 0;
    char *end;
    switch (ch) {
    case 'H': o->host = arg; return true;
    case 'p': o->port = arg; return s_parse_long(arg, 1, 65535, &v);
    case 'P': o->path = arg; return arg[0] == '/';
    case 'c': return s_parse_long(arg, 1, 1000000, &v) && (o->conns = (int) v, true);
    case 's': o->seconds = strtod(arg, &end); return *end == '\0' && o->seconds > 0;
    case 'm': o->mode = strcmp(arg, "skick") == 0 ? MODE_SKICK : MODE_ECHO;
              return strcmp(arg, "skick") == 0 || strcmp(arg, "echo") == 0;
    case 'z': return s_parse_long(arg, 0, WS_MAX_FRAME, &v) && (o->size = (size_t) v, true);
    case 'S': o->setup_only = true; return true;
    case 'I': o->idle = true; return true;
    case 'n': return s_parse_long(arg, 1, 1000000, &v) && (o->parallel = (int) v, true);
    case 't': return s_parse_long(arg, 1, 3600000, &v) && (o->timeout_ms = (int) v, true);
    default: return false;
    }
}

static bool s_parse_args(opts_t *o, int argc, char **argv)
{
    static const struct option longs[] = {
        {"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'p'},
        {"path", required_argument, NULL, 'P'}, {"connections", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 's'}, {"mode", required_argument, NULL, 'm'},
        {"size", required_argument, NULL, 'z'}, {"setup-only", no_argument, NULL, 'S'},
        {"idle", no_argument, NULL, 'I'}, {"parallel", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    *o = (opts_t) {.host = "127.0.0.1", .port = "8000", .path = "/", .conns = 1,
                   .seconds = 5, .mode = MODE_ECHO, .size = 100, .parallel = 200,
                   .timeout_ms = 2000};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (ch == 'h') {
            s_usage(stdout);
            exit(0);
        }
        if (!s_parse_opt(o, ch, optarg)) {
            s_usage(stderr);
            return false;
        }
    }
    return optind == argc && !(o->setup_only && o->idle);
}

static bool s_resolve(load_t *L)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(L->o.host, L->o.port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "ws_load: %s: %s\n", L->o.host, gai_strerror(rc));
        return false;
    }
    memcpy(&L->addr, res->ai_addr, res->ai_addrlen);
    L->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

/*  Raise the descriptor limit to the hard limit; false if N will not fit. */
static bool s_raise_nofile(int conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if ((rlim_t) conns + 16 > rl.rlim_cur) {
        fprintf(stderr, "ws_load: %d connections need more descriptors than %llu\n",
                conns, (unsigned long long) rl.rlim_cur);
        return false;
    }
    return true;
}

/*  The request: echo: --size bytes of JSON-ish filler; skick: a greet. */
static bool s_make_request(load_t *L)
{
    static const char greet[] = "{\"action\":\"greet\"}";
    size_t n = L->o.mode == MODE_SKICK ? sizeof greet - 1 : L->o.size;
    L->request = malloc(n + 1);
    if (!L->request)
        return false;
    if (L->o.mode == MODE_SKICK) {
        memcpy(L->request, greet, n);
    } else {
        memset(L->request, 'x', n);
        if (n >= 10) {
            memcpy(L->request, "{\"pad\":\"", 8);
            memcpy(L->request + n - 2, "\"}", 2);
        }
    }
    L->request_len = n;
    return true;
}

static bool s_init(load_t *L)
{
    if (!s_raise_nofile(L->o.conns) || !s_resolve(L) || !s_make_request(L))
        return false;
    if (getrandom(&L->rng, sizeof L->rng, 0) != sizeof L->rng || L->rng == 0)
        L->rng = (uint64_t) s_now() | 1;
    L->conns = calloc((size_t) L->o.conns, sizeof *L->conns);
    L->hist = calloc(WS_HIST_FINE + WS_HIST_COARSE, sizeof *L->hist);
    L->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!L->conns || !L->hist || L->ep < 0)
        return false;
    for (int i = 0; i < L->o.conns; i++)
        L->conns[i].fd = -1;
    L->count[CS_IDLE] = L->o.conns;
    L->now = s_now();
    L->next_scan = L->now + WS_SCAN_NS;
    return true;
}

static void s_report(const load_t *L)
{
    const char *m = L->o.mode == MODE_SKICK ? "skick" : "echo";
    int n = L->o.conns;
    if (L->o.setup_only) {
        double secs = (double) (L->t_last_setup - L->t_first) / 1e9;
        printf("ws_%ssetup_c%d_per_s %.0f\n", L->o.mode == MODE_SKICK ? "" : "echo_", n,
               secs > 0 ? L->setups / secs : 0.0);
    } else if (L->o.idle) {
        printf("ws_idle_c%d_open %d\n", n, L->open_at_end);
    } else {
        printf("ws_%s_c%d_round_trips_per_s %.0f\n", m, n,
               (double) L->round_trips / L->o.seconds);
        printf("ws_%s_c%d_round_trips %llu\n", m, n, (unsigned long long) L->round_trips);
        printf("ws_%s_c%d_p50_us %lld\n", m, n, (long long) s_hist_pct(L, 50));
        printf("ws_%s_c%d_p99_us %lld\n", m, n, (long long) s_hist_pct(L, 99));
        if (L->o.mode == MODE_SKICK)
            printf("ws_skick_c%d_error_replies %llu\n", n,
                   (unsigned long long) L->error_replies);
    }
    printf("ws_client_errors %d\n", L->errors);
    if (L->close_unclean)
        fprintf(stderr, "ws_load: %d connections ended without the server's close frame\n",
                L->close_unclean);
}

int main(int argc, char **argv)
{
    load_t L = {0};
    if (!s_parse_args(&L.o, argc, argv))
        return 2;
    signal(SIGPIPE, SIG_IGN);
    if (!s_init(&L)) {
        fprintf(stderr, "ws_load: cannot initialise\n");
        return 2;
    }
    s_phase_setup(&L);
    if (L.o.idle)
        s_phase_idle(&L);
    else if (!L.o.setup_only)
        s_phase_run(&L);
    L.open_at_end = L.count[CS_READY] + L.count[CS_WAITING];
    s_phase_close(&L);          /* before the report: its errors count too */
    s_report(&L);
    fflush(stdout);
    close(L.ep);
    free(L.conns);
    free(L.hist);
    free(L.request);
    return L.errors > 0 || L.error_replies > 0 ? 1 : 0;
}
