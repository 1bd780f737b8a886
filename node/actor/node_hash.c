/*  node_hash - skick_hash_*: the suspending API and the in-process backend

    The API is written against a backend table (node_actor.h) whose operations
    complete through node_wait_complete, possibly before returning: the
    in-process backend always does, so it never switches; the broker and
    Redis backends complete later, from the loop, and the caller's coroutine
    waits (bounded by the shard's call timeout). Values are JSON; get returns
    a private deep copy the caller owns.

    Table and key names are checked here once for every backend: 1-256 bytes
    of [A-Za-z0-9_.-] for tables, 1-1024 bytes without control characters
    for keys, so that backends can map them to their own namespaces safely.
*/
#include "node_actor.h"

#include <stdlib.h>
#include <string.h>

static bool s_valid(const char *table, const char *key)
{
    size_t tl = table ? strnlen(table, 257) : 0;
    size_t kl = key ? strnlen(key, 1025) : 0;
    if (tl == 0 || tl > 256 || kl == 0 || kl > 1024)
        return false;
    for (size_t i = 0; i < tl; i++) {
        char c = table[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    for (size_t i = 0; i < kl; i++)
        if ((unsigned char) key[i] < 0x20 || key[i] == 0x7f)
            return false;
    return true;
}

static int s_finish(node_shard_t *sh, node_wait_t *w)
{
    int rc = node_wait(w, sh->cfg.call_timeout_ms);
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
    sh->hash->get(sh->hash_state, table, key, &out, &w);
    if (s_finish(sh, &w) != 0) {
        json_object_put(out);
        return NULL;
    }
    return out;
}

int skick_hash_set(skick_actor_t *self, const char *table, const char *key,
                   json_object **value)
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
    node_wait_t w;
    node_wait_init(&w);
    sh->hash->set(sh->hash_state, table, key, value, &w);
    return s_finish(sh, &w);
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
    sh->hash->del(sh->hash_state, table, key, &w);
    return s_finish(sh, &w);
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
    sh->hash->contains(sh->hash_state, table, key, present, &w);
    return s_finish(sh, &w);
}

/* ------------------------------------------------------------------------- */
/* The in-process backend: table name -> JSON object                          */

static void s_put_table(void *p)
{
    json_object_put(p);
}

static void *s_open(node_shard_t *sh, const char *url)
{
    (void) sh;
    (void) url;
    node_strmap_t *tables = node_malloc(sizeof *tables);
    node_strmap_init(tables);
    return tables;
}

static void s_close(void *state)
{
    node_strmap_free(state, s_put_table);
    free(state);
}

static void s_get(void *state, const char *table, const char *key, json_object **out,
                  node_wait_t *w)
{
    json_object *t = node_strmap_get(state, table), *v = NULL;
    if (t && json_object_object_get_ex(t, key, &v)) {
        if (json_object_deep_copy(v, out, NULL) != 0) {
            node_wait_complete(w, SKICK_ENOMEM);
            return;
        }
        node_wait_complete(w, SKICK_OK);
    } else {
        node_wait_complete(w, SKICK_ENOTFOUND);
    }
}

static void s_set(void *state, const char *table, const char *key, json_object **value,
                  node_wait_t *w)
{
    json_object *t = node_strmap_get(state, table);
    if (!t) {
        t = json_object_new_object();
        node_strmap_put(state, table, t);
    }
    json_object_object_add(t, key, *value);
    *value = NULL;
    node_wait_complete(w, SKICK_OK);
}

static void s_del(void *state, const char *table, const char *key, node_wait_t *w)
{
    json_object *t = node_strmap_get(state, table);
    if (!t || !json_object_object_get_ex(t, key, NULL)) {
        node_wait_complete(w, SKICK_ENOTFOUND);
        return;
    }
    json_object_object_del(t, key);
    node_wait_complete(w, SKICK_OK);
}

static void s_contains(void *state, const char *table, const char *key, bool *out,
                       node_wait_t *w)
{
    json_object *t = node_strmap_get(state, table);
    *out = t && json_object_object_get_ex(t, key, NULL);
    node_wait_complete(w, SKICK_OK);
}

node_hash_backend_t node_hash_inproc = {
    .name = "inproc",
    .open = s_open,
    .close = s_close,
    .get = s_get,
    .set = s_set,
    .del = s_del,
    .contains = s_contains,
    .cancel = NULL, /* every operation completes before returning */
};
