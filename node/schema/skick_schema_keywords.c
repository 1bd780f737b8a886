/*  skick_schema_keywords - the compilers of the JSON Schema keywords, by family  */

/*
 * One function per keyword (or per group of keywords that share a shape) turns the keyword's
 * JSON value into fields of a skick_schema_node_t, and s_keywords, at the end, lists every
 * keyword this module knows with its compiler. Every keyword value is checked here, so the
 * validator never meets a malformed schema. The families, in file order: types and values,
 * numbers and sizes, strings (regexes are translated with skick_schema_regex_translate and
 * regcomp'd once), arrays, objects, then subschemas and combinators.
 *
 * Ownership: what a compiler allocates (strings, regexes, deep copies of "const"/"enum"/
 * numbers, subschema nodes) is stored in the node at once, so the node owns it even when the
 * compiler fails half-way; skick__schema_node_free() (skick_schema.c) frees it all.
 *
 * Thread-safety: no global state; the table is const.
 */

#include "skick_schema_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*s_kw_fn)(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off);

typedef struct {
    const char *name;           /* keyword */
    s_kw_fn fn;                 /* compiler, NULL for ignored annotations */
    size_t off;                 /* offset of the node field the compiler fills */
} s_keyword_t;

/* ------------------------------------------------------------------------------------------ */
/*  Helpers shared by the families                                                            */

static size_t s_cpush_index(s_cctx_t *cc, size_t index)
{
    char seg[24];
    snprintf(seg, sizeof seg, "%zu", index);
    return skick__schema_cpush(cc, seg);
}

/* True when v (a JSON document) nests no deeper than limit levels. */
static bool s_depth_ok(json_object *v, int limit)
{
    if (json_object_is_type(v, json_type_array)) {
        if (limit <= 0)
            return false;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            if (!s_depth_ok(json_object_array_get_idx(v, i), limit - 1))
                return false;
        }
    } else if (json_object_is_type(v, json_type_object)) {
        if (limit <= 0)
            return false;
        for (struct lh_entry *e = json_object_get_object(v)->head; e != NULL; e = e->next) {
            if (!s_depth_ok((json_object *) lh_entry_v(e), limit - 1))
                return false;
        }
    }
    return true;
}

/* Deep-copy a keyword value (JSON null copies to NULL) into *out; -1 on error. */
static int s_copy_value(s_cctx_t *cc, json_object *v, json_object **out)
{
    if (!s_depth_ok(v, SKICK_SCHEMA_MAX_DEPTH))
        return skick__schema_cerr(cc, "value nested deeper than %d levels", SKICK_SCHEMA_MAX_DEPTH);
    if (v == NULL)
        return 0;
    if (json_object_deep_copy(v, out, NULL) != 0)
        return skick__schema_cerr(cc, "out of memory");
    return 0;
}

static bool s_is_number(json_object *v)
{
    json_type t = json_object_get_type(v);
    return t == json_type_int || (t == json_type_double && isfinite(json_object_get_double(v)));
}

/* Compile the subschema v found below a node at depth into *out. */
static int s_sub(s_cctx_t *cc, json_object *v, int depth, s_node_t **out)
{
    s_node_t *sub = skick__schema_compile_node(cc, v, depth + 1);
    if (sub == NULL)
        return -1;
    *out = sub;
    return 0;
}

/* Compile an array of subschemas into list; require_items rejects an empty array. */
static int s_schema_list(s_cctx_t *cc, json_object *v, int depth, s_list_t *list,
                         bool require_items)
{
    if (!json_object_is_type(v, json_type_array))
        return skick__schema_cerr(cc, "expected an array of schemas");
    size_t n = json_object_array_length(v);
    if (n == 0 && require_items)
        return skick__schema_cerr(cc, "array of schemas must not be empty");
    list->v = calloc(n ? n : 1, sizeof *list->v);
    if (list->v == NULL)
        return skick__schema_cerr(cc, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t saved = s_cpush_index(cc, i);
        int rc = s_sub(cc, json_object_array_get_idx(v, i), depth, &list->v[list->n]);
        skick__schema_cpop(cc, saved);
        if (rc < 0)
            return -1;
        list->n++;
    }
    return 0;
}

/* Copy a JSON array of unique strings into *names / *n. */
static int s_string_list(s_cctx_t *cc, json_object *v, char ***names, size_t *n)
{
    if (!json_object_is_type(v, json_type_array))
        return skick__schema_cerr(cc, "expected an array of strings");
    size_t count = json_object_array_length(v);
    *names = calloc(count ? count : 1, sizeof **names);
    if (*names == NULL)
        return skick__schema_cerr(cc, "out of memory");
    for (size_t i = 0; i < count; i++) {
        json_object *s = json_object_array_get_idx(v, i);
        if (!json_object_is_type(s, json_type_string))
            return skick__schema_cerr(cc, "expected an array of strings");
        for (size_t j = 0; j < i; j++) {
            char shown[168];
            if (strcmp((*names)[j], json_object_get_string(s)) == 0)
                return skick__schema_cerr(cc, "duplicate name \"%s\"",
                                          skick__schema_show((*names)[j], shown, 168));
        }
        if (((*names)[i] = skick__schema_strdup(json_object_get_string(s))) == NULL)
            return skick__schema_cerr(cc, "out of memory");
        (*n)++;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/*  Types and values: type, enum, const                                                       */

/* Map a type name to its SKICK_SCHEMA_T_* bit, 0 when unknown. */
uint8_t skick__schema_type_bit(const char *name)
{
    for (size_t i = 0; i < SKICK_SCHEMA_N_TYPES; i++) {
        if (strcmp(name, skick_schema_type_names[i]) == 0)
            return (uint8_t) (1u << i);
    }
    return 0;
}

static int s_add_type(s_cctx_t *cc, s_node_t *node, json_object *name)
{
    if (!json_object_is_type(name, json_type_string))
        return skick__schema_cerr(cc, "type names must be strings");
    char shown[168];
    const char *text = json_object_get_string(name);
    uint8_t bit = skick__schema_type_bit(text);
    if (bit == 0)
        return skick__schema_cerr(cc, "unknown type name \"%s\"",
                                  skick__schema_show(text, shown, sizeof shown));
    if (node->types & bit)
        return skick__schema_cerr(cc, "duplicate type name \"%s\"", text);
    node->types |= bit;
    return 0;
}

static int s_kw_type(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth, (void) off;
    if (!json_object_is_type(v, json_type_array))
        return s_add_type(cc, node, v);
    if (json_object_array_length(v) == 0)
        return skick__schema_cerr(cc, "type array must not be empty");
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        if (s_add_type(cc, node, json_object_array_get_idx(v, i)) < 0)
            return -1;
    }
    return 0;
}

static int s_kw_const(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth, (void) off;
    node->has_const = true;
    return s_copy_value(cc, v, &node->const_v);
}

static int s_kw_enum(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth, (void) off;
    if (!json_object_is_type(v, json_type_array))
        return skick__schema_cerr(cc, "enum must be an array");
    return s_copy_value(cc, v, &node->enum_v);
}

/* ------------------------------------------------------------------------------------------ */
/*  Numbers and sizes: minimum ... multipleOf, minLength ... maxProperties                    */

/* minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf: a number at off. */
static int s_kw_number(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth;
    if (!s_is_number(v))
        return skick__schema_cerr(cc, "expected a finite number");
    json_object **slot = (json_object **) ((char *) node + off);
    if (slot == &node->multiple_of && json_object_get_double(v) <= 0)
        return skick__schema_cerr(cc, "multipleOf must be greater than 0");
    return s_copy_value(cc, v, slot);
}

/* minLength, maxLength, minItems, ...: a non-negative integer stored as size_t at off. */
static int s_kw_size(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth;
    double d = json_object_get_double(v);
    bool integral = json_object_is_type(v, json_type_int)
                    || (json_object_is_type(v, json_type_double) && skick_schema_is_integral(d));
    if (!integral || d < 0)
        return skick__schema_cerr(cc, "expected a non-negative integer");
    *(size_t *) ((char *) node + off) = d >= (double) SIZE_MAX ? SIZE_MAX : (size_t) d;
    if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) < INT64_MAX)
        *(size_t *) ((char *) node + off) = (size_t) json_object_get_int64(v);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/*  Strings: pattern (and the regexes of patternProperties)                                   */

/* Compile an ECMA regex from a JSON string; NULL on error. */
static s_regex_t *s_regex_new(s_cctx_t *cc, const char *src, size_t len)
{
    char why[128] = "";
    char shown[168];
    size_t cap = len * 128 + 64;
    char *posix = malloc(cap);
    s_regex_t *rx = calloc(1, sizeof *rx);
    int rc = -1;
    if (strlen(src) != len)
        skick__schema_cerr(cc, "pattern contains a NUL character");
    else if (posix == NULL || rx == NULL || (rx->source = skick__schema_strdup(src)) == NULL)
        skick__schema_cerr(cc, "out of memory");
    else if (skick_schema_regex_translate(src, posix, cap, why, sizeof why) != 0)
        skick__schema_cerr(cc, "unsupported regex \"%s\": %s",
                           skick__schema_show(src, shown, sizeof shown), why);
    else if ((rc = regcomp(&rx->re, posix, REG_EXTENDED | REG_NOSUB)) != 0) {
        regerror(rc, &rx->re, why, sizeof why);
        skick__schema_cerr(cc, "invalid regex \"%s\": %s",
                           skick__schema_show(src, shown, sizeof shown), why);
    }
    free(posix);
    if (rc != 0 && rx != NULL) {
        free(rx->source);
        free(rx);
        return NULL;
    }
    return rx;
}

void skick__schema_regex_free(s_regex_t *rx)
{
    if (rx != NULL) {
        regfree(&rx->re);
        free(rx->source);
        free(rx);
    }
}

static int s_kw_pattern(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth, (void) off;
    if (!json_object_is_type(v, json_type_string))
        return skick__schema_cerr(cc, "pattern must be a string");
    node->pattern = s_regex_new(cc, json_object_get_string(v),
                                (size_t) json_object_get_string_len(v));
    return node->pattern != NULL ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/*  Arrays: items, uniqueItems (additionalItems, contains: one subschema each)                */

static int s_kw_items(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) off;
    if (!json_object_is_type(v, json_type_array))
        return s_sub(cc, v, depth, &node->items);
    node->has_tuple = true;
    return s_schema_list(cc, v, depth, &node->tuple, false);
}

static int s_kw_unique(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth, (void) off;
    if (!json_object_is_type(v, json_type_boolean))
        return skick__schema_cerr(cc, "uniqueItems must be a boolean");
    node->unique_items = json_object_get_boolean(v);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/*  Objects: required, properties, patternProperties, dependencies                            */

static int s_kw_required(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth, (void) off;
    return s_string_list(cc, v, &node->required, &node->n_required);
}

static int s_kw_properties(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) off;
    if (!json_object_is_type(v, json_type_object))
        return skick__schema_cerr(cc, "properties must be an object");
    node->props = calloc((size_t) json_object_object_length(v) + 1, sizeof *node->props);
    if (node->props == NULL)
        return skick__schema_cerr(cc, "out of memory");
    for (struct lh_entry *e = json_object_get_object(v)->head; e != NULL; e = e->next) {
        s_prop_t *p = &node->props[node->n_props];
        size_t saved = skick__schema_cpush(cc, (const char *) lh_entry_k(e));
        int rc = s_sub(cc, (json_object *) lh_entry_v(e), depth, &p->node);
        skick__schema_cpop(cc, saved);
        if (rc < 0)
            return -1;
        node->n_props++;
        if ((p->name = skick__schema_strdup((const char *) lh_entry_k(e))) == NULL)
            return skick__schema_cerr(cc, "out of memory");
    }
    qsort(node->props, node->n_props, sizeof *node->props, skick_schema_prop_cmp);
    return 0;
}

static int s_kw_pattern_props(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) off;
    if (!json_object_is_type(v, json_type_object))
        return skick__schema_cerr(cc, "patternProperties must be an object");
    node->pprops = calloc((size_t) json_object_object_length(v) + 1, sizeof *node->pprops);
    if (node->pprops == NULL)
        return skick__schema_cerr(cc, "out of memory");
    for (struct lh_entry *e = json_object_get_object(v)->head; e != NULL; e = e->next) {
        const char *key = (const char *) lh_entry_k(e);
        skick_schema_pprop_t *p = &node->pprops[node->n_pprops];
        size_t saved = skick__schema_cpush(cc, key);
        int rc = s_sub(cc, (json_object *) lh_entry_v(e), depth, &p->node);
        if (rc == 0 && (p->re = s_regex_new(cc, key, strlen(key))) == NULL)
            rc = -1;
        skick__schema_cpop(cc, saved);
        if (p->node != NULL)
            node->n_pprops++;
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int s_kw_dependencies(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) off;
    if (!json_object_is_type(v, json_type_object))
        return skick__schema_cerr(cc, "dependencies must be an object");
    node->deps = calloc((size_t) json_object_object_length(v) + 1, sizeof *node->deps);
    if (node->deps == NULL)
        return skick__schema_cerr(cc, "out of memory");
    for (struct lh_entry *e = json_object_get_object(v)->head; e != NULL; e = e->next) {
        json_object *dv = (json_object *) lh_entry_v(e);
        s_dep_t *d = &node->deps[node->n_deps++];
        if ((d->name = skick__schema_strdup((const char *) lh_entry_k(e))) == NULL)
            return skick__schema_cerr(cc, "out of memory");
        size_t saved = skick__schema_cpush(cc, d->name);
        int rc = json_object_is_type(dv, json_type_array)
                 ? s_string_list(cc, dv, &d->keys, &d->n_keys)
                 : s_sub(cc, dv, depth, &d->node);
        skick__schema_cpop(cc, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/*  Subschemas and combinators: allOf, anyOf, oneOf, not, if/then/else, ...                   */

/* additionalProperties, propertyNames, not, if, ...: one subschema stored at off. */
static int s_kw_schema(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    return s_sub(cc, v, depth, (s_node_t **) ((char *) node + off));
}

static int s_kw_list(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    return s_schema_list(cc, v, depth, (s_list_t *) ((char *) node + off), true);
}

/* ------------------------------------------------------------------------------------------ */
/*  The keyword table                                                                         */

#define S_OFF(field) offsetof(s_node_t, field)

static const s_keyword_t s_keywords[] = {
    {"type", s_kw_type, 0},
    {"enum", s_kw_enum, 0},
    {"const", s_kw_const, 0},
    {"minimum", s_kw_number, S_OFF(minimum)},
    {"maximum", s_kw_number, S_OFF(maximum)},
    {"exclusiveMinimum", s_kw_number, S_OFF(ex_min)},
    {"exclusiveMaximum", s_kw_number, S_OFF(ex_max)},
    {"multipleOf", s_kw_number, S_OFF(multiple_of)},
    {"minLength", s_kw_size, S_OFF(min_len)},
    {"maxLength", s_kw_size, S_OFF(max_len)},
    {"pattern", s_kw_pattern, 0},
    {"items", s_kw_items, 0},
    {"additionalItems", s_kw_schema, S_OFF(additional_items)},
    {"contains", s_kw_schema, S_OFF(contains)},
    {"minItems", s_kw_size, S_OFF(min_items)},
    {"maxItems", s_kw_size, S_OFF(max_items)},
    {"uniqueItems", s_kw_unique, 0},
    {"properties", s_kw_properties, 0},
    {"patternProperties", s_kw_pattern_props, 0},
    {"additionalProperties", s_kw_schema, S_OFF(additional_props)},
    {"propertyNames", s_kw_schema, S_OFF(property_names)},
    {"required", s_kw_required, 0},
    {"minProperties", s_kw_size, S_OFF(min_props)},
    {"maxProperties", s_kw_size, S_OFF(max_props)},
    {"dependencies", s_kw_dependencies, 0},
    {"allOf", s_kw_list, S_OFF(all_of)},
    {"anyOf", s_kw_list, S_OFF(any_of)},
    {"oneOf", s_kw_list, S_OFF(one_of)},
    {"not", s_kw_schema, S_OFF(not_s)},
    {"if", s_kw_schema, S_OFF(if_s)},
    {"then", s_kw_schema, S_OFF(then_s)},
    {"else", s_kw_schema, S_OFF(else_s)},
    /* annotations: accepted, ignored */
    {"$schema", NULL, 0}, {"$id", NULL, 0}, {"$comment", NULL, 0}, {"title", NULL, 0},
    {"description", NULL, 0}, {"default", NULL, 0}, {"examples", NULL, 0},
    {"readOnly", NULL, 0}, {"writeOnly", NULL, 0}, {"definitions", NULL, 0},
};

/* JSON Schema keywords (draft 7 and later) this module knowingly does not implement */
static const char *const s_unsupported[] = {
    "$ref", "format", "contentMediaType", "contentEncoding", "contentSchema", "$defs",
    "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor",
    "$vocabulary", "dependentRequired", "dependentSchemas", "prefixItems", "minContains",
    "maxContains", "unevaluatedItems", "unevaluatedProperties", "deprecated",
};

/* Compile one keyword of a schema object into node. */
int skick__schema_compile_keyword(s_cctx_t *cc, s_node_t *node, const char *key, json_object *v,
                                  int depth)
{
    for (size_t i = 0; i < sizeof s_keywords / sizeof s_keywords[0]; i++) {
        if (strcmp(key, s_keywords[i].name) != 0)
            continue;
        if (s_keywords[i].fn == NULL)
            return 0;
        size_t saved = skick__schema_cpush(cc, key);
        int rc = s_keywords[i].fn(cc, node, v, depth, s_keywords[i].off);
        skick__schema_cpop(cc, saved);
        return rc;
    }
    for (size_t i = 0; i < sizeof s_unsupported / sizeof s_unsupported[0]; i++) {
        if (strcmp(key, s_unsupported[i]) == 0)
            return skick__schema_cerr(cc, "unsupported keyword %s", key);
    }
    char shown[168];
    return skick__schema_cerr(cc, "unknown keyword \"%s\"",
                              skick__schema_show(key, shown, sizeof shown));
}
