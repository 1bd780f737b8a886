/*  node_ws_metrics - the websocket server's metrics and the /metrics page

    The server's counters are atomics (civetweb's worker threads count
    what they receive, the reactor what it sends); the collect function
    below mirrors them, with the reactor's session counts, into the
    shard's registry before each publish (node/actor/node_metrics.c). The
    /metrics handler runs on a civetweb worker and sends the last
    published text: it never waits for the reactor.
*/
#include "node_ws_int.h"

#include <civetweb.h>
#include <stdlib.h>
#include <string.h>

#include "skick_metrics.h"

typedef struct {
    skick_series_t *open, *accepted, *sessions, *clients;
    skick_series_t *msgs_in, *msgs_out, *bytes_in, *bytes_out;
    skick_series_t *slow, *rate, *too_big, *proto, *ping, *aborted;
    skick_series_t *refused, *queued, *outbox;
} ws_series_t;

static ws_series_t s_series; /* one websocket server per process (s_server) */

static void s_collect(node_shard_t *sh, void *arg)
{
    node_ws_t *ws = sh->ws; /* NULL once node_ws_stop began: nothing to mirror */
    ws_series_t *m = &s_series;
    (void) arg;
    if (!ws || ws->fake)
        return;
    node_ws_counters_t *n = &ws->n;
    skick_gauge_set(m->open, (double) atomic_load(&ws->open));
    skick_counter_set(m->accepted, atomic_load(&n->accepted));
    skick_gauge_set(m->sessions, (double) sh->sessions);
    skick_gauge_set(m->clients, (double) sh->clients);
    skick_counter_set(m->msgs_in, atomic_load(&n->msgs_in));
    skick_counter_set(m->msgs_out, atomic_load(&n->msgs_out));
    skick_counter_set(m->bytes_in, atomic_load(&n->bytes_in));
    skick_counter_set(m->bytes_out, atomic_load(&n->bytes_out));
    skick_counter_set(m->slow, atomic_load(&n->slow_closed));
    skick_counter_set(m->rate, atomic_load(&n->rate_limited));
    skick_counter_set(m->too_big, atomic_load(&n->too_big));
    skick_counter_set(m->proto, atomic_load(&n->protocol_errors));
    skick_counter_set(m->ping, atomic_load(&n->ping_timeouts));
    skick_counter_set(m->aborted, atomic_load(&n->aborted));
    skick_counter_set(m->refused, atomic_load(&n->refused_frames));
    skick_counter_set(m->queued, atomic_load(&n->queued_frames));
    skick_gauge_set(m->outbox, (double) atomic_load(&n->outbox_bytes));
}

static int s_on_metrics(struct mg_connection *c, void *cbdata)
{
    node_ws_t *ws = cbdata;
    size_t len = 0;
    char *text = skick_metrics_snapshot(node_metrics_registry(ws->sh), &len, NULL);
    if (!text) {
        mg_printf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
        return 503;
    }
    mg_printf(c,
              "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
              SKICK_METRICS_CONTENT_TYPE, len);
    mg_write(c, text, len);
    free(text);
    return 200;
}

static skick_series_t *s_one(skick_metrics_t *reg, bool counter, const char *name,
                             const char *help)
{
    return skick_metric_series(counter ? skick_metrics_counter(reg, name, help, NULL, 1)
                                       : skick_metrics_gauge(reg, name, help, NULL, 1));
}

void node_ws_metrics_start(node_ws_t *ws)
{
    skick_metrics_t *reg = node_metrics_registry(ws->sh);
    if (!reg || ws->fake)
        return;
    ws_series_t *m = &s_series;
    m->open = s_one(reg, false, "skick_ws_connections", "Websockets open now");
    m->accepted = s_one(reg, true, "skick_ws_connections_total", "Websockets accepted");
    m->sessions = s_one(reg, false, "skick_sessions", "Session actors alive now");
    m->clients = s_one(reg, false, "skick_ws_receptionists", "Receptionists (one per websocket)");
    skick_metric_t *msgs = skick_metrics_counter(reg, "skick_ws_messages_total",
                                                 "Websocket messages, by direction", "direction",
                                                 2);
    m->msgs_in = skick_metric_series(msgs, "in");
    m->msgs_out = skick_metric_series(msgs, "out");
    skick_metric_t *bytes = skick_metrics_counter(reg, "skick_ws_bytes_total",
                                                  "Websocket message bytes, by direction",
                                                  "direction", 2);
    m->bytes_in = skick_metric_series(bytes, "in");
    m->bytes_out = skick_metric_series(bytes, "out");
    skick_metric_t *closes = skick_metrics_counter(
        reg, "skick_ws_closes_total", "Clients the server closed, by reason", "reason", 8);
    m->slow = skick_metric_series(closes, "slow_client");
    m->rate = skick_metric_series(closes, "rate_limit");
    m->too_big = skick_metric_series(closes, "too_big");
    m->proto = skick_metric_series(closes, "protocol_error");
    m->ping = skick_metric_series(closes, "ping_timeout");
    m->aborted = s_one(reg, true, "skick_ws_aborted_total",
                       "Sockets shut down without a clean close (deadline, pings, errors)");
    m->refused = s_one(reg, true, "skick_ws_refused_frames_total",
                       "Frames refused for sending (send queue full under the refuse policy, "
                       "too big)");
    m->queued = s_one(reg, true, "skick_ws_queued_frames_total",
                      "Frames that had to wait in an outbox");
    m->outbox = s_one(reg, false, "skick_ws_outbox_bytes",
                      "Bytes queued for clients now, all outboxes (what slow clients cost)");
    node_metrics_on_collect(ws->sh, s_collect, ws);
    mg_set_request_handler(ws->ctx, "/metrics$", s_on_metrics, ws);
}
