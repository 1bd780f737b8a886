/*  node_cluster_metrics - the cluster layer's metrics: traffic per peer shard, link RTT

    On when the shard's metrics are (node_metrics_enable before the join).
    Envelopes are counted per peer shard in plain integers on the reactor
    (one map lookup per cross-shard envelope, only while metrics are on) and
    mirrored into skick_cluster_peer_envelopes_total{peer,direction} at each
    publish. The peer label is a shard id: bounded by the cluster's size,
    and by NODE_CLUSTER_METRICS_PEERS series, beyond which peers share the
    "_other" series. A peer that left keeps its series (a counter that no
    longer moves) for the life of the process.

    The link RTT: every HEARTBEAT to the broker carries "ping_us" (this
    process's monotonic clock, microseconds); the broker answers it at once
    with a HEARTBEAT {"pong_us": <the same>}, and the time it took goes into
    skick_cluster_link_rtt_seconds. Brokers that do not answer leave the
    histogram empty.

    Ownership: the counts live in the cluster state (freed with it); the
    series belong to the shard's registry.
*/
#include "node_cluster_int.h"

#include <stdlib.h>
#include <time.h>

#include "skick_metrics.h"

#define NODE_CLUSTER_METRICS_PEERS 64
#define S_OTHER UINT64_MAX /* the key of the peers beyond the bound */

typedef struct {
    uint64_t out, in;
    skick_series_t *s_out, *s_in;
} s_peer_t;

struct node_cluster_metrics {
    node_u64map_t peers; /* shard id -> s_peer_t* */
    skick_metric_t *family;
    skick_series_t *rtt;
};

int64_t node_cluster_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void s_collect(node_shard_t *sh, void *arg)
{
    (void) arg;
    struct node_cluster_metrics *m = sh->cluster ? sh->cluster->metrics : NULL;
    if (!m)
        return;
    for (size_t i = 0; i < m->peers.cap; i++) {
        if (!m->peers.keys[i])
            continue;
        s_peer_t *p = m->peers.vals[i];
        if (!p->s_out) {
            char id[17] = SKICK_METRIC_OTHER;
            if (m->peers.keys[i] != S_OTHER)
                node_format_id(id, m->peers.keys[i]);
            p->s_out = skick_metric_series(m->family, id, "out");
            p->s_in = skick_metric_series(m->family, id, "in");
        }
        skick_counter_set(p->s_out, p->out);
        skick_counter_set(p->s_in, p->in);
    }
}

void node_cluster_metrics_start(node_shard_t *sh)
{
    skick_metrics_t *reg = node_metrics_registry(sh);
    node_cluster_t *c = sh->cluster;
    if (!reg || !c || c->metrics)
        return;
    struct node_cluster_metrics *m = node_calloc(1, sizeof *m);
    node_u64map_init(&m->peers);
    m->family = skick_metrics_find(reg, "skick_cluster_peer_envelopes_total");
    skick_metric_t *rtt = skick_metrics_find(reg, "skick_cluster_link_rtt_seconds");
    if (!m->family) { /* the first join of this process: register (a later one reuses) */
        m->family = skick_metrics_counter(
            reg, "skick_cluster_peer_envelopes_total",
            "Actor and client envelopes exchanged with each other shard, by peer and direction",
            "peer,direction", 2 * NODE_CLUSTER_METRICS_PEERS + 2);
        rtt = skick_metrics_histogram(reg, "skick_cluster_link_rtt_seconds",
                                      "Round trip of a heartbeat to the broker and its answer",
                                      NULL, skick_metrics_latency_bounds,
                                      skick_metrics_latency_nbounds, 1);
        node_metrics_on_collect(sh, s_collect, NULL);
    }
    m->rtt = skick_metric_series(rtt);
    c->metrics = m;
}

void node_cluster_metrics_fini(node_cluster_t *c)
{
    struct node_cluster_metrics *m = c->metrics;
    if (!m)
        return;
    for (size_t i = 0; i < m->peers.cap; i++)
        if (m->peers.keys[i])
            free(m->peers.vals[i]);
    node_u64map_free(&m->peers);
    free(m);
    c->metrics = NULL;
}

static s_peer_t *s_peer(struct node_cluster_metrics *m, uint64_t id)
{
    s_peer_t *p = node_u64map_get(&m->peers, id);
    if (!p && m->peers.count >= NODE_CLUSTER_METRICS_PEERS) {
        id = S_OTHER;
        p = node_u64map_get(&m->peers, id);
    }
    if (!p) {
        p = node_calloc(1, sizeof *p);
        node_u64map_put(&m->peers, id, p);
    }
    return p;
}

void node_cluster_metrics_count(node_cluster_t *c, uint64_t peer, bool out)
{
    struct node_cluster_metrics *m = c->metrics;
    if (!m || !peer)
        return;
    s_peer_t *p = s_peer(m, peer);
    if (out)
        p->out++;
    else
        p->in++;
}

void node_cluster_metrics_pong(node_cluster_t *c, json_object *body)
{
    json_object *v;
    if (!c->metrics || !json_object_object_get_ex(body, "pong_us", &v) ||
        !json_object_is_type(v, json_type_int))
        return;
    int64_t rtt = node_cluster_clock_us() - json_object_get_int64(v);
    if (rtt >= 0 && rtt < 600 * 1000000LL) /* ours, and not from before a clock jump */
        skick_histogram_observe(c->metrics->rtt, (double) rtt / 1e6);
}
