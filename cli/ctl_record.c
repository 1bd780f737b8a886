/*  ctl_record - the launcher's record: cluster.json, its lock, its processes

    RUN_DIR/cluster.json describes what `skickctl up` started: the
    configuration (so that `scale` starts shards alike) and one entry per
    process (name, role, index, pid, start_ticks, argv, log). It is
    rewritten after every change through a temporary file, fsync and
    rename, so a reader sees the old or the new record, never half of one,
    and a failed or interrupted `up` can still be stopped with `down`.

    The record says what was started, not what still runs. Whether an
    entry is alive is decided here from /proc: the pid exists and is no
    zombie, and its start time (field 22 of /proc/PID/stat, recorded at
    the start) is the same. A pid the kernel gave to another process fails
    that check, and so does an entry without a start time (a record of an
    older skickctl, or one written by hand): skickctl cannot tell that it
    is the process it started, so it never signals it (ctl_proc_state).
    The program's name proves nothing (anyone can start a process called
    skick-node) and is not compared. How a dead process ended is in
    RUN_DIR/NAME.exit ("PID WAIT-STATUS"), which its watcher (ctl_spawn.c)
    writes once it has reaped it.

    The record is read only from a run directory that ctl_rundir.c trusts,
    and only if the file itself is ours and not writable by others: it
    names the programs `scale` runs and the pids `down` signals.

    Commands that change the record (up, down, scale) hold an exclusive
    flock on RUN_DIR/cluster.lock from reading the record to their last
    write, so two of them never interleave; the kernel drops the lock when
    the holder exits, whatever the reason. Readers (ps and the queries) do
    not lock: the rename makes every read whole.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"

#define EXIT_FILE_WAIT_MS 200 /* for a watcher to write what it saw */

json_object *ctl_cluster_load(ctl_t *ctl)
{
    int fd = ctl_rundir_check(ctl) == 0 ? ctl_rundir_open(ctl, "cluster.json") : -1;
    if (fd < 0)
        return NULL;
    json_object *c = json_object_from_fd(fd);
    close(fd);
    if (!c || !json_object_is_type(c, json_type_object)) {
        json_object_put(c);
        errno = EINVAL;
        return NULL;
    }
    return c;
}

json_object *ctl_cluster_need(ctl_t *ctl)
{
    json_object *c = ctl_cluster_load(ctl);
    if (c)
        return c;
    if (errno == EPERM)
        ctl_fail(ctl, SKICK_EINVAL, "%s", ctl_rundir_why());
    else if (errno == EINVAL)
        ctl_fail(ctl, SKICK_EINVAL,
                 "%s/cluster.json is damaged (not a JSON object); "
                 "stop what it started by hand, remove it, then `skickctl up`",
                 ctl->run_dir);
    else
        ctl_fail(ctl, SKICK_ENOTFOUND, "no cluster in %s (no cluster.json; skickctl up first)",
                 ctl->run_dir);
    return NULL;
}

int ctl_cluster_save(ctl_t *ctl, json_object *cluster)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/cluster.json", ctl->run_dir);
    snprintf(tmp, sizeof tmp, "%s/.cluster.json.%d", ctl->run_dir, (int) getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc =
        json_object_to_fd(fd, cluster, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (rc == 0)
        rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 || rename(tmp, path) != 0) {
        e = rc != 0 ? e : errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

int ctl_cluster_procs(json_object *cluster, ctl_proc_t *procs, int max)
{
    json_object *arr;
    if (!cluster || !json_object_object_get_ex(cluster, "processes", &arr) ||
        !json_object_is_type(arr, json_type_array))
        return 0;
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(arr) && n < max; i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        const char *name = ctl_str(p, "name"), *role = ctl_str(p, "role");
        if (!name || !role)
            continue;
        ctl_proc_t *q = &procs[n++];
        memset(q, 0, sizeof *q);
        snprintf(q->name, sizeof q->name, "%s", name);
        snprintf(q->role, sizeof q->role, "%s", role);
        q->pid = (pid_t) ctl_int(p, "pid");
        q->index = (int) ctl_int(p, "index");
        q->port = (int) ctl_int(p, "port");
        q->started_ms = ctl_int(p, "started_ms");
        q->start_ticks = ctl_int(p, "start_ticks");
    }
    return n;
}

void ctl_cluster_forget(ctl_t *ctl, json_object *cluster, const ctl_proc_t *p)
{
    json_object *arr;
    if (json_object_object_get_ex(cluster, "processes", &arr))
        for (size_t k = 0; k < json_object_array_length(arr); k++) {
            json_object *e = json_object_array_get_idx(arr, k);
            const char *nm = ctl_str(e, "name");
            if (nm && strcmp(nm, p->name) == 0 && ctl_int(e, "pid") == p->pid) {
                json_object_array_del_idx(arr, k, 1);
                break;
            }
        }
    char path[PATH_MAX + 64], buf[32] = "";
    snprintf(path, sizeof path, "%s/%s.pid", ctl->run_dir, p->name);
    FILE *f = fopen(path, "r");
    if (f) {
        bool ours = fgets(buf, sizeof buf, f) && atoll(buf) == p->pid;
        fclose(f);
        if (ours)
            unlink(path);
    }
    /* its watcher's record too, once written (the log keeps the line) */
    int st;
    if (ctl_proc_status(ctl, p, ctl_proc_alive(p) ? 0 : EXIT_FILE_WAIT_MS, &st) == 0) {
        snprintf(path, sizeof path, "%s/%s.exit", ctl->run_dir, p->name);
        unlink(path);
    }
}

/* ---- is it alive? ----------------------------------------------------------- */

/*  /proc/PID/stat into buf; a pointer to its third field (the state), or
    NULL when there is no such process. */
static const char *s_read_stat(pid_t pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')'); /* the name may hold spaces and ')' */
    return rp && rp[1] == ' ' ? rp + 2 : NULL;
}

/*  Field 22 (starttime) counted from the state, field 3. */
static long long s_ticks(const char *state)
{
    const char *f = state;
    for (int i = 3; i < 22 && f; i++) {
        f = strchr(f, ' ');
        f = f ? f + 1 : NULL;
    }
    return f ? atoll(f) : 0;
}

long long ctl_proc_start_ticks(pid_t pid)
{
    char buf[1024];
    const char *state = s_read_stat(pid, buf, sizeof buf);
    return state ? s_ticks(state) : 0;
}

ctl_proc_state_t ctl_proc_state(const ctl_proc_t *p)
{
    char buf[1024];
    const char *state = p->pid > 1 ? s_read_stat(p->pid, buf, sizeof buf) : NULL;
    if (!state || state[0] == 'Z' || state[0] == 'X')
        return CTL_PROC_GONE; /* a zombie has ended */
    if (p->start_ticks <= 0)
        return CTL_PROC_UNKNOWN;
    return s_ticks(state) == p->start_ticks ? CTL_PROC_OURS : CTL_PROC_NOT_OURS;
}

bool ctl_proc_alive(const ctl_proc_t *p)
{
    return ctl_proc_state(p) == CTL_PROC_OURS;
}

/* ---- how did it end? ---------------------------------------------------------- */

int ctl_proc_status(ctl_t *ctl, const ctl_proc_t *p, long wait_ms, int *status)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s.exit", ctl->run_dir, p->name);
    long long deadline = ctl_mono_ms() + wait_ms;
    for (;;) {
        FILE *f = fopen(path, "r");
        long long pid = 0;
        int st = 0;
        if (f) {
            int k = fscanf(f, "%lld %d", &pid, &st);
            fclose(f);
            if (k == 2 && pid == p->pid) {
                *status = st;
                return 0;
            }
        }
        if (ctl_mono_ms() >= deadline)
            return -1;
        usleep(20 * 1000);
    }
}

void ctl_proc_ended(ctl_t *ctl, const ctl_proc_t *p, long wait_ms, char *buf, size_t len)
{
    int st;
    if (ctl_proc_status(ctl, p, wait_ms, &st) == 0)
        ctl_status_text(st, buf, len);
    else if (ctl_proc_state(p) == CTL_PROC_UNKNOWN)
        snprintf(buf, len, "not verifiable (the record has no start time)");
    else if (ctl_proc_state(p) == CTL_PROC_NOT_OURS)
        snprintf(buf, len, "ended (its pid now runs another process)");
    else
        snprintf(buf, len, "ended, how is not known");
}

json_object *ctl_proc_dead_json(ctl_t *ctl, const ctl_proc_t *p, long wait_ms)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(p->name));
    json_object_object_add(o, "role", json_object_new_string(p->role));
    json_object_object_add(o, "pid", json_object_new_int64(p->pid));
    json_object_object_add(o, "state", json_object_new_string("dead"));
    char why[128];
    int st;
    bool known = ctl_proc_status(ctl, p, wait_ms, &st) == 0;
    if (known)
        ctl_status_text(st, why, sizeof why);
    else
        ctl_proc_ended(ctl, p, 0, why, sizeof why);
    json_object_object_add(o, "ended", json_object_new_string(why));
    if (known && WIFEXITED(st))
        json_object_object_add(o, "exit_status", json_object_new_int(WEXITSTATUS(st)));
    if (known && WIFSIGNALED(st))
        json_object_object_add(o, "signal", json_object_new_int(WTERMSIG(st)));
    return o;
}

int ctl_check_broker(ctl_t *ctl, json_object *cluster)
{
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS), broker = -1;
    for (int i = 0; i < n; i++)
        if (strcmp(procs[i].role, "broker") == 0)
            broker = i;
    if (broker < 0 || ctl_proc_alive(&procs[broker]))
        return 0;
    char why[128], live[512] = "";
    size_t used = 0;
    for (int i = 0; i < n; i++)
        if (i != broker && ctl_proc_alive(&procs[i]) && used < sizeof live) {
            int k =
                snprintf(live + used, sizeof live - used, "%s%s", used ? ", " : "", procs[i].name);
            used += k > 0 ? (size_t) k : 0;
        }
    ctl_proc_ended(ctl, &procs[broker], EXIT_FILE_WAIT_MS, why, sizeof why);
    if (!used)
        return ctl_fail(ctl, SKICK_EUNREACH,
                        "the broker of the cluster in %s is not running: pid %d %s; no shard "
                        "runs either. Start a new cluster: `skickctl up`",
                        ctl->run_dir, (int) procs[broker].pid, why);
    return ctl_fail(ctl, SKICK_EUNREACH,
                    "the broker of the cluster in %s is not running: pid %d %s; shards still "
                    "running, cut off: %s. `skickctl scale` (or `skickctl up`) restarts the "
                    "broker as recorded, and they join it",
                    ctl->run_dir, (int) procs[broker].pid, why, live);
}

/* ---- the lock ------------------------------------------------------------------- */

int ctl_lock(ctl_t *ctl, long wait_ms)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cluster.lock", ctl->run_dir);
    /* O_CLOEXEC: the programs we start must not hold it (their watchers
       close every descriptor too) */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ctl_fail(ctl, SKICK_ESTART, "cannot open %s: %s", path, strerror(errno)), -1;
    long long deadline = ctl_mono_ms() + wait_ms;
    bool told = false;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            return ctl_fail(ctl, SKICK_ESTART, "cannot lock %s: %s", path, strerror(e)), -1;
        }
        char holder[128] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        if (!holder[0])
            snprintf(holder, sizeof holder, "another skickctl");
        if (ctl_mono_ms() >= deadline) {
            close(fd);
            return ctl_fail(ctl, SKICK_ETIMEDOUT,
                            "%s is still changing the cluster in %s after %ld ms (lock %s)", holder,
                            ctl->run_dir, wait_ms, path),
                   -1;
        }
        if (!told && !ctl->json)
            fprintf(stderr, "skickctl: waiting for %s, which is changing the cluster in %s\n",
                    holder, ctl->run_dir);
        told = true;
        usleep(100 * 1000);
    }
    if (ftruncate(fd, 0) == 0)
        dprintf(fd, "skickctl %s (pid %d)\n", ctl->cmd ? ctl->cmd : "", (int) getpid());
    return fd;
}

void ctl_unlock(int *fd_p)
{
    if (!fd_p || *fd_p < 0)
        return;
    close(*fd_p); /* releases the flock; the note stays until the next holder's */
    *fd_p = -1;
}
