/*  ctl_wait - waiting for the broker's view of a launch, and showing it

    Readiness is the broker's view: a shard counts as started once the
    broker's `ps` lists it, not when its process runs. `up`, `scale` and
    the broker's repair (ctl_launch.c, ctl_scale.c, ctl_repair.c) connect
    with ctl_wait_broker until the broker answers, then ctl_wait_shards
    polls `ps` until every recorded shard has joined and none of the
    stopped ones is still listed. A recorded process that ends meanwhile
    fails the wait at once, with how it ended (its watcher's exit record,
    ctl_record.c) and the tail of its log. ctl_print_result prints what
    the launch made: the ps table and the Connect URLs, or the JSON.

    This file owns no state: it reads the record it is given and never
    changes or saves it. The clients it connects are destroyed before it
    returns, except the one ctl_wait_broker hands to its caller.
*/
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

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

/* ---- what up and scale print ------------------------------------------------ */

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
        char shown[800];
        const char *hash = ctl_str(cluster, "hash");
        json_object_object_add(
            o, "hash",
            hash ? json_object_new_string(ctl_hash_shown(hash, shown, sizeof shown)) : NULL);
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
