/*  json_oracle - json-c as the reference reader for proto/skick_json.c

    Shared by tests/proto/test_json.c and tests/fuzz/fuzz_json.c (static
    functions: each includer gets its own copy). The reference is the code
    path the strict reader replaced: json-c's tokener in strict mode, plus
    the UTF-8, finiteness and depth rules json-c does not apply itself.
*/
#ifndef SKICK_JSON_ORACLE_H_INCLUDED
#define SKICK_JSON_ORACLE_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <string.h>

#include "skick_envelope.h"
#include "skick_json.h"

/*  The reference: json-c strict, UTF-8 checked, finite, depth 64, whole
    input. Returns 0 with *out (caller owns) or -1 with *out NULL. */
static int json_oracle_parse(const char *data, size_t len, json_object **out)
{
    *out = NULL;
    if (len > INT32_MAX || !skick_utf8_valid((const unsigned char *) data, len))
        return -1;
    json_tokener *tok = json_tokener_new_ex(SKICK_JSON_DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *v = json_tokener_parse_ex(tok, data, (int) len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    bool ok;
    if (err == json_tokener_continue) {
        v = json_tokener_parse_ex(tok, "", 1); /* a bare scalar needs a terminator */
        ok = json_tokener_get_error(tok) == json_tokener_success;
    } else {
        ok = err == json_tokener_success && json_tokener_get_parse_end(tok) == len;
    }
    json_tokener_free(tok);
    if (!ok || !skick_json_finite(v)) {
        json_object_put(v);
        return -1;
    }
    *out = v;
    return 0;
}

/*  json-c 0.16 turns some valid surrogate pairs into U+FFFD ("\ud837\ude00",
    U+1DE00, becomes EF BF BD): true when printed trees a (ours) and b
    (json-c's) differ only by such replacements of a's 4-byte sequences. */
static bool json_oracle_pair_bug(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *) a, *q = (const unsigned char *) b;
    bool seen = false;
    while (*p && *q) {
        if (*p == *q) {
            p++, q++;
            continue;
        }
        if (*p < 0xf0 || memcmp(q, "\xef\xbf\xbd", 3) != 0)
            return false;
        p += 4, q += 3, seen = true;
    }
    return seen && !*p && !*q;
}

/*  A tree as compact text ("null" for NULL), owned by v. */
static const char *json_oracle_text(json_object *v)
{
    return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "null";
}

#endif
