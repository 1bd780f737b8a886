/*  fuzz_json - the strict JSON reader (proto/skick_json.c) in both modes

    The input is one document. What must hold for every input:
      - skick_json_valid (check only: the broker) and skick_json_parse_strict
        (building: shards and clients) give the same verdict, and the check
        allocates nothing;
      - a refused document leaves *out NULL (and nothing leaks: LeakSanitizer);
      - an accepted one is accepted by the oracle (json-c's strict tokener
        plus the UTF-8, finiteness and depth rules: tests/proto/json_oracle.h)
        with the same tree, the same printed text and the same type (but
        for strings with surrogate escapes, which json-c 0.16 decodes
        wrongly: see s_high_surrogate);
      - a document the oracle accepts is accepted too, unless it is one
        json-c is known to be looser on (s_oracle_looser: raw control bytes
        in strings, numbers outside the RFC's grammar) or holds a number longer than
   SKICK_JSON_NUMBER_MAX characters (refused on purpose: "a number this long is not data");
      - the printed tree reads back, in both modes, to an equal tree that
        prints the same (what a shard sends, a peer can read).
*/
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"
#include "json_oracle.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fuzz_warm_up();
    return 0;
}

/*  True when t[0..n) is a number of RFC 8259's grammar:
    -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool s_rfc_number(const uint8_t *t, size_t n)
{
    size_t i = 0;
#define S_DIGITS()                                                                                 \
    do {                                                                                           \
        size_t from_ = i;                                                                          \
        while (i < n && t[i] >= '0' && t[i] <= '9')                                                \
            i++;                                                                                   \
        if (i == from_)                                                                            \
            return false;                                                                          \
    } while (0)
    if (i < n && t[i] == '-')
        i++;
    if (i < n && t[i] == '0')
        i++;
    else
        S_DIGITS();
    if (i < n && t[i] == '.') {
        i++;
        S_DIGITS();
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        S_DIGITS();
    }
#undef S_DIGITS
    return i == n;
}

/*  True when the number text (RFC grammar, at most SKICK_JSON_NUMBER_MAX
    characters) is beyond a double ("11e308"): the reader refuses it where
    it stands, while the oracle judges only the finished tree, from which a
    later duplicate key may have dropped it ({"a":11e308,"a":1}). */
static bool s_overflows(const uint8_t *t, size_t n)
{
    char buf[SKICK_JSON_NUMBER_MAX + 1];
    if (n > SKICK_JSON_NUMBER_MAX)
        return false;
    memcpy(buf, t, n);
    buf[n] = '\0';
    return isinf(strtod(buf, NULL));
}

/*  True when data holds what json-c's strict mode accepts and RFC 8259 (so
    the reader) does not, or what the reader refuses on purpose (a number beyond a double too): a raw
    control byte inside a string, a number outside the RFC's grammar ("01",
    "5.", "-"), or one longer than SKICK_JSON_NUMBER_MAX characters ("not
    data"). Numbers are the runs of number characters outside strings. */
static bool s_oracle_looser(const uint8_t *data, size_t size)
{
    bool in_string = false;
    size_t start = 0, run = 0;
    for (size_t i = 0; i <= size; i++) {
        uint8_t x = i < size ? data[i] : 0;
        bool number = !in_string && x && strchr("0123456789+-.eE", x);
        if (number) {
            start = run ? start : i;
            run++;
            continue;
        }
        if (run && (run > SKICK_JSON_NUMBER_MAX || !s_rfc_number(data + start, run) ||
                    s_overflows(data + start, run)))
            return true;
        run = 0;
        if (in_string && x < 0x20 && i < size)
            return true;
        /* json-c's literals NaN and Infinity: refused where they stand, while
           the oracle judges the finished tree (a later duplicate key may
           have dropped them) */
        if (!in_string && i + 3 <= size &&
            (strncasecmp((const char *) data + i, "nan", 3) == 0 ||
             strncasecmp((const char *) data + i, "inf", 3) == 0))
            return true;
        if (in_string && x == '\\')
            i++; /* the escaped byte cannot end the string */
        else if (x == '"')
            in_string = !in_string;
    }
    return false;
}

/*  True when data escapes a high surrogate (\\uD800-\\uDBFF): json-c 0.16
    decodes such strings wrongly in more ways than json_oracle_pair_bug
    covers ("\\ud836\\ude06\\udee0" becomes one U+91AE0), so their trees are
    held to the round trip and to UTF-8 (checked by reading the printed
    tree back) instead of to json-c. */
static bool s_high_surrogate(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 3 < size; i++)
        if (data[i] == '\\' && data[i + 1] == 'u' && (data[i + 2] | 0x20) == 'd' &&
            strchr("89abAB", data[i + 3]))
            return true;
    return false;
}

static void s_round_trip(json_object *ours, const char *show)
{
    size_t n = 4;
    const char *text = "null";
    if (ours)
        text = json_object_to_json_string_length(
            ours, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    json_object *again = (json_object *) 1;
    FUZZ_ASSERT(skick_json_valid(text, n), "printed '%s' of '%s' is refused", text, show);
    FUZZ_ASSERT(skick_json_parse_strict(text, n, &again) == 0, "printed tree of '%s' refused",
                show);
    FUZZ_ASSERT(json_object_equal(ours, again), "read back differently: '%s'", show);
    FUZZ_ASSERT(strcmp(json_oracle_text(ours), json_oracle_text(again)) == 0,
                "printed differently after a round trip: '%s'", show);
    json_object_put(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    fuzz_mallocs_reset();
    bool valid = skick_json_valid(text, size);
    FUZZ_ASSERT(fuzz_mallocs() == 0, "the check allocated %zu times", fuzz_mallocs());
    json_object *ours = (json_object *) 1, *ref = NULL;
    int rc = skick_json_parse_strict(text, size, &ours);
    const char *show = fuzz_show(data, size);
    FUZZ_ASSERT(valid == (rc == 0), "check %s, parse %s: '%s'", valid ? "accepts" : "refuses",
                rc == 0 ? "accepts" : "refuses", show);
    int rrc = json_oracle_parse(text, size, &ref);
    if (rc != 0) {
        FUZZ_ASSERT(ours == NULL, "a refused document left a tree");
        FUZZ_ASSERT(rrc != 0 || s_oracle_looser(data, size), "json-c accepts, we refuse: '%s'",
                    show);
        json_object_put(ref);
        return 0;
    }
    FUZZ_ASSERT(rrc == 0, "accepted what json-c refuses: '%s'", show);
    const char *a = json_oracle_text(ours), *b = json_oracle_text(ref);
    if (!s_high_surrogate(data, size) && !json_oracle_pair_bug(a, b)) {
        FUZZ_ASSERT(json_object_equal(ours, ref), "different trees for '%s'", show);
        FUZZ_ASSERT(strcmp(a, b) == 0, "printed '%s', json-c '%s'", a, b);
    }
    FUZZ_ASSERT(json_object_get_type(ours) == json_object_get_type(ref), "types differ: '%s'",
                show);
    s_round_trip(ours, show);
    json_object_put(ours);
    json_object_put(ref);
    return 0;
}
