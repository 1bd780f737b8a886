/*  bench_actors - actor runtime throughput: ping-pong, ring, spawn, call

    Prints one line per figure. Every message is a real Skick message: a
    JSON object with an "action", dispatched by name through the actor's
    behaviour. Two ping-pong variants: "forward" passes the same message
    object along (local sends transfer ownership, no copy: the intended
    use), "fresh" builds a new JSON object for every hop.

    Runs on the test kit's shard: the reactor and scheduler are the real
    ones; only timers would use virtual time, and none fire here.
    Usage: bench_actors [scale]   (scale 1 = the sizes; 0.1 for a quick run)

    SKICK_BENCH_METRICS=1: the shard's metrics are on (as on a front shard
    or with --metrics: the hot paths count, one handler run in 64 is
    timed), a thread scrapes the published text once a second, and the
    counters are published between figures; the cost of one publish is
    printed too. SKICK_BENCH_METRICS=0: metrics off, but the same second
    thread, idle: the reference for the cost. A second thread matters by
    itself: glibc's malloc leaves its single-thread fast path once a
    process has two (about 10 % of the fresh ping-pong here), and a real
    shard always has more (ZeroMQ's, civetweb's). bench/run-all.sh runs
    both; unset, the process has one thread as before.
*/
#include <pthread.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "skick/testkit.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int64_t g_done;

/* ---- ping-pong and ring: forward the message to "next" while n > 0 -------- */

typedef struct {
    char next[SKICK_ADDR_LEN + 1];
    bool fresh;
} hop_t;

static void hop_link(skick_actor_t *self, json_object *msg)
{
    hop_t *h = skick_state(self);
    snprintf(h->next, sizeof h->next, "%s", skick_get_string(msg, "next", ""));
    h->fresh = skick_get_bool(msg, "fresh", false);
}

static void hop_token(skick_actor_t *self, json_object *msg)
{
    hop_t *h = skick_state(self);
    json_object *n = json_object_object_get(msg, "n");
    int64_t left = json_object_get_int64(n);
    if (left <= 0) {
        g_done = 1;
        return;
    }
    json_object *out;
    if (h->fresh) {
        out = json_object_new_object();
        json_object_object_add(out, "action", json_object_new_string("token"));
        json_object_object_add(out, "n", json_object_new_int64(left - 1));
    } else {
        json_object_set_int64(n, left - 1);
        out = json_object_get(msg); /* forward the same object: no copy */
    }
    skick_send(self, h->next, &out);
}

static void hop(skick_actor_t *self, json_object *init)
{
    skick_state_new(self, sizeof(hop_t), NULL);
    skick_action(self, "link", NULL, hop_link);
    skick_action(self, "token", NULL, hop_token);
}

static void s_link(skick_tk_t *tk, const char *a, const char *next, bool fresh)
{
    char m[160];
    snprintf(m, sizeof m, "{\"action\":\"link\",\"next\":\"%s\",\"fresh\":%s}", next,
             fresh ? "true" : "false");
    skick_tk_send(tk, NULL, a, m);
}

static double s_run_token(skick_tk_t *tk, const char *first, int64_t hops)
{
    char m[96];
    snprintf(m, sizeof m, "{\"action\":\"token\",\"n\":%lld}", (long long) hops);
    g_done = 0;
    skick_tk_send(tk, NULL, first, m);
    double t0 = s_now();
    skick_tk_run(tk);
    double dt = s_now() - t0;
    if (!g_done)
        fprintf(stderr, "bench: the token was lost\n");
    return (double) hops / dt;
}

static void bench_pingpong(skick_tk_t *tk, int64_t hops, bool fresh)
{
    skick_addr_t a = skick_tk_spawn(tk, "hop", NULL, NULL);
    skick_addr_t b = skick_tk_spawn(tk, "hop", NULL, NULL);
    s_link(tk, a.str, b.str, fresh);
    s_link(tk, b.str, a.str, fresh);
    skick_tk_run(tk);
    uint64_t sw0 = skick_tk_stat(tk, "switches");
    double rate = s_run_token(tk, a.str, hops);
    uint64_t sw = skick_tk_stat(tk, "switches") - sw0;
    printf("pingpong_%s_msgs_per_s %.0f\n", fresh ? "fresh" : "forward", rate);
    printf("pingpong_%s_switches_per_msg %.4f\n", fresh ? "fresh" : "forward",
           (double) sw / (double) hops);
    skick_tk_stop(tk, a.str);
    skick_tk_stop(tk, b.str);
    skick_tk_run(tk);
}

static void bench_ring(skick_tk_t *tk, int n, int64_t hops)
{
    skick_addr_t *ring = malloc((size_t) n * sizeof *ring);
    for (int i = 0; i < n; i++)
        ring[i] = skick_tk_spawn(tk, "hop", NULL, NULL);
    for (int i = 0; i < n; i++)
        s_link(tk, ring[i].str, ring[(i + 1) % n].str, false);
    skick_tk_run(tk);
    printf("ring_%d_hops_per_s %.0f\n", n, s_run_token(tk, ring[0].str, hops));
    for (int i = 0; i < n; i++)
        skick_tk_stop(tk, ring[i].str);
    skick_tk_run(tk);
    free(ring);
}

/* ---- spawn: a spawner creates N actors that each handle one message -------- */

static int64_t g_handled;

static void one_shot(skick_actor_t *self, json_object *msg)
{
    g_handled++;
}

static void leaf(skick_actor_t *self, json_object *init)
{
    skick_action(self, "work", NULL, one_shot);
}

static void spawner_go(skick_actor_t *self, json_object *msg)
{
    int64_t n = skick_get_int(msg, "n", 0);
    for (int64_t i = 0; i < n; i++) {
        skick_addr_t a = skick_spawn(self, "leaf", NULL, SKICK_LOCAL | SKICK_NO_MONITOR);
        json_object *w = json_object_new_object();
        json_object_object_add(w, "action", json_object_new_string("work"));
        skick_send(self, a.str, &w);
    }
}

static void spawner(skick_actor_t *self, json_object *init)
{
    skick_action(self, "go", NULL, spawner_go);
}

static size_t s_heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static size_t s_rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (size_t) rss * (size_t) sysconf(_SC_PAGESIZE);
}

static void bench_spawn(skick_tk_t *tk, int64_t n)
{
    skick_addr_t sp = skick_tk_spawn(tk, "spawner", NULL, NULL);
    skick_tk_run(tk);
    size_t heap0 = s_heap_bytes(), rss0 = s_rss_bytes();
    char m[64];
    snprintf(m, sizeof m, "{\"action\":\"go\",\"n\":%lld}", (long long) n);
    g_handled = 0;
    skick_tk_send(tk, NULL, sp.str, m);
    double t0 = s_now();
    skick_tk_run(tk);
    double dt = s_now() - t0;
    if (g_handled != n)
        fprintf(stderr, "bench: %lld of %lld spawned actors handled their message\n",
                (long long) g_handled, (long long) n);
    printf("spawn_actors_per_s %.0f\n", (double) n / dt);
    (void) heap0;
    (void) rss0;
}

/*  Memory of idle actors: spawn n (no traffic, so no transient messages to
    fragment the heap), let them start, and compare heap and RSS. */
static void spawner_idle(skick_actor_t *self, json_object *msg)
{
    int64_t n = skick_get_int(msg, "n", 0);
    for (int64_t i = 0; i < n; i++)
        skick_spawn(self, "leaf", NULL, SKICK_LOCAL | SKICK_NO_MONITOR);
}

static void idle_spawner(skick_actor_t *self, json_object *init)
{
    skick_action(self, "go", NULL, spawner_idle);
}

/*  A fresh test kit with an idle spawner already told to spawn n leaves;
    nothing has run the request yet when this returns. */
static skick_tk_t *s_idle_kit(int64_t n)
{
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "leaf", leaf);
    skick_tk_actor(tk, "idle_spawner", idle_spawner);
    skick_addr_t sp = skick_tk_spawn(tk, "idle_spawner", NULL, NULL);
    skick_tk_run(tk);
    char m[64];
    snprintf(m, sizeof m, "{\"action\":\"go\",\"n\":%lld}", (long long) n);
    skick_tk_send(tk, NULL, sp.str, m);
    return tk;
}

/*  Spawn and start n actors with no message: the runtime's own cost of an
    actor, without the JSON message (a json-c object is ~900 bytes). */
static void bench_spawn_only(int64_t n)
{
    skick_tk_t *tk = s_idle_kit(n);
    double t0 = s_now();
    skick_tk_run(tk);
    printf("spawn_only_actors_per_s %.0f\n", (double) n / (s_now() - t0));
    skick_tk_destroy(&tk);
}

static void bench_idle(int64_t n)
{
    skick_tk_t *tk = s_idle_kit(n);
    malloc_trim(0);
    size_t heap0 = s_heap_bytes(), rss0 = s_rss_bytes();
    skick_tk_run(tk);
    malloc_trim(0);
    printf("idle_actor_heap_bytes %.0f\n", (double) (s_heap_bytes() - heap0) / (double) n);
    printf("idle_actor_rss_bytes %.0f\n", (double) (s_rss_bytes() - rss0) / (double) n);
    skick_tk_destroy(&tk);
}

/* ---- skick_call round trips ----------------------------------------------- */

static void answer(skick_actor_t *self, json_object *msg)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "ok", json_object_new_boolean(1));
    skick_reply(self, msg, &r);
}

static void responder(skick_actor_t *self, json_object *init)
{
    skick_action(self, "q", NULL, answer);
}

static void asker_go(skick_actor_t *self, json_object *msg)
{
    const char *to = skick_get_string(msg, "to", "");
    int64_t n = skick_get_int(msg, "n", 0);
    for (int64_t i = 0; i < n; i++) {
        json_object *q = json_object_new_object();
        json_object_object_add(q, "action", json_object_new_string("q"));
        json_object *r = skick_call(self, to, &q, 5000);
        if (!r) {
            fprintf(stderr, "bench: call failed: %s\n", skick_strerror(skick_errno()));
            return;
        }
        json_object_put(r);
    }
    g_done = 1;
}

static void asker(skick_actor_t *self, json_object *init)
{
    skick_action(self, "go", NULL, asker_go);
}

static void bench_call(skick_tk_t *tk, int64_t n)
{
    skick_addr_t r = skick_tk_spawn(tk, "responder", NULL, NULL);
    skick_addr_t a = skick_tk_spawn(tk, "asker", NULL, NULL);
    skick_tk_run(tk);
    char m[128];
    snprintf(m, sizeof m, "{\"action\":\"go\",\"to\":\"%s\",\"n\":%lld}", r.str, (long long) n);
    g_done = 0;
    uint64_t sw0 = skick_tk_stat(tk, "switches");
    skick_tk_send(tk, NULL, a.str, m);
    double t0 = s_now();
    skick_tk_run(tk);
    double dt = s_now() - t0;
    if (!g_done)
        fprintf(stderr, "bench: the caller did not finish\n");
    printf("call_round_trips_per_s %.0f\n", (double) n / dt);
    printf("call_switches_per_round_trip %.2f\n",
           (double) (skick_tk_stat(tk, "switches") - sw0) / (double) n);
}

static void app(skick_app_t *a)
{
    skick_actor(a, "hop", hop);
    skick_actor(a, "leaf", leaf);
    skick_actor(a, "spawner", spawner);
    skick_actor(a, "responder", responder);
    skick_actor(a, "asker", asker);
}

static volatile int g_scraping = 1;

static void *s_scraper(void *arg)
{
    skick_tk_t *tk = arg;
    while (g_scraping) {
        if (tk)
            free(skick_tk_metrics_scrape(tk));
        for (int i = 0; i < 10 && g_scraping; i++)
            usleep(100000);
    }
    return NULL;
}

/*  Publish (mirror and render): what the shard's timer does once a second. */
static void s_publish(skick_tk_t *tk, bool print)
{
    double t0 = s_now();
    char *text = skick_tk_metrics_text(tk);
    if (print && text)
        printf("metrics_publish_us %.0f (%zu bytes)\n", (s_now() - t0) * 1e6, strlen(text));
    free(text);
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    if (scale <= 0)
        scale = 1.0;
    skick_log_set_level(SKICK_LOG_ERROR);
    skick_tk_t *tk = skick_tk_new(app);
    const char *me = getenv("SKICK_BENCH_METRICS");
    bool metrics = me && strcmp(me, "1") == 0, second_thread = me != NULL;
    pthread_t scraper;
    if (metrics && skick_tk_metrics(tk) != 0) {
        fprintf(stderr, "bench: cannot turn the metrics on\n");
        return 1;
    }
    if (second_thread && pthread_create(&scraper, NULL, s_scraper, metrics ? tk : NULL) != 0) {
        fprintf(stderr, "bench: cannot start the second thread\n");
        return 1;
    }
    if (second_thread)
        printf("# metrics %s, a second thread %s\n", metrics ? "on" : "off",
               metrics ? "scraping once a second" : "idle");
    bench_pingpong(tk, (int64_t) (4e6 * scale), false);
    if (metrics)
        s_publish(tk, false);
    bench_pingpong(tk, (int64_t) (2e6 * scale), true);
    if (metrics)
        s_publish(tk, false);
    bench_ring(tk, 1000, (int64_t) (4e6 * scale));
    if (metrics)
        s_publish(tk, false);
    bench_call(tk, (int64_t) (1e6 * scale));
    if (metrics)
        s_publish(tk, false);
    bench_spawn(tk, (int64_t) (1e5 * (scale < 1 ? scale : 1)));
    if (metrics)
        s_publish(tk, true); /* with the spawned actors alive: the O(actors) scan */
    if (second_thread) {
        g_scraping = 0;
        pthread_join(scraper, NULL);
    }
    skick_tk_destroy(&tk);
    bench_spawn_only((int64_t) (1e5 * (scale < 1 ? scale : 1)));
    bench_idle((int64_t) (1e5 * (scale < 1 ? scale : 1)));
    return 0;
}
