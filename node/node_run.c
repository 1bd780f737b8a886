/*  node_run - skick_run: options, module loading, signals, process lifetime

    The seed's skick.start(). Exit status: 0 after a clean stop (SIGINT,
    SIGTERM or SIGHUP: on_stop hooks run, then every actor stops), 1 when the
    shard cannot start or is forced down (a second signal, or actors still
    stopping after twice the stop timeout), 2 for a usage error.
*/
#include "node.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define NODE_MAX_APPS 64

typedef struct {
    const char *apps[NODE_MAX_APPS]; /* --app files */
    int napps;
    node_config_t cfg;               /* shard settings */
    bool list_types;                 /* --list-types */
} node_options_t;

static void s_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [OPTIONS]\n"
            "Run one Skick shard: a reactor hosting actors from application modules.\n"
            "\n"
            "  -a, --app FILE          load an application module (.so); repeatable\n"
            "  -l, --log-level LEVEL   debug, info (default), notice, warning, error, silent\n"
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

/*  Parse argv; returns -1 to exit with 2, 1 to exit 0 (help), 0 to run. */
static int s_parse(int argc, char **argv, node_options_t *o)
{
    static const struct option longopts[] = {
        {"app", required_argument, NULL, 'a'},
        {"log-level", required_argument, NULL, 'l'},
        {"mailbox", required_argument, NULL, 'm'},
        {"call-timeout", required_argument, NULL, 'c'},
        {"stop-timeout", required_argument, NULL, 's'},
        {"stack-kb", required_argument, NULL, 'k'},
        {"list-types", no_argument, NULL, 'L'},
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
        case 'h':
            s_usage(stdout, argv[0]);
            return 1;
        case 'V':
            printf("skick-node %s\n", SKICK_VERSION_STRING);
            return 1;
        default:
            s_usage(stderr, argv[0]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "skick: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
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
    const char *slash = argv && argv[0] ? strrchr(argv[0], '/') : NULL;
    skick_log_set_ident(slash ? slash + 1 : (argv && argv[0] ? argv[0] : "skick"));
    node_options_t o = {0};
    int rc = s_parse(argc, argv, &o);
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
    if (app->types.count == 0 && !app->non_start)
        SKICK_LOG(SKICK_LOG_WARNING, "app", "no application modules: the shard runs empty "
                  "(load one with --app FILE.so)");
    node_shard_t *sh = node_shard_new(app, false);
    if (o.cfg.mailbox_capacity)
        sh->cfg.mailbox_capacity = o.cfg.mailbox_capacity;
    if (o.cfg.call_timeout_ms)
        sh->cfg.call_timeout_ms = o.cfg.call_timeout_ms;
    if (o.cfg.stop_timeout_ms)
        sh->cfg.stop_timeout_ms = o.cfg.stop_timeout_ms;
    if (o.cfg.stack_size)
        sh->cfg.stack_size = o.cfg.stack_size;
    sigset_t old;
    int sfd = s_signals(&old);
    if (sfd < 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "shard", "cannot set up signal handling");
        node_shard_destroy(&sh);
        node_app_destroy(&app);
        return 1;
    }
    node_io_add(sh, sfd, s_on_signal, NULL);
    node_shard_start(sh);
    SKICK_LOG(SKICK_LOG_NOTICE, "shard", "shard %s running with %zu actor type(s)", sh->addr,
              app->types.count);
    node_loop_run(sh, false);
    int status = sh->exit_status;
    SKICK_LOG(SKICK_LOG_NOTICE, "shard", "shard stopped (%llu actors spawned, %llu dead "
              "letters)", (unsigned long long) sh->stats.spawned,
              (unsigned long long) sh->stats.dead_letters);
    close(sfd);
    node_shard_destroy(&sh);
    node_app_destroy(&app);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return status;
}
