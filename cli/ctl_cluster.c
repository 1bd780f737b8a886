/*  ctl_cluster - the run directory, cluster.json, processes and binaries

    RUN_DIR/cluster.json describes what `skickctl up` started: the
    configuration (so that `scale` starts shards alike) and one entry per
    process (name, role, pid, argv, log). It is rewritten atomically
    (write a temporary file, rename) after every change, so that a failed
    or interrupted `up` can still be stopped with `down`.
*/
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

long long ctl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long ctl_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ctl_mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int) sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return -1;
            *p = saved;
            if (!saved)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

json_object *ctl_cluster_load(ctl_t *ctl)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cluster.json", ctl->run_dir);
    if (access(path, R_OK) != 0)
        return NULL;
    json_object *c = json_object_from_file(path);
    if (c && !json_object_is_type(c, json_type_object)) {
        json_object_put(c);
        errno = EINVAL;
        return NULL;
    }
    return c;
}

int ctl_cluster_save(ctl_t *ctl, json_object *cluster)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/cluster.json", ctl->run_dir);
    snprintf(tmp, sizeof tmp, "%s/.cluster.json.%d", ctl->run_dir, (int) getpid());
    if (json_object_to_file_ext(tmp, cluster,
                                JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) != 0)
        return -1;
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static const char *s_get_str(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static long long s_get_int(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v))
        return 0;
    return json_object_get_int64(v);
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
        const char *name = s_get_str(p, "name"), *role = s_get_str(p, "role");
        if (!name || !role)
            continue;
        ctl_proc_t *q = &procs[n++];
        memset(q, 0, sizeof *q);
        snprintf(q->name, sizeof q->name, "%s", name);
        snprintf(q->role, sizeof q->role, "%s", role);
        q->pid = (pid_t) s_get_int(p, "pid");
        q->index = (int) s_get_int(p, "index");
        q->port = (int) s_get_int(p, "port");
        q->started_ms = s_get_int(p, "started_ms");
    }
    return n;
}

/*  The process entry of cluster with this name, or NULL (borrowed). */
static json_object *s_entry(json_object *cluster, const char *name)
{
    json_object *arr;
    if (!json_object_object_get_ex(cluster, "processes", &arr))
        return NULL;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        const char *n = s_get_str(p, "name");
        if (n && strcmp(n, name) == 0)
            return p;
    }
    return NULL;
}

bool ctl_proc_alive(json_object *cluster, const ctl_proc_t *p)
{
    if (p->pid <= 1)
        return false;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) p->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
        return false; /* a zombie has ended */
    /* Guard against a recycled pid: the program must be the one we ran. */
    json_object *e = s_entry(cluster, p->name), *argv;
    if (!e || !json_object_object_get_ex(e, "argv", &argv) || json_object_array_length(argv) == 0)
        return true;
    const char *prog = json_object_get_string(json_object_array_get_idx(argv, 0));
    const char *base = strrchr(prog, '/');
    base = base ? base + 1 : prog;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int) p->pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *cb = strrchr(buf, '/');
    cb = cb ? cb + 1 : buf;
    return strcmp(cb, base) == 0;
}

const char *ctl_name_for_pid(json_object *cluster, long long pid)
{
    json_object *arr;
    if (!cluster || pid <= 0 || !json_object_object_get_ex(cluster, "processes", &arr))
        return NULL;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        if (s_get_int(p, "pid") == pid)
            return s_get_str(p, "name");
    }
    return NULL;
}

const char *ctl_shard_name(json_object *cluster, json_object *entry)
{
    const char *n = ctl_name_for_pid(cluster, s_get_int(entry, "pid"));
    return n ? n : "-";
}

int ctl_resolve_shard(json_object *cluster, json_object *ps, const char *arg, char out[17])
{
    bool hex = strlen(arg) == 16;
    for (int i = 0; hex && i < 16; i++)
        hex = isdigit((unsigned char) arg[i]) || (arg[i] >= 'a' && arg[i] <= 'f');
    for (size_t i = 0; ps && i < json_object_array_length(ps); i++) {
        json_object *e = json_object_array_get_idx(ps, i);
        const char *id = s_get_str(e, "shard");
        if (!id)
            continue;
        if ((hex && strcmp(id, arg) == 0) || strcmp(ctl_shard_name(cluster, e), arg) == 0) {
            snprintf(out, 17, "%s", id);
            return 0;
        }
    }
    if (hex) { /* not in ps (yet?): let the broker say */
        snprintf(out, 17, "%s", arg);
        return 0;
    }
    return -1;
}

static bool s_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int ctl_find_binary(const char *envvar, const char *subdir, const char *name, char *out,
                    size_t outlen)
{
    const char *env = getenv(envvar);
    if (env && *env) {
        snprintf(out, outlen, "%s", env);
        return s_executable(out) ? 0 : -1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(out, outlen, "%s/../%s/%s", self, subdir, name); /* build tree */
            if (s_executable(out))
                return 0;
            snprintf(out, outlen, "%s/%s", self, name); /* installed side by side */
            if (s_executable(out))
                return 0;
        }
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t) (colon - path) : strlen(path);
        if (len) {
            snprintf(out, outlen, "%.*s/%s", (int) len, path, name);
            if (s_executable(out))
                return 0;
        }
        path = colon ? colon + 1 : NULL;
    }
    snprintf(out, outlen, "%s", name);
    return -1;
}

void ctl_tail(const char *path, int n, const char *prefix, FILE *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || n <= 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    /* Read backwards in blocks until n + 1 newlines (or the start). */
    size_t cap = 0, len = 0;
    char *buf = NULL;
    off_t pos = size;
    int lines = 0;
    while (pos > 0 && lines <= n) {
        size_t chunk = pos > 65536 ? 65536 : (size_t) pos;
        pos -= (off_t) chunk;
        char *nb = malloc(len + chunk + 1);
        if (!nb)
            break;
        if (pread(fd, nb, chunk, pos) != (ssize_t) chunk) {
            free(nb);
            break;
        }
        if (len)
            memcpy(nb + chunk, buf, len);
        free(buf);
        buf = nb;
        len += chunk;
        cap = len;
        lines = 0;
        for (size_t i = 0; i < len; i++)
            lines += buf[i] == '\n';
        if (len > (64u << 20))
            break; /* enough for any tail worth printing */
    }
    close(fd);
    (void) cap;
    if (!buf)
        return;
    buf[len] = '\0';
    /* skip to the start of the last n lines */
    size_t end = len && buf[len - 1] == '\n' ? len - 1 : len;
    size_t start = end;
    int seen = 0;
    while (start > 0) {
        if (buf[start - 1] == '\n' && ++seen == n)
            break;
        start--;
    }
    char *line = buf + start;
    while (line < buf + len && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        fprintf(out, "%s%s\n", prefix, line);
        if (!nl)
            break;
        line = nl + 1;
    }
    free(buf);
}
