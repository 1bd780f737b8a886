/*  test_conv - conversations: call, multi-turn converse/respond, timeouts,
    partners that stop, fail or never answer, conversation tasks, sleep.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "skick/testkit.h"

/* ---- the responder: adds to a tally, answers calls ---------------------- */

static void adder_add(skick_actor_t *self, json_object *msg)
{
    int64_t *tally = skick_state(self);
    *tally += skick_get_int(msg, "number", 0);
    json_object *r = skick_json("{\"tally\": %lld}", (long long) *tally);
    skick_reply(self, msg, &r);
}

/* multi-turn: responds, then asks back for a second number */
static void adder_twice(skick_actor_t *self, json_object *msg)
{
    skick_conv_t *c = skick_respond(self, msg);
    cr_assert_not_null(c);
    int64_t a = skick_get_int(msg, "number", 0);
    json_object *q = skick_json("{\"want\": \"second\"}");
    json_object *second = skick_conv_ask(c, &q, 1000);
    if (!second) {
        skick_conv_close(&c);
        return;
    }
    json_object *r = skick_json("{\"sum\": %lld}", (long long) (a + skick_get_int(second, "number", 0)));
    json_object_put(second);
    skick_conv_send(c, &r);
    skick_conv_close(&c);
}

static void adder_silent(skick_actor_t *self, json_object *msg) { /* never answers */ }

static void adder_slow(skick_actor_t *self, json_object *msg)
{
    if (skick_sleep(self, skick_get_int(msg, "ms", 100)) != 0)
        return; /* stopping: no answer (the runtime tells the caller) */
    json_object *r = skick_json("{\"slept\": true}");
    skick_reply(self, msg, &r);
}

static void adder_die(skick_actor_t *self, json_object *msg)
{
    skick_fail(self, "boom");
}

static void adder(skick_actor_t *self, json_object *init)
{
    skick_state_new(self, sizeof(int64_t), NULL);
    skick_action(self, "add", "{\"number\": \"integer\", \"ms?\": \"integer\", \"sender\": \"string\", \"cid\": \"string\"}", adder_add);
    skick_action(self, "twice", NULL, adder_twice);
    skick_action(self, "silent", NULL, adder_silent);
    skick_action(self, "slow", NULL, adder_slow);
    skick_action(self, "die", NULL, adder_die);
}

/* ---- the caller: calls from inside a handler ----------------------------- */

static void caller_go(skick_actor_t *self, json_object *msg)
{
    const char *to = skick_get_string(msg, "to", "");
    const char *what = skick_get_string(msg, "what", "add");
    json_object *q = skick_json("{\"action\": \"%s\", \"number\": 10, \"ms\": %lld}", what,
                                (long long) skick_get_int(msg, "ms", 0));
    json_object *r = skick_call(self, to, &q, skick_get_int(msg, "timeout", 1000));
    json_object *out;
    if (r) {
        out = json_object_new_object();
        json_object_object_add(out, "ok", r);
    } else {
        out = skick_json("{\"error\": \"%s\"}", skick_err_name(skick_errno()));
    }
    skick_reply(self, msg, &out);
}

static void caller_two_turns(skick_actor_t *self, json_object *msg)
{
    const char *to = skick_get_string(msg, "to", "");
    json_object *q = skick_json("{\"action\": \"twice\", \"number\": 5}");
    skick_conv_t *c = skick_converse(self, to, &q);
    json_object *ask = skick_conv_recv(c, 1000);
    cr_assert_not_null(ask);
    cr_assert_str_eq(skick_get_string(ask, "want", ""), "second");
    json_object_put(ask);
    json_object *n = skick_json("{\"number\": 7}");
    json_object *sum = skick_conv_ask(c, &n, 1000);
    cr_assert_not_null(sum);
    json_object *again = skick_conv_recv(c, 1000);
    cr_assert_null(again, "the partner closed");
    cr_assert_eq(skick_errno(), SKICK_ECLOSED);
    skick_conv_close(&c);
    skick_reply(self, msg, &sum);
}

static int g_pings;
static void caller_ping(skick_actor_t *self, json_object *msg) { g_pings++; }

static void caller(skick_actor_t *self, json_object *init)
{
    skick_action(self, "go", NULL, caller_go);
    skick_action(self, "two_turns", NULL, caller_two_turns);
    skick_action(self, "ping", NULL, caller_ping);
}

static void app(skick_app_t *a)
{
    skick_actor(a, "adder", adder);
    skick_actor(a, "caller", caller);
}

/* Fixture of the "conv" suite: a test kit with one adder and one caller. */
static skick_tk_t *g_tk;
static skick_addr_t A, C;

static void pair_setup(void)
{
    g_tk = skick_tk_new(app);
    A = skick_tk_spawn(g_tk, "adder", NULL, NULL);
    C = skick_tk_spawn(g_tk, "caller", NULL, NULL);
}

static void pair_teardown(void)
{
    skick_tk_destroy(&g_tk);
}

TestSuite(conv, .init = pair_setup, .fini = pair_teardown);

static json_object *go(skick_tk_t *kit, const char *caller_addr, const char *to, const char *what,
                       int ms, int timeout)
{
    char req[256];
    snprintf(req, sizeof req,
             "{\"action\":\"go\",\"to\":\"%s\",\"what\":\"%s\",\"ms\":%d,\"timeout\":%d}", to,
             what, ms, timeout);
    return skick_tk_call(kit, caller_addr, req, 60000);
}

Test(conv, call_from_a_handler)
{
    skick_tk_t *tk = g_tk;
    skick_addr_t a = A, c = C;
    json_object *r = go(tk, c.str, a.str, "add", 0, 1000);
    cr_assert_not_null(r);
    cr_assert_eq(skick_get_int(json_object_object_get(r, "ok"), "tally", -1), 10);
    json_object_put(r);
    r = go(tk, c.str, a.str, "add", 0, 1000);
    cr_assert_eq(skick_get_int(json_object_object_get(r, "ok"), "tally", -1), 20);
    json_object_put(r);
}

Test(conv, multi_turn)
{
    skick_tk_t *tk = g_tk;
    skick_addr_t a = A, c = C;
    char req[128];
    snprintf(req, sizeof req, "{\"action\":\"two_turns\",\"to\":\"%s\"}", a.str);
    json_object *r = skick_tk_call(tk, c.str, req, 5000);
    cr_assert_not_null(r, "%s", skick_err_name(skick_errno()));
    cr_assert_eq(skick_get_int(r, "sum", -1), 12);
    json_object_put(r);
}

Test(conv, silent_partner_times_out)
{
    skick_tk_t *tk = g_tk;
    skick_addr_t a = A, c = C;
    int64_t t0 = skick_tk_now(tk);
    json_object *r = go(tk, c.str, a.str, "silent", 0, 250);
    cr_assert_str_eq(skick_get_string(r, "error", ""), "ETIMEDOUT");
    cr_assert_geq(skick_tk_now(tk) - t0, 250, "virtual time advanced to the timeout");
    json_object_put(r);
}

Test(conv, failing_partner_ends_the_wait)
{
    skick_tk_t *tk = g_tk;
    skick_addr_t a = A, c = C;
    int64_t t0 = skick_tk_now(tk);
    json_object *r = go(tk, c.str, a.str, "die", 0, 100000);
    cr_assert_str_eq(skick_get_string(r, "error", ""), "EPARTNER");
    cr_assert_lt(skick_tk_now(tk) - t0, 100000, "no waiting for the timeout");
    json_object_put(r);
}

Test(conv, dead_partner_fails_at_once)
{
    skick_tk_t *tk = g_tk;
    skick_addr_t a = A, c = C;
    skick_tk_stop(tk, a.str);
    skick_tk_run(tk);
    json_object *r = go(tk, c.str, a.str, "add", 0, 100000);
    cr_assert_str_eq(skick_get_string(r, "error", ""), "EDEAD");
    json_object_put(r);
}

Test(conv, partner_stopping_mid_call)
{
    skick_tk_t *tk = g_tk;
    skick_addr_t a = A, c = C;
    skick_addr_t p = skick_tk_probe(tk);
    char req[256];
    snprintf(req, sizeof req,
             "{\"action\":\"go\",\"to\":\"%s\",\"what\":\"slow\",\"ms\":5000,\"timeout\":60000,"
             "\"sender\":\"%s\",\"cid\":\"0123456789abcdef0123456789abcdef\"}", a.str, p.str);
    skick_tk_send(tk, p.str, c.str, req);
    skick_tk_advance(tk, 10); /* the adder sleeps, the caller waits */
    skick_tk_stop(tk, a.str);
    skick_tk_run(tk);
    json_object *frame = skick_tk_recv(tk, p.str);
    cr_assert_not_null(frame, "the caller answered without waiting for its timeout");
    json_object *m = json_object_object_get(frame, "message");
    cr_assert_str_eq(skick_get_string(m, "error", ""), "EPARTNER");
    cr_assert_lt(skick_tk_now(tk), 1000);
    json_object_put(frame);
}

Test(conv, blocked_handler_holds_the_mailbox_but_not_replies)
{
    g_pings = 0;
    skick_tk_t *tk = g_tk;
    skick_addr_t a = A, c = C;
    skick_addr_t p = skick_tk_probe(tk);
    char req[256];
    snprintf(req, sizeof req,
             "{\"action\":\"go\",\"to\":\"%s\",\"what\":\"slow\",\"ms\":100,\"timeout\":1000,"
             "\"sender\":\"%s\",\"cid\":\"0123456789abcdef0123456789abcdef\"}", a.str, p.str);
    skick_tk_send(tk, p.str, c.str, req);
    skick_tk_run(tk);
    skick_tk_send(tk, NULL, c.str, "{\"action\":\"ping\"}");
    skick_tk_run(tk);
    cr_assert_eq(g_pings, 0, "the caller is blocked in skick_call");
    skick_tk_advance(tk, 150);
    cr_assert_eq(g_pings, 1, "after the reply the queued message is handled");
    json_object *frame = skick_tk_recv(tk, p.str);
    cr_assert_not_null(frame);
    json_object *m = json_object_object_get(frame, "message");
    cr_assert(skick_get_bool(json_object_object_get(m, "ok"), "slept", false));
    json_object_put(frame);
}

/* ---- conversation actions run alongside the mailbox ---------------------- */

static int g_handled;
static void conc_wait(skick_actor_t *self, json_object *msg)
{
    skick_sleep(self, 1000);
    g_handled += 100;
}
static void conc_count(skick_actor_t *self, json_object *msg) { g_handled++; }
static void concurrent(skick_actor_t *self, json_object *init)
{
    skick_conversation(self, "wait", NULL, conc_wait);
    skick_action(self, "count", NULL, conc_count);
}

Test(conv_tasks, conversation_actions_do_not_block)
{
    g_handled = 0;
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "conc", concurrent);
    skick_addr_t a = skick_tk_spawn(tk, "conc", NULL, NULL);
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"wait\"}");
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"wait\"}");
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"count\"}");
    skick_tk_run(tk);
    cr_assert_eq(g_handled, 1, "count ran while both waits sleep");
    skick_tk_advance(tk, 1000);
    cr_assert_eq(g_handled, 201);
    skick_tk_destroy(&tk);
}

Test(conv_tasks, stop_wakes_sleepers_and_no_fiber_leaks)
{
    g_handled = 0;
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "conc", concurrent);
    skick_addr_t probe = skick_tk_probe(tk);
    skick_addr_t a = skick_tk_spawn(tk, "conc", NULL, probe.str);
    for (int i = 0; i < 50; i++)
        skick_tk_send(tk, NULL, a.str, "{\"action\":\"wait\"}");
    skick_tk_run(tk);
    skick_tk_stop(tk, a.str);
    json_object *s = skick_tk_recv(tk, probe.str);
    cr_assert_not_null(s, "the actor stopped without waiting for its sleepers' timers");
    cr_assert_str_eq(skick_get_string(s, "type", ""), "cancellation");
    cr_assert_lt(skick_tk_now(tk), 1000);
    json_object_put(s);
    cr_assert_leq(skick_tk_stat(tk, "fibers"), 40, "suspended fibers were released to the pool");
    skick_tk_destroy(&tk);
}

Test(conv_shard, ping_and_spawn_requests)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t shard = skick_tk_shard(tk);
    json_object *r = skick_tk_call(tk, shard.str, "{\"action\":\"ping\"}", 1000);
    cr_assert_str_eq(skick_get_string(r, "message", ""), "pong");
    json_object_put(r);
    /* The seed's B1: a spawn request without add_monitor crashed the shard. */
    r = skick_tk_call(tk, shard.str, "{\"action\":\"spawn\",\"type\":\"adder\"}", 1000);
    cr_assert_not_null(r);
    const char *addr = skick_get_string(r, "address", "");
    cr_assert(skick_tk_alive(tk, addr));
    json_object_put(r);
    r = skick_tk_call(tk, shard.str, "{\"action\":\"spawn\",\"type\":\"nope\"}", 1000);
    cr_assert_null(r);
    cr_assert_eq(skick_errno(), SKICK_ENOTYPE);
    r = skick_tk_call(tk, shard.str, "{\"action\":\"spawn\",\"type\":5}", 1000);
    cr_assert_null(r);
    cr_assert_eq(skick_errno(), SKICK_ESCHEMA);
    r = skick_tk_call(tk, shard.str, "{\"action\":\"ping\"}", 1000);
    cr_assert_not_null(r, "the shard survived bad requests");
    json_object_put(r);
    skick_tk_destroy(&tk);
}
