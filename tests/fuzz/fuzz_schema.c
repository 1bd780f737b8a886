/*  fuzz_schema - the schema compiler and validator (node/schema/)

    Input: one mode byte, then a schema document, then instances, separated
    by 0x1e (a byte no JSON text holds outside a string). Mode & 3:
      0  full JSON Schema (skick_schema_compile)
      1  shorthand for action "act" (skick_schema_compile_shorthand, and
         skick_schema_parse on the same text)
      2  shorthand without an action
      3  the regex translator: the "schema" is an ECMA-262 pattern, the
         instances strings matched against what it became
    An instance that is not strict JSON is validated as a JSON string of its
    bytes. What must hold:
      - compile succeeds, or fails with a one-line reason (no control bytes);
      - skick_schema_valid and skick_schema_check agree; check's reason is ""
        on success, "/pointer: ..." in printable ASCII on failure (client
        data is escaped), and the same on a second call (a compiled schema
        is immutable);
      - validation allocates nothing unless the schema uses pattern,
        patternProperties or propertyNames (the header's promise);
      - full schemas: {"not": S} accepts exactly what S refuses; {"allOf":
        [S]}, {"anyOf": [S]}, {"oneOf": [S]} and {"if": S, "then": true,
        "else": false} accept what S accepts;
      - shorthand: an accepted instance is an object with every required
        key, no key the document does not list, and "action": "act" when an
        action is pinned; skick_schema_parse agrees with compiling the
        document read by the strict reader, and accepts no text that is not
        one strict JSON document;
      - skick_schema_json_equal is reflexive and symmetric, and
        skick_schema_number_compare antisymmetric.
*/
#include <json-c/json.h>
#include <regex.h>
#include <string.h>

#include "fuzz_common.h"
#include "skick/schema.h"
#include "skick_json.h"

#define S_SEP 0x1e
#define S_ACTION "act"
#define S_MAX_INSTANCES 8

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fuzz_warm_up();
    return 0;
}

/*  A message must be one line: no byte below 0x20. */
static void s_one_line(const char *text, const char *what)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        FUZZ_ASSERT(*p >= 0x20, "%s holds a control byte: '%s'", what,
                    fuzz_show(text, strlen(text)));
}

static json_object *s_instance(const uint8_t *data, size_t len)
{
    json_object *v = NULL;
    if (skick_json_parse_strict((const char *) data, len, &v) == 0)
        return v;
    return json_object_new_string_len((const char *) data, (int) len);
}

/*  Validate v against s both ways; returns the verdict. */
static bool s_validate(const skick_schema_t *s, json_object *v, bool may_allocate)
{
    fuzz_mallocs_reset();
    bool valid = skick_schema_valid(s, v);
    FUZZ_ASSERT(may_allocate || fuzz_mallocs() == 0, "validation allocated %zu times",
                fuzz_mallocs());
    char why[160], again[160];
    int rc = skick_schema_check(s, v, why, sizeof why);
    FUZZ_ASSERT((rc == 0) == valid, "valid says %d, check says %d (%s)", valid, rc, why);
    if (valid) {
        FUZZ_ASSERT(why[0] == '\0', "a reason for a valid value: '%s'", why);
    } else {
        FUZZ_ASSERT(why[0] == '/', "a reason without a pointer: '%s'", fuzz_show(why, strlen(why)));
        for (const unsigned char *p = (const unsigned char *) why; *p; p++)
            FUZZ_ASSERT(*p >= 0x20 && *p < 0x7f, "unescaped byte in the reason '%s'",
                        fuzz_show(why, strlen(why)));
    }
    FUZZ_ASSERT(skick_schema_check(s, v, again, sizeof again) == rc && strcmp(why, again) == 0,
                "a second check differs: '%s' then '%s'", why, again);
    return valid;
}

static skick_schema_t *s_compile(json_object *doc, int mode)
{
    char err[200] = "";
    skick_schema_t *s = mode == 0 ? skick_schema_compile(doc, err, sizeof err)
                                  : skick_schema_compile_shorthand(doc, mode == 1 ? S_ACTION : NULL,
                                                                   err, sizeof err);
    FUZZ_ASSERT(s || err[0], "compile failed without a reason");
    s_one_line(err, "a compile error");
    return s;
}

/*  The wrappers of a full schema S, and whether each negates S's verdict. */
enum { W_NOT, W_ALLOF, W_ANYOF, W_ONEOF, W_IF, S_WRAPPERS };
static const char *const s_wrapper_names[S_WRAPPERS] = {"not", "allOf", "anyOf", "oneOf", "if"};

static json_object *s_wrapper(int w, json_object *doc)
{
    json_object *o = json_object_new_object(), *inner = json_object_get(doc);
    if (w != W_NOT && w != W_IF) {
        json_object *list = json_object_new_array();
        json_object_array_add(list, inner);
        inner = list;
    }
    json_object_object_add(o, s_wrapper_names[w], inner);
    if (w == W_IF) {
        json_object_object_add(o, "then", json_object_new_boolean(1));
        json_object_object_add(o, "else", json_object_new_boolean(0));
    }
    return o;
}

/*  Compile doc inside each wrapper (NULL where it does not compile: only the
    depth limit may refuse a wrapped schema whose inside compiled). */
static void s_wrap_all(json_object *doc, skick_schema_t *out[S_WRAPPERS])
{
    for (int w = 0; w < S_WRAPPERS; w++) {
        json_object *o = s_wrapper(w, doc);
        char err[200] = "";
        out[w] = skick_schema_compile(o, err, sizeof err);
        FUZZ_ASSERT(out[w] || strstr(err, "deeper"), "S compiles, {\"%s\": S} not: %s",
                    s_wrapper_names[w], err);
        json_object_put(o);
    }
}

/*  What a shorthand document promises about an accepted instance v. */
static void s_shorthand_promise(json_object *doc, json_object *v, bool action)
{
    if (json_object_object_get_ex(doc, "$schema", NULL))
        return; /* compiled as a full schema */
    FUZZ_ASSERT(json_object_is_type(v, json_type_object), "shorthand accepted a non-object");
    json_object_object_foreach(v, key, val)
    {
        (void) val;
        size_t n = strlen(key);
        char *opt = malloc(n + 2);
        memcpy(opt, key, n);
        memcpy(opt + n, "?", 2);
        bool listed = json_object_object_get_ex(doc, key, NULL) ||
                      json_object_object_get_ex(doc, opt, NULL) ||
                      (action && strcmp(key, "action") == 0);
        free(opt);
        FUZZ_ASSERT(listed, "shorthand accepted the unlisted key '%s'", fuzz_show(key, n));
    }
    json_object_object_foreach(doc, dkey, dval)
    {
        (void) dval;
        size_t n = strlen(dkey);
        if (n && dkey[n - 1] == '?')
            continue;
        FUZZ_ASSERT(json_object_object_get_ex(v, dkey, NULL), "required key '%s' missing",
                    fuzz_show(dkey, n));
    }
    if (action) {
        json_object *a = NULL;
        FUZZ_ASSERT(json_object_object_get_ex(v, "action", &a) &&
                        json_object_is_type(a, json_type_string) &&
                        strcmp(json_object_get_string(a), S_ACTION) == 0,
                    "accepted without \"action\": \"" S_ACTION "\"");
    }
}

/*  skick_schema_parse on the NUL-terminated text, against the document the
    strict reader made of it (NULL when it refused the text). */
static void s_parse_agrees(const char *text, json_object *doc, bool parsed, skick_schema_t *s,
                           int mode, json_object **inst, size_t ninst)
{
    char err[200] = "";
    skick_schema_t *p = skick_schema_parse(text, mode == 1 ? S_ACTION : NULL, err, sizeof err);
    s_one_line(err, "a parse error");
    if (parsed) {
        FUZZ_ASSERT(!p == !s, "skick_schema_parse %s what compile %s: %s",
                    p ? "accepts" : "refuses", s ? "accepts" : "refuses", err);
        for (size_t i = 0; p && i < ninst; i++)
            FUZZ_ASSERT(skick_schema_valid(p, inst[i]) == skick_schema_valid(s, inst[i]),
                        "the parsed and the compiled schema disagree on instance %zu", i);
    } else if (p) {
        /* our reader refused it: only what strict JSON allows and it does not
           (nesting past 64, long numbers, UTF-8 it checks) may compile */
        json_tokener *tok = json_tokener_new_ex(4 * SKICK_SCHEMA_MAX_DEPTH);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        size_t len = strlen(text);
        json_object *d = json_tokener_parse_ex(tok, text, (int) len);
        bool whole = json_tokener_get_error(tok) == json_tokener_success &&
                     json_tokener_get_parse_end(tok) == len;
        if (json_tokener_get_error(tok) == json_tokener_continue) {
            d = json_tokener_parse_ex(tok, "", 1);
            whole = json_tokener_get_error(tok) == json_tokener_success;
        }
        json_object_put(d);
        json_tokener_free(tok);
        FUZZ_ASSERT(whole, "skick_schema_parse accepted text that is not one JSON document: '%s'",
                    fuzz_show(text, len));
    }
    skick_schema_destroy(&p);
}

static void s_helpers(json_object *a, json_object *b)
{
    int ab = skick_schema_json_equal(a, b, SKICK_SCHEMA_MAX_DEPTH);
    int ba = skick_schema_json_equal(b, a, SKICK_SCHEMA_MAX_DEPTH);
    FUZZ_ASSERT(ab == ba, "json_equal is not symmetric (%d, %d)", ab, ba);
    int aa = skick_schema_json_equal(a, a, SKICK_SCHEMA_MAX_DEPTH);
    FUZZ_ASSERT(aa != 0, "json_equal(a, a) is 0");
    int c1 = skick_schema_number_compare(a, b), c2 = skick_schema_number_compare(b, a);
    FUZZ_ASSERT(c1 == 2 ? c2 == 2 : c1 == -c2, "number_compare %d then %d", c1, c2);
    if (json_object_is_type(a, json_type_string)) {
        size_t n = (size_t) json_object_get_string_len(a);
        FUZZ_ASSERT(skick_schema_utf8_length(json_object_get_string(a), n) <= n,
                    "more code points than bytes");
    }
}

static void s_regex(const uint8_t *pat, size_t plen, json_object **inst, size_t ninst)
{
    char *ecma = strndup((const char *) pat, plen);
    size_t cap = strlen(ecma) * 128 + 64; /* what the compiler gives it */
    char *posix = malloc(cap), err[200] = "";
    memset(posix, 'x', cap);
    int rc = skick_schema_regex_translate(ecma, posix, cap, err, sizeof err);
    if (rc != 0) {
        FUZZ_ASSERT(err[0], "translate failed without a reason");
        s_one_line(err, "a translate error");
    } else {
        FUZZ_ASSERT(memchr(posix, '\0', cap), "the translation is not terminated");
        regex_t re;
        if (regcomp(&re, posix, REG_EXTENDED | REG_NOSUB) == 0) {
            for (size_t i = 0; i < ninst; i++) {
                if (!json_object_is_type(inst[i], json_type_string))
                    continue;
                regmatch_t m = {0, json_object_get_string_len(inst[i])};
                regexec(&re, json_object_get_string(inst[i]), 1, &m, REG_STARTEND);
            }
            regfree(&re);
        }
    }
    /* and as a "pattern" keyword, which compiles the same text */
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "pattern", json_object_new_string(ecma));
    char cerr[200] = "";
    skick_schema_t *s = skick_schema_compile(doc, cerr, sizeof cerr);
    FUZZ_ASSERT(!s || rc == 0, "a pattern compiled that does not translate");
    for (size_t i = 0; s && i < ninst; i++)
        s_validate(s, inst[i], true);
    skick_schema_destroy(&s);
    json_object_put(doc);
    free(posix);
    free(ecma);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cursor_t c = fuzz_cursor(data, size);
    int mode = fuzz_byte(&c, 0) & 3;
    const uint8_t *piece;
    size_t len;
    if (!fuzz_next(&c, S_SEP, &piece, &len))
        return 0;
    const uint8_t *schema_text = piece;
    size_t schema_len = len;
    json_object *inst[S_MAX_INSTANCES];
    size_t ninst = 0;
    while (ninst < S_MAX_INSTANCES && fuzz_next(&c, S_SEP, &piece, &len))
        inst[ninst++] = s_instance(piece, len);
    if (mode == 3) {
        s_regex(schema_text, schema_len, inst, ninst);
    } else {
        json_object *doc = NULL;
        bool parsed = skick_json_parse_strict((const char *) schema_text, schema_len, &doc) == 0;
        skick_schema_t *s = parsed ? s_compile(doc, mode) : NULL;
        bool may_allocate = memmem(schema_text, schema_len, "attern", 6) ||
                            memmem(schema_text, schema_len, "propertyNames", 13) ||
                            memchr(schema_text, '\\', schema_len); /* escaped keyword names */
        skick_schema_t *wrapped[S_WRAPPERS] = {NULL};
        if (s && mode == 0)
            s_wrap_all(doc, wrapped);
        for (size_t i = 0; s && i < ninst; i++) {
            bool valid = s_validate(s, inst[i], may_allocate);
            if (valid && mode != 0)
                s_shorthand_promise(doc, inst[i], mode == 1);
            for (int w = 0; w < S_WRAPPERS; w++)
                if (wrapped[w])
                    FUZZ_ASSERT(s_validate(wrapped[w], inst[i], may_allocate) ==
                                    (w == W_NOT ? !valid : valid),
                                "the %s wrapper disagrees with S on instance %zu",
                                s_wrapper_names[w], i);
        }
        if (mode != 0 && !memchr(schema_text, '\0', schema_len)) {
            char *text = strndup((const char *) schema_text, schema_len);
            s_parse_agrees(text, doc, parsed, s, mode, inst, ninst);
            free(text);
        }
        for (size_t i = 0; i < ninst; i++)
            s_helpers(inst[i], doc);
        for (int w = 0; w < S_WRAPPERS; w++)
            skick_schema_destroy(&wrapped[w]);
        skick_schema_destroy(&s);
        json_object_put(doc);
    }
    for (size_t i = 0; i < ninst; i++)
        json_object_put(inst[i]);
    return 0;
}
