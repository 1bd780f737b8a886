/*  skick_schema_shorthand - compile the Skick shorthand {"key": "type", "opt?": ...}  */

/*
 * The shorthand (docs/schema.md) describes one message: each key maps to a type name or to a
 * full subschema, "name?" is optional. It compiles to a strict object node (every required key,
 * no unlisted key), optionally pinning "action" to a constant. skick_schema_parse() reads the
 * text strictly with json-c and compiles it with the same rules. A document holding "$schema"
 * is compiled as a full schema instead (skick_schema.c).
 *
 * Ownership: the root node owns its props, required names and their nodes as soon as they are
 * stored, so a failure frees everything with skick__schema_node_free(). The caller's document
 * and text are borrowed.
 *
 * Thread-safety: no global state.
 */

#include "skick_schema_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Compile the shorthand value of one key: a type name, or a subschema. */
static s_node_t *s_short_value(s_cctx_t *cc, json_object *v)
{
    if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_boolean))
        return skick__schema_compile_node(cc, v, 1);
    if (!json_object_is_type(v, json_type_string)) {
        skick__schema_cerr(cc, "expected a type name or a schema object, got %s",
                           skick_schema_json_type_name(json_object_get_type(v)));
        return NULL;
    }
    const char *name = json_object_get_string(v);
    uint8_t bit = strcmp(name, "any") == 0 ? 0 : skick__schema_type_bit(name);
    char shown[168];
    if (bit == 0 && strcmp(name, "any") != 0) {
        skick__schema_cerr(cc, "unknown type name \"%s\"",
                           skick__schema_show(name, shown, sizeof shown));
        return NULL;
    }
    s_node_t *node = skick__schema_node_new();
    if (node == NULL) {
        skick__schema_cerr(cc, "out of memory");
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
        return skick__schema_cerr(cc, "key \"action\" must be \"string\" or {\"const\": \"%s\"}",
                                  skick__schema_show(action, shown, sizeof shown));
    skick__schema_node_free(p->node);
    p->node = skick__schema_node_new();
    if (p->node == NULL || (p->node->const_v = json_object_new_string(action)) == NULL)
        return skick__schema_cerr(cc, "out of memory");
    p->node->has_const = true;
    skick__schema_finish_node(p->node);
    return 0;
}

/* Add one shorthand entry "key" or "key?" to the root node. */
static int s_short_entry(s_cctx_t *cc, s_node_t *root, const char *key, json_object *v,
                         const char *action)
{
    size_t len = strlen(key);
    bool optional = len > 0 && key[len - 1] == '?';
    s_prop_t *p = &root->props[root->n_props];
    size_t saved = skick__schema_cpush(cc, key);
    p->node = s_short_value(cc, v);
    int rc = p->node != NULL ? 0 : -1;
    if (rc == 0 && (p->name = malloc(len + 1)) == NULL)
        rc = skick__schema_cerr(cc, "out of memory");
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
    if (rc == 0 && !optional
        && (root->required[root->n_required++] = skick__schema_strdup(p->name)) == NULL)
        rc = skick__schema_cerr(cc, "out of memory");
    skick__schema_cpop(cc, saved);
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
    if ((p->name = skick__schema_strdup("action")) == NULL
        || (p->node = skick__schema_node_new()) == NULL) {
        free(p->name);
        return skick__schema_cerr(cc, "out of memory");
    }
    root->n_props++;
    if ((p->node->const_v = json_object_new_string(action)) == NULL
        || (root->required[root->n_required++] = skick__schema_strdup("action")) == NULL)
        return skick__schema_cerr(cc, "out of memory");
    p->node->has_const = true;
    skick__schema_finish_node(p->node);
    return 0;
}

/* Build the strict object node of a shorthand doc (an object without "$schema"). */
static s_node_t *s_short_compile(s_cctx_t *cc, json_object *doc, const char *action)
{
    size_t n = (size_t) json_object_object_length(doc) + 1;
    s_node_t *root = skick__schema_node_new();
    if (root == NULL || (root->props = calloc(n, sizeof *root->props)) == NULL
        || (root->required = calloc(n, sizeof *root->required)) == NULL
        || (root->additional_props = skick__schema_node_new()) == NULL) {
        skick__schema_node_free(root);
        skick__schema_cerr(cc, "out of memory");
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
            rc = skick__schema_cerr(cc, "duplicate key \"%s\"",
                                    skick__schema_show(root->props[i].name, shown, 168));
    }
    if (rc < 0) {
        skick__schema_node_free(root);
        return NULL;
    }
    skick__schema_finish_node(root);
    return root;
}

skick_schema_t *skick_schema_compile_shorthand(json_object *doc, const char *action,
                                               char *err, size_t errlen)
{
    s_cctx_t cc;
    skick__schema_cctx_init(&cc, err, errlen);
    if (json_object_is_type(doc, json_type_object)
        && json_object_object_get_ex(doc, "$schema", NULL))
        return skick_schema_compile(doc, err, errlen);
    if (!json_object_is_type(doc, json_type_object)) {
        skick__schema_cerr(&cc, "shorthand must be a JSON object, got %s",
                           skick_schema_json_type_name(json_object_get_type(doc)));
        return NULL;
    }
    return skick__schema_wrap(&cc, s_short_compile(&cc, doc, action));
}

skick_schema_t *skick_schema_parse(const char *text, const char *action, char *err, size_t errlen)
{
    s_cctx_t cc;
    skick__schema_cctx_init(&cc, err, errlen);
    if (text == NULL) {
        skick__schema_cerr(&cc, "no schema text");
        return NULL;
    }
    size_t len = strlen(text);
    struct json_tokener *tok = json_tokener_new_ex(4 * SKICK_SCHEMA_MAX_DEPTH);
    if (tok == NULL || len >= INT32_MAX) {
        json_tokener_free(tok);
        skick__schema_cerr(&cc, tok == NULL ? "out of memory" : "schema text too long");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *doc = json_tokener_parse_ex(tok, text, (int) len + 1);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (jerr != json_tokener_success) {
        skick__schema_cerr(&cc, "JSON parse error at offset %zu: %s", end,
                           json_tokener_error_desc(jerr));
        return NULL;
    }
    skick_schema_t *schema = skick_schema_compile_shorthand(doc, action, err, errlen);
    json_object_put(doc);
    return schema;
}
