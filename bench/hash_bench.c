/*  hash_bench - hash round trips per second from one shard (bench/hash_bench.sh)

    Usage: hash_bench --back --hash URL [skick-node options]; SKICK_HASH_BENCH_N
    sets the round trips per figure (default 100000).

    A program that calls skick_run with its own module: the "hash_bench"
    actor, spawned at start, runs skick_hash_set and skick_hash_get round
    trips on table "bench" key "k" (value "x") from 1 and from 100
    coroutines at once (each doing its share one after the other), prints
    one line per figure ("hash_set_c1 <ops/s>"), then stops the shard with
    SIGTERM. With --hash redis://... it measures the Redis backend; without
    it, the in-process one.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "skick/skick.h"

typedef struct {
    int left;     /* workers still running */
    int errors;   /* failed operations */
    long rounds;  /* round trips per worker */
    bool set;     /* set, else get */
} bench_t;

static bench_t s_bench;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void s_worker(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    for (long i = 0; i < s_bench.rounds; i++) {
        if (s_bench.set) {
            json_object *v = json_object_new_string("x");
            s_bench.errors += skick_hash_set(self, "bench", "k", &v) != 0;
        } else {
            json_object *v = skick_hash_get(self, "bench", "k");
            s_bench.errors += v == NULL;
            json_object_put(v);
        }
    }
    s_bench.left--;
}

/*  n round trips from conc coroutines; prints the figure when show. */
static void s_figure(skick_actor_t *self, bool set, int conc, long n, bool show)
{
    s_bench = (bench_t){.left = conc, .rounds = n / conc, .set = set};
    double t0 = s_now();
    for (int i = 0; i < conc; i++) {
        json_object *m = json_object_new_object();
        skick_spawn_task(self, s_worker, &m);
    }
    while (s_bench.left > 0)
        skick_sleep(self, 1);
    double secs = s_now() - t0;
    if (!show)
        return;
    printf("hash_%s_c%d %.0f\n", set ? "set" : "get", conc,
           (double) (s_bench.rounds * conc) / secs);
    if (s_bench.errors)
        printf("hash_%s_c%d_errors %d\n", set ? "set" : "get", conc, s_bench.errors);
    fflush(stdout);
}

static void s_driver(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    const char *env = getenv("SKICK_HASH_BENCH_N");
    long n = env ? atol(env) : 100000;
    if (n < 100)
        n = 100;
    s_figure(self, true, 1, n / 10, false); /* warm-up: connection, allocator */
    static const int concs[] = {1, 100};
    for (size_t i = 0; i < 2; i++) {
        s_figure(self, true, concs[i], n, true);
        s_figure(self, false, concs[i], n, true);
    }
    kill(getpid(), SIGTERM);
}

static void s_start(skick_actor_t *self)
{
    json_object *m = json_object_new_object();
    skick_spawn_task(self, s_driver, &m);
}

static void s_bench_actor(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_on_start(self, s_start);
}

static void s_app_start(skick_actor_t *shard)
{
    skick_spawn(shard, "hash_bench", NULL, SKICK_LOCAL);
}

SKICK_MODULE(hash_bench)
{
    skick_actor(app, "hash_bench", s_bench_actor);
    skick_app_on_start(app, s_app_start);
}

int main(int argc, char **argv)
{
    return skick_run(argc, argv);
}
