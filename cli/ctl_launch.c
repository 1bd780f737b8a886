/*  ctl_launch - skickctl up, down and scale: the cluster's processes

    Processes are started detached: fork, setsid, stdin from /dev/null,
    stdout and stderr appended to RUN_DIR/logs/NAME.log, exec. A pipe with
    O_CLOEXEC reports an exec failure. Each start is recorded in
    cluster.json at once, so `down` can always stop what was started.
    Readiness is the broker's view: a shard is up when `ps` lists its pid.
    A process that exits while we wait is reaped (it is our child) and its
    log's tail is printed. Stopping is SIGTERM, a bounded wait, then
    SIGKILL.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "skick_wire.h"

#define MAX_PROCS 256
#define DEFAULT_WAIT_MS 15000
#define DEFAULT_STOP_MS 10000
#define TAIL_LINES 20

/* ---- starting ----------------------------------------------------------------- */

static void s_arr_add(json_object *arr, const char *s)
{
    json_object_array_add(arr, json_object_new_string(s));
}

static const char *s_str(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static long long s_int(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void s_pid_path(ctl_t *ctl, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s.pid", ctl->run_dir, name);
}

static void s_log_path(ctl_t *ctl, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/logs/%s.log", ctl->run_dir, name);
}

/*  Fork and exec argv detached, output to log. Returns the pid, or -1 with
    a reason in err. */
static pid_t s_spawn(json_object *argv, const char *log, char *err, size_t errlen)
{
    size_t argc = json_object_array_length(argv);
    char **args = calloc(argc + 1, sizeof *args);
    if (!args) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < argc; i++)
        args[i] = (char *) json_object_get_string(json_object_array_get_idx(argv, i));
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (lfd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", log, strerror(errno));
        free(args);
        return -1;
    }
    dprintf(lfd, "==== skickctl: starting:");
    for (size_t i = 0; i < argc; i++)
        dprintf(lfd, " %s", args[i]);
    dprintf(lfd, "\n");
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        close(lfd);
        free(args);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int nfd = open("/dev/null", O_RDONLY);
        if (nfd >= 0)
            dup2(nfd, 0);
        dup2(lfd, 1);
        dup2(lfd, 2);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(args[0], args);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof e);
        (void) w;
        _exit(127);
    }
    close(pfd[1]);
    close(lfd);
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pfd[0]);
        free(args);
        return -1;
    }
    int e = 0;
    ssize_t r;
    do
        r = read(pfd[0], &e, sizeof e);
    while (r < 0 && errno == EINTR);
    close(pfd[0]);
    if (r == (ssize_t) sizeof e) {
        snprintf(err, errlen, "cannot run %s: %s", args[0], strerror(e));
        waitpid(pid, NULL, 0);
        free(args);
        return -1;
    }
    free(args);
    return pid;
}

/*  Start one process and record it in cluster (saved). 0, or -1 after
    ctl_fail. */
static int s_start(ctl_t *ctl, json_object *cluster, const char *name, const char *role, int index,
                   int port, json_object *argv)
{
    char log[PATH_MAX + 64], err[PATH_MAX + 128], pidf[PATH_MAX + 64];
    s_log_path(ctl, name, log, sizeof log);
    s_pid_path(ctl, name, pidf, sizeof pidf);
    pid_t pid = s_spawn(argv, log, err, sizeof err);
    if (pid < 0) {
        json_object_put(argv);
        return ctl_fail(ctl, SKICK_ESTART, "%s: %s", name, err), -1;
    }
    FILE *f = fopen(pidf, "w");
    if (f) {
        fprintf(f, "%d\n", (int) pid);
        fclose(f);
    }
    json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(name));
    json_object_object_add(p, "role", json_object_new_string(role));
    json_object_object_add(p, "index", json_object_new_int(index));
    json_object_object_add(p, "pid", json_object_new_int64(pid));
    if (port)
        json_object_object_add(p, "port", json_object_new_int(port));
    json_object_object_add(p, "log", json_object_new_string(log));
    json_object_object_add(p, "pid_file", json_object_new_string(pidf));
    json_object_object_add(p, "started_ms", json_object_new_int64(ctl_wall_ms()));
    json_object_object_add(p, "argv", argv);
    json_object *arr;
    json_object_object_get_ex(cluster, "processes", &arr);
    json_object_array_add(arr, p);
    if (ctl_cluster_save(ctl, cluster) != 0)
        return ctl_fail(ctl, SKICK_ESTART, "cannot write %s/cluster.json: %s", ctl->run_dir,
                        strerror(errno)),
               -1;
    return 0;
}

static void s_add_curve(json_object *cluster, json_object *argv, const char *secret_key)
{
    json_object *curve;
    if (!json_object_object_get_ex(cluster, "curve", &curve) ||
        !json_object_is_type(curve, json_type_object))
        return;
    s_arr_add(argv, "--curve-secret");
    s_arr_add(argv, s_str(curve, secret_key));
    if (strcmp(secret_key, "broker_secret") == 0) {
        s_arr_add(argv, "--curve-allow");
        s_arr_add(argv, s_str(curve, "allow"));
    } else {
        s_arr_add(argv, "--curve-server");
        s_arr_add(argv, s_str(curve, "broker_public"));
    }
}

static int s_start_broker(ctl_t *ctl, json_object *cluster)
{
    json_object *argv = json_object_new_array();
    char pidf[PATH_MAX + 64];
    s_pid_path(ctl, "broker", pidf, sizeof pidf);
    s_arr_add(argv, s_str(cluster, "broker_bin"));
    s_arr_add(argv, "--bind");
    s_arr_add(argv, s_str(cluster, "broker"));
    s_arr_add(argv, "--control");
    s_arr_add(argv, s_str(cluster, "control"));
    s_add_curve(cluster, argv, "broker_secret");
    s_arr_add(argv, "--pid-file");
    s_arr_add(argv, pidf);
    return s_start(ctl, cluster, "broker", "broker", 0, 0, argv);
}

static int s_start_shard(ctl_t *ctl, json_object *cluster, const char *role, int index)
{
    char name[32], num[16];
    snprintf(name, sizeof name, "%s-%d", role, index);
    json_object *argv = json_object_new_array(), *list;
    s_arr_add(argv, s_str(cluster, "node_bin"));
    s_arr_add(argv, "--broker");
    s_arr_add(argv, s_str(cluster, "broker"));
    int port = 0;
    if (strcmp(role, "front") == 0) {
        s_arr_add(argv, "--front");
        port = (int) s_int(cluster, "port") + index - 1;
        if (port > 65535) {
            json_object_put(argv);
            return ctl_fail(ctl, SKICK_EINVAL, "%s: port %d is out of range", name, port), -1;
        }
        snprintf(num, sizeof num, "%d", port);
        s_arr_add(argv, "--port");
        s_arr_add(argv, num);
        s_arr_add(argv, "--host");
        s_arr_add(argv, s_str(cluster, "host"));
        if (s_str(cluster, "www")) {
            s_arr_add(argv, "--www");
            s_arr_add(argv, s_str(cluster, "www"));
        }
    } else {
        s_arr_add(argv, "--back");
        json_object_object_get_ex(cluster, "apps", &list);
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
            s_arr_add(argv, "--app");
            s_arr_add(argv, json_object_get_string(json_object_array_get_idx(list, i)));
        }
    }
    s_add_curve(cluster, argv, "node_secret");
    json_object_object_get_ex(cluster, "node_args", &list);
    for (size_t i = 0; list && i < json_object_array_length(list); i++)
        s_arr_add(argv, json_object_get_string(json_object_array_get_idx(list, i)));
    return s_start(ctl, cluster, name, role, index, port, argv);
}

/* ---- stopping ----------------------------------------------------------------- */

typedef struct {
    ctl_proc_t p;       /* the process */
    const char *result; /* "stopped", "killed", "not running" */
} stop_t;

/*  Stop the processes (SIGTERM all, wait up to grace_ms, SIGKILL the
    rest), remove them from cluster and their pid files. */
static void s_stop(ctl_t *ctl, json_object *cluster, stop_t *s, int n, long grace_ms)
{
    for (int i = 0; i < n; i++) {
        if (ctl_proc_alive(cluster, &s[i].p)) {
            kill(s[i].p.pid, SIGTERM);
            s[i].result = "stopped";
        } else {
            s[i].result = "not running";
        }
    }
    for (int phase = 0; phase < 2; phase++) {
        long long deadline = ctl_mono_ms() + (phase == 0 ? grace_ms : 3000);
        for (;;) {
            int left = 0;
            for (int i = 0; i < n; i++) {
                waitpid(s[i].p.pid, NULL, WNOHANG); /* reap our own children */
                if (strcmp(s[i].result, "not running") != 0 && ctl_proc_alive(cluster, &s[i].p))
                    left++;
            }
            if (!left || ctl_mono_ms() >= deadline)
                break;
            usleep(50 * 1000);
        }
        if (phase == 1)
            break;
        for (int i = 0; i < n; i++)
            if (strcmp(s[i].result, "not running") != 0 && ctl_proc_alive(cluster, &s[i].p)) {
                kill(s[i].p.pid, SIGKILL);
                s[i].result = "killed";
            }
    }
    json_object *arr;
    json_object_object_get_ex(cluster, "processes", &arr);
    for (int i = 0; i < n; i++) {
        char pidf[PATH_MAX + 64];
        s_pid_path(ctl, s[i].p.name, pidf, sizeof pidf);
        unlink(pidf);
        for (size_t k = 0; arr && k < json_object_array_length(arr); k++) {
            const char *nm = s_str(json_object_array_get_idx(arr, k), "name");
            if (nm && strcmp(nm, s[i].p.name) == 0) {
                json_object_array_del_idx(arr, k, 1);
                break;
            }
        }
    }
    ctl_cluster_save(ctl, cluster);
}

/* ---- waiting for the broker's view ---------------------------------------- */

/*  A process of ours that has exited: reap it and describe the status. */
static bool s_exited(json_object *cluster, const ctl_proc_t *p, char *why, size_t len)
{
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        if (WIFEXITED(st))
            snprintf(why, len, "exited with status %d", WEXITSTATUS(st));
        else if (WIFSIGNALED(st))
            snprintf(why, len, "was killed by signal %d (%s)", WTERMSIG(st),
                     strsignal(WTERMSIG(st)));
        else
            snprintf(why, len, "ended");
        return true;
    }
    if (!ctl_proc_alive(cluster, p)) {
        snprintf(why, len, "is not running");
        return true;
    }
    return false;
}

static int s_fail_with_log(ctl_t *ctl, int code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_fail_with_log(ctl_t *ctl, int code, const char *name, const char *fmt, ...)
{
    char text[1024], log[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    s_log_path(ctl, name, log, sizeof log);
    ctl_fail(ctl, code, "%s (log: %s)", text, log);
    fprintf(stderr, "---- last lines of %s ----\n", log);
    ctl_tail(log, TAIL_LINES, "  ", stderr);
    fprintf(stderr, "----\n");
    return -1;
}

/*  Connect to the broker, retrying until the deadline; checks that the
    broker process (if we know it) still runs. */
static skick_client_t *s_connect_wait(ctl_t *ctl, json_object *cluster, long long deadline)
{
    ctl_proc_t procs[MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, MAX_PROCS);
    for (;;) {
        for (int i = 0; i < n; i++) {
            char why[128];
            if (strcmp(procs[i].role, "broker") == 0 &&
                s_exited(cluster, &procs[i], why, sizeof why)) {
                s_fail_with_log(ctl, SKICK_ESTART, "broker", "the broker %s", why);
                return NULL;
            }
        }
        long long left = deadline - ctl_mono_ms();
        skick_client_opts_t o = {.timeout_ms =
                                     (int) (left < 1000 ? (left > 100 ? left : 100) : 1000)};
        json_object *curve;
        if (json_object_object_get_ex(cluster, "curve", &curve) &&
            json_object_is_type(curve, json_type_object)) {
            o.curve_secret = s_str(curve, "client_secret");
            o.curve_server = s_str(curve, "broker_public");
        }
        skick_client_t *c = skick_client_connect(s_str(cluster, "control"), &o);
        if (c)
            return c;
        if (ctl_mono_ms() >= deadline) {
            s_fail_with_log(ctl, SKICK_ESTART, "broker", "the broker did not answer on %s: %s",
                            s_str(cluster, "control"), skick_client_last_error());
            return NULL;
        }
        usleep(100 * 1000);
    }
}

static bool s_ps_has_pid(json_object *ps, pid_t pid)
{
    for (size_t i = 0; ps && i < json_object_array_length(ps); i++)
        if (s_int(json_object_array_get_idx(ps, i), "pid") == pid)
            return true;
    return false;
}

/*  Wait until ps lists every live shard of cluster and none of gone (pids).
    0 with *ps_out (caller owns), or -1 after the failure was printed. */
static int s_wait_shards(ctl_t *ctl, json_object *cluster, const pid_t *gone, int ngone,
                         long wait_ms, json_object **ps_out)
{
    *ps_out = NULL;
    long long deadline = ctl_mono_ms() + wait_ms;
    skick_client_t *c = s_connect_wait(ctl, cluster, deadline);
    if (!c)
        return -1;
    ctl_proc_t procs[MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, MAX_PROCS);
    for (;;) {
        char why[128];
        const char *missing = NULL;
        json_object *ps = NULL;
        for (int i = 0; i < n; i++)
            if (s_exited(cluster, &procs[i], why, sizeof why)) {
                skick_client_destroy(&c);
                return s_fail_with_log(ctl, SKICK_ESTART, procs[i].name, "%s %s", procs[i].name,
                                       why);
            }
        if (skick_client_ps(c, 2000, &ps) != 0 || !json_object_is_type(ps, json_type_array)) {
            json_object_put(ps);
            int code = skick_errno();
            const char *msg = skick_client_last_error();
            skick_client_destroy(&c);
            return ctl_fail(ctl, code ? code : SKICK_EPROTO, "ps: %s", msg), -1;
        }
        for (int i = 0; i < n && !missing; i++)
            if (strcmp(procs[i].role, "broker") != 0 && !s_ps_has_pid(ps, procs[i].pid))
                missing = procs[i].name;
        bool lingering = false;
        for (int i = 0; i < ngone; i++)
            lingering |= s_ps_has_pid(ps, gone[i]);
        if (!missing && !lingering) {
            *ps_out = ps;
            skick_client_destroy(&c);
            return 0;
        }
        json_object_put(ps);
        if (ctl_mono_ms() >= deadline) {
            skick_client_destroy(&c);
            if (missing)
                return s_fail_with_log(ctl, SKICK_ETIMEDOUT, missing,
                                       "%s did not join the broker within %ld ms", missing,
                                       wait_ms);
            return ctl_fail(ctl, SKICK_ETIMEDOUT,
                            "stopped shards still listed by the broker "
                            "after %ld ms",
                            wait_ms),
                   -1;
        }
        skick_client_pump(c, 200);
    }
}

/* ---- up ----------------------------------------------------------------------- */

typedef struct {
    long front, back, port, wait_ms;
    const char *broker, *host, *www;
    bool curve;
    json_object *apps, *node_args; /* owned until moved into the cluster */
} up_opts_t;

static int s_up_options(ctl_t *ctl, ctl_args_t *a, up_opts_t *o)
{
    *o = (up_opts_t){1,           1,    8000,  DEFAULT_WAIT_MS,         "tcp://127.0.0.1:7400",
                     "127.0.0.1", NULL, false, json_object_new_array(), json_object_new_array()};
    for (int i = 0; i < a->nopts; i++) {
        const char *v = a->opts[i].arg;
        char abs[PATH_MAX];
        switch (a->opts[i].val) {
        case OPT_FRONT:
            if (ctl_parse_int(ctl, "--front", v, 0, 64, &o->front))
                return -1;
            break;
        case OPT_BACK:
            if (ctl_parse_int(ctl, "--back", v, 0, 64, &o->back))
                return -1;
            break;
        case OPT_PORT:
            if (ctl_parse_int(ctl, "--port", v, 1, 65535, &o->port))
                return -1;
            break;
        case OPT_WAIT:
            if (ctl_parse_int(ctl, "--wait", v, 1, 3600000, &o->wait_ms))
                return -1;
            break;
        case OPT_BROKER:
            o->broker = v;
            break;
        case OPT_HOST:
            o->host = v;
            break;
        case OPT_WWW:
        case OPT_APP:
            if (!realpath(v, abs)) {
                ctl_usage(ctl, "%s '%s': %s", a->opts[i].val == OPT_APP ? "--app" : "--www", v,
                          strerror(errno));
                return -1;
            }
            if (a->opts[i].val == OPT_APP)
                s_arr_add(o->apps, abs);
            else
                o->www = strdup(abs); /* freed at exit */
            break;
        case OPT_NODE_ARG:
            s_arr_add(o->node_args, v);
            break;
        case OPT_CURVE:
            o->curve = true;
            break;
        }
    }
    char probe[600];
    if (skick_endpoint_derive(o->broker, SKICK_EP_DIR_OUT, probe, sizeof probe) != 0) {
        ctl_usage(ctl, "--broker '%s' must be tcp://HOST:PORT (PORT below 65534) or ipc://PATH",
                  o->broker);
        return -1;
    }
    if (o->port + (o->front > 0 ? o->front - 1 : 0) > 65535) {
        ctl_usage(ctl, "--port %ld leaves no room for %ld front shards", o->port, o->front);
        return -1;
    }
    return 0;
}

/*  Make the CURVE keys: broker, node (every shard) and client (skickctl);
    the broker admits the public certificates in keys/allow. */
static int s_curve_keys(ctl_t *ctl, json_object *cluster)
{
    char keys[PATH_MAX + 8], allow[PATH_MAX + 16], path[PATH_MAX + 64], dst[PATH_MAX + 64];
    snprintf(keys, sizeof keys, "%s/keys", ctl->run_dir);
    snprintf(allow, sizeof allow, "%s/allow", keys);
    if (ctl_mkdirs(allow, 0700) != 0)
        return ctl_fail(ctl, SKICK_ESTART, "cannot create %s: %s", allow, strerror(errno)), -1;
    static const char *const names[] = {"broker", "node", "client"};
    for (int i = 0; i < 3; i++) {
        if (ctl_keygen(ctl, keys, names[i], true, NULL) != 0)
            return -1;
        if (i > 0) { /* admit node and client */
            snprintf(path, sizeof path, "%s/%s.cert", keys, names[i]);
            snprintf(dst, sizeof dst, "%s/%s.cert", allow, names[i]);
            unlink(dst);
            if (link(path, dst) != 0 && symlink(path, dst) != 0)
                return ctl_fail(ctl, SKICK_ESTART, "cannot link %s: %s", dst, strerror(errno)), -1;
        }
    }
    json_object *c = json_object_new_object();
    json_object_object_add(c, "dir", json_object_new_string(keys));
    json_object_object_add(c, "allow", json_object_new_string(allow));
    snprintf(path, sizeof path, "%s/broker.cert_secret", keys);
    json_object_object_add(c, "broker_secret", json_object_new_string(path));
    snprintf(path, sizeof path, "%s/broker.cert", keys);
    json_object_object_add(c, "broker_public", json_object_new_string(path));
    snprintf(path, sizeof path, "%s/node.cert_secret", keys);
    json_object_object_add(c, "node_secret", json_object_new_string(path));
    snprintf(path, sizeof path, "%s/client.cert_secret", keys);
    json_object_object_add(c, "client_secret", json_object_new_string(path));
    json_object_object_add(cluster, "curve", c);
    return 0;
}

/*  Whether any recorded process of cluster is still alive. */
static const char *s_any_alive(json_object *cluster)
{
    static ctl_proc_t procs[MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, MAX_PROCS);
    for (int i = 0; i < n; i++)
        if (ctl_proc_alive(cluster, &procs[i]))
            return procs[i].name;
    return NULL;
}

/*  Stop everything recorded in cluster (after a failed start). */
static void s_teardown(ctl_t *ctl, json_object *cluster)
{
    static stop_t s[MAX_PROCS];
    static ctl_proc_t procs[MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, MAX_PROCS);
    for (int i = 0; i < n; i++)
        s[i] = (stop_t){procs[i], NULL};
    s_stop(ctl, cluster, s, n, 3000);
    fprintf(stderr, "skickctl: stopped the processes started; logs are in %s/logs\n", ctl->run_dir);
}

static json_object *s_connect_urls(json_object *ps)
{
    json_object *urls = json_object_new_array();
    for (size_t i = 0; ps && i < json_object_array_length(ps); i++) {
        const char *ws = s_str(json_object_array_get_idx(ps, i), "ws");
        if (ws) {
            char u[300];
            size_t n = strlen(ws);
            snprintf(u, sizeof u, "%s%s", ws, n && ws[n - 1] == '/' ? "" : "/");
            s_arr_add(urls, u);
        }
    }
    return urls;
}

static void s_print_result(ctl_t *ctl, json_object *cluster, json_object *ps, const char *what,
                           json_object *extra)
{
    json_object *urls = s_connect_urls(ps);
    if (ctl->json) {
        json_object *o = extra ? extra : json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "run_dir", json_object_new_string(ctl->run_dir));
        json_object_object_add(o, "control", json_object_new_string(s_str(cluster, "control")));
        json_object_object_add(o, "broker", json_object_new_string(s_str(cluster, "broker")));
        json_object *procs;
        json_object_object_get_ex(cluster, "processes", &procs);
        json_object_object_add(o, "processes", json_object_get(procs));
        json_object_object_add(o, "shards", json_object_get(ps));
        json_object_object_add(o, "connect", urls);
        ctl_print_json(o);
        json_object_put(o);
        return;
    }
    printf("%s in %s (broker %s, control %s)\n\n", what, ctl->run_dir, s_str(cluster, "broker"),
           s_str(cluster, "control"));
    ctl_print_ps(ctl, cluster, ps);
    printf("\n");
    for (size_t i = 0; i < json_object_array_length(urls); i++)
        printf("%s %s\n", i ? "        " : "Connect:",
               json_object_get_string(json_object_array_get_idx(urls, i)));
    if (json_object_array_length(urls) == 0)
        printf("Connect: (no front shard)\n");
    printf("Stop:    skickctl --run-dir %s down\n", ctl->run_dir);
    json_object_put(urls);
    json_object_put(extra);
}

int ctl_cmd_up(ctl_t *ctl, ctl_args_t *a)
{
    up_opts_t o;
    if (s_up_options(ctl, a, &o) != 0) {
        json_object_put(o.apps);
        json_object_put(o.node_args);
        return CTL_USAGE;
    }
    int rc = CTL_FAIL;
    json_object *cluster = NULL, *ps = NULL;
    char broker_bin[PATH_MAX], node_bin[PATH_MAX], logs[PATH_MAX + 8];
    if (ctl_find_binary("SKICK_BROKER_BIN", "broker", "skick-broker", broker_bin,
                        sizeof broker_bin) != 0) {
        ctl_fail(ctl, SKICK_ESTART, "cannot find skick-broker (%s; set SKICK_BROKER_BIN)",
                 broker_bin);
        goto out;
    }
    if (ctl_find_binary("SKICK_NODE_BIN", "node", "skick-node", node_bin, sizeof node_bin) != 0) {
        ctl_fail(ctl, SKICK_ESTART, "cannot find skick-node (%s; set SKICK_NODE_BIN)", node_bin);
        goto out;
    }
    snprintf(logs, sizeof logs, "%s/logs", ctl->run_dir);
    if (ctl_mkdirs(ctl->run_dir, 0700) != 0 || ctl_mkdirs(logs, 0700) != 0) {
        ctl_fail(ctl, SKICK_ESTART, "cannot create %s: %s", logs, strerror(errno));
        goto out;
    }
    chmod(ctl->run_dir, 0700); /* the control socket lives here: owner only */
    char real[PATH_MAX];
    if (realpath(ctl->run_dir, real))
        snprintf(ctl->run_dir, sizeof ctl->run_dir, "%s", real);
    if (!ctl->control_given)
        snprintf(ctl->control, sizeof ctl->control, "ipc://%s/control", ctl->run_dir);
    if (strncmp(ctl->control, "ipc://", 6) == 0 && strlen(ctl->control + 6) > 100) {
        ctl_fail(ctl, SKICK_EINVAL,
                 "the control socket path %s is too long for ipc:// "
                 "(use a shorter --run-dir)",
                 ctl->control + 6);
        goto out;
    }
    json_object *old = ctl_cluster_load(ctl);
    const char *alive = old ? s_any_alive(old) : NULL;
    if (alive) {
        ctl_fail(ctl, SKICK_ESTART,
                 "a cluster is already running in %s (%s is alive); "
                 "`skickctl --run-dir %s down` first",
                 ctl->run_dir, alive, ctl->run_dir);
        json_object_put(old);
        goto out;
    }
    json_object_put(old);

    cluster = json_object_new_object();
    json_object_object_add(cluster, "version", json_object_new_int(1));
    json_object_object_add(cluster, "run_dir", json_object_new_string(ctl->run_dir));
    json_object_object_add(cluster, "broker", json_object_new_string(o.broker));
    json_object_object_add(cluster, "control", json_object_new_string(ctl->control));
    json_object_object_add(cluster, "host", json_object_new_string(o.host));
    json_object_object_add(cluster, "port", json_object_new_int((int) o.port));
    json_object_object_add(cluster, "www", o.www ? json_object_new_string(o.www) : NULL);
    json_object_object_add(cluster, "apps", o.apps);
    json_object_object_add(cluster, "node_args", o.node_args);
    o.apps = o.node_args = NULL;
    json_object_object_add(cluster, "broker_bin", json_object_new_string(broker_bin));
    json_object_object_add(cluster, "node_bin", json_object_new_string(node_bin));
    json_object_object_add(cluster, "curve", NULL);
    json_object_object_add(cluster, "started_ms", json_object_new_int64(ctl_wall_ms()));
    json_object_object_add(cluster, "processes", json_object_new_array());
    if (o.curve && s_curve_keys(ctl, cluster) != 0)
        goto out;
    if (ctl_cluster_save(ctl, cluster) != 0) {
        ctl_fail(ctl, SKICK_ESTART, "cannot write %s/cluster.json: %s", ctl->run_dir,
                 strerror(errno));
        goto out;
    }
    if (s_start_broker(ctl, cluster) != 0)
        goto fail;
    /* Shards join on their own (they re-send HELLO every second), but a
       broker that cannot start should be reported as such, not as shards
       that never joined: wait for it first. */
    skick_client_t *c = s_connect_wait(ctl, cluster, ctl_mono_ms() + o.wait_ms);
    if (!c)
        goto fail;
    skick_client_destroy(&c);
    for (long i = 1; i <= o.front; i++)
        if (s_start_shard(ctl, cluster, "front", (int) i) != 0)
            goto fail;
    for (long i = 1; i <= o.back; i++)
        if (s_start_shard(ctl, cluster, "back", (int) i) != 0)
            goto fail;
    if (s_wait_shards(ctl, cluster, NULL, 0, o.wait_ms, &ps) != 0)
        goto fail;
    s_print_result(ctl, cluster, ps, "Cluster up", NULL);
    rc = CTL_OK;
    goto out;
fail:
    s_teardown(ctl, cluster);
out:
    json_object_put(o.apps);
    json_object_put(o.node_args);
    free((char *) o.www);
    json_object_put(ps);
    json_object_put(cluster);
    return rc;
}

/* ---- down --------------------------------------------------------------------- */

static int s_by_newest(const void *x, const void *y)
{
    const stop_t *a = x, *b = y;
    bool ab = strcmp(a->p.role, "broker") == 0, bb = strcmp(b->p.role, "broker") == 0;
    if (ab != bb)
        return ab ? 1 : -1; /* the broker last */
    if (a->p.started_ms != b->p.started_ms)
        return a->p.started_ms > b->p.started_ms ? -1 : 1;
    return b->p.index - a->p.index;
}

int ctl_cmd_down(ctl_t *ctl, ctl_args_t *a)
{
    long grace = DEFAULT_STOP_MS;
    for (int i = 0; i < a->nopts; i++)
        if (a->opts[i].val == OPT_WAIT &&
            ctl_parse_int(ctl, "--wait", a->opts[i].arg, 0, 3600000, &grace))
            return CTL_USAGE;
    json_object *cluster = ctl_cluster_load(ctl);
    if (!cluster)
        return ctl_fail(ctl, SKICK_ENOTFOUND, "no cluster in %s (no cluster.json)", ctl->run_dir);
    static ctl_proc_t procs[MAX_PROCS];
    static stop_t s[MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, MAX_PROCS);
    for (int i = 0; i < n; i++)
        s[i] = (stop_t){procs[i], NULL};
    qsort(s, (size_t) n, sizeof *s, s_by_newest);
    int nshards = 0;
    while (nshards < n && strcmp(s[nshards].p.role, "broker") != 0)
        nshards++;
    /* Shards first (they leave cleanly through the broker), then the broker. */
    s_stop(ctl, cluster, s, nshards, grace);
    s_stop(ctl, cluster, s + nshards, n - nshards, grace);
    json_object_object_add(cluster, "stopped_ms", json_object_new_int64(ctl_wall_ms()));
    ctl_cluster_save(ctl, cluster);
    json_object_put(cluster);
    if (ctl->json) {
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        for (int i = 0; i < n; i++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "name", json_object_new_string(s[i].p.name));
            json_object_object_add(e, "pid", json_object_new_int64(s[i].p.pid));
            json_object_object_add(e, "result", json_object_new_string(s[i].result));
            json_object_array_add(arr, e);
        }
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "stopped", arr);
        ctl_print_json(o);
        json_object_put(o);
        return CTL_OK;
    }
    if (n == 0) {
        printf("Nothing to stop in %s\n", ctl->run_dir);
        return CTL_OK;
    }
    static const char *const head[] = {"NAME", ">PID", "RESULT"};
    ctl_table_t *t = ctl_table_new(3, head);
    for (int i = 0; i < n; i++) {
        char pid[24];
        snprintf(pid, sizeof pid, "%d", (int) s[i].p.pid);
        const char *row[] = {s[i].p.name, pid, s[i].result};
        ctl_table_add(t, row);
    }
    ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
    return CTL_OK;
}

/* ---- scale -------------------------------------------------------------------- */

static int s_scale_arg(ctl_t *ctl, const char *arg, long *front, long *back)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return ctl_usage(ctl, "expected front=N or back=M, got '%s'", arg), -1;
    size_t klen = (size_t) (eq - arg);
    long *dst = klen == 5 && strncmp(arg, "front", 5) == 0  ? front
                : klen == 4 && strncmp(arg, "back", 4) == 0 ? back
                                                            : NULL;
    if (!dst)
        return ctl_usage(ctl, "expected front=N or back=M, got '%s'", arg), -1;
    return ctl_parse_int(ctl, klen == 5 ? "front" : "back", eq + 1, 0, 64, dst);
}

int ctl_cmd_scale(ctl_t *ctl, ctl_args_t *a)
{
    long want[2] = {-1, -1}, wait_ms = DEFAULT_WAIT_MS; /* front, back */
    for (int i = 0; i < a->npos; i++)
        if (s_scale_arg(ctl, a->pos[i], &want[0], &want[1]) != 0)
            return CTL_USAGE;
    for (int i = 0; i < a->nopts; i++)
        if (a->opts[i].val == OPT_WAIT &&
            ctl_parse_int(ctl, "--wait", a->opts[i].arg, 1, 3600000, &wait_ms))
            return CTL_USAGE;
    json_object *cluster = ctl_cluster_load(ctl);
    if (!cluster)
        return ctl_fail(ctl, SKICK_ENOTFOUND, "no cluster in %s (skickctl up first)", ctl->run_dir);
    static ctl_proc_t procs[MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, MAX_PROCS);
    bool broker = false;
    for (int i = 0; i < n; i++)
        broker |= strcmp(procs[i].role, "broker") == 0 && ctl_proc_alive(cluster, &procs[i]);
    if (!broker) {
        json_object_put(cluster);
        return ctl_fail(ctl, SKICK_EUNREACH,
                        "the cluster in %s has no running broker "
                        "(skickctl up first)",
                        ctl->run_dir);
    }
    static const char *const roles[2] = {"front", "back"};
    json_object *started = json_object_new_array(), *stopped = json_object_new_array();
    static stop_t s[MAX_PROCS];
    static pid_t gone[MAX_PROCS];
    int ns = 0, rc = CTL_FAIL;
    json_object *ps = NULL;
    for (int r = 0; r < 2; r++) {
        if (want[r] < 0)
            continue;
        int live = 0;
        bool used[65] = {false};
        for (int i = 0; i < n; i++)
            if (strcmp(procs[i].role, roles[r]) == 0 && ctl_proc_alive(cluster, &procs[i])) {
                live++;
                if (procs[i].index >= 1 && procs[i].index <= 64)
                    used[procs[i].index] = true;
            }
        for (int k = 1; live < want[r] && k <= 64; k++) {
            if (used[k])
                continue;
            if (s_start_shard(ctl, cluster, roles[r], k) != 0)
                goto out;
            char name[32];
            snprintf(name, sizeof name, "%s-%d", roles[r], k);
            s_arr_add(started, name);
            live++;
        }
        /* too many: the newest first */
        int first = ns;
        for (int i = 0; i < n; i++)
            if (strcmp(procs[i].role, roles[r]) == 0 && ctl_proc_alive(cluster, &procs[i]))
                s[ns++] = (stop_t){procs[i], NULL};
        qsort(s + first, (size_t) (ns - first), sizeof *s, s_by_newest);
        int excess = live - (int) want[r];
        ns = first + (excess > 0 ? excess : 0);
    }
    for (int i = 0; i < ns; i++) {
        s_arr_add(stopped, s[i].p.name);
        gone[i] = s[i].p.pid;
    }
    s_stop(ctl, cluster, s, ns, wait_ms);
    if (s_wait_shards(ctl, cluster, gone, ns, wait_ms, &ps) != 0)
        goto out;
    json_object *extra = json_object_new_object();
    json_object_object_add(extra, "started", json_object_get(started));
    json_object_object_add(extra, "stopped", json_object_get(stopped));
    if (ctl->json) {
        s_print_result(ctl, cluster, ps, "Scaled", extra);
    } else {
        json_object_put(extra);
        for (size_t i = 0; i < json_object_array_length(started); i++)
            printf("started %s\n", json_object_get_string(json_object_array_get_idx(started, i)));
        for (size_t i = 0; i < json_object_array_length(stopped); i++)
            printf("stopped %s\n", json_object_get_string(json_object_array_get_idx(stopped, i)));
        if (!json_object_array_length(started) && !json_object_array_length(stopped))
            printf("nothing to do\n");
        s_print_result(ctl, cluster, ps, "Cluster", NULL);
    }
    rc = CTL_OK;
out:
    json_object_put(started);
    json_object_put(stopped);
    json_object_put(ps);
    json_object_put(cluster);
    return rc;
}
