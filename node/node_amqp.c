/*  node_amqp - skick_amqp_publish and friends (include/skick/amqp.h)

    Thin clients of the bridge actor's service: skick_get_service, then
    skick_call. Only the public API is used, so that any shard has them;
    the bridge itself is bridge/ (docs/internals/bridge.md).
*/
#include "skick/amqp.h"

#include <string.h>

/*  Ask the bridge *req (taken): its answer (caller owns), or NULL with
    skick_errno set (from an error body too). */
static json_object *s_ask(skick_actor_t *self, json_object **req)
{
    skick_addr_t bridge = skick_get_service(self, SKICK_AMQP_SERVICE, SKICK_MIXED);
    if (!bridge.str[0]) {
        json_object_put(*req);
        *req = NULL;
        skick_set_errno(SKICK_ENOTFOUND);
        return NULL;
    }
    json_object *r = skick_call(self, bridge.str, req, SKICK_TIMEOUT_DEFAULT);
    if (!r)
        return NULL;
    json_object *error;
    if (json_object_object_get_ex(r, "error", &error)) {
        skick_set_errno(skick_err_code(skick_get_string(error, "code", NULL), SKICK_EPROTO));
        json_object_put(r);
        return NULL;
    }
    return r;
}

int skick_amqp_publish(skick_actor_t *self, const char *exchange, const char *routing_key,
                       json_object **body)
{
    json_object *b = body ? *body : NULL;
    if (body)
        *body = NULL;
    if (!exchange || !routing_key || !b) {
        json_object_put(b);
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    json_object *req = json_object_new_object();
    json_object_object_add(req, "action", json_object_new_string("publish"));
    json_object_object_add(req, "exchange", json_object_new_string(exchange));
    json_object_object_add(req, "routing_key", json_object_new_string(routing_key));
    json_object_object_add(req, "body", b);
    json_object *r = s_ask(self, &req);
    json_object_put(r);
    return r ? 0 : -1;
}

int64_t skick_amqp_subscribe(skick_actor_t *self, const char *queue, const char *exchange,
                             const char *routing_key, const char *to)
{
    if (!queue || !*queue || (exchange && !routing_key)) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    json_object *req = json_object_new_object();
    json_object_object_add(req, "action", json_object_new_string("subscribe"));
    json_object_object_add(req, "queue", json_object_new_string(queue));
    json_object_object_add(req, "to", json_object_new_string(to ? to : skick_self(self)));
    json_object *bindings = json_object_new_array();
    if (exchange) {
        json_object *b = json_object_new_object();
        json_object_object_add(b, "exchange", json_object_new_string(exchange));
        json_object_object_add(b, "routing_key", json_object_new_string(routing_key));
        json_object_array_add(bindings, b);
    }
    json_object_object_add(req, "bindings", bindings);
    json_object *r = s_ask(self, &req);
    if (!r)
        return -1;
    int64_t id = skick_get_int(r, "subscription", -1);
    json_object_put(r);
    if (id <= 0)
        skick_set_errno(SKICK_EPROTO);
    return id > 0 ? id : -1;
}

int skick_amqp_unsubscribe(skick_actor_t *self, int64_t id)
{
    json_object *req = json_object_new_object();
    json_object_object_add(req, "action", json_object_new_string("unsubscribe"));
    json_object_object_add(req, "subscription", json_object_new_int64(id));
    json_object *r = s_ask(self, &req);
    json_object_put(r);
    return r ? 0 : -1;
}
