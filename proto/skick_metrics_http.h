/*  skick_metrics_http - serve a registry's snapshot on GET /metrics

    For the processes that have no web server of their own (the broker,
    back shards, the AMQP bridge; `--metrics HOST:PORT`). One thread of its
    own, so a scraper never costs the reactor anything: it polls the
    listening socket and up to SKICK_METRICS_HTTP_CONNS connections, all
    non-blocking, each with a deadline (SKICK_METRICS_HTTP_TIMEOUT_MS for
    the whole exchange), and answers from skick_metrics_snapshot, which the
    reactor publishes. A scraper that stops reading or never finishes its
    request is closed at its deadline and costs only its own slot; past
    the slot bound new connections are closed at once (the scraper retries).

    HTTP/1.0 and 1.1, one request per connection ("Connection: close"):
    GET or HEAD of /metrics gives 200 with the text format 0.0.4; another
    path 404; another method 405; a request head over 8 KiB 431.

    Ownership: _start returns a server the caller owns and stops with
    _stop(&p). The registry is borrowed and must outlive the server.
*/
#ifndef SKICK_METRICS_HTTP_H_INCLUDED
#define SKICK_METRICS_HTTP_H_INCLUDED

#include <stddef.h>

#include "skick_metrics.h"

#define SKICK_METRICS_HTTP_CONNS      16   /* connections served at once */
#define SKICK_METRICS_HTTP_TIMEOUT_MS 5000 /* per connection, request to last byte */

typedef struct skick_metrics_http skick_metrics_http_t;

/*  Parse a --metrics value: "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT"
    (host 127.0.0.1: loopback unless asked otherwise). 0 with host (len
    bytes) and *port filled, or -1 with a reason in err. */
int skick_metrics_http_parse(const char *spec, char *host, size_t len, int *port, char *err,
                             size_t errlen);

/*  Listen on spec (skick_metrics_http_parse; port 0 picks a free one) and
    serve reg from a new thread. Returns the server, or NULL with a reason
    in err (bad spec, address in use...). */
skick_metrics_http_t *skick_metrics_http_start(const char *spec, skick_metrics_t *reg, char *err,
                                               size_t errlen);

/*  The port listened on (the one picked, for port 0). */
int skick_metrics_http_port(const skick_metrics_http_t *self);

/*  Stop the thread, close every connection and the listener, free. NULL-safe;
    sets *self_p to NULL. */
void skick_metrics_http_stop(skick_metrics_http_t **self_p);

#endif
