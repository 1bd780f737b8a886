/*  skick-broker - the cluster's broker process: options, signals, the loop

    One thread. main parses the options, binds the sockets (broker_net.c)
    and runs a poll loop over the shard ROUTER, the control ROUTER and the
    XPUB. Each round reads at most BROKER_BATCH messages per
    socket, so no socket starves the others or the timer, then runs the
    timer (heartbeats, loss detection: broker_peers_tick) when it is due.
    With --hash the poll set has a fourth descriptor, Redis's connection
    (broker_redis.c says which events hiredis wants), and every round runs
    broker_redis_tick; nothing else waits on Redis.
    SIGINT and SIGTERM set a flag (CZMQ's own handler is disabled); the loop
    sees it at the next wake-up, at most one timer tick later, and main
    frees everything and exits 0. SIGHUP makes the ZAP handler read the
    admitted keys again. Exit 1: a socket could not be bound or a
    certificate loaded; exit 2: a usage error, which includes an endpoint
    other than loopback or ipc without CURVE unless --insecure is given.
    Without CURVE the broker logs SKICK_INSECURE_WARNING once at start. The
    broker_t lives on main's stack and is owned by main.
*/
#include "broker.h"
#include "skick_secure.h"

#include <errno.h>
#include <poll.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef BROKER_VERSION
#define BROKER_VERSION "0.0.0"
#endif

static volatile sig_atomic_t s_signal;
static volatile sig_atomic_t s_reload; /* SIGHUP: read the admitted keys again */

static void s_on_signal(int sig)
{
    if (sig == SIGHUP)
        s_reload = 1;
    else
        s_signal = sig;
}

static void s_usage(FILE *out)
{
    fprintf(out, "Usage: skick-broker [OPTION]...\n"
                 "Route envelopes between Skick shards and clients, serve the cluster directory,\n"
                 "the control endpoint (skickctl) and the cluster's hash store.\n"
                 "\n"
                 "  --bind EP            shard endpoint, tcp://HOST:PORT or ipc://PATH\n"
                 "                       (default tcp://127.0.0.1:7400); the directory feed\n"
                 "                       uses PORT+2, or PATH.dir-out\n"
                 "  --control EP         control endpoint (default ipc:///tmp/skick-$UID/control,\n"
                 "                       owner-only: directory 0700, socket 0600); tcp:// only\n"
                 "                       with CURVE on\n"
                 "  --heartbeat-ms N     heartbeat interval, both directions (default 500)\n"
                 "  --lost-after-ms N    a shard silent this long is declared lost (default 3000)\n"
                 "  --client-timeout-ms N  a client silent this long is forgotten (default 30000)\n"
                 "  --log-level LEVEL    debug, info, notice, warning, error or silent\n"
                 "                       (default info, or $SKICK_LOG_LEVEL)\n"
                 "  --pid-file FILE      write the process id to FILE (removed at exit)\n"
                 "  --curve-secret FILE  the broker's CZMQ secret certificate (NAME.cert_secret,\n"
                 "                       mode 0600); with --curve-allow, every socket is a CURVE\n"
                 "                       server\n"
                 "  --curve-allow DIR    the admitted public certificates (NAME.cert), by role:\n"
                 "                       DIR/shards/, DIR/clients/ (skickctl), DIR/bridges/;\n"
                 "                       read again when they change and on SIGHUP\n"
                 "  --insecure           allow an endpoint other than loopback or ipc:// without\n"
                 "                       CURVE (open to everyone who can reach it)\n"
                 "  --hash URL           keep the cluster's hash store in Redis instead of the\n"
                 "                       broker's memory:\n"
                 "                       redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or\n"
                 "                       unix:///PATH/redis.sock[?db=N], the layout of\n"
                 "                       skick-node --hash (docs/hashes.md); give the same URL\n"
                 "                       to the shards' --hash to share the tables with them.\n"
                 "                       A password here is visible to every local user (ps):\n"
                 "                       use --hash-file or " SKICK_REDIS_URL_ENV " instead\n"
                 "  --hash-file FILE     the same URL, read from FILE (one line; mode 0600: a\n"
                 "                       file group or others can read is refused)\n"
                 "  " SKICK_REDIS_URL_ENV "=URL   (environment) the URL when neither is given\n"
                 "  --hash-inflight N    hash requests in flight to Redis at most (default\n"
                 "                       10000); beyond, EBACKLOG at once\n"
                 "  --hash-timeout-ms N  a hash request Redis has not answered by then fails with\n"
                 "                       ETIMEDOUT (default 5000, the shards' call timeout)\n"
                 "  --metrics HOST:PORT  serve Prometheus metrics on http://HOST:PORT/metrics\n"
                 "                       (PORT alone: on 127.0.0.1; off by default;\n"
                 "                       docs/metrics.md)\n"
                 "  --help               show this help and exit\n"
                 "  --version            show the version and exit\n"
                 "\n"
                 "Exit status: 0 after SIGINT or SIGTERM, 1 when a socket cannot be bound or a\n"
                 "certificate cannot be loaded, 2 on a usage error.\n");
}

__attribute__((format(printf, 1, 2))) static int s_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "skick-broker: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'skick-broker --help'.\n");
    va_end(ap);
    return 2;
}

/*  text as a number from min to max into *out; 0, or 2 after the usage
    error (what says what the number counts). */
static int s_ranged(const char *text, const char *name, const char *what, int min, int max,
                    int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return s_usage_error("%s needs a number of %s (%d to %d)", name, what, min, max);
    *out = (int) v;
    return 0;
}

static int s_number(const char *text, const char *name, int min, int *out)
{
    return s_ranged(text, name, "milliseconds", min, 3600000, out);
}

static int s_count(const char *text, const char *name, int min, int max, int *out)
{
    return s_ranged(text, name, "requests", min, max, out);
}

/*  Parse argv into c. Returns -1 to go on, or an exit status. */
static int s_options(broker_config_t *c, int argc, char **argv)
{
    enum {
        O_BIND = 256,
        O_CONTROL,
        O_HB,
        O_LOST,
        O_CLIENT,
        O_LOG,
        O_PID,
        O_SECRET,
        O_ALLOW,
        O_INSECURE,
        O_HASH,
        O_HASH_INFLIGHT,
        O_HASH_TIMEOUT,
        O_METRICS,
        O_HASH_FILE,
        O_HELP,
        O_VERSION
    };
    static const struct option opts[] = {
        {"bind", required_argument, NULL, O_BIND},
        {"control", required_argument, NULL, O_CONTROL},
        {"heartbeat-ms", required_argument, NULL, O_HB},
        {"lost-after-ms", required_argument, NULL, O_LOST},
        {"client-timeout-ms", required_argument, NULL, O_CLIENT},
        {"log-level", required_argument, NULL, O_LOG},
        {"pid-file", required_argument, NULL, O_PID},
        {"curve-secret", required_argument, NULL, O_SECRET},
        {"curve-allow", required_argument, NULL, O_ALLOW},
        {"insecure", no_argument, NULL, O_INSECURE},
        {"hash", required_argument, NULL, O_HASH},
        {"hash-inflight", required_argument, NULL, O_HASH_INFLIGHT},
        {"hash-timeout-ms", required_argument, NULL, O_HASH_TIMEOUT},
        {"metrics", required_argument, NULL, O_METRICS},
        {"hash-file", required_argument, NULL, O_HASH_FILE},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    c->bind = "tcp://127.0.0.1:7400";
    snprintf(c->control, sizeof c->control, "ipc:///tmp/skick-%u/control", (unsigned) getuid());
    c->heartbeat_ms = 500;
    c->lost_after_ms = 3000;
    c->client_timeout_ms = 30000;
    c->hash_inflight = BROKER_REDIS_INFLIGHT;
    c->hash_timeout_ms = BROKER_REDIS_TIMEOUT_MS;
    int o, level;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (o) {
        case O_BIND:
            c->bind = optarg;
            break;
        case O_CONTROL:
            if (strlen(optarg) >= sizeof c->control)
                return s_usage_error("--control %s: endpoint too long", optarg);
            snprintf(c->control, sizeof c->control, "%s", optarg);
            break;
        case O_HB:
            if (s_number(optarg, "--heartbeat-ms", 10, &c->heartbeat_ms))
                return 2;
            break;
        case O_LOST:
            if (s_number(optarg, "--lost-after-ms", 10, &c->lost_after_ms))
                return 2;
            break;
        case O_CLIENT:
            if (s_number(optarg, "--client-timeout-ms", 10, &c->client_timeout_ms))
                return 2;
            break;
        case O_LOG:
            if ((level = skick_log_level_parse(optarg)) < 0)
                return s_usage_error("unknown log level '%s'", optarg);
            skick_log_set_level(level);
            break;
        case O_PID:
            c->pid_file = optarg;
            break;
        case O_SECRET:
            c->curve_secret = optarg;
            break;
        case O_ALLOW:
            c->curve_allow = optarg;
            break;
        case O_INSECURE:
            c->insecure = true;
            break;
        case O_HASH:
            c->hash_arg = optarg;
            break;
        case O_HASH_FILE:
            c->hash_file = optarg;
            break;
        case O_HASH_INFLIGHT:
            if (s_count(optarg, "--hash-inflight", 1, 10000000, &c->hash_inflight))
                return 2;
            break;
        case O_HASH_TIMEOUT:
            if (s_number(optarg, "--hash-timeout-ms", 10, &c->hash_timeout_ms))
                return 2;
            break;
        case O_METRICS:
            c->metrics = optarg;
            break;
        case O_HELP:
            s_usage(stdout);
            return 0;
        case O_VERSION:
            printf("skick-broker %s\n", BROKER_VERSION);
            return 0;
        case ':':
            return s_usage_error("option %s needs an argument", argv[optind - 1]);
        default:
            return s_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return s_usage_error("unexpected argument '%s'", argv[optind]);
    char err[1200];
    int got = skick_redis_url_choose(c->hash_arg, c->hash_file, &c->hash_url, c->hash_text,
                                     sizeof c->hash_text, err, sizeof err);
    if (got < 0)
        return s_usage_error("%s", err);
    c->hash = got ? c->hash_text : NULL;
    return -1;
}

/*  Check the options that depend on each other. Returns -1 or 2. */
static int s_check(broker_config_t *c)
{
    if (skick_endpoint_derive(c->bind, SKICK_EP_DIR_OUT, c->dir_out, sizeof c->dir_out) != 0)
        return s_usage_error("--bind %s: use tcp://HOST:PORT (PORT below 65534) or ipc://PATH",
                             c->bind);
    if (c->lost_after_ms <= c->heartbeat_ms)
        return s_usage_error("--lost-after-ms must be longer than --heartbeat-ms");
    if (!c->curve_secret != !c->curve_allow)
        return s_usage_error("--curve-secret and --curve-allow go together");
    bool curve = c->curve_secret != NULL;
    if (strncmp(c->control, "tcp://", 6) == 0 && !curve)
        return s_usage_error("--control %s: a tcp:// control endpoint needs CURVE "
                             "(--curve-secret and --curve-allow); use ipc:// otherwise",
                             c->control);
    if (strncmp(c->control, "ipc://@", 7) == 0 && !curve)
        return s_usage_error("--control %s: an abstract ipc socket has no owner-only "
                             "permissions; use a path, or CURVE",
                             c->control);
    if ((strncmp(c->control, "ipc://", 6) != 0 || !c->control[6]) &&
        strncmp(c->control, "tcp://", 6) != 0)
        return s_usage_error("--control %s: use ipc://PATH (or tcp:// with CURVE)", c->control);
    /* (a tcp:// control endpoint without CURVE was refused above) */
    if (!curve && !c->insecure && !skick_endpoint_is_local(c->bind))
        return s_usage_error("--bind %s: without CURVE the broker listens on loopback "
                             "(127.0.0.0/8, ::1, localhost) or ipc:// only, since anyone who "
                             "can connect could join as a shard; give --curve-secret and "
                             "--curve-allow, or --insecure to accept that",
                             c->bind);
    if (strcmp(c->control, c->bind) == 0 || strcmp(c->control, c->dir_out) == 0)
        return s_usage_error("--control %s: must differ from the shard endpoints", c->control);
    return -1;
}

static void s_signals(void)
{
    struct sigaction sa = {.sa_handler = s_on_signal}; /* no SA_RESTART: poll wakes up */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int s_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%d\n", (int) getpid()) < 0 || fclose(f) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "cannot write the pid file %s: %s", path,
                  strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    return 0;
}

/*  The poll loop; returns the exit status.

    Plain poll() on the sockets' ZMQ_FD descriptors instead of zmq_poll,
    and no ZMQ_EVENTS checks: each costs two system calls (libzmq polls its
    command pipe and calls getpid), and checking every socket before every
    wait was most of the system calls per forwarded message. A descriptor
    fires when its socket's command pipe goes from empty to not empty; a
    receive that finds nothing has just emptied that pipe, so after a drain
    that ran dry the descriptor will fire for whatever comes next. Sending
    on a socket may empty its pipe too (a message arriving meanwhile leaves
    no edge), so a socket sent on since its last dry drain is drained again
    before the next wait. Each socket is drained when its descriptor fired,
    when it was sent on, when its last drain stopped at the batch limit, and
    on every tick. */
static int s_loop(broker_t *b)
{
    zsock_t *socks[BROKER_SOCKS] = {b->router[BROKER_SOCK_SHARD], b->router[BROKER_SOCK_CONTROL],
                                    b->xpub};
    struct pollfd pfd[BROKER_SOCKS + 1]; /* the last: Redis's connection (--hash), or -1 */
    for (int i = 0; i < BROKER_SOCKS; i++)
        pfd[i] = (struct pollfd){.fd = zsock_fd(socks[i]), .events = POLLIN};
    bool look[BROKER_SOCKS] = {true, true, true}; /* drain before waiting */
    int tick = b->cfg.heartbeat_ms < 100 ? b->cfg.heartbeat_ms : 100;
    int64_t next_tick = zclock_mono();
    while (!s_signal) {
        if (s_reload) {
            s_reload = 0;
            SKICK_LOG(SKICK_LOG_NOTICE, "broker", "SIGHUP: reading the admitted keys again");
            broker_auth_reload(b);
        }
        int64_t now = zclock_mono();
        if (b->redis)
            broker_redis_tick(b->redis, now); /* answer bounds, reconnects: every round */
        if (now >= next_tick) {
            broker_peers_tick(b, now);
            broker_hash_sweep(b->hash, now, BROKER_HASH_SWEEP_MAX); /* expired keys' memory */
            broker_metrics_tick(b->metrics, b, now);
            next_tick = now + tick;
            for (int i = 0; i < BROKER_SOCKS; i++)
                look[i] = true;
        }
        for (int i = 0; i < BROKER_SOCKS; i++) {
            if (!look[i])
                continue;
            look[i] = false;
            int rc = i < BROKER_ROUTERS ? broker_route_drain(b, i) : broker_dir_drain_subs(b);
            if (rc < 0 && errno == EINTR) {
                look[i] = true;
                continue;
            }
            if (rc < 0) {
                SKICK_LOG(SKICK_LOG_ERROR, "broker", "socket error: %s", zmq_strerror(errno));
                return 1;
            }
            b->sent_on[i] = false; /* the drain's last call was a receive */
            if (rc == BROKER_BATCH)
                look[i] = true; /* there is more */
        }
        if (b->republish) {
            b->republish = false;
            broker_dir_republish_all(b);
        }
        bool again = false;
        for (int i = 0; i < BROKER_SOCKS; i++) {
            look[i] |= b->sent_on[i];
            again |= look[i];
        }
        pfd[BROKER_SOCKS].fd = b->redis ? broker_redis_fd(b->redis, &pfd[BROKER_SOCKS].events) : -1;
        /* Busy sockets skip the wait; Redis, when it has something to send
           or answers to come, still gets a look (no wait) so that they do
           not wait for the sockets. */
        if (again && (pfd[BROKER_SOCKS].fd < 0 ||
                      (!(pfd[BROKER_SOCKS].events & POLLOUT) && !broker_redis_inflight(b->redis))))
            continue;
        now = zclock_mono();
        int wait = again ? 0 : (int) (next_tick - now > 0 ? next_tick - now : 0);
        int n = again ? poll(&pfd[BROKER_SOCKS], 1, 0) : poll(pfd, BROKER_SOCKS + 1, wait);
        if (n < 0 && errno != EINTR) {
            SKICK_LOG(SKICK_LOG_ERROR, "broker", "poll failed: %s", strerror(errno));
            return 1;
        }
        for (int i = 0; n > 0 && !again && i < BROKER_SOCKS; i++)
            if (pfd[i].revents)
                look[i] = true;
        if (n > 0 && pfd[BROKER_SOCKS].fd >= 0 && pfd[BROKER_SOCKS].revents)
            broker_redis_io(b->redis, pfd[BROKER_SOCKS].revents);
    }
    SKICK_LOG(SKICK_LOG_INFO, "broker", "stopping on %s", strsignal(s_signal));
    return 0;
}

int main(int argc, char **argv)
{
    skick_log_set_ident("skick-broker");
    broker_t b = {0};
    int rc = s_options(&b.cfg, argc, argv);
    if (rc < 0)
        rc = s_check(&b.cfg);
    if (rc >= 0)
        return rc;
    zsys_handler_set(NULL); /* our own SIGINT/SIGTERM handling, below */
    b.instance = broker_random64();
    broker_id_hex(b.instance, b.instance_hex);
    b.started_ms = zclock_mono();
    broker_peers_init(&b);
    b.hash = broker_hash_new();
    b.answer_later = broker_route_answer_later;
    s_signals();
    rc = broker_net_open(&b) == 0 ? 0 : 1;
    if (rc == 0 && b.cfg.metrics) {
        char err[256];
        b.metrics = broker_metrics_start(b.cfg.metrics, err, sizeof err);
        if (!b.metrics) {
            SKICK_LOG(SKICK_LOG_ERROR, "broker", "%s", err);
            rc = 1;
        } else {
            SKICK_LOG(SKICK_LOG_NOTICE, "broker", "metrics on port %d at /metrics (--metrics %s)",
                      broker_metrics_port(b.metrics), b.cfg.metrics);
        }
    }
    if (rc == 0 && b.cfg.pid_file && s_pid_file(b.cfg.pid_file) != 0)
        rc = 1;
    if (rc == 0) {
        if (!b.cert)
            SKICK_LOG(SKICK_LOG_WARNING, "broker", "%s", SKICK_INSECURE_WARNING);
        if (b.cfg.hash && b.cfg.hash_arg && b.cfg.hash_url.has_password)
            SKICK_LOG(SKICK_LOG_WARNING, "redis", "%s", SKICK_REDIS_ARGV_PASSWORD_WARNING);
        if (b.cfg.hash)
            b.redis = broker_redis_new(&b.cfg.hash_url, (size_t) b.cfg.hash_inflight,
                                       b.cfg.hash_timeout_ms);
        SKICK_LOG(SKICK_LOG_NOTICE, "broker",
                  "serving shards on %s, control on %s (directory out %s; broker %s%s; hash "
                  "store %s)",
                  b.cfg.bind, b.cfg.control, b.cfg.dir_out, b.instance_hex, b.cert ? ", CURVE" : "",
                  b.redis ? broker_redis_shown(b.redis) : "memory");
        rc = s_loop(&b);
        if (b.cfg.pid_file)
            unlink(b.cfg.pid_file);
    }
    broker_redis_destroy(&b.redis); /* its pending requests are answered while sockets are open */
    broker_metrics_stop(&b.metrics);
    broker_net_close(&b);
    broker_peers_destroy(&b);
    broker_hash_destroy(&b.hash);
    return rc;
}
