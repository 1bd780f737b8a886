/*  broker_metrics - the broker's Prometheus metrics (--metrics HOST:PORT)

    Everything here is a mirror: broker_metrics_tick copies the broker's
    counters into the registry's series (skick_counter_set) and its peer
    table into gauges, then publishes. The per-peer series are labelled by
    the peer's shard id, a bounded set (at most BROKER_METRICS_PEERS ids;
    beyond, the "_other" series of skick_metrics.h).
*/
#include "broker_metrics.h"

#include <stdio.h>
#include <stdlib.h>

#include "skick/err.h"
#include "skick_metrics.h"
#include "skick_metrics_http.h"

#define BROKER_METRICS_PEERS 1024 /* peer ids with their own series */

struct broker_metrics {
    skick_metrics_t *reg;
    skick_metrics_http_t *http;
    int64_t next_ms;
    skick_series_t *routed, *malformed, *gaps, *dups, *lost, *strangers;
    skick_series_t *dir[3];     /* accepted, dropped, refused */
    skick_series_t *refused[2]; /* control, hello */
    skick_series_t *dead[SKICK_ERR_COUNT_];
    skick_metric_t *peers;      /* skick_broker_peers{kind} */
    skick_metric_t *link_gaps;  /* skick_broker_link_gaps_total{peer} */
    skick_metric_t *peer_rate;  /* skick_broker_peer_messages_per_second{peer} */
    skick_series_t *uptime;
};

static skick_series_t *s_counter(skick_metrics_t *reg, const char *name, const char *help)
{
    return skick_metric_series(skick_metrics_counter(reg, name, help, NULL, 1));
}

broker_metrics_t *broker_metrics_start(const char *spec, char *err, size_t errlen)
{
    broker_metrics_t *m = calloc(1, sizeof *m);
    skick_metrics_t *reg = m ? skick_metrics_new() : NULL;
    if (!reg) {
        free(m);
        snprintf(err, errlen, "--metrics: out of memory");
        return NULL;
    }
    m->reg = reg;
    skick_metrics_add_process(reg);
    m->routed = s_counter(reg, "skick_broker_routed_total", "Envelopes forwarded to another peer");
    skick_metric_t *dead = skick_metrics_counter(
        reg, "skick_broker_dead_letters_total",
        "Envelopes the broker could not deliver, by the error code sent back", "code", 64);
    for (int c = 1; c < SKICK_ERR_COUNT_; c++)
        if (c == SKICK_EDEAD || c == SKICK_EFULL)
            m->dead[c] = skick_metric_series(dead, skick_err_name(c));
    m->malformed = s_counter(reg, "skick_broker_malformed_total",
                             "Frames and envelopes refused as protocol errors");
    m->gaps = s_counter(reg, "skick_broker_sequence_gaps_total",
                        "Envelopes found missing on links (all peers)");
    m->dups = s_counter(reg, "skick_broker_duplicates_total", "Duplicate envelopes dropped");
    m->lost = s_counter(reg, "skick_broker_shards_lost_total",
                        "Shards declared lost, clean leaves included");
    m->strangers = s_counter(reg, "skick_broker_strangers_total",
                             "Envelopes from peers that had not joined");
    skick_metric_t *dir = skick_metrics_counter(reg, "skick_broker_directory_entries_total",
                                                "Directory entries received, by outcome",
                                                "outcome", 3);
    m->dir[0] = skick_metric_series(dir, "accepted");
    m->dir[1] = skick_metric_series(dir, "dropped");
    m->dir[2] = skick_metric_series(dir, "refused");
    skick_metric_t *ref = skick_metrics_counter(reg, "skick_broker_refused_total",
                                                "Requests refused by the role of the key",
                                                "what", 2);
    m->refused[0] = skick_metric_series(ref, "control");
    m->refused[1] = skick_metric_series(ref, "hello");
    m->peers = skick_metrics_gauge(reg, "skick_broker_peers", "Peers joined now, by kind",
                                   "kind", 4);
    m->link_gaps = skick_metrics_counter(reg, "skick_broker_link_gaps_total",
                                         "Envelopes found missing on a shard's link", "peer",
                                         BROKER_METRICS_PEERS);
    m->peer_rate = skick_metrics_gauge(reg, "skick_broker_peer_messages_per_second",
                                       "A shard's delivery rate from its last heartbeat",
                                       "peer", BROKER_METRICS_PEERS);
    m->uptime = skick_metric_series(
        skick_metrics_gauge(reg, "skick_broker_uptime_seconds", "Seconds since start", NULL, 1));
    skick_metrics_publish(reg); /* a scrape before the first tick sees the families */
    m->http = skick_metrics_http_start(spec, reg, err, errlen);
    if (!m->http) {
        skick_metrics_destroy(&m->reg);
        free(m);
        return NULL;
    }
    return m;
}

int broker_metrics_port(const broker_metrics_t *self)
{
    return self ? skick_metrics_http_port(self->http) : -1;
}

void broker_metrics_tick(broker_metrics_t *self, const broker_t *b, int64_t now_ms)
{
    if (!self || now_ms < self->next_ms)
        return;
    self->next_ms = now_ms + BROKER_METRICS_PERIOD_MS;
    const broker_stats_t *st = &b->stats;
    skick_counter_set(self->routed, st->routed);
    /* the broker's dead letters are EDEAD but for a recipient whose queue
       at the broker is full (EFULL), which broker_route counts apart */
    skick_counter_set(self->dead[SKICK_EDEAD], st->dead_letters - st->dead_full);
    skick_counter_set(self->dead[SKICK_EFULL], st->dead_full);
    skick_counter_set(self->malformed, st->malformed);
    skick_counter_set(self->gaps, st->gaps);
    skick_counter_set(self->dups, st->duplicates);
    skick_counter_set(self->lost, st->lost);
    skick_counter_set(self->strangers, st->strangers);
    skick_counter_set(self->dir[0], st->dir_accepted);
    skick_counter_set(self->dir[1], st->dir_dropped);
    skick_counter_set(self->dir[2], st->dir_refused);
    skick_counter_set(self->refused[0], st->control_refused);
    skick_counter_set(self->refused[1], st->hello_refused);
    double n_shard = 0, n_bridge = 0, n_client = 0;
    for (const broker_peer_t *p = zhashx_first(b->by_id); p; p = zhashx_next(b->by_id)) {
        if (!p->shard) {
            n_client++;
            continue;
        }
        if (p->role == BROKER_ROLE_BRIDGE)
            n_bridge++;
        else
            n_shard++;
        skick_counter_set(skick_metric_series(self->link_gaps, p->hex), p->link.gaps);
        skick_gauge_set(skick_metric_series(self->peer_rate, p->hex), p->msgs_per_s);
    }
    skick_gauge_set(skick_metric_series(self->peers, "shard"), n_shard);
    skick_gauge_set(skick_metric_series(self->peers, "bridge"), n_bridge);
    skick_gauge_set(skick_metric_series(self->peers, "client"), n_client);
    skick_gauge_set(self->uptime, (double) (now_ms - b->started_ms) / 1000.0);
    skick_metrics_publish(self->reg);
}

void broker_metrics_stop(broker_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_metrics_t *m = *self_p;
    skick_metrics_http_stop(&m->http);
    skick_metrics_destroy(&m->reg);
    free(m);
    *self_p = NULL;
}
