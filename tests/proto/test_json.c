/*  test_json - the strict JSON reader (proto/skick_json.c) held to json-c

    The reader replaced json-c's tokener on every process boundary, so it
    must build the trees json-c builds and never accept what json-c's strict
    mode (plus the UTF-8, finiteness and depth rules) refuses. Values nest
    at most SKICK_JSON_DEPTH deep, the top value being 1 deep: json-c's
    depth, which also counts a scalar inside the innermost container. The
    reference (json_oracle.h, shared with tests/fuzz/fuzz_json.c) is the old
    code path; fixed documents, every refusal, and random damage compare
    the two. The check-only entry (skick_json_valid, the broker's) must
    agree with the parser on every input.
*/
#include <criterion/criterion.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_oracle.h"

/*  data as C-escaped text for a failure message (static buffer). */
static const char *s_show(const char *data, size_t len)
{
    static char out[4 * 100 + 1];
    size_t n = 0;
    for (size_t i = 0; i < len && i < 100; i++) {
        unsigned char x = (unsigned char) data[i];
        n += (size_t) snprintf(out + n, sizeof out - n, x >= 0x20 && x < 0x7f ? "%c" : "\\x%02x",
                               x);
    }
    out[n] = '\0';
    return out;
}

/*  Parse with both; when ours accepts, the reference must too, with the
    same tree (same values and the same text when printed). Returns whether
    ours accepted. */
static bool s_compare(const char *data, size_t len)
{
    json_object *ours = NULL, *ref = NULL;
    int rc = skick_json_parse_strict(data, len, &ours);
    int rrc = json_oracle_parse(data, len, &ref);
    const char *show = s_show(data, len);
    cr_assert_eq(skick_json_valid(data, len), rc == 0, "check and parse disagree on '%s'", show);
    if (rc == 0) {
        cr_assert_eq(rrc, 0, "accepted what json-c refuses: '%s'", show);
        if (!json_oracle_pair_bug(json_oracle_text(ours), json_oracle_text(ref))) {
            cr_assert(json_object_equal(ours, ref), "different trees for '%s'", show);
            cr_assert_str_eq(json_oracle_text(ours), json_oracle_text(ref),
                             "printed differently: '%s'", show);
        }
        /* the types too: json_object_equal compares an int and a double by value */
        cr_assert_eq(json_object_get_type(ours), json_object_get_type(ref));
    } else {
        cr_assert_null(ours);
    }
    json_object_put(ours);
    json_object_put(ref);
    return rc == 0;
}

Test(json, utf8_rules)
{
    cr_assert(skick_utf8_valid((const unsigned char *) "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
    cr_assert_not(skick_utf8_valid((const unsigned char *) "\xc3", 1), "truncated");
    cr_assert_not(skick_utf8_valid((const unsigned char *) "\xf4\x90\x80\x80", 4), "> U+10FFFF");
    cr_assert_not(skick_utf8_valid((const unsigned char *) "\xe0\x80\xaf", 3), "overlong");
    cr_assert_not(skick_utf8_valid((const unsigned char *) "\xed\xa0\x80", 3), "surrogate");
}

Test(json, builds_what_json_c_builds)
{
    static const char *good[] = {
        "{}", "[]", "0", "-0", "1.5", "1.50", "1e5", "1E+2", "-1.5E-3", "0e0", "-0.0", "\"x\"",
        "true", "false", "null", "[null,true,false]", "{\"a\":null}",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\"}", "[[[]]]", " [ 1 , 2 ] ", "\t\r\n1\n",
        "{\"\\uD83D\\uDE00\":1}", "\"\\ud83d\\ude00\"", "[1e-400]", "\"caf\xc3\xa9\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0000a\"", "{\"k\\u0000x\":1}",
        /* lone surrogates become U+FFFD, as in json-c */
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800x\"", "\"\\ud800\\u0041\"", "\"\\ud800\\ud800\"",
        /* integers: int64, uint64 above, saturation past both */
        "9223372036854775807", "9223372036854775808", "18446744073709551615",
        "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
        "123456789012345678901234567890", "999999999999999999", "-999999999999999999",
        "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1},\"a\":[2]}",
        "{\"action\":\"blast_msg\",\"i\":123456,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "1.7976931348623157e308", "4.9e-324", "[0.1,0.2,0.30000000000000004]",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert(s_compare(good[i], strlen(good[i])), "refused: %s", good[i]);
    /* a pair json-c gets wrong (see s_json_c_pair_bug): U+1DE00 */
    json_object *v;
    cr_assert_eq(skick_json_parse_strict("\"\\ud837\\ude00\"", 14, &v), 0);
    cr_assert_str_eq(json_object_get_string(v), "\xf0\x9d\xb8\x80");
    json_object_put(v);
    /* a long string, escaped and not (past the stack buffers) */
    size_t n = 5000;
    char *s = malloc(n + 3), *e = malloc(2 * n + 3);
    s[0] = e[0] = '"';
    for (size_t i = 0; i < n; i++) {
        s[1 + i] = (char) ('a' + i % 26);
        e[1 + 2 * i] = '\\';
        e[2 + 2 * i] = 'n';
    }
    s[n + 1] = e[2 * n + 1] = '"';
    cr_assert(s_compare(s, n + 2));
    cr_assert(s_compare(e, 2 * n + 2));
    /* a long key with escapes */
    char key[700];
    int k = snprintf(key, sizeof key, "{\"");
    for (int i = 0; i < 100; i++)
        k += snprintf(key + k, sizeof key - (size_t) k, "\\u00e9");
    k += snprintf(key + k, sizeof key - (size_t) k, "\":1}");
    cr_assert(s_compare(key, (size_t) k));
    free(s);
    free(e);
}

Test(json, refuses_what_is_not_strict_json)
{
    static const char *bad[] = {
        "", " ", "[1,]", "{\"a\":1,}", "{,}", "[01]", "-01", "1.", ".5", "-", "+1", "1e", "1e+",
        "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "[1e400]", "\"\\x\"", "\"a\nb\"",
        "\"\\u12\"", "\"\\u12g4\"", "{\"a\" 1}", "{1:2}", "{\"a\"}", "[1 2]", "tru", "nul",
        "nulll", "{} {}", "[] x", "\"unterminated", "\"\xc3\"", "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"", "\"\xc0\xaf\"", "\xef\xbb\xbf{}", "\f1", "1\v", "[", "{",
        "{\"a\":", "'x'", "[1,,2]", "\"\\", "\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_object *v = (json_object *) 1;
        cr_assert_eq(skick_json_parse_strict(bad[i], strlen(bad[i]), &v), -1, "accepted: %s",
                     bad[i]);
        cr_assert_null(v);
        cr_assert_not(skick_json_valid(bad[i], strlen(bad[i])), "check accepted: %s", bad[i]);
    }
    cr_assert_not(skick_json_valid(NULL, 0));
    cr_assert_not(skick_json_valid("\"\\\0x\"", 5), "a backslash and a NUL");
    cr_assert_not(skick_json_valid("\"a\0b\"", 5), "a raw NUL in a string");
    /* numbers past SKICK_JSON_NUMBER_MAX characters are not data */
    char num[SKICK_JSON_NUMBER_MAX + 2];
    memset(num, '1', sizeof num);
    cr_assert(skick_json_valid(num, SKICK_JSON_NUMBER_MAX));
    cr_assert_not(skick_json_valid(num, SKICK_JSON_NUMBER_MAX + 1));
    /* a 400-character fraction that overflows a double without an exponent */
    char big[410];
    memset(big, '9', sizeof big);
    big[400] = '.';
    cr_assert_not(s_compare(big, sizeof big));
}

Test(json, nesting_is_bounded)
{
    char deep[2 * 80 + 1];
    for (int d = 60; d <= 68; d++) {
        memset(deep, '[', (size_t) d);
        memset(deep + d, ']', (size_t) d);
        cr_assert_eq(s_compare(deep, (size_t) (2 * d)), d <= SKICK_JSON_DEPTH, "depth %d", d);
        /* a value inside d arrays is d + 1 deep */
        memmove(deep + d + 1, deep + d, (size_t) d);
        deep[d] = '1';
        cr_assert_eq(s_compare(deep, (size_t) (2 * d + 1)), d < SKICK_JSON_DEPTH, "1 in %d", d);
        memmove(deep + d, deep + d + 1, (size_t) d);
        for (int i = 0; i < d; i++) {
            deep[i] = '{';
            deep[2 * d - 1 - i] = '}';
        }
        /* {{...}} is not JSON at any depth (keys missing): refused, never a crash */
        cr_assert_not(s_compare(deep, (size_t) (2 * d)));
    }
    /* objects nest the same way as arrays */
    char obj[64 * 6 + 64 + 8];
    size_t n = 0;
    for (int i = 0; i < 65; i++)
        n += (size_t) sprintf(obj + n, "{\"a\":");
    obj[n++] = '1';
    for (int i = 0; i < 65; i++)
        obj[n++] = '}';
    cr_assert_not(s_compare(obj, n), "1 in 65 objects");
    cr_assert_not(s_compare(obj + 5, n - 6), "1 in 64 objects: 65 deep");
    cr_assert(s_compare(obj + 10, n - 12), "1 in 63 objects");
}

Test(json, numbers_do_not_depend_on_the_locale)
{
    /* an application module may set a locale whose decimal point is a comma */
    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8") && !setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
        cr_skip_test("no locale with a decimal comma installed");
    json_object *v;
    cr_assert_eq(skick_json_parse_strict("2.5", 3, &v), 0);
    cr_assert_float_eq(json_object_get_double(v), 2.5, 1e-12);
    json_object_put(v);
    setlocale(LC_NUMERIC, "C");
}

/*  Random damage to valid documents: the reader and json-c agree whenever
    the reader accepts, the check agrees with the parser, nothing leaks
    (ASan in CI). */
Test(json, random_damage_never_makes_it_looser)
{
    static const char *docs[] = {
        "{\"action\":\"add\",\"n\":[1,2.5e3,-7],\"s\":\"h\\u00e9\",\"o\":{\"t\":true}}",
        "[\"caf\xc3\xa9\",\"\\ud83d\\ude00\",null,false,-0.5E+2,{\"\":[]}]",
        "{\"big\":18446744073709551615,\"neg\":-9223372036854775808,\"d\":1.250}",
    };
    char buf[128];
    srand(7);
    int accepted = 0;
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t n = strlen(docs[d]);
        for (int k = 0; k < 20000; k++) {
            memcpy(buf, docs[d], n);
            int flips = 1 + rand() % 3;
            for (int f = 0; f < flips; f++)
                buf[rand() % n] = (char) (rand() % 256);
            size_t len = (size_t) (rand() % 4 == 0 ? rand() % (int) n : (int) n);
            accepted += s_compare(buf, len);
        }
    }
    cr_assert_gt(accepted, 100, "some damage leaves valid JSON (%d)", accepted);
}
