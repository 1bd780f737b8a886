/*  broker_hash - the cluster's default hash store: named tables of JSON values

    Told by broker_control.c (the hash op); created and destroyed by main.
    Uses only broker_util.c. The store owns every value it holds.
*/
#ifndef BROKER_HASH_H_INCLUDED
#define BROKER_HASH_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct broker_hash_t broker_hash_t;

/*  broker_hash_new: an empty store. Caller owns it; never NULL. */
broker_hash_t *broker_hash_new(void);

/*  broker_hash_destroy: free the store and every value; NULL-safe; sets
 *self_p to NULL. */
void broker_hash_destroy(broker_hash_t **self_p);

/*  broker_hash_get: the value of key in table, borrowed (may be NULL for a
    JSON null). Returns 0, or -1 when there is no such key. */
int broker_hash_get(broker_hash_t *self, const char *table, const char *key, json_object **value);

/*  broker_hash_set: set key in table to *value_p (taken; *value_p is set to
    NULL). Creates the table. Returns 0. */
int broker_hash_set(broker_hash_t *self, const char *table, const char *key, json_object **value_p);

/*  broker_hash_delete: remove key from table (an emptied table goes too).
    Returns 0, or -1 when there was no such key. */
int broker_hash_delete(broker_hash_t *self, const char *table, const char *key);

/*  broker_hash_contains: true when table holds key. */
bool broker_hash_contains(broker_hash_t *self, const char *table, const char *key);

/*  broker_hash_tables: number of tables. */
size_t broker_hash_tables(broker_hash_t *self);

/*  broker_hash_keys: number of keys over all tables. */
size_t broker_hash_keys(broker_hash_t *self);

#endif
