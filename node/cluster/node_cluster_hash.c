/*  node_cluster_hash - the hash backend that keeps tables in the broker

    The cluster's default store: each operation is a CONTROL request
    {"op":"hash","cmd":...,"id":N} to the broker, answered by a REPLY with
    the same id. The caller's coroutine waits (bounded by the call timeout);
    a waiter that gives up is forgotten (cancel) so a late answer touches
    nothing, and every pending request fails with EBACKEND when the broker
    link goes down.
*/
#include "node_cluster_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    node_wait_t *w;    /* the waiting operation */
    json_object **out; /* get: where the value goes */
    bool *present;     /* contains: where the answer goes */
} node_hash_req_t;

static void *s_open(node_shard_t *sh, const char *url)
{
    (void) url;
    return sh;
}

static void s_close(void *state)
{
    (void) state;
}

static void s_request(node_shard_t *sh, const char *cmd, const char *table, const char *key,
                      json_object **value, node_hash_req_t req)
{
    node_cluster_t *c = sh->cluster;
    if (!c || !c->welcomed) {
        if (value) {
            json_object_put(*value);
            *value = NULL;
        }
        node_wait_complete(req.w, SKICK_EBACKEND);
        return;
    }
    uint64_t id = ++c->next_req;
    json_object *b = json_object_new_object();
    json_object_object_add(b, "op", json_object_new_string("hash"));
    json_object_object_add(b, "id", json_object_new_int64((int64_t) id));
    json_object_object_add(b, "cmd", json_object_new_string(cmd));
    json_object_object_add(b, "table", json_object_new_string(table));
    json_object_object_add(b, "key", json_object_new_string(key));
    if (value) {
        json_object_object_add(b, "value", *value);
        *value = NULL;
    }
    if (node_cluster_send(sh, SKICK_KIND_CONTROL, (node_ref_t){sh->id, sh->id}, (node_ref_t){0, 0}, &b,
                          false, 0) != 0) {
        json_object_put(b);
        node_wait_complete(req.w, SKICK_EBACKEND);
        return;
    }
    node_hash_req_t *r = node_malloc(sizeof *r);
    *r = req;
    node_u64map_put(&c->hash_pending, id, r);
}

static void s_get(void *state, const char *table, const char *key, json_object **out,
                  node_wait_t *w)
{
    s_request(state, "get", table, key, NULL, (node_hash_req_t){.w = w, .out = out});
}

static void s_set(void *state, const char *table, const char *key, json_object **value,
                  node_wait_t *w)
{
    s_request(state, "set", table, key, value, (node_hash_req_t){.w = w});
}

static void s_del(void *state, const char *table, const char *key, node_wait_t *w)
{
    s_request(state, "delete", table, key, NULL, (node_hash_req_t){.w = w});
}

static void s_contains(void *state, const char *table, const char *key, bool *out,
                       node_wait_t *w)
{
    s_request(state, "contains", table, key, NULL, (node_hash_req_t){.w = w, .present = out});
}

static void s_cancel(void *state, node_wait_t *w)
{
    node_shard_t *sh = state;
    node_cluster_t *c = sh->cluster;
    for (size_t i = 0; c && i < c->hash_pending.cap; i++)
        if (c->hash_pending.keys[i] && ((node_hash_req_t *) c->hash_pending.vals[i])->w == w) {
            free(node_u64map_del(&c->hash_pending, c->hash_pending.keys[i]));
            return;
        }
}

void node_cluster_hash_reply(node_shard_t *sh, json_object *body)
{
    node_cluster_t *c = sh->cluster;
    int64_t id = skick_get_int(body, "id", 0);
    node_hash_req_t *r = id > 0 ? node_u64map_del(&c->hash_pending, (uint64_t) id) : NULL;
    if (!r) {
        NODE_LOG_LIMITED(SKICK_LOG_DEBUG, "hash", "reply for an unknown request dropped");
        return;
    }
    int err = SKICK_OK;
    if (!skick_get_bool(body, "ok", false)) {
        const char *code = skick_get_string(body, "code", "");
        err = strcmp(code, "ENOTFOUND") == 0 ? SKICK_ENOTFOUND
              : strcmp(code, "EINVAL") == 0  ? SKICK_EINVAL
                                             : SKICK_EBACKEND;
    } else {
        json_object *result = json_object_object_get(body, "result");
        if (r->out) {
            if (result)
                json_object_deep_copy(result, r->out, NULL); /* the caller's own copy */
            else
                err = SKICK_ENOTFOUND;
        }
        if (r->present)
            *r->present = json_object_get_boolean(result);
    }
    node_wait_complete(r->w, err);
    free(r);
}

void node_cluster_hash_fail_all(node_shard_t *sh)
{
    node_cluster_t *c = sh->cluster;
    for (size_t i = 0; c && i < c->hash_pending.cap; i++) {
        if (!c->hash_pending.keys[i])
            continue;
        node_hash_req_t *r = node_u64map_del(&c->hash_pending, c->hash_pending.keys[i]);
        node_wait_complete(r->w, SKICK_EBACKEND);
        free(r);
        i = (size_t) -1; /* deletion may move entries: rescan */
    }
}

node_hash_backend_t node_hash_broker = {
    .name = "broker",
    .open = s_open,
    .close = s_close,
    .get = s_get,
    .set = s_set,
    .del = s_del,
    .contains = s_contains,
    .cancel = s_cancel,
};
