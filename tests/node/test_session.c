/*  test_session - websocket sessions through the test kit's fake clients:
    handshake, error objects, queries, replace, lifecycle and close codes,
    timeouts. The real server is exercised by tests/integration/test_ws.py.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skick/testkit.h"

static int g_stops;

static void s_hello_start(skick_actor_t *self)
{
    json_object *m = skick_json("{\"greeting\": \"hello\"}");
    skick_socksend(self, &m);
}

static void s_echo(skick_actor_t *self, json_object *msg)
{
    json_object *m = skick_json("{\"echo\": \"%s\"}", skick_get_string(msg, "text", ""));
    skick_socksend(self, &m);
}

static void s_fail(skick_actor_t *self, json_object *msg) { skick_fail(self, "asked to"); }
static void s_quit(skick_actor_t *self, json_object *msg) { skick_stop(self); }
static void s_on_stop(skick_actor_t *self) { g_stops++; }

static void s_ask(skick_actor_t *self, json_object *msg)
{
    json_object *q = skick_json("{\"q\": \"?\"}");
    json_object *a = skick_query(self, &q, skick_get_string(msg, "schema", "default"), 10000);
    json_object *out = json_object_new_object();
    if (a)
        json_object_object_add(out, "answer", a);
    else
        json_object_object_add(out, "error", json_object_new_string(skick_err_name(skick_errno())));
    skick_socksend(self, &out);
}

static void s_become(skick_actor_t *self, json_object *msg)
{
    json_object *init = skick_json("{}");
    skick_replace(self, "other", &init);
}

static void s_show_init(skick_actor_t *self, json_object *msg)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "init", json_object_get(*(json_object **) skick_state(self)));
    skick_socksend(self, &m);
}

static void s_keep_init(void *p) { json_object_put(*(json_object **) p); }

static void s_hello(skick_actor_t *self, json_object *init)
{
    json_object **keep = skick_state_new(self, sizeof *keep, s_keep_init);
    *keep = json_object_get(init);
    skick_on_start(self, s_hello_start);
    skick_on_stop(self, s_on_stop);
    skick_socket(self, "echo", "{\"text\": \"string\"}", s_echo);
    skick_socket(self, "fail", NULL, s_fail);
    skick_socket(self, "quit", NULL, s_quit);
    skick_socket(self, "ask", "{\"schema\": \"string\"}", s_ask);
    skick_socket(self, "become", NULL, s_become);
    skick_socket(self, "init", NULL, s_show_init);
    skick_query_schema(self, "small", "{\"type\": \"integer\", \"maximum\": 10}");
}

static void s_other_ping(skick_actor_t *self, json_object *msg)
{
    json_object *m = skick_json("{\"pong\": true}");
    skick_socksend(self, &m);
}

static void s_other(skick_actor_t *self, json_object *init)
{
    skick_socket(self, "ping", NULL, s_other_ping);
}

static void s_bad_start(skick_actor_t *self) { skick_fail(self, "cannot start"); }
static void s_broken(skick_actor_t *self, json_object *init) { skick_on_start(self, s_bad_start); }

static void app(skick_app_t *a)
{
    skick_session(a, "hello", s_hello);
    skick_subsession(a, "other", s_other);
    skick_session(a, "broken", s_broken);
    skick_session(a, "named", s_hello);
    skick_session_handshake_schema(a, "named", "{\"name\": \"string\"}");
}

/* helpers */

static json_object *s_recv(skick_tk_t *tk, uint64_t c)
{
    json_object *m = skick_tk_ws_recv_json(tk, c);
    cr_assert_not_null(m, "expected a frame from the server");
    return m;
}

static void s_expect(skick_tk_t *tk, uint64_t c, const char *key, const char *value)
{
    json_object *m = s_recv(tk, c);
    cr_assert_str_eq(skick_get_string(m, key, "(missing)"), value, "got %s",
                     json_object_to_json_string(m));
    json_object_put(m);
}

static uint64_t s_session(skick_tk_t *tk, const char *handshake)
{
    uint64_t c = skick_tk_ws_open(tk);
    cr_assert_eq(skick_tk_ws_send(tk, c, handshake), 0);
    return c;
}

static void s_closed_with(skick_tk_t *tk, uint64_t c, int code, const char *reason)
{
    int got = 0;
    const char *why = "";
    cr_assert(skick_tk_ws_closed(tk, c, &got, &why), "the server did not close");
    cr_assert_eq(got, code, "close code %d (%s)", got, why);
    cr_assert_str_eq(why, reason);
}

/* tests */

Test(session, hello_round_trip)
{
    skick_tk_t *tk = skick_tk_new(app);
    uint64_t c = s_session(tk, "{\"session_type\": \"hello\"}");
    s_expect(tk, c, "greeting", "hello");
    skick_tk_ws_send(tk, c, "{\"action\": \"echo\", \"text\": \"hi\"}");
    s_expect(tk, c, "echo", "hi");
    skick_tk_destroy(&tk);
}

Test(session, denied_handshakes)
{
    static const char *const bad[] = {"{\"session_type\": \"nope\"}", "[1]", "{bad",
                                      "{\"type\": \"hello\"}", "{\"session_type\": \"other\"}",
                                      "{\"session_type\": 5}"};
    skick_tk_t *tk = skick_tk_new(app);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t c = s_session(tk, bad[i]);
        char *t = skick_tk_ws_recv(tk, c);
        cr_assert_str_eq(t ? t : "(none)", "denied", "for %s", bad[i]);
        free(t);
        s_closed_with(tk, c, 1000, "session denied");
    }
    cr_assert_eq(skick_tk_stat(tk, "live"), 1, "no receptionist or session is left");
    skick_tk_destroy(&tk);
}

Test(session, the_five_error_objects_and_nothing_lost)
{
    static const char *const cases[][2] = {
        {"{bad", "invalid JSON"},
        {"{\"a\":1} x", "invalid JSON"},
        {"[1]", "Incorrect message format"},
        {"null", "Incorrect message format"},
        {"\"x\"", "Incorrect message format"},
        {"{\"x\": 1}", "No action requested"},
        {"{\"action\": \"\"}", "No action requested"},
        {"{\"action\": 0}", "No action requested"},
        {"{\"action\": []}", "No action requested"},
        {"{\"action\": \"nope\"}", "No schema present for action 'nope'"},
        {"{\"action\": 5}", "No schema present for action '5'"},
        {"{\"action\": [1]}", "No schema present for action '[1]'"},
        {"{\"action\": \"echo\"}", "not schema compliant"},
        {"{\"action\": \"echo\", \"text\": 1}", "not schema compliant"},
        {"{\"action\": \"echo\", \"text\": \"a\", \"x\": 1}", "not schema compliant"},
        {"{\"action\": \"echo\", \"text\": \"a\", \"cid\": \"0\", \"sender\": \"x\"}",
         "not schema compliant"},
    };
    skick_tk_t *tk = skick_tk_new(app);
    uint64_t c = s_session(tk, "{\"session_type\": \"hello\"}");
    s_expect(tk, c, "greeting", "hello");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        skick_tk_ws_send(tk, c, cases[i][0]);
        json_object *m = s_recv(tk, c);
        cr_assert_str_eq(skick_get_string(m, "action", ""), "error", "for %s", cases[i][0]);
        cr_assert_str_eq(skick_get_string(m, "type", ""), cases[i][1], "for %s", cases[i][0]);
        json_object_put(m);
    }
    char long_action[200];
    snprintf(long_action, sizeof long_action, "{\"action\": \"%0100d\"}", 7);
    skick_tk_ws_send(tk, c, long_action);
    json_object *m = s_recv(tk, c);
    cr_assert_leq(strlen(skick_get_string(m, "type", "")), strlen("No schema present for "
                                                                  "action ''") + 32);
    json_object_put(m);
    skick_tk_ws_send(tk, c, "{\"action\": \"echo\", \"text\": \"still here\"}");
    s_expect(tk, c, "echo", "still here");
    skick_tk_destroy(&tk);
}

Test(session, messages_before_the_schemas_wait_in_order)
{
    skick_tk_t *tk = skick_tk_new(app);
    uint64_t c = skick_tk_ws_open(tk);
    skick_tk_ws_send(tk, c, "{\"session_type\": \"hello\"}");
    skick_tk_ws_send(tk, c, "{\"action\": \"echo\", \"text\": \"1\"}");
    skick_tk_ws_send(tk, c, "{bad");
    skick_tk_ws_send(tk, c, "{\"action\": \"echo\", \"text\": \"2\"}");
    s_expect(tk, c, "greeting", "hello"); /* on_start's greeting comes first */
    /* Errors are answered by the front at once, so one may overtake the
       replies to earlier messages; replies keep their order. */
    s_expect(tk, c, "type", "invalid JSON");
    s_expect(tk, c, "echo", "1");
    s_expect(tk, c, "echo", "2");
    skick_tk_destroy(&tk);
}

Test(session, handshake_fields_are_filtered_or_checked)
{
    skick_tk_t *tk = skick_tk_new(app);
    uint64_t c = s_session(tk, "{\"session_type\": \"hello\", \"admin\": true}");
    s_expect(tk, c, "greeting", "hello");
    skick_tk_ws_send(tk, c, "{\"action\": \"init\"}");
    json_object *m = s_recv(tk, c);
    json_object *init = json_object_object_get(m, "init");
    cr_assert_eq(json_object_object_length(init), 1, "only session_type: %s",
                 json_object_to_json_string(init));
    json_object_put(m);
    uint64_t n = s_session(tk, "{\"session_type\": \"named\", \"name\": \"ada\"}");
    s_expect(tk, n, "greeting", "hello");
    skick_tk_ws_send(tk, n, "{\"action\": \"init\"}");
    m = s_recv(tk, n);
    cr_assert_str_eq(skick_get_string(json_object_object_get(m, "init"), "name", ""), "ada");
    json_object_put(m);
    uint64_t bad = s_session(tk, "{\"session_type\": \"named\", \"name\": 7}");
    char *t = skick_tk_ws_recv(tk, bad);
    cr_assert_str_eq(t ? t : "(none)", "denied");
    free(t);
    skick_tk_destroy(&tk);
}

Test(session, queries)
{
    static const char *const cases[][3] = {
        /* subschema, refused answer, accepted answer */
        {"default", "{\"a\": 1}", "\"yes\""}, {"str", "1", "\"s\""},
        {"int", "true", "3"},                 {"int", "1.0", "3"},
        {"float", "1", "1.5"},                {"bool", "1", "false"},
        {"list", "[[1]]", "[1, \"a\", true]"}, {"small", "11", "10"},
        {"unknown-name", "{}", "7"},
    };
    skick_tk_t *tk = skick_tk_new(app);
    uint64_t c = s_session(tk, "{\"session_type\": \"hello\"}");
    s_expect(tk, c, "greeting", "hello");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[300];
        snprintf(buf, sizeof buf, "{\"action\": \"ask\", \"schema\": \"%s\"}", cases[i][0]);
        skick_tk_ws_send(tk, c, buf);
        json_object *q = s_recv(tk, c);
        cr_assert_str_eq(skick_get_string(q, "action", ""), "SocketQuery");
        cr_assert_str_eq(skick_get_string(q, "schema", ""), cases[i][0]);
        char qid[40];
        snprintf(qid, sizeof qid, "%s", skick_get_string(q, "query_id", ""));
        json_object_put(q);
        snprintf(buf, sizeof buf,
                 "{\"action\": \"query_reply\", \"query_id\": \"%s\", \"message\": %s}", qid,
                 cases[i][1]);
        skick_tk_ws_send(tk, c, buf);
        json_object *inv = s_recv(tk, c);
        cr_assert_str_eq(skick_get_string(inv, "error", ""), "Invalid subschema");
        cr_assert_str_eq(skick_get_string(inv, "query_id", ""), qid);
        json_object_put(inv);
        snprintf(buf, sizeof buf,
                 "{\"action\": \"query_reply\", \"query_id\": \"%s\", \"message\": %s}", qid,
                 cases[i][2]);
        skick_tk_ws_send(tk, c, buf);
        json_object *a = s_recv(tk, c);
        cr_assert_not_null(json_object_object_get(a, "answer"), "%s: %s", cases[i][0],
                           json_object_to_json_string(a));
        json_object_put(a);
        skick_tk_ws_send(tk, c, buf); /* answering twice */
        s_expect(tk, c, "type", "unknown query");
    }
    skick_tk_ws_send(tk, c, "{\"action\": \"query_reply\", \"query_id\": \"x\", "
                            "\"message\": 1, \"more\": 2}");
    s_expect(tk, c, "type", "not schema compliant");
    skick_tk_destroy(&tk);
}

Test(session, replace_switches_schemas)
{
    skick_tk_t *tk = skick_tk_new(app);
    uint64_t c = s_session(tk, "{\"session_type\": \"hello\"}");
    s_expect(tk, c, "greeting", "hello");
    skick_tk_ws_send(tk, c, "{\"action\": \"become\"}");
    skick_tk_ws_send(tk, c, "{\"action\": \"echo\", \"text\": \"old\"}"); /* old schemas */
    skick_tk_run(tk);
    json_object *m = s_recv(tk, c);
    cr_assert_str_eq(skick_get_string(m, "type", ""), "No schema present for action 'echo'",
                     "a message checked by the old schemas never reaches the new behaviour");
    json_object_put(m);
    skick_tk_ws_send(tk, c, "{\"action\": \"ping\"}");
    m = s_recv(tk, c);
    cr_assert(skick_get_bool(m, "pong", false));
    json_object_put(m);
    skick_tk_destroy(&tk);
}

Test(session, close_codes_follow_the_session)
{
    g_stops = 0;
    skick_tk_t *tk = skick_tk_new(app);
    uint64_t a = s_session(tk, "{\"session_type\": \"hello\"}");
    uint64_t b = s_session(tk, "{\"session_type\": \"hello\"}");
    uint64_t d = s_session(tk, "{\"session_type\": \"broken\"}");
    skick_tk_run(tk);
    skick_tk_ws_send(tk, a, "{\"action\": \"quit\"}");
    s_closed_with(tk, a, 1000, "session ended");
    cr_assert_eq(g_stops, 1, "on_stop ran");
    skick_tk_ws_send(tk, b, "{\"action\": \"fail\"}");
    s_expect(tk, b, "greeting", "hello");
    s_expect(tk, b, "type", "session failed");
    s_closed_with(tk, b, 1011, "session failed");
    s_expect(tk, d, "type", "session failed");
    s_closed_with(tk, d, 1011, "session failed");
    cr_assert_eq(skick_tk_stat(tk, "live"), 1, "every pair is gone");
    skick_tk_destroy(&tk);
}

Test(session, client_going_away_stops_the_pair_mid_query)
{
    g_stops = 0;
    skick_tk_t *tk = skick_tk_new(app);
    uint64_t c = s_session(tk, "{\"session_type\": \"hello\"}");
    skick_tk_ws_send(tk, c, "{\"action\": \"ask\", \"schema\": \"int\"}");
    skick_tk_run(tk);
    cr_assert_eq(skick_tk_stat(tk, "live"), 3);
    skick_tk_ws_drop(tk, c);
    skick_tk_run(tk);
    cr_assert_eq(skick_tk_stat(tk, "live"), 1, "receptionist and session stopped");
    cr_assert_eq(g_stops, 1);
    cr_assert_lt(skick_tk_now(tk), 10000, "the waiting query did not hold the stop");
    skick_tk_destroy(&tk);
}

Test(session, handshake_and_idle_timeouts)
{
    skick_tk_t *tk = skick_tk_new(app);
    skick_tk_ws_timeouts(tk, 500, 2000);
    uint64_t silent = skick_tk_ws_open(tk);
    uint64_t c = s_session(tk, "{\"session_type\": \"hello\"}");
    skick_tk_advance(tk, 499);
    cr_assert_not(skick_tk_ws_closed(tk, silent, NULL, NULL));
    skick_tk_advance(tk, 1);
    s_closed_with(tk, silent, 1008, "handshake timeout");
    skick_tk_advance(tk, 1000);
    skick_tk_ws_send(tk, c, "{\"action\": \"echo\", \"text\": \"keep\"}"); /* activity */
    skick_tk_advance(tk, 1999);
    cr_assert_not(skick_tk_ws_closed(tk, c, NULL, NULL), "activity restarted the idle clock");
    skick_tk_advance(tk, 1);
    s_closed_with(tk, c, 1001, "idle timeout");
    skick_tk_destroy(&tk);
}

Test(session, shutdown_closes_with_1001)
{
    skick_tk_t *tk = skick_tk_new(app);
    uint64_t c = s_session(tk, "{\"session_type\": \"hello\"}");
    skick_tk_run(tk);
    skick_addr_t shard = skick_tk_shard(tk);
    cr_assert_eq(skick_tk_stop(tk, shard.str), 0);
    s_closed_with(tk, c, 1001, "server shutting down");
    skick_tk_destroy(&tk);
}
