/*  redis_app - the session type tests/integration/test_redis.py (and
    bench/hash_bench.py) talk to: the hash API over a websocket

    Test-only. Session "hash", which socksends {"ready": "hash"} first:
      op     {"op", "table", "key"?, "value"?, "ttl"?, "delta"?, "max"?, "id"?}
             -> one coroutine (skick_spawn_task) runs the operation ->
             {"id", "ok": true, "result"?, "truncated"?} or {"id", "ok": false,
             "error": ERRNAME}, with "ms" it took. op is get, set, set_ttl,
             add, delete, contains, incr or keys.
      burst  {"op"..., "n", "id"?, "keys"?: bool} -> n such coroutines at once
             (key suffixed with "-<i>" when keys is true) -> one message
             {"id", "burst": true, "n", "errors": {ERRNAME: count}, "seconds"}
             when all ended.
      bench  {"op": "get"|"set", "n", "conc", "table", "key"} -> conc coroutines
             doing n/conc sequential round trips each (set stores "x") ->
             {"bench": true, "n", "seconds", "errors"}.
      ping   {"n"} -> {"pong": n} at once, from the session's mailbox: another
             actor of the shard answers while hash operations wait.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skick/skick.h"

#define ANY_OBJECT "{\"$schema\": \"http://json-schema.org/draft-07/schema#\", \"type\": \"object\"}"

typedef struct {
    int left;            /* burst or bench coroutines still running */
    int n;               /* how many were started */
    json_object *errors; /* burst: error name -> count */
    double started;      /* seconds, monotonic */
    json_object *id;     /* the request's id */
    const char *what;    /* "burst" or the bench op */
} group_t;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*  Run the operation msg describes; returns the answer (without id, ms). */
static json_object *s_run(skick_actor_t *self, json_object *msg, const char *key)
{
    const char *op = skick_get_string(msg, "op", "");
    const char *table = skick_get_string(msg, "table", "t");
    json_object *value = NULL, *result = NULL;
    json_object_object_get_ex(msg, "value", &value);
    value = value ? json_object_get(value) : NULL;
    int rc = -1;
    bool truncated = false, present = false;
    int64_t n = 0;
    if (strcmp(op, "get") == 0) {
        result = skick_hash_get(self, table, key);
        rc = result ? 0 : -1;
    } else if (strcmp(op, "set") == 0) {
        rc = skick_hash_set(self, table, key, &value);
    } else if (strcmp(op, "set_ttl") == 0) {
        rc = skick_hash_set_ttl(self, table, key, &value, skick_get_int(msg, "ttl", 0));
    } else if (strcmp(op, "add") == 0) {
        rc = skick_hash_add(self, table, key, &value, skick_get_int(msg, "ttl", 0));
        if (rc >= 0)
            result = json_object_new_boolean(rc == 1);
    } else if (strcmp(op, "delete") == 0) {
        rc = skick_hash_delete(self, table, key);
    } else if (strcmp(op, "contains") == 0) {
        rc = skick_hash_contains(self, table, key, &present);
        if (rc == 0)
            result = json_object_new_boolean(present);
    } else if (strcmp(op, "incr") == 0) {
        rc = skick_hash_incr(self, table, key, skick_get_int(msg, "delta", 1), &n);
        if (rc == 0)
            result = json_object_new_int64(n);
    } else if (strcmp(op, "keys") == 0) {
        result = skick_hash_keys(self, table, (size_t) skick_get_int(msg, "max", 1000),
                                 &truncated);
        rc = result ? 0 : -1;
    } else {
        skick_set_errno(SKICK_EINVAL);
    }
    json_object_put(value); /* NULL when taken */
    json_object *m = json_object_new_object();
    json_object_object_add(m, "ok", json_object_new_boolean(rc >= 0));
    if (rc < 0) {
        json_object_object_add(m, "error", json_object_new_string(skick_err_name(skick_errno())));
        json_object_put(result);
        return m;
    }
    if (result)
        json_object_object_add(m, "result", result);
    if (strcmp(op, "keys") == 0)
        json_object_object_add(m, "truncated", json_object_new_boolean(truncated));
    return m;
}

static void s_copy_id(json_object *to, json_object *msg)
{
    json_object *id = NULL;
    if (json_object_object_get_ex(msg, "id", &id))
        json_object_object_add(to, "id", json_object_get(id));
}

static void s_op_task(skick_actor_t *self, json_object *msg)
{
    double t0 = s_now();
    json_object *m = s_run(self, msg, skick_get_string(msg, "key", "k"));
    s_copy_id(m, msg);
    json_object_object_add(m, "ms", json_object_new_double((s_now() - t0) * 1000));
    skick_socksend(self, &m);
}

static void s_op(skick_actor_t *self, json_object *msg)
{
    json_object *copy = json_object_get(msg);
    skick_spawn_task(self, s_op_task, &copy);
}

/*  One coroutine of a group ended with answer m (taken). */
static void s_group_done(skick_actor_t *self, group_t *g, json_object *m)
{
    json_object *err = NULL;
    const char *name = json_object_object_get_ex(m, "error", &err) ? json_object_get_string(err)
                                                                   : "OK";
    json_object *count = NULL;
    int64_t c = json_object_object_get_ex(g->errors, name, &count) ? json_object_get_int64(count)
                                                                   : 0;
    json_object_object_add(g->errors, name, json_object_new_int64(c + 1));
    json_object_put(m);
    if (--g->left > 0)
        return;
    json_object *r = json_object_new_object();
    if (g->id)
        json_object_object_add(r, "id", g->id);
    json_object_object_add(r, g->what, json_object_new_boolean(1));
    json_object_object_add(r, "n", json_object_new_int64(g->n));
    json_object_object_add(r, "errors", g->errors);
    json_object_object_add(r, "seconds", json_object_new_double(s_now() - g->started));
    free(g);
    skick_socksend(self, &r);
}

static group_t *s_group(json_object *msg, const char *what, int n)
{
    group_t *g = calloc(1, sizeof *g);
    g->left = g->n = n;
    g->errors = json_object_new_object();
    g->started = s_now();
    g->what = what;
    json_object *id = NULL;
    if (json_object_object_get_ex(msg, "id", &id))
        g->id = json_object_get(id);
    return g;
}

/*  The message of a group's coroutine: msg plus "_g" (the group's address) and "_i". */
static json_object *s_member(json_object *msg, group_t *g, int i)
{
    json_object *m = NULL;
    json_object_deep_copy(msg, &m, NULL);
    json_object_object_add(m, "_g", json_object_new_int64((int64_t) (intptr_t) g));
    json_object_object_add(m, "_i", json_object_new_int64(i));
    return m;
}

static void s_burst_task(skick_actor_t *self, json_object *msg)
{
    group_t *g = (group_t *) (intptr_t) skick_get_int(msg, "_g", 0);
    char key[1100];
    const char *base = skick_get_string(msg, "key", "k");
    if (skick_get_bool(msg, "keys", false))
        snprintf(key, sizeof key, "%s-%lld", base, (long long) skick_get_int(msg, "_i", 0));
    else
        snprintf(key, sizeof key, "%s", base);
    s_group_done(self, g, s_run(self, msg, key));
}

static void s_start_group(skick_actor_t *self, json_object *msg, const char *what,
                          skick_handler_fn *fn, int n)
{
    if (n <= 0)
        n = 1;
    group_t *g = s_group(msg, what, n);
    for (int i = 0; i < n; i++) {
        json_object *m = s_member(msg, g, i);
        skick_spawn_task(self, fn, &m);
    }
}

static void s_burst(skick_actor_t *self, json_object *msg)
{
    s_start_group(self, msg, "burst", s_burst_task, (int) skick_get_int(msg, "n", 1));
}

/*  A bench coroutine: its share of the round trips, one after the other. */
static void s_bench_task(skick_actor_t *self, json_object *msg)
{
    group_t *g = (group_t *) (intptr_t) skick_get_int(msg, "_g", 0);
    int64_t rounds = skick_get_int(msg, "n", 1) / skick_get_int(msg, "conc", 1);
    const char *table = skick_get_string(msg, "table", "bench");
    const char *key = skick_get_string(msg, "key", "k");
    bool set = strcmp(skick_get_string(msg, "op", "get"), "set") == 0;
    int errors = 0;
    for (int64_t i = 0; i < rounds; i++) {
        if (set) {
            json_object *v = json_object_new_string("x");
            errors += skick_hash_set(self, table, key, &v) != 0;
        } else {
            json_object *v = skick_hash_get(self, table, key);
            errors += v == NULL;
            json_object_put(v);
        }
    }
    json_object *m = json_object_new_object();
    if (errors)
        json_object_object_add(m, "error", json_object_new_string("some"));
    s_group_done(self, g, m);
}

static void s_bench(skick_actor_t *self, json_object *msg)
{
    s_start_group(self, msg, "bench", s_bench_task, (int) skick_get_int(msg, "conc", 1));
}

static void s_ping(skick_actor_t *self, json_object *msg)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "pong", json_object_new_int64(skick_get_int(msg, "n", 0)));
    skick_socksend(self, &m);
}

static void s_ready(skick_actor_t *self)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "ready", json_object_new_string("hash"));
    skick_socksend(self, &m);
}

static void s_hash_session(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_on_start(self, s_ready);
    skick_socket(self, "op", ANY_OBJECT, s_op);
    skick_socket(self, "burst", ANY_OBJECT, s_burst);
    skick_socket(self, "bench", ANY_OBJECT, s_bench);
    skick_socket(self, "ping", "{\"n\": \"integer\"}", s_ping);
}

SKICK_MODULE(redis_test_app)
{
    skick_session(app, "hash", s_hash_session);
}
