/*  ctl_launch - skickctl up and down: starting the cluster's processes, stopping them

    `up` parses its options, prepares the record (ctl_launch_record.c: the
    run directory, the old record, a new cluster.json with its CURVE keys),
    starts the broker, waits until it answers, starts the shards
    (ctl_spawn.c) and waits until the broker's `ps` lists every one of
    them (ctl_wait.c): readiness is the broker's view. A process that ends
    while we wait is reported with how it ended and its log's tail, and
    `up` stops everything it started. Over a record whose shards still
    run without their broker, `up` repairs instead, as `scale` does
    (ctl_repair.c). `down` stops every live process of the record, shards
    first. Both hold the record's lock (ctl_record.c) throughout. CURVE is
    on unless `up --insecure` (then skickctl, the broker and every shard
    warn once).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "skick_metrics_http.h"
#include "skick_redis.h"
#include "skick_secure.h"
#include "skick_wire.h"

#define DEFAULT_WAIT_MS 15000
#define DEFAULT_STOP_MS 10000

/* ---- up ----------------------------------------------------------------------- */

static int s_up_options(ctl_t *ctl, ctl_args_t *a, ctl_launch_opts_t *o)
{
    *o = (ctl_launch_opts_t){.front = 1,
                             .back = 1,
                             .port = 8000,
                             .wait_ms = DEFAULT_WAIT_MS,
                             .broker = "tcp://127.0.0.1:7400",
                             .host = "127.0.0.1",
                             .www = NULL,
                             .curve = true,
                             .apps = json_object_new_array(),
                             .node_args = json_object_new_array()};
    const char *hash_arg = NULL, *hash_file = NULL;
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
        case OPT_AMQP:
            if (strncmp(v, "amqp://", 7) != 0 && strncmp(v, "amqps://", 8) != 0) {
                ctl_usage(ctl, "--amqp must be amqp://... or amqps://... (the value is not "
                               "shown: it may hold a password)");
                return -1;
            }
            o->amqp = v;
            break;
        case OPT_HASH:
            hash_arg = v;
            break;
        case OPT_METRICS: {
            char err[256] = "";
            int base = 0;
            if (skick_metrics_http_parse(v, o->metrics_host, sizeof o->metrics_host, &base, err,
                                         sizeof err) != 0 ||
                base < 1 || base > 65535 - 2) {
                ctl_usage(ctl, "--metrics expects [HOST:]PORT_BASE, a port base from 1 to "
                               "65533 (got '%s'%s%s)",
                          v, err[0] ? ": " : "", err);
                return -1;
            }
            o->metrics_base = base;
            break;
        }
        case OPT_HASH_FILE:
            hash_file = v;
            break;
        }
    }
    skick_redis_url_t url;
    char text[SKICK_REDIS_URL_MAX], err[1200];
    int got = skick_redis_url_choose(hash_arg, hash_file, &url, text, sizeof text, err,
                                     sizeof err);
    if (got < 0) {
        ctl_usage(ctl, "%s", err);
        return -1;
    }
    if (got)
        o->hash = strdup(text); /* freed by ctl_cmd_up */
    o->hash_on_argv = hash_arg && url.has_password;
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

/*  Start the broker, wait for it, start the shards, wait for them. 0 with
 *ps, or -1 after the failure was printed. */
static int s_start_all(ctl_t *ctl, json_object *cluster, const ctl_launch_opts_t *o,
                       json_object **ps)
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
    if (ctl_start_bridge(ctl, cluster) != 0)
        return -1;
    return ctl_wait_shards(ctl, cluster, NULL, 0, o->wait_ms, ps);
}

int ctl_cmd_up(ctl_t *ctl, ctl_args_t *a)
{
    ctl_launch_opts_t o;
    if (s_up_options(ctl, a, &o) != 0) {
        json_object_put(o.apps);
        json_object_put(o.node_args);
        free((char *) o.www);
        return CTL_USAGE;
    }
    int rc = CTL_FAIL, lock = -1;
    json_object *cluster = NULL, *ps = NULL;
    char broker_bin[PATH_MAX], node_bin[PATH_MAX];
    if (!o.curve)
        fprintf(stderr, "skickctl: warning: %s\n", SKICK_INSECURE_WARNING);
    if (o.hash_on_argv)
        fprintf(stderr, "skickctl: warning: %s\n", SKICK_REDIS_ARGV_PASSWORD_WARNING);
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
    char bridge_bin[PATH_MAX] = "";
    if (o.amqp && ctl_find_binary("SKICK_AMQP_BRIDGE_BIN", "bridge", "skick-amqp-bridge",
                                  bridge_bin, sizeof bridge_bin) != 0) {
        ctl_fail(ctl, SKICK_ESTART, "cannot find skick-amqp-bridge (%s; set "
                 "SKICK_AMQP_BRIDGE_BIN)", bridge_bin);
        goto out;
    }
    if (ctl_launch_run_dir(ctl) != 0 || (lock = ctl_lock(ctl, CTL_LOCK_WAIT_MS)) < 0 ||
        ctl_launch_check_old(ctl, &cluster) != 0)
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
    if (!(cluster = ctl_launch_record_new(ctl, &o, broker_bin, node_bin)))
        goto out;
    if (o.amqp && ctl_launch_record_amqp(ctl, cluster, o.amqp, bridge_bin) != 0)
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
    free((char *) o.hash);
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
