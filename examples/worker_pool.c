/*  worker_pool - a supervisor that keeps a pool of workers alive

    Two actor types (skick-node --app worker_pool.so):

      supervisor  spawns init "workers" (default 4) workers with skick_spawn,
                  which makes it their monitor, and routes each worker's
                  sentinel to a handler. A daemon hands out "job" messages
                  round-robin every init "interval_ms" (default 100): most
                  are sent, every third one is called, to show both forms.
                  When a worker fails ("exception" sentinel), the handler
                  spawns a replacement into the same slot.
      worker      does jobs, answers those it was called with, and fails
                  (skick_fail) on its every 7th job, to give the supervisor
                  something to do.

    The shard's on_start hook spawns one supervisor. Ownership as in
    skick.h: json_object ** arguments are taken, returned objects are ours,
    handler messages are borrowed.
*/
#include <stdio.h>
#include <string.h>

#include "skick/skick.h"

#define MAX_WORKERS 64
#define FAIL_EVERY 7 /* a worker fails on its 7th, 14th... job */
#define CALL_EVERY 3 /* the supervisor calls every 3rd job, sends the others */

/* ---- worker ------------------------------------------------------------------- */

typedef struct {
    int64_t jobs; /* jobs this worker has taken */
} worker_t;

/*  {"action": "job", "id": n}: do it (square n); answer if called. */
static void s_worker_job(skick_actor_t *self, json_object *msg)
{
    worker_t *st = skick_state(self);
    int64_t id = skick_get_int(msg, "id", 0);
    if (++st->jobs % FAIL_EVERY == 0) {
        /* Raising, in C: the actor stops, a caller gets EPARTNER, and the
           monitors (our supervisor) get an "exception" sentinel. */
        skick_fail(self, "job %lld: simulated crash on my job #%lld", (long long) id,
                   (long long) st->jobs);
        return;
    }
    skick_actor_log(self, SKICK_LOG_DEBUG, "job %lld done", (long long) id);
    if (skick_get_string(msg, "cid", NULL)) { /* a conversation opener: someone waits */
        json_object *result =
            skick_json("{\"id\": %lld, \"square\": %lld}", (long long) id, (long long) (id * id));
        skick_reply(self, msg, &result); /* takes result */
    }
}

static void s_worker(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_state_new(self, sizeof(worker_t), NULL);
    /* Shorthand schemas admit the "cid"/"sender" that skick_call adds. */
    skick_action(self, "job", "{\"id\": \"integer\"}", s_worker_job);
}

/* ---- supervisor --------------------------------------------------------------- */

typedef struct {
    int nworkers;                      /* slots in use */
    int next;                          /* round-robin cursor */
    int64_t interval_ms;               /* between two jobs */
    int64_t jobs;                      /* jobs handed out */
    int64_t replaced;                  /* workers replaced */
    skick_addr_t workers[MAX_WORKERS]; /* "" while a slot is empty */
} supervisor_t;

static void s_on_worker_sentinel(skick_actor_t *self, json_object *msg);

/*  Spawn a worker into slot i and route its sentinels to us. */
static int s_spawn_worker(skick_actor_t *self, int i)
{
    supervisor_t *st = skick_state(self);
    json_object *init = NULL; /* NULL init means {} */

    /* The spawner becomes a monitor: the worker's sentinel comes to us. */
    st->workers[i] = skick_spawn(self, "worker", &init, SKICK_LOCAL);
    if (!st->workers[i].str[0]) {
        skick_actor_log(self, SKICK_LOG_ERROR, "cannot spawn a worker: %s",
                        skick_err_name(skick_errno()));
        return -1;
    }
    skick_sentinel_handler(self, st->workers[i].str, s_on_worker_sentinel);
    return 0;
}

/*  A sentinel about one of our workers: {"action": "sentinel", "type":
    "exception" | "cancellation" | "done", "address": A, "exception": why}. */
static void s_on_worker_sentinel(skick_actor_t *self, json_object *msg)
{
    supervisor_t *st = skick_state(self);
    const char *who = skick_get_string(msg, "address", ""); /* borrowed from msg */
    const char *how = skick_get_string(msg, "type", "");
    skick_sentinel_handler(self, who, NULL); /* that address will not speak again */
    int slot = -1;
    for (int i = 0; i < st->nworkers; i++)
        if (strcmp(st->workers[i].str, who) == 0)
            slot = i;
    if (slot < 0)
        return;
    if (strcmp(how, "exception") != 0) { /* stopped on purpose: leave the slot empty */
        st->workers[slot].str[0] = '\0';
        skick_actor_log(self, SKICK_LOG_INFO, "worker %s ended (%s)", who, how);
        return;
    }
    if (s_spawn_worker(self, slot) == 0) {
        st->replaced++;
        skick_actor_log(self, SKICK_LOG_INFO,
                        "worker %s failed (%s); replaced by %s "
                        "(%lld replacement(s) so far)",
                        who, skick_get_string(msg, "exception", "?"), st->workers[slot].str,
                        (long long) st->replaced);
    }
}

/*  Daemon: one job per interval, round-robin over the slots. */
static void s_dispatch(skick_actor_t *self)
{
    supervisor_t *st = skick_state(self);
    while (skick_sleep(self, st->interval_ms) == 0) {
        /* Copy the address: a sentinel may refill the slot while we wait. */
        skick_addr_t to = st->workers[st->next];
        st->next = (st->next + 1) % st->nworkers;
        if (!to.str[0])
            continue;
        int64_t id = ++st->jobs;
        json_object *job = skick_json("{\"action\": \"job\", \"id\": %lld}", (long long) id);
        if (id % CALL_EVERY != 0) {
            if (skick_send(self, to.str, &job) != 0) /* takes job */
                skick_actor_log(self, SKICK_LOG_INFO, "job %lld not delivered: %s", (long long) id,
                                skick_err_name(skick_errno()));
            continue;
        }
        json_object *result = skick_call(self, to.str, &job, 1000); /* takes job */
        if (result) {
            skick_actor_log(self, SKICK_LOG_DEBUG, "job %lld: %s answered %lld", (long long) id,
                            to.str, (long long) skick_get_int(result, "square", -1));
            json_object_put(result); /* the answer is ours */
        } else {
            skick_actor_log(self, SKICK_LOG_INFO, "job %lld: no answer from %s: %s", (long long) id,
                            to.str, skick_err_name(skick_errno()));
        }
    }
}

static void s_supervisor_start(skick_actor_t *self)
{
    supervisor_t *st = skick_state(self);
    for (int i = 0; i < st->nworkers; i++)
        if (s_spawn_worker(self, i) != 0) {
            skick_fail(self, "cannot build the pool");
            return;
        }
    skick_actor_log(self, SKICK_LOG_INFO, "pool of %d workers, a job every %lld ms", st->nworkers,
                    (long long) st->interval_ms);
}

static void s_supervisor(skick_actor_t *self, json_object *init)
{
    supervisor_t *st = skick_state_new(self, sizeof *st, NULL);
    int64_t n = skick_get_int(init, "workers", 4);
    st->nworkers = (int) (n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n);
    int64_t ms = skick_get_int(init, "interval_ms", 100);
    st->interval_ms = ms < 1 ? 1 : ms;
    skick_on_start(self, s_supervisor_start);
    /* SKICK_RESTART: if the dispatcher failed or returned, it would be
       restarted with back-off instead of stopping the supervisor. */
    skick_daemon(self, "dispatcher", s_dispatch, SKICK_RESTART, NULL);
}

/* ---- the module ------------------------------------------------------------------ */

static void s_shard_start(skick_actor_t *shard)
{
    json_object *init = skick_json("{\"workers\": 4}");
    skick_addr_t sup = skick_spawn(shard, "supervisor", &init, SKICK_LOCAL); /* takes init */
    if (!sup.str[0])
        skick_fail(shard, "cannot spawn the supervisor: %s", skick_err_name(skick_errno()));
}

SKICK_MODULE(worker_pool)
{
    skick_actor(app, "supervisor", s_supervisor);
    skick_actor(app, "worker", s_worker);
    skick_app_on_start(app, s_shard_start);
}
