/*  skick_schema - compile JSON Schema (draft 7 subset) and the Skick shorthand  */

/*
 * A document is compiled once into a tree of skick_schema_node_t (one node per subschema; the
 * types live in the private section of skick/schema.h, shared with skick_schema_check.c, which
 * validates). Every keyword is checked here, so the validator never meets a malformed schema.
 * Regexes are translated (skick_schema_regex_translate) and regcomp'd once; "const" and "enum"
 * values are deep-copied, so the caller's document is never kept.
 *
 * Ownership: a node owns its children, strings, regexes and copied values; the public
 * skick_schema_t owns the root node. Thread-safety: compilation uses no global state; the
 * compiled tree is never modified afterwards.
 *
 * Hostile input: subschema nesting is limited to SKICK_SCHEMA_MAX_DEPTH, which bounds the
 * validator's recursion; "const"/"enum" values are depth-checked before being copied.
 */

#include "skick_schema_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------------------------------------ */
/*  Compilation                                                                               */

typedef struct {
    char *err;                  /* caller's error buffer (may be NULL) */
    size_t errlen;              /* size of err */
    char path[256];             /* schema pointer of the keyword being compiled */
    size_t path_len;            /* bytes used in path */
} s_cctx_t;

typedef int (*s_kw_fn)(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off);

typedef struct {
    const char *name;           /* keyword */
    s_kw_fn fn;                 /* compiler, NULL for ignored annotations */
    size_t off;                 /* offset of the node field the compiler fills */
} s_keyword_t;

static void s_node_free(s_node_t *node);
static s_node_t *s_compile_node(s_cctx_t *cc, json_object *doc, int depth);

/* Record a compile error "message (at /schema/path)"; keeps the first one. Returns -1. */
static int s_cerr(s_cctx_t *cc, const char *fmt, ...)
{
    if (cc->err == NULL || cc->errlen == 0 || cc->err[0] != '\0')
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cc->err, cc->errlen, fmt, ap);
    va_end(ap);
    size_t n = strlen(cc->err);
    if (cc->path_len > 0)
        snprintf(cc->err + n, cc->errlen - n, " (at %s)", cc->path);
    return -1;
}

/* Append "/seg" to the schema path (escaped, truncated); return the length to restore. */
static size_t s_cpush(s_cctx_t *cc, const char *seg)
{
    size_t saved = cc->path_len;
    s_sb_t sb = {cc->path, sizeof cc->path, cc->path_len, 64};
    skick_schema_sb_fmt(&sb, "/");
    skick_schema_sb_echo(&sb, seg, strlen(seg), true);
    cc->path_len = sb.len;
    return saved;
}

static size_t s_cpush_index(s_cctx_t *cc, size_t index)
{
    char seg[24];
    snprintf(seg, sizeof seg, "%zu", index);
    return s_cpush(cc, seg);
}

static void s_cpop(s_cctx_t *cc, size_t saved)
{
    cc->path_len = saved;
    cc->path[saved] = '\0';
}

/* Escape schema text s for an error message (first 40 bytes) into buf; returns buf. */
static const char *s_show(const char *s, char *buf, size_t size)
{
    s_sb_t sb;
    skick_schema_sb_init(&sb, buf, size, 40);
    skick_schema_sb_echo(&sb, s, strlen(s), false);
    return buf;
}

static char *s_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL)
        memcpy(copy, s, n);
    return copy;
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
        return s_cerr(cc, "value nested deeper than %d levels", SKICK_SCHEMA_MAX_DEPTH);
    if (v == NULL)
        return 0;
    if (json_object_deep_copy(v, out, NULL) != 0)
        return s_cerr(cc, "out of memory");
    return 0;
}

static bool s_is_number(json_object *v)
{
    json_type t = json_object_get_type(v);
    return t == json_type_int || (t == json_type_double && isfinite(json_object_get_double(v)));
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
        return s_cerr(cc, "enum must be an array");
    return s_copy_value(cc, v, &node->enum_v);
}

/* minLength, maxLength, minItems, ...: a non-negative integer stored as size_t at off. */
static int s_kw_size(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth;
    double d = json_object_get_double(v);
    bool integral = json_object_is_type(v, json_type_int)
                    || (json_object_is_type(v, json_type_double) && skick_schema_is_integral(d));
    if (!integral || d < 0)
        return s_cerr(cc, "expected a non-negative integer");
    *(size_t *) ((char *) node + off) = d >= (double) SIZE_MAX ? SIZE_MAX : (size_t) d;
    if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) < INT64_MAX)
        *(size_t *) ((char *) node + off) = (size_t) json_object_get_int64(v);
    return 0;
}

/* minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf: a number at off. */
static int s_kw_number(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth;
    if (!s_is_number(v))
        return s_cerr(cc, "expected a finite number");
    json_object **slot = (json_object **) ((char *) node + off);
    if (slot == &node->multiple_of && json_object_get_double(v) <= 0)
        return s_cerr(cc, "multipleOf must be greater than 0");
    return s_copy_value(cc, v, slot);
}

static int s_kw_unique(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth, (void) off;
    if (!json_object_is_type(v, json_type_boolean))
        return s_cerr(cc, "uniqueItems must be a boolean");
    node->unique_items = json_object_get_boolean(v);
    return 0;
}

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
        s_cerr(cc, "pattern contains a NUL character");
    else if (posix == NULL || rx == NULL || (rx->source = s_strdup(src)) == NULL)
        s_cerr(cc, "out of memory");
    else if (skick_schema_regex_translate(src, posix, cap, why, sizeof why) != 0)
        s_cerr(cc, "unsupported regex \"%s\": %s", s_show(src, shown, sizeof shown), why);
    else if ((rc = regcomp(&rx->re, posix, REG_EXTENDED | REG_NOSUB)) != 0) {
        regerror(rc, &rx->re, why, sizeof why);
        s_cerr(cc, "invalid regex \"%s\": %s", s_show(src, shown, sizeof shown), why);
    }
    free(posix);
    if (rc != 0 && rx != NULL) {
        free(rx->source);
        free(rx);
        return NULL;
    }
    return rx;
}

static void s_regex_free(s_regex_t *rx)
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
        return s_cerr(cc, "pattern must be a string");
    node->pattern = s_regex_new(cc, json_object_get_string(v),
                                (size_t) json_object_get_string_len(v));
    return node->pattern != NULL ? 0 : -1;
}

/* Map a type name to its SKICK_SCHEMA_T_* bit, 0 when unknown. */
static uint8_t s_type_bit(const char *name)
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
        return s_cerr(cc, "type names must be strings");
    char shown[168];
    const char *text = json_object_get_string(name);
    uint8_t bit = s_type_bit(text);
    if (bit == 0)
        return s_cerr(cc, "unknown type name \"%s\"", s_show(text, shown, sizeof shown));
    if (node->types & bit)
        return s_cerr(cc, "duplicate type name \"%s\"", text);
    node->types |= bit;
    return 0;
}

static int s_kw_type(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth, (void) off;
    if (!json_object_is_type(v, json_type_array))
        return s_add_type(cc, node, v);
    if (json_object_array_length(v) == 0)
        return s_cerr(cc, "type array must not be empty");
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        if (s_add_type(cc, node, json_object_array_get_idx(v, i)) < 0)
            return -1;
    }
    return 0;
}

/* Compile the subschema v found below a node at depth into *out. */
static int s_sub(s_cctx_t *cc, json_object *v, int depth, s_node_t **out)
{
    s_node_t *sub = s_compile_node(cc, v, depth + 1);
    if (sub == NULL)
        return -1;
    *out = sub;
    return 0;
}

/* additionalProperties, propertyNames, not, if, ...: one subschema stored at off. */
static int s_kw_schema(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    return s_sub(cc, v, depth, (s_node_t **) ((char *) node + off));
}

/* Compile an array of subschemas into list; require_items rejects an empty array. */
static int s_schema_list(s_cctx_t *cc, json_object *v, int depth, s_list_t *list,
                         bool require_items)
{
    if (!json_object_is_type(v, json_type_array))
        return s_cerr(cc, "expected an array of schemas");
    size_t n = json_object_array_length(v);
    if (n == 0 && require_items)
        return s_cerr(cc, "array of schemas must not be empty");
    list->v = calloc(n ? n : 1, sizeof *list->v);
    if (list->v == NULL)
        return s_cerr(cc, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t saved = s_cpush_index(cc, i);
        int rc = s_sub(cc, json_object_array_get_idx(v, i), depth, &list->v[list->n]);
        s_cpop(cc, saved);
        if (rc < 0)
            return -1;
        list->n++;
    }
    return 0;
}

static int s_kw_list(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    return s_schema_list(cc, v, depth, (s_list_t *) ((char *) node + off), true);
}

static int s_kw_items(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) off;
    if (!json_object_is_type(v, json_type_array))
        return s_sub(cc, v, depth, &node->items);
    node->has_tuple = true;
    return s_schema_list(cc, v, depth, &node->tuple, false);
}

/* Copy a JSON array of unique strings into *names / *n. */
static int s_string_list(s_cctx_t *cc, json_object *v, char ***names, size_t *n)
{
    if (!json_object_is_type(v, json_type_array))
        return s_cerr(cc, "expected an array of strings");
    size_t count = json_object_array_length(v);
    *names = calloc(count ? count : 1, sizeof **names);
    if (*names == NULL)
        return s_cerr(cc, "out of memory");
    for (size_t i = 0; i < count; i++) {
        json_object *s = json_object_array_get_idx(v, i);
        if (!json_object_is_type(s, json_type_string))
            return s_cerr(cc, "expected an array of strings");
        for (size_t j = 0; j < i; j++) {
            char shown[168];
            if (strcmp((*names)[j], json_object_get_string(s)) == 0)
                return s_cerr(cc, "duplicate name \"%s\"", s_show((*names)[j], shown, 168));
        }
        if (((*names)[i] = s_strdup(json_object_get_string(s))) == NULL)
            return s_cerr(cc, "out of memory");
        (*n)++;
    }
    return 0;
}

static int s_kw_required(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) depth, (void) off;
    return s_string_list(cc, v, &node->required, &node->n_required);
}

static int s_kw_properties(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) off;
    if (!json_object_is_type(v, json_type_object))
        return s_cerr(cc, "properties must be an object");
    node->props = calloc((size_t) json_object_object_length(v) + 1, sizeof *node->props);
    if (node->props == NULL)
        return s_cerr(cc, "out of memory");
    for (struct lh_entry *e = json_object_get_object(v)->head; e != NULL; e = e->next) {
        s_prop_t *p = &node->props[node->n_props];
        size_t saved = s_cpush(cc, (const char *) lh_entry_k(e));
        int rc = s_sub(cc, (json_object *) lh_entry_v(e), depth, &p->node);
        s_cpop(cc, saved);
        if (rc < 0)
            return -1;
        node->n_props++;
        if ((p->name = s_strdup((const char *) lh_entry_k(e))) == NULL)
            return s_cerr(cc, "out of memory");
    }
    qsort(node->props, node->n_props, sizeof *node->props, skick_schema_prop_cmp);
    return 0;
}

static int s_kw_pattern_props(s_cctx_t *cc, s_node_t *node, json_object *v, int depth, size_t off)
{
    (void) off;
    if (!json_object_is_type(v, json_type_object))
        return s_cerr(cc, "patternProperties must be an object");
    node->pprops = calloc((size_t) json_object_object_length(v) + 1, sizeof *node->pprops);
    if (node->pprops == NULL)
        return s_cerr(cc, "out of memory");
    for (struct lh_entry *e = json_object_get_object(v)->head; e != NULL; e = e->next) {
        const char *key = (const char *) lh_entry_k(e);
        skick_schema_pprop_t *p = &node->pprops[node->n_pprops];
        size_t saved = s_cpush(cc, key);
        int rc = s_sub(cc, (json_object *) lh_entry_v(e), depth, &p->node);
        if (rc == 0 && (p->re = s_regex_new(cc, key, strlen(key))) == NULL)
            rc = -1;
        s_cpop(cc, saved);
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
        return s_cerr(cc, "dependencies must be an object");
    node->deps = calloc((size_t) json_object_object_length(v) + 1, sizeof *node->deps);
    if (node->deps == NULL)
        return s_cerr(cc, "out of memory");
    for (struct lh_entry *e = json_object_get_object(v)->head; e != NULL; e = e->next) {
        json_object *dv = (json_object *) lh_entry_v(e);
        s_dep_t *d = &node->deps[node->n_deps++];
        if ((d->name = s_strdup((const char *) lh_entry_k(e))) == NULL)
            return s_cerr(cc, "out of memory");
        size_t saved = s_cpush(cc, d->name);
        int rc = json_object_is_type(dv, json_type_array)
                 ? s_string_list(cc, dv, &d->keys, &d->n_keys)
                 : s_sub(cc, dv, depth, &d->node);
        s_cpop(cc, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

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
static int s_compile_keyword(s_cctx_t *cc, s_node_t *node, const char *key, json_object *v,
                             int depth)
{
    for (size_t i = 0; i < sizeof s_keywords / sizeof s_keywords[0]; i++) {
        if (strcmp(key, s_keywords[i].name) != 0)
            continue;
        if (s_keywords[i].fn == NULL)
            return 0;
        size_t saved = s_cpush(cc, key);
        int rc = s_keywords[i].fn(cc, node, v, depth, s_keywords[i].off);
        s_cpop(cc, saved);
        return rc;
    }
    for (size_t i = 0; i < sizeof s_unsupported / sizeof s_unsupported[0]; i++) {
        if (strcmp(key, s_unsupported[i]) == 0)
            return s_cerr(cc, "unsupported keyword %s", key);
    }
    char shown[168];
    return s_cerr(cc, "unknown keyword \"%s\"", s_show(key, shown, sizeof shown));
}

/* Compute the SKICK_SCHEMA_K_* summary and the required-in-properties marks after compilation. */
static void s_finish_node(s_node_t *n)
{
    for (size_t i = 0; i < n->n_required && n->n_props > 0; i++) {
        s_prop_t key = {n->required[i], NULL, false};
        s_prop_t *p = bsearch(&key, n->props, n->n_props, sizeof *n->props, skick_schema_prop_cmp);
        if (p != NULL && !p->required) {
            p->required = true;
            n->n_req_props++;
        }
    }
    if (n->minimum || n->maximum || n->ex_min || n->ex_max || n->multiple_of)
        n->kinds |= SKICK_SCHEMA_K_NUMBER;
    if (n->min_len > 0 || n->max_len != SIZE_MAX || n->pattern)
        n->kinds |= SKICK_SCHEMA_K_STRING;
    if (n->min_items > 0 || n->max_items != SIZE_MAX || n->items || n->has_tuple
        || n->contains || n->unique_items)
        n->kinds |= SKICK_SCHEMA_K_ARRAY;
    if (n->min_props > 0 || n->max_props != SIZE_MAX || n->n_props || n->n_pprops
        || n->additional_props || n->property_names || n->n_required || n->n_deps)
        n->kinds |= SKICK_SCHEMA_K_OBJECT;
    if (n->has_const || n->enum_v)
        n->kinds |= SKICK_SCHEMA_K_VALUE;
    if (n->all_of.n || n->any_of.n || n->one_of.n || n->not_s || n->if_s)
        n->kinds |= SKICK_SCHEMA_K_LOGIC;
}

static s_node_t *s_node_new(void)
{
    s_node_t *node = calloc(1, sizeof *node);
    if (node != NULL) {
        node->max_len = SIZE_MAX;
        node->max_items = SIZE_MAX;
        node->max_props = SIZE_MAX;
    }
    return node;
}

/* Compile the schema doc found at nesting depth; NULL with an error recorded in cc. */
static s_node_t *s_compile_node(s_cctx_t *cc, json_object *doc, int depth)
{
    if (depth > SKICK_SCHEMA_MAX_DEPTH) {
        s_cerr(cc, "schema nested deeper than %d levels", SKICK_SCHEMA_MAX_DEPTH);
        return NULL;
    }
    json_type t = json_object_get_type(doc);
    if (t != json_type_object && t != json_type_boolean) {
        s_cerr(cc, "schema must be an object or a boolean, got %s", skick_schema_json_type_name(t));
        return NULL;
    }
    s_node_t *node = s_node_new();
    if (node == NULL) {
        s_cerr(cc, "out of memory");
        return NULL;
    }
    if (t == json_type_boolean) {
        node->is_false = !json_object_get_boolean(doc);
        return node;
    }
    for (struct lh_entry *e = json_object_get_object(doc)->head; e != NULL; e = e->next) {
        if (s_compile_keyword(cc, node, (const char *) lh_entry_k(e),
                              (json_object *) lh_entry_v(e), depth) < 0) {
            s_node_free(node);
            return NULL;
        }
    }
    s_finish_node(node);
    return node;
}

static void s_list_free(s_list_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        s_node_free(list->v[i]);
    free(list->v);
}

static void s_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void s_node_free(s_node_t *n)
{
    if (n == NULL)
        return;
    json_object *owned[] = {n->minimum, n->maximum, n->ex_min, n->ex_max, n->multiple_of,
                            n->const_v, n->enum_v};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        json_object_put(owned[i]);
    s_regex_free(n->pattern);
    for (size_t i = 0; i < n->n_props; i++) {
        free(n->props[i].name);
        s_node_free(n->props[i].node);
    }
    free(n->props);
    for (size_t i = 0; i < n->n_pprops; i++) {
        s_regex_free(n->pprops[i].re);
        s_node_free(n->pprops[i].node);
    }
    free(n->pprops);
    for (size_t i = 0; i < n->n_deps; i++) {
        free(n->deps[i].name);
        s_names_free(n->deps[i].keys, n->deps[i].n_keys);
        s_node_free(n->deps[i].node);
    }
    free(n->deps);
    s_names_free(n->required, n->n_required);
    s_node_t *subs[] = {n->additional_props, n->property_names, n->items, n->additional_items,
                        n->contains, n->not_s, n->if_s, n->then_s, n->else_s};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        s_node_free(subs[i]);
    s_list_free(&n->tuple);
    s_list_free(&n->all_of);
    s_list_free(&n->any_of);
    s_list_free(&n->one_of);
    free(n);
}

/* Wrap a compiled root (or NULL) into the public handle. */
static skick_schema_t *s_wrap(s_cctx_t *cc, s_node_t *root)
{
    if (root == NULL)
        return NULL;
    skick_schema_t *schema = malloc(sizeof *schema);
    if (schema == NULL) {
        s_node_free(root);
        s_cerr(cc, "out of memory");
        return NULL;
    }
    schema->root = root;
    return schema;
}

static void s_cctx_init(s_cctx_t *cc, char *err, size_t errlen)
{
    cc->err = err;
    cc->errlen = err != NULL ? errlen : 0;
    cc->path[0] = '\0';
    cc->path_len = 0;
    if (cc->errlen > 0)
        err[0] = '\0';
}

skick_schema_t *skick_schema_compile(json_object *doc, char *err, size_t errlen)
{
    s_cctx_t cc;
    s_cctx_init(&cc, err, errlen);
    return s_wrap(&cc, s_compile_node(&cc, doc, 0));
}

/* ------------------------------------------------------------------------------------------ */
/*  Shorthand                                                                                 */

/* Compile the shorthand value of one key: a type name, or a subschema. */
static s_node_t *s_short_value(s_cctx_t *cc, json_object *v)
{
    if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_boolean))
        return s_compile_node(cc, v, 1);
    if (!json_object_is_type(v, json_type_string)) {
        s_cerr(cc, "expected a type name or a schema object, got %s",
               skick_schema_json_type_name(json_object_get_type(v)));
        return NULL;
    }
    const char *name = json_object_get_string(v);
    uint8_t bit = strcmp(name, "any") == 0 ? 0 : s_type_bit(name);
    char shown[168];
    if (bit == 0 && strcmp(name, "any") != 0) {
        s_cerr(cc, "unknown type name \"%s\"", s_show(name, shown, sizeof shown));
        return NULL;
    }
    s_node_t *node = s_node_new();
    if (node == NULL) {
        s_cerr(cc, "out of memory");
        return NULL;
    }
    node->types = bit;
    node->strict_int = true;
    return node;
}

/* Check a doc-supplied "action" entry and replace its node by const action. */
static int s_short_action(s_cctx_t *cc, json_object *v, const char *action, s_prop_t *p)
{
    json_object *c = NULL;
    bool ok = (json_object_is_type(v, json_type_string)
               && strcmp(json_object_get_string(v), "string") == 0)
              || (json_object_object_get_ex(v, "const", &c)
                  && json_object_is_type(c, json_type_string)
                  && strcmp(json_object_get_string(c), action) == 0);
    char shown[168];
    if (!ok)
        return s_cerr(cc, "key \"action\" must be \"string\" or {\"const\": \"%s\"}",
                      s_show(action, shown, sizeof shown));
    s_node_free(p->node);
    p->node = s_node_new();
    if (p->node == NULL || (p->node->const_v = json_object_new_string(action)) == NULL)
        return s_cerr(cc, "out of memory");
    p->node->has_const = true;
    s_finish_node(p->node);
    return 0;
}

/* Add one shorthand entry "key" or "key?" to the root node. */
static int s_short_entry(s_cctx_t *cc, s_node_t *root, const char *key, json_object *v,
                         const char *action)
{
    size_t len = strlen(key);
    bool optional = len > 0 && key[len - 1] == '?';
    s_prop_t *p = &root->props[root->n_props];
    size_t saved = s_cpush(cc, key);
    p->node = s_short_value(cc, v);
    int rc = p->node != NULL ? 0 : -1;
    if (rc == 0 && (p->name = malloc(len + 1)) == NULL)
        rc = s_cerr(cc, "out of memory");
    if (p->node != NULL)
        root->n_props++;
    if (rc == 0) {
        memcpy(p->name, key, len + 1);
        p->name[optional ? len - 1 : len] = '\0';
        if (action != NULL && strcmp(p->name, "action") == 0) {
            optional = false;
            rc = s_short_action(cc, v, action, p);
        }
    }
    if (rc == 0 && !optional && (root->required[root->n_required++] = s_strdup(p->name)) == NULL)
        rc = s_cerr(cc, "out of memory");
    s_cpop(cc, saved);
    return rc;
}

/* Append the forced "action": {"const": action} property unless the doc listed it. */
static int s_short_add_action(s_cctx_t *cc, s_node_t *root, const char *action)
{
    for (size_t i = 0; i < root->n_props; i++) {
        if (strcmp(root->props[i].name, "action") == 0)
            return 0;
    }
    s_prop_t *p = &root->props[root->n_props];
    if ((p->name = s_strdup("action")) == NULL || (p->node = s_node_new()) == NULL) {
        free(p->name);
        return s_cerr(cc, "out of memory");
    }
    root->n_props++;
    if ((p->node->const_v = json_object_new_string(action)) == NULL
        || (root->required[root->n_required++] = s_strdup("action")) == NULL)
        return s_cerr(cc, "out of memory");
    p->node->has_const = true;
    s_finish_node(p->node);
    return 0;
}

/* Build the strict object node of a shorthand doc (an object without "$schema"). */
static s_node_t *s_short_compile(s_cctx_t *cc, json_object *doc, const char *action)
{
    size_t n = (size_t) json_object_object_length(doc) + 1;
    s_node_t *root = s_node_new();
    if (root == NULL || (root->props = calloc(n, sizeof *root->props)) == NULL
        || (root->required = calloc(n, sizeof *root->required)) == NULL
        || (root->additional_props = s_node_new()) == NULL) {
        s_node_free(root);
        s_cerr(cc, "out of memory");
        return NULL;
    }
    root->types = SKICK_SCHEMA_T_OBJECT;
    root->additional_props->is_false = true;
    int rc = 0;
    for (struct lh_entry *e = json_object_get_object(doc)->head; e && rc == 0; e = e->next)
        rc = s_short_entry(cc, root, (const char *) lh_entry_k(e),
                           (json_object *) lh_entry_v(e), action);
    if (rc == 0 && action != NULL)
        rc = s_short_add_action(cc, root, action);
    qsort(root->props, root->n_props, sizeof *root->props, skick_schema_prop_cmp);
    char shown[168];
    for (size_t i = 1; rc == 0 && i < root->n_props; i++) {
        if (strcmp(root->props[i - 1].name, root->props[i].name) == 0)
            rc = s_cerr(cc, "duplicate key \"%s\"", s_show(root->props[i].name, shown, 168));
    }
    if (rc < 0) {
        s_node_free(root);
        return NULL;
    }
    s_finish_node(root);
    return root;
}

skick_schema_t *skick_schema_compile_shorthand(json_object *doc, const char *action,
                                               char *err, size_t errlen)
{
    s_cctx_t cc;
    s_cctx_init(&cc, err, errlen);
    if (json_object_is_type(doc, json_type_object)
        && json_object_object_get_ex(doc, "$schema", NULL))
        return skick_schema_compile(doc, err, errlen);
    if (!json_object_is_type(doc, json_type_object)) {
        s_cerr(&cc, "shorthand must be a JSON object, got %s",
               skick_schema_json_type_name(json_object_get_type(doc)));
        return NULL;
    }
    return s_wrap(&cc, s_short_compile(&cc, doc, action));
}

skick_schema_t *skick_schema_parse(const char *text, const char *action, char *err, size_t errlen)
{
    s_cctx_t cc;
    s_cctx_init(&cc, err, errlen);
    if (text == NULL) {
        s_cerr(&cc, "no schema text");
        return NULL;
    }
    size_t len = strlen(text);
    struct json_tokener *tok = json_tokener_new_ex(4 * SKICK_SCHEMA_MAX_DEPTH);
    if (tok == NULL || len >= INT32_MAX) {
        json_tokener_free(tok);
        s_cerr(&cc, tok == NULL ? "out of memory" : "schema text too long");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *doc = json_tokener_parse_ex(tok, text, (int) len + 1);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (jerr != json_tokener_success) {
        s_cerr(&cc, "JSON parse error at offset %zu: %s", end, json_tokener_error_desc(jerr));
        return NULL;
    }
    skick_schema_t *schema = skick_schema_compile_shorthand(doc, action, err, errlen);
    json_object_put(doc);
    return schema;
}

void skick_schema_destroy(skick_schema_t **schema_p)
{
    if (schema_p == NULL || *schema_p == NULL)
        return;
    s_node_free((*schema_p)->root);
    free(*schema_p);
    *schema_p = NULL;
}

