/*  ctl_scale - skickctl scale: reconcile the record, then reach the counts

    Everything happens under the record's lock (ctl_record.c), so two
    `scale` runs (or a `scale` and a `down`) take turns: the second one
    sees what the first made.

    1. Without a live broker, one is started first as recorded (same
       endpoints, same keys; ctl_repair.c): shards cannot work without it,
       and those that still run join it on their own.
    2. Every dead shard of the record, whatever its role, is forgotten: its
       entry and pid file go, and how it ended is reported. `scale` counts
       live shards only, so the record matches what runs and names stay
       unique.
    3. For each role given, start ROLE-K with the lowest free K until the
       live count is reached (a replacement takes the name of the dead
       shard, and for a front shard its port: clients reconnect to the same
       URL), or stop the newest live shards of that role gracefully. Only
       the shards this run stops leave the record.
    4. Wait until the broker lists every recorded shard and none of the
       stopped or forgotten ones (the broker drops a dead shard when it
       declares it lost, after its loss timeout, 3 s by default).

    A run that finds nothing dead and the counts reached changes nothing
    (the record is not even rewritten) and says "nothing to do".
*/
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define DEFAULT_WAIT_MS 15000
#define EXIT_FILE_WAIT_MS 200 /* for the watcher's record of a shard just killed */

typedef struct {
    long want[2];              /* front, back; -1: leave that role as it is */
    long wait_ms;              /* --wait */
    json_object *started;      /* names */
    json_object *stopped;      /* names */
    json_object *forgotten;    /* ctl_proc_dead_json objects */
    json_object *broker;       /* ctl_repair_broker's report, or NULL */
    pid_t gone[CTL_MAX_PROCS]; /* pids the broker must no longer list */
    int ngone;
    ctl_stop_t stop[CTL_MAX_PROCS]; /* the shards to stop */
    int nstop;
} scale_t;

static const char *const s_roles[2] = {"front", "back"};

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

static bool s_is_shard(const ctl_proc_t *p)
{
    return strcmp(p->role, "front") == 0 || strcmp(p->role, "back") == 0;
}

/*  Step 2: forget the dead shards (saved when there were any). */
static void s_forget_dead(ctl_t *ctl, json_object *cluster, scale_t *sc)
{
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS);
    for (int i = 0; i < n; i++) {
        if (!s_is_shard(&procs[i]) || ctl_proc_alive(&procs[i]))
            continue;
        json_object_array_add(sc->forgotten, ctl_proc_dead_json(ctl, &procs[i], EXIT_FILE_WAIT_MS));
        sc->gone[sc->ngone++] = procs[i].pid;
        ctl_cluster_forget(ctl, cluster, &procs[i]);
    }
    if (sc->ngone)
        ctl_cluster_save(ctl, cluster);
}

/*  Step 3 for one role: start up to the count, or pick the newest live
    shards to stop. 0, or -1 after a failed start (ctl_fail). */
static int s_reach(ctl_t *ctl, json_object *cluster, scale_t *sc, int r)
{
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS), live = 0;
    bool used[65] = {false};
    int first = sc->nstop;
    for (int i = 0; i < n; i++) {
        if (strcmp(procs[i].role, s_roles[r]) != 0)
            continue;
        live++; /* all alive: the dead are forgotten */
        if (procs[i].index >= 1 && procs[i].index <= 64)
            used[procs[i].index] = true;
        sc->stop[sc->nstop++] = (ctl_stop_t){procs[i], NULL};
    }
    for (int k = 1; live < sc->want[r] && k <= 64; k++) {
        if (used[k])
            continue;
        if (ctl_start_shard(ctl, cluster, s_roles[r], k) != 0)
            return -1;
        char name[32];
        snprintf(name, sizeof name, "%s-%d", s_roles[r], k);
        json_object_array_add(sc->started, json_object_new_string(name));
        live++;
    }
    /* too many: the newest first */
    qsort(sc->stop + first, (size_t) (sc->nstop - first), sizeof *sc->stop, ctl_by_newest);
    int excess = live - (int) sc->want[r];
    sc->nstop = first + (excess > 0 ? excess : 0);
    return 0;
}

static void s_print(ctl_t *ctl, json_object *cluster, json_object *ps, scale_t *sc)
{
    if (ctl->json) {
        json_object *extra = json_object_new_object();
        json_object_object_add(extra, "started", json_object_get(sc->started));
        json_object_object_add(extra, "stopped", json_object_get(sc->stopped));
        json_object_object_add(extra, "forgotten", json_object_get(sc->forgotten));
        if (sc->broker)
            json_object_object_add(extra, "broker_repaired", json_object_get(sc->broker));
        ctl_print_result(ctl, cluster, ps, "Scaled", extra);
        return;
    }
    ctl_repair_say(ctl, sc->broker, stdout);
    for (size_t i = 0; i < json_object_array_length(sc->forgotten); i++) {
        json_object *f = json_object_array_get_idx(sc->forgotten, i);
        printf("forgot %s (pid %lld): %s\n", ctl_str(f, "name"), ctl_int(f, "pid"),
               ctl_str(f, "ended"));
    }
    for (size_t i = 0; i < json_object_array_length(sc->started); i++)
        printf("started %s\n", json_object_get_string(json_object_array_get_idx(sc->started, i)));
    for (size_t i = 0; i < json_object_array_length(sc->stopped); i++)
        printf("stopped %s\n", json_object_get_string(json_object_array_get_idx(sc->stopped, i)));
    if (!json_object_array_length(sc->started) && !json_object_array_length(sc->stopped) &&
        !json_object_array_length(sc->forgotten) && !sc->broker)
        printf("nothing to do\n");
    ctl_print_result(ctl, cluster, ps, "Cluster", NULL);
}

/*  Steps 1-4 under the lock; CTL_OK or CTL_FAIL. */
static int s_scale(ctl_t *ctl, json_object *cluster, scale_t *sc)
{
    if (ctl_repair_broker(ctl, cluster, sc->wait_ms, &sc->broker) != 0)
        return CTL_FAIL;
    s_forget_dead(ctl, cluster, sc);
    for (int r = 0; r < 2; r++)
        if (sc->want[r] >= 0 && s_reach(ctl, cluster, sc, r) != 0)
            return CTL_FAIL;
    for (int i = 0; i < sc->nstop; i++) {
        json_object_array_add(sc->stopped, json_object_new_string(sc->stop[i].p.name));
        sc->gone[sc->ngone++] = sc->stop[i].p.pid;
    }
    if (sc->nstop)
        ctl_stop(ctl, cluster, sc->stop, sc->nstop, sc->wait_ms);
    json_object *ps = NULL;
    if (ctl_wait_shards(ctl, cluster, sc->gone, sc->ngone, sc->wait_ms, &ps) != 0)
        return CTL_FAIL;
    s_print(ctl, cluster, ps, sc);
    json_object_put(ps);
    return CTL_OK;
}

int ctl_scale_run(ctl_t *ctl, json_object *cluster, long front, long back, long wait_ms)
{
    static scale_t sc;
    sc = (scale_t){.want = {front, back}, .wait_ms = wait_ms};
    sc.started = json_object_new_array();
    sc.stopped = json_object_new_array();
    sc.forgotten = json_object_new_array();
    int rc = s_scale(ctl, cluster, &sc);
    json_object_put(sc.started);
    json_object_put(sc.stopped);
    json_object_put(sc.forgotten);
    json_object_put(sc.broker);
    return rc;
}

int ctl_cmd_scale(ctl_t *ctl, ctl_args_t *a)
{
    long want[2] = {-1, -1}, wait_ms = DEFAULT_WAIT_MS;
    for (int i = 0; i < a->npos; i++)
        if (s_scale_arg(ctl, a->pos[i], &want[0], &want[1]) != 0)
            return CTL_USAGE;
    for (int i = 0; i < a->nopts; i++)
        if (a->opts[i].val == OPT_WAIT &&
            ctl_parse_int(ctl, "--wait", a->opts[i].arg, 1, 3600000, &wait_ms))
            return CTL_USAGE;
    if (ctl_rundir_secure(ctl, false) != 0) /* absolute: the watchers keep paths */
        return CTL_FAIL;
    int lock = ctl_lock(ctl, CTL_LOCK_WAIT_MS), rc = CTL_FAIL;
    json_object *cluster = lock >= 0 ? ctl_cluster_need(ctl) : NULL;
    if (cluster)
        rc = ctl_scale_run(ctl, cluster, want[0], want[1], wait_ms);
    ctl_unlock(&lock);
    json_object_put(cluster);
    return rc;
}
