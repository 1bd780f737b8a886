/*  skick_metrics_http - serve a registry's snapshot on GET /metrics

    One poll loop on its own thread: slot 0 is a pipe that _stop writes to,
    slot 1 the listener, then the connections. A connection reads its
    request head into a fixed buffer, then writes a response built whole
    (headers + the snapshot's copy) as far as the socket takes it, and is
    closed when done or at its deadline, whichever comes first.
*/
#include "skick_metrics_http.h"
#include "skick_clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 8192

typedef struct {
    int fd;            /* -1: free slot */
    int64_t deadline;  /* monotonic ms */
    char head[HEAD_MAX];
    size_t nhead;
    char *out;         /* response, once the head is complete */
    size_t nout, sent;
} conn_t;

struct skick_metrics_http {
    skick_metrics_t *reg;
    int listen_fd;
    int wake[2]; /* pipe: _stop writes a byte */
    int port;
    pthread_t thread;
    conn_t conns[SKICK_METRICS_HTTP_CONNS];
};


int skick_metrics_http_parse(const char *spec, char *host, size_t len, int *port, char *err,
                             size_t errlen)
{
    const char *p = spec ? spec : "";
    const char *h = NULL, *portstr = p;
    size_t hlen = 0;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "--metrics %s: expected [IPV6]:PORT", p);
            return -1;
        }
        h = p + 1;
        hlen = (size_t) (close - h);
        portstr = close + 2;
    } else {
        const char *colon = strrchr(p, ':');
        if (colon) {
            if (memchr(p, ':', (size_t) (colon - p))) {
                snprintf(err, errlen, "--metrics %s: write an IPv6 address as [ADDR]:PORT", p);
                return -1;
            }
            h = p;
            hlen = (size_t) (colon - p);
            portstr = colon + 1;
        }
    }
    if (hlen == 0) {
        h = "127.0.0.1"; /* loopback unless asked otherwise */
        hlen = strlen(h);
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(portstr, &end, 10);
    if (!*portstr || *end || errno || v < 0 || v > 65535) {
        snprintf(err, errlen, "--metrics %s: the port must be a number 0-65535", p);
        return -1;
    }
    if (hlen + 1 > len) {
        snprintf(err, errlen, "--metrics %s: host name too long", p);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int) v;
    return 0;
}

static int s_listen(const char *host, int port, int *bound_port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char pstr[8];
    snprintf(pstr, sizeof pstr, "%d", port);
    int rc = getaddrinfo(host, pstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "--metrics %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "--metrics %s:%d: %s", host, port, strerror(saved ? saved : EINVAL));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *) &ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                                 : ((struct sockaddr_in *) &ss)->sin_port);
    return fd;
}

static void s_conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->nhead = c->nout = c->sent = 0;
}

/*  Build the response to the head in c->head (complete or too long). */
static void s_respond(skick_metrics_http_t *srv, conn_t *c, bool too_long)
{
    const char *status = "200 OK";
    char *body = NULL;
    size_t nbody = 0;
    bool head_only = false;
    if (too_long) {
        status = "431 Request Header Fields Too Large";
    } else {
        char method[8] = "", path[256] = "";
        if (sscanf(c->head, "%7s %255s", method, path) != 2) {
            status = "400 Bad Request";
        } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            status = "405 Method Not Allowed";
        } else {
            char *q = strchr(path, '?');
            if (q)
                *q = '\0';
            if (strcmp(path, "/metrics") != 0)
                status = "404 Not Found";
            else
                body = skick_metrics_snapshot(srv->reg, &nbody, NULL);
            head_only = strcmp(method, "HEAD") == 0;
        }
    }
    if (!body) {
        if (strncmp(status, "200", 3) == 0)
            status = "503 Service Unavailable"; /* out of memory */
        char msg[128];
        nbody = (size_t) snprintf(msg, sizeof msg, "%s\n", status);
        body = strdup(msg);
        if (!body)
            nbody = 0;
    }
    char hdr[320];
    int nh = snprintf(hdr, sizeof hdr,
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "%sConnection: close\r\n\r\n",
                      status, strncmp(status, "200", 3) == 0 ? SKICK_METRICS_CONTENT_TYPE
                                                             : "text/plain; charset=utf-8",
                      nbody, strncmp(status, "405", 3) == 0 ? "Allow: GET, HEAD\r\n" : "");
    size_t total = (size_t) nh + (head_only ? 0 : nbody);
    c->out = malloc(total);
    if (c->out) {
        memcpy(c->out, hdr, (size_t) nh);
        if (!head_only && nbody)
            memcpy(c->out + nh, body, nbody);
        c->nout = total;
        shutdown(c->fd, SHUT_RD);
    } else {
        s_conn_close(c); /* out of memory: no answer at all; the scraper retries */
    }
    free(body);
}

static void s_on_readable(skick_metrics_http_t *srv, conn_t *c)
{
    ssize_t n = recv(c->fd, c->head + c->nhead, HEAD_MAX - 1 - c->nhead, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        s_conn_close(c);
        return;
    }
    if (n < 0)
        return;
    c->nhead += (size_t) n;
    c->head[c->nhead] = '\0';
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
        s_respond(srv, c, false);
    else if (c->nhead == HEAD_MAX - 1)
        s_respond(srv, c, true);
}

static void s_on_writable(conn_t *c)
{
    ssize_t n = send(c->fd, c->out + c->sent, c->nout - c->sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        s_conn_close(c);
        return;
    }
    c->sent += (size_t) n;
    if (c->sent == c->nout)
        s_conn_close(c);
}

static void s_accept(skick_metrics_http_t *srv)
{
    while (true) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        conn_t *slot = NULL;
        for (size_t i = 0; i < SKICK_METRICS_HTTP_CONNS && !slot; i++)
            if (srv->conns[i].fd < 0)
                slot = &srv->conns[i];
        if (!slot) {
            close(fd); /* every slot busy: the scraper retries */
            continue;
        }
        slot->fd = fd;
        slot->deadline = skick_clock_ms() + SKICK_METRICS_HTTP_TIMEOUT_MS;
    }
}

static void *s_thread(void *arg)
{
    skick_metrics_http_t *srv = arg;
    struct pollfd pfd[2 + SKICK_METRICS_HTTP_CONNS];
    conn_t *who[2 + SKICK_METRICS_HTTP_CONNS];
    while (true) {
        size_t n = 0;
        pfd[n++] = (struct pollfd){.fd = srv->wake[0], .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = srv->listen_fd, .events = POLLIN};
        int64_t now = skick_clock_ms(), next = -1;
        for (size_t i = 0; i < SKICK_METRICS_HTTP_CONNS; i++) {
            conn_t *c = &srv->conns[i];
            if (c->fd < 0)
                continue;
            if (now >= c->deadline) {
                s_conn_close(c);
                continue;
            }
            if (next < 0 || c->deadline < next)
                next = c->deadline;
            who[n] = c;
            pfd[n++] = (struct pollfd){.fd = c->fd, .events = c->out ? POLLOUT : POLLIN};
        }
        int rc = poll(pfd, n, next < 0 ? -1 : (int) (next - now));
        if (rc < 0 && errno != EINTR)
            break;
        if (pfd[0].revents)
            break;
        if (pfd[1].revents & POLLIN)
            s_accept(srv);
        for (size_t i = 2; i < n; i++) {
            conn_t *c = who[i];
            if (!pfd[i].revents || c->fd < 0)
                continue;
            if (c->out)
                s_on_writable(c);
            else
                s_on_readable(srv, c);
        }
    }
    return NULL;
}

skick_metrics_http_t *skick_metrics_http_start(const char *spec, skick_metrics_t *reg, char *err,
                                               size_t errlen)
{
    char host[256];
    int port = 0;
    if (!reg) {
        snprintf(err, errlen, "--metrics: no registry");
        return NULL;
    }
    if (skick_metrics_http_parse(spec, host, sizeof host, &port, err, errlen) != 0)
        return NULL;
    skick_metrics_http_t *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "--metrics: out of memory");
        return NULL;
    }
    srv->reg = reg;
    for (size_t i = 0; i < SKICK_METRICS_HTTP_CONNS; i++)
        srv->conns[i].fd = -1;
    srv->listen_fd = s_listen(host, port, &srv->port, err, errlen);
    if (srv->listen_fd < 0) {
        free(srv);
        return NULL;
    }
    /* The thread takes no signals: a shard takes its own with a signalfd,
       which only works while every thread blocks them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = pipe2(srv->wake, O_CLOEXEC) == 0 &&
                  pthread_create(&srv->thread, NULL, s_thread, srv) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) {
        snprintf(err, errlen, "--metrics: cannot start its thread: %s", strerror(errno));
        close(srv->listen_fd);
        free(srv);
        return NULL;
    }
    return srv;
}

int skick_metrics_http_port(const skick_metrics_http_t *self)
{
    return self ? self->port : -1;
}

void skick_metrics_http_stop(skick_metrics_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    skick_metrics_http_t *srv = *self_p;
    ssize_t w = write(srv->wake[1], "x", 1);
    (void) w;
    pthread_join(srv->thread, NULL);
    for (size_t i = 0; i < SKICK_METRICS_HTTP_CONNS; i++)
        s_conn_close(&srv->conns[i]);
    close(srv->listen_fd);
    close(srv->wake[0]);
    close(srv->wake[1]);
    free(srv);
    *self_p = NULL;
}
