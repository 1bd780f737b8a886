/*  broker_metrics - the broker's Prometheus metrics (--metrics HOST:PORT)

    The broker counts in its own plain counters (broker_t.stats, each
    peer's link); this module mirrors them into a registry once a second
    from the broker's loop and publishes the text, which a thread of
    proto/skick_metrics_http.c serves. So the loop never waits for a
    scraper and counting costs nothing extra. docs/metrics.md lists the
    metrics.

    Ownership: broker_metrics_start returns an object the caller owns and
    frees with broker_metrics_stop(&p); it reads the broker it is ticked
    with and keeps no pointer into it.
*/
#ifndef BROKER_METRICS_H_INCLUDED
#define BROKER_METRICS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "broker_state.h"

typedef struct broker_metrics broker_metrics_t;

#define BROKER_METRICS_PERIOD_MS 1000 /* publish interval */

/*  Listen on spec ("HOST:PORT", skick_metrics_http_parse) and serve the
    metrics. NULL with a reason in err when it cannot listen. */
broker_metrics_t *broker_metrics_start(const char *spec, char *err, size_t errlen);

/*  The port listened on. */
int broker_metrics_port(const broker_metrics_t *self);

/*  From the loop: mirror b's counters and publish, when the period has
    passed since the last time (and at the first call). */
void broker_metrics_tick(broker_metrics_t *self, const broker_t *b, int64_t now_ms);

/*  Stop serving and free. NULL-safe; sets *self_p to NULL. */
void broker_metrics_stop(broker_metrics_t **self_p);

#endif
