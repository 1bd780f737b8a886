/*  ctl_launch - skickctl up and down, and waiting for the broker's view

    `up` starts the broker, waits until it answers, starts the shards
    (ctl_spawn.c) and waits until the broker's `ps` lists every one of
    them: readiness is the broker's view. A process that ends while we
    wait is reported with how it ended and its log's tail, and `up` stops
    everything it started. Over a record whose shards still run without
    their broker, `up` repairs instead, as `scale` does (ctl_repair.c).
    The run directory is made and checked by ctl_rundir.c first. `down`
    stops every live process of the record, shards first. Both hold the
    record's lock (ctl_record.c) throughout. CURVE is on unless `up
    --insecure` (then skickctl, the broker and every shard warn once): the
    keys are made in RUN_DIR/keys, one per role.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "skick_secure.h"
#include "skick_wire.h"

#define DEFAULT_WAIT_MS 15000
#define DEFAULT_STOP_MS 10000
#define TAIL_LINES 20
#define EXIT_FILE_WAIT_MS 1000 /* for the watcher's record after a process ended */

/* ---- waiting for the broker's view ---------------------------------------- */

/*  Whether p has ended; then why says how. */
static bool s_exited(ctl_t *ctl, const ctl_proc_t *p, char *why, size_t len)
{
    ctl_reap();
    if (ctl_proc_alive(p))
        return false;
    ctl_proc_ended(ctl, p, EXIT_FILE_WAIT_MS, why, len);
    return true;
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
    snprintf(log, sizeof log, "%s/logs/%s.log", ctl->run_dir, name);
    ctl_fail(ctl, code, "%s (log: %s)", text, log);
    fprintf(stderr, "---- last lines of %s ----\n", log);
    ctl_tail(log, TAIL_LINES, "  ", stderr);
    fprintf(stderr, "----\n");
    return -1;
}

void ctl_cluster_client_opts(json_object *cluster, int timeout_ms, skick_client_opts_t *o)
{
    *o = (skick_client_opts_t){.timeout_ms = timeout_ms};
    json_object *curve;
    if (json_object_object_get_ex(cluster, "curve", &curve) &&
        json_object_is_type(curve, json_type_object)) {
        o->curve_secret = ctl_str(curve, "client_secret");
        o->curve_server = ctl_str(curve, "broker_public");
    }
}

skick_client_t *ctl_wait_broker(ctl_t *ctl, json_object *cluster, long long deadline)
{
    ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS);
    for (;;) {
        for (int i = 0; i < n; i++) {
            char why[128];
            if (strcmp(procs[i].role, "broker") == 0 && s_exited(ctl, &procs[i], why, sizeof why)) {
                s_fail_with_log(ctl, SKICK_ESTART, "broker", "the broker %s", why);
                return NULL;
            }
        }
        long long left = deadline - ctl_mono_ms();
        skick_client_opts_t o;
        ctl_cluster_client_opts(cluster, (int) (left < 1000 ? (left > 100 ? left : 100) : 1000),
                                &o);
        skick_client_t *c = skick_client_connect(ctl_str(cluster, "control"), &o);
        if (c)
            return c;
        if (ctl_mono_ms() >= deadline) {
            s_fail_with_log(ctl, SKICK_ESTART, "broker", "the broker did not answer on %s: %s",
                            ctl_str(cluster, "control"), skick_client_last_error());
            return NULL;
        }
        usleep(100 * 1000);
    }
}

static bool s_ps_has_pid(json_object *ps, pid_t pid)
{
    for (size_t i = 0; ps && i < json_object_array_length(ps); i++)
        if (ctl_int(json_object_array_get_idx(ps, i), "pid") == pid)
            return true;
    return false;
}

int ctl_wait_shards(ctl_t *ctl, json_object *cluster, const pid_t *gone, int ngone, long wait_ms,
                    json_object **ps_out)
{
    *ps_out = NULL;
    long long deadline = ctl_mono_ms() + wait_ms;
    skick_client_t *c = ctl_wait_broker(ctl, cluster, deadline);
    if (!c)
        return -1;
    ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS);
    for (;;) {
        char why[128];
        const char *missing = NULL;
        json_object *ps = NULL;
        for (int i = 0; i < n; i++)
            if (s_exited(ctl, &procs[i], why, sizeof why)) {
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
                            "stopped or dead shards still listed by the broker after %ld ms",
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
    *o = (up_opts_t){1,           1,    8000, DEFAULT_WAIT_MS,         "tcp://127.0.0.1:7400",
                     "127.0.0.1", NULL, true, json_object_new_array(), json_object_new_array()};
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
                json_object_array_add(o->apps, json_object_new_string(abs));
            else
                o->www = strdup(abs); /* freed at exit */
            break;
        case OPT_NODE_ARG:
            json_object_array_add(o->node_args, json_object_new_string(v));
            break;
        case OPT_CURVE: /* the default; kept for the scripts that still say it */
            break;
        case OPT_INSECURE:
            o->curve = false;
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

/*  Make the CURVE keys: broker, node (every shard) and client (skickctl),
    fresh at every up; the broker admits node.cert in keys/allow/shards/
    and client.cert in keys/allow/clients/ (keys/allow/bridges/ stays
    empty), so that the client key cannot join as a shard nor a shard's
    run control operations. */
static int s_curve_keys(ctl_t *ctl, json_object *cluster)
{
    char keys[PATH_MAX + 8], allow[PATH_MAX + 16], path[PATH_MAX + 64];
    snprintf(keys, sizeof keys, "%s/keys", ctl->run_dir);
    snprintf(allow, sizeof allow, "%s/allow", keys);
    static const char *const names[] = {"broker", "node", "client"};
    static const char *const roles[] = {NULL, "shard", "client"};
    for (int i = 0; i < 3; i++) {
        if (ctl_keygen(ctl, keys, names[i], true, NULL) != 0)
            return -1;
        /* a run directory of an older skickctl admitted keys directly in
           allow/, which the broker now refuses: those links go */
        snprintf(path, sizeof path, "%s/%s.cert", allow, names[i]);
        unlink(path);
        if (roles[i] && ctl_keygen_admit(ctl, keys, names[i], allow, roles[i]) != 0)
            return -1;
    }
    snprintf(path, sizeof path, "%s/bridges", allow);
    if (ctl_mkdirs(path, 0700) != 0)
        return ctl_fail(ctl, SKICK_ESTART, "cannot create %s: %s", path, strerror(errno)), -1;
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

/*  The name of a recorded process that is still alive, or NULL. */
static const char *s_any_alive(json_object *cluster)
{
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS);
    for (int i = 0; i < n; i++)
        if (ctl_proc_alive(&procs[i]))
            return procs[i].name;
    return NULL;
}

/*  An old record whose processes have all ended: say how they ended and
    forget them (their pid files go too). */
static void s_forget_ended(ctl_t *ctl, json_object *old)
{
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(old, procs, CTL_MAX_PROCS);
    if (n && !ctl->json)
        fprintf(stderr, "skickctl: the cluster recorded in %s had ended:", ctl->run_dir);
    for (int i = 0; i < n; i++) {
        char why[128];
        ctl_proc_ended(ctl, &procs[i], 0, why, sizeof why);
        if (!ctl->json)
            fprintf(stderr, "%s %s (pid %d) %s", i ? ";" : "", procs[i].name, (int) procs[i].pid,
                    why);
        ctl_cluster_forget(ctl, old, &procs[i]);
    }
    if (n && !ctl->json)
        fprintf(stderr, ". Starting a new one.\n");
}

/*  Stop everything recorded in cluster (after a failed start). */
static void s_teardown(ctl_t *ctl, json_object *cluster)
{
    static ctl_stop_t s[CTL_MAX_PROCS];
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS);
    for (int i = 0; i < n; i++)
        s[i] = (ctl_stop_t){procs[i], NULL};
    ctl_stop(ctl, cluster, s, n, 3000);
    fprintf(stderr, "skickctl: stopped the processes started; logs are in %s/logs\n", ctl->run_dir);
}

/*  The websocket URLs of ps's front shards, in shard-name order. */
static json_object *s_connect_urls(json_object *cluster, json_object *ps)
{
    json_object *urls = json_object_new_array();
    size_t n;
    json_object **v = ctl_ps_sorted(cluster, ps, &n);
    for (size_t i = 0; i < n; i++) {
        const char *ws = ctl_str(v[i], "ws");
        if (ws) {
            char u[300];
            size_t len = strlen(ws);
            snprintf(u, sizeof u, "%s%s", ws, len && ws[len - 1] == '/' ? "" : "/");
            json_object_array_add(urls, json_object_new_string(u));
        }
    }
    free(v);
    return urls;
}

void ctl_print_result(ctl_t *ctl, json_object *cluster, json_object *ps, const char *what,
                      json_object *extra)
{
    json_object *urls = s_connect_urls(cluster, ps);
    if (ctl->json) {
        json_object *o = extra ? extra : json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "run_dir", json_object_new_string(ctl->run_dir));
        json_object_object_add(o, "control", json_object_new_string(ctl_str(cluster, "control")));
        json_object_object_add(o, "broker", json_object_new_string(ctl_str(cluster, "broker")));
        json_object *procs;
        json_object_object_get_ex(cluster, "processes", &procs);
        json_object_object_add(o, "processes", json_object_get(procs));
        json_object_object_add(o, "shards", json_object_get(ps));
        json_object_object_add(o, "connect", urls);
        ctl_print_json(o);
        json_object_put(o);
        return;
    }
    printf("%s in %s (broker %s, control %s)\n\n", what, ctl->run_dir, ctl_str(cluster, "broker"),
           ctl_str(cluster, "control"));
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

/*  The run directory made (0700) and checked (ctl_rundir.c), absolute,
    with the control endpoint that follows from it. 0, or -1 after
    ctl_fail. */
static int s_run_dir(ctl_t *ctl)
{
    if (ctl_rundir_secure(ctl, true) != 0)
        return -1;
    if (strncmp(ctl->control, "ipc://", 6) == 0 && strlen(ctl->control + 6) > 100)
        return ctl_fail(ctl, SKICK_EINVAL,
                        "the control socket path %s is too long for ipc:// "
                        "(use a shorter --run-dir)",
                        ctl->control + 6),
               -1;
    return 0;
}

/*  The new record for o, saved. NULL after ctl_fail. Takes o's lists. */
static json_object *s_new_record(ctl_t *ctl, up_opts_t *o, const char *broker_bin,
                                 const char *node_bin)
{
    json_object *cluster = json_object_new_object();
    json_object_object_add(cluster, "version", json_object_new_int(1));
    json_object_object_add(cluster, "run_dir", json_object_new_string(ctl->run_dir));
    json_object_object_add(cluster, "broker", json_object_new_string(o->broker));
    json_object_object_add(cluster, "control", json_object_new_string(ctl->control));
    json_object_object_add(cluster, "host", json_object_new_string(o->host));
    json_object_object_add(cluster, "port", json_object_new_int((int) o->port));
    json_object_object_add(cluster, "www", o->www ? json_object_new_string(o->www) : NULL);
    json_object_object_add(cluster, "apps", o->apps);
    json_object_object_add(cluster, "node_args", o->node_args);
    o->apps = o->node_args = NULL;
    json_object_object_add(cluster, "broker_bin", json_object_new_string(broker_bin));
    json_object_object_add(cluster, "node_bin", json_object_new_string(node_bin));
    json_object_object_add(cluster, "curve", NULL);
    json_object_object_add(cluster, "started_ms", json_object_new_int64(ctl_wall_ms()));
    json_object_object_add(cluster, "processes", json_object_new_array());
    if (o->curve && s_curve_keys(ctl, cluster) != 0) {
        json_object_put(cluster);
        return NULL;
    }
    if (ctl_cluster_save(ctl, cluster) != 0) {
        ctl_fail(ctl, SKICK_ESTART, "cannot write %s/cluster.json: %s", ctl->run_dir,
                 strerror(errno));
        json_object_put(cluster);
        return NULL;
    }
    return cluster;
}

/*  The old record in RUN_DIR. Refused when its broker still runs, or when
    it cannot be read; one whose processes have all ended is forgotten
    (then *repair stays NULL and a new cluster starts); one whose shards
    still run without their broker is given in *repair (caller owns), to
    be repaired. 0, or -1 after ctl_fail. */
static int s_check_old(ctl_t *ctl, json_object **repair)
{
    *repair = NULL;
    json_object *old = ctl_cluster_load(ctl);
    if (!old && (errno == EINVAL || errno == EPERM) && !(old = ctl_cluster_need(ctl)))
        return -1; /* damaged or untrusted: processes it names may still run */
    const char *alive = old ? s_any_alive(old) : NULL;
    if (alive && ctl_broker_alive(old)) {
        ctl_fail(ctl, SKICK_ESTART,
                 "a cluster is already running in %s (%s is alive); "
                 "`skickctl --run-dir %s down` first",
                 ctl->run_dir, alive, ctl->run_dir);
        json_object_put(old);
        return -1;
    }
    if (alive) {
        *repair = old;
        return 0;
    }
    if (old)
        s_forget_ended(ctl, old);
    json_object_put(old);
    return 0;
}

/*  Start the broker, wait for it, start the shards, wait for them. 0 with
 *ps, or -1 after the failure was printed. */
static int s_start_all(ctl_t *ctl, json_object *cluster, const up_opts_t *o, json_object **ps)
{
    if (ctl_start_broker(ctl, cluster) != 0)
        return -1;
    /* Shards join on their own (they re-send HELLO every second), but a
       broker that cannot start should be reported as such, not as shards
       that never joined: wait for it first. */
    skick_client_t *c = ctl_wait_broker(ctl, cluster, ctl_mono_ms() + o->wait_ms);
    if (!c)
        return -1;
    skick_client_destroy(&c);
    for (long i = 1; i <= o->front; i++)
        if (ctl_start_shard(ctl, cluster, "front", (int) i) != 0)
            return -1;
    for (long i = 1; i <= o->back; i++)
        if (ctl_start_shard(ctl, cluster, "back", (int) i) != 0)
            return -1;
    return ctl_wait_shards(ctl, cluster, NULL, 0, o->wait_ms, ps);
}

int ctl_cmd_up(ctl_t *ctl, ctl_args_t *a)
{
    up_opts_t o;
    if (s_up_options(ctl, a, &o) != 0) {
        json_object_put(o.apps);
        json_object_put(o.node_args);
        return CTL_USAGE;
    }
    int rc = CTL_FAIL, lock = -1;
    json_object *cluster = NULL, *ps = NULL;
    char broker_bin[PATH_MAX], node_bin[PATH_MAX];
    if (!o.curve)
        fprintf(stderr, "skickctl: warning: %s\n", SKICK_INSECURE_WARNING);
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
    if (s_run_dir(ctl) != 0 || (lock = ctl_lock(ctl, CTL_LOCK_WAIT_MS)) < 0 ||
        s_check_old(ctl, &cluster) != 0)
        goto out;
    if (cluster) { /* shards run without their broker: bring it back, as scale does */
        if (!ctl->json)
            fprintf(stderr,
                    "skickctl: the cluster in %s runs without its broker: repairing it "
                    "with its recorded configuration (this up's options are not used; "
                    "`skickctl scale` changes the counts)\n",
                    ctl->run_dir);
        rc = ctl_scale_run(ctl, cluster, -1, -1, o.wait_ms);
        goto out;
    }
    if (!(cluster = s_new_record(ctl, &o, broker_bin, node_bin)))
        goto out;
    if (s_start_all(ctl, cluster, &o, &ps) != 0) {
        s_teardown(ctl, cluster);
        goto out;
    }
    ctl_print_result(ctl, cluster, ps, "Cluster up", NULL);
    rc = CTL_OK;
out:
    ctl_unlock(&lock);
    json_object_put(o.apps);
    json_object_put(o.node_args);
    free((char *) o.www);
    json_object_put(ps);
    json_object_put(cluster);
    return rc;
}

/* ---- down --------------------------------------------------------------------- */

static void s_print_down(ctl_t *ctl, const ctl_stop_t *s, char (*ended)[128], int n)
{
    if (ctl->json) {
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        for (int i = 0; i < n; i++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "name", json_object_new_string(s[i].p.name));
            json_object_object_add(e, "pid", json_object_new_int64(s[i].p.pid));
            json_object_object_add(e, "result", json_object_new_string(s[i].result));
            if (ended[i][0])
                json_object_object_add(e, "ended", json_object_new_string(ended[i]));
            json_object_array_add(arr, e);
        }
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "stopped", arr);
        ctl_print_json(o);
        json_object_put(o);
        return;
    }
    if (n == 0) {
        printf("Nothing to stop in %s\n", ctl->run_dir);
        return;
    }
    static const char *const head[] = {"NAME", ">PID", "RESULT"};
    ctl_table_t *t = ctl_table_new(3, head);
    for (int i = 0; i < n; i++) {
        char pid[24], result[200];
        snprintf(pid, sizeof pid, "%d", (int) s[i].p.pid);
        snprintf(result, sizeof result, "%.32s%s%.127s", s[i].result, ended[i][0] ? ": " : "",
                 ended[i]);
        const char *row[] = {s[i].p.name, pid, result};
        ctl_table_add(t, row);
    }
    ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
}

int ctl_cmd_down(ctl_t *ctl, ctl_args_t *a)
{
    long grace = DEFAULT_STOP_MS;
    for (int i = 0; i < a->nopts; i++)
        if (a->opts[i].val == OPT_WAIT &&
            ctl_parse_int(ctl, "--wait", a->opts[i].arg, 0, 3600000, &grace))
            return CTL_USAGE;
    if (access(ctl->run_dir, F_OK) != 0)
        return ctl_fail(ctl, SKICK_ENOTFOUND, "no cluster in %s (no cluster.json)", ctl->run_dir);
    if (ctl_rundir_secure(ctl, false) != 0)
        return CTL_FAIL;
    int lock = ctl_lock(ctl, CTL_LOCK_WAIT_MS);
    json_object *cluster = lock >= 0 ? ctl_cluster_need(ctl) : NULL;
    if (!cluster) {
        ctl_unlock(&lock);
        return CTL_FAIL;
    }
    static ctl_proc_t procs[CTL_MAX_PROCS];
    static ctl_stop_t s[CTL_MAX_PROCS];
    static char ended[CTL_MAX_PROCS][128];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS);
    for (int i = 0; i < n; i++)
        s[i] = (ctl_stop_t){procs[i], NULL};
    qsort(s, (size_t) n, sizeof *s, ctl_by_newest);
    int nshards = 0;
    while (nshards < n && strcmp(s[nshards].p.role, "broker") != 0)
        nshards++;
    for (int i = 0; i < n; i++) { /* before ctl_stop forgets the exit records */
        ended[i][0] = '\0';
        if (!ctl_proc_alive(&s[i].p))
            ctl_proc_ended(ctl, &s[i].p, 0, ended[i], sizeof ended[i]);
    }
    /* Shards first (they leave cleanly through the broker), then the broker. */
    ctl_stop(ctl, cluster, s, nshards, grace);
    ctl_stop(ctl, cluster, s + nshards, n - nshards, grace);
    json_object_object_add(cluster, "stopped_ms", json_object_new_int64(ctl_wall_ms()));
    ctl_cluster_save(ctl, cluster);
    ctl_unlock(&lock);
    json_object_put(cluster);
    s_print_down(ctl, s, ended, n);
    return CTL_OK;
}
