/*  cluster_app - actor and session types for the cluster tests

    Loaded by the back shards of tests/integration/test_cluster.py:

      echo      "ask" (called): answers {"from": its address, "n": n};
                "sink": dropped (load)
      slow      "slow" (called): sleeps "ms", then answers {"slept": ms}
      watcher   a test's agent inside the cluster; every action is called
                by the test (from outside, through the broker):
                  spawn_child {type}     spawn with SKICK_REMOTE -> {"child"}
                  spawn_mixed {type}     spawn with SKICK_MIXED -> {"child"}
                  spawn_and_call {}      remote echo spawned and called at once
                  watch {address}        skick_monitor -> {}
                  monitor_for {address, monitor}  sends address {"action":
                                         "monitor", "address": monitor} -> {}
                  spawn_monitored {type, where, monitors}  skick_spawn_monitored,
                                         where "local" or "remote" -> {"child"}
                  call {address, n, ms?} skick_call ask/slow -> the answer, or
                                         {"error": code}
                  register {name}        skick_register_service -> {}
                  find {name, where}     skick_get_service -> {"address"} or
                                         {"error"}
                  sentinels {}           -> {"sentinels": [every sentinel so far]}
                  call_later {address, delay, ms?, timeout?}  answers {},
                                         then calls after delay ms (slow for
                                         ms if given); results {} ->
                                         {"results": [...]}
                  flood {address, ms}    answers {}, then sends "sink" messages
                                         for ms; its counts go to results
                  hset {key, value}, hget {key}  the cluster hash "t"
      cluster_echo (session)  socket action "echo" {"text": str}: socksend
                {"echo": text, "session": its address}; handshake schema
                allows an optional "name".
*/
#include <string.h>

#include "skick/skick.h"

static void s_echo_ask(skick_actor_t *self, json_object *msg)
{
    json_object *r = skick_json("{\"from\": \"%s\", \"n\": %lld}", skick_self(self),
                                (long long) skick_get_int(msg, "n", 0));
    skick_reply(self, msg, &r);
}

static void s_echo_sink(skick_actor_t *self, json_object *msg)
{
    (void) self;
    (void) msg; /* load: received and dropped */
}

static void s_echo(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_action(self, "ask", NULL, s_echo_ask);
    skick_action(self, "sink", NULL, s_echo_sink);
}

static void s_slow_slow(skick_actor_t *self, json_object *msg)
{
    int64_t ms = skick_get_int(msg, "ms", 1000);
    skick_sleep(self, ms);
    json_object *r = skick_json("{\"slept\": %lld}", (long long) ms);
    skick_reply(self, msg, &r);
}

static void s_slow(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_conversation(self, "slow", NULL, s_slow_slow);
}

/* ---- watcher -------------------------------------------------------------- */

typedef struct {
    json_object *sentinels; /* array of every sentinel received */
    json_object *results;   /* outcomes of call_later */
} watcher_t;

static void s_watcher_free(void *p)
{
    watcher_t *w = p;
    json_object_put(w->sentinels);
    json_object_put(w->results);
}

static void s_answer_error(skick_actor_t *self, json_object *msg)
{
    json_object *r = skick_json("{\"error\": \"%s\"}", skick_err_name(skick_errno()));
    skick_reply(self, msg, &r);
}

static void s_spawn_with(skick_actor_t *self, json_object *msg, int flags)
{
    skick_addr_t a = skick_spawn(self, skick_get_string(msg, "type", ""), NULL, flags);
    if (!a.str[0]) {
        s_answer_error(self, msg);
        return;
    }
    json_object *r = skick_json("{\"child\": \"%s\"}", a.str);
    skick_reply(self, msg, &r);
}

static void s_w_spawn_child(skick_actor_t *self, json_object *msg)
{
    s_spawn_with(self, msg, SKICK_REMOTE);
}

/*  Spawn an echo on another shard and call it at once, in one handler: the
    call must find the actor (the spawn request went first on the link). */
static void s_w_spawn_and_call(skick_actor_t *self, json_object *msg)
{
    skick_addr_t a = skick_spawn(self, "echo", NULL, SKICK_REMOTE);
    json_object *q = skick_json("{\"action\": \"ask\", \"n\": 9}");
    json_object *answer = a.str[0] ? skick_call(self, a.str, &q, 5000) : NULL;
    if (!a.str[0])
        json_object_put(q);
    if (!answer) {
        s_answer_error(self, msg);
        return;
    }
    skick_reply(self, msg, &answer);
}

static void s_w_spawn_mixed(skick_actor_t *self, json_object *msg)
{
    s_spawn_with(self, msg, SKICK_MIXED);
}

static void s_w_watch(skick_actor_t *self, json_object *msg)
{
    if (skick_monitor(self, skick_get_string(msg, "address", "")) != 0) {
        s_answer_error(self, msg);
        return;
    }
    json_object *r = json_object_new_object();
    skick_reply(self, msg, &r);
}

/*  Make "monitor" someone else's monitor of "address" (a third party). */
static void s_w_monitor_for(skick_actor_t *self, json_object *msg)
{
    json_object *req = skick_json("{\"action\": \"monitor\", \"address\": \"%s\"}",
                                  skick_get_string(msg, "monitor", ""));
    if (skick_send(self, skick_get_string(msg, "address", ""), &req) != 0) {
        s_answer_error(self, msg);
        return;
    }
    json_object *r = json_object_new_object();
    skick_reply(self, msg, &r);
}

static void s_w_spawn_monitored(skick_actor_t *self, json_object *msg)
{
    const char *mons[8];
    size_t n = 0;
    json_object *list = json_object_object_get(msg, "monitors");
    for (size_t i = 0; list && i < json_object_array_length(list) && n < 8; i++)
        mons[n++] = json_object_get_string(json_object_array_get_idx(list, i));
    int where = strcmp(skick_get_string(msg, "where", "local"), "remote") == 0 ? SKICK_REMOTE
                                                                                : SKICK_LOCAL;
    skick_addr_t a = skick_spawn_monitored(self, skick_get_string(msg, "type", ""), NULL, where,
                                           mons, n);
    if (!a.str[0]) {
        s_answer_error(self, msg);
        return;
    }
    json_object *r = skick_json("{\"child\": \"%s\"}", a.str);
    skick_reply(self, msg, &r);
}

static void s_w_call(skick_actor_t *self, json_object *msg)
{
    const char *to = skick_get_string(msg, "address", "");
    int64_t ms = skick_get_int(msg, "ms", -1);
    json_object *q = ms >= 0 ? skick_json("{\"action\": \"slow\", \"ms\": %lld}", (long long) ms)
                             : skick_json("{\"action\": \"ask\", \"n\": %lld}",
                                          (long long) skick_get_int(msg, "n", 0));
    json_object *answer = skick_call(self, to, &q, skick_get_int(msg, "timeout", 5000));
    if (!answer) {
        s_answer_error(self, msg);
        return;
    }
    skick_reply(self, msg, &answer);
}

/*  Answer at once, then after "delay" ms call "address" (an echo's "ask",
    or a slow actor's "slow" for "ms" if given, with "timeout") and keep the
    outcome ({"n": ..}, {"slept": ..} or {"error": code}) for "results". */
static void s_w_call_later(skick_actor_t *self, json_object *msg)
{
    json_object *ack = json_object_new_object();
    skick_reply(self, msg, &ack);
    skick_sleep(self, skick_get_int(msg, "delay", 1000));
    int64_t ms = skick_get_int(msg, "ms", -1);
    json_object *q = ms >= 0 ? skick_json("{\"action\": \"slow\", \"ms\": %lld}", (long long) ms)
                             : skick_json("{\"action\": \"ask\", \"n\": 1}");
    json_object *answer = skick_call(self, skick_get_string(msg, "address", ""), &q,
                                     skick_get_int(msg, "timeout", 3000));
    if (!answer)
        answer = skick_json("{\"error\": \"%s\"}", skick_err_name(skick_errno()));
    watcher_t *w = skick_state(self);
    json_object_array_add(w->results, answer);
}

/*  Answer at once, then send "sink" messages to "address" for "ms"
    milliseconds (batches of 200 per 1 ms), counting the refusals. */
static void s_w_flood(skick_actor_t *self, json_object *msg)
{
    json_object *ack = json_object_new_object();
    skick_reply(self, msg, &ack);
    const char *to = skick_get_string(msg, "address", "");
    int64_t end = skick_now(self) + skick_get_int(msg, "ms", 1000);
    int64_t sent = 0, refused = 0;
    while (skick_now(self) < end) {
        for (int i = 0; i < 200; i++) {
            json_object *m = skick_json("{\"action\": \"sink\", \"i\": %lld, \"pad\": "
                                        "\"0123456789012345678901234567890123456789\"}",
                                        (long long) sent);
            if (skick_send(self, to, &m) == 0)
                sent++;
            else
                refused++;
        }
        if (skick_sleep(self, 1) != 0)
            return;
    }
    watcher_t *w = skick_state(self);
    json_object_array_add(w->results, skick_json("{\"sent\": %lld, \"refused\": %lld}",
                                                 (long long) sent, (long long) refused));
}

static void s_w_results(skick_actor_t *self, json_object *msg)
{
    watcher_t *w = skick_state(self);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "results", json_object_get(w->results));
    skick_reply(self, msg, &r);
}

static void s_w_register(skick_actor_t *self, json_object *msg)
{
    if (skick_register_service(self, skick_get_string(msg, "name", "")) != 0) {
        s_answer_error(self, msg);
        return;
    }
    json_object *r = json_object_new_object();
    skick_reply(self, msg, &r);
}

static void s_w_find(skick_actor_t *self, json_object *msg)
{
    const char *where = skick_get_string(msg, "where", "mixed");
    int mode = strcmp(where, "local") == 0    ? SKICK_LOCAL
               : strcmp(where, "remote") == 0 ? SKICK_REMOTE
                                              : SKICK_MIXED;
    skick_addr_t a = skick_get_service(self, skick_get_string(msg, "name", ""), mode);
    if (!a.str[0]) {
        s_answer_error(self, msg);
        return;
    }
    json_object *r = skick_json("{\"address\": \"%s\"}", a.str);
    skick_reply(self, msg, &r);
}

static void s_w_sentinels(skick_actor_t *self, json_object *msg)
{
    watcher_t *w = skick_state(self);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "sentinels", json_object_get(w->sentinels));
    skick_reply(self, msg, &r);
}

static void s_w_sentinel(skick_actor_t *self, json_object *msg)
{
    watcher_t *w = skick_state(self);
    json_object_array_add(w->sentinels, json_object_get(msg));
}

static void s_w_hset(skick_actor_t *self, json_object *msg)
{
    json_object *v = json_object_get(json_object_object_get(msg, "value"));
    if (skick_hash_set(self, "t", skick_get_string(msg, "key", "k"), &v) != 0) {
        s_answer_error(self, msg);
        return;
    }
    json_object *r = json_object_new_object();
    skick_reply(self, msg, &r);
}

static void s_w_hget(skick_actor_t *self, json_object *msg)
{
    json_object *v = skick_hash_get(self, "t", skick_get_string(msg, "key", "k"));
    if (!v) {
        s_answer_error(self, msg);
        return;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "value", v);
    skick_reply(self, msg, &r);
}

static void s_watcher(skick_actor_t *self, json_object *init)
{
    (void) init;
    watcher_t *w = skick_state_new(self, sizeof *w, s_watcher_free);
    w->sentinels = json_object_new_array();
    w->results = json_object_new_array();
    skick_conversation(self, "call_later", NULL, s_w_call_later);
    skick_conversation(self, "results", NULL, s_w_results);
    skick_conversation(self, "flood", NULL, s_w_flood);
    skick_conversation(self, "spawn_child", NULL, s_w_spawn_child);
    skick_conversation(self, "spawn_mixed", NULL, s_w_spawn_mixed);
    skick_conversation(self, "spawn_and_call", NULL, s_w_spawn_and_call);
    skick_conversation(self, "watch", NULL, s_w_watch);
    skick_conversation(self, "monitor_for", NULL, s_w_monitor_for);
    skick_conversation(self, "spawn_monitored", NULL, s_w_spawn_monitored);
    skick_conversation(self, "call", NULL, s_w_call);
    skick_conversation(self, "register", NULL, s_w_register);
    skick_conversation(self, "find", NULL, s_w_find);
    skick_conversation(self, "sentinels", NULL, s_w_sentinels);
    skick_conversation(self, "hset", NULL, s_w_hset);
    skick_conversation(self, "hget", NULL, s_w_hget);
    skick_default_sentinel(self, s_w_sentinel);
}

/* ---- the session ---------------------------------------------------------- */

static void s_sess_echo(skick_actor_t *self, json_object *msg)
{
    json_object *out = json_object_new_object();
    json_object_object_add(out, "echo",
                           json_object_new_string(skick_get_string(msg, "text", "")));
    json_object_object_add(out, "session", json_object_new_string(skick_self(self)));
    skick_socksend(self, &out);
}

static void s_cluster_echo(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_socket(self, "echo", "{\"text\": \"string\"}", s_sess_echo);
}

SKICK_MODULE(cluster_app)
{
    skick_actor(app, "echo", s_echo);
    skick_actor(app, "slow", s_slow);
    skick_actor(app, "watcher", s_watcher);
    skick_session(app, "cluster_echo", s_cluster_echo);
    skick_session_handshake_schema(app, "cluster_echo", "{\"name?\": \"string\"}");
}
