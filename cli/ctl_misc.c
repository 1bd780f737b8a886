/*  ctl_misc - skickctl logs and keygen

    logs reads RUN_DIR/logs/NAME.log (written by the processes `up`
    started); -f polls the files for growth every 200 ms until SIGINT or
    SIGTERM, picking up logs that appear meanwhile (scale). keygen writes a
    CZMQ certificate pair with zcert_save and makes the secret file 0600;
    with --allow and --role it also admits the public half in that role's
    directory of a broker's --curve-allow (shards/, bridges/, clients/).
*/
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

#define MAX_LOGS 256

/* ---- logs ---------------------------------------------------------------------- */

typedef struct {
    char name[64];             /* NAME of NAME.log */
    char path[PATH_MAX + 272]; /* RUN_DIR/logs/ + a directory entry */
    off_t offset;              /* -f: bytes already shown */
    char partial[4096];        /* -f: an unfinished last line */
    size_t plen;
} log_t;

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static int s_log_order(const void *x, const void *y)
{
    const log_t *a = x, *b = y;
    bool ab = strcmp(a->name, "broker") == 0, bb = strcmp(b->name, "broker") == 0;
    if (ab != bb)
        return ab ? -1 : 1;
    return strverscmp(a->name, b->name);
}

/*  The logs in RUN_DIR/logs (only name when given), sorted broker first. */
static int s_list_logs(ctl_t *ctl, const char *name, log_t *logs, int max)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/logs", ctl->run_dir);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        size_t len = strlen(de->d_name);
        if (len <= 4 || len - 4 >= sizeof logs[n].name || strcmp(de->d_name + len - 4, ".log") ||
            de->d_name[0] == '.')
            continue;
        snprintf(logs[n].name, sizeof logs[n].name, "%.*s", (int) (len - 4), de->d_name);
        if (name && strcmp(name, logs[n].name) != 0)
            continue;
        snprintf(logs[n].path, sizeof logs[n].path, "%s/%s", dir, de->d_name);
        logs[n].offset = 0;
        logs[n].plen = 0;
        n++;
    }
    closedir(d);
    qsort(logs, (size_t) n, sizeof *logs, s_log_order);
    return n;
}

static void s_emit(ctl_t *ctl, const log_t *l, const char *line, bool prefix)
{
    if (ctl->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "line", json_object_new_string(line));
        ctl_print_json(o);
        json_object_put(o);
    } else if (prefix) {
        printf("%s | %s\n", l->name, line);
    } else {
        printf("%s\n", line);
    }
}

/*  The last n lines of l, as a JSON array of strings (new reference). */
static json_object *s_tail_lines(const log_t *l, int n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    json_object *arr = json_object_new_array();
    if (!m)
        return arr;
    ctl_tail(l->path, n, "", m);
    fclose(m);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_object_array_add(arr, json_object_new_string(line));
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    return arr;
}

/*  Print what was appended to l since the last call. */
static void s_follow_one(ctl_t *ctl, log_t *l, bool prefix)
{
    FILE *f = fopen(l->path, "r");
    if (!f)
        return;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size < l->offset) {
        l->offset = 0; /* truncated or replaced */
        l->plen = 0;
    }
    fseeko(f, l->offset, SEEK_SET);
    int ch;
    while ((ch = fgetc(f)) != EOF) {
        l->offset++;
        if (ch == '\n' || l->plen == sizeof l->partial - 1) {
            l->partial[l->plen] = '\0';
            s_emit(ctl, l, l->partial, prefix);
            l->plen = 0;
            if (ch != '\n')
                l->partial[l->plen++] = (char) ch;
        } else {
            l->partial[l->plen++] = (char) ch;
        }
    }
    fclose(f);
    fflush(stdout);
}

static int s_follow(ctl_t *ctl, const char *name, log_t *logs, int n)
{
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (int i = 0; i < n; i++) {
        struct stat st;
        logs[i].offset = stat(logs[i].path, &st) == 0 ? st.st_size : 0;
    }
    long long rescan = ctl_mono_ms() + 1000;
    while (!s_stop) {
        for (int i = 0; i < n; i++)
            s_follow_one(ctl, &logs[i], !name);
        if (!name && ctl_mono_ms() >= rescan) {
            /* new processes (scale): follow their logs from the start */
            static log_t found[MAX_LOGS];
            int m = s_list_logs(ctl, NULL, found, MAX_LOGS);
            for (int k = 0; k < m && n < MAX_LOGS; k++) {
                bool known = false;
                for (int i = 0; i < n; i++)
                    known |= strcmp(logs[i].name, found[k].name) == 0;
                if (!known)
                    logs[n++] = found[k];
            }
            rescan = ctl_mono_ms() + 1000;
        }
        usleep(200 * 1000);
    }
    return CTL_OK;
}

int ctl_cmd_logs(ctl_t *ctl, ctl_args_t *a)
{
    bool follow = false;
    long lines = 20;
    for (int i = 0; i < a->nopts; i++) {
        if (a->opts[i].val == OPT_FOLLOW)
            follow = true;
        else if (a->opts[i].val == OPT_LINES &&
                 ctl_parse_int(ctl, "-n", a->opts[i].arg, 0, 10000000, &lines))
            return CTL_USAGE;
    }
    if (access(ctl->run_dir, F_OK) == 0 && ctl_rundir_secure(ctl, false) != 0)
        return CTL_FAIL; /* another user's files are not shown as the cluster's */
    const char *name = a->npos ? a->pos[0] : NULL;
    static log_t logs[MAX_LOGS];
    int n = s_list_logs(ctl, name, logs, MAX_LOGS);
    if (n == 0) {
        if (name)
            return ctl_fail(ctl, SKICK_ENOTFOUND, "no log named '%s' in %s/logs", name,
                            ctl->run_dir);
        return ctl_fail(ctl, SKICK_ENOTFOUND, "no logs in %s/logs", ctl->run_dir);
    }
    if (ctl->json && !follow) {
        json_object *o = json_object_new_object();
        for (int i = 0; i < n; i++)
            json_object_object_add(o, logs[i].name, s_tail_lines(&logs[i], (int) lines));
        ctl_print_json(o);
        json_object_put(o);
    } else if (ctl->json) {
        for (int i = 0; i < n; i++) {
            json_object *arr = s_tail_lines(&logs[i], (int) lines);
            for (size_t k = 0; k < json_object_array_length(arr); k++)
                s_emit(ctl, &logs[i], json_object_get_string(json_object_array_get_idx(arr, k)),
                       false);
            json_object_put(arr);
        }
    } else {
        for (int i = 0; i < n; i++) {
            if (!name)
                printf("%s==> %s <==\n", i ? "\n" : "", logs[i].name);
            ctl_tail(logs[i].path, (int) lines, "", stdout);
        }
    }
    fflush(stdout);
    return follow ? s_follow(ctl, name, logs, n) : CTL_OK;
}

/* ---- keygen -------------------------------------------------------------------- */

static bool s_valid_name(const char *name)
{
    if (!*name || name[0] == '.' || strlen(name) > 100)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

int ctl_keygen(ctl_t *ctl, const char *dir, const char *name, bool force, char pub_out[41])
{
    char pub[PATH_MAX + 128], sec[PATH_MAX + 140];
    if (!s_valid_name(name))
        return ctl_fail(ctl, SKICK_EINVAL,
                        "bad certificate name '%s' (letters, digits, '-', "
                        "'_', '.')",
                        name),
               -1;
    if (ctl_mkdirs(dir, 0700) != 0)
        return ctl_fail(ctl, SKICK_EINVAL, "cannot create %s: %s", dir, strerror(errno)), -1;
    snprintf(pub, sizeof pub, "%s/%s.cert", dir, name);
    snprintf(sec, sizeof sec, "%s_secret", pub);
    if (!force && (access(pub, F_OK) == 0 || access(sec, F_OK) == 0))
        return ctl_fail(ctl, SKICK_EINVAL, "%s already exists (--force to overwrite)", pub), -1;
    zcert_t *cert = zcert_new();
    if (!cert)
        return ctl_fail(ctl, SKICK_ENOMEM, "cannot make a key pair"), -1;
    zcert_set_meta(cert, "name", "%s", name);
    zcert_set_meta(cert, "created-by", "skickctl %s", "keygen");
    unlink(sec);
    mode_t old = umask(077); /* the secret file is never readable by others */
    int rc = zcert_save(cert, pub);
    umask(old);
    if (rc != 0) {
        zcert_destroy(&cert);
        return ctl_fail(ctl, SKICK_EINVAL, "cannot write %s: %s", pub, strerror(errno)), -1;
    }
    chmod(sec, 0600);
    chmod(pub, 0644);
    if (pub_out)
        snprintf(pub_out, 41, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}

/*  The role directory of a role name, or NULL. */
static const char *s_role_dir(const char *role)
{
    static const char *const roles[][2] = {
        {"shard", "shards"}, {"bridge", "bridges"}, {"client", "clients"}};
    for (size_t i = 0; role && i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(role, roles[i][0]) == 0)
            return roles[i][1];
    return NULL;
}

/*  Copy the file src to dst (mode 0644), replacing dst. 0 or -1 (errno). */
static int s_copy(const char *src, const char *dst)
{
    FILE *in = fopen(src, "r");
    if (!in)
        return -1;
    unlink(dst);
    FILE *out = fopen(dst, "w");
    char buf[4096];
    size_t n;
    int rc = out ? 0 : -1;
    while (out && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (ferror(in) || (out && fclose(out) != 0))
        rc = -1;
    fclose(in);
    return rc == 0 ? chmod(dst, 0644) : -1;
}

int ctl_keygen_admit(ctl_t *ctl, const char *dir, const char *name, const char *allow,
                     const char *role)
{
    const char *sub = s_role_dir(role);
    if (!sub)
        return ctl_fail(ctl, SKICK_EINVAL, "--role '%s': use shard, client or bridge",
                        role ? role : ""),
               -1;
    char rdir[PATH_MAX + 16], src[PATH_MAX + 128], dst[PATH_MAX + 160];
    snprintf(rdir, sizeof rdir, "%s/%s", allow, sub);
    snprintf(src, sizeof src, "%s/%s.cert", dir, name);
    snprintf(dst, sizeof dst, "%s/%s.cert", rdir, name);
    if (ctl_mkdirs(rdir, 0700) != 0 || s_copy(src, dst) != 0)
        return ctl_fail(ctl, SKICK_EINVAL, "cannot admit %s in %s: %s", src, rdir, strerror(errno)),
               -1;
    return 0;
}

int ctl_cmd_keygen(ctl_t *ctl, ctl_args_t *a)
{
    bool force = false;
    const char *allow = NULL, *role = NULL;
    for (int i = 0; i < a->nopts; i++) {
        if (a->opts[i].val == OPT_FORCE)
            force = true;
        else if (a->opts[i].val == OPT_ALLOW)
            allow = a->opts[i].arg;
        else if (a->opts[i].val == OPT_ROLE)
            role = a->opts[i].arg;
    }
    if (!allow != !role)
        return ctl_usage(ctl, "--allow DIR and --role ROLE go together");
    if (role && !s_role_dir(role))
        return ctl_usage(ctl, "--role '%s': use shard, client or bridge", role);
    char key[41];
    if (ctl_keygen(ctl, a->pos[0], a->pos[1], force, key) != 0)
        return CTL_FAIL;
    if (allow && ctl_keygen_admit(ctl, a->pos[0], a->pos[1], allow, role) != 0)
        return CTL_FAIL;
    char pub[PATH_MAX + 128];
    snprintf(pub, sizeof pub, "%s/%s.cert", a->pos[0], a->pos[1]);
    if (ctl->json) {
        json_object *o = json_object_new_object();
        char sec[PATH_MAX + 140];
        snprintf(sec, sizeof sec, "%s_secret", pub);
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "public", json_object_new_string(pub));
        json_object_object_add(o, "secret", json_object_new_string(sec));
        json_object_object_add(o, "public_key", json_object_new_string(key));
        json_object_object_add(o, "role", role ? json_object_new_string(role) : NULL);
        ctl_print_json(o);
        json_object_put(o);
    } else {
        printf("wrote %s (public) and %s_secret (secret, mode 0600)\npublic key: %s\n", pub, pub,
               key);
        if (allow)
            printf("admitted as a %s key in %s/%s/\n", role, allow, s_role_dir(role));
    }
    return CTL_OK;
}
