/*  broker_hash - the cluster's default hash store: named tables of JSON values

    In memory only: a broker restart empties it (docs/internals/broker.md).
    Tables are created by their first set and removed with their last key.
    Owned by the broker thread. The store owns every value; get returns a
    borrowed pointer valid until the key is next set or deleted.
*/
#include "broker_hash.h"
#include "broker_util.h"

#include <czmq.h>
#include <stdlib.h>

struct broker_hash_t {
    zhashx_t *tables; /* table name -> zhashx_t of key -> s_value_t (owned) */
    size_t keys;      /* keys over all tables */
};

/*  A value slot: zhashx cannot hold a NULL item, and JSON null is NULL. */
typedef struct {
    json_object *value; /* owned; NULL for JSON null */
} s_value_t;

static void s_value_destroy(void **item)
{
    s_value_t *v = *item;
    if (v) {
        json_object_put(v->value);
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
    zhashx_destroy(&self->tables);
    free(self);
    *self_p = NULL;
}

static s_value_t *s_find(broker_hash_t *self, const char *table, const char *key)
{
    zhashx_t *t = zhashx_lookup(self->tables, table);
    return t ? zhashx_lookup(t, key) : NULL;
}

int broker_hash_get(broker_hash_t *self, const char *table, const char *key, json_object **value)
{
    s_value_t *v = s_find(self, table, key);
    if (!v)
        return -1;
    *value = v->value;
    return 0;
}

int broker_hash_set(broker_hash_t *self, const char *table, const char *key, json_object **value_p)
{
    zhashx_t *t = zhashx_lookup(self->tables, table);
    if (!t) {
        t = zhashx_new();
        zhashx_set_destructor(t, s_value_destroy);
        zhashx_insert(self->tables, table, t);
    }
    s_value_t *v = zhashx_lookup(t, key);
    if (v) {
        json_object_put(v->value);
    } else {
        v = broker_alloc(sizeof *v);
        zhashx_insert(t, key, v);
        self->keys++;
    }
    v->value = *value_p;
    *value_p = NULL;
    return 0;
}

int broker_hash_delete(broker_hash_t *self, const char *table, const char *key)
{
    zhashx_t *t = zhashx_lookup(self->tables, table);
    if (!t || !zhashx_lookup(t, key))
        return -1;
    zhashx_delete(t, key);
    self->keys--;
    if (zhashx_size(t) == 0)
        zhashx_delete(self->tables, table);
    return 0;
}

bool broker_hash_contains(broker_hash_t *self, const char *table, const char *key)
{
    return s_find(self, table, key) != NULL;
}

size_t broker_hash_tables(broker_hash_t *self)
{
    return zhashx_size(self->tables);
}

size_t broker_hash_keys(broker_hash_t *self)
{
    return self->keys;
}
