/*  ctl_spawn - starting the cluster's processes detached, and stopping them

    A process is started under a watcher: skickctl forks the watcher, which
    forks the program (its own session, stdin from /dev/null, stdout and
    stderr appended to RUN_DIR/logs/NAME.log) and waits for it. When the
    program ends, however it ends (exit, crash, kill -9), the watcher writes
    "PID WAIT-STATUS" to RUN_DIR/NAME.exit and a line
    "==== skickctl: NAME (pid PID) ended: killed by signal 9 (SIGKILL)" to
    the log, then exits. That is how `ps`, `scale` and `down`, run long
    after the skickctl that started the process has gone, can still say how
    a shard died (a process's exit status goes to its parent only).

    The watcher is a fork of skickctl that never execs: after the fork it
    calls only async-signal-safe functions, closes every descriptor but
    the log (it must not keep skickctl's stdout, sockets or the record's
    lock open for the program's lifetime), ignores the usual termination
    signals (it ends when the program ends) and is named skickctl-watch.
    The program reports its pid, and an exec failure's errno, through a
    pipe whose write end closes on exec.

    Each start is recorded in cluster.json at once (with the program's
    start time, against pid reuse), so `down` can always stop what was
    started. Stopping is SIGTERM, a bounded wait, then SIGKILL.

    Metrics ports (up --metrics [HOST:]PORT_BASE, recorded as the
    cluster's "metrics": {"host", "base"}): the broker gets PORT_BASE, the
    AMQP bridge PORT_BASE+1 and back-K PORT_BASE+1+K, as --metrics
    HOST:PORT. The port follows from the name alone, so a replacement
    started by scale or a repair (the lowest free K) gets the port of the
    shard it replaces, and a Prometheus configuration written once stays
    right. Front shards serve /metrics on their websocket port and get no
    port of their own. Each process's endpoint is recorded in its entry
    ("metrics": "HOST:PORT") for ps.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "skick_redis.h"

/* ---- async-signal-safe text ------------------------------------------------------ */

typedef struct {
    char *buf;   /* output, always NUL-terminated */
    size_t len;  /* its size */
    size_t used; /* characters written */
} s_text_t;

static void s_puts(s_text_t *t, const char *s)
{
    while (*s && t->used + 1 < t->len)
        t->buf[t->used++] = *s++;
    t->buf[t->used] = '\0';
}

static void s_putn(s_text_t *t, long long v)
{
    char d[24], r[24];
    unsigned long long u = v < 0 ? 0 - (unsigned long long) v : (unsigned long long) v;
    int n = 0, k = 0;
    do
        d[n++] = (char) ('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        r[k++] = '-';
    while (n > 0)
        r[k++] = d[--n];
    r[k] = '\0';
    s_puts(t, r);
}

void ctl_status_text(int status, char *buf, size_t len)
{
    if (!len)
        return;
    s_text_t t = {buf, len, 0};
    buf[0] = '\0';
    if (WIFEXITED(status)) {
        s_puts(&t, "exited with status ");
        s_putn(&t, WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        s_puts(&t, "killed by signal ");
        s_putn(&t, WTERMSIG(status));
        if (abbrev) {
            s_puts(&t, " (SIG");
            s_puts(&t, abbrev);
            s_puts(&t, ")");
        }
        if (WCOREDUMP(status))
            s_puts(&t, ", core dumped");
    } else {
        s_puts(&t, "ended");
    }
}

void ctl_reap(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

/* ---- the watcher ------------------------------------------------------------------ */

typedef struct {
    const char *name;              /* NAME, for the log line */
    char *title;                   /* skickctl's argv strings: the watcher's command line */
    size_t title_len;              /* their size */
    char exit_path[PATH_MAX + 64]; /* RUN_DIR/NAME.exit */
    char exit_tmp[PATH_MAX + 80];  /* RUN_DIR/.NAME.exit.tmp, renamed over it */
} watch_t;

static void s_write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t) w;
    }
}

/*  The program: its own session, output to the log, then exec. Reports
    its pid, and errno if the exec fails, on report. */
__attribute__((noreturn)) static void s_exec(char **args, int lfd, int report)
{
    setsid();
    int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nfd >= 0)
        dup2(nfd, 0);
    dup2(lfd, 1);
    dup2(lfd, 2);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    pid_t me = getpid();
    s_write_all(report, (const char *) &me, sizeof me);
    execv(args[0], args);
    int e = errno;
    s_write_all(report, (const char *) &e, sizeof e);
    _exit(127);
}

/*  The watcher's own setup: quiet signals, 0-2 on /dev/null, the log on
    3 and no other descriptor, a name of its own. Returns the log's fd. */
static int s_watch_setup(const watch_t *w, int lfd)
{
    static const int quiet[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGUSR1, SIGUSR2};
    struct sigaction ign = {.sa_handler = SIG_IGN};
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
        sigaction(quiet[i], &ign, NULL);
    int nfd = open("/dev/null", O_RDWR), log = fcntl(lfd, F_DUPFD, 3);
    for (int fd = 0; fd < 3 && nfd >= 0; fd++)
        if (fd != nfd)
            dup2(nfd, fd);
    lfd = log >= 0 && (log == 3 || dup2(log, 3) == 3) ? 3 : -1;
    int first = lfd == 3 ? 4 : 3;
    if (close_range((unsigned) first, ~0U, 0) != 0)
        for (int fd = first; fd < 65536; fd++)
            close(fd);
    prctl(PR_SET_NAME, "skickctl-watch", 0, 0, 0);
    if (w->title && w->title_len > 1) { /* what ps -ef shows: not skickctl's command */
        s_text_t title = {w->title, w->title_len, 0};
        s_puts(&title, "skickctl-watch ");
        s_puts(&title, w->name);
        for (size_t i = title.used; i < w->title_len; i++)
            w->title[i] = '\0';
    }
    return lfd;
}

/*  Wait for child, then leave the record of its end. Never returns. */
__attribute__((noreturn)) static void s_watch(const watch_t *w, pid_t child, int lfd)
{
    lfd = s_watch_setup(w, lfd);
    int st = 0;
    while (waitpid(child, &st, 0) < 0)
        if (errno != EINTR)
            _exit(1);
    /* the log line first: whoever sees the exit file finds it in the log */
    char line[PATH_MAX + 160], how[96];
    s_text_t t = {line, sizeof line, 0};
    ctl_status_text(st, how, sizeof how);
    s_puts(&t, "==== skickctl: ");
    s_puts(&t, w->name);
    s_puts(&t, " (pid ");
    s_putn(&t, child);
    s_puts(&t, ") ended: ");
    s_puts(&t, how);
    s_puts(&t, "\n");
    s_write_all(lfd, line, t.used);
    t.used = 0;
    s_putn(&t, child);
    s_puts(&t, " ");
    s_putn(&t, st);
    s_puts(&t, "\n");
    int fd = open(w->exit_tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        s_write_all(fd, line, t.used);
        close(fd);
        rename(w->exit_tmp, w->exit_path);
    }
    _exit(0);
}

/*  Read exactly n bytes; the count read (less at EOF). */
static size_t s_read_all(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *) p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t) r;
    }
    return got;
}

/*  Fork the watcher, which starts argv detached with output to log.
    Returns the program's pid, or -1 with a reason in err. */
static pid_t s_spawn(ctl_t *ctl, const char *name, char **args, int lfd, char *err, size_t errlen)
{
    watch_t w = {.name = name, .title = ctl->argv_area, .title_len = ctl->argv_len};
    snprintf(w.exit_path, sizeof w.exit_path, "%s/%s.exit", ctl->run_dir, name);
    snprintf(w.exit_tmp, sizeof w.exit_tmp, "%s/.%s.exit.tmp", ctl->run_dir, name);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t wpid = fork();
    if (wpid == 0) {
        setsid(); /* out of skickctl's session: a Ctrl-C there is not for it */
        pid_t c = fork();
        if (c == 0)
            s_exec(args, lfd, pfd[1]);
        if (c < 0) {
            pid_t none = -1;
            int e = errno;
            s_write_all(pfd[1], (const char *) &none, sizeof none);
            s_write_all(pfd[1], (const char *) &e, sizeof e);
            _exit(127);
        }
        s_watch(&w, c, lfd);
    }
    close(pfd[1]);
    if (wpid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pfd[0]);
        return -1;
    }
    pid_t pid = -1;
    int e = 0;
    bool have_pid = s_read_all(pfd[0], &pid, sizeof pid) == sizeof pid;
    bool failed = s_read_all(pfd[0], &e, sizeof e) == sizeof e; /* else EOF: exec'd */
    close(pfd[0]);
    if (!have_pid)
        snprintf(err, errlen, "the watcher process failed");
    else if (pid < 0)
        snprintf(err, errlen, "fork: %s", strerror(e));
    else if (failed)
        snprintf(err, errlen, "cannot run %s: %s", args[0], strerror(e));
    else
        return pid;
    return -1;
}

/* ---- starting ----------------------------------------------------------------- */

static void s_arr_add(json_object *arr, const char *s)
{
    json_object_array_add(arr, json_object_new_string(s));
}

bool ctl_metrics_addr(json_object *cluster, const char *role, int index, char *out, size_t len)
{
    json_object *m = ctl_get(cluster, "metrics");
    const char *host = ctl_str(m, "host");
    long long port = ctl_int(m, "base");
    if (!host || port <= 0)
        return false;
    if (strcmp(role, "front") == 0)
        port = ctl_int(cluster, "port") + index - 1; /* its web port serves /metrics */
    else if (strcmp(role, "bridge") == 0)
        port += 1;
    else if (strcmp(role, "back") == 0)
        port += 1 + index;
    if (port > 65535)
        return false;
    snprintf(out, len, strchr(host, ':') ? "[%s]:%lld" : "%s:%lld", host, port);
    return true;
}

/*  --metrics HOST:PORT for a process with a port of its own (not a front
    shard); 0, or -1 after ctl_fail when its port would pass 65535. */
static int s_add_metrics(ctl_t *ctl, json_object *cluster, json_object *argv, const char *name,
                         const char *role, int index)
{
    char addr[300];
    if (!ctl_get(cluster, "metrics"))
        return 0;
    if (!ctl_metrics_addr(cluster, role, index, addr, sizeof addr)) {
        json_object_put(argv);
        return ctl_fail(ctl, SKICK_EINVAL, "%s: its metrics port is out of range", name), -1;
    }
    s_arr_add(argv, "--metrics");
    s_arr_add(argv, addr);
    return 0;
}

/*  Start one process and record it in cluster (saved). Takes argv. 0, or
    -1 after ctl_fail. */
static int s_start(ctl_t *ctl, json_object *cluster, const char *name, const char *role, int index,
                   int port, json_object *argv)
{
    char log[PATH_MAX + 64], err[PATH_MAX + 128], pidf[PATH_MAX + 64];
    snprintf(log, sizeof log, "%s/logs/%s.log", ctl->run_dir, name);
    snprintf(pidf, sizeof pidf, "%s/%s.pid", ctl->run_dir, name);
    size_t argc = json_object_array_length(argv);
    char **args = calloc(argc + 1, sizeof *args);
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_t pid = -1;
    if (!args)
        snprintf(err, sizeof err, "out of memory");
    else if (lfd < 0)
        snprintf(err, sizeof err, "cannot open %s: %s", log, strerror(errno));
    if (args && lfd >= 0) {
        dprintf(lfd, "==== skickctl: starting:");
        for (size_t i = 0; i < argc; i++) {
            char shown[800];
            args[i] = (char *) json_object_get_string(json_object_array_get_idx(argv, i));
            dprintf(lfd, " %s",
                    i && strcmp(args[i - 1], "--hash") == 0
                        ? ctl_hash_shown(args[i], shown, sizeof shown)
                        : args[i]); /* no password in the log */
        }
        dprintf(lfd, "\n");
        /* The record says where the hashes are (--hash-file or nothing):
           an SKICK_HASH_URL of skickctl's environment must not add one. */
        unsetenv(SKICK_REDIS_URL_ENV);
        pid = s_spawn(ctl, name, args, lfd, err, sizeof err);
    }
    if (lfd >= 0)
        close(lfd);
    free(args);
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
    json_object_object_add(p, "start_ticks", json_object_new_int64(ctl_proc_start_ticks(pid)));
    if (port)
        json_object_object_add(p, "port", json_object_new_int(port));
    /* where ps says its metrics are: what it was given, or a front
       shard's web port */
    char maddr[300];
    for (size_t i = 0; i + 1 < argc; i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(argv, i)), "--metrics") == 0)
            json_object_object_add(p, "metrics", json_object_get(json_object_array_get_idx(argv,
                                                                                     i + 1)));
    if (strcmp(role, "front") == 0 && ctl_metrics_addr(cluster, role, index, maddr, sizeof maddr))
        json_object_object_add(p, "metrics", json_object_new_string(maddr));
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
        !json_object_is_type(curve, json_type_object)) {
        /* `up --insecure`: the broker may then bind where it was told */
        if (strcmp(secret_key, "broker_secret") == 0)
            s_arr_add(argv, "--insecure");
        return;
    }
    s_arr_add(argv, "--curve-secret");
    s_arr_add(argv, ctl_str(curve, secret_key));
    if (strcmp(secret_key, "broker_secret") == 0) {
        s_arr_add(argv, "--curve-allow");
        s_arr_add(argv, ctl_str(curve, "allow"));
    } else {
        s_arr_add(argv, "--curve-server");
        s_arr_add(argv, ctl_str(curve, "broker_public"));
    }
}

/*  --hash-file RUN_DIR/hash.url when the record has a URL (up --hash):
    the broker and every shard keep the hash tables in the same Redis. The
    URL (its password) goes in a file only the owner can read, written
    again before each start (the record is the truth), never on a command
    line, which every local user can read in /proc/PID/cmdline. 0, or -1
    after ctl_fail. */
static int s_add_hash(ctl_t *ctl, json_object *cluster, json_object *argv)
{
    const char *url = ctl_str(cluster, "hash");
    if (!url)
        return 0;
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/hash.url", ctl->run_dir);
    snprintf(tmp, sizeof tmp, "%s.%d", path, (int) getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && dprintf(fd, "%s\n", url) > 0;
    int saved = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        json_object_put(argv);
        return ctl_fail(ctl, SKICK_ESTART, "cannot write %s: %s", path, strerror(saved)), -1;
    }
    s_arr_add(argv, "--hash-file");
    s_arr_add(argv, path);
    return 0;
}

int ctl_start_broker(ctl_t *ctl, json_object *cluster)
{
    json_object *argv = json_object_new_array();
    char pidf[PATH_MAX + 64];
    snprintf(pidf, sizeof pidf, "%s/broker.pid", ctl->run_dir);
    s_arr_add(argv, ctl_str(cluster, "broker_bin"));
    s_arr_add(argv, "--bind");
    s_arr_add(argv, ctl_str(cluster, "broker"));
    s_arr_add(argv, "--control");
    s_arr_add(argv, ctl_str(cluster, "control"));
    s_add_curve(cluster, argv, "broker_secret");
    if (s_add_hash(ctl, cluster, argv) != 0 ||
        s_add_metrics(ctl, cluster, argv, "broker", "broker", 0) != 0)
        return -1;
    s_arr_add(argv, "--pid-file");
    s_arr_add(argv, pidf);
    return s_start(ctl, cluster, "broker", "broker", 0, 0, argv);
}

int ctl_start_shard(ctl_t *ctl, json_object *cluster, const char *role, int index)
{
    char name[32], num[16];
    snprintf(name, sizeof name, "%s-%d", role, index);
    json_object *argv = json_object_new_array(), *list;
    s_arr_add(argv, ctl_str(cluster, "node_bin"));
    s_arr_add(argv, "--broker");
    s_arr_add(argv, ctl_str(cluster, "broker"));
    int port = 0;
    if (strcmp(role, "front") == 0) {
        s_arr_add(argv, "--front");
        port = (int) ctl_int(cluster, "port") + index - 1;
        if (port > 65535) {
            json_object_put(argv);
            return ctl_fail(ctl, SKICK_EINVAL, "%s: port %d is out of range", name, port), -1;
        }
        snprintf(num, sizeof num, "%d", port);
        s_arr_add(argv, "--port");
        s_arr_add(argv, num);
        s_arr_add(argv, "--host");
        s_arr_add(argv, ctl_str(cluster, "host"));
        if (ctl_str(cluster, "www")) {
            s_arr_add(argv, "--www");
            s_arr_add(argv, ctl_str(cluster, "www"));
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
    if (s_add_hash(ctl, cluster, argv) != 0 ||
        (strcmp(role, "front") != 0 && s_add_metrics(ctl, cluster, argv, name, role, index) != 0))
        return -1;
    json_object_object_get_ex(cluster, "node_args", &list);
    for (size_t i = 0; list && i < json_object_array_length(list); i++)
        s_arr_add(argv, json_object_get_string(json_object_array_get_idx(list, i)));
    return s_start(ctl, cluster, name, role, index, port, argv);
}

/*  Whether the bridge binary takes --metrics (its --help says so): a
    bridge built before it had metrics still starts, without them. */
static bool s_bridge_has_metrics(const char *bin)
{
    char cmd[PATH_MAX + 32];
    if (!bin || strchr(bin, '\'') || snprintf(cmd, sizeof cmd, "'%s' --help 2>&1", bin) >= (int) sizeof cmd)
        return false;
    FILE *f = popen(cmd, "r");
    char line[512];
    bool has = false;
    while (f && fgets(line, sizeof line, f))
        has |= strstr(line, "--metrics") != NULL;
    if (f)
        pclose(f);
    return has;
}

int ctl_start_bridge(ctl_t *ctl, json_object *cluster)
{
    const char *file = ctl_str(cluster, "amqp_file");
    if (!file)
        return 0;
    json_object *argv = json_object_new_array();
    s_arr_add(argv, ctl_str(cluster, "amqp_bin"));
    s_arr_add(argv, "--amqp-file"); /* the password stays out of ps and the record */
    s_arr_add(argv, file);
    s_arr_add(argv, "--broker");
    s_arr_add(argv, ctl_str(cluster, "broker"));
    s_add_curve(cluster, argv, "node_secret");
    if (s_bridge_has_metrics(ctl_str(cluster, "amqp_bin")) &&
        s_add_metrics(ctl, cluster, argv, "bridge-1", "bridge", 1) != 0)
        return -1;
    return s_start(ctl, cluster, "bridge-1", "bridge", 1, 0, argv);
}

/* ---- stopping ----------------------------------------------------------------- */

void ctl_stop(ctl_t *ctl, json_object *cluster, ctl_stop_t *s, int n, long grace_ms)
{
    /* Only a process that is provably the one we started gets a signal: a
       pid that now runs another process, or that the record cannot vouch
       for (no start time), is left alone (ctl_proc_state). */
    bool sent[CTL_MAX_PROCS];
    for (int i = 0; i < n; i++) {
        ctl_proc_state_t st = ctl_proc_state(&s[i].p);
        sent[i] = st == CTL_PROC_OURS && kill(s[i].p.pid, SIGTERM) == 0;
        s[i].result = sent[i] ? "stopped" : st == CTL_PROC_GONE ? "not running" : "not signalled";
    }
    for (int phase = 0; phase < 2; phase++) {
        long long deadline = ctl_mono_ms() + (phase == 0 ? grace_ms : 3000);
        for (;;) {
            int left = 0;
            ctl_reap(); /* the watchers of those that ended */
            for (int i = 0; i < n; i++)
                if (sent[i] && ctl_proc_alive(&s[i].p))
                    left++;
            if (!left || ctl_mono_ms() >= deadline)
                break;
            usleep(50 * 1000);
        }
        if (phase == 1)
            break;
        for (int i = 0; i < n; i++)
            if (sent[i] && ctl_proc_alive(&s[i].p)) {
                kill(s[i].p.pid, SIGKILL);
                s[i].result = "killed";
            }
    }
    for (int i = 0; i < n; i++)
        ctl_cluster_forget(ctl, cluster, &s[i].p);
    ctl_cluster_save(ctl, cluster);
}

int ctl_by_newest(const void *x, const void *y)
{
    const ctl_stop_t *a = x, *b = y;
    bool ab = strcmp(a->p.role, "broker") == 0, bb = strcmp(b->p.role, "broker") == 0;
    if (ab != bb)
        return ab ? 1 : -1; /* the broker last */
    if (a->p.started_ms != b->p.started_ms)
        return a->p.started_ms > b->p.started_ms ? -1 : 1;
    return b->p.index - a->p.index;
}
