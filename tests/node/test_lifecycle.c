/*  test_lifecycle - on_start, daemons, replace, spawn and sentinels, services,
    hashes, timers, the shard's on_start hook.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "skick/testkit.h"

static int g_events[16];
#define EV(i) (g_events[i])

/* ---- on_start that suspends ------------------------------------------------ */

static void slow_start(skick_actor_t *self)
{
    EV(0)++;
    skick_sleep(self, 500);
    EV(1)++;
}
static void count(skick_actor_t *self, json_object *msg) { EV(2)++; }
static void slow_starter(skick_actor_t *self, json_object *init)
{
    skick_on_start(self, slow_start);
    skick_action(self, "count", NULL, count);
}

Test(lifecycle, messages_wait_for_on_start)
{
    memset(g_events, 0, sizeof g_events);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "s", slow_starter);
    skick_addr_t a = skick_tk_spawn(tk, "s", NULL, NULL);
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"count\"}");
    skick_tk_run(tk);
    cr_assert_eq(EV(0), 1);
    cr_assert_eq(EV(2), 0, "not before on_start finished");
    skick_tk_advance(tk, 500);
    cr_assert_eq(EV(1), 1);
    cr_assert_eq(EV(2), 1);
    skick_tk_destroy(&tk);
}

/* ---- daemons --------------------------------------------------------------- */

static void ticker(skick_actor_t *self)
{
    while (skick_sleep(self, 100) == 0)
        EV(3)++;
}
static void quitter(skick_actor_t *self)
{
    skick_sleep(self, 250);
    EV(4)++;
}
static void crasher(skick_actor_t *self)
{
    EV(5)++;
    skick_fail(self, "daemon crashed");
}
static void on_fail(skick_actor_t *self) { EV(6)++; }

static void dms_actor(skick_actor_t *self, json_object *init)
{
    skick_daemon(self, "ticker", ticker, SKICK_DETACHED, NULL);
    skick_daemon(self, "quitter", quitter, SKICK_DEAD_MANS_SWITCH, on_fail);
}
static void restart_actor(skick_actor_t *self, json_object *init)
{
    skick_daemon(self, "crasher", crasher, SKICK_RESTART, on_fail);
    skick_action(self, "count", NULL, count);
}
static void detached_actor(skick_actor_t *self, json_object *init)
{
    skick_daemon(self, "crasher", crasher, SKICK_DETACHED, on_fail);
    skick_action(self, "count", NULL, count);
}

Test(lifecycle, dead_mans_switch_stops_with_cancellation)
{
    memset(g_events, 0, sizeof g_events);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "d", dms_actor);
    skick_addr_t probe = skick_tk_probe(tk);
    skick_addr_t a = skick_tk_spawn(tk, "d", NULL, probe.str);
    skick_tk_advance(tk, 249);
    cr_assert(skick_tk_alive(tk, a.str));
    cr_assert_eq(EV(3), 2, "the ticker ticked twice");
    skick_tk_advance(tk, 1);
    json_object *s = skick_tk_recv(tk, probe.str);
    cr_assert_not_null(s);
    cr_assert_str_eq(skick_get_string(s, "type", ""), "cancellation");
    cr_assert_eq(EV(4), 1);
    cr_assert_eq(EV(6), 1, "on_failure ran");
    json_object_put(s);
    int ticks = EV(3);
    skick_tk_advance(tk, 1000);
    cr_assert_eq(EV(3), ticks, "the other daemon was cancelled too");
    skick_tk_destroy(&tk);
}

Test(lifecycle, restart_backs_off)
{
    memset(g_events, 0, sizeof g_events);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "r", restart_actor);
    skick_addr_t a = skick_tk_spawn(tk, "r", NULL, NULL);
    skick_tk_run(tk);
    cr_assert_eq(EV(5), 1);
    skick_tk_advance(tk, 100);
    cr_assert_eq(EV(5), 2, "restarted after 100 ms");
    skick_tk_advance(tk, 200);
    cr_assert_eq(EV(5), 3, "then after 200 ms");
    skick_tk_advance(tk, 399);
    cr_assert_eq(EV(5), 3, "then not before 400 ms");
    skick_tk_advance(tk, 1);
    cr_assert_eq(EV(5), 4);
    cr_assert_eq(EV(6), 4, "on_failure each time");
    cr_assert(skick_tk_alive(tk, a.str), "a restarting daemon does not stop the actor");
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"count\"}");
    skick_tk_run(tk);
    cr_assert_eq(EV(2), 1);
    skick_tk_destroy(&tk);
}

Test(lifecycle, detached_daemon_failure_runs_on_failure_only)
{
    memset(g_events, 0, sizeof g_events);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "x", detached_actor);
    skick_addr_t a = skick_tk_spawn(tk, "x", NULL, NULL);
    skick_tk_advance(tk, 1000);
    cr_assert_eq(EV(5), 1);
    cr_assert_eq(EV(6), 1, "on_failure runs even though the daemon failed (seed B12)");
    cr_assert(skick_tk_alive(tk, a.str));
    skick_tk_destroy(&tk);
}

/* ---- replace ----------------------------------------------------------------- */

static void second_hello(skick_actor_t *self, json_object *msg)
{
    json_object *r = skick_json("{\"i_am\": \"second\", \"init\": %lld}",
                                (long long) *(int64_t *) skick_state(self));
    skick_reply(self, msg, &r);
}
static void second_start(skick_actor_t *self) { EV(7)++; }
static void second(skick_actor_t *self, json_object *init)
{
    int64_t *v = skick_state_new(self, sizeof *v, NULL);
    *v = skick_get_int(init, "value", -1);
    skick_action(self, "hello", NULL, second_hello);
    skick_on_start(self, second_start);
}
static void first_hello(skick_actor_t *self, json_object *msg)
{
    json_object *r = skick_json("{\"i_am\": \"first\"}");
    skick_reply(self, msg, &r);
}
static void first_switch(skick_actor_t *self, json_object *msg)
{
    json_object *init = skick_json("{\"value\": 7}");
    cr_assert_eq(skick_replace(self, "second", &init), 0);
}
static void first_only(skick_actor_t *self, json_object *msg) { EV(8)++; }
static void first_stop(skick_actor_t *self) { EV(9)++; }
static void first(skick_actor_t *self, json_object *init)
{
    skick_action(self, "hello", NULL, first_hello);
    skick_action(self, "switch", NULL, first_switch);
    skick_action(self, "only_first", NULL, first_only);
    skick_on_stop(self, first_stop);
}

Test(lifecycle, replace_switches_behaviour_and_keeps_address_and_monitors)
{
    memset(g_events, 0, sizeof g_events);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "first", first);
    skick_tk_actor(tk, "second", second);
    skick_addr_t probe = skick_tk_probe(tk);
    skick_addr_t a = skick_tk_spawn(tk, "first", NULL, probe.str);
    json_object *r = skick_tk_call(tk, a.str, "{\"action\":\"hello\"}", 1000);
    cr_assert_str_eq(skick_get_string(r, "i_am", ""), "first");
    json_object_put(r);
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"switch\"}");
    skick_tk_run(tk);
    cr_assert_eq(EV(9), 1, "the old on_stop ran");
    cr_assert_eq(EV(7), 1, "the new on_start ran");
    r = skick_tk_call(tk, a.str, "{\"action\":\"hello\"}", 1000);
    cr_assert_str_eq(skick_get_string(r, "i_am", ""), "second");
    cr_assert_eq(skick_get_int(r, "init", 0), 7);
    json_object_put(r);
    r = skick_tk_call(tk, a.str, "{\"action\":\"only_first\"}", 1000);
    cr_assert_null(r, "old actions are gone");
    cr_assert_eq(skick_errno(), SKICK_EACTION);
    skick_tk_stop(tk, a.str);
    json_object *s = skick_tk_recv(tk, probe.str);
    cr_assert_not_null(s, "monitors survive a replace");
    cr_assert_str_eq(skick_get_string(s, "address", ""), a.str);
    json_object_put(s);
    skick_tk_destroy(&tk);
}

/* ---- spawn from an actor, sentinel handlers ----------------------------------- */

static char g_child[64];
static void parent_spawn(skick_actor_t *self, json_object *msg)
{
    json_object *init = NULL;
    skick_addr_t c = skick_spawn(self, "first", &init, SKICK_MIXED);
    cr_assert(c.str[0]);
    snprintf(g_child, sizeof g_child, "%s", c.str);
    skick_sentinel_handler(self, c.str, NULL);
}
static void parent_route(skick_actor_t *self, json_object *msg) { EV(10)++; }
static void parent_default(skick_actor_t *self, json_object *msg) { EV(11)++; }
static void parent_route_next(skick_actor_t *self, json_object *msg)
{
    json_object *init = NULL;
    skick_addr_t c = skick_spawn(self, "first", &init, SKICK_LOCAL);
    snprintf(g_child, sizeof g_child, "%s", c.str);
    skick_sentinel_handler(self, c.str, parent_route);
}
static void parent(skick_actor_t *self, json_object *init)
{
    skick_action(self, "spawn_one", NULL, parent_spawn);
    skick_action(self, "spawn_routed", NULL, parent_route_next);
    skick_default_sentinel(self, parent_default);
}

Test(lifecycle, spawner_monitors_and_sentinel_routing)
{
    memset(g_events, 0, sizeof g_events);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "first", first);
    skick_tk_actor(tk, "parent", parent);
    skick_addr_t p = skick_tk_spawn(tk, "parent", NULL, NULL);
    skick_tk_send(tk, NULL, p.str, "{\"action\":\"spawn_one\"}");
    skick_tk_run(tk);
    cr_assert(skick_tk_alive(tk, g_child));
    skick_tk_stop(tk, g_child);
    skick_tk_run(tk);
    cr_assert_eq(EV(11), 1, "the default sentinel handler got it");
    skick_tk_send(tk, NULL, p.str, "{\"action\":\"spawn_routed\"}");
    skick_tk_run(tk);
    skick_tk_stop(tk, g_child);
    skick_tk_run(tk);
    cr_assert_eq(EV(10), 1, "the per-address handler got it");
    cr_assert_eq(EV(11), 1);
    skick_tk_destroy(&tk);
}

/* ---- services ------------------------------------------------------------------ */

static void svc_register(skick_actor_t *self, json_object *msg)
{
    skick_register_service(self, skick_get_string(msg, "name", ""));
}
static void svc_lookup(skick_actor_t *self, json_object *msg)
{
    int where = (int) skick_get_int(msg, "where", SKICK_MIXED);
    skick_addr_t a = skick_get_service(self, skick_get_string(msg, "name", ""), where);
    json_object *r = skick_json("{\"address\": \"%s\"}", a.str);
    skick_reply(self, msg, &r);
}
static void svc_leave(skick_actor_t *self, json_object *msg)
{
    skick_unregister_service(self, NULL);
}
static void svc(skick_actor_t *self, json_object *init)
{
    skick_action(self, "register", NULL, svc_register);
    skick_action(self, "lookup", NULL, svc_lookup);
    skick_action(self, "leave", NULL, svc_leave);
}

static const char *lookup(skick_tk_t *tk, const char *via, const char *name, int where,
                          char out[64])
{
    char req[160];
    snprintf(req, sizeof req, "{\"action\":\"lookup\",\"name\":\"%s\",\"where\":%d}", name, where);
    json_object *r = skick_tk_call(tk, via, req, 1000);
    snprintf(out, 64, "%s", skick_get_string(r, "address", "?"));
    json_object_put(r);
    return out;
}

Test(lifecycle, services_follow_their_providers)
{
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "svc", svc);
    skick_addr_t a = skick_tk_spawn(tk, "svc", NULL, NULL);
    skick_addr_t b = skick_tk_spawn(tk, "svc", NULL, NULL);
    char out[64];
    cr_assert_str_eq(lookup(tk, b.str, "adder", SKICK_MIXED, out), "");
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"register\",\"name\":\"adder\"}");
    skick_tk_run(tk);
    cr_assert_str_eq(lookup(tk, b.str, "adder", SKICK_LOCAL, out), a.str);
    cr_assert_str_eq(lookup(tk, b.str, "adder", SKICK_MIXED, out), a.str);
    cr_assert_str_eq(lookup(tk, b.str, "adder", SKICK_REMOTE, out), "", "no cluster: no remote");
    skick_tk_stop(tk, a.str);
    skick_tk_run(tk);
    cr_assert_str_eq(lookup(tk, b.str, "adder", SKICK_LOCAL, out), "",
                     "a dead provider leaves the registry (seed B9)");
    skick_tk_send(tk, NULL, b.str, "{\"action\":\"register\",\"name\":\"x\"}");
    skick_tk_send(tk, NULL, b.str, "{\"action\":\"leave\"}");
    skick_tk_run(tk);
    cr_assert_str_eq(lookup(tk, b.str, "x", SKICK_LOCAL, out), "");
    skick_tk_destroy(&tk);
}

/* ---- hashes and timers -------------------------------------------------------- */

static void hash_work(skick_actor_t *self, json_object *msg)
{
    bool present = true;
    cr_assert_null(skick_hash_get(self, "t", "k"));
    cr_assert_eq(skick_errno(), SKICK_ENOTFOUND);
    cr_assert_eq(skick_hash_contains(self, "t", "k", &present), 0);
    cr_assert_not(present);
    json_object *v = skick_json("{\"n\": 1}");
    cr_assert_eq(skick_hash_set(self, "t", "k", &v), 0);
    cr_assert_null(v, "set takes the value");
    json_object *got = skick_hash_get(self, "t", "k");
    cr_assert_eq(skick_get_int(got, "n", 0), 1);
    json_object_object_add(got, "n", json_object_new_int(2)); /* a private copy */
    json_object_put(got);
    got = skick_hash_get(self, "t", "k");
    cr_assert_eq(skick_get_int(got, "n", 0), 1);
    json_object_put(got);
    cr_assert_eq(skick_hash_contains(self, "t", "k", &present), 0);
    cr_assert(present);
    cr_assert_eq(skick_hash_delete(self, "t", "k"), 0);
    cr_assert_eq(skick_hash_delete(self, "t", "k"), -1);
    cr_assert_eq(skick_errno(), SKICK_ENOTFOUND);
    v = json_object_new_int(1);
    cr_assert_eq(skick_hash_set(self, "bad table!", "k", &v), -1);
    cr_assert_eq(skick_errno(), SKICK_EINVAL);
    cr_assert_eq(skick_hash_set(self, "t", "", &v), -1);
    EV(12)++;
}
static void tick(skick_actor_t *self, json_object *msg) { EV(13)++; }
static void timers_go(skick_actor_t *self, json_object *msg)
{
    json_object *m = skick_json("{\"action\": \"tick\"}");
    skick_after(self, 100, &m);
    m = skick_json("{\"action\": \"tick\"}");
    uint64_t id = skick_after(self, 200, &m);
    cr_assert_eq(skick_cancel(self, id), 0);
    cr_assert_eq(skick_cancel(self, id), -1);
}
static void misc(skick_actor_t *self, json_object *init)
{
    skick_action(self, "hash", NULL, hash_work);
    skick_action(self, "tick", NULL, tick);
    skick_action(self, "timers", NULL, timers_go);
}

Test(lifecycle, hashes_and_timers)
{
    memset(g_events, 0, sizeof g_events);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "misc", misc);
    skick_addr_t a = skick_tk_spawn(tk, "misc", NULL, NULL);
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"hash\"}");
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"timers\"}");
    skick_tk_run(tk);
    cr_assert_eq(EV(12), 1);
    skick_tk_advance(tk, 99);
    cr_assert_eq(EV(13), 0);
    skick_tk_advance(tk, 1);
    cr_assert_eq(EV(13), 1);
    skick_tk_advance(tk, 1000);
    cr_assert_eq(EV(13), 1, "the cancelled timer never fired");
    skick_tk_destroy(&tk);
}

/* ---- the shard's hooks ------------------------------------------------------------ */

static void shard_start(skick_actor_t *shard)
{
    json_object *init = NULL;
    skick_addr_t a = skick_spawn(shard, "misc", &init, SKICK_LOCAL);
    skick_register_service(shard, "shard-service");
    EV(14) = a.str[0] != 0;
}
static void shard_stop(skick_actor_t *shard) { EV(15)++; }
static void hooks_app(skick_app_t *app)
{
    skick_actor(app, "misc", misc);
    skick_app_on_start(app, shard_start);
    skick_app_on_stop(app, shard_stop);
}

Test(lifecycle, shard_hooks_run)
{
    memset(g_events, 0, sizeof g_events);
    skick_tk_t *tk = skick_tk_new(hooks_app);
    skick_tk_run(tk);
    cr_assert_eq(EV(14), 1, "on_start spawned an actor");
    cr_assert_eq(skick_tk_stat(tk, "live"), 2);
    skick_tk_destroy(&tk);
    cr_assert_eq(EV(15), 1, "on_stop ran at shutdown");
}
