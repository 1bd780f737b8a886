/*  broker_hash - the cluster's default hash store: named tables of JSON values

    Told by broker_control.c (the hash op) and by broker_main.c's timer (the
    sweep); created and destroyed by main. Uses only broker_util.c. The
    store owns every value it holds. Times are the broker's monotonic clock
    (zclock_mono), passed in as `now` so the store never reads a clock.

    Errors are returned as SKICK_* codes (0: done), as broker_control.c
    answers them: ENOTFOUND, ETYPE, EINVAL.
*/
#ifndef BROKER_HASH_H_INCLUDED
#define BROKER_HASH_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct broker_hash_t broker_hash_t;

/*  The most keys one broker_hash_list answers (as skick_hash_keys). */
#define BROKER_HASH_KEYS_MAX 100000
/*  The most expired keys one broker_hash_sweep removes. */
#define BROKER_HASH_SWEEP_MAX 1000

/*  broker_hash_new: an empty store. Caller owns it; never NULL. */
broker_hash_t *broker_hash_new(void);

/*  broker_hash_destroy: free the store and every value; NULL-safe; sets
 *self_p to NULL. */
void broker_hash_destroy(broker_hash_t **self_p);

/*  broker_hash_get: the value of key in table, borrowed until the key is
    next changed (may be NULL for a JSON null). 0, or ENOTFOUND when there
    is no such key (or its time is up). */
int broker_hash_get(broker_hash_t *self, const char *table, const char *key, int64_t now,
                    json_object **value);

/*  broker_hash_set: set key in table to *value_p, creating the table. With
    nx, only when the key is absent; ttl_ms > 0 gives the key a deadline of
    now + ttl_ms, 0 makes it lasting. *stored says whether it was stored;
    then *value_p is taken (set to NULL), else it stays the caller's.
    Returns 0, or EINVAL when now + ttl_ms overflows. */
int broker_hash_set(broker_hash_t *self, const char *table, const char *key, json_object **value_p,
                    int64_t ttl_ms, bool nx, int64_t now, bool *stored);

/*  broker_hash_incr: add delta to the integer at key (absent: 0, created
    lasting; a deadline stays) and set *out to the result. 0, ETYPE when
    the value is not an integer, EINVAL on int64 overflow (nothing changes). */
int broker_hash_incr(broker_hash_t *self, const char *table, const char *key, int64_t delta,
                     int64_t now, int64_t *out);

/*  broker_hash_delete: remove key from table (an emptied table goes too).
    0, or ENOTFOUND when there was no such key. */
int broker_hash_delete(broker_hash_t *self, const char *table, const char *key, int64_t now);

/*  broker_hash_contains: true when table holds key (and its time is not up). */
bool broker_hash_contains(broker_hash_t *self, const char *table, const char *key, int64_t now);

/*  broker_hash_list: at most max keys of table (expired ones are removed
    first) as a new JSON array of strings, in no particular order;
    *truncated says whether the table holds more. Caller owns. */
json_object *broker_hash_list(broker_hash_t *self, const char *table, size_t max, int64_t now,
                              bool *truncated);

/*  broker_hash_sweep: remove up to max keys whose time is up, soonest
    first, so that memory comes back without anyone touching them. Returns
    how many went. */
size_t broker_hash_sweep(broker_hash_t *self, int64_t now, size_t max);

/*  broker_hash_tables: number of tables. */
size_t broker_hash_tables(broker_hash_t *self);

/*  broker_hash_keys: number of keys over all tables (expired keys count
    until they are touched or swept). */
size_t broker_hash_keys(broker_hash_t *self);

#endif
