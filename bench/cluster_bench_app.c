/*  cluster_bench_app - the actors of the cluster benchmarks (bench/cluster_bench.sh)

    Loaded by the back shards (skick-node --back --app cluster_bench_app.so).
    bench/cluster_bench.sh spawns them on chosen shards through the shard
    actor and asks them from outside through the broker's control socket;
    every figure is measured inside the shards with CLOCK_MONOTONIC (one
    clock for every process of the machine), so the outside client's own
    speed does not matter.

      bench_sink    counts "blast_msg" messages (and those arriving out of
                    order by their "i"); "stats" (called) answers
                    {"count", "out_of_order", "first_ns", "last_ns"}: when the
                    first and the last message arrived; "reset" (called)
                    starts over and answers {}.
      bench_source  "blast" {to, n, size?, yield_every?, yield_ms?} (called):
                    sends n messages {"action":"blast_msg","i":k,"pad":"xx.."}
                    of about size bytes of JSON (default 100) to the sink at
                    "to" with skick_send, one after the other; every
                    yield_every sends (0: never) it yields with
                    skick_sleep(self, yield_ms) (default 0). A sleep of 0
                    lets the shard poll its sockets now and then, but not run
                    other actors (a due timer's fiber runs before the run
                    queue), so a sink on the same shard needs yield_ms >= 1
                    and yield_every below its mailbox size. Answers
                    {"sent", "failed",
                    "first_error", "t0_ns" (before the first send),
                    "t1_ns" (after the last), "body_bytes"}.
      bench_ponger  "ping" (called): answers {"pong": true}.
      bench_pinger  "ping_run" {to, m, warmup?, timeout_ms?} (called): warmup
                    (default 200) then m sequential skick_call round trips to
                    the ponger at "to"; answers {"samples", "errors",
                    "first_error", "p50_us", "p90_us", "p99_us", "mean_us",
                    "min_us", "max_us"} over the m measured calls.

    The handlers run as plain actions (skick_action): while one is busy the
    actor handles nothing else, which is what a benchmark wants.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skick/skick.h"

#define BENCH_MAX_BODY 65536
#define BENCH_MAX_SAMPLES 10000000

static int64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void s_reply_error(skick_actor_t *self, json_object *msg, const char *what)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "error", json_object_new_string(what));
    skick_reply(self, msg, &r);
}

/* ---- bench_sink ----------------------------------------------------------- */

typedef struct {
    int64_t count;        /* blast messages received */
    int64_t out_of_order; /* with an "i" not above the previous one */
    int64_t last_i;
    int64_t first_ns, last_ns;
} sink_t;

static void s_sink_msg(skick_actor_t *self, json_object *msg)
{
    sink_t *st = skick_state(self);
    int64_t t = s_now_ns();
    int64_t i = skick_get_int(msg, "i", -1);
    if (st->count == 0)
        st->first_ns = t;
    else if (i <= st->last_i)
        st->out_of_order++;
    st->last_i = i;
    st->last_ns = t;
    st->count++;
}

static void s_sink_stats(skick_actor_t *self, json_object *msg)
{
    sink_t *st = skick_state(self);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "count", json_object_new_int64(st->count));
    json_object_object_add(r, "out_of_order", json_object_new_int64(st->out_of_order));
    json_object_object_add(r, "first_ns", json_object_new_int64(st->first_ns));
    json_object_object_add(r, "last_ns", json_object_new_int64(st->last_ns));
    skick_reply(self, msg, &r);
}

static void s_sink_reset(skick_actor_t *self, json_object *msg)
{
    sink_t *st = skick_state(self);
    memset(st, 0, sizeof *st);
    st->last_i = -1;
    json_object *r = json_object_new_object();
    skick_reply(self, msg, &r);
}

static void s_sink(skick_actor_t *self, json_object *init)
{
    (void) init;
    sink_t *st = skick_state_new(self, sizeof *st, NULL);
    st->last_i = -1;
    skick_action(self, "blast_msg", NULL, s_sink_msg);
    skick_action(self, "stats", NULL, s_sink_stats);
    skick_action(self, "reset", NULL, s_sink_reset);
}

/* ---- bench_source --------------------------------------------------------- */

/*  The blast message number i with a pad making it about size bytes. */
static json_object *s_blast_msg(int64_t i, const char *pad, size_t padlen)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "action", json_object_new_string("blast_msg"));
    json_object_object_add(m, "i", json_object_new_int64(i));
    json_object_object_add(m, "pad", json_object_new_string_len(pad, (int) padlen));
    return m;
}

static void s_source_blast(skick_actor_t *self, json_object *msg)
{
    const char *to = skick_get_string(msg, "to", "");
    int64_t n = skick_get_int(msg, "n", 100000);
    int64_t size = skick_get_int(msg, "size", 100);
    int64_t yield_every = skick_get_int(msg, "yield_every", 0);
    int64_t yield_ms = skick_get_int(msg, "yield_ms", 0);
    if (n < 1 || size < 0 || size > BENCH_MAX_BODY || yield_ms < 0) {
        s_reply_error(self, msg, "bad n or size");
        return;
    }
    char addr[SKICK_ADDR_LEN + 1];
    snprintf(addr, sizeof addr, "%s", to); /* msg is borrowed: keep the address */
    /* {"action":"blast_msg","i":123456,"pad":""} is 42 bytes at six digits */
    static char pad[BENCH_MAX_BODY];
    size_t padlen = size > 42 ? (size_t) size - 42 : 0;
    memset(pad, 'x', padlen);
    json_object *probe = s_blast_msg(n / 2, pad, padlen);
    int64_t body_bytes = (int64_t) strlen(json_object_to_json_string_ext(probe,
                                                                         JSON_C_TO_STRING_PLAIN));
    json_object_put(probe);

    int64_t sent = 0, failed = 0;
    int first_error = 0;
    int64_t t0 = s_now_ns();
    for (int64_t i = 0; i < n; i++) {
        json_object *m = s_blast_msg(i, pad, padlen);
        if (skick_send(self, addr, &m) == 0) {
            sent++;
        } else {
            failed++;
            if (!first_error)
                first_error = skick_errno();
        }
        if (yield_every > 0 && (i + 1) % yield_every == 0 && skick_sleep(self, yield_ms) != 0)
            break; /* stopping */
    }
    int64_t t1 = s_now_ns();
    json_object *r = json_object_new_object();
    json_object_object_add(r, "sent", json_object_new_int64(sent));
    json_object_object_add(r, "failed", json_object_new_int64(failed));
    json_object_object_add(r, "first_error",
                           json_object_new_string(first_error ? skick_err_name(first_error) : ""));
    json_object_object_add(r, "t0_ns", json_object_new_int64(t0));
    json_object_object_add(r, "t1_ns", json_object_new_int64(t1));
    json_object_object_add(r, "body_bytes", json_object_new_int64(body_bytes));
    skick_reply(self, msg, &r);
}

static void s_source(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_action(self, "blast", NULL, s_source_blast);
}

/* ---- bench_ponger / bench_pinger ------------------------------------------ */

static void s_ponger_ping(skick_actor_t *self, json_object *msg)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "pong", json_object_new_boolean(1));
    skick_reply(self, msg, &r);
}

static void s_ponger(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_action(self, "ping", NULL, s_ponger_ping);
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/*  Nearest-rank percentile of sorted v[0..n), in microseconds. */
static double s_pct_us(const int64_t *v, int64_t n, double p)
{
    int64_t k = (int64_t) (p * (double) n + 0.999999) - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return (double) v[k] / 1e3;
}

static void s_pinger_run(skick_actor_t *self, json_object *msg)
{
    int64_t m = skick_get_int(msg, "m", 20000);
    int64_t warmup = skick_get_int(msg, "warmup", 200);
    int64_t timeout = skick_get_int(msg, "timeout_ms", 5000);
    if (m < 1 || m > BENCH_MAX_SAMPLES || warmup < 0) {
        s_reply_error(self, msg, "bad m or warmup");
        return;
    }
    char addr[SKICK_ADDR_LEN + 1];
    snprintf(addr, sizeof addr, "%s", skick_get_string(msg, "to", ""));
    int64_t *lat = malloc((size_t) m * sizeof *lat);
    if (!lat) {
        s_reply_error(self, msg, "out of memory");
        return;
    }
    int64_t n = 0, errors = 0;
    int first_error = 0;
    for (int64_t i = 0; i < warmup + m; i++) {
        json_object *q = json_object_new_object();
        json_object_object_add(q, "action", json_object_new_string("ping"));
        int64_t t = s_now_ns();
        json_object *a = skick_call(self, addr, &q, timeout);
        int64_t dt = s_now_ns() - t;
        if (!a) {
            int e = skick_errno();
            errors++;
            if (!first_error)
                first_error = e;
            if (e == SKICK_ESTOPPED)
                break;
            continue;
        }
        json_object_put(a);
        if (i >= warmup)
            lat[n++] = dt;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "samples", json_object_new_int64(n));
    json_object_object_add(r, "errors", json_object_new_int64(errors));
    json_object_object_add(r, "first_error",
                           json_object_new_string(first_error ? skick_err_name(first_error) : ""));
    if (n > 0) {
        qsort(lat, (size_t) n, sizeof *lat, s_cmp_i64);
        double sum = 0;
        for (int64_t i = 0; i < n; i++)
            sum += (double) lat[i];
        json_object_object_add(r, "p50_us", json_object_new_double(s_pct_us(lat, n, 0.50)));
        json_object_object_add(r, "p90_us", json_object_new_double(s_pct_us(lat, n, 0.90)));
        json_object_object_add(r, "p99_us", json_object_new_double(s_pct_us(lat, n, 0.99)));
        json_object_object_add(r, "mean_us", json_object_new_double(sum / (double) n / 1e3));
        json_object_object_add(r, "min_us", json_object_new_double((double) lat[0] / 1e3));
        json_object_object_add(r, "max_us", json_object_new_double((double) lat[n - 1] / 1e3));
    }
    free(lat);
    skick_reply(self, msg, &r);
}

static void s_pinger(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_action(self, "ping_run", NULL, s_pinger_run);
}

SKICK_MODULE(cluster_bench_app)
{
    skick_actor(app, "bench_sink", s_sink);
    skick_actor(app, "bench_source", s_source);
    skick_actor(app, "bench_ponger", s_ponger);
    skick_actor(app, "bench_pinger", s_pinger);
}
