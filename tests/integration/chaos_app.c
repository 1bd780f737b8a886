/*  chaos_app - the actors and sessions of tests/integration/test_chaos.py

    Loaded by the back shards of the chaos suite, which keeps them busy while
    it kills and stops processes, and then reads their ledgers:

      chaos (session)  socket "echo" {"seq": n} -> {"seq": n, "shard": "<id>"}
                       (the shard that hosts the session, 16 hex digits)
      ponger           "ping" (called) -> {"n": n}
      pinger           init {"peer": address}: a daemon calls the peer's "ping"
                       every 20 ms (timeout 3000 ms) and counts every outcome.
                       Called: "ledger" -> {"sent", "replied", "errors":
                       {"<CODE>": n}, "pending": 0|1, "slowest_error_ms"};
                       "retarget" {"peer"} -> {} (calls go there from now on)
      watcher          called: "watch" {"address"} -> {} (monitors it);
                       "watch_for" {"address", "monitor"} -> {}: asks address
                       to be monitored by monitor (a third party's request);
                       "sentinels" -> {"sentinels": [every sentinel so far]}

    Every outcome is counted: a ledger balances when sent = replied + errors
    + pending.
*/
#include <stdio.h>
#include <string.h>

#include "skick/skick.h"

/* ---- chaos: the websocket clients' sessions ---------------------------------- */

static void s_echo(skick_actor_t *self, json_object *msg)
{
    char shard[17];
    snprintf(shard, sizeof shard, "%.16s", skick_self(self));
    json_object *r = json_object_new_object();
    json_object_object_add(r, "seq", json_object_get(json_object_object_get(msg, "seq")));
    json_object_object_add(r, "shard", json_object_new_string(shard));
    skick_socksend(self, &r);
}

static void s_chaos(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_socket(self, "echo", "{\"seq\": \"integer\"}", s_echo);
}

/* ---- ponger ------------------------------------------------------------------ */

static void s_ping(skick_actor_t *self, json_object *msg)
{
    json_object *r = skick_json("{\"n\": %lld}", (long long) skick_get_int(msg, "n", 0));
    skick_reply(self, msg, &r);
}

static void s_ponger(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_action(self, "ping", NULL, s_ping);
}

/* ---- pinger ------------------------------------------------------------------ */

typedef struct {
    char peer[SKICK_ADDR_LEN + 1]; /* whom it calls */
    int64_t sent, replied;         /* calls made, answered */
    json_object *errors;           /* code -> count */
    int pending;                   /* a call is out now */
    int64_t slowest_error_ms;      /* the longest a failed call waited */
} pinger_t;

static void s_pinger_free(void *p)
{
    json_object_put(((pinger_t *) p)->errors);
}

static void s_count_error(pinger_t *p, int err, int64_t waited)
{
    const char *code = skick_err_name(err);
    json_object *n = json_object_object_get(p->errors, code);
    json_object_object_add(p->errors, code,
                           json_object_new_int64((n ? json_object_get_int64(n) : 0) + 1));
    if (waited > p->slowest_error_ms)
        p->slowest_error_ms = waited;
}

static void s_pinger_loop(skick_actor_t *self)
{
    pinger_t *p = skick_state(self);
    for (int64_t i = 0;; i++) {
        json_object *q = skick_json("{\"action\": \"ping\", \"n\": %lld}", (long long) i);
        p->sent++;
        p->pending = 1;
        int64_t t0 = skick_now(self);
        json_object *r = skick_call(self, p->peer, &q, 3000);
        p->pending = 0;
        if (r)
            p->replied++;
        else if (skick_errno() == SKICK_ESTOPPED)
            p->sent--; /* the pinger itself is stopping: not a call's outcome */
        else
            s_count_error(p, skick_errno(), skick_now(self) - t0);
        json_object_put(r);
        if (skick_sleep(self, 20) != 0)
            return;
    }
}

static void s_ledger(skick_actor_t *self, json_object *msg)
{
    pinger_t *p = skick_state(self);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "peer", json_object_new_string(p->peer));
    json_object_object_add(r, "sent", json_object_new_int64(p->sent));
    json_object_object_add(r, "replied", json_object_new_int64(p->replied));
    json_object_object_add(r, "errors", json_object_get(p->errors));
    json_object_object_add(r, "pending", json_object_new_int(p->pending));
    json_object_object_add(r, "slowest_error_ms", json_object_new_int64(p->slowest_error_ms));
    skick_reply(self, msg, &r);
}

static void s_retarget(skick_actor_t *self, json_object *msg)
{
    pinger_t *p = skick_state(self);
    snprintf(p->peer, sizeof p->peer, "%s", skick_get_string(msg, "peer", ""));
    json_object *r = json_object_new_object();
    skick_reply(self, msg, &r);
}

static void s_pinger(skick_actor_t *self, json_object *init)
{
    pinger_t *p = skick_state_new(self, sizeof *p, s_pinger_free);
    snprintf(p->peer, sizeof p->peer, "%s", skick_get_string(init, "peer", ""));
    p->errors = json_object_new_object();
    skick_action(self, "ledger", NULL, s_ledger);
    skick_conversation(self, "retarget", "{\"peer\": \"string\"}", s_retarget);
    skick_daemon(self, "calls", s_pinger_loop, SKICK_DEAD_MANS_SWITCH, NULL);
}

/* ---- watcher ----------------------------------------------------------------- */

typedef struct {
    json_object *sentinels; /* every sentinel received */
} watcher_t;

static void s_watcher_free(void *p)
{
    json_object_put(((watcher_t *) p)->sentinels);
}

static void s_ok(skick_actor_t *self, json_object *msg)
{
    json_object *r = json_object_new_object();
    skick_reply(self, msg, &r);
}

static void s_watch(skick_actor_t *self, json_object *msg)
{
    skick_monitor(self, skick_get_string(msg, "address", ""));
    s_ok(self, msg);
}

static void s_watch_for(skick_actor_t *self, json_object *msg)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "action", json_object_new_string("monitor"));
    json_object_object_add(m, "address",
                           json_object_new_string(skick_get_string(msg, "monitor", "")));
    skick_send(self, skick_get_string(msg, "address", ""), &m);
    s_ok(self, msg);
}

static void s_sentinels(skick_actor_t *self, json_object *msg)
{
    watcher_t *w = skick_state(self);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "sentinels", json_object_get(w->sentinels));
    skick_reply(self, msg, &r);
}

static void s_on_sentinel(skick_actor_t *self, json_object *msg)
{
    watcher_t *w = skick_state(self);
    json_object_array_add(w->sentinels, json_object_get(msg));
}

static void s_watcher(skick_actor_t *self, json_object *init)
{
    (void) init;
    watcher_t *w = skick_state_new(self, sizeof *w, s_watcher_free);
    w->sentinels = json_object_new_array();
    skick_action(self, "watch", "{\"address\": \"string\"}", s_watch);
    skick_action(self, "watch_for", "{\"address\": \"string\", \"monitor\": \"string\"}",
                 s_watch_for);
    skick_action(self, "sentinels", NULL, s_sentinels);
    skick_default_sentinel(self, s_on_sentinel);
}

SKICK_MODULE(chaos_test_app)
{
    skick_session(app, "chaos", s_chaos);
    skick_actor(app, "ponger", s_ponger);
    skick_actor(app, "pinger", s_pinger);
    skick_actor(app, "watcher", s_watcher);
}
