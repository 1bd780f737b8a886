/*  skick_schema - compile a JSON Schema document into a tree: the driver  */

/*
 * A document is compiled once into a tree of skick_schema_node_t, one node per subschema (the
 * types are in skick_schema_internal.h, shared with skick_schema_check.c, which validates).
 * This file is the driver: it walks a schema object, hands each keyword to its compiler
 * (skick_schema_keywords.c), summarises the finished node for the validator, frees trees, and
 * holds the compile context that every compiler reports through: the first error and the
 * schema pointer of the keyword being compiled. The shorthand is skick_schema_shorthand.c.
 *
 * Ownership: a node owns its children, strings, regexes and copied values; the public
 * skick_schema_t owns the root node, and skick_schema_destroy() frees it all. The caller's
 * document is borrowed during the call and never kept.
 *
 * Thread-safety: compilation uses no global state (a context lives on the caller's stack);
 * the compiled tree is never modified afterwards.
 *
 * Hostile input: subschema nesting is limited to SKICK_SCHEMA_MAX_DEPTH, which bounds the
 * validator's recursion; "const"/"enum" values are depth-checked before being copied.
 */

#include "skick_schema_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/*  The compile context: the first error and the schema pointer                             */

/* Record a compile error "message (at /schema/path)"; keeps the first one. Returns -1. */
int skick__schema_cerr(s_cctx_t *cc, const char *fmt, ...)
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
size_t skick__schema_cpush(s_cctx_t *cc, const char *seg)
{
    size_t saved = cc->path_len;
    s_sb_t sb = {cc->path, sizeof cc->path, cc->path_len, 64};
    skick_schema_sb_fmt(&sb, "/");
    skick_schema_sb_echo(&sb, seg, strlen(seg), true);
    cc->path_len = sb.len;
    return saved;
}

void skick__schema_cpop(s_cctx_t *cc, size_t saved)
{
    cc->path_len = saved;
    cc->path[saved] = '\0';
}

/* Escape schema text s for an error message (first 40 bytes) into buf; returns buf. */
const char *skick__schema_show(const char *s, char *buf, size_t size)
{
    s_sb_t sb;
    skick_schema_sb_init(&sb, buf, size, 40);
    skick_schema_sb_echo(&sb, s, strlen(s), false);
    return buf;
}

char *skick__schema_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL)
        memcpy(copy, s, n);
    return copy;
}

/* ------------------------------------------------------------------------------------------ */
/*  The tree: nodes, their summary, compiling and freeing them                              */

int skick_schema_prop_cmp(const void *a, const void *b)
{
    return strcmp(((const s_prop_t *) a)->name, ((const s_prop_t *) b)->name);
}

/* Compute the SKICK_SCHEMA_K_* summary and the required-in-properties marks after compilation. */
void skick__schema_finish_node(s_node_t *n)
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

s_node_t *skick__schema_node_new(void)
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
s_node_t *skick__schema_compile_node(s_cctx_t *cc, json_object *doc, int depth)
{
    if (depth > SKICK_SCHEMA_MAX_DEPTH) {
        skick__schema_cerr(cc, "schema nested deeper than %d levels", SKICK_SCHEMA_MAX_DEPTH);
        return NULL;
    }
    json_type t = json_object_get_type(doc);
    if (t != json_type_object && t != json_type_boolean) {
        skick__schema_cerr(cc, "schema must be an object or a boolean, got %s",
                           skick_schema_json_type_name(t));
        return NULL;
    }
    s_node_t *node = skick__schema_node_new();
    if (node == NULL) {
        skick__schema_cerr(cc, "out of memory");
        return NULL;
    }
    if (t == json_type_boolean) {
        node->is_false = !json_object_get_boolean(doc);
        return node;
    }
    for (struct lh_entry *e = json_object_get_object(doc)->head; e != NULL; e = e->next) {
        if (skick__schema_compile_keyword(cc, node, (const char *) lh_entry_k(e),
                                          (json_object *) lh_entry_v(e), depth) < 0) {
            skick__schema_node_free(node);
            return NULL;
        }
    }
    skick__schema_finish_node(node);
    return node;
}

static void s_list_free(s_list_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        skick__schema_node_free(list->v[i]);
    free(list->v);
}

static void s_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void skick__schema_node_free(s_node_t *n)
{
    if (n == NULL)
        return;
    json_object *owned[] = {n->minimum, n->maximum, n->ex_min, n->ex_max, n->multiple_of,
                            n->const_v, n->enum_v};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        json_object_put(owned[i]);
    skick__schema_regex_free(n->pattern);
    for (size_t i = 0; i < n->n_props; i++) {
        free(n->props[i].name);
        skick__schema_node_free(n->props[i].node);
    }
    free(n->props);
    for (size_t i = 0; i < n->n_pprops; i++) {
        skick__schema_regex_free(n->pprops[i].re);
        skick__schema_node_free(n->pprops[i].node);
    }
    free(n->pprops);
    for (size_t i = 0; i < n->n_deps; i++) {
        free(n->deps[i].name);
        s_names_free(n->deps[i].keys, n->deps[i].n_keys);
        skick__schema_node_free(n->deps[i].node);
    }
    free(n->deps);
    s_names_free(n->required, n->n_required);
    s_node_t *subs[] = {n->additional_props, n->property_names, n->items, n->additional_items,
                        n->contains, n->not_s, n->if_s, n->then_s, n->else_s};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        skick__schema_node_free(subs[i]);
    s_list_free(&n->tuple);
    s_list_free(&n->all_of);
    s_list_free(&n->any_of);
    s_list_free(&n->one_of);
    free(n);
}

/* ------------------------------------------------------------------------------------------ */
/*  The public handle                                                                       */

/* Wrap a compiled root (or NULL) into the public handle. */
skick_schema_t *skick__schema_wrap(s_cctx_t *cc, s_node_t *root)
{
    if (root == NULL)
        return NULL;
    skick_schema_t *schema = malloc(sizeof *schema);
    if (schema == NULL) {
        skick__schema_node_free(root);
        skick__schema_cerr(cc, "out of memory");
        return NULL;
    }
    schema->root = root;
    return schema;
}

void skick__schema_cctx_init(s_cctx_t *cc, char *err, size_t errlen)
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
    skick__schema_cctx_init(&cc, err, errlen);
    return skick__schema_wrap(&cc, skick__schema_compile_node(&cc, doc, 0));
}

void skick_schema_destroy(skick_schema_t **schema_p)
{
    if (schema_p == NULL || *schema_p == NULL)
        return;
    skick__schema_node_free((*schema_p)->root);
    free(*schema_p);
    *schema_p = NULL;
}
