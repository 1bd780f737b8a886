/*  hello - websocket sessions: the seed's hello, curious and logarithm
    examples, and a chat room shared by sessions through a service

    Load it into a shard with websockets and open ws://127.0.0.1:8000/:

      {"session_type": "hello"}      -> a greeting; {"action": "greet"} -> another
      {"session_type": "curious"}    -> {"action": "get_information"} asks you a
                                        SocketQuery (answer true or false)
      {"session_type": "logarithm"}  -> a handshake sequence picks a base; then
                                        {"action": "log", "x": 8.0}
      {"session_type": "chat", "name": "ada"}
                                     -> {"action": "say", "text": "hi"} reaches every
                                        chat session of the same room: each shard
                                        that loads this module runs its own room, so
                                        in a cluster with several back shards a chat
                                        session talks to those on its own shard

    Ownership as everywhere: json_object ** arguments are taken, returned
    objects are ours, handler messages are borrowed.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "skick/skick.h"

/* ---- hello: the seed README's first example --------------------------------- */

static void s_hello_start(skick_actor_t *self)
{
    json_object *m = skick_json("{\"greeting\": \"Hello, use the action 'greet' to receive "
                                "a greeting\"}");
    skick_socksend(self, &m);
}

static void s_hello_greet(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    json_object *m = skick_json("{\"greeting\": \"Hello good sir\"}");
    skick_socksend(self, &m);
}

static void s_hello(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_on_start(self, s_hello_start);
    skick_socket(self, "greet", NULL, s_hello_greet); /* the message is {"action":"greet"} */
}

/* ---- curious: a conversation that asks the client (SocketQuery) ------------ */

static void s_info_answer(skick_actor_t *self, json_object *msg)
{
    json_object *r = skick_json("{\"ask_gdpr\": true, \"info\": {\"secret\": 42}}");
    skick_reply(self, msg, &r);
}

static void s_info(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_register_service(self, "info");
    skick_action(self, "info", NULL, s_info_answer);
}

static void s_curious_ask(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    skick_addr_t info = skick_get_service(self, "info", SKICK_MIXED);
    json_object *q = skick_json("{\"action\": \"info\"}");
    json_object *response = skick_call(self, info.str, &q, SKICK_TIMEOUT_DEFAULT);
    json_object *out;
    if (!response) {
        out = skick_json("{\"error\": \"%s\"}", skick_err_name(skick_errno()));
    } else if (skick_get_bool(response, "ask_gdpr", false)) {
        json_object *question = skick_json("{\"gdpr_query\": \"Do you accept the terms?\"}");
        json_object *consent = skick_query(self, &question, "bool", 60000);
        if (consent && json_object_get_boolean(consent))
            out = json_object_get(json_object_object_get(response, "info"));
        else
            out = skick_json("{\"error\": \"terms not accepted\"}");
        json_object_put(consent);
    } else {
        out = json_object_get(json_object_object_get(response, "info"));
    }
    json_object_put(response);
    skick_socksend(self, &out);
}

static void s_curious(skick_actor_t *self, json_object *init)
{
    (void) init;
    /* While it waits for the client's answer the session's mailbox waits too;
       the answer itself (query_reply) goes straight to the waiting query. */
    skick_socket(self, "get_information", NULL, s_curious_ask);
}

/* ---- logarithm: a handshake sequence ---------------------------------------- */

/* Step 1 (the handshake): pick a number, hand over to "double_number". */
static void s_random_start(skick_actor_t *self)
{
    /* Pass session_type along: the last step needs it to find "<type>:final". */
    json_object *next = json_object_new_object();
    json_object_object_add(next, "session_type",
                           json_object_new_string((const char *) skick_state(self)));
    json_object_object_add(next, "number", json_object_new_int(1 + rand() % 9));
    skick_replace(self, "double_number", &next);
}

static void s_random(skick_actor_t *self, json_object *init)
{
    char *type = skick_state_new(self, 129, NULL);
    snprintf(type, 129, "%s", skick_get_string(init, "session_type", ""));
    skick_on_start(self, s_random_start);
}

/* Step 2: double it, then hand over to "<session_type>:final". */
typedef struct {
    char final[160];
    int64_t number;
} doubler_t;

static void s_double_start(skick_actor_t *self)
{
    doubler_t *d = skick_state(self);
    json_object *next = skick_json("{\"number\": %lld}", (long long) d->number);
    skick_replace(self, d->final, &next);
}

static void s_double(skick_actor_t *self, json_object *init)
{
    doubler_t *d = skick_state_new(self, sizeof *d, NULL);
    d->number = 2 * skick_get_int(init, "number", 1);
    snprintf(d->final, sizeof d->final, "%s:final", skick_get_string(init, "session_type", ""));
    skick_on_start(self, s_double_start);
}

/* The final step: the real session. */
static void s_log_start(skick_actor_t *self)
{
    json_object *m = skick_json("{\"base\": %g}", *(double *) skick_state(self));
    skick_socksend(self, &m);
}

static void s_log(skick_actor_t *self, json_object *msg)
{
    double base = *(double *) skick_state(self);
    double x = skick_get_double(msg, "x", 1.0);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "x", json_object_new_double(x));
    if (x > 0)
        json_object_object_add(m, "log_base(x)", json_object_new_double(log(x) / log(base)));
    else
        json_object_object_add(m, "error", json_object_new_string("x must be positive"));
    skick_socksend(self, &m);
}

static void s_logarithm(skick_actor_t *self, json_object *init)
{
    double *base = skick_state_new(self, sizeof *base, NULL);
    *base = (double) skick_get_int(init, "number", 2);
    skick_on_start(self, s_log_start);
    skick_socket(self, "log", "{\"x\": \"number\"}", s_log);
}

/* ---- chat: sessions meeting through a service ------------------------------- */

/* The room: members by address; it monitors them so the dead ones leave. */
typedef struct {
    json_object *members; /* address -> name */
} room_t;

static void s_room_free(void *state)
{
    json_object_put(((room_t *) state)->members);
}

static void s_room_broadcast(skick_actor_t *self, json_object *line)
{
    room_t *room = skick_state(self);
    json_object_object_foreach(room->members, addr, name)
    {
        (void) name;
        json_object *copy = NULL;
        json_object_deep_copy(line, &copy, NULL);
        skick_send(self, addr, &copy);
    }
}

static void s_room_join(skick_actor_t *self, json_object *msg)
{
    room_t *room = skick_state(self);
    const char *who = skick_sender(self), *name = skick_get_string(msg, "name", "someone");
    json_object_object_add(room->members, who, json_object_new_string(name));
    skick_monitor(self, who);
    json_object *line = skick_json("{\"action\": \"chat_line\", \"from\": \"room\"}");
    json_object_object_add(line, "text",
                           json_object_new_string(json_object_get_string(
                               json_object_object_get(room->members, who))));
    json_object_object_add(line, "event", json_object_new_string("joined"));
    s_room_broadcast(self, line);
    json_object_put(line);
}

static void s_room_say(skick_actor_t *self, json_object *msg)
{
    room_t *room = skick_state(self);
    json_object *name = json_object_object_get(room->members, skick_sender(self));
    if (!name)
        return; /* not a member */
    json_object *line = json_object_new_object();
    json_object_object_add(line, "action", json_object_new_string("chat_line"));
    json_object_object_add(line, "from", json_object_get(name));
    json_object_object_add(line, "text",
                           json_object_new_string(skick_get_string(msg, "text", "")));
    s_room_broadcast(self, line);
    json_object_put(line);
}

static void s_room_gone(skick_actor_t *self, json_object *sentinel)
{
    room_t *room = skick_state(self);
    json_object_object_del(room->members, skick_get_string(sentinel, "address", ""));
}

static void s_room(skick_actor_t *self, json_object *init)
{
    (void) init;
    room_t *room = skick_state_new(self, sizeof *room, s_room_free);
    room->members = json_object_new_object();
    skick_register_service(self, "chat_room");
    skick_action(self, "join", "{\"name\": \"string\"}", s_room_join);
    skick_action(self, "say", "{\"text\": \"string\"}", s_room_say);
    skick_default_sentinel(self, s_room_gone);
}

static void s_chat_start(skick_actor_t *self)
{
    skick_addr_t room = skick_get_service(self, "chat_room", SKICK_MIXED);
    json_object *join = skick_json("{\"action\": \"join\"}");
    json_object_object_add(join, "name",
                           json_object_new_string((const char *) skick_state(self)));
    if (skick_send(self, room.str, &join) != 0)
        skick_fail(self, "no chat room");
}

static void s_chat_say(skick_actor_t *self, json_object *msg)
{
    skick_addr_t room = skick_get_service(self, "chat_room", SKICK_MIXED);
    json_object *say = skick_json("{\"action\": \"say\"}");
    json_object_object_add(say, "text",
                           json_object_new_string(skick_get_string(msg, "text", "")));
    skick_send(self, room.str, &say);
}

static void s_chat_line(skick_actor_t *self, json_object *msg)
{
    json_object *copy = json_object_get(msg); /* forward what the room said */
    skick_socksend(self, &copy);
}

static void s_chat(skick_actor_t *self, json_object *init)
{
    char *name = skick_state_new(self, 33, NULL);
    snprintf(name, 33, "%s", skick_get_string(init, "name", "anonymous"));
    skick_on_start(self, s_chat_start);
    skick_socket(self, "say", "{\"text\": \"string\"}", s_chat_say);
    skick_action(self, "chat_line", NULL, s_chat_line);
}

/* ---- the module ---------------------------------------------------------------- */

static void s_start(skick_actor_t *shard)
{
    skick_spawn(shard, "info", NULL, SKICK_LOCAL);
    skick_spawn(shard, "chat_room", NULL, SKICK_LOCAL);
}

SKICK_MODULE(hello)
{
    skick_session(app, "hello", s_hello);
    skick_session(app, "curious", s_curious);
    skick_handshake(app, "logarithm", s_random, s_logarithm);
    skick_subsession(app, "double_number", s_double);
    skick_session(app, "chat", s_chat);
    skick_session_handshake_schema(app, "chat", "{\"name?\": {\"type\": \"string\", "
                                                "\"maxLength\": 32}}");
    skick_actor(app, "info", s_info);
    skick_actor(app, "chat_room", s_room);
    skick_app_on_start(app, s_start);
}
