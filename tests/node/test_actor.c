/*  test_actor - actors: spawn, actions, schemas, state, stop, fail, monitors, done

    Runs on the test kit (virtual time, one thread). The first test is the
    plain usage example.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "skick/testkit.h"

/* An accumulator with a schema'd action and a call-style getter. */
typedef struct {
    int64_t tally;
    int stops;
} tally_t;

static int g_on_stop_runs;

static void acc_add(skick_actor_t *self, json_object *msg)
{
    tally_t *t = skick_state(self);
    t->tally += skick_get_int(msg, "number", 0);
}

static void acc_get(skick_actor_t *self, json_object *msg)
{
    tally_t *t = skick_state(self);
    json_object *r = skick_json("{\"tally\": %lld}", (long long) t->tally);
    skick_reply(self, msg, &r);
}

static void acc_double(skick_actor_t *self, json_object *msg)
{
    json_object *r = skick_json("{\"doubled\": %lld}",
                                (long long) (2 * skick_get_int(msg, "number", 0)));
    skick_reply(self, msg, &r);
}

static void acc_fail(skick_actor_t *self, json_object *msg)
{
    skick_fail(self, "asked to fail: %s", skick_get_string(msg, "why", "?"));
}

static void acc_stop(skick_actor_t *self)
{
    g_on_stop_runs++;
}

static void accumulator(skick_actor_t *self, json_object *init)
{
    tally_t *t = skick_state_new(self, sizeof *t, NULL);
    t->tally = skick_get_int(init, "initial_tally", 0);
    skick_action(self, "add", "{\"number\": \"integer\"}", acc_add);
    skick_action(self, "get", NULL, acc_get);
    skick_action(self, "fail", NULL, acc_fail);
    skick_action(self, "double", "{\"number\": \"integer\"}", acc_double);
    skick_on_stop(self, acc_stop);
}

static void app(skick_app_t *a)
{
    skick_actor(a, "accumulator", accumulator);
}

Test(actor, usage_example)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", "{\"initial_tally\": 40}", NULL);
    cr_assert(acc.str[0], "spawn failed");
    cr_assert_eq(skick_tk_send(tk, NULL, acc.str, "{\"action\":\"add\",\"number\":2}"), 0);
    json_object *r = skick_tk_call(tk, acc.str, "{\"action\":\"get\"}", 1000);
    cr_assert_not_null(r, "call failed: %s", skick_strerror(skick_errno()));
    cr_assert_eq(skick_get_int(r, "tally", -1), 42);
    json_object_put(r);
    skick_tk_destroy(&tk);
}

Test(actor, unanswered_call_times_out_in_virtual_time)
{
    /* "add" answers nobody: the call ends with ETIMEDOUT once its timeout has
       passed on the virtual clock, which has moved on by exactly that much. */
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, NULL);
    skick_tk_run(tk);
    int64_t t0 = skick_tk_now(tk);
    json_object *r = skick_tk_call(tk, acc.str, "{\"action\":\"add\",\"number\":1}", 700);
    cr_assert_null(r);
    cr_assert_eq(skick_errno(), SKICK_ETIMEDOUT);
    cr_assert_eq(skick_tk_now(tk) - t0, 700, "virtual time moved %lld ms",
                 (long long) (skick_tk_now(tk) - t0));
    skick_tk_destroy(&tk);
}

Test(actor, schema_failure_is_counted_and_not_delivered)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, NULL);
    skick_tk_send(tk, NULL, acc.str, "{\"action\":\"add\",\"number\":1.5}");
    skick_tk_send(tk, NULL, acc.str, "{\"action\":\"add\",\"number\":\"7\"}");
    skick_tk_send(tk, NULL, acc.str, "{\"action\":\"add\",\"number\":3,\"extra\":1}");
    skick_tk_send(tk, NULL, acc.str, "{\"action\":\"add\",\"number\":5}");
    skick_tk_run(tk);
    cr_assert_eq(skick_tk_stat(tk, "schema_failures"), 3);
    json_object *r = skick_tk_call(tk, acc.str, "{\"action\":\"get\"}", 1000);
    cr_assert_eq(skick_get_int(r, "tally", -1), 5, "only the valid message counts");
    json_object_put(r);
    skick_tk_destroy(&tk);
}

Test(actor, schema_failure_answers_a_caller)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, NULL);
    json_object *r = skick_tk_call(tk, acc.str, "{\"action\":\"add\",\"number\":\"x\"}", 1000);
    cr_assert_null(r);
    cr_assert_eq(skick_errno(), SKICK_ESCHEMA, "got %s", skick_err_name(skick_errno()));
    skick_tk_destroy(&tk);
}

Test(actor, unknown_and_malformed_actions)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, NULL);
    skick_tk_send(tk, NULL, acc.str, "{\"action\":\"nope\"}");
    skick_tk_send(tk, NULL, acc.str, "{\"no_action\":1}");
    skick_tk_send(tk, NULL, acc.str, "{\"action\":5}");
    cr_assert_eq(skick_tk_send(tk, NULL, acc.str, "[1,2]"), -1, "arrays are refused");
    cr_assert_eq(skick_errno(), SKICK_EINVAL);
    cr_assert_eq(skick_tk_send(tk, NULL, acc.str, "{not json"), -1);
    skick_tk_run(tk);
    cr_assert_eq(skick_tk_stat(tk, "unknown_actions"), 3);
    json_object *r = skick_tk_call(tk, acc.str, "{\"action\":\"nope\"}", 1000);
    cr_assert_null(r);
    cr_assert_eq(skick_errno(), SKICK_EACTION);
    cr_assert(skick_tk_alive(tk, acc.str), "bad input does not kill the actor");
    skick_tk_destroy(&tk);
}

Test(actor, dead_address_is_an_error)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, NULL);
    skick_tk_stop(tk, acc.str);
    skick_tk_run(tk);
    cr_assert_not(skick_tk_alive(tk, acc.str));
    cr_assert_eq(skick_tk_send(tk, NULL, acc.str, "{\"action\":\"add\",\"number\":1}"), -1);
    cr_assert_eq(skick_errno(), SKICK_EDEAD);
    cr_assert_eq(skick_tk_send(tk, NULL, "not-an-address", "{\"action\":\"x\"}"), -1);
    cr_assert_eq(skick_errno(), SKICK_EINVAL);
    json_object *r = skick_tk_call(tk, acc.str, "{\"action\":\"get\"}", 1000);
    cr_assert_null(r);
    cr_assert_eq(skick_errno(), SKICK_EDEAD, "got %s", skick_err_name(skick_errno()));
    cr_assert_geq(skick_tk_stat(tk, "dead_letters"), 2);
    skick_tk_destroy(&tk);
}

Test(actor, stop_sends_cancellation_sentinel_after_on_stop)
{
    g_on_stop_runs = 0;
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t probe = skick_tk_probe(tk);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, probe.str);
    skick_tk_run(tk);
    skick_tk_stop(tk, acc.str);
    json_object *s = skick_tk_recv(tk, probe.str);
    cr_assert_not_null(s);
    cr_assert_str_eq(skick_get_string(s, "action", ""), "sentinel");
    cr_assert_str_eq(skick_get_string(s, "type", ""), "cancellation");
    cr_assert_str_eq(skick_get_string(s, "address", ""), acc.str);
    cr_assert_str_eq(skick_get_string(s, "tag", ""), "main_task");
    cr_assert_eq(g_on_stop_runs, 1);
    json_object_put(s);
    skick_tk_destroy(&tk);
}

Test(actor, fail_sends_exception_sentinel_with_reason)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t probe = skick_tk_probe(tk);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, probe.str);
    skick_tk_send(tk, NULL, acc.str, "{\"action\":\"fail\",\"why\":\"test\"}");
    skick_tk_send(tk, NULL, acc.str, "{\"action\":\"add\",\"number\":1}");
    json_object *s = skick_tk_recv(tk, probe.str);
    cr_assert_not_null(s);
    cr_assert_str_eq(skick_get_string(s, "type", ""), "exception");
    cr_assert_str_eq(skick_get_string(s, "exception", ""), "asked to fail: test");
    cr_assert_not(skick_tk_alive(tk, acc.str));
    cr_assert_eq(skick_tk_stat(tk, "failed"), 1);
    cr_assert_geq(skick_tk_stat(tk, "dead_letters"), 1, "the queued add is counted");
    json_object_put(s);
    skick_tk_destroy(&tk);
}

Test(actor, done_only_from_spawner_shard_or_self)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t probe = skick_tk_probe(tk);
    skick_addr_t stranger = skick_tk_probe(tk);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, probe.str);
    skick_tk_run(tk);
    cr_assert_eq(skick_tk_send(tk, stranger.str, acc.str, "{\"action\":\"done\"}"), -1);
    cr_assert_eq(skick_errno(), SKICK_ERESERVED);
    cr_assert_eq(skick_tk_send(tk, NULL, acc.str, "{\"action\":\"done\"}"), -1);
    skick_tk_run(tk);
    cr_assert(skick_tk_alive(tk, acc.str), "a stranger cannot kill the actor");
    skick_addr_t shard = skick_tk_shard(tk);
    cr_assert_eq(skick_tk_send(tk, shard.str, acc.str, "{\"action\":\"done\"}"), 0);
    json_object *s = skick_tk_recv(tk, probe.str);
    cr_assert_str_eq(skick_get_string(s, "type", ""), "done");
    json_object_put(s);
    skick_tk_destroy(&tk);
}

Test(actor, monitor_request_adds_a_monitor)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t probe = skick_tk_probe(tk);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, NULL);
    char req[128];
    snprintf(req, sizeof req, "{\"action\":\"monitor\",\"address\":\"%s\"}", probe.str);
    cr_assert_eq(skick_tk_send(tk, NULL, acc.str, req), 0);
    cr_assert_eq(skick_tk_send(tk, NULL, acc.str, "{\"action\":\"monitor\"}"), -1,
                 "a monitor request without an address is an error");
    skick_tk_send(tk, NULL, acc.str, "{\"action\":\"fail\"}");
    json_object *s = skick_tk_recv(tk, probe.str);
    cr_assert_not_null(s);
    cr_assert_str_eq(skick_get_string(s, "type", ""), "exception");
    json_object_put(s);
    skick_tk_destroy(&tk);
}

Test(actor, full_mailbox_refuses_but_keeps_control)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_tk_config(tk, 4, 0);
    skick_addr_t probe = skick_tk_probe(tk);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, probe.str);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(skick_tk_send(tk, NULL, acc.str, "{\"action\":\"add\",\"number\":1}"), 0);
    cr_assert_eq(skick_tk_send(tk, NULL, acc.str, "{\"action\":\"add\",\"number\":1}"), -1);
    cr_assert_eq(skick_errno(), SKICK_EFULL);
    cr_assert_eq(skick_tk_stat(tk, "refused_full"), 1);
    char req[128];
    snprintf(req, sizeof req, "{\"action\":\"sentinel\",\"type\":\"done\",\"address\":\"%s\"}",
             probe.str);
    cr_assert_eq(skick_tk_send(tk, NULL, acc.str, req), 0, "sentinels are never refused");
    skick_tk_run(tk);
    json_object *r = skick_tk_call(tk, acc.str, "{\"action\":\"get\"}", 1000);
    cr_assert_eq(skick_get_int(r, "tally", -1), 4);
    json_object_put(r);
    skick_tk_destroy(&tk);
}

static void bad_factory(skick_actor_t *self, json_object *init)
{
    cr_expect_eq(skick_action(self, "monitor", NULL, acc_add), -1);
    cr_expect_eq(skick_errno(), SKICK_ERESERVED);
    cr_expect_eq(skick_action(self, "done", NULL, acc_add), -1);
    cr_expect_eq(skick_action(self, "x", "{\"number\": \"integr\"}", acc_add), -1,
                 "a bad schema is refused at registration");
    skick_action(self, "get", NULL, acc_get);
    skick_state_new(self, sizeof(tally_t), NULL);
}

Test(actor, reserved_names_cannot_be_registered)
{
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "bad", bad_factory);
    skick_addr_t a = skick_tk_spawn(tk, "bad", NULL, NULL);
    json_object *r = skick_tk_call(tk, a.str, "{\"action\":\"get\"}", 1000);
    cr_assert_not_null(r, "the actor still works");
    json_object_put(r);
    skick_tk_destroy(&tk);
}

Test(actor, unknown_type_and_bad_init)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t a = skick_tk_spawn(tk, "nope", NULL, NULL);
    cr_assert_eq(a.str[0], '\0');
    cr_assert_eq(skick_errno(), SKICK_ENOTYPE);
    a = skick_tk_spawn(tk, "accumulator", "[1]", NULL);
    cr_assert_eq(a.str[0], '\0');
    cr_assert_eq(skick_errno(), SKICK_EINVAL);
    skick_tk_destroy(&tk);
}

Test(actor, many_actors_share_one_behaviour)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t first = skick_tk_spawn(tk, "accumulator", NULL, NULL);
    for (int i = 0; i < 999; i++)
        skick_tk_spawn(tk, "accumulator", NULL, NULL);
    skick_tk_run(tk);
    cr_assert_eq(skick_tk_stat(tk, "live"), 1001); /* + the shard actor */
    json_object *r = skick_tk_call(tk, first.str, "{\"action\":\"get\"}", 1000);
    cr_assert_not_null(r);
    json_object_put(r);
    skick_tk_destroy(&tk);
}

Test(actor, shorthand_schema_actions_can_be_called)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_addr_t acc = skick_tk_spawn(tk, "accumulator", NULL, NULL);
    json_object *r = skick_tk_call(tk, acc.str, "{\"action\":\"double\",\"number\":21}", 1000);
    cr_assert_not_null(r, "the runtime's cid and sender pass the shorthand: %s",
                       skick_err_name(skick_errno()));
    cr_assert_eq(skick_get_int(r, "doubled", 0), 42);
    json_object_put(r);
    r = skick_tk_call(tk, acc.str, "{\"action\":\"double\",\"number\":21,\"x\":1}", 1000);
    cr_assert_null(r, "other extra keys are still refused");
    cr_assert_eq(skick_errno(), SKICK_ESCHEMA);
    skick_tk_destroy(&tk);
}

static int g_spawn_err;
static void spawn_in_stop(skick_actor_t *self)
{
    skick_addr_t a = skick_spawn(self, "accumulator", NULL, SKICK_LOCAL);
    g_spawn_err = a.str[0] ? 0 : skick_errno();
}
static void spawner_at_stop(skick_actor_t *self, json_object *init)
{
    skick_on_stop(self, spawn_in_stop);
}

Test(actor, no_spawning_while_stopping)
{
    g_spawn_err = -1;
    skick_tk_t *tk = skick_tk_new(app);
    skick_tk_actor(tk, "s", spawner_at_stop);
    skick_addr_t a = skick_tk_spawn(tk, "s", NULL, NULL);
    skick_tk_run(tk);
    skick_tk_stop(tk, a.str);
    skick_tk_run(tk);
    cr_assert_eq(g_spawn_err, SKICK_ESTOPPED);
    cr_assert_eq(skick_tk_stat(tk, "live"), 1, "only the shard actor is left");
    skick_tk_destroy(&tk);
}
