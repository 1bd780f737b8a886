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

/*  Another version is named as such (EVERSION), whatever its header's size:
    only the signature and the version byte keep their place. */
Test(envelope, another_version_is_named)
{
    skick_envelope_t e = s_sample();
    uint8_t h[SKICK_ENVELOPE_HEADER + 8] = {0};
    skick_envelope_encode_header(&e, h);
    h[2] = 9;
    char why[100] = "";
    for (size_t len = 3; len <= sizeof h; len += SKICK_ENVELOPE_HEADER - 3) {
        skick_set_errno(SKICK_OK);
        cr_assert_null(skick_envelope_decode(h, len, "{}", 2, why, sizeof why));
        cr_assert_eq(skick_errno(), SKICK_EVERSION, "header of %zu bytes", len);
        cr_assert_str_eq(why, "unsupported envelope version 9 (this side speaks 1)");
    }
    cr_assert_eq(skick_envelope_check_version(h, 2, NULL, 0), 0, "too short to tell");
    h[2] = SKICK_ENVELOPE_VERSION;
    cr_assert_eq(skick_envelope_check_version(h, sizeof h, NULL, 0), 0, "our own version");
    h[0] = 0;
    h[2] = 9;
    cr_assert_eq(skick_envelope_check_version(h, sizeof h, NULL, 0), 0, "not an envelope");
    cr_assert_str_eq(skick_err_name(SKICK_EVERSION), "EVERSION");
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

/* ---- views (the reader itself: test_json.c) ----------------------------- */

Test(envelope, a_view_points_at_the_text_and_parses_on_demand)
{
    skick_envelope_t e = s_sample();
    uint8_t h[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(&e, h);
    size_t blen;
    const char *body = skick_envelope_body_text(&e, &blen);
    char why[100];
    skick_envelope_t d;
    cr_assert_eq(skick_envelope_decode_view(h, sizeof h, body, blen, &d, why, sizeof why), 0,
                 "%s", why);
    cr_assert_null(d.body);
    cr_assert_eq(d.raw, body, "a view, not a copy");
    cr_assert_eq(d.seq, e.seq);
    cr_assert_eq(d.to_id, e.to_id);
    size_t rlen;
    const char *raw = skick_envelope_body_text(&d, &rlen);
    cr_assert_eq(rlen, blen);
    cr_assert(memcmp(raw, body, blen) == 0, "forwarded byte for byte");
    cr_assert(json_object_equal(skick_envelope_body(&d), e.body));
    cr_assert_null(d.raw, "parsed once, the view goes");
    skick_envelope_clear(&d);
    cr_assert_null(d.body);
    cr_assert_eq(skick_envelope_decode_view(h, sizeof h, "{\"a\":", 5, &d, why, sizeof why), -1);
    cr_assert_eq(skick_envelope_decode_view(h, 51, "{}", 2, &d, why, sizeof why), -1);
    cr_assert_eq(skick_envelope_decode_view(h, sizeof h, NULL, 0, &d, why, sizeof why), 0);
    cr_assert_null(d.raw, "no body");
    json_object_put(e.body);
}
