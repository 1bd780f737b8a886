/*  raw_zmq_bench - the raw ZeroMQ reference for the cluster benchmarks

    One file on purpose (it is over 600 lines): the reference is read top
    to bottom next to what it is compared with, and it links nothing of
    Skick.

    The same shapes as the cluster's paths (proto/PROTOCOL.md "The cluster"),
    with nothing of Skick in them: fixed-size opaque messages, no envelope
    header, no JSON. Every role is a separate process (fork) on tcp loopback,
    so the figures are comparable with shards talking through skick-broker.

      oneway_direct   DEALER -> ROUTER: N messages, counted by the ROUTER
      oneway_broker   DEALER -> broker ROUTER -> DEALER: the broker forwards
                      each message to the receiver's routing id
      rt_broker       client DEALER -> broker ROUTER -> echo DEALER -> broker
                      -> client, sequential round trips
      rt_direct       client DEALER -> ROUTER echo (no broker)
      rt_tcp_relay    the broker shape with plain TCP sockets (TCP_NODELAY,
                      blocking read/write): client -> relay -> echo -> relay
                      -> client; the floor for three processes
      rt_tcp_direct   client -> echo over one plain TCP connection

    One-way rates: msgs_per_s = N / (last arrival - first send) (end to end,
    CLOCK_MONOTONIC is the same clock in every process); sink_msgs_per_s =
    (N - 1) / (last arrival - first arrival) (the receiver's steady rate).
    Round trips: --warmup unmeasured, then --samples measured; p50/p99/mean
    in microseconds (nearest rank). For the brokered tests, each role's CPU
    time (user + system, all threads, from wait4) per message or per round
    trip: raw_TEST_ROLE_cpu_us_per_msg / _per_rt.

    The coordinator (the first process) holds no ZeroMQ context: it forks the
    roles, passes the bound endpoint along and collects each role's figures
    through a pipe. Usage: raw_zmq_bench [--messages N] [--samples S]
    [--warmup W] [--size BYTES] [--only oneway|rt]. Prints "name value"
    lines; asserts nothing (exit 1 only if a role failed).
*/
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define EP_LEN 256

static long s_messages = 1000000;
static long s_samples = 20000;
static long s_warmup = 2000;
static size_t s_size = 100;
static int s_failed = 0;

static int64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void s_die(const char *what)
{
    fprintf(stderr, "raw_zmq_bench: %s: %s\n", what, zmq_strerror(zmq_errno()));
    _exit(1);
}

static void s_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("raw_zmq_bench: write");
            _exit(1);
        }
        p += n;
        len -= (size_t) n;
    }
}

/*  Read exactly len bytes; false on EOF or error. */
static bool s_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t) n;
    }
    return true;
}

/* ---- processes ------------------------------------------------------------ */

typedef struct {
    pid_t pid;
    int fd; /* the role's result pipe, read end */
} role_t;

typedef void(role_fn)(int out, const char *endpoint);

/*  Fork a role: fn(out, endpoint) runs in the child, writes its results to
    out and returns; the child then exits 0. */
static role_t s_spawn(role_fn *fn, const char *endpoint)
{
    int p[2];
    if (pipe(p) != 0) {
        perror("raw_zmq_bench: pipe");
        exit(1);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("raw_zmq_bench: fork");
        exit(1);
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphans if the coordinator is killed */
        if (getppid() == 1)
            _exit(1);
        close(p[0]);
        fn(p[1], endpoint);
        close(p[1]);
        _exit(0);
    }
    close(p[1]);
    return (role_t){pid, p[0]};
}

/*  Read a role's result (len bytes); false (and failure noted) if it died. */
static bool s_result(role_t *r, void *buf, size_t len)
{
    if (s_read_all(r->fd, buf, len))
        return true;
    fprintf(stderr, "raw_zmq_bench: a role ended without its result\n");
    s_failed = 1;
    return false;
}

/*  Wait for a role; returns the CPU seconds it used (user + system, every
    thread, setup included). */
static double s_reap(role_t *r)
{
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    close(r->fd);
    if (wait4(r->pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "raw_zmq_bench: a role failed (status %d)\n", status);
        s_failed = 1;
    }
    return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*  "raw_NAME_ROLE_cpu_us_per_OP X": CPU microseconds per message or round trip. */
static void s_print_cpu(const char *name, const char *role, double cpu_s, long n, const char *op)
{
    printf("raw_%s_%s_cpu_us_per_%s %.2f\n", name, role, op, cpu_s * 1e6 / (double) n);
}

/* ---- ZeroMQ helpers ------------------------------------------------------- */

static void *s_socket(void *ctx, int type, const char *rid)
{
    void *s = zmq_socket(ctx, type);
    if (!s)
        s_die("zmq_socket");
    int linger = -1; /* everything queued leaves before zmq_ctx_term returns */
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (rid)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, strlen(rid));
    if (type == ZMQ_ROUTER) {
        int on = 1; /* like skick-broker: never drop silently */
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &on, sizeof on);
    }
    return s;
}

/*  Bind to tcp://127.0.0.1:* and write the endpoint to out (EP_LEN bytes). */
static void s_bind_announce(void *s, int out)
{
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0)
        s_die("zmq_bind");
    char ep[EP_LEN] = "";
    size_t len = sizeof ep;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len);
    s_write_all(out, ep, sizeof ep);
}

static void s_connect(void *s, const char *ep)
{
    if (zmq_connect(s, ep) != 0)
        s_die("zmq_connect");
}

static void s_send(void *s, const void *buf, size_t len, int flags)
{
    while (zmq_send(s, buf, len, flags) < 0) {
        if (zmq_errno() == EINTR)
            continue;
        if (zmq_errno() == EHOSTUNREACH) { /* the peer's pipe is not attached yet */
            usleep(1000);
            continue;
        }
        s_die("zmq_send");
    }
}

/*  Receive one frame into buf (truncated to cap); returns its size. */
static size_t s_recv(void *s, void *buf, size_t cap)
{
    int n;
    while ((n = zmq_recv(s, buf, cap, 0)) < 0) {
        if (zmq_errno() != EINTR)
            s_die("zmq_recv");
    }
    return (size_t) n;
}

/*  ROUTER side: receive [rid][payload]; returns the payload size. */
static size_t s_recv_routed(void *s, char *rid, size_t *rid_len, void *buf, size_t cap)
{
    *rid_len = s_recv(s, rid, 255);
    return s_recv(s, buf, cap);
}

static void s_send_routed(void *s, const char *rid, size_t rid_len, const void *buf, size_t len)
{
    s_send(s, rid, rid_len, ZMQ_SNDMORE);
    s_send(s, buf, len, 0);
}

static bool s_is(const char *rid, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(rid, want, len) == 0;
}

/*  The announced endpoint of a binding role. */
static void s_read_endpoint(role_t *r, char ep[EP_LEN])
{
    if (!s_result(r, ep, EP_LEN)) {
        fprintf(stderr, "raw_zmq_bench: no endpoint from the binding role\n");
        exit(1);
    }
    ep[EP_LEN - 1] = 0;
}

/* ---- one way -------------------------------------------------------------- */

typedef struct {
    int64_t first_ns, last_ns;
    long count;
} sink_result_t;

/*  The receiving end: count s_messages payloads of s_size bytes (any other
    frame is a "hello" and ignored), then report. */
static void s_count(void *s, bool routed, int out)
{
    char *buf = malloc(s_size + 64);
    char rid[256];
    size_t rid_len;
    sink_result_t r = {0, 0, 0};
    while (r.count < s_messages) {
        size_t n = routed ? s_recv_routed(s, rid, &rid_len, buf, s_size + 64)
                          : s_recv(s, buf, s_size + 64);
        if (n != s_size)
            continue;
        int64_t t = s_now_ns();
        if (r.count == 0)
            r.first_ns = t;
        r.last_ns = t;
        r.count++;
    }
    free(buf);
    s_write_all(out, &r, sizeof r);
}

/*  The sending end: say hello, wait for "go", send s_messages payloads.
    Reports the time of the first send. */
static void s_blast(void *s, int out)
{
    char *buf = malloc(s_size);
    memset(buf, 'x', s_size);
    s_send(s, "hi", 2, 0);
    char go[8];
    s_recv(s, go, sizeof go);
    int64_t t0 = s_now_ns();
    for (long i = 0; i < s_messages; i++) {
        memcpy(buf, &i, sizeof i < s_size ? sizeof i : s_size);
        s_send(s, buf, s_size, 0);
    }
    free(buf);
    s_write_all(out, &t0, sizeof t0);
}

static void s_direct_receiver(int out, const char *ep)
{
    (void) ep;
    void *ctx = zmq_ctx_new();
    void *s = s_socket(ctx, ZMQ_ROUTER, NULL);
    s_bind_announce(s, out);
    char rid[256], hi[8];
    size_t rid_len;
    s_recv_routed(s, rid, &rid_len, hi, sizeof hi);
    s_send_routed(s, rid, rid_len, "go", 2);
    s_count(s, true, out);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

static void s_sender(int out, const char *ep)
{
    void *ctx = zmq_ctx_new();
    void *s = s_socket(ctx, ZMQ_DEALER, "S");
    s_connect(s, ep);
    s_blast(s, out);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/*  The broker of the one-way test: waits for hellos from "S" and "R", tells
    S to go, forwards s_messages payloads from S to R. */
static void s_oneway_broker(int out, const char *ep)
{
    (void) ep;
    void *ctx = zmq_ctx_new();
    void *s = s_socket(ctx, ZMQ_ROUTER, NULL);
    s_bind_announce(s, out);
    char rid[256];
    size_t rid_len;
    char *buf = malloc(s_size + 64);
    bool have_s = false, have_r = false;
    while (!have_s || !have_r) {
        s_recv_routed(s, rid, &rid_len, buf, s_size + 64);
        have_s |= s_is(rid, rid_len, "S");
        have_r |= s_is(rid, rid_len, "R");
    }
    s_send_routed(s, "S", 1, "go", 2);
    for (long n = 0; n < s_messages;) {
        size_t len = s_recv_routed(s, rid, &rid_len, buf, s_size + 64);
        if (!s_is(rid, rid_len, "S"))
            continue;
        s_send_routed(s, "R", 1, buf, len);
        n++;
    }
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

static void s_routed_receiver(int out, const char *ep)
{
    void *ctx = zmq_ctx_new();
    void *s = s_socket(ctx, ZMQ_DEALER, "R");
    s_connect(s, ep);
    s_send(s, "hi", 2, 0);
    s_count(s, false, out);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

static void s_print_oneway(const char *name, int64_t t0, const sink_result_t *r)
{
    double e2e = (double) (r->last_ns - t0) / 1e9;
    double steady = (double) (r->last_ns - r->first_ns) / 1e9;
    printf("raw_%s_messages %ld\n", name, r->count);
    printf("raw_%s_msgs_per_s %.0f\n", name, e2e > 0 ? (double) r->count / e2e : 0.0);
    printf("raw_%s_sink_msgs_per_s %.0f\n", name,
           steady > 0 ? (double) (r->count - 1) / steady : 0.0);
}

static void s_oneway_direct(void)
{
    role_t recv = s_spawn(s_direct_receiver, NULL);
    char ep[EP_LEN];
    s_read_endpoint(&recv, ep);
    role_t send = s_spawn(s_sender, ep);
    int64_t t0 = 0;
    sink_result_t r = {0, 0, 0};
    bool ok = s_result(&send, &t0, sizeof t0) && s_result(&recv, &r, sizeof r);
    double cs = s_reap(&send), cr = s_reap(&recv);
    if (ok) {
        s_print_oneway("oneway_direct", t0, &r);
        s_print_cpu("oneway_direct", "sender", cs, s_messages, "msg");
        s_print_cpu("oneway_direct", "receiver", cr, s_messages, "msg");
    }
}

static void s_oneway_brokered(void)
{
    role_t broker = s_spawn(s_oneway_broker, NULL);
    char ep[EP_LEN];
    s_read_endpoint(&broker, ep);
    role_t recv = s_spawn(s_routed_receiver, ep);
    role_t send = s_spawn(s_sender, ep);
    int64_t t0 = 0;
    sink_result_t r = {0, 0, 0};
    bool ok = s_result(&send, &t0, sizeof t0) && s_result(&recv, &r, sizeof r);
    double cs = s_reap(&send), cr = s_reap(&recv), cb = s_reap(&broker);
    if (ok) {
        s_print_oneway("oneway_broker", t0, &r);
        s_print_cpu("oneway_broker", "sender", cs, s_messages, "msg");
        s_print_cpu("oneway_broker", "broker", cb, s_messages, "msg");
        s_print_cpu("oneway_broker", "receiver", cr, s_messages, "msg");
    }
}

/* ---- round trips ---------------------------------------------------------- */

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/*  Nearest-rank percentile of sorted v[0..n). */
static double s_pct_us(const int64_t *v, long n, double p)
{
    long k = (long) (p * (double) n + 0.999999) - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return (double) v[k] / 1e3;
}

typedef int64_t(rt_fn)(void *ctx, const void *buf, void *rbuf); /* one round trip, ns */

/*  The client's loop: warm-up, samples, write the sorted samples to out. */
static void s_rt_loop(int out, rt_fn *fn, void *ctx)
{
    char *buf = malloc(s_size), *rbuf = malloc(s_size + 64);
    memset(buf, 'y', s_size);
    int64_t *lat = malloc((size_t) s_samples * sizeof *lat);
    for (long i = 0; i < s_warmup + s_samples; i++) {
        memcpy(buf, &i, sizeof i < s_size ? sizeof i : s_size);
        int64_t dt = fn(ctx, buf, rbuf);
        if (i >= s_warmup)
            lat[i - s_warmup] = dt;
    }
    qsort(lat, (size_t) s_samples, sizeof *lat, s_cmp_i64);
    s_write_all(out, lat, (size_t) s_samples * sizeof *lat);
    free(lat);
    free(buf);
    free(rbuf);
}

static int64_t s_rt_zmq(void *sock, const void *buf, void *rbuf)
{
    int64_t t = s_now_ns();
    s_send(sock, buf, s_size, 0);
    size_t n;
    do
        n = s_recv(sock, rbuf, s_size + 64);
    while (n != s_size);
    return s_now_ns() - t;
}

/*  The client: hello, "go", round trips, then an empty frame to end. */
static void s_rt_client(int out, const char *ep)
{
    void *ctx = zmq_ctx_new();
    void *s = s_socket(ctx, ZMQ_DEALER, "C");
    s_connect(s, ep);
    s_send(s, "hi", 2, 0);
    char go[8];
    s_recv(s, go, sizeof go);
    s_rt_loop(out, s_rt_zmq, s);
    s_send(s, "", 0, 0);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/*  The echo behind the broker: sends every payload back until an empty one. */
static void s_rt_echo(int out, const char *ep)
{
    (void) out;
    void *ctx = zmq_ctx_new();
    void *s = s_socket(ctx, ZMQ_DEALER, "E");
    s_connect(s, ep);
    s_send(s, "hi", 2, 0);
    char *buf = malloc(s_size + 64);
    for (;;) {
        size_t n = s_recv(s, buf, s_size + 64);
        if (n == 0)
            break;
        s_send(s, buf, n, 0);
    }
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/*  The round-trip broker: hellos from C and E, "go" to C, then C <-> E until
    C's empty frame (passed on to E). */
static void s_rt_broker(int out, const char *ep)
{
    (void) ep;
    void *ctx = zmq_ctx_new();
    void *s = s_socket(ctx, ZMQ_ROUTER, NULL);
    s_bind_announce(s, out);
    char rid[256];
    size_t rid_len;
    char *buf = malloc(s_size + 64);
    bool have_c = false, have_e = false;
    while (!have_c || !have_e) {
        s_recv_routed(s, rid, &rid_len, buf, s_size + 64);
        have_c |= s_is(rid, rid_len, "C");
        have_e |= s_is(rid, rid_len, "E");
    }
    s_send_routed(s, "C", 1, "go", 2);
    for (;;) {
        size_t n = s_recv_routed(s, rid, &rid_len, buf, s_size + 64);
        bool from_c = s_is(rid, rid_len, "C");
        s_send_routed(s, from_c ? "E" : "C", 1, buf, n);
        if (from_c && n == 0)
            break;
    }
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/*  The direct echo: a ROUTER that binds and answers each payload. */
static void s_rt_router_echo(int out, const char *ep)
{
    (void) ep;
    void *ctx = zmq_ctx_new();
    void *s = s_socket(ctx, ZMQ_ROUTER, NULL);
    s_bind_announce(s, out);
    char rid[256];
    size_t rid_len;
    char *buf = malloc(s_size + 64);
    s_recv_routed(s, rid, &rid_len, buf, s_size + 64); /* the hello */
    s_send_routed(s, rid, rid_len, "go", 2);
    for (;;) {
        size_t n = s_recv_routed(s, rid, &rid_len, buf, s_size + 64);
        if (n == 0)
            break;
        s_send_routed(s, rid, rid_len, buf, n);
    }
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

static void s_print_rt(const char *name, const int64_t *lat)
{
    double sum = 0;
    for (long i = 0; i < s_samples; i++)
        sum += (double) lat[i];
    printf("raw_%s_samples %ld\n", name, s_samples);
    printf("raw_%s_p50_us %.1f\n", name, s_pct_us(lat, s_samples, 0.50));
    printf("raw_%s_p99_us %.1f\n", name, s_pct_us(lat, s_samples, 0.99));
    printf("raw_%s_mean_us %.1f\n", name, sum / (double) s_samples / 1e3);
}

/*  Collect the client's sorted samples and print them. */
static void s_collect_rt(const char *name, role_t *client)
{
    int64_t *lat = malloc((size_t) s_samples * sizeof *lat);
    if (s_result(client, lat, (size_t) s_samples * sizeof *lat))
        s_print_rt(name, lat);
    free(lat);
}

static void s_rt_brokered(void)
{
    role_t broker = s_spawn(s_rt_broker, NULL);
    char ep[EP_LEN];
    s_read_endpoint(&broker, ep);
    role_t echo = s_spawn(s_rt_echo, ep);
    role_t client = s_spawn(s_rt_client, ep);
    s_collect_rt("rt_broker", &client);
    long n = s_warmup + s_samples;
    s_print_cpu("rt_broker", "client", s_reap(&client), n, "rt");
    s_print_cpu("rt_broker", "echo", s_reap(&echo), n, "rt");
    s_print_cpu("rt_broker", "broker", s_reap(&broker), n, "rt");
}

static void s_rt_zmq_direct(void)
{
    role_t echo = s_spawn(s_rt_router_echo, NULL);
    char ep[EP_LEN];
    s_read_endpoint(&echo, ep);
    role_t client = s_spawn(s_rt_client, ep);
    s_collect_rt("rt_direct", &client);
    s_reap(&client);
    s_reap(&echo);
}

/* ---- plain TCP ------------------------------------------------------------ */

/*  The "endpoint" of a TCP role is its port number as text. */
static int s_tcp_listen(int out)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *) &a, sizeof a) != 0 || listen(l, 4) != 0 ||
        getsockname(l, (struct sockaddr *) &a, &alen) != 0) {
        perror("raw_zmq_bench: tcp listen");
        _exit(1);
    }
    char ep[EP_LEN] = "";
    snprintf(ep, sizeof ep, "%d", ntohs(a.sin_port));
    s_write_all(out, ep, sizeof ep);
    return l;
}

static void s_nodelay(int fd)
{
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

static int s_tcp_accept(int l)
{
    int fd = accept(l, NULL, NULL);
    if (fd < 0) {
        perror("raw_zmq_bench: accept");
        _exit(1);
    }
    s_nodelay(fd);
    return fd;
}

/*  Connect to the port in ep and say who we are (one byte). */
static int s_tcp_connect(const char *ep, char who)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(ep)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof a) != 0) {
        perror("raw_zmq_bench: tcp connect");
        _exit(1);
    }
    s_nodelay(fd);
    s_write_all(fd, &who, 1);
    return fd;
}

static int64_t s_rt_tcp(void *ctx, const void *buf, void *rbuf)
{
    int fd = *(int *) ctx;
    int64_t t = s_now_ns();
    s_write_all(fd, buf, s_size);
    if (!s_read_all(fd, rbuf, s_size)) {
        fprintf(stderr, "raw_zmq_bench: tcp peer closed\n");
        _exit(1);
    }
    return s_now_ns() - t;
}

static void s_tcp_client(int out, const char *ep)
{
    int fd = s_tcp_connect(ep, 'C');
    char go;
    if (!s_read_all(fd, &go, 1))
        _exit(1);
    s_rt_loop(out, s_rt_tcp, &fd);
    close(fd);
}

/*  Echo s_size-byte messages on fd until EOF. */
static void s_tcp_echo_fd(int fd)
{
    char *buf = malloc(s_size);
    while (s_read_all(fd, buf, s_size))
        s_write_all(fd, buf, s_size);
    free(buf);
    close(fd);
}

static void s_tcp_echo(int out, const char *ep)
{
    (void) out;
    s_tcp_echo_fd(s_tcp_connect(ep, 'E'));
}

/*  The relay: accepts the client and the echo (in any order), then moves
    each message client -> echo -> client in lockstep until the client
    closes. */
static void s_tcp_relay(int out, const char *ep)
{
    (void) ep;
    int l = s_tcp_listen(out);
    int c = -1, e = -1;
    for (int i = 0; i < 2; i++) {
        int fd = s_tcp_accept(l);
        char who = 0;
        if (!s_read_all(fd, &who, 1))
            _exit(1);
        if (who == 'C')
            c = fd;
        else
            e = fd;
    }
    close(l);
    if (c < 0 || e < 0)
        _exit(1);
    s_write_all(c, "g", 1);
    char *buf = malloc(s_size);
    while (s_read_all(c, buf, s_size)) {
        s_write_all(e, buf, s_size);
        if (!s_read_all(e, buf, s_size))
            break;
        s_write_all(c, buf, s_size);
    }
    free(buf);
    close(e);
    close(c);
}

/*  The direct echo server: accepts one client, says go, echoes. */
static void s_tcp_direct_echo(int out, const char *ep)
{
    (void) ep;
    int l = s_tcp_listen(out);
    int fd = s_tcp_accept(l);
    close(l);
    char who;
    if (!s_read_all(fd, &who, 1))
        _exit(1);
    s_write_all(fd, "g", 1);
    s_tcp_echo_fd(fd);
}

static void s_rt_tcp_relay(void)
{
    role_t relay = s_spawn(s_tcp_relay, NULL);
    char ep[EP_LEN];
    s_read_endpoint(&relay, ep);
    role_t echo = s_spawn(s_tcp_echo, ep);
    role_t client = s_spawn(s_tcp_client, ep);
    s_collect_rt("rt_tcp_relay", &client);
    s_reap(&client);
    s_reap(&echo);
    s_reap(&relay);
}

static void s_rt_tcp_direct(void)
{
    role_t echo = s_spawn(s_tcp_direct_echo, NULL);
    char ep[EP_LEN];
    s_read_endpoint(&echo, ep);
    role_t client = s_spawn(s_tcp_client, ep);
    s_collect_rt("rt_tcp_direct", &client);
    s_reap(&client);
    s_reap(&echo);
}

/* ---- main ----------------------------------------------------------------- */

static void s_usage(FILE *f)
{
    fprintf(f, "Usage: raw_zmq_bench [--messages N] [--samples S] [--warmup W] [--size BYTES]\n"
               "                     [--only oneway|rt]\n"
               "The raw ZeroMQ reference of bench/cluster_bench.sh: one-way throughput\n"
               "DEALER->ROUTER and DEALER->broker ROUTER->DEALER, round trips through a\n"
               "broker ROUTER, directly, and with plain TCP; every role a process, tcp\n"
               "loopback. Defaults: 1000000 messages, 20000 samples after 2000, 100 bytes.\n");
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"messages", required_argument, NULL, 'n'}, {"samples", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},   {"size", required_argument, NULL, 'z'},
        {"only", required_argument, NULL, 'o'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *only = "";
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'n': s_messages = atol(optarg); break;
        case 's': s_samples = atol(optarg); break;
        case 'w': s_warmup = atol(optarg); break;
        case 'z': s_size = (size_t) atol(optarg); break;
        case 'o': only = optarg; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (s_messages < 2 || s_samples < 1 || s_warmup < 0 || s_size < 8 || s_size > 65536 ||
        (only[0] && strcmp(only, "oneway") != 0 && strcmp(only, "rt") != 0)) {
        s_usage(stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("raw_message_bytes %zu\n", s_size);
    if (strcmp(only, "rt") != 0) {
        s_oneway_direct();
        s_oneway_brokered();
    }
    if (strcmp(only, "oneway") != 0) {
        s_rt_brokered();
        s_rt_zmq_direct();
        s_rt_tcp_relay();
        s_rt_tcp_direct();
    }
    return s_failed;
}
