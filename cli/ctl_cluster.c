/*  ctl_cluster - the run directory, binaries, logs and shard names

    Small helpers of every command: JSON field access, clocks, mkdir -p,
    finding skick-broker and skick-node, the tail of a log, and the names
    (front-1, back-2) that cluster.json gives to the pids the broker lists.
    The record itself (cluster.json) is ctl_record.c.
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
#include "skick_redis.h"

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

const char *ctl_str(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

json_object *ctl_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object))
        json_object_object_get_ex(o, key, &v);
    return v;
}

long long ctl_int(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
        return 0;
    return json_object_get_int64(v);
}

json_object *ctl_proc_for_pid(json_object *cluster, long long pid)
{
    json_object *arr;
    if (!cluster || pid <= 0 || !json_object_object_get_ex(cluster, "processes", &arr))
        return NULL;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        if (ctl_int(p, "pid") == pid)
            return p;
    }
    return NULL;
}

const char *ctl_name_for_pid(json_object *cluster, long long pid)
{
    return ctl_str(ctl_proc_for_pid(cluster, pid), "name");
}

const char *ctl_shard_name(json_object *cluster, json_object *entry)
{
    const char *n = ctl_name_for_pid(cluster, ctl_int(entry, "pid"));
    return n ? n : "-";
}

int ctl_resolve_shard(json_object *cluster, json_object *ps, const char *arg, char out[17])
{
    bool hex = strlen(arg) == 16;
    for (int i = 0; hex && i < 16; i++)
        hex = isdigit((unsigned char) arg[i]) || (arg[i] >= 'a' && arg[i] <= 'f');
    for (size_t i = 0; ps && i < json_object_array_length(ps); i++) {
        json_object *e = json_object_array_get_idx(ps, i);
        const char *id = ctl_str(e, "shard");
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

const char *ctl_hash_shown(const char *url, char *buf, size_t len)
{
    skick_redis_url_t u;
    char err[256];
    if (skick_redis_url_parse(url, &u, err, sizeof err) == 0)
        skick_redis_url_format(&u, buf, len);
    else
        snprintf(buf, len, "%s", url);
    return buf;
}
