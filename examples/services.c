/*  services - finding actors by service name, and the shared hash tables

    Two actor types (skick-node --app services.so):

      clock   provides the "clock" service: answers {"action": "now"} calls
              with the shard clock (skick_now); {"action": "retire"} stops it.
      client  every second looks a clock up (SKICK_LOCAL, then SKICK_MIXED),
              calls it, and counts its visits per clock in the hash table
              "visits". On its 3rd round it retires the clock it used, after
              asking to monitor it; when the sentinel arrives it checks that
              the registry never hands out the dead address, and forgets the
              clock's entry in "visits".

    The shard's on_start hook spawns two clocks and one client. Ownership as
    in skick.h: json_object ** arguments are taken, returned objects are
    ours, handler messages are borrowed.
*/
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "skick/skick.h"

#define RETIRE_ROUND 3 /* the client retires a clock on this round */
#define LOOKUPS 20     /* lookups made after the retired clock stopped */

/* ---- clock -------------------------------------------------------------------- */

static void s_clock_start(skick_actor_t *self)
{
    if (skick_register_service(self, "clock") == 0)
        skick_actor_log(self, SKICK_LOG_INFO, "providing \"clock\"");
}

/*  {"action": "now"} as a call: answer {"now": ms}. */
static void s_clock_now(skick_actor_t *self, json_object *msg)
{
    json_object *answer = skick_json("{\"now\": %lld}", (long long) skick_now(self));
    skick_reply(self, msg, &answer); /* takes answer */
}

/*  {"action": "retire"}: stop. The runtime withdraws our services as we go. */
static void s_clock_retire(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    skick_actor_log(self, SKICK_LOG_INFO, "retiring at the request of %s", skick_sender(self));
    skick_stop(self); /* takes effect when this handler returns */
}

static void s_clock(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_on_start(self, s_clock_start);
    skick_action(self, "now", NULL, s_clock_now);
    skick_action(self, "retire", NULL, s_clock_retire);
}

/* ---- client ------------------------------------------------------------------- */

typedef struct {
    int round; /* rounds done by the visitor daemon */
} client_t;

/*  Add one to the visits of key in table "visits"; returns the new count. */
static int64_t s_count_visit(skick_actor_t *self, const char *key)
{
    json_object *old = skick_hash_get(self, "visits", key); /* ours, or NULL (ENOTFOUND) */
    int64_t n = (old ? json_object_get_int64(old) : 0) + 1;
    json_object_put(old); /* NULL-safe */
    json_object *value = json_object_new_int64(n);
    if (skick_hash_set(self, "visits", key, &value) != 0) /* takes value */
        skick_actor_log(self, SKICK_LOG_WARNING, "cannot count the visit: %s",
                        skick_err_name(skick_errno()));
    return n;
}

/*  A sentinel about the clock we retired: it is gone. */
static void s_on_clock_gone(skick_actor_t *self, json_object *msg)
{
    const char *gone = skick_get_string(msg, "address", ""); /* borrowed from msg */
    skick_actor_log(self, SKICK_LOG_INFO, "clock %s is gone (%s)", gone,
                    skick_get_string(msg, "type", "?"));
    skick_sentinel_handler(self, gone, NULL);

    /* Its services went with it: every lookup now names a live clock. */
    int live = 0, dead = 0;
    for (int i = 0; i < LOOKUPS; i++) {
        skick_addr_t c = skick_get_service(self, "clock", SKICK_LOCAL);
        if (strcmp(c.str, gone) == 0)
            dead++;
        else if (c.str[0])
            live++;
    }
    skick_actor_log(self, dead ? SKICK_LOG_ERROR : SKICK_LOG_INFO,
                    "after the retirement %d of %d lookups gave a live clock, %d the dead one",
                    live, LOOKUPS, dead);

    /* Forget its visits: contains, get and delete on the shared table. */
    bool present = false;
    if (skick_hash_contains(self, "visits", gone, &present) == 0 && present) {
        json_object *visits = skick_hash_get(self, "visits", gone); /* ours */
        skick_hash_delete(self, "visits", gone);
        skick_hash_contains(self, "visits", gone, &present);
        skick_actor_log(self, SKICK_LOG_INFO, "forgot %s's %s visit(s); still in \"visits\": %s",
                        gone, visits ? json_object_get_string(visits) : "?",
                        present ? "yes" : "no");
        json_object_put(visits);
    }
}

/*  Retire clock: monitor it first, so its sentinel tells us when it is gone. */
static void s_retire(skick_actor_t *self, const char *clock)
{
    skick_sentinel_handler(self, clock, s_on_clock_gone);
    skick_monitor(self, clock);
    json_object *retire = skick_json("{\"action\": \"retire\"}");
    if (skick_send(self, clock, &retire) != 0) /* takes retire */
        skick_actor_log(self, SKICK_LOG_WARNING, "cannot retire %s: %s", clock,
                        skick_err_name(skick_errno()));
}

/*  Daemon: once a second, find a clock, ask it the time, count the visit. */
static void s_visit(skick_actor_t *self)
{
    client_t *st = skick_state(self);
    while (skick_sleep(self, 1000) == 0) {
        st->round++;
        /* SKICK_LOCAL: only this shard. SKICK_MIXED prefers this shard and
           would fall back to another shard of the cluster. */
        skick_addr_t clock = skick_get_service(self, "clock", SKICK_LOCAL);
        if (!clock.str[0])
            clock = skick_get_service(self, "clock", SKICK_MIXED);
        if (!clock.str[0]) {
            skick_actor_log(self, SKICK_LOG_INFO, "no clock right now");
            continue;
        }
        json_object *ask = skick_json("{\"action\": \"now\"}");
        json_object *answer = skick_call(self, clock.str, &ask, 1000); /* takes ask */
        if (!answer) {
            skick_actor_log(self, SKICK_LOG_WARNING, "clock %s did not answer: %s", clock.str,
                            skick_err_name(skick_errno()));
            continue;
        }
        int64_t n = s_count_visit(self, clock.str);
        skick_actor_log(self, SKICK_LOG_INFO, "clock %s says %lld ms (visit %lld)", clock.str,
                        (long long) skick_get_int(answer, "now", -1), (long long) n);
        json_object_put(answer); /* the answer is ours */
        if (st->round == RETIRE_ROUND)
            s_retire(self, clock.str);
    }
}

static void s_client(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_state_new(self, sizeof(client_t), NULL);
    skick_daemon(self, "visitor", s_visit, SKICK_DEAD_MANS_SWITCH, NULL);
}

/* ---- the module ------------------------------------------------------------------ */

static void s_shard_start(skick_actor_t *shard)
{
    static const char *const types[] = {"clock", "clock", "client"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        json_object *init = NULL; /* NULL init means {} */
        if (!skick_spawn(shard, types[i], &init, SKICK_LOCAL).str[0]) {
            skick_fail(shard, "cannot spawn a %s: %s", types[i], skick_err_name(skick_errno()));
            return;
        }
    }
}

SKICK_MODULE(services)
{
    skick_actor(app, "clock", s_clock);
    skick_actor(app, "client", s_client);
    skick_app_on_start(app, s_shard_start);
}
