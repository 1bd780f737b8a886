/*  test_redis - proto/skick_redis.c: URLs (and where they are read from:
    --hash-file, SKICK_HASH_URL), the key layout, the value mapping

    The mapping is what a Python Skick shard on the same Redis sees
    (docs/hashes.md): strings and numbers as their own text, everything
    else as compact JSON, and a string that would read back as another
    value quoted. Every JSON value must come back as itself (round trips),
    and no Redis string, however hostile, may crash the reader or read as
    something that is not a value.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skick_json.h"
#include "skick_redis.h"

/*  The Redis string of v (v taken), as a NUL-terminated heap string. */
static char *s_enc(json_object *v)
{
    char *out = NULL;
    size_t n = 0;
    cr_assert_eq(skick_redis_encode(v, &out, &n), 0, "not storable: %s",
                 json_object_to_json_string(v));
    cr_assert_eq(strlen(out), n);
    json_object_put(v);
    return out;
}

static void s_stored_as(json_object *v, const char *expected)
{
    char *got = s_enc(v);
    cr_assert_str_eq(got, expected);
    free(got);
}

/*  v encodes, decodes back to an equal value of the same type. */
static void s_round_trip(json_object *v)
{
    char *out = NULL;
    size_t n = 0;
    cr_assert_eq(skick_redis_encode(v, &out, &n), 0);
    json_object *back = NULL;
    cr_assert_eq(skick_redis_decode(out, n, &back), 0, "stored '%s' does not read back", out);
    cr_assert_eq(json_object_get_type(back), json_object_get_type(v), "type of '%s'", out);
    if (json_object_is_type(v, json_type_double))
        cr_assert_eq(json_object_get_double(back), json_object_get_double(v), "'%s'", out);
    else
        cr_assert(json_object_equal(back, v), "'%s' read back as %s", out,
                  json_object_to_json_string(back));
    json_object_put(back);
    json_object_put(v);
    free(out);
}

static json_object *s_json(const char *text)
{
    json_object *v = NULL;
    cr_assert_eq(skick_json_parse_strict(text, strlen(text), &v), 0, "%s", text);
    return v;
}

static json_object *s_dec(const char *data, size_t len)
{
    json_object *v = NULL;
    cr_assert_eq(skick_redis_decode(data, len, &v), 0);
    cr_assert_not_null(v);
    return v;
}

Test(redis, usage)
{
    skick_redis_url_t u;
    char err[512], key[SKICK_REDIS_KEY_MAX];
    cr_assert_eq(skick_redis_url_parse("redis://127.0.0.1:6390/2", &u, err, sizeof err), 0);
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 6390);
    cr_assert_eq(u.db, 2);
    cr_assert_eq(skick_redis_key(key, sizeof key, "scores", "ada"), 10);
    cr_assert_str_eq(key, "scores:ada");
    s_stored_as(json_object_new_string("hello"), "hello");
    s_stored_as(json_object_new_int64(42), "42");
    json_object *v = s_dec("42", 2);
    cr_assert(json_object_is_type(v, json_type_int));
    json_object_put(v);
}

/* ---- URLs ---------------------------------------------------------------------------- */

Test(redis, url_forms)
{
    skick_redis_url_t u;
    char err[512], shown[800];
    cr_assert_eq(skick_redis_url_parse("redis://localhost", &u, err, sizeof err), 0, "%s", err);
    cr_assert_eq(u.port, SKICK_REDIS_PORT);
    cr_assert_eq(u.db, 0);
    cr_assert_not(u.has_password);

    cr_assert_eq(skick_redis_url_parse("redis://:s3cret@h:1/0", &u, err, sizeof err), 0);
    cr_assert(u.has_password);
    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.password, "s3cret");

    cr_assert_eq(skick_redis_url_parse("redis://bob:p%40ss%3Aw@h:7/15", &u, err, sizeof err), 0);
    cr_assert_str_eq(u.user, "bob");
    cr_assert_str_eq(u.password, "p@ss:w");
    cr_assert_eq(u.db, 15);
    skick_redis_url_format(&u, shown, sizeof shown);
    cr_assert_str_eq(shown, "redis://bob:***@h:7/15");
    cr_assert_null(strstr(shown, "p@ss"));

    cr_assert_eq(skick_redis_url_parse("redis://[::1]:6379/", &u, err, sizeof err), 0);
    cr_assert_str_eq(u.host, "::1");
    skick_redis_url_format(&u, shown, sizeof shown);
    cr_assert_str_eq(shown, "redis://[::1]:6379/0");

    cr_assert_eq(skick_redis_url_parse("unix:///run/redis/redis.sock?db=3", &u, err, sizeof err),
                 0);
    cr_assert(u.unix_socket);
    cr_assert_str_eq(u.path, "/run/redis/redis.sock");
    cr_assert_eq(u.db, 3);
    cr_assert_eq(skick_redis_url_parse("unix:///tmp/r.sock", &u, err, sizeof err), 0);
    skick_redis_url_format(&u, shown, sizeof shown);
    cr_assert_str_eq(shown, "unix:///tmp/r.sock");
}

Test(redis, url_refusals)
{
    static const char *bad[] = {
        "",
        "localhost:6379",
        "http://h:1",
        "rediss://h:6379",
        "redis://",
        "redis://:6379",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:12x",
        "redis://h:",
        "redis://h:6379/x",
        "redis://h:6379/-1",
        "redis://h:6379/1/2",
        "redis://h:6379?db=1",
        "redis://user@h:6379",
        "redis://u:@h:6379",
        "redis://u:p%4@h:1",
        "redis://u:p%00@h:1",
        "redis://[::1:6379",
        "redis://h h:1",
        "unix://",
        "unix://relative.sock",
        "unix:///tmp/x.sock?db=x",
        "unix:///tmp/x.sock?timeout=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        skick_redis_url_t u;
        char err[512] = "";
        cr_assert_eq(skick_redis_url_parse(bad[i], &u, err, sizeof err), -1, "accepted '%s'",
                     bad[i]);
        cr_assert_not_null(strstr(err, "bad Redis URL"), "'%s': %s", bad[i], err);
    }
    skick_redis_url_t u;
    char err[512];
    cr_assert_eq(skick_redis_url_parse(NULL, &u, err, sizeof err), -1);
    char long_url[2000] = "redis://";
    memset(long_url + 8, 'a', 1500);
    cr_assert_eq(skick_redis_url_parse(long_url, &u, err, sizeof err), -1);
}

/* ---- keys ---------------------------------------------------------------------------- */

/*  A file of mode mode holding text, in a fresh directory; the path in buf. */
static void s_url_file(char *buf, size_t len, const char *text, mode_t mode)
{
    char dir[] = "/tmp/skick-test-url-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(buf, len, "%s/url", dir);
    FILE *f = fopen(buf, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(buf, mode), 0);
}

static bool s_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void s_url_file_gone(const char *path)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    unlink(path);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

Test(redis, url_file)
{
    char path[512], buf[SKICK_REDIS_URL_MAX], err[1200];
    s_url_file(path, sizeof path, " \tredis://:pw@127.0.0.1:7/2\n\n", 0600);
    cr_assert_eq(skick_redis_url_read(path, buf, sizeof buf, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(buf, "redis://:pw@127.0.0.1:7/2");
    cr_assert_eq(chmod(path, 0400), 0);
    cr_assert_eq(skick_redis_url_read(path, buf, sizeof buf, err, sizeof err), 0, "%s", err);
    static const mode_t open_modes[] = {0640, 0604, 0660, 0606, 0610, 0620, 0601, 0602};
    for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
        cr_assert_eq(chmod(path, open_modes[i]), 0);
        cr_assert_eq(skick_redis_url_read(path, buf, sizeof buf, err, sizeof err), -1);
        char want[700];
        snprintf(want, sizeof want, "permissions %04o for %s are too open", open_modes[i], path);
        cr_assert(strstr(err, want) && strstr(err, "chmod 600"), "%s", err);
    }
    s_url_file_gone(path);
    cr_assert_eq(skick_redis_url_read(path, buf, sizeof buf, err, sizeof err), -1);
    cr_assert(strstr(err, "cannot open") && strstr(err, path), "%s", err);
    static const char *const bad[][2] = {
        {"", "is empty"},
        {" \n\t\n", "is empty"},
        {"redis://a\nredis://b\n", "more than one line"},
        {"redis://a\rb", "more than one line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_url_file(path, sizeof path, bad[i][0], 0600);
        cr_assert_eq(skick_redis_url_read(path, buf, sizeof buf, err, sizeof err), -1);
        cr_assert(strstr(err, bad[i][1]), "%zu: %s", i, err);
        s_url_file_gone(path);
    }
    char big[64];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s_url_file(path, sizeof path, big, 0600);
    cr_assert_eq(skick_redis_url_read(path, buf, 32, err, sizeof err), -1);
    cr_assert(strstr(err, "too long"), "%s", err);
    s_url_file_gone(path);
    cr_assert_eq(skick_redis_url_read("/tmp", buf, sizeof buf, err, sizeof err), -1);
    cr_assert(strstr(err, "not a regular file"), "%s", err);
}

Test(redis, url_choose)
{
    char path[512], buf[SKICK_REDIS_URL_MAX], err[1200];
    skick_redis_url_t u;
    unsetenv(SKICK_REDIS_URL_ENV);
    cr_assert_eq(skick_redis_url_choose(NULL, NULL, &u, buf, sizeof buf, err, sizeof err), 0);
    setenv(SKICK_REDIS_URL_ENV, "", 1);
    cr_assert_eq(skick_redis_url_choose(NULL, NULL, &u, buf, sizeof buf, err, sizeof err), 0);
    setenv(SKICK_REDIS_URL_ENV, "redis://:e@127.0.0.1:9", 1);
    cr_assert_eq(skick_redis_url_choose(NULL, NULL, &u, buf, sizeof buf, err, sizeof err), 1);
    cr_assert(u.has_password && u.port == 9 && strcmp(u.password, "e") == 0);
    /* an option wins over the environment */
    cr_assert_eq(skick_redis_url_choose("redis://h:8", NULL, &u, buf, sizeof buf, err,
                                        sizeof err), 1);
    cr_assert(!u.has_password && u.port == 8);
    cr_assert_str_eq(buf, "redis://h:8");
    s_url_file(path, sizeof path, "redis://:f@127.0.0.1:7\n", 0600);
    cr_assert_eq(skick_redis_url_choose(NULL, path, &u, buf, sizeof buf, err, sizeof err), 1);
    cr_assert(u.port == 7 && strcmp(u.password, "f") == 0);
    cr_assert_eq(skick_redis_url_choose("redis://h:8", path, &u, buf, sizeof buf, err,
                                        sizeof err), -1);
    cr_assert(strstr(err, "not both"), "%s", err);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(skick_redis_url_choose(NULL, path, &u, buf, sizeof buf, err, sizeof err), -1);
    cr_assert(s_starts(err, "--hash-file: permissions 0644"), "%s", err);
    s_url_file_gone(path);
    s_url_file(path, sizeof path, "http://x\n", 0600);
    cr_assert_eq(skick_redis_url_choose(NULL, path, &u, buf, sizeof buf, err, sizeof err), -1);
    cr_assert(s_starts(err, "--hash-file: bad Redis URL"), "%s", err);
    s_url_file_gone(path);
    setenv(SKICK_REDIS_URL_ENV, "rediss://x", 1);
    cr_assert_eq(skick_redis_url_choose(NULL, NULL, &u, buf, sizeof buf, err, sizeof err), -1);
    cr_assert(s_starts(err, SKICK_REDIS_URL_ENV ": bad Redis URL"), "%s", err);
    cr_assert_eq(skick_redis_url_choose("ftp://x", NULL, &u, buf, sizeof buf, err, sizeof err),
                 -1);
    cr_assert(s_starts(err, "--hash: bad Redis URL"), "%s", err);
    unsetenv(SKICK_REDIS_URL_ENV);
}

Test(redis, keys)
{
    char k[SKICK_REDIS_KEY_MAX];
    cr_assert_eq(skick_redis_key(k, sizeof k, "t", "a b/c"), 7);
    cr_assert_str_eq(k, "t:a b/c");
    cr_assert_eq(skick_redis_key(k, sizeof k, "t", "a:b"), -1);
    cr_assert_eq(skick_redis_key(k, sizeof k, "t", "{a}"), -1);
    cr_assert_eq(skick_redis_key(k, sizeof k, "t", "a}"), -1);
    cr_assert_eq(skick_redis_key(k, sizeof k, "t:x", "a"), -1);
    cr_assert_eq(skick_redis_key(k, sizeof k, "", "a"), -1);
    cr_assert_eq(skick_redis_key(k, sizeof k, "t", ""), -1);
    cr_assert_eq(skick_redis_key(k, 4, "t", "abc"), -1, "short buffer");
    char table[257], key[1025];
    memset(table, 'T', 256);
    table[256] = '\0';
    memset(key, 'k', 1024);
    key[1024] = '\0';
    cr_assert_eq(skick_redis_key(k, sizeof k, table, key), 256 + 1 + 1024);

    cr_assert_eq(skick_redis_match(k, sizeof k, "scores"), 8);
    cr_assert_str_eq(k, "scores:*");
    cr_assert_gt(skick_redis_match(k, sizeof k, "a*b?[c]\\"), 0);
    cr_assert_str_eq(k, "a\\*b\\?\\[c\\]\\\\:*");
    cr_assert_eq(skick_redis_match(k, 5, "abcd"), -1);
}

/* ---- values: what is stored ------------------------------------------------------------ */

Test(redis, stored_forms)
{
    s_stored_as(json_object_new_string("hello world"), "hello world");
    s_stored_as(json_object_new_string(""), "");
    s_stored_as(json_object_new_string("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");
    s_stored_as(json_object_new_string("null"), "null");
    s_stored_as(json_object_new_string("5x"), "5x");
    s_stored_as(json_object_new_string("{not json"), "{not json");
    /* strings that would read back as something else are quoted */
    s_stored_as(json_object_new_string("5"), "\"5\"");
    s_stored_as(json_object_new_string("-1.5e3"), "\"-1.5e3\"");
    s_stored_as(json_object_new_string("true"), "\"true\"");
    s_stored_as(json_object_new_string(" 7 "), "\" 7 \"");
    s_stored_as(json_object_new_string("{\"a\":1}"), "\"{\\\"a\\\":1}\"");
    s_stored_as(json_object_new_string("\"x\""), "\"\\\"x\\\"\"");
    s_stored_as(json_object_new_string("[]"), "\"[]\"");
    s_stored_as(json_object_new_string("a/b"), "a/b");
    /* numbers as Python writes them */
    s_stored_as(json_object_new_int64(0), "0");
    s_stored_as(json_object_new_int64(-17), "-17");
    s_stored_as(json_object_new_int64(INT64_MAX), "9223372036854775807");
    s_stored_as(json_object_new_int64(INT64_MIN), "-9223372036854775808");
    s_stored_as(json_object_new_double(1.5), "1.5");
    s_stored_as(json_object_new_double(0.1), "0.1");
    s_stored_as(json_object_new_double(2.0), "2.0");
    s_stored_as(json_object_new_double(-0.0), "-0.0");
    s_stored_as(json_object_new_double(1e16), "1e+16");
    s_stored_as(json_object_new_double(1e-05), "1e-05");
    s_stored_as(json_object_new_double(1.0 / 3), "0.3333333333333333");
    /* what Python could not store: compact JSON */
    s_stored_as(json_object_new_boolean(1), "true");
    s_stored_as(json_object_new_boolean(0), "false");
    s_stored_as(s_json("{\"a\": [1, \"x/y\", null], \"b\": {}}"),
                "{\"a\":[1,\"x/y\",null],\"b\":{}}");
    s_stored_as(json_object_new_array(), "[]");
}

Test(redis, not_storable)
{
    char *out = (char *) 1;
    size_t n = 1;
    cr_assert_eq(skick_redis_encode(NULL, &out, &n), -1, "null");
    cr_assert_null(out);
    json_object *v = json_object_new_string_len("\xff\xfe", 2);
    cr_assert_eq(skick_redis_encode(v, &out, &n), -1, "not UTF-8");
    json_object_put(v);
    v = json_object_new_double(NAN);
    cr_assert_eq(skick_redis_encode(v, &out, &n), -1, "NaN");
    json_object_put(v);
    v = json_object_new_double(INFINITY);
    cr_assert_eq(skick_redis_encode(v, &out, &n), -1, "inf");
    json_object_put(v);
    v = json_object_new_object();
    json_object_object_add(v, "bad", json_object_new_string_len("\xc3", 1));
    cr_assert_eq(skick_redis_encode(v, &out, &n), -1, "nested bad UTF-8");
    json_object_put(v);
    v = json_object_new_array();
    json_object_array_add(v, json_object_new_double(NAN));
    cr_assert_eq(skick_redis_encode(v, &out, &n), -1, "nested NaN");
    json_object_put(v);
}

/* ---- values: what is read ------------------------------------------------------------------ */

Test(redis, read_forms)
{
    /* what Python's redis-py wrote: str, int, float as text */
    json_object *v = s_dec("hello", 5);
    cr_assert_str_eq(json_object_get_string(v), "hello");
    json_object_put(v);
    v = s_dec("-12", 3);
    cr_assert(json_object_is_type(v, json_type_int));
    cr_assert_eq(json_object_get_int64(v), -12);
    json_object_put(v);
    v = s_dec("3.25", 4);
    cr_assert(json_object_is_type(v, json_type_double));
    cr_assert_eq(json_object_get_double(v), 3.25);
    json_object_put(v);
    v = s_dec("1e+16", 5);
    cr_assert(json_object_is_type(v, json_type_double));
    json_object_put(v);
    /* Python's float('inf') and friends are not JSON: strings */
    static const char *raw[] = {"inf", "nan", "-inf", "NaN", "Infinity", "", " ", "null",
                                "05", "1.", ".5", "+1", "0x10", "[1,]", "{'a':1}", "tru",
                                "1 2", "\"unterminated", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
        v = s_dec(raw[i], strlen(raw[i]));
        cr_assert(json_object_is_type(v, json_type_string), "'%s'", raw[i]);
        cr_assert_str_eq(json_object_get_string(v), raw[i]);
        json_object_put(v);
    }
    static const char *big[] = {"99999999999999999999999", "-9223372036854775809",
                                "18446744073709551616"}; /* past int64: kept as text */
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        v = s_dec(big[i], strlen(big[i]));
        cr_assert(json_object_is_type(v, json_type_string), "'%s'", big[i]);
        json_object_put(v);
    }
    s_round_trip(json_object_new_string("99999999999999999999999"));
    v = s_dec(" 7 ", 3);
    cr_assert(json_object_is_type(v, json_type_int), "JSON text with spaces is its value");
    json_object_put(v);
    v = s_dec("{\"a\":[true,null]}", 17);
    cr_assert(json_object_is_type(v, json_type_object));
    json_object_put(v);
    /* a NUL inside: a string of that length */
    v = s_dec("a\0b", 3);
    cr_assert_eq(json_object_get_string_len(v), 3);
    json_object_put(v);
}

Test(redis, not_text)
{
    static const char *bad[] = {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "ok\x80",
                                "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_object *v = (json_object *) 1;
        cr_assert_eq(skick_redis_decode(bad[i], strlen(bad[i]), &v), -1, "#%zu", i);
        cr_assert_null(v);
    }
}

/* ---- round trips ---------------------------------------------------------------------------- */

Test(redis, round_trips)
{
    static const char *strings[] = {"", "x", "5", "-0", "1e5", "true", "false", "null",
                                    "\"", "\"\"", "\\", "{}", "[]", " [1] ", "\t5\n",
                                    "{\"a\":\"b\"}", "caf\xc3\xa9", "\xf0\x9f\x98\x80",
                                    "line\nbreak", "a\"b", "ctl\x01", "/", "\\u0041"};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        s_round_trip(json_object_new_string(strings[i]));
    s_round_trip(json_object_new_string_len("nul\0inside", 11));
    static const int64_t ints[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 1000000007};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        s_round_trip(json_object_new_int64(ints[i]));
    static const double doubles[] = {0.0, -0.0, 0.1, 1.5, -2.0, 1e300, -1e-300, 5e-324,
                                     1.7976931348623157e308, 123456789.125, 1e16, 1e15,
                                     0.30000000000000004, 2.5e-8};
    for (size_t i = 0; i < sizeof doubles / sizeof *doubles; i++)
        s_round_trip(json_object_new_double(doubles[i]));
    s_round_trip(json_object_new_boolean(1));
    s_round_trip(json_object_new_boolean(0));
    s_round_trip(s_json("{\"n\": 1, \"s\": \"5\", \"d\": 0.1, \"a\": [null, true, {}]}"));
    s_round_trip(s_json("[[[[]]]]"));
    s_round_trip(json_object_new_object());
}

/*  Random doubles from their bits, and random strings from a small
    alphabet that makes JSON-looking text likely. */
Test(redis, round_trips_random)
{
    srand(7);
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = ((uint64_t) rand() << 42) ^ ((uint64_t) rand() << 21) ^ (uint64_t) rand();
        double d;
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d))
            continue;
        s_round_trip(json_object_new_double(d));
    }
    static const char alpha[] = "0123456789.-+eE\"\\{}[],:tfrunlsa \t\n";
    for (int i = 0; i < 20000; i++) {
        char buf[16];
        int n = rand() % (int) sizeof buf;
        for (int j = 0; j < n; j++)
            buf[j] = alpha[rand() % (int) (sizeof alpha - 1)];
        s_round_trip(json_object_new_string_len(buf, n));
    }
}

/*  Any bytes: decode either refuses (not UTF-8) or gives a value that
    stores again as the same bytes, or as a string that reads back alike. */
static const char s_json_chars[] = "{}[]\",:0-9.etrunl\"ab"; /* 21 characters */

Test(redis, hostile_reads)
{
    srand(11);
    for (int i = 0; i < 50000; i++) {
        char buf[24];
        int n = rand() % (int) sizeof buf;
        for (int j = 0; j < n; j++)
            buf[j] = (char) (rand() % 4 == 0 ? rand() % 256 : s_json_chars[rand() % 21]);
        json_object *v = NULL;
        if (skick_redis_decode(buf, (size_t) n, &v) != 0) {
            cr_assert_null(v);
            cr_assert_not(skick_utf8_valid((const unsigned char *) buf, (size_t) n));
            continue;
        }
        cr_assert_not_null(v);
        char *again = NULL;
        size_t an = 0;
        cr_assert_eq(skick_redis_encode(v, &again, &an), 0);
        json_object *back = NULL;
        cr_assert_eq(skick_redis_decode(again, an, &back), 0);
        cr_assert(json_object_equal(v, back) ||
                  (json_object_is_type(v, json_type_double) &&
                   json_object_get_double(v) == json_object_get_double(back)));
        json_object_put(back);
        json_object_put(v);
        free(again);
    }
    /* deeper than the reader allows: a plain string, not a crash */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    json_object *v = s_dec(deep, sizeof deep);
    cr_assert(json_object_is_type(v, json_type_string));
    json_object_put(v);
}
