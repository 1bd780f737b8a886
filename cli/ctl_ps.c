/*  ctl_ps - skickctl ps: the broker's view of the shards, joined with the record

    The broker lists the shards it has heard from (`ps` control request):
    roles, pid, the load of the last heartbeat, messages per second. The
    record (cluster.json) adds names by pid, and says which of the
    processes skickctl started are dead: for up to the broker's loss
    timeout after a crash the broker still lists a dead shard, and
    afterwards it no longer knows it at all. So a shard the record knows
    to be dead is not shown as a row of the table; below the table come
    one line per recorded shard that is dead (with how it ended) or runs
    without having joined.

    Per role the load columns mean (node_control.c's counters):
    CLIENTS    front: open websocket connections (each has a receptionist,
               including those still in the handshake); "-" without the
               front role.
    SESSIONS   back (or both roles): the session actors the shard runs;
               front only: its client sessions, the connections whose
               handshake opened a session, wherever its session actor runs.
*/
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

bool ctl_has_role(json_object *entry, const char *role)
{
    json_object *roles = ctl_get(entry, "roles");
    if (!json_object_is_type(roles, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(roles); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(roles, i)), role) == 0)
            return true;
    return false;
}

/* ---- order ------------------------------------------------------------------- */

static json_object *s_sort_cluster; /* for the comparator */

/*  front-N first, then back-N, then other names, then unnamed shards. */
static int s_rank(const char *name)
{
    if (strncmp(name, "front-", 6) == 0)
        return 0;
    if (strncmp(name, "back-", 5) == 0)
        return 1;
    return strcmp(name, "-") == 0 ? 3 : 2;
}

static int s_by_name(const void *x, const void *y)
{
    json_object *a = *(json_object *const *) x, *b = *(json_object *const *) y;
    const char *na = ctl_shard_name(s_sort_cluster, a), *nb = ctl_shard_name(s_sort_cluster, b);
    if (s_rank(na) != s_rank(nb))
        return s_rank(na) - s_rank(nb);
    int c = strverscmp(na, nb);
    if (c)
        return c;
    const char *sa = ctl_str(a, "shard"), *sb = ctl_str(b, "shard");
    return strcmp(sa ? sa : "", sb ? sb : "");
}

json_object **ctl_ps_sorted(json_object *cluster, json_object *ps, size_t *n)
{
    *n = ps && json_object_is_type(ps, json_type_array) ? json_object_array_length(ps) : 0;
    json_object **v = calloc(*n + 1, sizeof *v);
    if (!v) {
        *n = 0;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++)
        v[i] = json_object_array_get_idx(ps, i);
    s_sort_cluster = cluster;
    qsort(v, *n, sizeof *v, s_by_name);
    return v;
}

/* ---- the record's view ------------------------------------------------------------ */

typedef struct {
    ctl_proc_t procs[CTL_MAX_PROCS]; /* the recorded shards */
    bool alive[CTL_MAX_PROCS];       /* ctl_proc_alive */
    bool listed[CTL_MAX_PROCS];      /* the broker lists its pid */
    int n;
} view_t;

static void s_view(json_object *cluster, json_object *ps, view_t *v)
{
    static ctl_proc_t all[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, all, CTL_MAX_PROCS);
    v->n = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(all[i].role, "broker") == 0)
            continue;
        int k = v->n++;
        v->procs[k] = all[i];
        v->alive[k] = ctl_proc_alive(&all[i]);
        v->listed[k] = false;
        for (size_t j = 0; ps && j < json_object_array_length(ps); j++)
            v->listed[k] |= ctl_int(json_object_array_get_idx(ps, j), "pid") == all[i].pid;
    }
}

/*  The recorded shard with the pid of ps entry e, or -1. */
static int s_find(const view_t *v, json_object *e)
{
    long long pid = ctl_int(e, "pid");
    for (int i = 0; pid > 0 && i < v->n; i++)
        if (v->procs[i].pid == pid)
            return i;
    return -1;
}

/* ---- the table ---------------------------------------------------------------------- */

static const char *s_clients(json_object *e, json_object *load, char *b, size_t len)
{
    return ctl_has_role(e, "front") ? ctl_cell(ctl_get(load, "clients"), b, len) : "-";
}

static const char *s_sessions(json_object *e, json_object *load, char *b, size_t len)
{
    if (ctl_has_role(e, "back"))
        return ctl_cell(ctl_get(load, "sessions"), b, len);
    return ctl_has_role(e, "front") ? ctl_cell(ctl_get(load, "client_sessions"), b, len) : "-";
}

/*  "http://HOST:PORT/metrics" of the recorded process with ps entry e's
    pid (up --metrics), into b; NULL when it has none. */
static const char *s_metrics_url(json_object *cluster, long long pid, char *b, size_t len)
{
    const char *m = ctl_str(ctl_proc_for_pid(cluster, pid), "metrics");
    if (!m)
        return NULL;
    snprintf(b, len, "http://%s/metrics", m);
    return b;
}

static void s_row(ctl_table_t *t, json_object *cluster, json_object *e)
{
    json_object *load = ctl_get(e, "load"), *r = ctl_get(e, "msgs_per_s");
    char b[7][128], rate[32];
    snprintf(rate, sizeof rate, "%.1f", r ? json_object_get_double(r) : 0.0);
    const char *row[] = {ctl_shard_name(cluster, e),
                         ctl_cell(ctl_get(e, "shard"), b[0], sizeof b[0]),
                         ctl_cell(ctl_get(e, "roles"), b[1], sizeof b[1]),
                         ctl_cell(ctl_get(e, "pid"), b[2], sizeof b[2]),
                         ctl_cell(ctl_get(load, "actors"), b[3], sizeof b[3]),
                         s_clients(e, load, b[4], sizeof b[4]),
                         s_sessions(e, load, b[5], sizeof b[5]),
                         r ? rate : NULL,
                         ctl_str(e, "ws"),
                         s_metrics_url(cluster, ctl_int(e, "pid"), b[6], sizeof b[6])};
    ctl_table_add(t, row);
}

/*  The lines below the table; returns how many shards are dead. */
static int s_trailer(ctl_t *ctl, const view_t *v)
{
    int dead = 0;
    for (int i = 0; i < v->n; i++) {
        const ctl_proc_t *p = &v->procs[i];
        if (v->alive[i] && v->listed[i])
            continue;
        if (v->alive[i]) {
            printf("%s (pid %d): running, not joined\n", p->name, (int) p->pid);
            continue;
        }
        char why[128];
        ctl_proc_ended(ctl, p, 0, why, sizeof why);
        printf("%s (pid %d): dead, %s%s\n", p->name, (int) p->pid, why,
               v->listed[i] ? " (the broker lists it until it declares the shard lost)" : "");
        dead++;
    }
    return dead;
}

void ctl_print_ps(ctl_t *ctl, json_object *cluster, json_object *ps)
{
    static const char *const head[] = {"NAME",     "SHARD",     "ROLE",    ">PID", ">ACTORS",
                                       ">CLIENTS", ">SESSIONS", ">MSGS/S", "WS",   "METRICS"};
    static view_t v;
    s_view(cluster, ps, &v);
    /* the METRICS column only for a cluster started with up --metrics */
    ctl_table_t *t = ctl_table_new(ctl_get(cluster, "metrics") ? 10 : 9, head);
    size_t n;
    json_object **e = ctl_ps_sorted(cluster, ps, &n);
    for (size_t i = 0; i < n; i++) {
        int k = s_find(&v, e[i]);
        if (k < 0 || v.alive[k])
            s_row(t, cluster, e[i]);
    }
    free(e);
    ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
    char shown[800];
    const char *hash = ctl_str(cluster, "hash");
    if (hash)
        printf("Hashes: %s (the broker and every shard)\n",
               ctl_hash_shown(hash, shown, sizeof shown));
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int np = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS);
    for (int i = 0; i < np; i++) /* the processes that are not shards */
        if ((strcmp(procs[i].role, "broker") == 0 || strcmp(procs[i].role, "bridge") == 0) &&
            s_metrics_url(cluster, procs[i].pid, shown, sizeof shown))
            printf("Metrics of %s: %s\n", procs[i].name, shown);
    if (s_trailer(ctl, &v))
        printf("(`skickctl scale` forgets dead shards and starts replacements; see `skickctl "
               "logs NAME`)\n");
}

/* ---- ps ------------------------------------------------------------------------------ */

/*  ps as an array of entries with "name" and "state" added, then the
    recorded shards the broker does not list (new reference). */
static json_object *s_named(ctl_t *ctl, json_object *cluster, json_object *ps)
{
    static view_t v;
    s_view(cluster, ps, &v);
    json_object *out = json_object_new_array();
    size_t n;
    json_object **e = ctl_ps_sorted(cluster, ps, &n);
    for (size_t i = 0; i < n; i++) {
        json_object *c = NULL;
        int k = s_find(&v, e[i]);
        if (json_object_deep_copy(e[i], &c, NULL) != 0 || !json_object_is_type(c, json_type_object))
            continue;
        json_object_object_add(c, "name", json_object_new_string(ctl_shard_name(cluster, e[i])));
        char url[400];
        if (s_metrics_url(cluster, ctl_int(e[i], "pid"), url, sizeof url))
            json_object_object_add(c, "metrics", json_object_new_string(url));
        json_object_object_add(c, "state",
                               json_object_new_string(k < 0 || v.alive[k] ? "running" : "dead"));
        if (k >= 0 && !v.alive[k]) {
            json_object *d = ctl_proc_dead_json(ctl, &v.procs[k], 0);
            json_object_object_add(c, "ended", json_object_get(ctl_get(d, "ended")));
            json_object_put(d);
        }
        json_object_array_add(out, c);
    }
    free(e);
    for (int i = 0; i < v.n; i++) {
        if (v.listed[i])
            continue;
        json_object *d =
            v.alive[i] ? json_object_new_object() : ctl_proc_dead_json(ctl, &v.procs[i], 0);
        if (v.alive[i]) {
            json_object_object_add(d, "name", json_object_new_string(v.procs[i].name));
            json_object_object_add(d, "role", json_object_new_string(v.procs[i].role));
            json_object_object_add(d, "pid", json_object_new_int64(v.procs[i].pid));
            json_object_object_add(d, "state", json_object_new_string("not joined"));
        }
        json_object_object_add(d, "shard", NULL);
        json_object_array_add(out, d);
    }
    return out;
}

int ctl_ps_fetch(ctl_t *ctl, skick_client_t **c, json_object **ps)
{
    *ps = NULL;
    *c = ctl_connect(ctl);
    if (!*c)
        return CTL_FAIL;
    if (skick_client_ps(*c, ctl->timeout_ms, ps) != 0) {
        skick_client_destroy(c);
        return ctl_fail_client(ctl, "ps");
    }
    if (!json_object_is_type(*ps, json_type_array)) {
        json_object_put(*ps);
        *ps = NULL;
        skick_client_destroy(c);
        return ctl_fail(ctl, SKICK_EPROTO, "ps: the broker's answer is not an array");
    }
    return 0;
}

int ctl_cmd_ps(ctl_t *ctl, ctl_args_t *a)
{
    (void) a;
    json_object *cluster = ctl_cluster_load(ctl), *ps;
    skick_client_t *c;
    /* the record's broker is dead: say so rather than time out */
    if (cluster && !ctl->control_given && ctl_check_broker(ctl, cluster) != 0) {
        json_object_put(cluster);
        return CTL_FAIL;
    }
    if (ctl_ps_fetch(ctl, &c, &ps) != 0) {
        json_object_put(cluster);
        return CTL_FAIL;
    }
    skick_client_destroy(&c);
    if (ctl->json) {
        json_object *named = s_named(ctl, cluster, ps);
        ctl_print_json(named);
        json_object_put(named);
    } else {
        ctl_print_ps(ctl, cluster, ps);
    }
    json_object_put(cluster);
    json_object_put(ps);
    return CTL_OK;
}
