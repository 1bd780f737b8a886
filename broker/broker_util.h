/*  broker_util - ids as text, random ids, rate-limited logging, JSON helpers

    The bottom of skick-broker (broker.h has the levels): used by every
    other file, uses none of them. Nothing here keeps state of its own
    except what the caller passes in (a broker_ratelimit_t, which the caller
    owns).
*/
#ifndef BROKER_UTIL_H_INCLUDED
#define BROKER_UTIL_H_INCLUDED

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "skick_loglimit.h"

/*  A log-line budget: at most SKICK_LOGLIMIT_LINES lines per
    SKICK_LOGLIMIT_WINDOW_MS (proto/skick_loglimit). */
typedef skick_loglimit_t broker_ratelimit_t;

/*  broker_id_hex: write id as 16 lowhex (plus NUL) into out. */
void broker_id_hex(uint64_t id, char out[17]);

/*  broker_id_parse: parse exactly 16 lowhex. Returns 0 with *id set, or -1. */
int broker_id_parse(const char *text, uint64_t *id);

/*  broker_alloc: n zeroed bytes (caller frees); aborts the process when
    memory is exhausted, like CZMQ's own allocations. */
void *broker_alloc(size_t n);

/*  broker_random64: a random nonzero 64-bit number (getrandom). */
uint64_t broker_random64(void);

/*  broker_log_limited: log one line at level under rl's budget (at most
    SKICK_LOGLIMIT_LINES per SKICK_LOGLIMIT_WINDOW_MS); a line after some were skipped
    says how many. */
void broker_log_limited(broker_ratelimit_t *rl, int level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*  broker_json_str: the string member key of obj, or NULL (borrowed). */
const char *broker_json_str(json_object *obj, const char *key);

/*  broker_json_addr: a new JSON string "SHARD:ACTOR" (caller owns). */
json_object *broker_json_addr(uint64_t shard, uint64_t actor);

#endif
