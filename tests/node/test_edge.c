/*  test_edge - the unhappy paths: failures during start, stuck on_stop,
    partners vanishing mid-conversation, stale frames, replace with open
    conversations, tasks.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "skick/testkit.h"

static int g_ev[8];

static void fail_on_start(skick_actor_t *self) { skick_fail(self, "cannot start"); }
static void never(skick_actor_t *self, json_object *msg) { g_ev[0]++; }
static void bad_start(skick_actor_t *self, json_object *init)
{
    skick_on_start(self, fail_on_start);
    skick_action(self, "x", NULL, never);
}
static void bad_factory(skick_actor_t *self, json_object *init)
{
    skick_action(self, "x", NULL, never);
    skick_fail(self, "bad init: %s", skick_get_string(init, "why", "?"));
}

Test(edge, failing_on_start_leaves_no_zombie)
{
    memset(g_ev, 0, sizeof g_ev);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "bad", bad_start);
    skick_addr_t p = skick_tk_probe(tk);
    skick_addr_t a = skick_tk_spawn(tk, "bad", NULL, p.str);
    skick_tk_send(tk, NULL, a.str, "{\"action\":\"x\"}");
    json_object *s = skick_tk_recv(tk, p.str);
    cr_assert_not_null(s);
    cr_assert_str_eq(skick_get_string(s, "type", ""), "exception");
    cr_assert_str_eq(skick_get_string(s, "exception", ""), "cannot start");
    cr_assert_not(skick_tk_alive(tk, a.str));
    cr_assert_eq(g_ev[0], 0, "no message is handled after a failed start");
    cr_assert_eq(skick_tk_stat(tk, "live"), 2, "only the shard and the probe remain");
    json_object_put(s);
    skick_tk_destroy(&tk);
}

Test(edge, failing_factory)
{
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "bad", bad_factory);
    skick_addr_t p = skick_tk_probe(tk);
    skick_tk_spawn(tk, "bad", "{\"why\":\"missing key\"}", p.str);
    json_object *s = skick_tk_recv(tk, p.str);
    cr_assert_not_null(s);
    cr_assert_str_eq(skick_get_string(s, "exception", ""), "bad init: missing key");
    json_object_put(s);
    skick_tk_destroy(&tk);
}

/* on_stop that would wait forever is cut off by the stop timeout */
static void stuck_stop(skick_actor_t *self)
{
    g_ev[1]++;
    if (skick_sleep(self, 1000000) != 0)
        g_ev[2]++; /* woken by the stop timeout */
}
static void stuck(skick_actor_t *self, json_object *init) { skick_on_stop(self, stuck_stop); }

Test(edge, stuck_on_stop_is_bounded)
{
    memset(g_ev, 0, sizeof g_ev);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "stuck", stuck);
    skick_addr_t p = skick_tk_probe(tk);
    skick_addr_t a = skick_tk_spawn(tk, "stuck", NULL, p.str);
    skick_tk_run(tk);
    skick_tk_stop(tk, a.str);
    skick_tk_run(tk);
    cr_assert_eq(g_ev[1], 1);
    cr_assert_eq(skick_tk_pending(tk, p.str), 0, "still in on_stop");
    skick_tk_advance(tk, 5000); /* the default stop timeout */
    cr_assert_eq(g_ev[2], 1, "the sleep was cancelled");
    json_object *s = skick_tk_recv(tk, p.str);
    cr_assert_not_null(s, "and the actor finished stopping");
    json_object_put(s);
    skick_tk_destroy(&tk);
}

/* a responder in a multi-turn conversation whose caller vanishes */
static void patient(skick_actor_t *self, json_object *msg)
{
    skick_conv_t *c = skick_respond(self, msg);
    json_object *q = skick_json("{\"question\": 1}");
    json_object *a = skick_conv_ask(c, &q, 60000);
    g_ev[3] = a ? -1 : skick_errno();
    json_object_put(a);
    skick_conv_close(&c);
}
static void responder(skick_actor_t *self, json_object *init)
{
    skick_conversation(self, "talk", NULL, patient);
}
static void impatient_go(skick_actor_t *self, json_object *msg)
{
    json_object *g = skick_json("{\"action\": \"talk\"}");
    skick_conv_t *c = skick_converse(self, skick_get_string(msg, "to", ""), &g);
    json_object *first = skick_conv_recv(c, 1000);
    json_object_put(first);
    skick_fail(self, "leaving mid-conversation");
}
static void impatient(skick_actor_t *self, json_object *init)
{
    skick_action(self, "go", NULL, impatient_go);
}

Test(edge, caller_failing_mid_conversation_releases_the_responder)
{
    memset(g_ev, 0, sizeof g_ev);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "responder", responder);
    skick_tk_actor(tk, "impatient", impatient);
    skick_addr_t r = skick_tk_spawn(tk, "responder", NULL, NULL);
    skick_addr_t c = skick_tk_spawn(tk, "impatient", NULL, NULL);
    char m[128];
    snprintf(m, sizeof m, "{\"action\":\"go\",\"to\":\"%s\"}", r.str);
    skick_tk_send(tk, NULL, c.str, m);
    skick_tk_run(tk);
    cr_assert_eq(g_ev[3], SKICK_EPARTNER, "the responder learnt at once, got %s",
                 skick_err_name(g_ev[3]));
    cr_assert_lt(skick_tk_now(tk), 60000);
    skick_tk_destroy(&tk);
}

/* replace with an open conversation tells the partner */
static void holder_go(skick_actor_t *self, json_object *msg)
{
    json_object *g = skick_json("{\"action\": \"talk\"}");
    skick_conv_t *c = skick_converse(self, skick_get_string(msg, "to", ""), &g);
    (void) c; /* kept open on purpose: the replace must end it */
    json_object *init = NULL;
    skick_replace_with(self, responder, &init);
}
static void holder(skick_actor_t *self, json_object *init)
{
    skick_action(self, "go", NULL, holder_go);
}

Test(edge, replace_ends_open_conversations)
{
    memset(g_ev, 0, sizeof g_ev);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "responder", responder);
    skick_tk_actor(tk, "holder", holder);
    skick_addr_t r = skick_tk_spawn(tk, "responder", NULL, NULL);
    skick_addr_t h = skick_tk_spawn(tk, "holder", NULL, NULL);
    char m[128];
    snprintf(m, sizeof m, "{\"action\":\"go\",\"to\":\"%s\"}", r.str);
    skick_tk_send(tk, NULL, h.str, m);
    skick_tk_run(tk);
    cr_assert_eq(g_ev[3], SKICK_ECLOSED, "got %s", skick_err_name(g_ev[3]));
    cr_assert(skick_tk_alive(tk, h.str));
    skick_tk_destroy(&tk);
}

Test(edge, stale_and_forged_frames_are_counted)
{
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "responder", responder);
    skick_addr_t r = skick_tk_spawn(tk, "responder", NULL, NULL);
    skick_tk_send(tk, NULL, r.str,
                  "{\"action\":\"receive_reply\",\"cid\":\"00000000000000000000000000000000\","
                  "\"message\":1}");
    skick_tk_send(tk, NULL, r.str, "{\"action\":\"end_conversation\",\"cid\":7}");
    skick_tk_send(tk, NULL, r.str, "{\"action\":\"receive_reply\"}");
    skick_tk_run(tk);
    cr_assert_eq(skick_tk_stat(tk, "stale_replies"), 3);
    cr_assert(skick_tk_alive(tk, r.str));
    /* A respond on a message that is not an opener is an error, not a crash. */
    skick_tk_send(tk, NULL, r.str, "{\"action\":\"talk\"}");
    skick_tk_run(tk);
    cr_assert(skick_tk_alive(tk, r.str));
    skick_tk_destroy(&tk);
}

/* skick_spawn_task: a local conversation coroutine alongside the mailbox */
static void task_body(skick_actor_t *self, json_object *msg)
{
    skick_sleep(self, skick_get_int(msg, "ms", 0));
    g_ev[4] += (int) skick_get_int(msg, "add", 0);
}
static void tasker_go(skick_actor_t *self, json_object *msg)
{
    json_object *m = skick_json("{\"ms\": 100, \"add\": 1}");
    cr_assert_eq(skick_spawn_task(self, task_body, &m), 0);
    cr_assert_null(m);
    m = skick_json("{\"ms\": 50, \"add\": 10}");
    skick_spawn_task(self, task_body, &m);
}
static void tasker(skick_actor_t *self, json_object *init)
{
    skick_action(self, "go", NULL, tasker_go);
}

Test(edge, spawned_tasks_run_concurrently)
{
    memset(g_ev, 0, sizeof g_ev);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "tasker", tasker);
    skick_addr_t t = skick_tk_spawn(tk, "tasker", NULL, NULL);
    skick_tk_send(tk, NULL, t.str, "{\"action\":\"go\"}");
    skick_tk_advance(tk, 50);
    cr_assert_eq(g_ev[4], 10);
    skick_tk_advance(tk, 50);
    cr_assert_eq(g_ev[4], 11);
    skick_tk_destroy(&tk);
}
