/*  skick_metrics - counters, gauges and histograms in Prometheus text format

    Every Skick process (shard, broker, AMQP bridge) keeps its metrics in
    one registry and renders it for `GET /metrics` in the text exposition
    format 0.0.4 (docs/metrics.md lists the metrics). This module is the
    registry and the renderer; it does no I/O except reading /proc/self for
    the process_* metrics.

    Shape (the Prometheus client libraries' own): a metric family has a
    name, a help text, a kind and up to SKICK_METRIC_LABELS_MAX label names;
    a series is one combination of label values and holds the numbers.
    Families are registered at start-up; series are looked up (and created
    on first use) with skick_metric_series, which takes a lock, so hot paths
    look a series up once and keep the pointer (a type's series in the
    type's table entry, an error code's in an array indexed by the code).

    Cardinality is bounded by design: each family has a maximum number of
    series (max_series); past it every new combination of values shares one
    series whose label values are all "_other", and the registry counts the
    refusals in skick_metrics_series_overflow_total{family=...}. Label values
    are meant to be bounded sets anyway (actor type, error code, peer shard;
    never an actor address).

    Threads: updating a series (skick_counter_add, skick_gauge_set,
    skick_histogram_observe...) is lock-free (relaxed atomics) and may
    happen on any thread, so civetweb's worker threads and the reactor can
    count into the same registry. Rendering may run on another thread (a
    civetweb handler) at the same time; it sees each number whole, and a
    histogram's _count is the sum of its buckets as read, so it is always
    consistent with them. Registering families is for one thread at
    start-up, before anything renders.

    Ownership: the registry owns its families and series; the pointers that
    skick_metrics_* and skick_metric_series return live as long as the
    registry. Names, help texts and label values are copied. The text of
    skick_metrics_render belongs to the caller (free()).
*/
#ifndef SKICK_METRICS_H_INCLUDED
#define SKICK_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SKICK_METRIC_LABELS_MAX  4    /* label names per family */
#define SKICK_METRIC_BUCKETS_MAX 32   /* finite upper bounds per histogram */
#define SKICK_METRIC_OTHER       "_other" /* label value of the overflow series */

typedef struct skick_metrics skick_metrics_t;      /* a registry */
typedef struct skick_metric skick_metric_t;        /* a family */
typedef struct skick_metric_series skick_series_t; /* one set of label values */

/*  Called by skick_metrics_render before it reads anything, on the
    rendering thread, so that a process can refresh gauges it computes on
    demand (with skick_gauge_set). arg is the one given at registration. */
typedef void(skick_metrics_collect_fn)(skick_metrics_t *reg, void *arg);

/*  A new empty registry (caller owns; skick_metrics_destroy). */
skick_metrics_t *skick_metrics_new(void);

/*  Free the registry, its families and series. NULL-safe; sets *self_p
    to NULL. Nothing may update or render it any more. */
void skick_metrics_destroy(skick_metrics_t **self_p);

/*  Register a family. name follows Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*;
    a counter's name must end in "_total"), help is one line of text,
    labels is NULL or a comma-separated list of label names
    ("type,code"; [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", "le"
    reserved for histograms), max_series bounds the series (0: 1000).
    Returns the family, or NULL when a rule is broken or the name is taken
    (a programming error: the caller asserts). */
skick_metric_t *skick_metrics_counter(skick_metrics_t *reg, const char *name, const char *help,
                                      const char *labels, size_t max_series);
skick_metric_t *skick_metrics_gauge(skick_metrics_t *reg, const char *name, const char *help,
                                    const char *labels, size_t max_series);

/*  Register a histogram family with the finite upper bounds bounds[0..n)
    (strictly increasing, 1 <= n <= SKICK_METRIC_BUCKETS_MAX; the +Inf
    bucket is added). Same rules and returns as skick_metrics_counter; its
    name must not end in "_total", "_bucket", "_sum" or "_count". */
skick_metric_t *skick_metrics_histogram(skick_metrics_t *reg, const char *name, const char *help,
                                        const char *labels, const double *bounds, size_t n,
                                        size_t max_series);

/*  The family called name, or NULL. */
skick_metric_t *skick_metrics_find(skick_metrics_t *reg, const char *name);

/*  Register fn to run at the start of every render (at most 16). 0 or -1. */
int skick_metrics_on_collect(skick_metrics_t *reg, skick_metrics_collect_fn *fn, void *arg);

/*  Register the standard process_* families (process_cpu_seconds_total,
    process_resident_memory_bytes, process_virtual_memory_bytes,
    process_open_fds, process_max_fds, process_start_time_seconds, read
    from /proc/self at each render). 0 or -1 (already registered). */
int skick_metrics_add_process(skick_metrics_t *reg);

/*  The series of family m for the label values given as the variadic
    arguments (exactly as many const char * as the family has labels; NULL
    counts as ""). Created at zero on first use, under the registry's lock;
    the overflow series when max_series is reached. Never NULL for a valid
    family. */
skick_series_t *skick_metric_series(skick_metric_t *m, ...);

/*  The same with the values in an array of the family's label count. */
skick_series_t *skick_metric_series_v(skick_metric_t *m, const char *const *values);

/*  Counters: add n. Gauges: set, add (may be negative). Histograms:
    count one observation of v. Lock-free; NULL-safe (a NULL series is a
    metric switched off). Using a series of another kind is ignored. */
void skick_counter_add(skick_series_t *s, uint64_t n);
void skick_gauge_set(skick_series_t *s, double v);
void skick_gauge_add(skick_series_t *s, double delta);
void skick_histogram_observe(skick_series_t *s, double v);

/*  Counters kept elsewhere: set the series to n, the owner's own running
    count (a shard's reactor counts in plain integers and mirrors them
    here when it publishes; see skick_metrics_publish). */
void skick_counter_set(skick_series_t *s, uint64_t n);

/*  A counter's or gauge's current value (a histogram's observation count). */
double skick_series_value(const skick_series_t *s);

/*  The whole registry in text format 0.0.4: for each family in the order
    of registration "# HELP", "# TYPE" and its series in the order they
    were created. Returns a NUL-terminated string (caller frees) and its
    length in *len (may be NULL), or NULL when out of memory. */
char *skick_metrics_render(skick_metrics_t *reg, size_t *len);

/*  Snapshots: the thread that owns the numbers (a reactor) renders the
    registry now and then with skick_metrics_publish, and any thread (an
    HTTP handler) serves the last text with skick_metrics_snapshot, so a
    scrape never waits for the reactor and the reactor's counters need no
    atomics. publish: 0, or -1 when out of memory (the old text stays).
    snapshot: a copy of the last published text (caller frees; "" before
    the first publish), its length in *len and its age in milliseconds in
    *age_ms (either may be NULL; age -1 before the first publish). */
int skick_metrics_publish(skick_metrics_t *reg);
char *skick_metrics_snapshot(skick_metrics_t *reg, size_t *len, int64_t *age_ms);

/*  The Content-Type that goes with the rendered text. */
#define SKICK_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*  Standard bounds, in seconds: latencies from 10 µs to 10 s, and for
    depths/sizes powers of 4 from 1 to 1 Mi. */
extern const double skick_metrics_latency_bounds[];
extern const size_t skick_metrics_latency_nbounds;
extern const double skick_metrics_depth_bounds[];
extern const size_t skick_metrics_depth_nbounds;

#endif
