/*  broker_hash - the cluster's default hash store: named tables of JSON values

    In memory only: a broker restart empties it (docs/internals/broker.md).
    Tables are created by their first set and removed with their last key.
    Owned by the broker thread. The store owns every value; get returns a
    borrowed pointer valid until the key is next changed.

    Time to live: a key set with ttl_ms has a deadline on the broker's
    monotonic clock. A key whose deadline has passed is never seen: every
    operation that touches it (get, set, incr, delete, contains) or lists
    its table drops it first. So that keys nobody touches again still give
    their memory back, the deadlines are also kept in a binary min-heap
    (each value knows its slot, so a set or delete takes it out in
    O(log n)) and the broker's timer calls broker_hash_sweep every tick,
    which drops at most BROKER_HASH_SWEEP_MAX expired keys, soonest first:
    bounded work per turn of the loop, like Redis's active expiry.

    Bounds: there is no limit on the number of tables or keys (the store is
    the cluster's shared memory, as the in-process backend is the shard's);
    each value is bounded by the size of the CONTROL envelope it came in.
    Tables and keys follow proto/skick_hash_names.h, checked by
    broker_control.c before the store is asked.
*/
#include "broker_hash.h"
#include "broker_util.h"

#include "skick/err.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

/*  A value slot: zhashx cannot hold a NULL item, and JSON null is NULL. */
typedef struct {
    json_object *value; /* owned; NULL for JSON null */
    int64_t deadline;   /* monotonic ms when it expires; 0: lasting */
    size_t slot;        /* 1 + index in the heap; 0: not in it (lasting) */
    char *table;        /* owned copy of its table's name, while in the heap */
    char *key;          /* owned copy of its key, while in the heap */
} s_value_t;

struct broker_hash_t {
    zhashx_t *tables; /* table name -> zhashx_t of key -> s_value_t (owned) */
    size_t keys;      /* keys over all tables */
    s_value_t **heap; /* the values with a deadline, soonest first (borrowed) */
    size_t heap_len;  /* entries in heap */
    size_t heap_cap;  /* its allocated entries */
};

static void s_value_destroy(void **item)
{
    s_value_t *v = *item;
    if (v) {
        json_object_put(v->value);
        free(v->table);
        free(v->key);
        free(v);
        *item = NULL;
    }
}

static void s_table_destroy(void **item)
{
    zhashx_t *t = *item;
    zhashx_destroy(&t);
    *item = NULL;
}

broker_hash_t *broker_hash_new(void)
{
    broker_hash_t *self = broker_alloc(sizeof *self);
    self->tables = zhashx_new(); /* CZMQ aborts on OOM: never NULL */
    zhashx_set_destructor(self->tables, s_table_destroy);
    return self;
}

void broker_hash_destroy(broker_hash_t **self_p)
{
    broker_hash_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    free(self->heap); /* borrowed pointers: the tables free the values */
    zhashx_destroy(&self->tables);
    free(self);
    *self_p = NULL;
}

/* ---- the deadline heap ------------------------------------------------------ */

static void s_heap_put(broker_hash_t *self, size_t i, s_value_t *v)
{
    self->heap[i] = v;
    v->slot = i + 1;
}

static void s_heap_up(broker_hash_t *self, size_t i)
{
    s_value_t *v = self->heap[i];
    while (i > 0 && self->heap[(i - 1) / 2]->deadline > v->deadline) {
        s_heap_put(self, i, self->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    s_heap_put(self, i, v);
}

static void s_heap_down(broker_hash_t *self, size_t i)
{
    s_value_t *v = self->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= self->heap_len)
            break;
        if (c + 1 < self->heap_len && self->heap[c + 1]->deadline < self->heap[c]->deadline)
            c++;
        if (self->heap[c]->deadline >= v->deadline)
            break;
        s_heap_put(self, i, self->heap[c]);
        i = c;
    }
    s_heap_put(self, i, v);
}

/*  Take v out of the heap (if it is in) and make it lasting. */
static void s_heap_remove(broker_hash_t *self, s_value_t *v)
{
    if (!v->slot)
        return;
    size_t i = v->slot - 1;
    s_value_t *last = self->heap[--self->heap_len];
    if (last != v) {
        s_heap_put(self, i, last);
        s_heap_up(self, i);
        s_heap_down(self, last->slot - 1);
    }
    v->slot = 0;
    v->deadline = 0;
    free(v->table);
    free(v->key);
    v->table = v->key = NULL;
}

/*  Give v (of table, key) the deadline, in the heap. */
static void s_heap_add(broker_hash_t *self, s_value_t *v, const char *table, const char *key,
                       int64_t deadline)
{
    if (self->heap_len == self->heap_cap) {
        self->heap_cap = self->heap_cap ? 2 * self->heap_cap : 64;
        self->heap = realloc(self->heap, self->heap_cap * sizeof *self->heap);
        if (!self->heap)
            abort(); /* as broker_alloc: out of memory ends the broker */
    }
    v->deadline = deadline;
    v->table = strdup(table);
    v->key = strdup(key);
    if (!v->table || !v->key)
        abort();
    self->heap_len++;
    s_heap_put(self, self->heap_len - 1, v);
    s_heap_up(self, self->heap_len - 1);
}

/* ---- lookups ------------------------------------------------------------------ */

/*  Remove v, the value of key in table t (named table). */
static void s_drop(broker_hash_t *self, zhashx_t *t, const char *table, const char *key,
                   s_value_t *v)
{
    s_heap_remove(self, v);
    zhashx_delete(t, key);
    self->keys--;
    if (zhashx_size(t) == 0)
        zhashx_delete(self->tables, table);
}

/*  The live value of key in table (an expired one is dropped), or NULL;
 *t_out (may be NULL) gets the table, NULL when absent or just emptied. */
static s_value_t *s_find(broker_hash_t *self, const char *table, const char *key, int64_t now,
                         zhashx_t **t_out)
{
    zhashx_t *t = zhashx_lookup(self->tables, table);
    s_value_t *v = t ? zhashx_lookup(t, key) : NULL;
    if (v && v->deadline && v->deadline <= now) {
        bool last = zhashx_size(t) == 1;
        s_drop(self, t, table, key, v);
        v = NULL;
        if (last)
            t = NULL;
    }
    if (t_out)
        *t_out = t;
    return v;
}

int broker_hash_get(broker_hash_t *self, const char *table, const char *key, int64_t now,
                    json_object **value)
{
    s_value_t *v = s_find(self, table, key, now, NULL);
    if (!v)
        return SKICK_ENOTFOUND;
    *value = v->value;
    return 0;
}

/*  The slot for key in table, created (with its table) when absent; *fresh
    says whether it was. */
static s_value_t *s_slot(broker_hash_t *self, const char *table, const char *key, int64_t now,
                         bool *fresh)
{
    zhashx_t *t;
    s_value_t *v = s_find(self, table, key, now, &t);
    *fresh = !v;
    if (v)
        return v;
    if (!t) {
        t = zhashx_new();
        zhashx_set_destructor(t, s_value_destroy);
        zhashx_insert(self->tables, table, t);
    }
    v = broker_alloc(sizeof *v);
    zhashx_insert(t, key, v);
    self->keys++;
    return v;
}

int broker_hash_set(broker_hash_t *self, const char *table, const char *key, json_object **value_p,
                    int64_t ttl_ms, bool nx, int64_t now, bool *stored)
{
    *stored = false;
    if (ttl_ms < 0 || (ttl_ms > 0 && now > INT64_MAX - ttl_ms))
        return SKICK_EINVAL;
    if (nx && s_find(self, table, key, now, NULL))
        return 0; /* present: *value_p stays the caller's */
    bool fresh;
    s_value_t *v = s_slot(self, table, key, now, &fresh);
    json_object_put(v->value);
    v->value = *value_p;
    *value_p = NULL;
    s_heap_remove(self, v);
    if (ttl_ms > 0)
        s_heap_add(self, v, table, key, now + ttl_ms);
    *stored = true;
    return 0;
}

int broker_hash_incr(broker_hash_t *self, const char *table, const char *key, int64_t delta,
                     int64_t now, int64_t *out)
{
    s_value_t *v = s_find(self, table, key, now, NULL);
    int64_t cur = 0;
    if (v) {
        if (!json_object_is_type(v->value, json_type_int))
            return SKICK_ETYPE;
        cur = json_object_get_int64(v->value);
        if (cur == INT64_MAX && json_object_get_uint64(v->value) > (uint64_t) INT64_MAX)
            return SKICK_EINVAL; /* a uint64 above int64's range: overflowed already */
    }
    if (__builtin_add_overflow(cur, delta, out))
        return SKICK_EINVAL;
    bool fresh;
    v = s_slot(self, table, key, now, &fresh);
    json_object_put(v->value); /* a fresh object: a value sent out in a reply stays as it was */
    v->value = json_object_new_int64(*out);
    return 0;
}

int broker_hash_delete(broker_hash_t *self, const char *table, const char *key, int64_t now)
{
    zhashx_t *t;
    s_value_t *v = s_find(self, table, key, now, &t);
    if (!v)
        return SKICK_ENOTFOUND;
    s_drop(self, t, table, key, v);
    return 0;
}

bool broker_hash_contains(broker_hash_t *self, const char *table, const char *key, int64_t now)
{
    return s_find(self, table, key, now, NULL) != NULL;
}

json_object *broker_hash_list(broker_hash_t *self, const char *table, size_t max, int64_t now,
                              bool *truncated)
{
    json_object *out = json_object_new_array();
    zhashx_t *t = zhashx_lookup(self->tables, table);
    *truncated = false;
    if (!t)
        return out;
    zlistx_t *expired = zlistx_new(); /* keys to drop once the walk is over */
    zlistx_set_destructor(expired, (zlistx_destructor_fn *) zstr_free);
    for (s_value_t *v = zhashx_first(t); v; v = zhashx_next(t)) {
        const char *key = zhashx_cursor(t);
        if (v->deadline && v->deadline <= now)
            zlistx_add_end(expired, strdup(key));
        else if (json_object_array_length(out) < max)
            json_object_array_add(out, json_object_new_string(key));
        else
            *truncated = true;
    }
    for (char *key = zlistx_first(expired); key; key = zlistx_next(expired))
        s_find(self, table, key, now, NULL); /* drops it */
    zlistx_destroy(&expired);
    return out;
}

size_t broker_hash_sweep(broker_hash_t *self, int64_t now, size_t max)
{
    size_t n = 0;
    while (n < max && self->heap_len && self->heap[0]->deadline <= now) {
        s_value_t *v = self->heap[0];
        char *table = v->table, *key = v->key; /* taken: s_drop frees v */
        v->table = v->key = NULL;
        zhashx_t *t = zhashx_lookup(self->tables, table);
        s_drop(self, t, table, key, v);
        free(table);
        free(key);
        n++;
    }
    return n;
}

size_t broker_hash_tables(broker_hash_t *self)
{
    return zhashx_size(self->tables);
}

size_t broker_hash_keys(broker_hash_t *self)
{
    return self->keys;
}
