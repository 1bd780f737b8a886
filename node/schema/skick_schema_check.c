/*  skick_schema_check - validate JSON values against a compiled skick_schema  */

/*
 * The validator walks the tree built by skick_schema.c (types in the private section of
 * skick/schema.h) against a json-c value. It only reads: the value through json-c getters, the
 * tree as const, and writes nothing but the caller's reason buffer, so it is allocation-free on
 * success except for regexec() (pattern, patternProperties) and propertyNames (one temporary
 * string per key), and safe for concurrent callers (glibc's regexec locks internally).
 *
 * Reasons are built at the first failure only, from a path of borrowed key pointers kept on the
 * stack; anyOf/oneOf/not/if/contains evaluate their subschemas quietly and report themselves.
 * Recursion is bounded by the schema depth (SKICK_SCHEMA_MAX_DEPTH, enforced at compile time);
 * deep equality (const, enum, uniqueItems) is bounded too.
 *
 * Also here, needing no tree: ECMA-262 -> POSIX regex translation, exact number comparison,
 * JSON equality and UTF-8 length (all declared in skick/schema.h). libm is not needed.
 */

#include "skick_schema_internal.h"

#include <assert.h>
#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------------------------------------ */
/*  Shared helpers (declared in the private section of skick/schema.h)                        */

void skick_schema_sb_init(s_sb_t *sb, char *buf, size_t cap, size_t budget)
{
    *sb = (s_sb_t) {buf, cap, 0, budget};
    if (cap > 0)
        buf[0] = '\0';
}

void skick_schema_sb_fmt(s_sb_t *sb, const char *fmt, ...)
{
    if (sb->len + 1 >= sb->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb->len = sb->len + (size_t) n < sb->cap ? sb->len + (size_t) n : sb->cap - 1;
}

void skick_schema_sb_echo(s_sb_t *sb, const char *data, size_t n, bool pointer)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) data[i];
        if (sb->budget == 0) {
            skick_schema_sb_fmt(sb, "...");
            return;
        }
        sb->budget--;
        if (pointer && (c == '~' || c == '/'))
            skick_schema_sb_fmt(sb, "~%c", c == '~' ? '0' : '1');
        else if (c == '"' || c == '\\')
            skick_schema_sb_fmt(sb, "\\%c", c);
        else if (c >= 0x20 && c < 0x7F)
            skick_schema_sb_fmt(sb, "%c", c);
        else
            skick_schema_sb_fmt(sb, "\\x%02x", c);
    }
}

const char *const skick_schema_type_names[SKICK_SCHEMA_N_TYPES] = {
    "null", "boolean", "integer", "number", "string", "array", "object",
};

const char *skick_schema_json_type_name(json_type t)
{
    static const char *const names[] = {
        [json_type_null] = "null", [json_type_boolean] = "boolean",
        [json_type_double] = "number", [json_type_int] = "integer",
        [json_type_object] = "object", [json_type_array] = "array",
        [json_type_string] = "string",
    };
    return (size_t) t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

int skick_schema_prop_cmp(const void *a, const void *b)
{
    return strcmp(((const s_prop_t *) a)->name, ((const s_prop_t *) b)->name);
}

bool skick_schema_is_integral(double d)
{
    const double two53 = 9007199254740992.0;
    if (!isfinite(d))
        return false;
    if (d >= two53 || d <= -two53)
        return true;
    return d == (double) (int64_t) d;
}

/* ------------------------------------------------------------------------------------------ */
/*  Validation                                                                                */

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

/* ------------------------------------------------------------------------------------------ */
/*  ECMA-262 -> POSIX regex translation                                                       */

/* '.' for a single-byte locale: one UTF-8 encoded code point other than \n and \r */
#define S_DOT_BYTES "([^\n\r\x80-\xff]|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf][\x80-\xbf]" \
                    "|[\xf0-\xf4][\x80-\xbf][\x80-\xbf][\x80-\xbf])"
/* '.' for a multibyte locale, where regcomp already works on characters */
#define S_DOT_CHARS "[^\n\r]"

typedef struct {
    const char *src;            /* ECMA source being translated */
    size_t pos;                 /* read offset into src */
    char *out;                  /* output buffer */
    size_t cap;                 /* output capacity, including the NUL */
    size_t len;                 /* bytes written so far */
    char *err;                  /* caller's error buffer (may be NULL) */
    size_t errlen;              /* size of err */
    bool failed;                /* an error was recorded */
    bool after_quant;           /* previous token was a quantifier */
} s_rx_t;

typedef struct {
    bool rbracket;              /* set holds ']' */
    bool lbracket;              /* set holds '[' */
    bool caret;                 /* set holds '^' */
    bool dash;                  /* set holds '-' */
    char body[512];             /* other members, POSIX bracket syntax */
    size_t len;                 /* bytes used in body */
} s_set_t;

/* Record the first translation error ("... at offset N") and return -1. */
static int s_rx_fail(s_rx_t *rx, const char *what)
{
    if (!rx->failed && rx->err != NULL && rx->errlen > 0)
        snprintf(rx->err, rx->errlen, "%s at offset %zu", what, rx->pos);
    rx->failed = true;
    return -1;
}

/* Append text to the output; fails when it does not fit. */
static int s_rx_put(s_rx_t *rx, const char *text, size_t n)
{
    if (rx->len + n + 1 > rx->cap)
        return s_rx_fail(rx, "regex too long after translation");
    memcpy(rx->out + rx->len, text, n);
    rx->len += n;
    rx->out[rx->len] = '\0';
    return 0;
}

static int s_rx_puts(s_rx_t *rx, const char *text)
{
    return s_rx_put(rx, text, strlen(text));
}

static int s_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Read n hex digits at src[at]; return the value or -1. */
static long s_hex(const char *src, size_t at, int n)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        int h = s_hexval((unsigned char) src[at + (size_t) i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Encode code point cp as UTF-8 into buf (>= 4 bytes); return the length. */
static size_t s_utf8_encode(long cp, char *buf)
{
    if (cp < 0x80) {
        buf[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char) (0xC0 | (cp >> 6));
        buf[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char) (0xE0 | (cp >> 12));
        buf[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char) (0xF0 | (cp >> 18));
    buf[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decode the escape at rx->pos (pointing after the backslash) that denotes one literal code
 * point: \n \r \t \f \v, \xHH, \uHHHH (with surrogate pairs), \b when in_set (backspace), or
 * an escaped punctuation character. Advances rx->pos. Returns the code point, -1 when the
 * escape is not a literal (class, assertion, ...), -2 on a malformed escape.
 */
static long s_rx_escape_literal(s_rx_t *rx, bool in_set)
{
    static const char letters[] = "nrtfv";
    static const char controls[] = "\n\r\t\f\v";
    const char *s = rx->src;
    unsigned char c = (unsigned char) s[rx->pos];
    const char *hit = c != '\0' ? strchr(letters, c) : NULL;
    long cp;
    if (hit != NULL || (c == 'b' && in_set)) {
        rx->pos++;
        return hit != NULL ? controls[hit - letters] : '\b';
    }
    switch (c) {
    case 'x':
        cp = s_hex(s, rx->pos + 1, 2);
        if (cp < 0)
            return -2;
        rx->pos += 3;
        return cp;
    case 'u':
        cp = s_hex(s, rx->pos + 1, 4);
        if (cp < 0)
            return -2;
        rx->pos += 5;
        if (cp >= 0xD800 && cp <= 0xDBFF && s[rx->pos] == '\\' && s[rx->pos + 1] == 'u') {
            long lo = s_hex(s, rx->pos + 2, 4);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                rx->pos += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
        }
        return (cp >= 0xD800 && cp <= 0xDFFF) ? -2 : cp;
    default:
        if (c == '\0' || isalnum(c) || c >= 0x80)
            return -1;
        rx->pos++;
        return c;
    }
}

/* Emit a literal code point outside brackets (escaped, or grouped when multi-byte). */
static int s_rx_emit_literal(s_rx_t *rx, long cp)
{
    char buf[8];
    if (cp == 0)
        return s_rx_fail(rx, "NUL character in regex not supported");
    if (cp < 0x80) {
        bool special = strchr(".[]()*+?{}|^$\\", (int) cp) != NULL;
        buf[0] = '\\';
        buf[1] = (char) cp;
        return special ? s_rx_put(rx, buf, 2) : s_rx_put(rx, buf + 1, 1);
    }
    size_t n = s_utf8_encode(cp, buf + 1);
    buf[0] = '(';
    buf[n + 1] = ')';
    return s_rx_put(rx, buf, n + 2);
}

/* Add text to a bracket set body. */
static int s_set_add(s_rx_t *rx, s_set_t *set, const char *text, size_t n)
{
    if (set->len + n >= sizeof set->body)
        return s_rx_fail(rx, "character class too long");
    memcpy(set->body + set->len, text, n);
    set->len += n;
    return 0;
}

/* Add one code point (or range endpoint) to the set body, quoting bracket-special characters. */
static int s_set_add_char(s_rx_t *rx, s_set_t *set, long cp, bool endpoint)
{
    char c = (char) cp;
    if (cp == 0 || cp >= 0x80)
        return s_rx_fail(rx, "non-ASCII or NUL character in a character class not supported");
    if (!endpoint && (c == ']' || c == '[' || c == '^' || c == '-')) {
        set->rbracket |= c == ']';
        set->lbracket |= c == '[';
        set->caret |= c == '^';
        set->dash |= c == '-';
        return 0;
    }
    if (endpoint && (c == ']' || c == '[' || c == '^' || c == '-')) {
        char sym[] = {'[', '.', c, '.', ']'};
        return s_set_add(rx, set, sym, sizeof sym);
    }
    return s_set_add(rx, set, &c, 1);
}

/*
 * Read one class atom at rx->pos inside brackets. Returns a code point >= 0, -1 when the atom
 * was a class escape already added to set (\d \w \s), or -2 on error.
 */
static long s_set_atom(s_rx_t *rx, s_set_t *set)
{
    unsigned char c = (unsigned char) rx->src[rx->pos];
    if (c != '\\') {
        if (c >= 0x80)
            return s_rx_fail(rx, "non-ASCII character in a character class not supported") - 1;
        rx->pos++;
        return c;
    }
    rx->pos++;
    c = (unsigned char) rx->src[rx->pos];
    const char *cls = c == 'd' ? "0-9" : c == 'w' ? "A-Za-z0-9_" : c == 's' ? "[:space:]" : NULL;
    if (cls != NULL) {
        rx->pos++;
        return s_set_add(rx, set, cls, strlen(cls)) < 0 ? -2 : -1;
    }
    if (c == 'D' || c == 'W' || c == 'S')
        return s_rx_fail(rx, "negated class escape inside a character class not supported") - 1;
    long cp = s_rx_escape_literal(rx, true);
    if (cp < 0)
        return s_rx_fail(rx, "unsupported escape in character class") - 1;
    return cp;
}

/* Write the collected set as a POSIX bracket expression. */
static int s_set_emit(s_rx_t *rx, const s_set_t *set, bool negated)
{
    if (!negated && !set->rbracket && set->len == 0 && !set->lbracket && !set->dash)
        return set->caret ? s_rx_puts(rx, "\\^") : s_rx_fail(rx, "empty character class");
    if (s_rx_puts(rx, negated ? "[^" : "[") < 0 || (set->rbracket && s_rx_puts(rx, "]") < 0))
        return -1;
    if (s_rx_put(rx, set->body, set->len) < 0)
        return -1;
    if (set->lbracket && s_rx_puts(rx, "[") < 0)
        return -1;
    /* '^' may not come first: when it would (then '-' is in the set, see above), put '-' first */
    bool caret_first = !negated && !set->rbracket && set->len == 0 && !set->lbracket;
    if (caret_first && set->caret)
        return s_rx_puts(rx, "-^]");
    if (set->caret && s_rx_puts(rx, "^") < 0)
        return -1;
    if (set->dash && s_rx_puts(rx, "-") < 0)
        return -1;
    return s_rx_puts(rx, "]");
}

/* Translate the bracket expression starting at rx->pos (just after '['). */
static int s_rx_bracket(s_rx_t *rx)
{
    s_set_t set;
    memset(&set, 0, sizeof set);
    bool negated = rx->src[rx->pos] == '^';
    if (negated)
        rx->pos++;
    if (rx->src[rx->pos] == ']')
        return s_rx_fail(rx, negated ? "[^] not supported" : "empty character class");
    while (rx->src[rx->pos] != ']') {
        if (rx->src[rx->pos] == '\0')
            return s_rx_fail(rx, "unterminated character class");
        long lo = s_set_atom(rx, &set);
        if (lo == -2)
            return -1;
        bool range = lo >= 0 && rx->src[rx->pos] == '-' && rx->src[rx->pos + 1] != ']'
                     && rx->src[rx->pos + 1] != '\0';
        if (!range) {
            if (lo >= 0 && s_set_add_char(rx, &set, lo, false) < 0)
                return -1;
            continue;
        }
        rx->pos++;
        long hi = s_set_atom(rx, &set);
        if (hi == -2)
            return -1;
        if (hi == -1)
            return s_rx_fail(rx, "class escape as range end not supported");
        if (hi < lo)
            return s_rx_fail(rx, "character class range out of order");
        if (s_set_add_char(rx, &set, lo, true) < 0 || s_set_add(rx, &set, "-", 1) < 0
            || s_set_add_char(rx, &set, hi, true) < 0)
            return -1;
    }
    rx->pos++;
    return s_set_emit(rx, &set, negated);
}

/* Translate the escape at rx->pos (just after the backslash) outside brackets. */
static int s_rx_escape(s_rx_t *rx)
{
    static const char *const classes[][2] = {
        {"d", "[0-9]"}, {"D", "[^0-9]"}, {"w", "[A-Za-z0-9_]"}, {"W", "[^A-Za-z0-9_]"},
        {"s", "[[:space:]]"}, {"S", "[^[:space:]]"},
    };
    char c = rx->src[rx->pos];
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        if (c == classes[i][0][0]) {
            rx->pos++;
            return s_rx_puts(rx, classes[i][1]);
        }
    }
    if (c == 'b' || c == 'B')
        return s_rx_fail(rx, "word boundary \\b/\\B not supported");
    if (c >= '0' && c <= '9')
        return s_rx_fail(rx, "backreference or \\0 not supported");
    if (c == '\0')
        return s_rx_fail(rx, "trailing backslash");
    long cp = s_rx_escape_literal(rx, false);
    if (cp == -2)
        return s_rx_fail(rx, "malformed \\x or \\u escape");
    if (cp < 0)
        return s_rx_fail(rx, "unsupported escape (\\c, \\k, \\p or unknown letter)");
    return s_rx_emit_literal(rx, cp);
}

/* Length of a valid "{n}", "{n,}" or "{n,m}" quantifier at s, or 0 if it is not one. */
static size_t s_quantifier_len(const char *s)
{
    size_t i = 1;
    if (!isdigit((unsigned char) s[i]))
        return 0;
    while (isdigit((unsigned char) s[i]))
        i++;
    if (s[i] == ',') {
        i++;
        while (isdigit((unsigned char) s[i]))
            i++;
    }
    return s[i] == '}' ? i + 1 : 0;
}

/* Translate "(" and its possible "(?" group prefix at rx->pos (pointing at '('). */
static int s_rx_group(s_rx_t *rx)
{
    const char *s = rx->src + rx->pos;
    if (s[1] != '?') {
        rx->pos++;
        return s_rx_puts(rx, "(");
    }
    if (s[2] == ':') {
        rx->pos += 3;
        return s_rx_puts(rx, "(");
    }
    if (s[2] == '<' && (isalpha((unsigned char) s[3]) || s[3] == '_' || s[3] == '$')) {
        const char *end = strchr(s + 3, '>');
        if (end == NULL)
            return s_rx_fail(rx, "unterminated group name");
        rx->pos += (size_t) (end - s) + 1;
        return s_rx_puts(rx, "(");
    }
    return s_rx_fail(rx, "lookahead/lookbehind group not supported");
}

/* Translate one token at rx->pos outside brackets. */
static int s_rx_token(s_rx_t *rx, const char *dot)
{
    const char *s = rx->src + rx->pos;
    unsigned char c = (unsigned char) *s;
    size_t qlen = c == '{' ? s_quantifier_len(s) : (c == '*' || c == '+' || c == '?') ? 1 : 0;
    bool after_quant = rx->after_quant;
    rx->after_quant = qlen > 0;
    if (qlen > 0) {
        if (after_quant)
            return s_rx_fail(rx, "quantifier without operand");
        rx->pos += qlen;
        if (rx->src[rx->pos] == '?')
            rx->pos++;  /* lazy quantifier: same match/no-match answer as greedy */
        return s_rx_put(rx, s, qlen);
    }
    rx->pos++;
    switch (c) {
    case '\\': return s_rx_escape(rx);
    case '[': return s_rx_bracket(rx);
    case '(': rx->pos--; return s_rx_group(rx);
    case '.': return s_rx_puts(rx, dot);
    case '{':
    case '}': return s_rx_emit_literal(rx, c);
    default: break;
    }
    if (c >= 0x80) {
        size_t n = 1;
        while (n < 4 && ((unsigned char) s[n] & 0xC0) == 0x80)
            n++;
        rx->pos += n - 1;
        return s_rx_puts(rx, "(") < 0 || s_rx_put(rx, s, n) < 0 ? -1 : s_rx_puts(rx, ")");
    }
    return s_rx_put(rx, s, 1);
}

int skick_schema_regex_translate(const char *ecma, char *posix, size_t posixlen,
                                 char *err, size_t errlen)
{
    s_rx_t rx = {ecma, 0, posix, posixlen, 0, err, errlen, false, false};
    const char *dot = MB_CUR_MAX == 1 ? S_DOT_BYTES : S_DOT_CHARS;
    if (ecma == NULL || posix == NULL || posixlen == 0)
        return s_rx_fail(&rx, "no pattern or output buffer");
    posix[0] = '\0';
    while (ecma[rx.pos] != '\0') {
        if (s_rx_token(&rx, dot) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/*  Numbers, equality, UTF-8                                                                  */

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
