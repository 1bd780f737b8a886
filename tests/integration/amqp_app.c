/*  amqp_app - actors for test_amqp_bridge.py and bench/amqp_bench.sh

    "sink": keeps what it receives. event (any body): recorded; dump: the
    recorded bodies; count: how many; add {"n": integer} answers n + 1;
    echo answers the message; slow {"ms"} blocks the actor (its mailbox
    fills up meanwhile); sleepy {"ms"} answers after ms, concurrently.
    init {"service": NAME} registers it as a provider of NAME.
    For --seed-compat (test_amqp_seed.py): call_seed {"target": a Python
    address, "body": {...}} asks the bridge for the target's C address
    (seed_alias), calls it with body and answers {"proxy", "reply"} or
    {"error": "CODE"}; tell_seed {"target", "body"} sends body one-way and
    answers {"proxy"}; watch_seed {"target"} monitors it (the sentinel
    about its proxy is recorded as an event) and answers {"proxy"}. quit: the sink stops (its monitors get a
    cancellation sentinel).
    "pub": publish_out {"exchange","routing_key","body"} with
    skick_amqp_publish, subscribe_me {"queue","exchange","routing_key"} with
    skick_amqp_subscribe; both answer {"ok": id} or {"error": "CODE"}.
    The shard hook spawns a sink registered as "amqp-test".
*/
#include <skick/amqp.h>
#include <skick/skick.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    json_object *events; /* array */
    json_object *codes;  /* publish_many: {"CODE": count} */
    int outstanding;     /* publish_many: tasks still publishing */
} sink_t;

static void s_sink_free(void *state)
{
    sink_t *s = state;
    json_object_put(s->events);
    json_object_put(s->codes);
}

static void s_event(skick_actor_t *self, json_object *msg)
{
    sink_t *s = skick_state(self);
    json_object_array_add(s->events, json_object_get(msg));
}

static void s_dump(skick_actor_t *self, json_object *msg)
{
    sink_t *s = skick_state(self);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "events", json_object_get(s->events));
    skick_reply(self, msg, &r);
}

static void s_count(skick_actor_t *self, json_object *msg)
{
    sink_t *s = skick_state(self);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "n", json_object_new_int64((int64_t) json_object_array_length(s->events)));
    skick_reply(self, msg, &r);
}

static void s_add(skick_actor_t *self, json_object *msg)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "sum", json_object_new_int64(skick_get_int(msg, "n", 0) + 1));
    skick_reply(self, msg, &r);
}

static void s_echo(skick_actor_t *self, json_object *msg)
{
    json_object *r = json_object_get(msg);
    skick_reply(self, msg, &r);
}

static void s_slow(skick_actor_t *self, json_object *msg)
{
    skick_sleep(self, skick_get_int(msg, "ms", 1000));
    s_event(self, msg);
}

static void s_sleepy(skick_actor_t *self, json_object *msg)
{
    skick_sleep(self, skick_get_int(msg, "ms", 1000));
    s_echo(self, msg);
}

/*  The C address of Python address target, through the bridge: 0 or -1. */
static int s_seed_alias(skick_actor_t *self, const char *target, skick_addr_t *out)
{
    skick_addr_t bridge = skick_get_service(self, "amqp", SKICK_MIXED);
    if (!bridge.str[0])
        return -1;
    json_object *q = json_object_new_object();
    json_object_object_add(q, "action", json_object_new_string("seed_alias"));
    json_object_object_add(q, "address", json_object_new_string(target));
    json_object *r = skick_call(self, bridge.str, &q, SKICK_TIMEOUT_DEFAULT);
    const char *a = skick_get_string(r, "address", NULL);
    int rc = a ? 0 : -1;
    if (a)
        snprintf(out->str, sizeof out->str, "%s", a);
    json_object_put(r);
    return rc;
}

static void s_reply_code(skick_actor_t *self, json_object *msg, const char *code)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "error", json_object_new_string(code));
    skick_reply(self, msg, &r);
}

static void s_call_seed(skick_actor_t *self, json_object *msg)
{
    skick_addr_t proxy;
    if (s_seed_alias(self, skick_get_string(msg, "target", ""), &proxy) != 0) {
        s_reply_code(self, msg, "ENOALIAS");
        return;
    }
    json_object *body = json_object_object_get(msg, "body");
    body = body ? json_object_get(body) : json_object_new_object();
    json_object *reply = skick_call(self, proxy.str, &body, SKICK_TIMEOUT_DEFAULT);
    if (!reply) {
        s_reply_code(self, msg, skick_err_name(skick_errno()));
        return;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "proxy", json_object_new_string(proxy.str));
    json_object_object_add(r, "reply", reply);
    skick_reply(self, msg, &r);
}

static void s_tell_seed(skick_actor_t *self, json_object *msg)
{
    skick_addr_t proxy;
    if (s_seed_alias(self, skick_get_string(msg, "target", ""), &proxy) != 0) {
        s_reply_code(self, msg, "ENOALIAS");
        return;
    }
    json_object *body = json_object_object_get(msg, "body");
    body = body ? json_object_get(body) : json_object_new_object();
    if (skick_send(self, proxy.str, &body) != 0) {
        s_reply_code(self, msg, skick_err_name(skick_errno()));
        return;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "proxy", json_object_new_string(proxy.str));
    skick_reply(self, msg, &r);
}

static void s_watch_seed(skick_actor_t *self, json_object *msg)
{
    skick_addr_t proxy;
    if (s_seed_alias(self, skick_get_string(msg, "target", ""), &proxy) != 0) {
        s_reply_code(self, msg, "ENOALIAS");
        return;
    }
    skick_sentinel_handler(self, proxy.str, s_event);
    if (skick_monitor(self, proxy.str) != 0) {
        s_reply_code(self, msg, skick_err_name(skick_errno()));
        return;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "proxy", json_object_new_string(proxy.str));
    skick_reply(self, msg, &r);
}

static void s_quit(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    skick_stop(self);
}

static void s_sink(skick_actor_t *self, json_object *init)
{
    sink_t *s = skick_state_new(self, sizeof *s, s_sink_free);
    s->events = json_object_new_array();
    const char *service = skick_get_string(init, "service", NULL);
    if (service)
        skick_register_service(self, service);
    skick_action(self, "event", NULL, s_event);
    skick_action(self, "slow", NULL, s_slow);
    skick_action(self, "add", "{\"n\": \"integer\"}", s_add);
    skick_action(self, "echo", NULL, s_echo);
    skick_action(self, "quit", NULL, s_quit);
    skick_conversation(self, "sleepy", NULL, s_sleepy);
    skick_conversation(self, "dump", NULL, s_dump);
    skick_conversation(self, "count", NULL, s_count);
    skick_conversation(self, "call_seed", NULL, s_call_seed);
    skick_conversation(self, "tell_seed", NULL, s_tell_seed);
    skick_conversation(self, "watch_seed", NULL, s_watch_seed);
}

static void s_answer(skick_actor_t *self, json_object *msg, int64_t rc)
{
    json_object *r = json_object_new_object();
    if (rc < 0)
        json_object_object_add(r, "error", json_object_new_string(skick_err_name(skick_errno())));
    else
        json_object_object_add(r, "ok", json_object_new_int64(rc));
    skick_reply(self, msg, &r);
}

static void s_publish_out(skick_actor_t *self, json_object *msg)
{
    json_object *body = json_object_object_get(msg, "body");
    body = body ? json_object_get(body) : json_object_new_object();
    int rc = skick_amqp_publish(self, skick_get_string(msg, "exchange", ""),
                                skick_get_string(msg, "routing_key", ""), &body);
    s_answer(self, msg, rc);
}

static void s_publish_one(skick_actor_t *self, json_object *msg)
{
    sink_t *s = skick_state(self);
    json_object *body = json_object_new_object();
    int rc = skick_amqp_publish(self, skick_get_string(msg, "exchange", ""),
                                skick_get_string(msg, "routing_key", ""), &body);
    const char *code = rc == 0 ? "OK" : skick_err_name(skick_errno());
    json_object_object_add(s->codes, code,
                           json_object_new_int64(skick_get_int(s->codes, code, 0) + 1));
    s->outstanding--;
}

/*  n publishes at once, each its own task; answers the codes they got. */
static void s_publish_many(skick_actor_t *self, json_object *msg)
{
    sink_t *s = skick_state(self);
    json_object_put(s->codes);
    s->codes = json_object_new_object();
    int64_t n = skick_get_int(msg, "n", 1);
    for (int64_t i = 0; i < n; i++) {
        json_object *m = json_object_get(msg);
        if (skick_spawn_task(self, s_publish_one, &m) == 0)
            s->outstanding++;
    }
    for (int k = 0; k < 1000 && s->outstanding > 0; k++)
        if (skick_sleep(self, 20) != 0)
            return;
    json_object *r = json_object_new_object();
    json_object_object_add(r, "codes", json_object_get(s->codes));
    skick_reply(self, msg, &r);
}

static void s_subscribe_me(skick_actor_t *self, json_object *msg)
{
    int64_t id = skick_amqp_subscribe(self, skick_get_string(msg, "queue", ""),
                                      skick_get_string(msg, "exchange", NULL),
                                      skick_get_string(msg, "routing_key", NULL), NULL);
    s_answer(self, msg, id);
}

static void s_pub(skick_actor_t *self, json_object *init)
{
    s_sink(self, init);
    skick_conversation(self, "publish_out", NULL, s_publish_out);
    skick_conversation(self, "subscribe_me", NULL, s_subscribe_me);
    skick_conversation(self, "publish_many", NULL, s_publish_many);
}

static void s_hook(skick_actor_t *shard)
{
    json_object *init = skick_json("{\"service\": \"amqp-test\"}");
    skick_spawn(shard, "sink", &init, SKICK_LOCAL | SKICK_NO_MONITOR);
}

SKICK_MODULE(amqp_app)
{
    skick_actor(app, "sink", s_sink);
    skick_actor(app, "pub", s_pub);
    skick_app_on_start(app, s_hook);
}
