/*  skick_schema_value - JSON value helpers: exact numbers, equality, UTF-8 length  */

/*
 * What the compiler and the validator need to know about json-c values, with no schema tree:
 * whether a double is integral, exact comparison of int64/uint64/double numbers (so 2^63 and
 * 9223372036854775807 compare right), JSON Schema equality (1 == 1.0, objects regardless of
 * key order, bounded depth) and the code point length of UTF-8 text. Public helpers are
 * declared in skick/schema.h, skick_schema_is_integral in skick_schema_internal.h.
 * libm is not needed (isfinite and isnan are macros).
 *
 * Ownership: values are borrowed; nothing is allocated.
 * Thread-safety: pure functions.
 */

#include "skick_schema_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

bool skick_schema_is_integral(double d)
{
    const double two53 = 9007199254740992.0;
    if (!isfinite(d))
        return false;
    if (d >= two53 || d <= -two53)
        return true;
    return d == (double) (int64_t) d;
}

/* Classify a JSON number: 0 int64 (*i), 1 uint64 above INT64_MAX (*u), 2 double (*d). */
static int s_num_class(json_object *v, int64_t *i, uint64_t *u, double *d)
{
    if (json_object_get_type(v) == json_type_double) {
        *d = json_object_get_double(v);
        return 2;
    }
    *i = json_object_get_int64(v);
    if (*i == INT64_MAX) {
        *u = json_object_get_uint64(v);
        if (*u > (uint64_t) INT64_MAX)
            return 1;
    }
    return 0;
}

/* Compare an integer (int64 i, or uint64 u when is_u) with double d: -1, 0, 1, or 2 for NaN. */
static int s_int_vs_double(int64_t i, uint64_t u, bool is_u, double d)
{
    const double two63 = 9223372036854775808.0;
    if (isnan(d))
        return 2;
    if (d >= 2.0 * two63)
        return -1;
    if (d < -two63)
        return 1;
    double t = d >= -9007199254740992.0 && d <= 9007199254740992.0 ? (double) (int64_t) d : d;
    double frac = d - t;
    if (is_u || t >= two63) {
        if (!is_u)
            return -1;
        if (t < two63)
            return 1;
        uint64_t tu = (uint64_t) t;
        return u < tu ? -1 : u > tu ? 1 : (frac > 0 ? -1 : 0);
    }
    int64_t ti = (int64_t) t;
    if (i != ti)
        return i < ti ? -1 : 1;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

int skick_schema_number_compare(json_object *a, json_object *b)
{
    int64_t ia = 0, ib = 0;
    uint64_t ua = 0, ub = 0;
    double da = 0, db = 0;
    json_type ta = json_object_get_type(a), tb = json_object_get_type(b);
    if ((ta != json_type_int && ta != json_type_double)
        || (tb != json_type_int && tb != json_type_double))
        return 2;
    int ca = s_num_class(a, &ia, &ua, &da);
    int cb = s_num_class(b, &ib, &ub, &db);
    if (ca == 2 && cb == 2)
        return isnan(da) || isnan(db) ? 2 : da < db ? -1 : da > db ? 1 : 0;
    if (ca == 2) {
        int r = s_int_vs_double(ib, ub, cb == 1, da);
        return r == 2 ? 2 : -r;
    }
    if (cb == 2)
        return s_int_vs_double(ia, ua, ca == 1, db);
    if (ca != cb)
        return ca == 1 ? 1 : -1;
    if (ca == 1)
        return ua < ub ? -1 : ua > ub ? 1 : 0;
    return ia < ib ? -1 : ia > ib ? 1 : 0;
}

/* Deep equality of two objects; depth_left bounds the recursion. */
static int s_object_equal(json_object *a, json_object *b, int depth_left)
{
    if (json_object_object_length(a) != json_object_object_length(b))
        return 0;
    for (struct lh_entry *e = json_object_get_object(a)->head; e != NULL; e = e->next) {
        json_object *bv = NULL;
        if (!json_object_object_get_ex(b, (const char *) lh_entry_k(e), &bv))
            return 0;
        int r = skick_schema_json_equal((json_object *) lh_entry_v(e), bv, depth_left - 1);
        if (r != 1)
            return r;
    }
    return 1;
}

int skick_schema_json_equal(json_object *a, json_object *b, int max_depth)
{
    json_type ta = json_object_get_type(a), tb = json_object_get_type(b);
    bool na = ta == json_type_int || ta == json_type_double;
    bool nb = tb == json_type_int || tb == json_type_double;
    if (na && nb)
        return skick_schema_number_compare(a, b) == 0;
    if (ta != tb)
        return 0;
    switch (ta) {
    case json_type_null:
        return 1;
    case json_type_boolean:
        return json_object_get_boolean(a) == json_object_get_boolean(b);
    case json_type_string:
        return json_object_get_string_len(a) == json_object_get_string_len(b)
               && memcmp(json_object_get_string(a), json_object_get_string(b),
                         (size_t) json_object_get_string_len(a)) == 0;
    case json_type_array: {
        size_t n = json_object_array_length(a);
        if (n != json_object_array_length(b))
            return 0;
        if (n > 0 && max_depth <= 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            int r = skick_schema_json_equal(json_object_array_get_idx(a, i),
                                            json_object_array_get_idx(b, i), max_depth - 1);
            if (r != 1)
                return r;
        }
        return 1;
    }
    case json_type_object:
        if (json_object_object_length(a) > 0 && max_depth <= 0)
            return -1;
        return s_object_equal(a, b, max_depth);
    default:
        return 0;
    }
}

size_t skick_schema_utf8_length(const char *s, size_t len)
{
    size_t n = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char) s[i++];
        int need = c < 0xC0 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : c < 0xF8 ? 3 : 0;
        while (need > 0 && i < len && ((unsigned char) s[i] & 0xC0) == 0x80) {
            i++;
            need--;
        }
        n++;
    }
    return n;
}
