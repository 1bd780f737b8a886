/*  test_hash - the hash API on the in-process backend: time to live, add, incr, keys
 *
 * The operations every backend must offer (skick.h "Hashes"); the same checks run against
 * the broker's store and Redis in tests/integration. Time to live uses the test kit's virtual
 * clock, so expiry is exact here.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "skick/testkit.h"

/*  Each action does one step and replies with what it saw, so the test drives time. */
static void s_done(skick_actor_t *self, json_object *msg)
{
    json_object *ok = json_object_new_object();
    skick_reply(self, msg, &ok);
}

static void put_ttl(skick_actor_t *self, json_object *msg)
{
    json_object *v = json_object_new_string("soon gone");
    cr_assert_eq(skick_hash_set_ttl(self, "t", "k", &v, 100), 0);
    cr_assert_null(v);
    v = json_object_new_int(1);
    cr_assert_eq(skick_hash_set_ttl(self, "t", "k2", &v, 0), -1, "a TTL must be > 0");
    cr_assert_eq(skick_errno(), SKICK_EINVAL);
    cr_assert_null(v, "refused values are freed");
    s_done(self, msg);
}

static void probe_key(skick_actor_t *self, json_object *msg)
{
    bool present = false;
    cr_assert_eq(skick_hash_contains(self, "t", skick_get_string(msg, "key", ""), &present), 0);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "present", json_object_new_boolean(present));
    skick_reply(self, msg, &r);
}

static void add_and_incr(skick_actor_t *self, json_object *msg)
{
    json_object *v = json_object_new_string("first");
    cr_assert_eq(skick_hash_add(self, "a", "k", &v, 0), 1, "absent: stored");
    v = json_object_new_string("second");
    cr_assert_eq(skick_hash_add(self, "a", "k", &v, 0), 0, "present: nothing changes");
    cr_assert_null(v, "the value not stored is freed");
    json_object *got = skick_hash_get(self, "a", "k");
    cr_assert_str_eq(json_object_get_string(got), "first");
    json_object_put(got);

    int64_t n = 0;
    cr_assert_eq(skick_hash_incr(self, "a", "n", 5, &n), 0);
    cr_assert_eq(n, 5, "an absent key counts as 0");
    cr_assert_eq(skick_hash_incr(self, "a", "n", -7, &n), 0);
    cr_assert_eq(n, -2);
    cr_assert_eq(skick_hash_incr(self, "a", "n", 0, NULL), 0, "the result may be ignored");
    cr_assert_eq(skick_hash_incr(self, "a", "k", 1, &n), -1, "a string is not a counter");
    cr_assert_eq(skick_errno(), SKICK_ETYPE);
    v = json_object_new_int64(INT64_MAX);
    cr_assert_eq(skick_hash_set(self, "a", "big", &v), 0);
    cr_assert_eq(skick_hash_incr(self, "a", "big", 1, &n), -1);
    cr_assert_eq(skick_errno(), SKICK_EINVAL, "overflow is refused");
    got = skick_hash_get(self, "a", "big");
    cr_assert_eq(json_object_get_int64(got), INT64_MAX, "and changes nothing");
    json_object_put(got);
    cr_assert_eq(skick_hash_incr(self, "bad table!", "n", 1, &n), -1);
    cr_assert_eq(skick_errno(), SKICK_EINVAL);
    s_done(self, msg);
}

static void list_keys(skick_actor_t *self, json_object *msg)
{
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        json_object *v = json_object_new_int(i);
        cr_assert_eq(skick_hash_set(self, "l", key, &v), 0);
    }
    bool more = true;
    json_object *keys = skick_hash_keys(self, "l", 100, &more);
    cr_assert_not_null(keys);
    cr_assert_eq(json_object_array_length(keys), 10);
    cr_assert_not(more);
    json_object_put(keys);
    keys = skick_hash_keys(self, "l", 3, &more);
    cr_assert_eq(json_object_array_length(keys), 3, "at most max");
    cr_assert(more, "and says there are more");
    json_object_put(keys);
    keys = skick_hash_keys(self, "nothing-here", 5, &more);
    cr_assert_eq(json_object_array_length(keys), 0, "an absent table is empty");
    cr_assert_not(more);
    json_object_put(keys);
    cr_assert_null(skick_hash_keys(self, "l", 0, NULL));
    cr_assert_eq(skick_errno(), SKICK_EINVAL);
    cr_assert_null(skick_hash_keys(self, "l", 100001, NULL));
    cr_assert_eq(skick_errno(), SKICK_EINVAL);
    cr_assert_null(skick_hash_keys(self, "no/slash", 5, NULL));
    cr_assert_eq(skick_errno(), SKICK_EINVAL);
    s_done(self, msg);
}

static void ttl_keys(skick_actor_t *self, json_object *msg)
{
    json_object *v = json_object_new_int(1);
    cr_assert_eq(skick_hash_set_ttl(self, "e", "short", &v, 50), 0);
    v = json_object_new_int(2);
    cr_assert_eq(skick_hash_set(self, "e", "long", &v), 0);
    v = json_object_new_int(3);
    cr_assert_eq(skick_hash_add(self, "e", "added", &v, 50), 1, "add with a TTL");
    s_done(self, msg);
}

static void count_keys(skick_actor_t *self, json_object *msg)
{
    json_object *keys = skick_hash_keys(self, "e", 100, NULL);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "n", json_object_new_int((int) json_object_array_length(keys)));
    json_object_put(keys);
    skick_reply(self, msg, &r);
}

static void hasher(skick_actor_t *self, json_object *init)
{
    skick_conversation(self, "put_ttl", NULL, put_ttl);
    skick_conversation(self, "probe", NULL, probe_key);
    skick_conversation(self, "add_incr", NULL, add_and_incr);
    skick_conversation(self, "keys", NULL, list_keys);
    skick_conversation(self, "ttl_keys", NULL, ttl_keys);
    skick_conversation(self, "count", NULL, count_keys);
}

static bool present(skick_tk_t *tk, const char *a, const char *key)
{
    char q[96];
    snprintf(q, sizeof q, "{\"action\":\"probe\",\"key\":\"%s\"}", key);
    json_object *r = skick_tk_call(tk, a, q, 1000);
    cr_assert_not_null(r);
    bool p = skick_get_bool(r, "present", false);
    json_object_put(r);
    return p;
}

static skick_tk_t *s_kit(skick_addr_t *a)
{
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "hasher", hasher);
    *a = skick_tk_spawn(tk, "hasher", NULL, NULL);
    return tk;
}

Test(hash, ttl_expires_on_the_shard_clock)
{
    skick_addr_t a;
    skick_tk_t *tk = s_kit(&a);
    json_object_put(skick_tk_call(tk, a.str, "{\"action\":\"put_ttl\"}", 1000));
    skick_tk_advance(tk, 99);
    cr_assert(present(tk, a.str, "k"), "alive until its time is up");
    skick_tk_advance(tk, 1);
    cr_assert_not(present(tk, a.str, "k"), "gone at 100 ms");
    skick_tk_destroy(&tk);
}

Test(hash, add_and_incr)
{
    skick_addr_t a;
    skick_tk_t *tk = s_kit(&a);
    json_object_put(skick_tk_call(tk, a.str, "{\"action\":\"add_incr\"}", 1000));
    skick_tk_destroy(&tk);
}

Test(hash, keys_are_bounded)
{
    skick_addr_t a;
    skick_tk_t *tk = s_kit(&a);
    json_object_put(skick_tk_call(tk, a.str, "{\"action\":\"keys\"}", 1000));
    skick_tk_destroy(&tk);
}

Test(hash, expired_keys_are_not_listed)
{
    skick_addr_t a;
    skick_tk_t *tk = s_kit(&a);
    json_object_put(skick_tk_call(tk, a.str, "{\"action\":\"ttl_keys\"}", 1000));
    json_object *r = skick_tk_call(tk, a.str, "{\"action\":\"count\"}", 1000);
    cr_assert_eq(skick_get_int(r, "n", -1), 3);
    json_object_put(r);
    skick_tk_advance(tk, 60);
    r = skick_tk_call(tk, a.str, "{\"action\":\"count\"}", 1000);
    cr_assert_eq(skick_get_int(r, "n", -1), 1, "only the lasting key is left");
    json_object_put(r);
    skick_tk_destroy(&tk);
}
