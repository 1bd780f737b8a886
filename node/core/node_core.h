/*  node_core.h - the bottom layer of the shard runtime: utilities, log
    limits and fibers (node/core/)

    What every layer above uses and what knows nothing of actors, messages,
    websockets or the cluster: allocation that aborts on out of memory, the
    CSPRNG, actor addresses as text and as binary references, two hash maps,
    per-call-site log rate limits (node_util.c), JSON conveniences for
    application code (node_json.c, public in skick.h), leveled log lines
    (node_log.c, public in skick/log.h) and coroutines on their own stacks
    (node_fiber.c).

    The layers of node/, from the bottom up: core, actor, ws, cluster, then
    node/ itself (skick_run, the test kit), which wires them together. A
    folder includes only its own headers and those of the folders below it
    (tests/check_layers.sh; docs/internals/layers.md has the picture).
    Everything here is thread-compatible: maps and fibers belong to the
    thread that made them (the shard's reactor).
*/
#ifndef NODE_CORE_H_INCLUDED
#define NODE_CORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skick/skick.h"

/* ------------------------------------------------------------------------- */
/* Small utilities (node_util.c)                                              */

/*  A binary actor reference: shard id and actor id. */
typedef struct {
    uint64_t shard; /* shard id, 0 = none */
    uint64_t id;    /* actor id within the shard */
} node_ref_t;

void *node_malloc(size_t size);             /* aborts on out of memory */
void *node_calloc(size_t n, size_t size);   /* aborts on out of memory */
void *node_realloc(void *p, size_t size);   /* aborts on out of memory */
char *node_strdup(const char *s);           /* aborts on out of memory */
uint64_t node_random64(void);               /* CSPRNG, buffered */
void node_format_addr(char out[SKICK_ADDR_LEN + 1], uint64_t shard, uint64_t id);
int node_parse_addr(const char *s, node_ref_t *ref); /* 0 or -1 */
/*  One half of an address: exactly 16 lowhex digits, not 0. 0 or -1. */
int node_parse_id(const char *s, uint64_t *id);
void node_format_id(char out[17], uint64_t id);
uint64_t node_hash_str(const char *s);
void node_new_cid(char out[33]);            /* 128 random bits as 32 hex digits */

/*  u64 -> pointer map, open addressing; key 0 is reserved. */
typedef struct {
    uint64_t *keys; /* 0 = empty slot */
    void **vals;    /* values, parallel to keys */
    size_t cap;     /* power of two */
    size_t count;   /* live entries */
} node_u64map_t;

void node_u64map_init(node_u64map_t *m);
void node_u64map_free(node_u64map_t *m);
void *node_u64map_get(const node_u64map_t *m, uint64_t key);
void node_u64map_put(node_u64map_t *m, uint64_t key, void *val);
void *node_u64map_del(node_u64map_t *m, uint64_t key);

/*  string -> pointer map, chained; keys are copied. */
typedef struct node_strmap_entry {
    struct node_strmap_entry *next; /* chain */
    uint64_t hash;                  /* node_hash_str(key) */
    void *val;                      /* value (not owned) */
    char key[];                     /* owned copy */
} node_strmap_entry_t;

typedef struct {
    node_strmap_entry_t **buckets; /* cap chains */
    size_t cap;                    /* power of two */
    size_t count;                  /* entries */
} node_strmap_t;

void node_strmap_init(node_strmap_t *m);
void node_strmap_free(node_strmap_t *m, void (*free_val)(void *));
void *node_strmap_get(const node_strmap_t *m, const char *key);
void node_strmap_put(node_strmap_t *m, const char *key, void *val);
void *node_strmap_del(node_strmap_t *m, const char *key);
/*  Iterate: fn returns nonzero to stop. */
void node_strmap_each(node_strmap_t *m, int (*fn)(const char *key, void *val, void *arg),
                      void *arg);

/*  Per-call-site log rate limit: at most NODE_LOG_BURST lines per second,
    then one line saying how many were suppressed. For lines a peer can
    trigger at will (refused messages, schema failures, dead letters). */
#define NODE_LOG_BURST 10
typedef struct {
    int64_t window; /* second the counts belong to */
    unsigned lines; /* lines written in it */
    unsigned quiet; /* lines suppressed since the last report */
} node_log_limit_t;
bool node_log_allow(node_log_limit_t *lim, int level);

#define NODE_LOG_LIMITED(level, tag, ...)                                              \
    do {                                                                               \
        static __thread node_log_limit_t node_lim_;                                    \
        if ((level) >= skick_log_threshold && node_log_allow(&node_lim_, (level)))    \
            skick_log_write((level), (tag), NULL, __VA_ARGS__);                        \
    } while (0)

/* ------------------------------------------------------------------------- */
/* Fibers (node_fiber.c)                                                      */

typedef struct node_fiber node_fiber_t;

/*  The fiber the thread is running on now (the host fiber at start). */
node_fiber_t *node_fiber_current(void);
/*  A fiber for the calling thread's own stack; used as the "host". */
node_fiber_t *node_fiber_host(void);
/*  A new fiber that will run entry(arg) on its own stack; entry must never
    return (it switches away forever instead). */
node_fiber_t *node_fiber_new(size_t stack_size, void (*entry)(void *), void *arg);
/*  Free a fiber that is not running (parked forever or never started). */
void node_fiber_destroy(node_fiber_t *f);
/*  Switch from the current fiber to `to`. Returns when someone switches back. */
void node_fiber_switch(node_fiber_t *to);
/*  Link field for the lists the loop keeps (idle, ready). */
node_fiber_t **node_fiber_link(node_fiber_t *f);
/*  Number of fibers alive (stacks mapped), for stats. */
size_t node_fiber_count(void);

#endif
