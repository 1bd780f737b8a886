/*  node_run - skick_run: options, module loading, signals, process lifetime

    The seed's skick.start(). Exit status: 0 after a clean stop (SIGINT,
    SIGTERM or SIGHUP: on_stop hooks run, then every actor stops), 1 when the
    shard cannot start (a secret key file others may read is one reason; a
    Redis that refuses the first connection's AUTH, --hash, another) or
    is forced down (a second signal, or actors still stopping after twice
    the stop timeout), 2 for a usage error. A shard that joins a broker
    without CURVE logs SKICK_INSECURE_WARNING once at start.
*/
#include "node_cluster.h"
#include "node_redis.h"
#include "node_run.h"
#include "node_ws.h"
#include "skick_metrics_http.h"
#include "skick_secure.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define NODE_MAX_APPS 64

#define NODE_MAX_LIST 32

typedef struct {
    const char *apps[NODE_MAX_APPS]; /* --app files */
    int napps;
    node_config_t cfg;               /* shard settings */
    bool list_types;                 /* --list-types */
    bool front, back;                /* roles; neither given means both */
    const char *broker;              /* --broker endpoint, or NULL: standalone */
    const char *curve_secret;        /* --curve-secret */
    const char *curve_server;        /* --curve-server */
    const char *hash;                /* the Redis URL, or NULL: the default backend */
    const char *hash_arg;            /* --hash URL */
    const char *hash_file;           /* --hash-file PATH */
    char hash_text[SKICK_REDIS_URL_MAX]; /* the URL chosen (skick_redis_url_choose) */
    skick_redis_url_t hash_url;      /* the URL parsed */
    size_t hash_inflight;            /* --hash-inflight, 0: the default */
    const char *metrics;             /* --metrics HOST:PORT, or NULL */
    node_ws_config_t ws;             /* websocket server settings */
    const char *origins[NODE_MAX_LIST];
    const char *extra[2 * NODE_MAX_LIST]; /* --civetweb name=value, split */
    char extra_buf[NODE_MAX_LIST][256];
} node_options_t;

static void s_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [OPTIONS]\n"
            "Run one Skick shard: a reactor hosting actors from application modules.\n"
            "\n"
            "  -a, --app FILE          load an application module (.so); repeatable\n"
            "      --front / --back    roles: serve websockets / host sessions and actors\n"
            "                          (default both; a standalone shard needs both)\n"
            "  -l, --log-level LEVEL   debug, info (default), notice, warning, error, silent\n"
            "\n"
            "Cluster:\n"
            "      --broker ENDPOINT   join the cluster of the skick-broker at ENDPOINT\n"
            "                          (tcp://HOST:PORT or ipc://PATH); without it the\n"
            "                          shard runs standalone\n"
            "      --curve-secret FILE this shard's CURVE certificate (secret file, mode 0600;\n"
            "                          its public half in the broker's allow/shards/)\n"
            "      --curve-server FILE the broker's public certificate: encrypt and\n"
            "                          authenticate the link (skickctl keygen makes both)\n"
            "\n"
            "Hashes:\n"
            "      --hash URL          keep skick_hash_* tables in Redis instead of the default\n"
            "                          (in-process standalone, the broker in a cluster):\n"
            "                          redis://[user:password@]HOST:PORT[/DB] or\n"
            "                          unix:///PATH/redis.sock[?db=N] (docs/hashes.md); the\n"
            "                          shard exits 1 if the first connection's AUTH is refused.\n"
            "                          A password here is visible to every local user (ps):\n"
            "                          use --hash-file or " SKICK_REDIS_URL_ENV " instead\n"
            "      --hash-file FILE    the same URL, read from FILE (one line; mode 0600: a\n"
            "                          file group or others can read is refused)\n"
            "      " SKICK_REDIS_URL_ENV "=URL  (environment) the URL when neither is given\n"
            "      --hash-inflight N   Redis operations in flight at most; beyond, EBACKLOG\n"
            "                          (default 10000)\n"
            "\n"
            "Observability:\n"
            "      --metrics HOST:PORT serve Prometheus metrics on http://HOST:PORT/metrics\n"
            "                          (PORT alone: 127.0.0.1; a front shard also has them on\n"
            "                          its web port at /metrics; docs/metrics.md)\n"
            "      --cluster-view      front: serve GET /skick/cluster.json, this shard's\n"
            "                          load and rates and the shards it knows, for live\n"
            "                          pages (off by default: it tells whoever reaches the\n"
            "                          web port how the cluster is made; docs/security.md)\n"
            "\n"
            "Websockets (front role):\n"
            "      --host ADDR         listen address (default 127.0.0.1)\n"
            "      --port N            listen port (default 8000)\n"
            "      --cert FILE         PEM with certificate and private key: serve wss://\n"
            "      --key-password PW   password of an encrypted key (or SKICK_KEY_PASSWORD)\n"
            "      --www DIR           serve files from DIR (index.html at /)\n"
            "      --origin ORIGIN     allow browser pages from ORIGIN (repeatable; '*' any;\n"
            "                          default: only pages served by this shard)\n"
            "      --ws-threads N      civetweb worker threads, one per open websocket\n"
            "                          (default 1100)\n"
            "      --max-connections N open websockets at most (default threads - 16)\n"
            "      --max-message BYTES client message size limit (default 65536; close 1009)\n"
            "      --rate N            client messages per second per connection, 0 for no\n"
            "                          limit (default 100; close 1008 when exceeded)\n"
            "      --burst N           token bucket size (default 2 x rate)\n"
            "      --handshake-timeout MS  (default 10000)\n"
            "      --idle-timeout MS   close connections quiet this long (default 300000)\n"
            "      --ping MS           ping quiet sockets this often; a client silent for\n"
            "                          3 intervals is disconnected (default 20000)\n"
            "      --send-queue BYTES  bytes waiting for one client at most (default 1048576)\n"
            "      --send-queue-frames N  frames waiting for one client at most (default 8192)\n"
            "      --send-policy P     a client's queue is full: close (1008, default) or\n"
            "                          refuse (skick_socksend fails with EBACKLOG)\n"
            "      --close-timeout MS  a closing client has this long to answer (default 2000)\n"
            "      --socket-buffer BYTES  kernel send buffer per client (SO_SNDBUF); default\n"
            "                          0: the kernel tunes it, up to net.ipv4.tcp_wmem's max\n"
            "      --civetweb NAME=VALUE  any other civetweb option (repeatable)\n"
            "\n"
            "Shard:\n"
            "      --mailbox N         queued user messages per actor (default 1024)\n"
            "      --call-timeout MS   default conversation timeout (default 5000)\n"
            "      --stop-timeout MS   bound on each on_stop hook at shutdown (default 5000)\n"
            "      --stack-kb N        coroutine stack size in KiB (default 256)\n"
            "      --list-types        print the actor types the modules register, then exit\n"
            "  -h, --help              show this help\n"
            "  -V, --version           show the version\n"
            "\n"
            "Signals: SIGINT, SIGTERM and SIGHUP stop the shard cleanly (exit 0);\n"
            "a second signal forces the exit (status 1).\n"
            "Environment: SKICK_LOG_LEVEL sets the default log level.\n",
            prog);
}

static int s_number(const char *opt, const char *text, long long min, long long max,
                    long long *out)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || v < min || v > max) {
        fprintf(stderr, "skick: %s expects a number from %lld to %lld, got '%s'\n", opt, min,
                max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int s_ws_option(node_options_t *o, int c, const char *arg)
{
    node_ws_config_t *w = &o->ws;
    long long v;
    switch (c) {
    case 1000:
        w->host = arg;
        return 0;
    case 1001:
        if (s_number("--port", arg, 1, 65535, &v))
            return -1;
        w->port = (int) v;
        return 0;
    case 1002:
        w->cert = arg;
        return 0;
    case 1003:
        w->key_password = arg;
        return 0;
    case 1004:
        w->www = arg;
        return 0;
    case 1020:
        w->cluster_view = true;
        return 0;
    case 1005:
        if (w->norigins == NODE_MAX_LIST) {
            fprintf(stderr, "skick: at most %d --origin\n", NODE_MAX_LIST);
            return -1;
        }
        o->origins[w->norigins++] = arg;
        w->origins = o->origins;
        return 0;
    case 1006:
        if (s_number("--ws-threads", arg, 2, 100000, &v))
            return -1;
        w->threads = (int) v;
        return 0;
    case 1007:
        if (s_number("--max-connections", arg, 1, 100000, &v))
            return -1;
        w->max_connections = (int) v;
        return 0;
    case 1008:
        if (s_number("--max-message", arg, 16, 1LL << 30, &v))
            return -1;
        w->max_message = (size_t) v;
        return 0;
    case 1009:
        if (s_number("--rate", arg, 0, 10000000, &v))
            return -1;
        w->rate = (double) v;
        return 0;
    case 1010:
        if (s_number("--burst", arg, 1, 10000000, &v))
            return -1;
        w->burst = (double) v;
        return 0;
    case 1011:
        if (s_number("--handshake-timeout", arg, 1, 3600000, &v))
            return -1;
        w->handshake_timeout_ms = v;
        return 0;
    case 1012:
        if (s_number("--idle-timeout", arg, 1, 86400000, &v))
            return -1;
        w->idle_timeout_ms = v;
        return 0;
    case 1013:
        if (s_number("--ping", arg, 100, 3600000, &v))
            return -1;
        w->ping_ms = v;
        return 0;
    case 1015:
        if (s_number("--send-queue", arg, 256, 1LL << 31, &v))
            return -1;
        w->send_queue = (size_t) v;
        return 0;
    case 1016:
        if (s_number("--send-queue-frames", arg, 1, 1 << 24, &v))
            return -1;
        w->send_queue_frames = (size_t) v;
        return 0;
    case 1017:
        if (strcmp(arg, "close") != 0 && strcmp(arg, "refuse") != 0) {
            fprintf(stderr, "skick: --send-policy expects close or refuse, got '%s'\n", arg);
            return -1;
        }
        w->send_policy = strcmp(arg, "close") == 0 ? SKICK_SEND_CLOSE : SKICK_SEND_REFUSE;
        return 0;
    case 1018:
        if (s_number("--close-timeout", arg, 10, 600000, &v))
            return -1;
        w->close_timeout_ms = v;
        return 0;
    case 1019:
        if (s_number("--socket-buffer", arg, 0, 1LL << 30, &v))
            return -1;
        w->socket_buffer = (size_t) v;
        return 0;
    default: {
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg || w->nextra == NODE_MAX_LIST || strlen(arg) >= 256) {
            fprintf(stderr, "skick: --civetweb expects NAME=VALUE, got '%s'\n", arg);
            return -1;
        }
        char *buf = o->extra_buf[w->nextra];
        snprintf(buf, 256, "%s", arg);
        buf[eq - arg] = '\0';
        o->extra[2 * w->nextra] = buf;
        o->extra[2 * w->nextra + 1] = buf + (eq - arg) + 1;
        w->nextra++;
        w->extra = o->extra;
        return 0;
    }
    }
}

/*  Parse argv; returns -1 to exit with 2, 1 to exit 0 (help), 0 to run. */
static int s_parse(int argc, char **argv, node_options_t *o, const char *name)
{
    static const struct option longopts[] = {
        {"app", required_argument, NULL, 'a'},
        {"log-level", required_argument, NULL, 'l'},
        {"mailbox", required_argument, NULL, 'm'},
        {"call-timeout", required_argument, NULL, 'c'},
        {"stop-timeout", required_argument, NULL, 's'},
        {"stack-kb", required_argument, NULL, 'k'},
        {"list-types", no_argument, NULL, 'L'},
        {"front", no_argument, NULL, 'F'},
        {"back", no_argument, NULL, 'B'},
        {"host", required_argument, NULL, 1000},
        {"port", required_argument, NULL, 1001},
        {"cert", required_argument, NULL, 1002},
        {"key-password", required_argument, NULL, 1003},
        {"www", required_argument, NULL, 1004},
        {"origin", required_argument, NULL, 1005},
        {"ws-threads", required_argument, NULL, 1006},
        {"max-connections", required_argument, NULL, 1007},
        {"max-message", required_argument, NULL, 1008},
        {"rate", required_argument, NULL, 1009},
        {"burst", required_argument, NULL, 1010},
        {"handshake-timeout", required_argument, NULL, 1011},
        {"idle-timeout", required_argument, NULL, 1012},
        {"ping", required_argument, NULL, 1013},
        {"civetweb", required_argument, NULL, 1014},
        {"send-queue", required_argument, NULL, 1015},
        {"send-queue-frames", required_argument, NULL, 1016},
        {"send-policy", required_argument, NULL, 1017},
        {"close-timeout", required_argument, NULL, 1018},
        {"socket-buffer", required_argument, NULL, 1019},
        {"cluster-view", no_argument, NULL, 1020},
        {"broker", required_argument, NULL, 1100},
        {"curve-secret", required_argument, NULL, 1101},
        {"curve-server", required_argument, NULL, 1102},
        {"hash", required_argument, NULL, 1103},
        {"hash-inflight", required_argument, NULL, 1104},
        {"metrics", required_argument, NULL, 1106},
        {"hash-file", required_argument, NULL, 1105},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "a:l:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (o->napps == NODE_MAX_APPS) {
                fprintf(stderr, "skick: at most %d --app modules\n", NODE_MAX_APPS);
                return -1;
            }
            o->apps[o->napps++] = optarg;
            break;
        case 'l':
            if (skick_log_level_parse(optarg) < 0) {
                fprintf(stderr, "skick: unknown log level '%s'\n", optarg);
                return -1;
            }
            skick_log_set_level(skick_log_level_parse(optarg));
            break;
        case 'm':
            if (s_number("--mailbox", optarg, 1, 100000000, &v))
                return -1;
            o->cfg.mailbox_capacity = (uint32_t) v;
            break;
        case 'c':
            if (s_number("--call-timeout", optarg, 1, 86400000, &v))
                return -1;
            o->cfg.call_timeout_ms = v;
            break;
        case 's':
            if (s_number("--stop-timeout", optarg, 1, 3600000, &v))
                return -1;
            o->cfg.stop_timeout_ms = v;
            break;
        case 'k':
            if (s_number("--stack-kb", optarg, 32, 65536, &v))
                return -1;
            o->cfg.stack_size = (size_t) v * 1024;
            break;
        case 'L':
            o->list_types = true;
            break;
        case 'F':
            o->front = true;
            break;
        case 'B':
            o->back = true;
            break;
        case 1100:
            o->broker = optarg;
            break;
        case 1101:
            o->curve_secret = optarg;
            break;
        case 1102:
            o->curve_server = optarg;
            break;
        case 1103:
            o->hash_arg = optarg;
            break;
        case 1105:
            o->hash_file = optarg;
            break;
        case 1104:
            if (s_number("--hash-inflight", optarg, 1, 10000000, &v))
                return -1;
            o->hash_inflight = (size_t) v;
            break;
        case 1106: {
            char host[256], err[300];
            int port;
            if (skick_metrics_http_parse(optarg, host, sizeof host, &port, err, sizeof err)) {
                fprintf(stderr, "skick: %s\n", err);
                return -1;
            }
            o->metrics = optarg;
            break;
        }
        default:
            if (c >= 1000 && c <= 1020) {
                if (s_ws_option(o, c, optarg) != 0)
                    return -1;
                break;
            }
            s_usage(stderr, argv[0]);
            return -1;
        case 'h':
            s_usage(stdout, argv[0]);
            return 1;
        case 'V':
            printf("%s %s\n", name, SKICK_VERSION_STRING);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "skick: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    char err[1200];
    int got = skick_redis_url_choose(o->hash_arg, o->hash_file, &o->hash_url, o->hash_text,
                                     sizeof o->hash_text, err, sizeof err);
    if (got < 0) {
        fprintf(stderr, "skick: %s\n", err);
        return -1;
    }
    o->hash = got ? o->hash_text : NULL;
    return 0;
}

/* ------------------------------------------------------------------------- */

static void s_force_exit(node_shard_t *sh, void *arg, uint64_t id)
{
    (void) arg;
    (void) id;
    SKICK_LOG(SKICK_LOG_ERROR, "shard", "%zu actor(s) still stopping after the stop "
              "timeout; exiting anyway", sh->live);
    sh->exit_status = 1;
    sh->exit_loop = true;
}

static void s_on_signal(node_shard_t *sh, int fd, void *arg)
{
    (void) arg;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) != (ssize_t) sizeof si)
        return;
    if (sh->stopping) {
        SKICK_LOG(SKICK_LOG_WARNING, "shard", "second signal (%s): forcing exit",
                  strsignal((int) si.ssi_signo));
        sh->exit_status = 1;
        sh->exit_loop = true;
        return;
    }
    SKICK_LOG(SKICK_LOG_NOTICE, "shard", "%s received: stopping", strsignal((int) si.ssi_signo));
    node_shard_stop(sh);
    node_timer_add(sh, 2 * sh->cfg.stop_timeout_ms + 1000, s_force_exit, NULL);
}

static int s_signals(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, old);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int s_list_types(const char *key, void *val, void *arg)
{
    (void) arg;
    const node_type_t *t = val;
    printf("%s\t%s\n", key, t->module ? t->module : "-");
    return 0;
}

int skick_run(int argc, char **argv)
{
    return node_run(argc, argv, NULL);
}

int node_run(int argc, char **argv, const node_run_opts_t *ro)
{
    const char *slash = argv && argv[0] ? strrchr(argv[0], '/') : NULL;
    skick_log_set_ident(slash ? slash + 1 : (argv && argv[0] ? argv[0] : "skick"));
    node_options_t o = {0};
    o.ws.rate = -1; /* unset: the default applies; 0 means unlimited */
    int rc = s_parse(argc, argv, &o, ro && ro->name ? ro->name : "skick-node");
    if (rc)
        return rc > 0 ? 0 : 2;
    char err[512];
    for (int i = 0; i < o.napps; i++)
        if (node_app_load_file(o.apps[i], err, sizeof err) != 0) {
            SKICK_LOG(SKICK_LOG_ERROR, "app", "%s", err);
            return 1;
        }
    skick_app_t *app = node_app_new();
    if (node_app_load_modules(app) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "app", "the application modules are inconsistent");
        node_app_destroy(&app);
        return 1;
    }
    if (o.list_types) {
        node_strmap_each(&app->types, s_list_types, NULL);
        node_app_destroy(&app);
        return 0;
    }
    if (app->types.count == 0 && app->sessions.count == 0 && !app->non_start)
        SKICK_LOG(SKICK_LOG_WARNING, "app", "no application modules: the shard runs empty "
                  "(load one with --app FILE.so)");
    /* The secret is checked before anything starts: a shard must not serve
       websockets with a key others can read, nor fail only later at join. */
    if (o.curve_secret && skick_secret_file_check(o.curve_secret, err, sizeof err) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "cluster", "--curve-secret: %s", err);
        node_app_destroy(&app);
        return 1;
    }
    if (o.broker && !o.curve_secret && !o.curve_server)
        SKICK_LOG(SKICK_LOG_WARNING, "cluster", "%s", SKICK_INSECURE_WARNING);
    if (o.front && !o.back && !o.broker)
        SKICK_LOG(SKICK_LOG_WARNING, "shard", "--front without --broker: sessions need a back "
                  "shard, and there is none; every handshake will be denied");
    node_shard_t *sh = node_shard_new(app, false);
    if (ro && ro->no_default_roles) {
        sh->front = o.front;
        sh->back = o.back;
    } else {
        sh->front = o.front || !o.back;
        sh->back = o.back || !o.front;
    }
    if (o.cfg.mailbox_capacity)
        sh->cfg.mailbox_capacity = o.cfg.mailbox_capacity;
    if (o.cfg.call_timeout_ms)
        sh->cfg.call_timeout_ms = o.cfg.call_timeout_ms;
    if (o.cfg.stop_timeout_ms)
        sh->cfg.stop_timeout_ms = o.cfg.stop_timeout_ms;
    if (o.cfg.stack_size)
        sh->cfg.stack_size = o.cfg.stack_size;
    if (o.hash) { /* before anything runs: every hash operation goes to Redis */
        if (o.hash_arg && o.hash_url.has_password)
            SKICK_LOG(SKICK_LOG_WARNING, "redis", "%s", SKICK_REDIS_ARGV_PASSWORD_WARNING);
        sh->hash->close(sh->hash_state);
        sh->hash = &node_hash_redis;
        sh->hash_state = node_redis_open(sh, &o.hash_url,
                                         &(node_redis_opts_t){.max_inflight = o.hash_inflight,
                                                              .exit_on_refusal = true});
    }
    /* Before anything is spawned, so that every actor is counted. A front
       shard always has them (/metrics on its web port); --metrics serves
       them from a port of their own. */
    skick_metrics_http_t *metrics_http = NULL;
    if (sh->front || o.metrics)
        node_metrics_enable(sh);
    if (o.metrics) {
        metrics_http = skick_metrics_http_start(o.metrics, node_metrics_registry(sh), err,
                                                sizeof err);
        if (!metrics_http) {
            SKICK_LOG(SKICK_LOG_ERROR, "shard", "%s", err);
            node_shard_destroy(&sh);
            node_app_destroy(&app);
            return 1;
        }
        SKICK_LOG(SKICK_LOG_NOTICE, "shard", "metrics on port %d at /metrics (--metrics %s)",
                  skick_metrics_http_port(metrics_http), o.metrics);
    }
    sigset_t old;
    int sfd = s_signals(&old);
    if (sfd < 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "shard", "cannot set up signal handling");
        node_shard_destroy(&sh);
        node_app_destroy(&app);
        return 1;
    }
    node_io_add(sh, sfd, s_on_signal, NULL);
    node_cluster_prepare(sh); /* the shard actor answers other shards' spawn requests */
    node_shard_start(sh);
    node_ws_t *ws = NULL;
    char ws_url[300] = "";
    if (sh->front) {
        /* Every open websocket is a descriptor: use all the hard limit allows. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (!o.ws.key_password)
            o.ws.key_password = getenv("SKICK_KEY_PASSWORD");
        ws = node_ws_start(sh, &o.ws, err, sizeof err);
        if (!ws) {
            SKICK_LOG(SKICK_LOG_ERROR, "ws", "%s", err);
            sh->exit_status = 1;
            node_shard_stop(sh);
        } else {
            const node_ws_config_t *c = node_ws_config(ws);
            SKICK_LOG(SKICK_LOG_NOTICE, "ws", "serving %s://%s:%d/ (%zu session type(s))",
                      c->cert ? "wss" : "ws", c->host, c->port, app->sessions.count);
            snprintf(ws_url, sizeof ws_url, "%s://%s:%d/", c->cert ? "wss" : "ws", c->host,
                     c->port);
        }
    }
    if (o.broker && !sh->stopping) {
        node_cluster_opts_t co = {.broker = o.broker, .curve_secret = o.curve_secret,
                                  .curve_server = o.curve_server,
                                  .ws_url = ws_url[0] ? ws_url : NULL, .apps = o.apps,
                                  .napps = o.napps, .roles = ro ? ro->roles : NULL};
        if (node_cluster_join(sh, &co, err, sizeof err) != 0) {
            SKICK_LOG(SKICK_LOG_ERROR, "cluster", "%s", err);
            sh->exit_status = 1;
            node_shard_stop(sh);
        } else {
            node_ws_set_view_shards(ws, node_cluster_view_shards, NULL); /* NULL-safe */
        }
    }
    if (!sh->stopping)
        SKICK_LOG(SKICK_LOG_NOTICE, "shard", "shard %s running with %zu actor type(s)",
                  sh->addr, app->types.count);
    node_loop_run(sh, false);
    node_ws_stop(&ws);
    node_cluster_leave(sh);
    int status = sh->exit_status;
    SKICK_LOG(SKICK_LOG_NOTICE, "shard", "shard stopped (%llu actors spawned, %llu dead "
              "letters)", (unsigned long long) sh->stats.spawned,
              (unsigned long long) sh->stats.dead_letters);
    close(sfd);
    skick_metrics_http_stop(&metrics_http);
    node_shard_destroy(&sh);
    node_app_destroy(&app);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return status;
}
