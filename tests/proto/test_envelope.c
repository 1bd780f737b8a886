/*  test_envelope - the wire envelope: round trip, every refusal, and random
    damage that must be refused or decoded, never crash (run under ASan).
*/
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "skick/err.h"
#include "skick_envelope.h"

static skick_envelope_t s_sample(void)
{
    skick_envelope_t e = {.kind = SKICK_KIND_ACTOR, .seq = 42, .flags = SKICK_ENVELOPE_CONTROL,
                          .gen = 7, .from_shard = 0x1122334455667788ULL, .from_id = 2,
                          .to_shard = 3, .to_id = 0xffffffffffffffffULL};
    e.body = json_tokener_parse("{\"action\":\"add\",\"number\":5}");
    return e;
}

Test(envelope, round_trip)
{
    skick_envelope_t e = s_sample();
    uint8_t h[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(&e, h);
    size_t blen;
    const char *body = skick_envelope_body_text(&e, &blen);
    char why[100];
    skick_envelope_t *d = skick_envelope_decode(h, sizeof h, body, blen, why, sizeof why);
    cr_assert_not_null(d, "%s", why);
    cr_assert_eq(d->kind, SKICK_KIND_ACTOR);
    cr_assert_eq(d->seq, 42);
    cr_assert_eq(d->flags, SKICK_ENVELOPE_CONTROL);
    cr_assert_eq(d->gen, 7);
    cr_assert_eq(d->from_shard, 0x1122334455667788ULL);
    cr_assert_eq(d->to_id, 0xffffffffffffffffULL);
    cr_assert(json_object_equal(d->body, e.body));
    cr_assert_str_eq(skick_kind_name(d->kind), "ACTOR");
    skick_envelope_destroy(&d);
    cr_assert_null(d);
    json_object_put(e.body);
}

Test(envelope, empty_body_and_null)
{
    skick_envelope_t e = {.kind = SKICK_KIND_HEARTBEAT, .seq = 1};
    uint8_t h[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(&e, h);
    skick_envelope_t *d = skick_envelope_decode(h, sizeof h, NULL, 0, NULL, 0);
    cr_assert_not_null(d);
    cr_assert_null(d->body);
    skick_envelope_destroy(&d);
    d = skick_envelope_decode(h, sizeof h, "null", 4, NULL, 0);
    cr_assert_not_null(d, "a JSON null body is valid");
    skick_envelope_destroy(&d);
}

static void s_refused(const uint8_t *h, size_t hlen, const char *body, size_t blen,
                      const char *expect)
{
    char why[100] = "";
    skick_envelope_t *d = skick_envelope_decode(h, hlen, body, blen, why, sizeof why);
    cr_assert_null(d, "should be refused: %s", expect);
    cr_assert_eq(skick_errno(), SKICK_EPROTO);
    cr_assert_str_eq(why, expect);
}

Test(envelope, refusals)
{
    skick_envelope_t e = s_sample();
    uint8_t h[SKICK_ENVELOPE_HEADER], bad[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(&e, h);
    const char *ok = "{}";
    s_refused(h, sizeof h - 1, ok, 2, "header frame has the wrong size");
    s_refused(NULL, 0, ok, 2, "header frame has the wrong size");
    memcpy(bad, h, sizeof h);
    bad[0] ^= 1;
    s_refused(bad, sizeof bad, ok, 2, "not a Skick envelope (bad signature)");
    memcpy(bad, h, sizeof h);
    bad[2] = 9;
    s_refused(bad, sizeof bad, ok, 2, "unsupported envelope version");
    memcpy(bad, h, sizeof h);
    bad[3] = 0;
    s_refused(bad, sizeof bad, ok, 2, "unknown message kind");
    bad[3] = SKICK_KIND_COUNT_;
    s_refused(bad, sizeof bad, ok, 2, "unknown message kind");
    memcpy(bad, h, sizeof h);
    memset(bad + 4, 0, 8);
    s_refused(bad, sizeof bad, ok, 2, "sequence number 0");
    memcpy(bad, h, sizeof h);
    memset(bad + 20, 0, 8); /* from shard 0 but from actor 2 */
    s_refused(bad, sizeof bad, ok, 2, "half an address");
    static const char *const bodies[] = {"{", "{} x", "[1] [2]", "NaN", "{\"a\":Infinity}",
                                         "\"\xed\xa0\x80\"", "\"\xc0\xaf\"", "'x'"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        s_refused(h, sizeof h, bodies[i], strlen(bodies[i]), "body is not one strict JSON value");
    s_refused(h, sizeof h, ok, SKICK_ENVELOPE_MAX_BODY + 1, "body frame too large");
    json_object_put(e.body);
}

Test(envelope, random_damage_never_crashes)
{
    skick_envelope_t e = s_sample();
    uint8_t h[SKICK_ENVELOPE_HEADER], m[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(&e, h);
    size_t blen;
    const char *body = skick_envelope_body_text(&e, &blen);
    char b[64];
    srand(12345); /* fixed seed: a failure replays */
    int decoded = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(m, h, sizeof h);
        memcpy(b, body, blen);
        for (int k = 0; k < 1 + rand() % 4; k++) {
            if (rand() % 2)
                m[rand() % sizeof m] = (uint8_t) rand();
            else
                b[rand() % blen] = (char) rand();
        }
        size_t cut = rand() % 8 == 0 ? (size_t) (rand() % (int) blen) : blen;
        skick_envelope_t *d = skick_envelope_decode(m, sizeof m, b, cut, NULL, 0);
        if (d) {
            decoded++;
            cr_assert(d->kind > 0 && d->kind < SKICK_KIND_COUNT_ && d->seq != 0);
            skick_envelope_destroy(&d);
        }
    }
    cr_assert_gt(decoded, 0, "some damage is harmless (flags, ids)");
    json_object_put(e.body);
}

Test(envelope, utf8_rules)
{
    cr_assert(skick_utf8_valid((const unsigned char *) "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
    cr_assert_not(skick_utf8_valid((const unsigned char *) "\xc3", 1), "truncated");
    cr_assert_not(skick_utf8_valid((const unsigned char *) "\xf4\x90\x80\x80", 4), "> U+10FFFF");
    cr_assert_not(skick_utf8_valid((const unsigned char *) "\xe0\x80\xaf", 3), "overlong");
    cr_assert_not(skick_utf8_valid((const unsigned char *) "\xed\xa0\x80", 3), "surrogate");
}

/* ---- lazy decoding and the one-pass validator ----------------------------- */

Test(envelope, lazy_decode_keeps_the_text_and_parses_on_demand)
{
    skick_envelope_t e = s_sample();
    uint8_t h[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(&e, h);
    size_t blen;
    const char *body = skick_envelope_body_text(&e, &blen);
    char why[100];
    skick_envelope_t *d = skick_envelope_decode_lazy(h, sizeof h, body, blen, why, sizeof why);
    cr_assert_not_null(d, "%s", why);
    cr_assert_null(d->body);
    size_t rlen;
    const char *raw = skick_envelope_body_text(d, &rlen);
    cr_assert_eq(rlen, blen);
    cr_assert(memcmp(raw, body, blen) == 0, "forwarded byte for byte");
    cr_assert(json_object_equal(skick_envelope_body(d), e.body));
    cr_assert_null(d->raw, "parsed once, the text goes");
    skick_envelope_destroy(&d);
    cr_assert_null(skick_envelope_decode_lazy(h, sizeof h, "{\"a\":", 5, why, sizeof why));
    json_object_put(e.body);
}

/*  What the validator accepts, the shards' parser must accept too (so the
    broker never forwards what a shard will refuse); the validator may be
    stricter where json-c is lenient ("1.", say), per RFC 8259. */
static void s_never_looser(const char *text, size_t len)
{
    json_object *v = NULL;
    bool parsed = skick_json_parse_strict(NULL, text, len, &v) == 0;
    json_object_put(v);
    cr_assert(!skick_json_valid(text, len) || parsed, "validator accepts what the parser "
              "refuses: '%.*s'", (int) (len > 80 ? 80 : len), text);
}

Test(envelope, validator_accepts_json_and_refuses_the_rest)
{
    static const char *good[] = {
        "{}", "[]", "0", "-0", "1.5", "1e5", "-1.5E-3", "\"x\"", "true", "false", "null",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\"}", "[[[]]]", " [ 1 , 2 ] ",
        "{\"\\uD83D\\uDE00\":1}", "[1e-400]", "\"caf\xc3\xa9\"",
    };
    static const char *bad[] = {
        "", "[1,]", "{\"a\":1,}", "{,}", "[01]", "1.", ".5", "-", "+1", "1e", "1e+", "NaN",
        "Infinity", "-Infinity", "1e999", "-1e999", "\"\\x\"", "\"a\nb\"", "\"\\u12\"",
        "{\"a\" 1}", "{1:2}", "[1 2]", "tru", "nul", "{} {}", "[] x", "\"unterminated",
        "\"\xc3\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_assert(skick_json_valid(good[i], strlen(good[i])), "refused: %s", good[i]);
        s_never_looser(good[i], strlen(good[i]));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!skick_json_valid(bad[i], strlen(bad[i])), "accepted: %s", bad[i]);
    /* nesting: 64 levels are fine, 65 are not */
    char deep[200];
    for (int d = 60; d <= 68; d++) {
        memset(deep, '[', (size_t) d);
        memset(deep + d, ']', (size_t) d);
        cr_assert_eq(skick_json_valid(deep, (size_t) (2 * d)), d <= 64, "depth %d", d);
        s_never_looser(deep, (size_t) (2 * d));
    }
    /* random damage to a valid document */
    const char *doc = "{\"action\":\"add\",\"n\":[1,2.5e3,-7],\"s\":\"h\\u00e9\",\"o\":{\"t\":true}}";
    size_t n = strlen(doc);
    char buf[128];
    srand(7);
    for (int k = 0; k < 20000; k++) {
        memcpy(buf, doc, n);
        int flips = 1 + rand() % 3;
        for (int f = 0; f < flips; f++)
            buf[rand() % n] = (char) (rand() % 128);
        size_t len = (size_t) (rand() % 4 == 0 ? rand() % (int) n : (int) n);
        s_never_looser(buf, len);
    }
}
