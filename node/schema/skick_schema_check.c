/*  skick_schema_check - validate JSON values against a compiled skick_schema  */

/*
 * The validator walks the tree built by skick_schema.c (types in skick_schema_internal.h)
 * against a json-c value. It only reads: the value through json-c getters, the tree as const,
 * and writes nothing but the caller's reason buffer, so it is allocation-free on success except
 * for regexec() (pattern, patternProperties) and propertyNames (one temporary string per key,
 * freed before returning), and safe for concurrent callers (glibc's regexec locks internally).
 *
 * Reasons are built at the first failure only, from a path of borrowed key pointers kept on the
 * stack; anyOf/oneOf/not/if/contains evaluate their subschemas quietly and report themselves.
 * Recursion is bounded by the schema depth (SKICK_SCHEMA_MAX_DEPTH, enforced at compile time);
 * deep equality (const, enum, uniqueItems) is bounded too (skick_schema_value.c).
 */

#include "skick_schema_internal.h"

#include <assert.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *key;            /* object key, or NULL for an array index */
    size_t index;               /* array index when key is NULL */
} s_seg_t;

typedef struct {
    char *why;                  /* reason buffer, NULL while validating quietly */
    size_t whylen;              /* size of why */
    bool written;               /* a reason was written */
    int depth;                  /* number of segments in path */
    s_seg_t path[SKICK_SCHEMA_MAX_DEPTH];   /* pointer to the value being validated */
} s_vctx_t;

static bool s_validate(s_vctx_t *vc, const s_node_t *n, json_object *v);

/* Start a reason: write "/path: " and return true when the caller should append the rest. */
static bool s_reason(s_vctx_t *vc, s_sb_t *sb)
{
    if (vc->why == NULL || vc->written)
        return false;
    vc->written = true;
    skick_schema_sb_init(sb, vc->why, vc->whylen, SKICK_SCHEMA_ECHO_MAX);
    if (vc->depth == 0)
        skick_schema_sb_fmt(sb, "/");
    for (int i = 0; i < vc->depth; i++) {
        if (vc->path[i].key == NULL) {
            skick_schema_sb_fmt(sb, "/%zu", vc->path[i].index);
        } else {
            skick_schema_sb_fmt(sb, "/");
            skick_schema_sb_echo(sb, vc->path[i].key, strlen(vc->path[i].key), true);
        }
    }
    skick_schema_sb_fmt(sb, ": ");
    return true;
}

/* Fail with a trusted reason text. Returns false. */
static bool s_fail(s_vctx_t *vc, const char *text)
{
    s_sb_t sb;
    if (s_reason(vc, &sb))
        skick_schema_sb_fmt(&sb, "%s", text);
    return false;
}

/* Fail with "what \"key\"" (key escaped and capped) followed by trusted tail. Returns false. */
static bool s_fail_key(s_vctx_t *vc, const char *what, const char *key, const char *tail)
{
    s_sb_t sb;
    if (s_reason(vc, &sb)) {
        skick_schema_sb_fmt(&sb, "%s \"", what);
        skick_schema_sb_echo(&sb, key, strlen(key), false);
        skick_schema_sb_fmt(&sb, "\"%s", tail);
    }
    return false;
}

/* Fail with a schema-supplied number in the message: "text N". Returns false. */
static bool s_fail_num(s_vctx_t *vc, const char *text, json_object *num)
{
    s_sb_t sb;
    if (!s_reason(vc, &sb))
        return false;
    if (json_object_is_type(num, json_type_double))
        skick_schema_sb_fmt(&sb, "%s %.15g", text, json_object_get_double(num));
    else if (json_object_get_int64(num) == INT64_MAX)
        skick_schema_sb_fmt(&sb, "%s %" PRIu64, text, json_object_get_uint64(num));
    else
        skick_schema_sb_fmt(&sb, "%s %" PRId64, text, json_object_get_int64(num));
    return false;
}

/* Fail with "text \"S\"" where S is a schema-supplied string (escaped, first 40 bytes). */
static bool s_fail_schema_text(s_vctx_t *vc, const char *text, const char *str, size_t len)
{
    s_sb_t sb;
    if (!s_reason(vc, &sb))
        return false;
    size_t budget = sb.budget;
    sb.budget = 40;
    skick_schema_sb_fmt(&sb, "%s \"", text);
    skick_schema_sb_echo(&sb, str, len, false);
    skick_schema_sb_fmt(&sb, "\"");
    sb.budget = budget;
    return false;
}

static bool s_fail_size(s_vctx_t *vc, const char *text, size_t limit, const char *unit)
{
    s_sb_t sb;
    if (s_reason(vc, &sb))
        skick_schema_sb_fmt(&sb, "%s %zu %s", text, limit, unit);
    return false;
}

/* Validate child value v (key or index below the current value) against n. */
static bool s_child(s_vctx_t *vc, const s_node_t *n, json_object *v, const char *key, size_t index)
{
    if (vc->depth >= SKICK_SCHEMA_MAX_DEPTH)
        return s_fail(vc, "value nested deeper than 64 levels");
    vc->path[vc->depth] = (s_seg_t) {key, index};
    vc->depth++;
    bool ok = s_validate(vc, n, v);
    vc->depth--;
    return ok;
}

/* Validate without recording a reason (for anyOf, oneOf, not, if, contains, ...). */
static bool s_quiet(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    char *why = vc->why;
    vc->why = NULL;
    bool ok = s_validate(vc, n, v);
    vc->why = why;
    return ok;
}

static bool s_type_ok(const s_node_t *n, json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return n->types & SKICK_SCHEMA_T_NULL;
    case json_type_boolean: return n->types & SKICK_SCHEMA_T_BOOLEAN;
    case json_type_int: return n->types & (SKICK_SCHEMA_T_INTEGER | SKICK_SCHEMA_T_NUMBER);
    case json_type_string: return n->types & SKICK_SCHEMA_T_STRING;
    case json_type_array: return n->types & SKICK_SCHEMA_T_ARRAY;
    case json_type_object: return n->types & SKICK_SCHEMA_T_OBJECT;
    case json_type_double: {
        double d = json_object_get_double(v);
        if (!isfinite(d))
            return false;
        return (n->types & SKICK_SCHEMA_T_NUMBER)
               || ((n->types & SKICK_SCHEMA_T_INTEGER) && !n->strict_int
                   && skick_schema_is_integral(d));
    }
    default: return false;
    }
}

static bool s_fail_type(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    s_sb_t sb;
    if (!s_reason(vc, &sb))
        return false;
    skick_schema_sb_fmt(&sb, "expected ");
    const char *sep = "";
    for (size_t i = 0; i < SKICK_SCHEMA_N_TYPES; i++) {
        if (n->types & (1u << i)) {
            skick_schema_sb_fmt(&sb, "%s%s", sep, skick_schema_type_names[i]);
            sep = " or ";
        }
    }
    json_type t = json_object_get_type(v);
    bool finite = t != json_type_double || isfinite(json_object_get_double(v));
    skick_schema_sb_fmt(&sb, ", got %s",
                        finite ? skick_schema_json_type_name(t) : "non-finite number");
    return false;
}

static bool s_multiple_ok(json_object *v, json_object *m)
{
    if (json_object_is_type(v, json_type_int) && json_object_is_type(m, json_type_int)) {
        int64_t mi = json_object_get_int64(m);     /* > 0, checked at compile time */
        int64_t vi = json_object_get_int64(v);
        uint64_t mu = mi == INT64_MAX ? json_object_get_uint64(m) : (uint64_t) mi;
        uint64_t vu = vi == INT64_MAX ? json_object_get_uint64(v)
                      : vi < 0 ? (uint64_t) 0 - (uint64_t) vi : (uint64_t) vi;
        return vu % mu == 0;
    }
    double q = json_object_get_double(v) / json_object_get_double(m);
    if (!isfinite(q))
        return false;
    double aq = q < 0 ? -q : q;
    double frac = aq - (aq < 9007199254740992.0 ? (double) (int64_t) aq : aq);
    if (frac > 0.5)
        frac = 1.0 - frac;
    return frac <= 8 * DBL_EPSILON * (aq > 1.0 ? aq : 1.0);
}

static bool s_check_number(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    if (json_object_is_type(v, json_type_double) && !isfinite(json_object_get_double(v)))
        return s_fail(vc, "non-finite number");
    int c;
    if (n->minimum && ((c = skick_schema_number_compare(v, n->minimum)) < 0 || c == 2))
        return s_fail_num(vc, "value less than minimum", n->minimum);
    if (n->maximum && (c = skick_schema_number_compare(v, n->maximum)) > 0)
        return s_fail_num(vc, "value greater than maximum", n->maximum);
    if (n->ex_min && ((c = skick_schema_number_compare(v, n->ex_min)) <= 0 || c == 2))
        return s_fail_num(vc, "value not greater than exclusiveMinimum", n->ex_min);
    if (n->ex_max && (c = skick_schema_number_compare(v, n->ex_max)) >= 0)
        return s_fail_num(vc, "value not less than exclusiveMaximum", n->ex_max);
    if (n->multiple_of && !s_multiple_ok(v, n->multiple_of))
        return s_fail_num(vc, "value not a multiple of", n->multiple_of);
    return true;
}

/* Unanchored search of the regex in the len bytes at s. */
static bool s_regex_search(const s_regex_t *rx, const char *s, size_t len)
{
#ifdef REG_STARTEND
    regmatch_t m[1] = {{0, (regoff_t) len}};
    return regexec(&rx->re, s, 1, m, REG_STARTEND) == 0;
#else
    (void) len;
    return regexec(&rx->re, s, 0, NULL, 0) == 0;
#endif
}

static bool s_check_string(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    const char *s = json_object_get_string(v);
    size_t len = (size_t) json_object_get_string_len(v);
    if (n->min_len > 0 || n->max_len < len) {
        size_t cps = skick_schema_utf8_length(s, len);
        if (cps < n->min_len)
            return s_fail_size(vc, "string shorter than", n->min_len, "characters");
        if (cps > n->max_len)
            return s_fail_size(vc, "string longer than", n->max_len, "characters");
    }
    if (n->pattern && !s_regex_search(n->pattern, s, len))
        return s_fail_schema_text(vc, "string does not match pattern", n->pattern->source,
                                  strlen(n->pattern->source));
    return true;
}

/* uniqueItems: pairwise deep comparison (O(n^2), allocation-free). */
static bool s_check_unique(s_vctx_t *vc, json_object *v, size_t count)
{
    for (size_t i = 1; i < count; i++) {
        json_object *a = json_object_array_get_idx(v, i);
        for (size_t j = 0; j < i; j++) {
            int eq = skick_schema_json_equal(a, json_object_array_get_idx(v, j),
                                             SKICK_SCHEMA_MAX_DEPTH);
            if (eq < 0)
                return s_fail(vc, "array items nested deeper than 64 levels");
            if (eq > 0) {
                s_sb_t sb;
                if (s_reason(vc, &sb))
                    skick_schema_sb_fmt(&sb, "array items %zu and %zu are equal", j, i);
                return false;
            }
        }
    }
    return true;
}

static bool s_check_items(s_vctx_t *vc, const s_node_t *n, json_object *v, size_t count)
{
    if (n->has_tuple) {
        for (size_t i = 0; i < count && i < n->tuple.n; i++) {
            if (!s_child(vc, n->tuple.v[i], json_object_array_get_idx(v, i), NULL, i))
                return false;
        }
        if (count <= n->tuple.n || n->additional_items == NULL)
            return true;
        if (n->additional_items->is_false)
            return s_fail_size(vc, "array has more than", n->tuple.n, "items");
        for (size_t i = n->tuple.n; i < count; i++) {
            if (!s_child(vc, n->additional_items, json_object_array_get_idx(v, i), NULL, i))
                return false;
        }
    } else if (n->items != NULL) {
        for (size_t i = 0; i < count; i++) {
            if (!s_child(vc, n->items, json_object_array_get_idx(v, i), NULL, i))
                return false;
        }
    }
    return true;
}

static bool s_check_array(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    size_t count = json_object_array_length(v);
    if (count < n->min_items)
        return s_fail_size(vc, "array has fewer than", n->min_items, "items");
    if (count > n->max_items)
        return s_fail_size(vc, "array has more than", n->max_items, "items");
    if (!s_check_items(vc, n, v, count))
        return false;
    if (n->contains != NULL) {
        size_t i = 0;
        while (i < count && !s_quiet(vc, n->contains, json_object_array_get_idx(v, i)))
            i++;
        if (i == count)
            return s_fail(vc, "no array item matches \"contains\"");
    }
    return !n->unique_items || s_check_unique(vc, v, count);
}

/* propertyNames: validate key as a JSON string (one temporary allocation). */
static bool s_check_name(s_vctx_t *vc, const s_node_t *n, const char *key)
{
    json_object *name = json_object_new_string(key);
    if (name == NULL)
        return s_fail(vc, "out of memory");
    bool ok = s_quiet(vc, n, name);
    json_object_put(name);
    return ok || s_fail_key(vc, "key", key, " does not match propertyNames");
}

/* Validate one key/value pair of an object; counts matched required properties. */
static bool s_check_member(s_vctx_t *vc, const s_node_t *n, const char *key, json_object *val,
                           size_t *req_seen)
{
    bool matched = false;
    s_prop_t probe = {(char *) key, NULL, false};
    const s_prop_t *p = n->n_props == 0 ? NULL
                        : bsearch(&probe, n->props, n->n_props, sizeof *n->props,
                                  skick_schema_prop_cmp);
    if (p != NULL) {
        matched = true;
        *req_seen += p->required;
        if (!s_child(vc, p->node, val, key, 0))
            return false;
    }
    for (size_t i = 0; i < n->n_pprops; i++) {
        if (s_regex_search(n->pprops[i].re, key, strlen(key))) {
            matched = true;
            if (!s_child(vc, n->pprops[i].node, val, key, 0))
                return false;
        }
    }
    if (!matched && n->additional_props != NULL) {
        if (n->additional_props->is_false)
            return s_fail_key(vc, "unexpected key", key, "");
        if (!s_child(vc, n->additional_props, val, key, 0))
            return false;
    }
    return n->property_names == NULL || s_check_name(vc, n->property_names, key);
}

static bool s_check_deps(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    for (size_t i = 0; i < n->n_deps; i++) {
        const s_dep_t *d = &n->deps[i];
        if (!json_object_object_get_ex(v, d->name, NULL))
            continue;
        for (size_t k = 0; k < d->n_keys; k++) {
            if (!json_object_object_get_ex(v, d->keys[k], NULL))
                return s_fail_key(vc, "missing key", d->keys[k], " (dependency)");
        }
        if (d->node != NULL && !s_validate(vc, d->node, v))
            return false;
    }
    return true;
}

static bool s_check_object(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    size_t count = (size_t) json_object_object_length(v);
    if (count < n->min_props)
        return s_fail_size(vc, "object has fewer than", n->min_props, "keys");
    if (count > n->max_props)
        return s_fail_size(vc, "object has more than", n->max_props, "keys");
    size_t req_seen = 0;
    bool walk = n->n_props || n->n_pprops || n->additional_props || n->property_names;
    for (struct lh_entry *e = json_object_get_object(v)->head; walk && e; e = e->next) {
        if (!s_check_member(vc, n, (const char *) lh_entry_k(e),
                            (json_object *) lh_entry_v(e), &req_seen))
            return false;
    }
    if (!walk || req_seen != n->n_required) {
        for (size_t i = 0; i < n->n_required; i++) {
            if (!json_object_object_get_ex(v, n->required[i], NULL))
                return s_fail_key(vc, "missing key", n->required[i], "");
        }
    }
    return s_check_deps(vc, n, v);
}

static bool s_check_value(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    if (n->has_const) {
        int eq = skick_schema_json_equal(v, n->const_v, SKICK_SCHEMA_MAX_DEPTH);
        if (eq < 0)
            return s_fail(vc, "value nested deeper than 64 levels");
        if (eq == 0 && !json_object_is_type(n->const_v, json_type_string))
            return s_fail(vc, "value does not equal const");
        if (eq == 0)
            return s_fail_schema_text(vc, "expected", json_object_get_string(n->const_v),
                                      (size_t) json_object_get_string_len(n->const_v));
    }
    if (n->enum_v != NULL) {
        size_t count = json_object_array_length(n->enum_v);
        for (size_t i = 0; i < count; i++) {
            json_object *candidate = json_object_array_get_idx(n->enum_v, i);
            if (skick_schema_json_equal(v, candidate, SKICK_SCHEMA_MAX_DEPTH) == 1)
                return true;
        }
        return s_fail(vc, "value not in enum");
    }
    return true;
}

static bool s_check_logic(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    for (size_t i = 0; i < n->all_of.n; i++) {
        if (!s_validate(vc, n->all_of.v[i], v))
            return false;
    }
    if (n->any_of.n > 0) {
        size_t i = 0;
        while (i < n->any_of.n && !s_quiet(vc, n->any_of.v[i], v))
            i++;
        if (i == n->any_of.n)
            return s_fail(vc, "value matches no subschema of anyOf");
    }
    if (n->one_of.n > 0) {
        size_t hits = 0;
        for (size_t i = 0; i < n->one_of.n && hits < 2; i++)
            hits += s_quiet(vc, n->one_of.v[i], v);
        if (hits != 1)
            return s_fail(vc, hits == 0 ? "value matches no subschema of oneOf"
                                        : "value matches more than one subschema of oneOf");
    }
    if (n->not_s != NULL && s_quiet(vc, n->not_s, v))
        return s_fail(vc, "value matches the \"not\" subschema");
    if (n->if_s != NULL) {
        const s_node_t *branch = s_quiet(vc, n->if_s, v) ? n->then_s : n->else_s;
        if (branch != NULL && !s_validate(vc, branch, v))
            return false;
    }
    return true;
}

static bool s_validate(s_vctx_t *vc, const s_node_t *n, json_object *v)
{
    if (n->is_false)
        return s_fail(vc, "value not allowed here (schema false)");
    if (n->types != 0 && !s_type_ok(n, v))
        return s_fail_type(vc, n, v);
    switch (json_object_get_type(v)) {
    case json_type_int:
    case json_type_double:
        if ((n->kinds & SKICK_SCHEMA_K_NUMBER) && !s_check_number(vc, n, v))
            return false;
        break;
    case json_type_string:
        if ((n->kinds & SKICK_SCHEMA_K_STRING) && !s_check_string(vc, n, v))
            return false;
        break;
    case json_type_array:
        if ((n->kinds & SKICK_SCHEMA_K_ARRAY) && !s_check_array(vc, n, v))
            return false;
        break;
    case json_type_object:
        if ((n->kinds & SKICK_SCHEMA_K_OBJECT) && !s_check_object(vc, n, v))
            return false;
        break;
    default:
        break;
    }
    if ((n->kinds & SKICK_SCHEMA_K_VALUE) && !s_check_value(vc, n, v))
        return false;
    return !(n->kinds & SKICK_SCHEMA_K_LOGIC) || s_check_logic(vc, n, v);
}

bool skick_schema_valid(const skick_schema_t *schema, json_object *value)
{
    assert(schema != NULL);
    s_vctx_t vc;
    vc.why = NULL;
    vc.whylen = 0;
    vc.written = false;
    vc.depth = 0;
    return s_validate(&vc, schema->root, value);
}

int skick_schema_check(const skick_schema_t *schema, json_object *value, char *why, size_t whylen)
{
    assert(schema != NULL);
    s_vctx_t vc;
    vc.why = whylen > 0 ? why : NULL;
    vc.whylen = whylen;
    vc.written = false;
    vc.depth = 0;
    if (vc.why != NULL)
        why[0] = '\0';
    if (s_validate(&vc, schema->root, value))
        return 0;
    if (vc.why != NULL && !vc.written)
        snprintf(why, whylen, "/: invalid");
    return -1;
}
