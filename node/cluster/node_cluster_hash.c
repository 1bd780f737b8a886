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
    json_object **out; /* get: where the value goes; keys: the array */
    bool *present;     /* contains: the answer; set_ex: stored; keys: truncated */
    int64_t *number;   /* incr: the result */
    bool keys;         /* a keys request: result {"keys": [...], "truncated": bool} */
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

/*  Send {"op":"hash","cmd":cmd,"table","key"(when not NULL),"value"(taken)}
    plus the members of extra (taken, may be NULL); req waits for the REPLY. */
static void s_request(node_shard_t *sh, const char *cmd, const char *table, const char *key,
                      json_object **value, json_object *extra, node_hash_req_t req)
{
    node_cluster_t *c = sh->cluster;
    if (!c || !c->welcomed) {
        if (value) {
            json_object_put(*value);
            *value = NULL;
        }
        json_object_put(extra);
        node_wait_complete(req.w, SKICK_EBACKEND);
        return;
    }
    uint64_t id = ++c->next_req;
    json_object *b = json_object_new_object();
    json_object_object_add(b, "op", json_object_new_string("hash"));
    json_object_object_add(b, "id", json_object_new_int64((int64_t) id));
    json_object_object_add(b, "cmd", json_object_new_string(cmd));
    json_object_object_add(b, "table", json_object_new_string(table));
    if (key)
        json_object_object_add(b, "key", json_object_new_string(key));
    if (value) {
        json_object_object_add(b, "value", *value);
        *value = NULL;
    }
    if (extra) {
        json_object_object_foreach(extra, k, v) json_object_object_add(b, k, json_object_get(v));
        json_object_put(extra);
    }
    if (node_cluster_send(sh, SKICK_KIND_CONTROL, (node_ref_t){sh->id, sh->id}, (node_ref_t){0, 0},
                          &b, false, 0) != 0) {
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
    s_request(state, "get", table, key, NULL, NULL, (node_hash_req_t){.w = w, .out = out});
}

static void s_set_ex(void *state, const char *table, const char *key, json_object **value,
                     int64_t ttl_ms, bool nx, bool *stored, node_wait_t *w)
{
    json_object *extra = NULL;
    if (ttl_ms > 0 || nx) {
        extra = json_object_new_object();
        if (ttl_ms > 0)
            json_object_object_add(extra, "ttl_ms", json_object_new_int64(ttl_ms));
        if (nx)
            json_object_object_add(extra, "nx", json_object_new_boolean(true));
    }
    *stored = !nx; /* a plain set answers null; add answers whether it stored */
    s_request(state, "set", table, key, value, extra,
              (node_hash_req_t){.w = w, .present = nx ? stored : NULL});
}

static void s_incr(void *state, const char *table, const char *key, int64_t delta, int64_t *out,
                   node_wait_t *w)
{
    json_object *extra = json_object_new_object();
    json_object_object_add(extra, "delta", json_object_new_int64(delta));
    s_request(state, "incr", table, key, NULL, extra, (node_hash_req_t){.w = w, .number = out});
}

static void s_keys(void *state, const char *table, size_t max, json_object **out, bool *truncated,
                   node_wait_t *w)
{
    json_object *extra = json_object_new_object();
    json_object_object_add(extra, "max", json_object_new_int64((int64_t) max));
    s_request(state, "keys", table, NULL, NULL, extra,
              (node_hash_req_t){.w = w, .out = out, .present = truncated, .keys = true});
}

static void s_del(void *state, const char *table, const char *key, node_wait_t *w)
{
    s_request(state, "delete", table, key, NULL, NULL, (node_hash_req_t){.w = w});
}

static void s_contains(void *state, const char *table, const char *key, bool *out, node_wait_t *w)
{
    s_request(state, "contains", table, key, NULL, NULL, (node_hash_req_t){.w = w, .present = out});
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
        int code = skick_err_code(skick_get_string(body, "code", NULL), SKICK_EBACKEND);
        switch (code) { /* what the store says, and why it failed when it is Redis */
        case SKICK_ENOTFOUND:
        case SKICK_EINVAL:
        case SKICK_ETYPE:
        case SKICK_EUNREACH:
        case SKICK_ETIMEDOUT:
        case SKICK_EBACKLOG:
            err = code;
            break;
        default:
            err = SKICK_EBACKEND;
        }
    } else if (r->keys) {
        json_object *result = json_object_object_get(body, "result"), *keys = NULL;
        if (json_object_object_get_ex(result, "keys", &keys) &&
            json_object_is_type(keys, json_type_array)) {
            json_object_deep_copy(keys, r->out, NULL);
            *r->present = skick_get_bool(result, "truncated", false);
        } else {
            err = SKICK_EBACKEND;
        }
    } else {
        json_object *result = json_object_object_get(body, "result");
        if (r->number) {
            if (json_object_is_type(result, json_type_int))
                *r->number = json_object_get_int64(result);
            else
                err = SKICK_EBACKEND;
        }
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
    .set_ex = s_set_ex,
    .del = s_del,
    .contains = s_contains,
    .incr = s_incr,
    .keys = s_keys,
    .cancel = s_cancel,
};
