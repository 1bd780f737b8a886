/*  bridge_metrics - the AMQP bridge's Prometheus families

    The bridge is a shard: with --metrics it serves the shard's registry
    (actors, messages, cluster, process_*), and these families are added
    to it. The bridge actor counts in its plain br_stats_t on the reactor;
    the collect function, run by the shard before each publish (once a
    second, on the reactor too), mirrors them. The actor may go before the
    shard (the registry has no way to drop a collect function), so it
    detaches itself first and the collect function then does nothing.

    Ownership: the series belong to the shard's registry; st and the
    gauges' argument are borrowed from the bridge actor until detach.
*/
#include "bridge.h"

#include "skick_metrics.h"

static struct {
    const br_stats_t *st;
    br_gauges_fn *gauges;
    void *arg;
    skick_series_t *delivered, *rpc, *bad, *undeliverable, *unconfirmed;
    skick_series_t *redelivered, *rpc_errors;
    skick_series_t *published, *failed, *backlog;
    skick_series_t *connected, *connects, *pending, *subscriptions;
} s_m;

static void s_collect(node_shard_t *sh, void *arg)
{
    (void) sh;
    (void) arg;
    const br_stats_t *st = s_m.st;
    if (!st)
        return;
    skick_counter_set(s_m.delivered, st->delivered);
    skick_counter_set(s_m.rpc, st->rpc);
    skick_counter_set(s_m.bad, st->bad);
    skick_counter_set(s_m.undeliverable, st->undeliverable);
    skick_counter_set(s_m.unconfirmed, st->unconfirmed);
    skick_counter_set(s_m.redelivered, st->redelivered);
    skick_counter_set(s_m.rpc_errors, st->rpc_errors);
    /* failed counts the refused-at-once ones too: apart here */
    skick_counter_set(s_m.published, st->published);
    skick_counter_set(s_m.failed, st->publish_failed - st->backlog);
    skick_counter_set(s_m.backlog, st->backlog);
    skick_counter_set(s_m.connects, st->connects);
    br_gauges_t g;
    s_m.gauges(s_m.arg, &g);
    skick_gauge_set(s_m.connected, g.connected ? 1 : 0);
    skick_gauge_set(s_m.pending, (double) g.pending);
    skick_gauge_set(s_m.subscriptions, (double) g.subscriptions);
}

static skick_series_t *s_one(skick_metrics_t *reg, bool counter, const char *name,
                             const char *help)
{
    return skick_metric_series(counter ? skick_metrics_counter(reg, name, help, NULL, 1)
                                       : skick_metrics_gauge(reg, name, help, NULL, 1));
}

void br_metrics_attach(node_shard_t *sh, const br_stats_t *st, br_gauges_fn *gauges, void *arg)
{
    skick_metrics_t *reg = node_metrics_registry(sh);
    if (!reg)
        return;
    if (!s_m.delivered) { /* the families, once per process */
        skick_metric_t *d = skick_metrics_counter(
            reg, "skick_amqp_deliveries_total",
            "AMQP deliveries the bridge settled, by outcome: delivered (acked once the "
            "target's shard took it), rpc (answered), bad, undeliverable, unconfirmed "
            "(the last three rejected to the dead-letter exchange)",
            "outcome", 5);
        s_m.delivered = skick_metric_series(d, "delivered");
        s_m.rpc = skick_metric_series(d, "rpc");
        s_m.bad = skick_metric_series(d, "bad");
        s_m.undeliverable = skick_metric_series(d, "undeliverable");
        s_m.unconfirmed = skick_metric_series(d, "unconfirmed");
        s_m.redelivered = s_one(reg, true, "skick_amqp_redelivered_total",
                                "Deliveries RabbitMQ flagged as redelivered");
        s_m.rpc_errors = s_one(reg, true, "skick_amqp_rpc_errors_total",
                               "Requests answered with an error body");
        skick_metric_t *p = skick_metrics_counter(
            reg, "skick_amqp_publishes_total",
            "Publishes of the bridge, by outcome: confirmed, failed (nacked or lost), "
            "backlog (refused at once: --max-pending)",
            "outcome", 3);
        s_m.published = skick_metric_series(p, "confirmed");
        s_m.failed = skick_metric_series(p, "failed");
        s_m.backlog = skick_metric_series(p, "backlog");
        s_m.connected = s_one(reg, false, "skick_amqp_connected",
                              "1 while the bridge is connected to RabbitMQ");
        s_m.connects = s_one(reg, true, "skick_amqp_connects_total",
                             "Connections to RabbitMQ made");
        s_m.pending = s_one(reg, false, "skick_amqp_pending_publishes",
                            "Publishes queued or waiting for their confirm");
        s_m.subscriptions = s_one(reg, false, "skick_amqp_subscriptions",
                                  "Subscriptions of actors and services held");
        node_metrics_on_collect(sh, s_collect, NULL);
    }
    s_m.st = st;
    s_m.gauges = gauges;
    s_m.arg = arg;
}

void br_metrics_detach(void)
{
    s_m.st = NULL;
    s_m.gauges = NULL;
    s_m.arg = NULL;
}
