/*  ctl_top - skickctl top: a live view of the cluster (the model and the command)

    One sample is the broker's `ps` (for every shard the body of its last
    heartbeat: the `stats` counters and its load) plus each shard's
    `actors` list (types, mailbox depths, states). Nothing new is asked of
    the shards: this is the control plane `ps` and `actors` already use.

    Never blocking on a stopped shard: a shard whose heartbeat at the
    broker is older than TOP_STALE_HEARTBEAT_MS is not asked at all; a
    shard that does not answer within the short shard timeout (half the
    refresh interval, 250 ms to 1 s, and never more than --timeout) is
    not asked again for TOP_RETRY_MS. Either way its row shows "?" for
    what only a fresh answer gives, and the state "stale". A shard the
    broker no longer lists (declared lost after its silence, or gone)
    stays on screen as "lost" for TOP_LOST_SHOWN_MS, or as long as its
    local pid still exists (a stopped shard). The broker itself is asked
    with a timeout of the refresh interval (500 ms at least); when it does
    not answer, the last figures stay on screen under a line saying so.

    Rates are computed from successive heartbeats on the shard's own
    clock (the heartbeat's uptime_ms), so they do not depend on when top
    happens to sample: msgs/s from `delivered` (handler runs), errors/s
    from `dead_letters` + `failed` (dead_letters counts refused, unknown
    and schema-failing messages already). RSS is read from /proc for the
    shards on this host (ps's host equals ours), "?" for the others.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_top.h"

/* ---- the shard table -------------------------------------------------------- */

static top_shard_t *s_shard(top_t *t, const char *id)
{
    for (int i = 0; i < t->nshards; i++)
        if (strcmp(t->shards[i].id, id) == 0)
            return &t->shards[i];
    if (t->nshards == TOP_MAX_SHARDS)
        return NULL;
    top_shard_t *s = &t->shards[t->nshards++];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    s->actors = s->sessions = s->clients = s->mailbox_max = s->rss = TOP_UNKNOWN;
    s->msgs_s = s->errors_s = -1;
    return s;
}

static void s_drop(top_t *t, int i)
{
    memmove(&t->shards[i], &t->shards[i + 1], (size_t) (t->nshards - i - 1) * sizeof t->shards[0]);
    t->nshards--;
}

/*  Resident bytes of a local pid, or TOP_UNKNOWN. */
static long long s_rss(long long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%lld/statm", pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    long long size, resident;
    int got = f ? fscanf(f, "%lld %lld", &size, &resident) : 0;
    if (f)
        fclose(f);
    return got == 2 ? resident * sysconf(_SC_PAGESIZE) : TOP_UNKNOWN;
}

static bool s_pid_exists(long long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%lld", pid);
    return pid > 0 && access(path, F_OK) == 0;
}

static long long s_load(json_object *load, const char *key)
{
    json_object *v = ctl_get(load, key);
    return v ? json_object_get_int64(v) : TOP_UNKNOWN;
}

/*  The heartbeat's figures and the rates since the previous heartbeat. */
static void s_from_ps(top_t *t, top_shard_t *s, json_object *cluster, json_object *e)
{
    json_object *load = ctl_get(e, "load"), *roles = ctl_get(e, "roles");
    snprintf(s->name, sizeof s->name, "%s", ctl_shard_name(cluster, e));
    s->roles[0] = '\0';
    for (size_t k = 0; roles && k < json_object_array_length(roles); k++)
        snprintf(s->roles + strlen(s->roles), sizeof s->roles - strlen(s->roles), "%s%s",
                 k ? "," : "", json_object_get_string(json_object_array_get_idx(roles, k)));
    s->pid = ctl_int(e, "pid");
    snprintf(s->host, sizeof s->host, "%s", ctl_str(e, "host") ? ctl_str(e, "host") : "");
    s->heartbeat_age_ms = ctl_int(e, "heartbeat_age_ms");
    s->actors = s_load(load, "actors");
    s->sessions =
        s_load(load, ctl_get(load, "sessions") && strstr(s->roles, "back") ? "sessions"
                                                                           : "client_sessions");
    s->clients = strstr(s->roles, "front") ? s_load(load, "clients") : TOP_UNKNOWN;
    long long up = s_load(load, "uptime_ms"), delivered = s_load(load, "delivered");
    long long errors = s_load(load, "dead_letters") + s_load(load, "failed");
    if (s->have_prev && up > s->prev_uptime) {
        double dt = (double) (up - s->prev_uptime) / 1000.0;
        s->msgs_s = (double) (delivered - s->prev_delivered) / dt;
        s->errors_s = (double) (errors - s->prev_errors) / dt;
    } else if (!s->have_prev || up < s->prev_uptime) {
        json_object *r = ctl_get(e, "msgs_per_s"); /* the broker's, until we have two */
        s->msgs_s = r ? json_object_get_double(r) : -1;
        s->errors_s = -1;
    } /* the same heartbeat again: keep the rates */
    if (!s->have_prev || up != s->prev_uptime) {
        s->prev_uptime = up;
        s->prev_delivered = delivered;
        s->prev_errors = errors;
        s->have_prev = true;
    }
    s->rss = strcmp(s->host, t->local_host) == 0 ? s_rss(s->pid) : TOP_UNKNOWN;
}

/* ---- actor types -------------------------------------------------------------- */

static top_type_t *s_type(top_t *t, const char *name)
{
    for (int i = 0; i < t->ntypes; i++)
        if (strcmp(t->types[i].type, name) == 0)
            return &t->types[i];
    if (t->ntypes == TOP_MAX_TYPES) {
        t->types_truncated = true;
        return NULL;
    }
    top_type_t *ty = &t->types[t->ntypes++];
    memset(ty, 0, sizeof *ty);
    snprintf(ty->type, sizeof ty->type, "%s", name);
    ty->last_shard = -1;
    return ty;
}

/*  Ask shard s (index i) for its actors; count them into the types. */
static void s_actors(top_t *t, top_shard_t *s, int i, int timeout_ms)
{
    json_object *list = NULL;
    if (skick_client_shard_actors(t->c, s->id, 0, timeout_ms, &list) != 0 ||
        !json_object_is_type(list, json_type_array)) {
        json_object_put(list);
        s->answered = false;
        s->next_try_ms = ctl_mono_ms() + TOP_RETRY_MS;
        return;
    }
    s->answered = true;
    s->mailbox_max = 0;
    size_t n = json_object_array_length(list);
    if (s->actors != TOP_UNKNOWN && (long long) n < s->actors)
        t->types_truncated = true; /* the shard lists 1000 at most */
    for (size_t k = 0; k < n; k++) {
        json_object *a = json_object_array_get_idx(list, k);
        long long depth = ctl_int(a, "depth");
        const char *state = ctl_str(a, "state");
        if (depth > s->mailbox_max)
            s->mailbox_max = depth;
        top_type_t *ty = s_type(t, ctl_str(a, "type") ? ctl_str(a, "type") : "?");
        if (!ty)
            continue;
        ty->actors++;
        ty->queued += depth;
        if (depth > ty->depth_max)
            ty->depth_max = depth;
        if (state && strcmp(state, "busy") == 0)
            ty->busy++;
        if (ty->last_shard != i) {
            ty->shards++;
            ty->last_shard = i;
        }
    }
    json_object_put(list);
}

/* ---- a sample ------------------------------------------------------------------- */

static int s_timeout(const top_t *t, int floor_ms, int cap_ms, double share)
{
    int ms = (int) (t->interval_s * 1000.0 * share);
    if (ms < floor_ms)
        ms = floor_ms;
    if (ms > cap_ms)
        ms = cap_ms;
    return ms < t->ctl->timeout_ms ? ms : t->ctl->timeout_ms;
}

void ctl_top_sample(top_t *t)
{
    long long now = ctl_mono_ms();
    t->samples++;
    t->sample_wall_ms = ctl_wall_ms();
    json_object *ps = NULL;
    if (skick_client_ps(t->c, s_timeout(t, 500, 5000, 1.0), &ps) != 0 ||
        !json_object_is_type(ps, json_type_array)) {
        snprintf(t->broker_error, sizeof t->broker_error, "%s: %s",
                 skick_err_name(skick_errno() ? skick_errno() : SKICK_EPROTO),
                 ps ? "the answer is not an array" : skick_client_last_error());
        json_object_put(ps);
        t->broker_ok = false;
        for (int i = 0; i < t->nshards; i++) /* nothing is known to be fresh */
            if (t->shards[i].state == TOP_OK)
                t->shards[i].state = TOP_STALE;
        return;
    }
    t->broker_ok = true;
    t->broker_error[0] = '\0';
    snprintf(t->broker_id, sizeof t->broker_id, "%s", skick_client_broker(t->c));
    json_object *cluster = ctl_cluster_load(t->ctl);
    for (int i = 0; i < t->nshards; i++)
        t->shards[i].seen = false;
    for (size_t k = 0; k < json_object_array_length(ps); k++) {
        json_object *e = json_object_array_get_idx(ps, k);
        const char *id = ctl_str(e, "shard");
        top_shard_t *s = id ? s_shard(t, id) : NULL;
        if (!s)
            continue;
        s->seen = true;
        s_from_ps(t, s, cluster, e);
    }
    json_object_put(cluster);
    json_object_put(ps);
    t->ntypes = 0;
    t->types_truncated = false;
    int shard_timeout = s_timeout(t, 250, 1000, 0.5);
    for (int i = 0; i < t->nshards; i++) {
        top_shard_t *s = &t->shards[i];
        if (!s->seen) {
            if (s->state != TOP_LOST)
                s->lost_ms = now;
            s->state = TOP_LOST;
            s->answered = false;
            continue;
        }
        bool fresh = s->heartbeat_age_ms <= TOP_STALE_HEARTBEAT_MS;
        if (fresh && (s->answered || now >= s->next_try_ms))
            s_actors(t, s, i, shard_timeout);
        else
            s->answered = false;
        s->state = fresh && s->answered ? TOP_OK : TOP_STALE;
    }
    /* forget lost shards after a while, unless their process still exists here */
    for (int i = t->nshards - 1; i >= 0; i--) {
        top_shard_t *s = &t->shards[i];
        if (s->state == TOP_LOST && now - s->lost_ms > TOP_LOST_SHOWN_MS &&
            !(strcmp(s->host, t->local_host) == 0 && s_pid_exists(s->pid)))
            s_drop(t, i);
    }
}

/* ---- order -------------------------------------------------------------------------- */

static const struct {
    const char *name;
    char key;
} s_sorts[TOP_SORT_COUNT] = {
    [TOP_SORT_NAME] = {"name", 'n'},         [TOP_SORT_ACTORS] = {"actors", 'a'},
    [TOP_SORT_SESSIONS] = {"sessions", 's'}, [TOP_SORT_MSGS] = {"msgs/s", 'm'},
    [TOP_SORT_MAILBOX] = {"mailbox", 'x'},   [TOP_SORT_ERRORS] = {"errors/s", 'e'},
    [TOP_SORT_RSS] = {"rss", 'r'},
};

const char *ctl_top_sort_name(top_sort_t s)
{
    return s < TOP_SORT_COUNT ? s_sorts[s].name : "?";
}

char ctl_top_sort_key(top_sort_t s)
{
    return s < TOP_SORT_COUNT ? s_sorts[s].key : '?';
}

/*  The value sorted by (unknown below every known value). */
static double s_value(const top_shard_t *s, top_sort_t by)
{
    bool unknown = s->state != TOP_OK;
    switch (by) {
    case TOP_SORT_ACTORS:
        return s->actors == TOP_UNKNOWN ? -1 : (double) s->actors;
    case TOP_SORT_SESSIONS:
        return s->sessions == TOP_UNKNOWN ? -1 : (double) s->sessions;
    case TOP_SORT_MSGS:
        return unknown ? -1 : s->msgs_s;
    case TOP_SORT_MAILBOX:
        return unknown ? -1 : (double) s->mailbox_max;
    case TOP_SORT_ERRORS:
        return unknown ? -1 : s->errors_s;
    case TOP_SORT_RSS:
        return (double) s->rss;
    default:
        return 0;
    }
}

static const top_t *s_order_top; /* for the comparator */

static int s_by_sort(const void *x, const void *y)
{
    const top_t *t = s_order_top;
    const top_shard_t *a = &t->shards[*(const int *) x], *b = &t->shards[*(const int *) y];
    int c = 0;
    if (t->sort != TOP_SORT_NAME) {
        double va = s_value(a, t->sort), vb = s_value(b, t->sort);
        c = va > vb ? -1 : va < vb ? 1 : 0; /* biggest first */
    }
    if (c == 0)
        c = strverscmp(a->name, b->name);
    if (c == 0)
        c = strcmp(a->id, b->id);
    return t->reverse ? -c : c;
}

void ctl_top_order(const top_t *t, int *order)
{
    for (int i = 0; i < t->nshards; i++)
        order[i] = i;
    s_order_top = t;
    qsort(order, (size_t) t->nshards, sizeof *order, s_by_sort);
}

/* ---- JSON ----------------------------------------------------------------------------- */

static json_object *s_num(long long v)
{
    return v == TOP_UNKNOWN ? NULL : json_object_new_int64(v);
}

static json_object *s_rate(double v, bool known)
{
    return known && v >= 0 ? json_object_new_double(round(v * 10.0) / 10.0) : NULL;
}

static const char *s_state_name(top_state_t st)
{
    return st == TOP_OK ? "ok" : st == TOP_STALE ? "stale" : "lost";
}

json_object *ctl_top_json(top_t *t)
{
    json_object *o = json_object_new_object(), *shards = json_object_new_array(),
                *types = json_object_new_array();
    int order[TOP_MAX_SHARDS];
    ctl_top_order(t, order);
    for (int k = 0; k < t->nshards; k++) {
        const top_shard_t *s = &t->shards[order[k]];
        bool ok = s->state == TOP_OK;
        json_object *e = json_object_new_object();
        json_object_object_add(e, "name", json_object_new_string(s->name));
        json_object_object_add(e, "shard", json_object_new_string(s->id));
        json_object_object_add(e, "roles", json_object_new_string(s->roles));
        json_object_object_add(e, "pid", json_object_new_int64(s->pid));
        json_object_object_add(e, "state", json_object_new_string(s_state_name(s->state)));
        json_object_object_add(e, "answering", json_object_new_boolean(s->answered));
        json_object_object_add(e, "heartbeat_age_ms", json_object_new_int64(s->heartbeat_age_ms));
        json_object_object_add(e, "actors", s_num(s->actors));
        json_object_object_add(e, "sessions", s_num(s->sessions));
        json_object_object_add(e, "clients", s_num(s->clients));
        json_object_object_add(e, "msgs_per_s", s_rate(s->msgs_s, ok));
        json_object_object_add(e, "errors_per_s", s_rate(s->errors_s, ok));
        json_object_object_add(e, "mailbox_max", ok ? s_num(s->mailbox_max) : NULL);
        json_object_object_add(e, "rss_bytes", s_num(s->rss));
        json_object_array_add(shards, e);
    }
    for (int i = 0; i < t->ntypes; i++) {
        const top_type_t *ty = &t->types[i];
        json_object *e = json_object_new_object();
        json_object_object_add(e, "type", json_object_new_string(ty->type));
        json_object_object_add(e, "actors", json_object_new_int64(ty->actors));
        json_object_object_add(e, "shards", json_object_new_int(ty->shards));
        json_object_object_add(e, "busy", json_object_new_int64(ty->busy));
        json_object_object_add(e, "queued", json_object_new_int64(ty->queued));
        json_object_object_add(e, "depth_max", json_object_new_int64(ty->depth_max));
        json_object_array_add(types, e);
    }
    json_object_object_add(o, "time_ms", json_object_new_int64(t->sample_wall_ms));
    json_object_object_add(o, "interval_s", json_object_new_double(t->interval_s));
    json_object_object_add(o, "broker",
                           t->broker_id[0] ? json_object_new_string(t->broker_id) : NULL);
    json_object_object_add(o, "broker_answering", json_object_new_boolean(t->broker_ok));
    if (!t->broker_ok)
        json_object_object_add(o, "broker_error", json_object_new_string(t->broker_error));
    json_object_object_add(o, "sort", json_object_new_string(ctl_top_sort_name(t->sort)));
    json_object_object_add(o, "shards", shards);
    json_object_object_add(o, "types", types);
    json_object_object_add(o, "types_truncated", json_object_new_boolean(t->types_truncated));
    return o;
}

/* ---- the command ------------------------------------------------------------------------ */

static int s_options(ctl_t *ctl, ctl_args_t *a, top_t *t, bool *batch, long *iterations)
{
    for (int i = 0; i < a->nopts; i++) {
        const char *v = a->opts[i].arg;
        switch (a->opts[i].val) {
        case OPT_DELAY: {
            char *end;
            double d = strtod(v, &end);
            if (!*v || *end || !(d >= 0.1 && d <= 3600)) {
                ctl_usage(ctl, "-d expects seconds from 0.1 to 3600, got '%s'", v);
                return -1;
            }
            t->interval_s = d;
            break;
        }
        case OPT_BATCH:
            *batch = true;
            break;
        case OPT_LINES: /* -n N / --iterations N */
            if (ctl_parse_int(ctl, "--iterations", v, 1, 1000000, iterations))
                return -1;
            *batch = true;
            break;
        case OPT_SORT: {
            int k = 0;
            while (k < TOP_SORT_COUNT && strcmp(v, s_sorts[k].name) != 0 &&
                   !(strlen(v) == 1 && v[0] == s_sorts[k].key))
                k++;
            if (k == TOP_SORT_COUNT) {
                ctl_usage(ctl,
                          "--sort expects name, actors, sessions, msgs/s, mailbox, "
                          "errors/s or rss (or its key), got '%s'",
                          v);
                return -1;
            }
            t->sort = (top_sort_t) k;
            break;
        }
        case OPT_REVERSE:
            t->reverse = true;
            break;
        }
    }
    return 0;
}

/*  Sleep the interval (a batch run between snapshots). */
static void s_pause(const top_t *t)
{
    usleep((useconds_t) (t->interval_s * 1e6));
}

int ctl_cmd_top(ctl_t *ctl, ctl_args_t *a)
{
    static top_t t;
    memset(&t, 0, sizeof t);
    t.ctl = ctl;
    t.interval_s = 1.0;
    t.sort = TOP_SORT_MSGS;
    bool batch = false;
    long iterations = 1;
    if (s_options(ctl, a, &t, &batch, &iterations) != 0)
        return CTL_USAGE;
    if (gethostname(t.local_host, sizeof t.local_host) != 0)
        t.local_host[0] = '\0';
    t.local_host[sizeof t.local_host - 1] = '\0';
    json_object *cluster = ctl_cluster_load(ctl);
    /* the record's broker is dead: say so rather than time out */
    int dead = cluster && !ctl->control_given ? ctl_check_broker(ctl, cluster) : 0;
    json_object_put(cluster);
    if (dead)
        return CTL_FAIL;
    if (!(t.c = ctl_connect(ctl)))
        return CTL_FAIL;
    int rc = CTL_OK;
    if (!batch && !ctl->json && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO)) {
        rc = ctl_top_interactive(&t);
    } else {
        /* A snapshot needs two samples for its rates: the first one, the
           interval, then the one shown. */
        ctl_top_sample(&t);
        for (long n = 0; n < iterations; n++) {
            s_pause(&t);
            ctl_top_sample(&t);
            if (ctl->json) {
                json_object *o = ctl_top_json(&t);
                ctl_print_json(o);
                json_object_put(o);
            } else {
                if (n)
                    fputc('\n', stdout);
                ctl_top_render(&t, stdout, 0, 0, false);
                fflush(stdout);
            }
        }
        if (!t.broker_ok)
            rc = ctl_fail(ctl, SKICK_EUNREACH, "the broker did not answer: %s", t.broker_error);
    }
    skick_client_destroy(&t.c);
    return rc;
}
