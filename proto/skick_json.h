/*  skick_json - the strict JSON reader for everything that crosses a
    process boundary (skick_json.c)

    Envelope bodies, websocket frames and skickctl arguments are read by
    this one parser, so the broker (which only checks) and the shards (which
    build objects) accept exactly the same texts. The rules are those of
    PROTOCOL.md "Envelopes"; see skick_json.c.

    Ownership: skick_json_parse_strict's result belongs to the caller.
    Thread-safe: no state but a "C" locale made once.
*/
#ifndef SKICK_JSON_H_INCLUDED
#define SKICK_JSON_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define SKICK_JSON_DEPTH 64       /* values nested at most this deep (top = 1) */
#define SKICK_JSON_NUMBER_MAX 500 /* characters in one number */

/*  Parse data[0..len) as exactly one strict JSON value: valid UTF-8, no
    NaN or Infinity or overflowing number, nesting within SKICK_JSON_DEPTH,
    nothing after the value but whitespace. Returns 0 with *out set (NULL
    for a JSON null; the caller owns it) or -1 with *out NULL (bad text, or
    out of memory). */
int skick_json_parse_strict(const char *data, size_t len, json_object **out);

/*  True when skick_json_parse_strict would accept data[0..len); checked in
    the same pass without building anything. */
bool skick_json_valid(const char *data, size_t len);

/*  True when s[0..n) is valid UTF-8 (RFC 3629: no overlongs, surrogates or
    code points past U+10FFFF). */
bool skick_utf8_valid(const unsigned char *s, size_t n);

#endif
