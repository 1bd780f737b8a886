/*  node_util - allocation, random ids, address text, and the two maps

    The maps are deliberately small: a u64 open-addressing table (linear
    probing, backward-shift deletion, so no tombstones) for the actor table,
    and a chained string map for names. Neither is thread-safe: each belongs
    to one shard. Random ids come from OpenSSL's CSPRNG in 4 KiB batches,
    because addresses are capabilities and must not be guessable.
*/
#include "node_core.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void s_oom(size_t size)
{
    fprintf(stderr, "skick: out of memory allocating %zu bytes\n", size);
    abort();
}

void *node_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        s_oom(size);
    return p;
}

void *node_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        s_oom(n * size);
    return p;
}

void *node_realloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        s_oom(size);
    return q;
}

char *node_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = node_malloc(n);
    memcpy(d, s, n);
    return d;
}

/* ------------------------------------------------------------------------- */

static __thread uint64_t s_rand_buf[512];
static __thread size_t s_rand_left;

uint64_t node_random64(void)
{
    if (s_rand_left == 0) {
        if (RAND_bytes((unsigned char *) s_rand_buf, sizeof s_rand_buf) != 1) {
            fprintf(stderr, "skick: the OpenSSL random generator failed\n");
            abort();
        }
        s_rand_left = sizeof s_rand_buf / sizeof s_rand_buf[0];
    }
    return s_rand_buf[--s_rand_left];
}

static const char s_hex[] = "0123456789abcdef";

void node_format_addr(char out[SKICK_ADDR_LEN + 1], uint64_t shard, uint64_t id)
{
    for (int i = 0; i < 16; i++) {
        out[15 - i] = s_hex[(shard >> (4 * i)) & 0xf];
        out[32 - i] = s_hex[(id >> (4 * i)) & 0xf];
    }
    out[16] = ':';
    out[SKICK_ADDR_LEN] = '\0';
}

/*  Hex digit values, -1 for anything else: addresses are parsed on every
    send, so this is table-driven and branch-light. */
static const int8_t s_hexval[256] = {
    ['0'] = 0,   ['1'] = 1,   ['2'] = 2,   ['3'] = 3,   ['4'] = 4,   ['5'] = 5,
    ['6'] = 6,   ['7'] = 7,   ['8'] = 8,   ['9'] = 9,   ['a'] = 10,  ['b'] = 11,
    ['c'] = 12,  ['d'] = 13,  ['e'] = 14,  ['f'] = 15,
};

static int s_parse_hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        unsigned char c = (unsigned char) s[i];
        int d = s_hexval[c];
        bad |= (d == 0 && c != '0');
        v = (v << 4) | (uint64_t) d;
    }
    *out = v;
    return bad ? -1 : 0;
}

int node_parse_id(const char *s, uint64_t *id)
{
    if (!s || strnlen(s, 17) != 16 || s_parse_hex16(s, id))
        return -1;
    return *id ? 0 : -1;
}

void node_format_id(char out[17], uint64_t id)
{
    for (int i = 0; i < 16; i++)
        out[15 - i] = s_hex[(id >> (4 * i)) & 0xf];
    out[16] = '\0';
}

int node_parse_addr(const char *s, node_ref_t *ref)
{
    if (!s || strnlen(s, SKICK_ADDR_LEN + 1) != SKICK_ADDR_LEN || s[16] != ':')
        return -1;
    if (s_parse_hex16(s, &ref->shard) || s_parse_hex16(s + 17, &ref->id))
        return -1;
    return ref->shard && ref->id ? 0 : -1;
}

void node_new_cid(char out[33])
{
    uint64_t r[2] = {node_random64(), node_random64()};
    for (int i = 0; i < 32; i++)
        out[i] = s_hex[(r[i / 16] >> (4 * (i % 16))) & 0xf];
    out[32] = '\0';
}

uint64_t node_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char) *s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* ------------------------------------------------------------------------- */

static size_t s_mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t) k;
}

void node_u64map_init(node_u64map_t *m)
{
    m->cap = 16;
    m->count = 0;
    m->keys = node_calloc(m->cap, sizeof *m->keys);
    m->vals = node_calloc(m->cap, sizeof *m->vals);
}

void node_u64map_free(node_u64map_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->count = 0;
}

void *node_u64map_get(const node_u64map_t *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    for (size_t i = s_mix(key) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

static void s_u64map_grow(node_u64map_t *m)
{
    node_u64map_t old = *m;
    m->cap = old.cap * 2;
    m->count = 0;
    m->keys = node_calloc(m->cap, sizeof *m->keys);
    m->vals = node_calloc(m->cap, sizeof *m->vals);
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i])
            node_u64map_put(m, old.keys[i], old.vals[i]);
    node_u64map_free(&old);
}

void node_u64map_put(node_u64map_t *m, uint64_t key, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        s_u64map_grow(m);
    size_t mask = m->cap - 1;
    size_t i = s_mix(key) & mask;
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    if (!m->keys[i])
        m->count++;
    m->keys[i] = key;
    m->vals[i] = val;
}

void *node_u64map_del(node_u64map_t *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    size_t i = s_mix(key) & mask;
    while (m->keys[i] != key) {
        if (!m->keys[i])
            return NULL;
        i = (i + 1) & mask;
    }
    void *val = m->vals[i];
    /* Backward-shift deletion keeps every probe chain unbroken. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->keys[j])
            break;
        size_t home = s_mix(m->keys[j]) & mask;
        bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->vals[i] = NULL;
    m->count--;
    return val;
}

/* ------------------------------------------------------------------------- */

void node_strmap_init(node_strmap_t *m)
{
    m->cap = 16;
    m->count = 0;
    m->buckets = node_calloc(m->cap, sizeof *m->buckets);
}

void node_strmap_free(node_strmap_t *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        node_strmap_entry_t *e = m->buckets[i];
        while (e) {
            node_strmap_entry_t *next = e->next;
            if (free_val)
                free_val(e->val);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->cap = m->count = 0;
}

static node_strmap_entry_t **s_strmap_slot(const node_strmap_t *m, const char *key,
                                            uint64_t h)
{
    node_strmap_entry_t **p = &m->buckets[h & (m->cap - 1)];
    while (*p && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
        p = &(*p)->next;
    return p;
}

void *node_strmap_get(const node_strmap_t *m, const char *key)
{
    node_strmap_entry_t *e = *s_strmap_slot(m, key, node_hash_str(key));
    return e ? e->val : NULL;
}

void node_strmap_put(node_strmap_t *m, const char *key, void *val)
{
    uint64_t h = node_hash_str(key);
    node_strmap_entry_t **p = s_strmap_slot(m, key, h);
    if (*p) {
        (*p)->val = val;
        return;
    }
    if (m->count + 1 > m->cap) {
        node_strmap_t bigger = {node_calloc(m->cap * 2, sizeof(void *)), m->cap * 2, 0};
        for (size_t i = 0; i < m->cap; i++) {
            node_strmap_entry_t *e = m->buckets[i];
            while (e) {
                node_strmap_entry_t *next = e->next;
                size_t b = e->hash & (bigger.cap - 1);
                e->next = bigger.buckets[b];
                bigger.buckets[b] = e;
                e = next;
            }
        }
        free(m->buckets);
        m->buckets = bigger.buckets;
        m->cap = bigger.cap;
        p = s_strmap_slot(m, key, h);
    }
    size_t len = strlen(key) + 1;
    node_strmap_entry_t *e = node_malloc(sizeof *e + len);
    e->next = NULL;
    e->hash = h;
    e->val = val;
    memcpy(e->key, key, len);
    *p = e;
    m->count++;
}

void *node_strmap_del(node_strmap_t *m, const char *key)
{
    node_strmap_entry_t **p = s_strmap_slot(m, key, node_hash_str(key));
    node_strmap_entry_t *e = *p;
    if (!e)
        return NULL;
    void *val = e->val;
    *p = e->next;
    free(e);
    m->count--;
    return val;
}

void node_strmap_each(node_strmap_t *m, int (*fn)(const char *key, void *val, void *arg),
                      void *arg)
{
    for (size_t i = 0; i < m->cap; i++)
        for (node_strmap_entry_t *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            if (fn(e->key, e->val, arg))
                return;
        }
}

/* ------------------------------------------------------------------------- */

bool node_log_allow(node_log_limit_t *lim, int level)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    if (ts.tv_sec != lim->window) {
        if (lim->quiet)
            skick_log_write(level, "log", NULL, "%u similar line(s) suppressed", lim->quiet);
        lim->window = ts.tv_sec;
        lim->lines = 0;
        lim->quiet = 0;
    }
    if (lim->lines < NODE_LOG_BURST) {
        lim->lines++;
        return true;
    }
    lim->quiet++;
    return false;
}
