/*  hash_conformance_app - one list of hash checks, run on whatever backend
    the shard has (in-process, the broker, Redis)

    Test-only; driven by tests/integration/test_hash_conformance.py. The
    same actions are offered two ways, so that the test can call in from
    outside however the node was started: the actor type "hash_conformance"
    (conversation actions, for a client through the broker) and the session
    type "hash_conformance" (socket actions, over a websocket to a
    standalone shard). The answer is the reply, or the socksend.

      conformance {table}     every check of skick_hash_* in tables named
                              from `table` (so runs never collide) ->
                              {"ok": true, "checks": n} or {"ok": false,
                              "checks": n, "failed": [reason...]}
      add {table, key, value} skick_hash_add -> {"stored": bool} | {"error"}
      incr {table, key, delta, n}  n increments in a row -> {"last": v,
                              "errors": k}
      ops_later {table, delay}  answers {}, then after delay ms starts one
                              task each for add, set_ttl, incr and keys
      results {}              -> {"results": {op: "OK" | error name}}

    A table name from the request must be at most 200 bytes (the checks add
    suffixes); the checks leave every table they used empty.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skick/skick.h"

#define TTL_MS 300   /* short times to live: the checks sleep past them */
#define SLEEP_MS 700 /* TTL_MS plus room for a loaded machine */

typedef struct {
    bool session;         /* answer with socksend (a session) or skick_reply */
    json_object *results; /* ops_later's outcomes */
} conf_t;

typedef struct {
    skick_actor_t *self; /* who runs the checks */
    const char *t;       /* the main table */
    char keys_t[256];    /* the table of the key listing checks */
    json_object *failed; /* reasons, strings */
    int checks;          /* checks made */
} chk_t;

static void s_conf_free(void *p)
{
    json_object_put(((conf_t *) p)->results);
}

/*  Answer msg with *r (taken), the way this actor was called. */
static void s_answer(skick_actor_t *self, json_object *msg, json_object **r)
{
    conf_t *st = skick_state(self);
    if (st->session)
        skick_socksend(self, r);
    else
        skick_reply(self, msg, r);
}

/* ---- check helpers --------------------------------------------------------------- */

static void __attribute__((format(printf, 3, 4))) s_check(chk_t *c, bool ok, const char *fmt, ...)
{
    c->checks++;
    if (ok)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_object_array_add(c->failed, json_object_new_string(text));
}

/*  The call failed (failed is true) with code. */
static void s_err(chk_t *c, bool failed, int code, const char *what)
{
    int got = skick_errno();
    s_check(c, failed && got == code, "%s: wanted %s, got %s", what, skick_err_name(code),
            failed ? skick_err_name(got) : "success");
}

/*  Set key of table to the JSON text. */
static void s_set(chk_t *c, const char *table, const char *key, const char *text)
{
    json_object *v = json_tokener_parse(text);
    s_check(c, skick_hash_set(c->self, table, key, &v) == 0, "set %s %s: %s", key, text,
            skick_err_name(skick_errno()));
}

/*  key of table holds the JSON text (same type and value); NULL: absent. */
static void s_expect(chk_t *c, const char *table, const char *key, const char *text)
{
    json_object *got = skick_hash_get(c->self, table, key);
    if (!text) {
        s_err(c, got == NULL, SKICK_ENOTFOUND, key);
    } else {
        json_object *want = json_tokener_parse(text);
        s_check(c,
                got && json_object_get_type(got) == json_object_get_type(want) &&
                    json_object_equal(got, want),
                "get %s: wanted %s, got %s", key, text,
                got ? json_object_to_json_string(got) : skick_err_name(skick_errno()));
        json_object_put(want);
    }
    json_object_put(got);
}

static bool s_contains(chk_t *c, const char *table, const char *key)
{
    bool present = false;
    s_check(c, skick_hash_contains(c->self, table, key, &present) == 0, "contains %s: %s", key,
            skick_err_name(skick_errno()));
    return present;
}

static void s_del(chk_t *c, const char *table, const char *key)
{
    s_check(c, skick_hash_delete(c->self, table, key) == 0, "delete %s: %s", key,
            skick_err_name(skick_errno()));
}

/*  key of table is absent for get, contains and delete. */
static void s_absent(chk_t *c, const char *table, const char *key)
{
    s_expect(c, table, key, NULL);
    s_check(c, !s_contains(c, table, key), "contains %s is false", key);
    s_err(c, skick_hash_delete(c->self, table, key) != 0, SKICK_ENOTFOUND, key);
}

/*  Whether the keys array holds name. */
static bool s_listed(json_object *keys, const char *name)
{
    for (size_t i = 0; keys && i < json_object_array_length(keys); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(keys, i)), name) == 0)
            return true;
    return false;
}

/* ---- the checks ------------------------------------------------------------------ */

static void s_basics(chk_t *c)
{
    skick_actor_t *self = c->self;
    s_absent(c, c->t, "a");
    s_set(c, c->t, "a", "\"one\"");
    s_expect(c, c->t, "a", "\"one\"");
    s_check(c, s_contains(c, c->t, "a"), "contains after set is true");
    s_set(c, c->t, "a", "{\"two\": 2}");
    s_expect(c, c->t, "a", "{\"two\": 2}");
    s_del(c, c->t, "a");
    s_expect(c, c->t, "a", NULL);
    s_check(c, !s_contains(c, c->t, "a"), "contains after delete is false");
    json_object *null = NULL;
    s_err(c, skick_hash_set(self, c->t, "a", &null) != 0, SKICK_EINVAL, "set of JSON null");
}

static void s_round_trips(chk_t *c)
{
    static const char *const values[] = {
        "\"\"",
        "\"plain\"",
        "\"quote \\\" backslash \\\\ slash / newline \\n tab \\t\"",
        "\"h\\u00e9llo w\\u00f6rld \\u2713 \\u65e5\\u672c \\ud83d\\ude00\"",
        "\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80 (raw UTF-8)\"",
        "\"\\u0000 NUL inside\"",
        "0",
        "-1",
        "42",
        "9223372036854775807",
        "-9223372036854775808",
        "3.5",
        "-0.25",
        "1e+100",
        "true",
        "false",
        "[]",
        "{}",
        "[1, \"x\", null, true, {\"a\": []}]",
        "{\"a\": 1, \"b\": {\"c\": [1, 2, {\"d\": null}]}, \"\\u00fc\": \"\\u00fc\"}"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char key[32];
        snprintf(key, sizeof key, "rt.%zu", i);
        s_set(c, c->t, key, values[i]);
        s_expect(c, c->t, key, values[i]);
        s_del(c, c->t, key);
    }
    /* a unicode key, a 1024-byte key and a 16 KiB value */
    static const char ukey[] = "cl\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80";
    s_set(c, c->t, ukey, "\"unicode key\"");
    s_expect(c, c->t, ukey, "\"unicode key\"");
    bool truncated;
    json_object *keys = skick_hash_keys(c->self, c->t, 1000, &truncated);
    s_check(c, s_listed(keys, ukey), "keys lists the unicode key as it was set");
    json_object_put(keys);
    s_del(c, c->t, ukey);
    char *big = malloc(16 * 1024 + 3), longkey[1025];
    memset(big, 'v', 16 * 1024 + 2);
    big[0] = big[16 * 1024 + 1] = '"';
    big[16 * 1024 + 2] = '\0';
    memset(longkey, 'k', 1024);
    longkey[1024] = '\0';
    s_set(c, c->t, longkey, big);
    s_expect(c, c->t, longkey, big);
    s_del(c, c->t, longkey);
    free(big);
}

/*  Every operation refuses a bad table or key with EINVAL. */
static void s_bad_names(chk_t *c)
{
    char long_t[258], long_k[1026];
    memset(long_t, 't', 257);
    long_t[257] = '\0';
    memset(long_k, 'k', 1025);
    long_k[1025] = '\0';
    const char *tables[] = {"", "has space", "a/b", "a:b", "t\xc3\xa9", long_t, NULL};
    const char *keys[] = {"", "new\nline", "tab\there", "del\x7f", long_k, NULL};
    const size_t nt = sizeof tables / sizeof tables[0], nk = sizeof keys / sizeof keys[0];
    skick_actor_t *self = c->self;
    for (size_t i = 0; i < nt + nk; i++) {
        const char *t = i < nt ? tables[i] : c->t, *k = i < nt ? "k" : keys[i - nt];
        char what[64];
        snprintf(what, sizeof what, "bad %s #%zu", i < nt ? "table" : "key", i < nt ? i : i - nt);
        json_object *v = json_object_new_int(1);
        bool present;
        int64_t n;
        s_err(c, skick_hash_get(self, t, k) == NULL, SKICK_EINVAL, what);
        s_err(c, skick_hash_set(self, t, k, &v) != 0, SKICK_EINVAL, what);
        v = json_object_new_int(1);
        s_err(c, skick_hash_set_ttl(self, t, k, &v, TTL_MS) != 0, SKICK_EINVAL, what);
        v = json_object_new_int(1);
        s_err(c, skick_hash_add(self, t, k, &v, 0) < 0, SKICK_EINVAL, what);
        s_err(c, skick_hash_delete(self, t, k) != 0, SKICK_EINVAL, what);
        s_err(c, skick_hash_contains(self, t, k, &present) != 0, SKICK_EINVAL, what);
        s_err(c, skick_hash_incr(self, t, k, 1, &n) != 0, SKICK_EINVAL, what);
        if (i < nt)
            s_err(c, skick_hash_keys(self, t, 10, NULL) == NULL, SKICK_EINVAL, what);
    }
    /* the longest good table name */
    char t256[257];
    snprintf(t256, sizeof t256, "%s.%0*d", c->t, (int) (255 - strlen(c->t)), 0);
    s_set(c, t256, "k", "1");
    s_expect(c, t256, "k", "1");
    s_del(c, t256, "k");
}

static void s_add(chk_t *c)
{
    skick_actor_t *self = c->self;
    json_object *v = json_object_new_string("first");
    s_check(c, skick_hash_add(self, c->t, "add1", &v, 0) == 1 && !v, "add of an absent key stores");
    v = json_object_new_string("second");
    s_check(c, skick_hash_add(self, c->t, "add1", &v, 0) == 0 && !v,
            "add of a present key stores nothing (and takes the value)");
    s_expect(c, c->t, "add1", "\"first\"");
    v = json_object_new_int(1);
    s_err(c, skick_hash_add(self, c->t, "add1", &v, -1) < 0, SKICK_EINVAL, "add with ttl -1");
    json_object *null = NULL;
    s_err(c, skick_hash_add(self, c->t, "add3", &null, 0) < 0, SKICK_EINVAL, "add of JSON null");
    s_del(c, c->t, "add1");
    v = json_object_new_int(1);
    s_check(c, skick_hash_add(self, c->t, "add2", &v, TTL_MS) == 1, "add with a ttl stores");
}

/*  Times to live: set before the sleep, looked at after it. */
static void s_ttl_before(chk_t *c)
{
    skick_actor_t *self = c->self;
    json_object *v = json_object_new_string("short");
    s_check(c, skick_hash_set_ttl(self, c->t, "ttl1", &v, TTL_MS) == 0 && !v, "set_ttl");
    s_expect(c, c->t, "ttl1", "\"short\"");
    s_check(c, s_contains(c, c->t, "ttl1"), "contains a key with a ttl");
    json_object *keys = skick_hash_keys(self, c->t, 1000, NULL);
    s_check(c, s_listed(keys, "ttl1"), "keys lists a key before its ttl");
    json_object_put(keys);
    v = json_object_new_string("x");
    skick_hash_set_ttl(self, c->t, "ttl2", &v, TTL_MS);
    s_set(c, c->t, "ttl2", "\"lasting\""); /* a plain set makes it lasting */
    v = json_object_new_int(5);
    skick_hash_set_ttl(self, c->t, "ttl3", &v, TTL_MS);
    int64_t n = 0;
    s_check(c, skick_hash_incr(self, c->t, "ttl3", 1, &n) == 0 && n == 6,
            "incr of a key with a ttl");
    s_set(c, c->t, "ttl4", "\"lasting\"");
    v = json_object_new_string("soon");
    skick_hash_set_ttl(self, c->t, "ttl4", &v, TTL_MS); /* set_ttl over a lasting key */
    v = json_object_new_string("long");
    skick_hash_set_ttl(self, c->t, "ttl5", &v, 60000);
    v = json_object_new_int(100);
    skick_hash_set_ttl(self, c->t, "ttl6", &v, TTL_MS);
    v = json_object_new_int(1);
    s_err(c, skick_hash_set_ttl(self, c->t, "ttl7", &v, 0) != 0, SKICK_EINVAL, "set_ttl 0");
    v = json_object_new_int(1);
    s_err(c, skick_hash_set_ttl(self, c->t, "ttl7", &v, -5) != 0, SKICK_EINVAL, "set_ttl -5");
}

static void s_ttl_after(chk_t *c)
{
    skick_actor_t *self = c->self;
    s_absent(c, c->t, "ttl1"); /* its time is up */
    s_expect(c, c->t, "ttl2", "\"lasting\"");
    s_expect(c, c->t, "ttl3", NULL);
    s_expect(c, c->t, "ttl4", NULL);
    s_expect(c, c->t, "ttl5", "\"long\"");
    int64_t n = 0;
    s_check(c, skick_hash_incr(self, c->t, "ttl6", 1, &n) == 0 && n == 1,
            "incr of an expired key counts from 0 (got %lld)", (long long) n);
    json_object *v = json_object_new_int(2);
    s_check(c, skick_hash_add(self, c->t, "add2", &v, 0) == 1, "add after the ttl is up stores");
    bool truncated = true;
    json_object *keys = skick_hash_keys(self, c->t, 1000, &truncated);
    s_check(c,
            keys && !s_listed(keys, "ttl1") && !s_listed(keys, "ttl3") && !s_listed(keys, "ttl4") &&
                s_listed(keys, "ttl5") && !truncated,
            "keys lists no expired key: %s", keys ? json_object_to_json_string(keys) : "NULL");
    json_object_put(keys);
}

static void s_incr(chk_t *c)
{
    skick_actor_t *self = c->self;
    int64_t n = 0;
    s_check(c, skick_hash_incr(self, c->t, "n", 5, &n) == 0 && n == 5, "incr of an absent key");
    s_check(c, skick_hash_incr(self, c->t, "n", -7, &n) == 0 && n == -2, "incr by -7");
    s_check(c, skick_hash_incr(self, c->t, "n", 0, NULL) == 0, "incr by 0, no result wanted");
    s_expect(c, c->t, "n", "-2");
    static const char *const others[] = {"\"text\"", "\"12\"", "1.5", "true", "{}", "[1]"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "incr of %s", others[i]);
        s_set(c, c->t, "other", others[i]);
        s_err(c, skick_hash_incr(self, c->t, "other", 1, &n) != 0, SKICK_ETYPE, what);
        s_expect(c, c->t, "other", others[i]);
    }
    s_set(c, c->t, "big", "9223372036854775807");
    s_err(c, skick_hash_incr(self, c->t, "big", 1, &n) != 0, SKICK_EINVAL, "incr past INT64_MAX");
    s_expect(c, c->t, "big", "9223372036854775807");
    s_set(c, c->t, "small", "-9223372036854775808");
    s_err(c, skick_hash_incr(self, c->t, "small", -1, &n) != 0, SKICK_EINVAL,
          "incr below INT64_MIN");
    s_check(c, skick_hash_incr(self, c->t, "n2", INT64_MIN, &n) == 0 && n == INT64_MIN,
            "incr by INT64_MIN from 0");
}

static void s_keys(chk_t *c)
{
    skick_actor_t *self = c->self;
    const char *t = c->keys_t;
    bool truncated = true;
    json_object *keys = skick_hash_keys(self, t, 10, &truncated);
    s_check(c, keys && json_object_array_length(keys) == 0 && !truncated,
            "keys of an absent table: [] not truncated");
    json_object_put(keys);
    static const char *const names[] = {"k0", "k1", "k2", "k3", "k\xc3\xbc"};
    for (size_t i = 0; i < 5; i++)
        s_set(c, t, names[i], "0");
    const size_t maxes[] = {100, 5, 3, 1};
    for (size_t m = 0; m < 4; m++) {
        keys = skick_hash_keys(self, t, maxes[m], &truncated);
        size_t n = keys ? json_object_array_length(keys) : 0, listed = 0;
        for (size_t i = 0; i < 5; i++)
            listed += s_listed(keys, names[i]);
        size_t want = maxes[m] < 5 ? maxes[m] : 5;
        s_check(c, keys && n == want && listed == want && truncated == (maxes[m] < 5),
                "keys max %zu: %s truncated %d", maxes[m],
                keys ? json_object_to_json_string(keys) : "NULL", truncated);
        json_object_put(keys);
    }
    s_err(c, skick_hash_keys(self, t, 0, NULL) == NULL, SKICK_EINVAL, "keys max 0");
    s_err(c, skick_hash_keys(self, t, 100001, NULL) == NULL, SKICK_EINVAL, "keys max 100001");
    keys = skick_hash_keys(self, t, 100000, NULL);
    s_check(c, keys && json_object_array_length(keys) == 5, "keys max 100000");
    json_object_put(keys);
    for (size_t i = 0; i < 5; i++)
        s_del(c, t, names[i]);
}

/*  Delete what is left in table and check that it is empty. */
static void s_cleanup(chk_t *c, const char *table)
{
    json_object *keys = skick_hash_keys(c->self, table, 1000, NULL);
    for (size_t i = 0; keys && i < json_object_array_length(keys); i++)
        s_del(c, table, json_object_get_string(json_object_array_get_idx(keys, i)));
    json_object_put(keys);
    keys = skick_hash_keys(c->self, table, 10, NULL);
    s_check(c, keys && json_object_array_length(keys) == 0, "table %s left empty", table);
    json_object_put(keys);
}

static void s_conformance(skick_actor_t *self, json_object *msg)
{
    chk_t c = {
        .self = self, .t = skick_get_string(msg, "table", ""), .failed = json_object_new_array()};
    if (!*c.t || strlen(c.t) > 200) {
        s_check(&c, false, "the request needs a table name of 1-200 bytes");
    } else {
        snprintf(c.keys_t, sizeof c.keys_t, "%s.keys", c.t);
        s_basics(&c);
        s_round_trips(&c);
        s_bad_names(&c);
        s_add(&c);
        s_ttl_before(&c);
        s_incr(&c);
        s_keys(&c);
        s_check(&c, skick_sleep(self, SLEEP_MS) == 0, "sleep");
        s_ttl_after(&c);
        s_cleanup(&c, c.t);
        s_cleanup(&c, c.keys_t);
    }
    json_object *r = json_object_new_object();
    bool ok = json_object_array_length(c.failed) == 0;
    json_object_object_add(r, "ok", json_object_new_boolean(ok));
    json_object_object_add(r, "checks", json_object_new_int(c.checks));
    if (!ok)
        json_object_object_add(r, "failed", json_object_get(c.failed));
    json_object_put(c.failed);
    s_answer(self, msg, &r);
}

/* ---- the two-shard actions -------------------------------------------------------- */

static void s_add_action(skick_actor_t *self, json_object *msg)
{
    json_object *v = json_object_get(json_object_object_get(msg, "value"));
    int rc = skick_hash_add(self, skick_get_string(msg, "table", ""),
                            skick_get_string(msg, "key", ""), &v, 0);
    json_object *r = rc < 0 ? skick_json("{\"error\": \"%s\"}", skick_err_name(skick_errno()))
                            : skick_json("{\"stored\": %s}", rc == 1 ? "true" : "false");
    s_answer(self, msg, &r);
}

static void s_incr_action(skick_actor_t *self, json_object *msg)
{
    int64_t last = 0, errors = 0, n = skick_get_int(msg, "n", 1);
    for (int64_t i = 0; i < n; i++)
        if (skick_hash_incr(self, skick_get_string(msg, "table", ""),
                            skick_get_string(msg, "key", ""), skick_get_int(msg, "delta", 1),
                            &last) != 0)
            errors++;
    json_object *r =
        skick_json("{\"last\": %lld, \"errors\": %lld}", (long long) last, (long long) errors);
    s_answer(self, msg, &r);
}

/*  One operation of ops_later, on its own task: its outcome into results. */
static void s_op_task(skick_actor_t *self, json_object *msg)
{
    conf_t *st = skick_state(self);
    const char *op = skick_get_string(msg, "op", ""), *t = skick_get_string(msg, "table", "");
    json_object *v = json_object_new_int(1), *keys = NULL;
    int rc;
    if (strcmp(op, "add") == 0)
        rc = skick_hash_add(self, t, "later.add", &v, 0) < 0 ? -1 : 0;
    else if (strcmp(op, "set_ttl") == 0)
        rc = skick_hash_set_ttl(self, t, "later.ttl", &v, 60000);
    else if (strcmp(op, "incr") == 0)
        rc = skick_hash_incr(self, t, "later.incr", 1, NULL);
    else
        rc = (keys = skick_hash_keys(self, t, 10, NULL)) ? 0 : -1;
    json_object_put(v);
    json_object_put(keys);
    json_object_object_add(st->results, op,
                           json_object_new_string(rc == 0 ? "OK" : skick_err_name(skick_errno())));
}

static void s_ops_later(skick_actor_t *self, json_object *msg)
{
    json_object *ack = json_object_new_object();
    s_answer(self, msg, &ack);
    skick_sleep(self, skick_get_int(msg, "delay", 100));
    static const char *const ops[] = {"add", "set_ttl", "incr", "keys"};
    for (size_t i = 0; i < 4; i++) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "op", json_object_new_string(ops[i]));
        json_object_object_add(m, "table",
                               json_object_new_string(skick_get_string(msg, "table", "")));
        skick_spawn_task(self, s_op_task, &m);
    }
}

static void s_results(skick_actor_t *self, json_object *msg)
{
    conf_t *st = skick_state(self);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "results", json_object_get(st->results));
    s_answer(self, msg, &r);
}

/* ---- the module ---------------------------------------------------------------------- */

static void s_actor(skick_actor_t *self, json_object *init)
{
    (void) init;
    conf_t *st = skick_state_new(self, sizeof *st, s_conf_free);
    st->results = json_object_new_object();
    skick_conversation(self, "conformance", NULL, s_conformance);
    skick_conversation(self, "add", NULL, s_add_action);
    skick_conversation(self, "incr", NULL, s_incr_action);
    skick_conversation(self, "ops_later", NULL, s_ops_later);
    skick_conversation(self, "results", NULL, s_results);
}

static void s_session(skick_actor_t *self, json_object *init)
{
    (void) init;
    conf_t *st = skick_state_new(self, sizeof *st, s_conf_free);
    st->session = true;
    st->results = json_object_new_object();
    skick_socket(self, "conformance", "{\"table\": \"string\"}", s_conformance);
    skick_socket(self, "add", "{\"table\": \"string\", \"key\": \"string\", \"value\": \"any\"}",
                 s_add_action);
    skick_socket(
        self, "incr",
        "{\"table\": \"string\", \"key\": \"string\", \"delta\": \"integer\", \"n\": \"integer\"}",
        s_incr_action);
    skick_socket(self, "ops_later", "{\"table\": \"string\", \"delay\": \"integer\"}", s_ops_later);
    skick_socket(self, "results", NULL, s_results);
}

SKICK_MODULE(hash_conformance_app)
{
    skick_actor(app, "hash_conformance", s_actor);
    skick_session(app, "hash_conformance", s_session);
}
