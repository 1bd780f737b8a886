/*  node_metrics - the shard's Prometheus registry and the actor layer's metrics

    Off unless skick_run turns it on (a front shard always, a back shard
    with --metrics). When on, the hot paths count in plain integers on the
    reactor (sh->stats, the per-type counts in sh->tcounts) and a timer
    mirrors them into the registry and publishes it once a period; whoever
    serves /metrics (civetweb's handler in node/ws, proto's
    skick_metrics_http for --metrics) sends the last published text from
    its own thread. So a scrape never waits for the reactor, and a stalled
    reactor shows as a stale text rather than a hung scrape.

    What is scanned rather than counted (actors alive by type, mailbox
    depths) is read at each publish from the actor table: O(actors) once a
    period. docs/metrics.md lists every metric.
*/
#include "node_actor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skick_metrics.h"

#define COLLECT_MAX 8
#define OTHER_TYPES_MAX 64 /* session and receptionist types counted by name */

struct node_metrics {
    skick_metrics_t *reg;
    uint64_t timer;
    struct {
        node_metrics_collect_fn *fn;
        void *arg;
    } collect[COLLECT_MAX];
    size_t ncollect;
    /* per type slot (sh->tcounts' index): its series */
    skick_series_t **alive, **spawned, **delivered;
    skick_metric_t *alive_family;
    /*  Actors whose type is not one of the app's actor types (sessions of
        each session type, receptionists): skick_actors{type=<its name>}. */
    struct {
        const node_type_t *type;
        skick_series_t *series;
        uint64_t alive;
    } other[OTHER_TYPES_MAX];
    size_t nother;
    const char **type_names;       /* borrowed from the app's types; [0] = "_adhoc" */
    skick_series_t *refused[3];    /* EFULL, ESCHEMA, EACTION */
    skick_series_t *stopped, *failed, *stale, *switches;
    skick_metric_t *dead_letters;  /* skick_dead_letters_total{code} */
    skick_series_t *dead_series[SKICK_ERR_COUNT_]; /* made when first non-zero */
    skick_series_t *depth_max, *depth_hist, *convs_open, *live, *fibers, *timers;
    skick_series_t *remote_out, *remote_in, *gaps, *remote_dead, *malformed;
    skick_metric_t *conv_outcomes;    /* skick_conversations_total{outcome} */
    skick_series_t *conv_series[SKICK_ERR_COUNT_]; /* made when first non-zero */
    skick_metric_t *hash_ops, *hash_seconds;
};

static void s_free(node_shard_t *sh)
{
    struct node_metrics *m = sh->metrics;
    if (!m)
        return;
    /* (its timer went with the shard's timer heap, freed before this hook) */
    skick_metrics_destroy(&m->reg);
    free(m->alive);
    free(m->spawned);
    free(m->delivered);
    free(m->type_names);
    free(m);
    free(sh->tcounts);
    sh->metrics = NULL;
    sh->tcounts = NULL;
    sh->ntcounts = 0;
}

static void s_tick(node_shard_t *sh, void *arg, uint64_t id)
{
    struct node_metrics *m = sh->metrics;
    m->timer = node_timer_add(sh, NODE_METRICS_PERIOD_MS, s_tick, NULL);
    node_metrics_publish(sh);
    (void) arg;
    (void) id;
}

static skick_series_t *s_one(skick_metrics_t *reg, bool counter, const char *name,
                             const char *help)
{
    skick_metric_t *f = counter ? skick_metrics_counter(reg, name, help, NULL, 1)
                                : skick_metrics_gauge(reg, name, help, NULL, 1);
    return skick_metric_series(f);
}

int node_metrics_enable(node_shard_t *sh)
{
    if (sh->metrics)
        return 0;
    skick_metrics_t *reg = skick_metrics_new();
    if (!reg)
        return -1;
    struct node_metrics *m = node_calloc(1, sizeof *m);
    m->reg = reg;
    skick_metrics_add_process(reg);
    uint32_t n = (sh->app ? sh->app->ntypes : 0) + 1;
    sh->tcounts = node_calloc(n, sizeof *sh->tcounts);
    m->alive = node_calloc(n, sizeof *m->alive);
    m->spawned = node_calloc(n, sizeof *m->spawned);
    m->delivered = node_calloc(n, sizeof *m->delivered);
    m->type_names = node_calloc(n, sizeof *m->type_names);
    m->type_names[0] = "_untyped"; /* receptionists, sessions, bare factories */
    if (sh->app)
        for (size_t b = 0; b < sh->app->types.cap; b++)
            for (node_strmap_entry_t *e = sh->app->types.buckets[b]; e; e = e->next) {
                const node_type_t *t = e->val;
                if (t->index < n)
                    m->type_names[t->index] = t->name;
            }
    size_t bound = n + OTHER_TYPES_MAX + 1; /* every type its series; beyond, _other */
    skick_metric_t *alive = skick_metrics_gauge(reg, "skick_actors", "Actors alive, by type",
                                                "type", bound);
    skick_metric_t *spawned = skick_metrics_counter(reg, "skick_actors_spawned_total",
                                                    "Actors spawned, by type", "type", bound);
    skick_metric_t *deliv = skick_metrics_counter(
        reg, "skick_messages_delivered_total", "Messages whose handler ran, by actor type",
        "type", bound);
    skick_metric_t *lat = skick_metrics_histogram(
        reg, "skick_handler_seconds",
        "Handler run time by actor type (one run in 64 timed), waits included", "type",
        skick_metrics_latency_bounds, skick_metrics_latency_nbounds, bound);
    m->alive_family = alive;
    for (uint32_t i = 0; i < n; i++) {
        const char *name = m->type_names[i] ? m->type_names[i] : SKICK_METRIC_OTHER;
        m->alive[i] = skick_metric_series(alive, name);
        m->spawned[i] = skick_metric_series(spawned, name);
        m->delivered[i] = skick_metric_series(deliv, name);
        sh->tcounts[i].latency = skick_metric_series(lat, name);
    }
    skick_metric_t *refused = skick_metrics_counter(
        reg, "skick_messages_refused_total",
        "Messages refused before a handler ran, by error code", "code", 8);
    m->refused[0] = skick_metric_series(refused, "EFULL");
    m->refused[1] = skick_metric_series(refused, "ESCHEMA");
    m->refused[2] = skick_metric_series(refused, "EACTION");
    m->dead_letters = skick_metrics_counter(
        reg, "skick_dead_letters_total",
        "Messages that could not be delivered or handled, by error code", "code",
        SKICK_ERR_COUNT_ + 1);
    m->stopped = s_one(reg, true, "skick_actors_stopped_total", "Actors stopped");
    m->failed = s_one(reg, true, "skick_actors_failed_total", "Actors stopped by a failure");
    m->stale = s_one(reg, true, "skick_stale_replies_total",
                     "Replies that came for conversations already closed");
    m->switches = s_one(reg, true, "skick_fiber_switches_total", "Fiber switches");
    m->depth_max = s_one(reg, false, "skick_mailbox_depth_max",
                         "The deepest mailbox now (messages queued)");
    m->depth_hist = skick_metric_series(skick_metrics_histogram(
        reg, "skick_mailbox_depth",
        "Depths of the non-empty mailboxes, one observation each per publish", NULL,
        skick_metrics_depth_bounds, skick_metrics_depth_nbounds, 1));
    m->convs_open = s_one(reg, false, "skick_conversations_open", "Conversations open now");
    m->live = s_one(reg, false, "skick_actors_alive", "Actors alive now, all types");
    m->fibers = s_one(reg, false, "skick_fibers", "Fibers alive (stacks mapped)");
    m->timers = s_one(reg, false, "skick_timers", "Timers pending");
    skick_metric_t *env = skick_metrics_counter(
        reg, "skick_cluster_envelopes_total",
        "Envelopes exchanged with other shards through the broker, by direction", "direction", 2);
    m->remote_out = skick_metric_series(env, "out");
    m->remote_in = skick_metric_series(env, "in");
    m->gaps = s_one(reg, true, "skick_cluster_sequence_gaps_total",
                    "Envelopes found missing on the broker link");
    m->remote_dead = s_one(reg, true, "skick_cluster_dead_letters_total",
                           "Dead-letter notices received from the cluster");
    m->malformed = s_one(reg, true, "skick_cluster_malformed_total",
                         "Envelopes refused as malformed");
    m->conv_outcomes = skick_metrics_counter(
        reg, "skick_conversations_total",
        "Conversations closed, by outcome (ok, or the error code that ended them)", "outcome",
        SKICK_ERR_COUNT_ + 1);
    m->hash_ops = skick_metrics_counter(
        reg, "skick_hash_operations_total",
        "Hash operations of the shard's backend, by backend, operation and outcome",
        "backend,op,outcome", 64);
    m->hash_seconds = skick_metrics_histogram(
        reg, "skick_hash_operation_seconds", "Hash operation latency, by backend and operation",
        "backend,op", skick_metrics_latency_bounds, skick_metrics_latency_nbounds, 16);
    /* the common outcomes from zero, so that rate() has a start */
    m->conv_series[0] = skick_metric_series(m->conv_outcomes, "ok");
    m->dead_series[SKICK_EDEAD] = skick_metric_series(m->dead_letters, "EDEAD");
    m->dead_series[SKICK_EFULL] = skick_metric_series(m->dead_letters, "EFULL");
    sh->ntcounts = n;
    sh->metrics = m;
    node_shard_on_destroy(sh, s_free);
    m->timer = node_timer_add(sh, NODE_METRICS_PERIOD_MS, s_tick, NULL);
    skick_metrics_publish(reg);
    return 0;
}

skick_metrics_t *node_metrics_registry(node_shard_t *sh)
{
    return sh->metrics ? sh->metrics->reg : NULL;
}

int node_metrics_on_collect(node_shard_t *sh, node_metrics_collect_fn *fn, void *arg)
{
    struct node_metrics *m = sh->metrics;
    if (!m || m->ncollect == COLLECT_MAX)
        return -1;
    m->collect[m->ncollect].fn = fn;
    m->collect[m->ncollect].arg = arg;
    m->ncollect++;
    return 0;
}

/*  Count a (an actor of a type outside the app's actor types) under its
    type's name; false when OTHER_TYPES_MAX names are taken. */
static bool s_count_other(struct node_metrics *m, const node_type_t *type)
{
    for (size_t k = 0; k < m->nother; k++)
        if (m->other[k].type == type) {
            m->other[k].alive++;
            return true;
        }
    if (m->nother == OTHER_TYPES_MAX)
        return false;
    m->other[m->nother].type = type;
    m->other[m->nother].series = skick_metric_series(m->alive_family, type->name);
    m->other[m->nother].alive = 1;
    m->nother++;
    return true;
}

/*  counts[code] into family{label=code name} (counts[0] under zero_name),
    making each series when its count is first non-zero: only the codes
    that happen appear. */
static void s_mirror_codes(skick_metric_t *family, skick_series_t **series,
                           const uint64_t *counts, const char *zero_name)
{
    for (int e = 0; e < SKICK_ERR_COUNT_; e++)
        if (counts[e]) {
            if (!series[e])
                series[e] = skick_metric_series(family, e ? skick_err_name(e) : zero_name);
            skick_counter_set(series[e], counts[e]);
        }
}

void node_metrics_publish(node_shard_t *sh)
{
    struct node_metrics *m = sh->metrics;
    if (!m)
        return;
    const node_stats_t *st = &sh->stats;
    skick_counter_set(m->refused[0], st->refused_full);
    skick_counter_set(m->refused[1], st->schema_failures);
    skick_counter_set(m->refused[2], st->unknown_actions);
    skick_counter_set(m->stopped, st->stopped);
    skick_counter_set(m->failed, st->failed);
    skick_counter_set(m->stale, st->stale_replies);
    skick_counter_set(m->switches, st->switches);
    skick_counter_set(m->remote_out, st->sent_remote);
    skick_counter_set(m->remote_in, st->recv_remote);
    skick_counter_set(m->gaps, st->gaps);
    skick_counter_set(m->remote_dead, st->remote_dead);
    skick_counter_set(m->malformed, st->malformed);
    uint64_t *alive = node_calloc(sh->ntcounts, sizeof *alive);
    uint32_t depth_max = 0;
    for (size_t k = 0; k < m->nother; k++)
        m->other[k].alive = 0;
    for (size_t i = 0; i < sh->actors.cap; i++) {
        if (!sh->actors.keys[i])
            continue;
        const skick_actor_t *a = sh->actors.vals[i];
        uint32_t t = a->type ? a->type->index : 0;
        if (t == 0 && a->type && a->type->name && s_count_other(m, a->type))
            ; /* a session or receptionist type, by its name */
        else if (t < sh->ntcounts)
            alive[t]++;
        if (a->depth > depth_max)
            depth_max = a->depth;
        if (a->depth)
            skick_histogram_observe(m->depth_hist, a->depth);
    }
    for (uint32_t t = 0; t < sh->ntcounts; t++) {
        skick_gauge_set(m->alive[t], (double) alive[t]);
        skick_counter_set(m->spawned[t], sh->tcounts[t].spawned);
        skick_counter_set(m->delivered[t], sh->tcounts[t].delivered);
    }
    free(alive);
    for (size_t k = 0; k < m->nother; k++)
        skick_gauge_set(m->other[k].series, (double) m->other[k].alive);
    s_mirror_codes(m->conv_outcomes, m->conv_series, sh->conv_outcomes, "ok");
    s_mirror_codes(m->dead_letters, m->dead_series, sh->dead_codes, "unknown");
    skick_gauge_set(m->depth_max, depth_max);
    skick_gauge_set(m->convs_open, (double) ((node_u64map_t *) sh->convs)->count);
    skick_gauge_set(m->live, (double) sh->live);
    skick_gauge_set(m->fibers, (double) node_fiber_count());
    skick_gauge_set(m->timers, (double) sh->nheap);
    for (size_t i = 0; i < m->ncollect; i++)
        m->collect[i].fn(sh, m->collect[i].arg);
    skick_metrics_publish(m->reg);
}

void node_metrics_hash(node_shard_t *sh, const char *op, int err, double seconds)
{
    struct node_metrics *m = sh->metrics;
    if (!m)
        return;
    const char *backend = sh->hash && sh->hash->name ? sh->hash->name : "inproc";
    skick_counter_add(skick_metric_series(m->hash_ops, backend, op,
                                          err ? skick_err_name(err) : "ok"), 1);
    skick_histogram_observe(skick_metric_series(m->hash_seconds, backend, op), seconds);
}
