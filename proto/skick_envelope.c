/*  skick_envelope - encode and decode the frames of one envelope

    Header layout (big-endian, 52 bytes; PROTOCOL.md "Envelopes"):

        0  u16 signature 0xAA51     2  u8 version     3  u8 kind
        4  u64 seq                 12  u32 flags     16  u32 gen
       20  u64 from shard          28  u64 from actor
       36  u64 to shard            44  u64 to actor

    The body frame is one strict JSON value (UTF-8, no NaN/Infinity, depth
    at most 64) or empty. Nothing read from the wire is trusted: every size
    is checked against the frame it came in, before it is used.
*/
#include "skick_envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skick/err.h"

static void s_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t) (v >> (24 - 8 * i));
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (v >> (56 - 8 * i));
}

static uint32_t s_get32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static uint64_t s_get64(const uint8_t *p)
{
    return ((uint64_t) s_get32(p) << 32) | s_get32(p + 4);
}

void skick_envelope_encode_header(const skick_envelope_t *e,
                                  uint8_t out[SKICK_ENVELOPE_HEADER])
{
    s_put16(out, SKICK_ENVELOPE_SIGNATURE);
    out[2] = SKICK_ENVELOPE_VERSION;
    out[3] = e->kind;
    s_put64(out + 4, e->seq);
    s_put32(out + 12, e->flags);
    s_put32(out + 16, e->gen);
    s_put64(out + 20, e->from_shard);
    s_put64(out + 28, e->from_id);
    s_put64(out + 36, e->to_shard);
    s_put64(out + 44, e->to_id);
}

const char *skick_envelope_body_text(const skick_envelope_t *e, size_t *len)
{
    if (!e->body && e->raw) {
        *len = e->raw_len;
        return e->raw;
    }
    if (!e->body) {
        *len = 0;
        return "";
    }
    return json_object_to_json_string_length(
        e->body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

bool skick_json_finite(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_double: {
        double d = json_object_get_double(v);
        return d - d == 0.0;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!skick_json_finite(json_object_array_get_idx(v, i)))
                return false;
        return true;
    case json_type_object: {
        json_object_object_foreach(v, key, val)
        {
            (void) key;
            if (!skick_json_finite(val))
                return false;
        }
        return true;
    }
    default:
        return true;
    }
}

static int s_fail(char *why, size_t whylen, const char *text)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", text);
    skick_set_errno(SKICK_EPROTO);
    return -1;
}

int skick_envelope_check_version(const void *header, size_t header_len, char *why,
                                 size_t whylen)
{
    const uint8_t *h = header;
    /* Only these three bytes are the same in every version: whatever the
       rest of a foreign header looks like, it is named as what it is. */
    if (!h || header_len < 3 || ((uint16_t) (h[0] << 8) | h[1]) != SKICK_ENVELOPE_SIGNATURE ||
        h[2] == SKICK_ENVELOPE_VERSION)
        return 0;
    if (why && whylen)
        snprintf(why, whylen, "unsupported envelope version %u (this side speaks %d)", h[2],
                 SKICK_ENVELOPE_VERSION);
    skick_set_errno(SKICK_EVERSION);
    return -1;
}

/*  Check and decode the header into *e (no body yet). */
static int s_header(const void *header, size_t header_len, const void *body, size_t body_len,
                    skick_envelope_t *e, char *why, size_t whylen)
{
    const uint8_t *h = header;
    if (skick_envelope_check_version(header, header_len, why, whylen) != 0)
        return -1;
    if (!h || header_len != SKICK_ENVELOPE_HEADER)
        return s_fail(why, whylen, "header frame has the wrong size");
    if (((uint16_t) (h[0] << 8) | h[1]) != SKICK_ENVELOPE_SIGNATURE)
        return s_fail(why, whylen, "not a Skick envelope (bad signature)");
    if (h[3] == 0 || h[3] >= SKICK_KIND_COUNT_)
        return s_fail(why, whylen, "unknown message kind");
    if (body_len > SKICK_ENVELOPE_MAX_BODY || (body_len && !body))
        return s_fail(why, whylen, "body frame too large");
    *e = (skick_envelope_t){
        .kind = h[3],
        .seq = s_get64(h + 4),
        .flags = s_get32(h + 12),
        .gen = s_get32(h + 16),
        .from_shard = s_get64(h + 20),
        .from_id = s_get64(h + 28),
        .to_shard = s_get64(h + 36),
        .to_id = s_get64(h + 44),
    };
    if (e->seq == 0)
        return s_fail(why, whylen, "sequence number 0");
    if ((e->from_shard == 0) != (e->from_id == 0) || (e->to_shard == 0) != (e->to_id == 0))
        return s_fail(why, whylen, "half an address");
    return 0;
}

skick_envelope_t *skick_envelope_decode(const void *header, size_t header_len,
                                        const void *body, size_t body_len, char *why,
                                        size_t whylen)
{
    skick_envelope_t e;
    if (s_header(header, header_len, body, body_len, &e, why, whylen) != 0)
        return NULL;
    if (body_len && skick_json_parse_strict(body, body_len, &e.body) != 0) {
        s_fail(why, whylen, "body is not one strict JSON value");
        return NULL;
    }
    skick_envelope_t *out = malloc(sizeof *out);
    if (!out) {
        json_object_put(e.body);
        skick_set_errno(SKICK_ENOMEM);
        return NULL;
    }
    *out = e;
    return out;
}

int skick_envelope_decode_view(const void *header, size_t header_len, const void *body,
                               size_t body_len, skick_envelope_t *out, char *why, size_t whylen)
{
    if (s_header(header, header_len, body, body_len, out, why, whylen) != 0)
        return -1;
    if (body_len && !skick_json_valid(body, body_len))
        return s_fail(why, whylen, "body is not one strict JSON value");
    out->raw = body_len ? body : NULL;
    out->raw_len = body_len;
    return 0;
}

json_object *skick_envelope_body(skick_envelope_t *e)
{
    if (!e->body && e->raw) {
        /* validated when decoded: parsing cannot fail but for memory */
        if (skick_json_parse_strict(e->raw, e->raw_len, &e->body) == 0) {
            e->raw = NULL;
            e->raw_len = 0;
        }
    }
    return e->body;
}

void skick_envelope_clear(skick_envelope_t *e)
{
    json_object_put(e->body);
    e->body = NULL;
    e->raw = NULL;
    e->raw_len = 0;
}

void skick_envelope_destroy(skick_envelope_t **e_p)
{
    skick_envelope_t *e = e_p ? *e_p : NULL;
    if (!e)
        return;
    *e_p = NULL;
    json_object_put(e->body);
    free(e);
}

const char *skick_kind_name(int kind)
{
    switch (kind) {
#define SKICK_KIND_NAME_(n, name, text)                                             \
    case n:                                                                         \
        return #name;
        SKICK_KIND_MAP(SKICK_KIND_NAME_)
#undef SKICK_KIND_NAME_
    default:
        return "UNKNOWN";
    }
}
