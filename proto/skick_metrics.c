/*  skick_metrics - counters, gauges and histograms in Prometheus text format

    Numbers are plain 64-bit words updated with relaxed __atomic builtins:
    a counter's integer count, a gauge's double (its bits), a histogram's
    per-bucket counts (not cumulative, so an observation touches one word
    plus the sum) and its sum (a double, added with a CAS loop). Rendering
    makes the buckets cumulative and _count their total.

    The family list and each family's series list only grow; both are
    changed under the registry's mutex, and the renderer walks them under
    the same mutex, so a series created while a scrape runs is simply in
    the next one.
*/
#include "skick_metrics.h"
#include "skick_clock.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

struct skick_metric_series {
    skick_metric_t *family;
    char *values[SKICK_METRIC_LABELS_MAX];
    uint64_t count;    /* counter: integer count */
    uint64_t bits;     /* gauge: the double; counter: a float part; histogram: the sum */
    uint64_t *buckets; /* histogram: nbounds + 1 counts, the last one +Inf */
    skick_series_t *next;
};

struct skick_metric {
    skick_metrics_t *reg;
    char *name;
    char *help;
    kind_t kind;
    size_t nlabels;
    char *labels[SKICK_METRIC_LABELS_MAX];
    double bounds[SKICK_METRIC_BUCKETS_MAX];
    size_t nbounds;
    size_t max_series;
    size_t nseries;
    skick_series_t *head, *tail;
    skick_series_t *overflow; /* the "_other" series, once needed */
    skick_metric_t *next;
};

#define COLLECT_MAX 16

typedef struct {
    skick_series_t *cpu, *rss, *vsize, *fds, *max_fds, *start;
} process_series_t;

struct skick_metrics {
    pthread_mutex_t lock;
    skick_metric_t *head, *tail;
    skick_metric_t *overflow_total; /* skick_metrics_series_overflow_total{family} */
    struct {
        skick_metrics_collect_fn *fn;
        void *arg;
    } collect[COLLECT_MAX];
    size_t ncollect;
    bool process;
    process_series_t proc; /* the process_* series, when added */
    pthread_mutex_t snap_lock; /* guards the three below */
    char *snap;                /* last published text, or NULL */
    size_t snap_len;
    int64_t snap_ms;           /* CLOCK_MONOTONIC ms of the publish */
};

const double skick_metrics_latency_bounds[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
                                               0.0005,  0.001,    0.0025,  0.005,  0.01,
                                               0.025,   0.05,     0.1,     0.25,   0.5,
                                               1,       2.5,      5,       10};
const size_t skick_metrics_latency_nbounds =
    sizeof skick_metrics_latency_bounds / sizeof skick_metrics_latency_bounds[0];
const double skick_metrics_depth_bounds[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536,
                                             262144, 1048576};
const size_t skick_metrics_depth_nbounds =
    sizeof skick_metrics_depth_bounds / sizeof skick_metrics_depth_bounds[0];

/* ---- doubles in 64-bit words ------------------------------------------- */

static uint64_t s_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double s_double(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void s_add_double(uint64_t *word, double delta)
{
    uint64_t old = __atomic_load_n(word, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(word, &old, s_bits(s_double(old) + delta), true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

/* ---- names ------------------------------------------------------------- */

static bool s_name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
        return true;
    return !first && c >= '0' && c <= '9';
}

static bool s_valid_name(const char *name, bool colon)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!s_name_char(*p, p == name, colon))
            return false;
    return true;
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/*  Split "a,b" into m->labels; false on a bad or repeated name. */
static bool s_parse_labels(skick_metric_t *m, const char *labels)
{
    if (!labels || !*labels)
        return true;
    const char *p = labels;
    while (true) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t) (end - p) : strlen(p);
        if (m->nlabels == SKICK_METRIC_LABELS_MAX || len == 0 || len > 64)
            return false;
        char name[65];
        memcpy(name, p, len);
        name[len] = '\0';
        if (!s_valid_name(name, false) || strncmp(name, "__", 2) == 0 ||
            (m->kind == KIND_HISTOGRAM && strcmp(name, "le") == 0))
            return false;
        for (size_t i = 0; i < m->nlabels; i++)
            if (strcmp(m->labels[i], name) == 0)
                return false;
        m->labels[m->nlabels++] = strdup(name);
        if (!end)
            return true;
        p = end + 1;
    }
}

/* ---- registry ---------------------------------------------------------- */

static skick_series_t *s_series_new(skick_metric_t *m, const char *const *values);

static void s_series_free(skick_series_t *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++)
        free(s->values[i]);
    free(s->buckets);
    free(s);
}

static void s_family_free(skick_metric_t *m)
{
    skick_series_t *s = m->head;
    while (s) {
        skick_series_t *next = s->next;
        s_series_free(s, m->nlabels);
        s = next;
    }
    if (m->overflow)
        s_series_free(m->overflow, m->nlabels);
    for (size_t i = 0; i < m->nlabels; i++)
        free(m->labels[i]);
    free(m->name);
    free(m->help);
    free(m);
}

static skick_metric_t *s_register(skick_metrics_t *reg, kind_t kind, const char *name,
                                  const char *help, const char *labels, const double *bounds,
                                  size_t nbounds, size_t max_series)
{
    if (!reg || !s_valid_name(name, true) || !help || strchr(help, '\n'))
        return NULL;
    if (kind == KIND_COUNTER && !s_ends_with(name, "_total"))
        return NULL;
    if (kind == KIND_HISTOGRAM) {
        if (s_ends_with(name, "_total") || s_ends_with(name, "_bucket") ||
            s_ends_with(name, "_sum") || s_ends_with(name, "_count"))
            return NULL;
        if (!bounds || nbounds == 0 || nbounds > SKICK_METRIC_BUCKETS_MAX)
            return NULL;
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
                return NULL;
    }
    if (skick_metrics_find(reg, name))
        return NULL;
    skick_metric_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->reg = reg;
    m->kind = kind;
    m->max_series = max_series ? max_series : 1000;
    m->name = strdup(name);
    m->help = strdup(help);
    if (!m->name || !m->help || !s_parse_labels(m, labels)) {
        s_family_free(m);
        return NULL;
    }
    if (kind == KIND_HISTOGRAM) {
        memcpy(m->bounds, bounds, nbounds * sizeof *bounds);
        m->nbounds = nbounds;
    }
    if (m->nlabels == 0) {
        /* An unlabelled family is one series, there (at 0) from the start. */
        m->head = m->tail = s_series_new(m, NULL);
        if (!m->head) {
            s_family_free(m);
            return NULL;
        }
        m->nseries = 1;
    }
    pthread_mutex_lock(&reg->lock);
    if (reg->tail)
        reg->tail->next = m;
    else
        reg->head = m;
    reg->tail = m;
    pthread_mutex_unlock(&reg->lock);
    return m;
}

skick_metrics_t *skick_metrics_new(void)
{
    skick_metrics_t *reg = calloc(1, sizeof *reg);
    if (!reg)
        return NULL;
    pthread_mutex_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->snap_lock, NULL);
    reg->overflow_total = s_register(
        reg, KIND_COUNTER, "skick_metrics_series_overflow_total",
        "Label sets refused because a family reached its series bound (counted in _other)",
        "family", NULL, 0, 0);
    if (!reg->overflow_total) {
        skick_metrics_destroy(&reg);
        return NULL;
    }
    return reg;
}

void skick_metrics_destroy(skick_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    skick_metrics_t *reg = *self_p;
    skick_metric_t *m = reg->head;
    while (m) {
        skick_metric_t *next = m->next;
        s_family_free(m);
        m = next;
    }
    pthread_mutex_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->snap_lock);
    free(reg->snap);
    free(reg);
    *self_p = NULL;
}

skick_metric_t *skick_metrics_counter(skick_metrics_t *reg, const char *name, const char *help,
                                      const char *labels, size_t max_series)
{
    return s_register(reg, KIND_COUNTER, name, help, labels, NULL, 0, max_series);
}

skick_metric_t *skick_metrics_gauge(skick_metrics_t *reg, const char *name, const char *help,
                                    const char *labels, size_t max_series)
{
    return s_register(reg, KIND_GAUGE, name, help, labels, NULL, 0, max_series);
}

skick_metric_t *skick_metrics_histogram(skick_metrics_t *reg, const char *name, const char *help,
                                        const char *labels, const double *bounds, size_t n,
                                        size_t max_series)
{
    return s_register(reg, KIND_HISTOGRAM, name, help, labels, bounds, n, max_series);
}

skick_metric_t *skick_metrics_find(skick_metrics_t *reg, const char *name)
{
    if (!reg || !name)
        return NULL;
    pthread_mutex_lock(&reg->lock);
    skick_metric_t *m = reg->head;
    while (m && strcmp(m->name, name) != 0)
        m = m->next;
    pthread_mutex_unlock(&reg->lock);
    return m;
}

int skick_metrics_on_collect(skick_metrics_t *reg, skick_metrics_collect_fn *fn, void *arg)
{
    if (!reg || !fn || reg->ncollect == COLLECT_MAX)
        return -1;
    reg->collect[reg->ncollect].fn = fn;
    reg->collect[reg->ncollect].arg = arg;
    reg->ncollect++;
    return 0;
}

/* ---- series ------------------------------------------------------------ */

static skick_series_t *s_series_new(skick_metric_t *m, const char *const *values)
{
    skick_series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->family = m;
    for (size_t i = 0; i < m->nlabels; i++) {
        s->values[i] = strdup(values[i] ? values[i] : "");
        if (!s->values[i]) {
            s_series_free(s, m->nlabels);
            return NULL;
        }
    }
    if (m->kind == KIND_HISTOGRAM) {
        s->buckets = calloc(m->nbounds + 1, sizeof *s->buckets);
        if (!s->buckets) {
            s_series_free(s, m->nlabels);
            return NULL;
        }
    }
    return s;
}

static bool s_same_values(const skick_series_t *s, size_t n, const char *const *values)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
            return false;
    return true;
}

/*  The family's series for values; called with the registry's lock held. */
static skick_series_t *s_lookup(skick_metric_t *m, const char *const *values);

/*  The overflow series of m (created on first need) and one more refusal
    counted for it; lock held. */
static skick_series_t *s_overflow(skick_metric_t *m)
{
    if (!m->overflow) {
        const char *other[SKICK_METRIC_LABELS_MAX] = {SKICK_METRIC_OTHER, SKICK_METRIC_OTHER,
                                                      SKICK_METRIC_OTHER, SKICK_METRIC_OTHER};
        m->overflow = s_series_new(m, other);
    }
    skick_metric_t *total = m->reg->overflow_total;
    if (m != total) {
        const char *name = m->name;
        skick_counter_add(s_lookup(total, &name), 1);
    }
    return m->overflow;
}

static skick_series_t *s_lookup(skick_metric_t *m, const char *const *values)
{
    for (skick_series_t *s = m->head; s; s = s->next)
        if (s_same_values(s, m->nlabels, values))
            return s;
    if (m->nseries >= m->max_series)
        return s_overflow(m);
    skick_series_t *s = s_series_new(m, values);
    if (!s)
        return m->overflow; /* out of memory: count nowhere rather than crash */
    if (m->tail)
        m->tail->next = s;
    else
        m->head = s;
    m->tail = s;
    m->nseries++;
    return s;
}

skick_series_t *skick_metric_series_v(skick_metric_t *m, const char *const *values)
{
    if (!m)
        return NULL;
    static const char *const none[SKICK_METRIC_LABELS_MAX] = {NULL};
    pthread_mutex_lock(&m->reg->lock);
    skick_series_t *s = s_lookup(m, values ? values : none);
    pthread_mutex_unlock(&m->reg->lock);
    return s;
}

skick_series_t *skick_metric_series(skick_metric_t *m, ...)
{
    if (!m)
        return NULL;
    const char *values[SKICK_METRIC_LABELS_MAX] = {NULL};
    va_list ap;
    va_start(ap, m);
    for (size_t i = 0; i < m->nlabels; i++)
        values[i] = va_arg(ap, const char *);
    va_end(ap);
    return skick_metric_series_v(m, values);
}

void skick_counter_add(skick_series_t *s, uint64_t n)
{
    if (s && s->family->kind == KIND_COUNTER)
        __atomic_fetch_add(&s->count, n, __ATOMIC_RELAXED);
}

void skick_counter_set(skick_series_t *s, uint64_t n)
{
    if (s && s->family->kind == KIND_COUNTER)
        __atomic_store_n(&s->count, n, __ATOMIC_RELAXED);
}

void skick_gauge_set(skick_series_t *s, double v)
{
    if (s && s->family->kind == KIND_GAUGE)
        __atomic_store_n(&s->bits, s_bits(v), __ATOMIC_RELAXED);
}

void skick_gauge_add(skick_series_t *s, double delta)
{
    if (s && s->family->kind == KIND_GAUGE)
        s_add_double(&s->bits, delta);
}

void skick_histogram_observe(skick_series_t *s, double v)
{
    if (!s || s->family->kind != KIND_HISTOGRAM)
        return;
    const skick_metric_t *m = s->family;
    size_t i = 0;
    while (i < m->nbounds && v > m->bounds[i]) /* le: v <= bound; NaN lands in +Inf */
        i++;
    __atomic_fetch_add(&s->buckets[i], 1, __ATOMIC_RELAXED);
    s_add_double(&s->bits, v);
}

double skick_series_value(const skick_series_t *s)
{
    if (!s)
        return 0;
    switch (s->family->kind) {
    case KIND_COUNTER:
        return (double) __atomic_load_n(&s->count, __ATOMIC_RELAXED) +
               s_double(__atomic_load_n(&s->bits, __ATOMIC_RELAXED));
    case KIND_GAUGE:
        return s_double(__atomic_load_n(&s->bits, __ATOMIC_RELAXED));
    case KIND_HISTOGRAM: {
        uint64_t n = 0;
        for (size_t i = 0; i <= s->family->nbounds; i++)
            n += __atomic_load_n(&s->buckets[i], __ATOMIC_RELAXED);
        return (double) n;
    }
    }
    return 0;
}

/* ---- process metrics --------------------------------------------------- */

/*  Set a counter to a float value (process_cpu_seconds_total is a sum of
    seconds that the kernel keeps; the registry only mirrors it). */
static void s_counter_mirror(skick_series_t *s, double v)
{
    __atomic_store_n(&s->bits, s_bits(v), __ATOMIC_RELAXED);
}

static void s_collect_process(skick_metrics_t *reg, void *arg)
{
    process_series_t *p = arg;
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the command, which may hold spaces and parens: from
           the last ')'. utime is field 14, stime 15, starttime 22, vsize
           23, rss 24 (proc(5)); after ") " comes field 3. */
        char *p3 = strrchr(buf, ')');
        unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
        long long rss = 0;
        if (p3 && sscanf(p3 + 2,
                         "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
                         "%*d %*d %*d %llu %llu %lld",
                         &utime, &stime, &start, &vsize, &rss) == 5 &&
            ticks > 0) {
            s_counter_mirror(p->cpu, (double) (utime + stime) / (double) ticks);
            skick_gauge_set(p->vsize, (double) vsize);
            skick_gauge_set(p->rss, (double) rss * (double) page);
            static double boot; /* btime of /proc/stat, read once */
            if (boot == 0) {
                FILE *st = fopen("/proc/stat", "r");
                char line[256];
                while (st && fgets(line, sizeof line, st))
                    if (sscanf(line, "btime %lf", &boot) == 1)
                        break;
                if (st)
                    fclose(st);
            }
            skick_gauge_set(p->start, boot + (double) start / (double) ticks);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        while (readdir(d))
            n++;
        closedir(d);
        skick_gauge_set(p->fds, (double) (n - 3)); /* ".", ".." and d itself */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        skick_gauge_set(p->max_fds, rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double) rl.rlim_cur);
    (void) reg;
}

int skick_metrics_add_process(skick_metrics_t *reg)
{
    if (!reg || reg->process)
        return -1;
    process_series_t *p = &reg->proc;
    p->cpu = skick_metric_series(
        skick_metrics_counter(reg, "process_cpu_seconds_total",
                              "Total user and system CPU time spent in seconds.", NULL, 1));
    p->rss = skick_metric_series(skick_metrics_gauge(reg, "process_resident_memory_bytes",
                                                     "Resident memory size in bytes.", NULL, 1));
    p->vsize = skick_metric_series(skick_metrics_gauge(reg, "process_virtual_memory_bytes",
                                                       "Virtual memory size in bytes.", NULL, 1));
    p->fds = skick_metric_series(
        skick_metrics_gauge(reg, "process_open_fds", "Number of open file descriptors.", NULL, 1));
    p->max_fds = skick_metric_series(skick_metrics_gauge(
        reg, "process_max_fds", "Maximum number of open file descriptors.", NULL, 1));
    p->start = skick_metric_series(
        skick_metrics_gauge(reg, "process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.", NULL, 1));
    if (!p->cpu || !p->rss || !p->vsize || !p->fds || !p->max_fds || !p->start)
        return -1;
    reg->process = true;
    return skick_metrics_on_collect(reg, s_collect_process, p);
}

/* ---- rendering --------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} text_t;

static void s_put(text_t *t, const char *data, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (t->len + n + 1 > cap)
            cap *= 2;
        char *buf = realloc(t->buf, cap);
        if (!buf) {
            t->failed = true;
            return;
        }
        t->buf = buf;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, data, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void s_puts(text_t *t, const char *s)
{
    s_put(t, s, strlen(s));
}

/*  s with '\\' and '\n' escaped, and '"' too when quote (a label value). */
static void s_put_escaped(text_t *t, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            s_puts(t, "\\\\");
        else if (*s == '\n')
            s_puts(t, "\\n");
        else if (quote && *s == '"')
            s_puts(t, "\\\"");
        else
            s_put(t, s, 1);
    }
}

/*  v in the float syntax Prometheus parses: +Inf, -Inf, NaN, an integral
    value as an integer, else the shortest %g text that reads back as v. */
static void s_put_double(text_t *t, double v)
{
    char buf[40];
    if (isnan(v))
        snprintf(buf, sizeof buf, "NaN");
    else if (isinf(v))
        snprintf(buf, sizeof buf, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, sizeof buf, "%.0f", v); /* 300000, not 3e+05 */
    else
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    s_puts(t, buf);
}

static void s_put_u64(text_t *t, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    s_puts(t, buf);
}

/*  name{l1="v1",...[,le="bound"]} and a space. */
static void s_put_sample_head(text_t *t, const skick_metric_t *m, const skick_series_t *s,
                              const char *suffix, const double *le)
{
    s_puts(t, m->name);
    s_puts(t, suffix);
    if (m->nlabels || le) {
        s_puts(t, "{");
        for (size_t i = 0; i < m->nlabels; i++) {
            if (i)
                s_puts(t, ",");
            s_puts(t, m->labels[i]);
            s_puts(t, "=\"");
            s_put_escaped(t, s->values[i], true);
            s_puts(t, "\"");
        }
        if (le) {
            s_puts(t, m->nlabels ? ",le=\"" : "le=\"");
            s_put_double(t, *le);
            s_puts(t, "\"");
        }
        s_puts(t, "}");
    }
    s_puts(t, " ");
}

static void s_render_series(text_t *t, const skick_metric_t *m, const skick_series_t *s)
{
    switch (m->kind) {
    case KIND_COUNTER: {
        s_put_sample_head(t, m, s, "", NULL);
        double extra = s_double(__atomic_load_n(&s->bits, __ATOMIC_RELAXED));
        uint64_t n = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
        if (extra != 0)
            s_put_double(t, (double) n + extra);
        else
            s_put_u64(t, n);
        break;
    }
    case KIND_GAUGE:
        s_put_sample_head(t, m, s, "", NULL);
        s_put_double(t, s_double(__atomic_load_n(&s->bits, __ATOMIC_RELAXED)));
        break;
    case KIND_HISTOGRAM: {
        uint64_t cum = 0;
        for (size_t i = 0; i <= m->nbounds; i++) {
            cum += __atomic_load_n(&s->buckets[i], __ATOMIC_RELAXED);
            double le = i < m->nbounds ? m->bounds[i] : INFINITY;
            s_put_sample_head(t, m, s, "_bucket", &le);
            s_put_u64(t, cum);
            s_puts(t, "\n");
        }
        s_put_sample_head(t, m, s, "_sum", NULL);
        s_put_double(t, s_double(__atomic_load_n(&s->bits, __ATOMIC_RELAXED)));
        s_puts(t, "\n");
        s_put_sample_head(t, m, s, "_count", NULL);
        s_put_u64(t, cum);
        break;
    }
    }
    s_puts(t, "\n");
}

static const char *s_kind_name(kind_t k)
{
    return k == KIND_COUNTER ? "counter" : k == KIND_GAUGE ? "gauge" : "histogram";
}

char *skick_metrics_render(skick_metrics_t *reg, size_t *len)
{
    if (!reg)
        return NULL;
    for (size_t i = 0; i < reg->ncollect; i++)
        reg->collect[i].fn(reg, reg->collect[i].arg);
    text_t t = {0};
    s_put(&t, "", 0); /* an empty registry renders as "" rather than NULL */
    pthread_mutex_lock(&reg->lock);
    for (const skick_metric_t *m = reg->head; m; m = m->next) {
        if (!m->head && !m->overflow && m->nlabels)
            continue; /* a labelled family with no series yet says nothing */
        s_puts(&t, "# HELP ");
        s_puts(&t, m->name);
        s_puts(&t, " ");
        s_put_escaped(&t, m->help, false);
        s_puts(&t, "\n# TYPE ");
        s_puts(&t, m->name);
        s_puts(&t, " ");
        s_puts(&t, s_kind_name(m->kind));
        s_puts(&t, "\n");
        for (const skick_series_t *s = m->head; s; s = s->next)
            s_render_series(&t, m, s);
        if (m->overflow)
            s_render_series(&t, m, m->overflow);
    }
    pthread_mutex_unlock(&reg->lock);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    if (len)
        *len = t.len;
    return t.buf;
}

/* ---- snapshots --------------------------------------------------------- */


int skick_metrics_publish(skick_metrics_t *reg)
{
    size_t len = 0;
    char *text = skick_metrics_render(reg, &len);
    if (!text)
        return -1;
    pthread_mutex_lock(&reg->snap_lock);
    char *old = reg->snap;
    reg->snap = text;
    reg->snap_len = len;
    reg->snap_ms = skick_clock_ms();
    pthread_mutex_unlock(&reg->snap_lock);
    free(old);
    return 0;
}

char *skick_metrics_snapshot(skick_metrics_t *reg, size_t *len, int64_t *age_ms)
{
    if (!reg)
        return NULL;
    pthread_mutex_lock(&reg->snap_lock);
    size_t n = reg->snap ? reg->snap_len : 0;
    char *copy = malloc(n + 1);
    if (copy) {
        if (n)
            memcpy(copy, reg->snap, n);
        copy[n] = '\0';
        if (len)
            *len = n;
        if (age_ms)
            *age_ms = reg->snap ? skick_clock_ms() - reg->snap_ms : -1;
    }
    pthread_mutex_unlock(&reg->snap_lock);
    return copy;
}
