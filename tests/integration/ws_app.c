/*  ws_app - the session types tests/integration/test_ws.py talks to

    Test-only. Every session that starts socksends {"ready": <type>, "init":
    <its init object>} first, so a client knows the session is up and can
    see exactly what the handshake passed on.

      echo      sockets: echo {"text"} -> {"echo": text}; count {"n": integer}
                -> {"count": n}; fail (skick_fail);
                quit (skick_stop); ask {"schema", "payload?"} -> one
                skick_query -> {"answer": v} or {"error": ERRNAME}; ask2 -> two
                queries open at once (two tasks) -> {"task": i, "answer": v}
                each; converse -> skick_call, skick_query, skick_call ->
                {"first", "answer", "second"}; become -> replaced by "other".
                Query subschema "small" = integer <= 10.
      other     (subsession) sockets: ping {"n": integer} -> {"pong": n}; quit.
      badstart  on_start fails.
      seq       handshake sequence: "seq" hands over to "seq:final" (echo).
      greet     echo with a handshake schema {"name": string, "age?": integer}.
      limited   echo with limits: 100 bytes per message, 5 messages/s, burst 5.
      slow      echo whose on_start sleeps 400 ms before the ready message.
      burst     sockets: flood {"n", "size"} -> n frames {"i": k, "pad": "x..."}
                at once (skick_socksend's results counted); report ->
                {"sent", "refused", "err", "queued", "limit", "queue_refused"};
                echo. The server's send queue settings apply.
      burst_refuse  burst with a 65536-byte send queue, SKICK_SEND_REFUSE.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skick/skick.h"

#define QUERY_TIMEOUT_MS 20000

/* ---- common ------------------------------------------------------------------- */

typedef struct {
    json_object *init;
    const char *name; /* the session type (skick_type says "anonymous") */
} sess_t;

static void s_sess_free(void *p)
{
    json_object_put(((sess_t *) p)->init);
}

static void s_ready(skick_actor_t *self)
{
    sess_t *s = skick_state(self);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "ready", json_object_new_string(s->name));
    json_object_object_add(m, "init", json_object_get(s->init));
    skick_socksend(self, &m);
}

/*  State holding the init object, and the ready message on start. */
static void s_keep_init(skick_actor_t *self, json_object *init, const char *name)
{
    sess_t *s = skick_state_new(self, sizeof *s, s_sess_free);
    s->name = name;
    s->init = init ? json_object_get(init) : json_object_new_object();
    skick_on_start(self, s_ready);
}

static void s_send_value(skick_actor_t *self, const char *key, json_object *value)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, key, value);
    skick_socksend(self, &m);
}

/* ---- the helper actor a conversation talks to ----------------------------------- */

static void s_helper_step(skick_actor_t *self, json_object *msg)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "step", json_object_new_int64(skick_get_int(msg, "n", 0) + 1));
    skick_reply(self, msg, &r);
}

static void s_helper(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_register_service(self, "ws_test_helper");
    skick_action(self, "step", "{\"n\": \"integer\"}", s_helper_step);
}

/* ---- echo ----------------------------------------------------------------------- */

static void s_echo(skick_actor_t *self, json_object *msg)
{
    s_send_value(self, "echo", json_object_new_string(skick_get_string(msg, "text", "")));
}

static void s_count(skick_actor_t *self, json_object *msg)
{
    s_send_value(self, "count", json_object_new_int64(skick_get_int(msg, "n", 0)));
}

static void s_fail(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    skick_fail(self, "the client asked for a failure");
}

static void s_quit(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    skick_stop(self);
}

/*  Ask one question and report the answer or the error. */
static void s_ask_one(skick_actor_t *self, json_object *payload, const char *schema,
                      const char *tag_key, json_object *tag)
{
    json_object *p = payload ? json_object_get(payload) : json_object_new_object();
    json_object *v = skick_query(self, &p, schema, QUERY_TIMEOUT_MS);
    int err = skick_errno();
    json_object *m = json_object_new_object();
    if (tag_key)
        json_object_object_add(m, tag_key, json_object_get(tag));
    if (v)
        json_object_object_add(m, "answer", v);
    else
        json_object_object_add(m, "error", json_object_new_string(skick_err_name(err)));
    skick_socksend(self, &m);
}

static void s_ask(skick_actor_t *self, json_object *msg)
{
    s_ask_one(self, json_object_object_get(msg, "payload"),
              skick_get_string(msg, "schema", "default"), NULL, NULL);
}

static void s_ask_task(skick_actor_t *self, json_object *msg)
{
    s_ask_one(self, msg, "str", "task", json_object_object_get(msg, "task"));
}

static void s_ask2(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    for (int i = 1; i <= 2; i++) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "task", json_object_new_int(i));
        if (skick_spawn_task(self, s_ask_task, &t) != 0)
            skick_fail(self, "cannot start query task %d", i);
    }
}

/*  A conversation with the helper, a question to the client in the middle. */
static void s_converse(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    skick_addr_t helper = skick_get_service(self, "ws_test_helper", SKICK_MIXED);
    json_object *first = NULL, *answer = NULL, *second = NULL;
    const char *failed = NULL;
    json_object *q = skick_json("{\"action\": \"step\", \"n\": 1}");
    if (!(first = skick_call(self, helper.str, &q, SKICK_TIMEOUT_DEFAULT))) {
        failed = "first call";
    } else {
        json_object *p = skick_json("{\"mid_conversation\": true}");
        if (!(answer = skick_query(self, &p, "int", QUERY_TIMEOUT_MS))) {
            failed = "query";
        } else {
            json_object *q2 = json_object_new_object();
            json_object_object_add(q2, "action", json_object_new_string("step"));
            json_object_object_add(q2, "n", json_object_new_int64(json_object_get_int64(answer)));
            if (!(second = skick_call(self, helper.str, &q2, SKICK_TIMEOUT_DEFAULT)))
                failed = "second call";
        }
    }
    json_object *m = json_object_new_object();
    if (failed) {
        char why[80];
        snprintf(why, sizeof why, "%s: %s", failed, skick_err_name(skick_errno()));
        json_object_object_add(m, "error", json_object_new_string(why));
    } else {
        json_object_object_add(m, "first", json_object_get(json_object_object_get(first, "step")));
        json_object_object_add(m, "answer", json_object_get(answer));
        json_object_object_add(m, "second",
                               json_object_get(json_object_object_get(second, "step")));
    }
    json_object_put(first);
    json_object_put(answer);
    json_object_put(second);
    skick_socksend(self, &m);
}

static void s_become(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    json_object *init = skick_json("{\"from\": \"echo\"}");
    if (skick_replace(self, "other", &init) != 0)
        skick_fail(self, "replace failed");
}

static void s_echo_like(skick_actor_t *self, json_object *init, const char *name)
{
    s_keep_init(self, init, name);
    skick_socket(self, "echo", "{\"text\": \"string\"}", s_echo);
    skick_socket(self, "count", "{\"n\": \"integer\"}", s_count);
    skick_socket(self, "fail", NULL, s_fail);
    skick_socket(self, "quit", NULL, s_quit);
    skick_socket(self, "ask", "{\"schema\": \"string\", \"payload?\": \"any\"}", s_ask);
    skick_socket(self, "ask2", NULL, s_ask2);
    skick_socket(self, "converse", NULL, s_converse);
    skick_socket(self, "become", NULL, s_become);
    skick_query_schema(self, "small", "{\"type\": \"integer\", \"maximum\": 10}");
}

static void s_echo_session(skick_actor_t *self, json_object *init)
{
    s_echo_like(self, init, "echo");
}

static void s_greet_session(skick_actor_t *self, json_object *init)
{
    s_echo_like(self, init, "greet");
}

static void s_limited_session(skick_actor_t *self, json_object *init)
{
    s_echo_like(self, init, "limited");
}

/*  on_start takes 400 ms: client messages are held until it returns. */
static void s_slow_start(skick_actor_t *self)
{
    skick_sleep(self, 400);
    s_ready(self);
}

static void s_slow_session(skick_actor_t *self, json_object *init)
{
    s_echo_like(self, init, "slow");
    skick_on_start(self, s_slow_start);
}

/* ---- burst: more for the client than it reads ------------------------------------ */

typedef struct {
    sess_t s;          /* first: s_ready reads it */
    int64_t sent;      /* skick_socksend returned 0 */
    int64_t refused;   /* it returned -1 */
    int last_err;      /* the last error */
} burst_t;

static void s_burst_free(void *p)
{
    s_sess_free(&((burst_t *) p)->s);
}

static void s_flood(skick_actor_t *self, json_object *msg)
{
    burst_t *b = skick_state(self);
    int64_t n = skick_get_int(msg, "n", 1), size = skick_get_int(msg, "size", 10);
    char *pad = malloc((size_t) size + 1);
    memset(pad, 'x', (size_t) size);
    pad[size] = '\0';
    for (int64_t i = 0; i < n; i++) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "i", json_object_new_int64(i));
        json_object_object_add(m, "pad", json_object_new_string(pad));
        if (skick_socksend(self, &m) == 0) {
            b->sent++;
        } else {
            b->refused++;
            b->last_err = skick_errno();
        }
    }
    free(pad);
}

static void s_report(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    burst_t *b = skick_state(self);
    skick_socket_status_t st;
    skick_socket_status(self, &st);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "sent", json_object_new_int64(b->sent));
    json_object_object_add(m, "refused", json_object_new_int64(b->refused));
    json_object_object_add(m, "err", json_object_new_string(skick_err_name(b->last_err)));
    json_object_object_add(m, "queued", json_object_new_int64((int64_t) st.queued));
    json_object_object_add(m, "limit", json_object_new_int64((int64_t) st.limit));
    json_object_object_add(m, "queue_refused", json_object_new_int64((int64_t) st.refused));
    skick_socksend(self, &m);
}

static void s_burst_like(skick_actor_t *self, json_object *init, const char *name)
{
    burst_t *b = skick_state_new(self, sizeof *b, s_burst_free);
    b->s.name = name;
    b->s.init = init ? json_object_get(init) : json_object_new_object();
    skick_on_start(self, s_ready);
    skick_socket(self, "flood", "{\"n\": \"integer\", \"size\": \"integer\"}", s_flood);
    skick_socket(self, "report", NULL, s_report);
    skick_socket(self, "echo", "{\"text\": \"string\"}", s_echo);
}

static void s_burst_session(skick_actor_t *self, json_object *init)
{
    s_burst_like(self, init, "burst");
}

static void s_burst_refuse_session(skick_actor_t *self, json_object *init)
{
    s_burst_like(self, init, "burst_refuse");
}

/* ---- other: what "become" turns an echo session into ----------------------------- */

static void s_ping(skick_actor_t *self, json_object *msg)
{
    s_send_value(self, "pong", json_object_new_int64(skick_get_int(msg, "n", 0)));
}

static void s_other(skick_actor_t *self, json_object *init)
{
    s_keep_init(self, init, "other");
    skick_socket(self, "ping", "{\"n\": \"integer\"}", s_ping);
    skick_socket(self, "quit", NULL, s_quit);
}

/* ---- badstart -------------------------------------------------------------------- */

static void s_badstart_start(skick_actor_t *self)
{
    skick_fail(self, "on_start refuses to start");
}

static void s_badstart(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_on_start(self, s_badstart_start);
    skick_socket(self, "echo", "{\"text\": \"string\"}", s_echo);
}

/* ---- seq: a handshake sequence ----------------------------------------------------- */

static void s_seq_start(skick_actor_t *self)
{
    json_object *next = skick_json("{\"step\": \"first\"}");
    skick_replace(self, "seq:final", &next);
}

static void s_seq_first(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_on_start(self, s_seq_start);
}

static void s_seq_final(skick_actor_t *self, json_object *init)
{
    s_keep_init(self, init, "seq:final");
    skick_socket(self, "echo", "{\"text\": \"string\"}", s_echo);
}

/* ---- the module ---------------------------------------------------------------------- */

static void s_app_start(skick_actor_t *shard)
{
    skick_spawn(shard, "ws_test_helper", NULL, SKICK_LOCAL);
}

SKICK_MODULE(ws_test_app)
{
    skick_actor(app, "ws_test_helper", s_helper);
    skick_session(app, "echo", s_echo_session);
    skick_subsession(app, "other", s_other);
    skick_session(app, "badstart", s_badstart);
    skick_handshake(app, "seq", s_seq_first, s_seq_final);
    skick_session(app, "greet", s_greet_session);
    skick_session_handshake_schema(app, "greet", "{\"name\": \"string\", \"age?\": \"integer\"}");
    skick_session(app, "limited", s_limited_session);
    skick_session(app, "slow", s_slow_session);
    skick_session(app, "burst", s_burst_session);
    skick_session(app, "burst_refuse", s_burst_refuse_session);
    skick_session_limits(app, "burst_refuse",
                         &(skick_session_limits_t){.send_queue = 65536,
                                                   .send_policy = SKICK_SEND_REFUSE});
    skick_session_limits(app, "limited",
                         &(skick_session_limits_t){.max_message = 100, .rate = 5, .burst = 5});
    skick_app_on_start(app, s_app_start);
}
