/*  node_hash - skick_hash_*: the suspending API and the in-process backend

    The API is written against a backend table (node_actor.h) whose operations
    complete through node_wait_complete, possibly before returning: the
    in-process backend always does, so it never switches; the broker and
    Redis backends complete later, from the loop, and the caller's coroutine
    waits (bounded by the shard's call timeout). Values are JSON; get returns
    a private deep copy the caller owns.

    Table and key names are checked here once for every backend, with the
    rule the broker applies too (proto/skick_hash_names.h), so that backends
    can map them to their own namespaces safely.
*/
#include "node_actor.h"
#include "skick_hash_names.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool s_valid(const char *table, const char *key)
{
    return table && key && skick_hash_table_valid(table, strnlen(table, 257)) &&
           skick_hash_key_valid(key, strnlen(key, 1025));
}

static double s_clock(const node_shard_t *sh)
{
    if (!sh->metrics)
        return 0; /* not counted: no clock read */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*  Wait for the operation started at t0 (s_clock) and count it. */
static int s_finish(node_shard_t *sh, node_wait_t *w, const char *op, double t0)
{
    int rc = node_wait(w, sh->cfg.call_timeout_ms);
    if (sh->metrics)
        node_metrics_hash(sh, op, rc, s_clock(sh) - t0);
    if (rc != SKICK_OK && sh->hash->cancel)
        sh->hash->cancel(sh->hash_state, w); /* a late answer must not touch w */
    if (rc != SKICK_OK) {
        skick_set_errno(rc);
        return -1;
    }
    return 0;
}

json_object *skick_hash_get(skick_actor_t *self, const char *table, const char *key)
{
    if (!s_valid(table, key)) {
        skick_set_errno(SKICK_EINVAL);
        return NULL;
    }
    node_shard_t *sh = self->shard;
    json_object *out = NULL;
    node_wait_t w;
    node_wait_init(&w);
    double t0 = s_clock(sh);
    sh->hash->get(sh->hash_state, table, key, &out, &w);
    if (s_finish(sh, &w, "get", t0) != 0) {
        json_object_put(out);
        return NULL;
    }
    return out;
}

/*  set, set_ttl and add: 1 stored, 0 present (add), -1 error. */
static int s_set_ex(skick_actor_t *self, const char *table, const char *key,
                    json_object **value, int64_t ttl_ms, bool nx)
{
    if (!value || !*value || !s_valid(table, key)) { /* null is not storable */
        if (value) {
            json_object_put(*value);
            *value = NULL;
        }
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    node_shard_t *sh = self->shard;
    bool stored = false;
    node_wait_t w;
    node_wait_init(&w);
    double t0 = s_clock(sh);
    sh->hash->set_ex(sh->hash_state, table, key, value, ttl_ms, nx, &stored, &w);
    json_object_put(*value); /* a backend that did not store it leaves it */
    *value = NULL;
    if (s_finish(sh, &w, "set", t0) != 0)
        return -1;
    return stored ? 1 : 0;
}

int skick_hash_set(skick_actor_t *self, const char *table, const char *key,
                   json_object **value)
{
    return s_set_ex(self, table, key, value, 0, false) < 0 ? -1 : 0;
}

int skick_hash_delete(skick_actor_t *self, const char *table, const char *key)
{
    if (!s_valid(table, key)) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    node_shard_t *sh = self->shard;
    node_wait_t w;
    node_wait_init(&w);
    double t0 = s_clock(sh);
    sh->hash->del(sh->hash_state, table, key, &w);
    return s_finish(sh, &w, "delete", t0);
}

int skick_hash_contains(skick_actor_t *self, const char *table, const char *key,
                        bool *present)
{
    if (!present || !s_valid(table, key)) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    node_shard_t *sh = self->shard;
    node_wait_t w;
    node_wait_init(&w);
    *present = false;
    double t0 = s_clock(sh);
    sh->hash->contains(sh->hash_state, table, key, present, &w);
    return s_finish(sh, &w, "contains", t0);
}

int skick_hash_set_ttl(skick_actor_t *self, const char *table, const char *key,
                       json_object **value, int64_t ttl_ms)
{
    if (ttl_ms <= 0) {
        if (value) {
            json_object_put(*value);
            *value = NULL;
        }
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    return s_set_ex(self, table, key, value, ttl_ms, false) < 0 ? -1 : 0;
}

int skick_hash_add(skick_actor_t *self, const char *table, const char *key,
                   json_object **value, int64_t ttl_ms)
{
    if (ttl_ms < 0) {
        if (value) {
            json_object_put(*value);
            *value = NULL;
        }
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    return s_set_ex(self, table, key, value, ttl_ms, true);
}

int skick_hash_incr(skick_actor_t *self, const char *table, const char *key, int64_t delta,
                    int64_t *value)
{
    if (!s_valid(table, key)) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    node_shard_t *sh = self->shard;
    int64_t out = 0;
    node_wait_t w;
    node_wait_init(&w);
    double t0 = s_clock(sh);
    sh->hash->incr(sh->hash_state, table, key, delta, &out, &w);
    if (s_finish(sh, &w, "incr", t0) != 0)
        return -1;
    if (value)
        *value = out;
    return 0;
}

json_object *skick_hash_keys(skick_actor_t *self, const char *table, size_t max,
                             bool *truncated)
{
    if (truncated)
        *truncated = false;
    if (!s_valid(table, "k") || max == 0 || max > NODE_HASH_KEYS_MAX) {
        skick_set_errno(SKICK_EINVAL);
        return NULL;
    }
    node_shard_t *sh = self->shard;
    json_object *out = NULL;
    bool more = false;
    node_wait_t w;
    node_wait_init(&w);
    double t0 = s_clock(sh);
    sh->hash->keys(sh->hash_state, table, max, &out, &more, &w);
    if (s_finish(sh, &w, "keys", t0) != 0) {
        json_object_put(out);
        return NULL;
    }
    if (truncated)
        *truncated = more;
    return out ? out : json_object_new_array();
}

/* ------------------------------------------------------------------------- */
/* The in-process backend: table name -> values and deadlines                  */

/*  One table: its values as a JSON object, and for the keys that have a
    time to live their deadline on the shard clock (node_now). An expired
    key is dropped when it is next touched (get, set, add, incr, contains,
    delete) or listed, so it is never seen; until then it costs its memory. */
typedef struct {
    json_object *values;  /* key -> value */
    node_strmap_t expiry; /* key -> int64_t* deadline (ms), keys with a TTL only */
} s_table_t;

typedef struct {
    node_shard_t *sh;    /* for the clock */
    node_strmap_t tables; /* name -> s_table_t* */
} s_inproc_t;

static void s_table_free(void *p)
{
    s_table_t *t = p;
    json_object_put(t->values);
    node_strmap_free(&t->expiry, free);
    free(t);
}

static void *s_open(node_shard_t *sh, const char *url)
{
    (void) url;
    s_inproc_t *st = node_malloc(sizeof *st);
    st->sh = sh;
    node_strmap_init(&st->tables);
    return st;
}

static void s_close(void *state)
{
    s_inproc_t *st = state;
    node_strmap_free(&st->tables, s_table_free);
    free(st);
}

/*  Drop key from t if its time is up. */
static void s_expire(s_inproc_t *st, s_table_t *t, const char *key)
{
    int64_t *deadline = node_strmap_get(&t->expiry, key);
    if (deadline && *deadline <= node_now(st->sh)) {
        json_object_object_del(t->values, key);
        free(node_strmap_del(&t->expiry, key));
    }
}

/*  Table name with key checked for expiry; NULL when the table is absent
    and create is false. */
static s_table_t *s_table(s_inproc_t *st, const char *name, const char *key, bool create)
{
    s_table_t *t = node_strmap_get(&st->tables, name);
    if (!t && create) {
        t = node_malloc(sizeof *t);
        t->values = json_object_new_object();
        node_strmap_init(&t->expiry);
        node_strmap_put(&st->tables, name, t);
    }
    if (t && key)
        s_expire(st, t, key);
    return t;
}

static void s_get(void *state, const char *table, const char *key, json_object **out,
                  node_wait_t *w)
{
    s_table_t *t = s_table(state, table, key, false);
    json_object *v = NULL;
    if (t && json_object_object_get_ex(t->values, key, &v)) {
        if (json_object_deep_copy(v, out, NULL) != 0) {
            node_wait_complete(w, SKICK_ENOMEM);
            return;
        }
        node_wait_complete(w, SKICK_OK);
    } else {
        node_wait_complete(w, SKICK_ENOTFOUND);
    }
}

static void s_mem_set_ex(void *state, const char *table, const char *key, json_object **value,
                     int64_t ttl_ms, bool nx, bool *stored, node_wait_t *w)
{
    s_inproc_t *st = state;
    s_table_t *t = s_table(st, table, key, true);
    *stored = false;
    if (nx && json_object_object_get_ex(t->values, key, NULL)) {
        node_wait_complete(w, SKICK_OK); /* present: *value stays the caller's */
        return;
    }
    json_object_object_add(t->values, key, *value);
    *value = NULL;
    free(node_strmap_del(&t->expiry, key));
    if (ttl_ms > 0) {
        int64_t *deadline = node_malloc(sizeof *deadline);
        *deadline = node_now(st->sh) + ttl_ms;
        node_strmap_put(&t->expiry, key, deadline);
    }
    *stored = true;
    node_wait_complete(w, SKICK_OK);
}

static void s_del(void *state, const char *table, const char *key, node_wait_t *w)
{
    s_table_t *t = s_table(state, table, key, false);
    if (!t || !json_object_object_get_ex(t->values, key, NULL)) {
        node_wait_complete(w, SKICK_ENOTFOUND);
        return;
    }
    json_object_object_del(t->values, key);
    free(node_strmap_del(&t->expiry, key));
    node_wait_complete(w, SKICK_OK);
}

static void s_contains(void *state, const char *table, const char *key, bool *out,
                       node_wait_t *w)
{
    s_table_t *t = s_table(state, table, key, false);
    *out = t && json_object_object_get_ex(t->values, key, NULL);
    node_wait_complete(w, SKICK_OK);
}

static void s_incr(void *state, const char *table, const char *key, int64_t delta,
                   int64_t *out, node_wait_t *w)
{
    s_table_t *t = s_table(state, table, key, true);
    json_object *v = NULL;
    int64_t now = 0;
    if (json_object_object_get_ex(t->values, key, &v)) {
        if (!json_object_is_type(v, json_type_int)) {
            node_wait_complete(w, SKICK_ETYPE);
            return;
        }
        now = json_object_get_int64(v);
    }
    if (__builtin_add_overflow(now, delta, out)) {
        node_wait_complete(w, SKICK_EINVAL);
        return;
    }
    if (v)
        json_object_set_int64(v, *out); /* in place: a time to live stays */
    else
        json_object_object_add(t->values, key, json_object_new_int64(*out));
    node_wait_complete(w, SKICK_OK);
}

static void s_keys(void *state, const char *table, size_t max, json_object **out,
                   bool *truncated, node_wait_t *w)
{
    s_inproc_t *st = state;
    s_table_t *t = s_table(st, table, NULL, false);
    *out = json_object_new_array();
    *truncated = false;
    if (t && t->expiry.count) { /* drop what expired first: it is not listed */
        json_object *names = json_object_new_array();
        json_object_object_foreach(t->values, k, v)
        {
            (void) v;
            if (node_strmap_get(&t->expiry, k))
                json_object_array_add(names, json_object_new_string(k));
        }
        for (size_t i = 0; i < json_object_array_length(names); i++)
            s_expire(st, t, json_object_get_string(json_object_array_get_idx(names, i)));
        json_object_put(names);
    }
    if (t) {
        json_object_object_foreach(t->values, k, v)
        {
            (void) v;
            if (json_object_array_length(*out) == max) {
                *truncated = true;
                break;
            }
            json_object_array_add(*out, json_object_new_string(k));
        }
    }
    node_wait_complete(w, SKICK_OK);
}

node_hash_backend_t node_hash_inproc = {
    .name = "inproc",
    .open = s_open,
    .close = s_close,
    .get = s_get,
    .set_ex = s_mem_set_ex,
    .del = s_del,
    .contains = s_contains,
    .incr = s_incr,
    .keys = s_keys,
    .cancel = NULL, /* every operation completes before returning */
};
