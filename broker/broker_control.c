/*  broker_control - CONTROL requests addressed to the broker (to_shard 0)

    Request {"op": ..., "id": <any JSON, echoed>, ...arguments}; exactly one
    REPLY goes back to the sender: {"id", "ok": true, "result"} or {"id",
    "ok": false, "code", "error"}. Operations: ps, directory, services,
    stats, hash (PROTOCOL.md "Control requests"). This file builds the
    REPLY's body (broker_control_answer) and sends nothing: broker_route.c
    sends it, `to` being the request's `from`, or the peer's own address
    when that was 0/0. Runs on the broker thread; results are built fresh
    and handed to the REPLY.

    The hash op runs on the memory store (broker_hash.c), or with --hash on
    Redis (broker_redis.c): the same members are checked the same way
    (s_hash_parse) before either store is told. Redis answers later: the
    request's id and its asker wait in an s_later_t, and the REPLY body
    built when Redis answers goes out through b->answer_later (set by main
    to route's sender: this file still sends nothing itself).

    Who may ask: the control plane (clients on the control endpoint) may
    make every request. A shard needs one thing from the broker, its hash
    operations (the cluster's default hash store, node_cluster_hash.c), so
    that is all a peer on the shard endpoint is served
    (broker_control_shard_may; broker_route.c refuses the rest): without
    CURVE anybody who can connect to the shard endpoint joins as a shard,
    and must not get ps, services, stats or the operations forwarded to
    shards (actors, sessions, stop) that way.
*/
#include "broker_control.h"
#include "broker_hash.h"
#include "broker_redis.h"
#include "skick_hash_names.h"

#include <string.h>

/*  A member of p's HELLO body, as a new reference (NULL when absent). */
static json_object *s_hello(const broker_peer_t *p, const char *key)
{
    json_object *v = NULL;
    json_object_object_get_ex(p->hello, key, &v);
    return json_object_get(v);
}

static json_object *s_ps(broker_t *b)
{
    int64_t now = zclock_mono();
    json_object *list = json_object_new_array();
    for (broker_peer_t *p = zhashx_first(b->by_id); p; p = zhashx_next(b->by_id)) {
        if (!p->shard)
            continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "shard", json_object_new_string(p->hex));
        static const char *const keys[] = {"roles", "pid", "host", "ws", "apps"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            json_object_object_add(o, keys[i], s_hello(p, keys[i]));
        json_object_object_add(o, "joined_ms", json_object_new_int64(p->joined_wall_ms));
        int64_t since = p->last_hb_ms ? p->last_hb_ms : p->last_seen_ms;
        json_object_object_add(o, "heartbeat_age_ms", json_object_new_int64(now - since));
        json_object_object_add(o, "load", json_object_get(p->load));
        json_object_object_add(o, "msgs_per_s", json_object_new_double(p->msgs_per_s));
        json_object_array_add(list, o);
    }
    return list;
}

static json_object *s_directory(broker_t *b)
{
    json_object *dir = json_object_new_object();
    for (broker_peer_t *p = zhashx_first(b->by_id); p; p = zhashx_next(b->by_id))
        if (p->shard && p->dir)
            json_object_object_add(dir, p->hex, json_object_get(p->dir));
    return dir;
}

static json_object *s_services(broker_t *b, const char *only)
{
    json_object *list = json_object_new_array();
    for (broker_peer_t *p = zhashx_first(b->by_id); p; p = zhashx_next(b->by_id)) {
        json_object *services;
        if (!p->shard || !json_object_object_get_ex(p->dir, "services", &services) ||
            !json_object_is_type(services, json_type_object))
            continue;
        json_object_object_foreach(services, name, actors)
        {
            if ((only && strcmp(only, name) != 0) || !json_object_is_type(actors, json_type_array))
                continue;
            for (size_t i = 0; i < json_object_array_length(actors); i++) {
                uint64_t actor;
                json_object *a = json_object_array_get_idx(actors, i);
                if (!json_object_is_type(a, json_type_string) ||
                    broker_id_parse(json_object_get_string(a), &actor) != 0 || !actor)
                    continue; /* not an actor id: the shard's bug, not listed */
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "address", broker_json_addr(p->id, actor));
                json_object_object_add(o, "shard", json_object_new_string(p->hex));
                json_object_array_add(list, o);
            }
        }
    }
    return list;
}

static json_object *s_stats(broker_t *b)
{
    size_t shards = 0, clients = 0;
    for (broker_peer_t *p = zhashx_first(b->by_id); p; p = zhashx_next(b->by_id))
        p->shard ? shards++ : clients++;
    const broker_stats_t *s = &b->stats;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "uptime_ms", json_object_new_int64(zclock_mono() - b->started_ms));
    json_object_object_add(o, "broker", json_object_new_string(b->instance_hex));
    json_object_object_add(o, "peers", json_object_new_int64((int64_t) (shards + clients)));
    json_object_object_add(o, "shards", json_object_new_int64((int64_t) shards));
    json_object_object_add(o, "clients", json_object_new_int64((int64_t) clients));
    /* two per line (clang-format would give each its own) */
    /* clang-format off */
    const struct {
        const char *name;
        uint64_t value;
    } counters[] = {
        {"routed", s->routed},                     {"dead_letters", s->dead_letters},
        {"malformed", s->malformed},               {"gaps", s->gaps},
        {"duplicates", s->duplicates},             {"lost", s->lost},
        {"strangers", s->strangers},               {"directory_dropped", s->dir_dropped},
        {"directory_accepted", s->dir_accepted},   {"directory_refused", s->dir_refused},
        {"control_refused", s->control_refused},   {"hello_refused", s->hello_refused},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        json_object_object_add(o, counters[i].name, json_object_new_uint64(counters[i].value));
    json_object_object_add(o, "hash_store", json_object_new_string(b->redis ? "redis" : "memory"));
    if (b->redis) { /* the tables are Redis's: their counts are not the broker's to give */
        json_object_object_add(o, "hash_redis",
                               json_object_new_string(broker_redis_shown(b->redis)));
        json_object_object_add(o, "hash_connected",
                               json_object_new_boolean(broker_redis_connected(b->redis)));
        json_object_object_add(o, "hash_inflight",
                               json_object_new_int64((int64_t) broker_redis_inflight(b->redis)));
        return o;
    }
    json_object_object_add(o, "hash_tables",
                           json_object_new_int64((int64_t) broker_hash_tables(b->hash)));
    json_object_object_add(o, "hash_keys",
                           json_object_new_int64((int64_t) broker_hash_keys(b->hash)));
    return o;
}

/*  The hash op's string member name of rq: 0 with *out (borrowed) and *len,
    or EINVAL with *why when it is absent or not a string. */
static int s_hash_str(json_object *rq, const char *name, const char **out, size_t *len,
                      const char **why, const char *missing)
{
    json_object *v;
    if (!json_object_object_get_ex(rq, name, &v) || !json_object_is_type(v, json_type_string)) {
        *why = missing;
        return SKICK_EINVAL;
    }
    *out = json_object_get_string(v);
    *len = (size_t) json_object_get_string_len(v);
    return 0;
}

/*  The optional integer member name of rq in [min, max]: 0 with *out (def
    when absent), or EINVAL with *why. */
static int s_hash_int(json_object *rq, const char *name, int64_t min, int64_t max, int64_t def,
                      int64_t *out, const char **why, const char *bad)
{
    json_object *v;
    *out = def;
    if (!json_object_object_get_ex(rq, name, &v))
        return 0;
    /* a uint64 above INT64_MAX reads as INT64_MAX: refuse it by its text */
    if (!json_object_is_type(v, json_type_int) ||
        (json_object_get_int64(v) == INT64_MAX &&
         json_object_get_uint64(v) > (uint64_t) INT64_MAX) ||
        json_object_get_int64(v) < min || json_object_get_int64(v) > max) {
        *why = bad;
        return SKICK_EINVAL;
    }
    *out = json_object_get_int64(v);
    return 0;
}

/*  set's members: {"value", "ttl_ms"?: n > 0, "nx"?: bool} into op. */
static int s_hash_set_args(json_object *rq, int64_t now, skick_redis_op_t *op, const char **why)
{
    json_object *nxv = NULL;
    if (!json_object_object_get_ex(rq, "value", &op->value)) {
        *why = "hash set needs a value";
        return SKICK_EINVAL;
    }
    if (s_hash_int(rq, "ttl_ms", 1, INT64_MAX - now, 0, &op->ttl_ms, why,
                   "hash set: ttl_ms must be a positive integer (milliseconds)") != 0)
        return SKICK_EINVAL;
    if (json_object_object_get_ex(rq, "nx", &nxv) && !json_object_is_type(nxv, json_type_boolean)) {
        *why = "hash set: nx must be true or false";
        return SKICK_EINVAL;
    }
    op->nx = nxv && json_object_get_boolean(nxv);
    return 0;
}

/*  The hash op's request rq as an operation (borrowing rq's strings), its
    members checked. 0, or EINVAL with *why. */
static int s_hash_parse(json_object *rq, int64_t now, skick_redis_op_t *op, const char **why)
{
    static const char *const cmds[] = {
        [SKICK_REDIS_GET] = "get",       [SKICK_REDIS_SET] = "set",
        [SKICK_REDIS_DELETE] = "delete", [SKICK_REDIS_CONTAINS] = "contains",
        [SKICK_REDIS_INCR] = "incr",     [SKICK_REDIS_KEYS] = "keys",
    };
    const char *cmd;
    size_t n, tl, kl = 0;
    int64_t num;
    *op = (skick_redis_op_t){0};
    if (s_hash_str(rq, "cmd", &cmd, &n, why, "hash needs a string cmd") != 0 ||
        s_hash_str(rq, "table", &op->table, &tl, why, "hash needs a string table") != 0)
        return SKICK_EINVAL;
    if (!skick_hash_table_valid(op->table, tl)) {
        *why = "hash: a table name is 1-256 bytes of A-Z a-z 0-9 _ . -";
        return SKICK_EINVAL;
    }
    size_t c = 0;
    while (c < sizeof cmds / sizeof cmds[0] && strcmp(cmd, cmds[c]) != 0)
        c++;
    if (c == sizeof cmds / sizeof cmds[0]) {
        *why = "unknown hash cmd (get, set, delete, contains, incr, keys)";
        return SKICK_EINVAL;
    }
    op->cmd = (skick_redis_cmd_t) c;
    if (op->cmd == SKICK_REDIS_KEYS) {
        if (s_hash_int(rq, "max", 1, BROKER_HASH_KEYS_MAX, 0, &num, why,
                       "hash keys: max must be an integer from 1 to 100000") != 0)
            return SKICK_EINVAL;
        if (num == 0) {
            *why = "hash keys needs max (1 to 100000)";
            return SKICK_EINVAL;
        }
        op->max = (size_t) num;
        return 0;
    }
    if (s_hash_str(rq, "key", &op->key, &kl, why, "hash needs a string key") != 0)
        return SKICK_EINVAL;
    if (!skick_hash_key_valid(op->key, kl)) {
        *why = "hash: a key is 1-1024 bytes without control characters";
        return SKICK_EINVAL;
    }
    if (op->cmd == SKICK_REDIS_SET)
        return s_hash_set_args(rq, now, op, why);
    if (op->cmd == SKICK_REDIS_INCR) {
        json_object *d;
        if (!json_object_object_get_ex(rq, "delta", &d)) {
            *why = "hash incr needs an integer delta";
            return SKICK_EINVAL;
        }
        return s_hash_int(rq, "delta", INT64_MIN, INT64_MAX, 0, &op->delta, why,
                          "hash incr: delta must be an integer (int64)");
    }
    return 0;
}

/*  op on the memory store. Returns 0 with *result set, or an error code
    with *why. */
static int s_hash_memory(broker_t *b, const skick_redis_op_t *op, int64_t now,
                         json_object **result, const char **why)
{
    int rc = 0;
    bool flag;
    switch (op->cmd) {
    case SKICK_REDIS_KEYS: {
        json_object *keys = broker_hash_list(b->hash, op->table, op->max, now, &flag);
        *result = json_object_new_object();
        json_object_object_add(*result, "keys", keys);
        json_object_object_add(*result, "truncated", json_object_new_boolean(flag));
        return 0;
    }
    case SKICK_REDIS_GET: {
        json_object *v;
        if ((rc = broker_hash_get(b->hash, op->table, op->key, now, &v)) == 0)
            *result = json_object_get(v);
        break;
    }
    case SKICK_REDIS_SET: {
        json_object *mine = json_object_get(op->value); /* shared with the request, never mutated */
        rc = broker_hash_set(b->hash, op->table, op->key, &mine, op->ttl_ms, op->nx, now, &flag);
        json_object_put(mine); /* still ours when not stored */
        if (rc != 0) {
            *why = "hash set: ttl_ms too large";
            return rc;
        }
        if (op->nx)
            *result = json_object_new_boolean(flag);
        return 0;
    }
    case SKICK_REDIS_DELETE:
        rc = broker_hash_delete(b->hash, op->table, op->key, now);
        break;
    case SKICK_REDIS_CONTAINS:
        *result = json_object_new_boolean(broker_hash_contains(b->hash, op->table, op->key, now));
        break;
    case SKICK_REDIS_INCR: {
        int64_t out;
        if ((rc = broker_hash_incr(b->hash, op->table, op->key, op->delta, now, &out)) == 0)
            *result = json_object_new_int64(out);
        break;
    }
    }
    if (rc == SKICK_ENOTFOUND)
        *why = "no such key";
    else if (rc == SKICK_ETYPE)
        *why = "hash incr: the stored value is not an integer";
    else if (rc == SKICK_EINVAL)
        *why = "hash incr: the result would overflow int64";
    return rc;
}

/*  A hash request waiting for Redis: who asked, and the request's id. */
typedef struct {
    broker_t *b;          /* the broker */
    broker_asker_t asker; /* where the REPLY goes */
    json_object *id;      /* the request's "id" (owned), echoed */
} s_later_t;

static json_object *s_body(json_object *id, int code, json_object *result, const char *why);

/*  Redis answered (broker_redis_done_fn): the REPLY goes out now. */
static void s_hash_done(void *arg, int code, json_object *result, const char *why)
{
    s_later_t *l = arg;
    json_object *body = s_body(l->id, code, result, why);
    l->b->answer_later(l->b, &l->asker, &body);
    json_object_put(body); /* NULL once sent */
    json_object_put(l->id);
    free(l);
}

/*  The hash op (PROTOCOL.md "The hash operation"). Returns 0 with *result
    set, or an error code with *why; with the Redis store, 0 and *later
    when the answer goes out later through b->answer_later. */
static int s_hash(broker_t *b, json_object *rq, const broker_asker_t *asker, bool *later,
                  json_object **result, const char **why)
{
    skick_redis_op_t op;
    int64_t now = zclock_mono();
    *result = NULL;
    int rc = s_hash_parse(rq, now, &op, why);
    if (rc != 0 || !b->redis)
        return rc ? rc : s_hash_memory(b, &op, now, result, why);
    s_later_t *l = broker_alloc(sizeof *l);
    json_object *id = NULL;
    json_object_object_get_ex(rq, "id", &id);
    *l = (s_later_t){.b = b, .asker = *asker, .id = json_object_get(id)};
    if ((rc = broker_redis_run(b->redis, &op, s_hash_done, l, why)) != 0) {
        json_object_put(l->id);
        free(l);
        return rc;
    }
    *later = true;
    return 0;
}

/*  Run the request. Returns 0 with *result set, or an error code with *why. */
static int s_run(broker_t *b, json_object *rq, const broker_asker_t *asker, bool *later,
                 json_object **result, const char **why)
{
    *result = NULL;
    const char *op = broker_json_str(rq, "op");
    if (!json_object_is_type(rq, json_type_object) || !op) {
        *why = "a control request is an object with a string \"op\"";
        return SKICK_EINVAL;
    }
    if (strcmp(op, "ps") == 0)
        *result = s_ps(b);
    else if (strcmp(op, "directory") == 0)
        *result = s_directory(b);
    else if (strcmp(op, "services") == 0) {
        json_object *name = NULL;
        if (json_object_object_get_ex(rq, "name", &name) && name &&
            !json_object_is_type(name, json_type_string)) {
            *why = "services: name must be a string";
            return SKICK_EINVAL;
        }
        *result = s_services(b, name ? json_object_get_string(name) : NULL);
    } else if (strcmp(op, "stats") == 0)
        *result = s_stats(b);
    else if (strcmp(op, "hash") == 0)
        return s_hash(b, rq, asker, later, result, why);
    else {
        *why = "unknown operation (the broker knows ps, directory, services, stats, hash)";
        return SKICK_EINVAL;
    }
    return 0;
}

bool broker_control_shard_may(const skick_envelope_t *e)
{
    if (e->to_shard != 0)
        return false; /* forwarded to a shard: actors, sessions, stats, stop */
    const char *op = broker_json_str(e->body, "op");
    return op && strcmp(op, "hash") == 0;
}

/*  The REPLY body {"id", "ok": true, "result"} (result taken) or {"id",
    "ok": false, "code", "error"}; id borrowed. */
static json_object *s_body(json_object *id, int code, json_object *result, const char *why)
{
    json_object *body = json_object_new_object();
    json_object_object_add(body, "id", json_object_get(id));
    json_object_object_add(body, "ok", json_object_new_boolean(code == 0));
    if (code == 0) {
        json_object_object_add(body, "result", result);
    } else {
        json_object_put(result);
        json_object_object_add(body, "code", json_object_new_string(skick_err_name(code)));
        json_object_object_add(body, "error", json_object_new_string(why));
    }
    return body;
}

json_object *broker_control_answer(broker_t *b, const skick_envelope_t *e,
                                   const broker_asker_t *asker)
{
    json_object *result, *id = NULL;
    const char *why = NULL;
    bool later = false;
    int code = s_run(b, e->body, asker, &later, &result, &why);
    if (later)
        return NULL;
    if (json_object_is_type(e->body, json_type_object))
        json_object_object_get_ex(e->body, "id", &id);
    return s_body(id, code, result, why);
}
