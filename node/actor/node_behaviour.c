/*  node_behaviour - what factories register, shared between identical actors

    A factory runs against a builder on the C stack (node_build). When it
    returns, the builder is compared with the last behaviour built for the
    same type; if equal (same names, handlers, schemas, hooks, daemons) the
    actor shares it, so 100k actors of one type hold one action table. A
    registration after the factory (from a handler) copies the behaviour
    first if it is shared. Schemas are compiled once per shard, keyed by
    (action, text), and live as long as the shard.
*/
#include "node_actor.h"

#include <stdlib.h>
#include <string.h>

static const char *const s_reserved[] = {"done", "monitor", "sentinel", "receive_reply",
                                         "end_conversation", "query_reply", NULL};

static bool s_is_reserved(const char *name)
{
    for (int i = 0; s_reserved[i]; i++)
        if (strcmp(name, s_reserved[i]) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------- */

static bool s_same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static char *s_dup_or_null(const char *s)
{
    return s ? node_strdup(s) : NULL;
}

/*  The document a session ships to its receptionist: socket schemas by
    action name ({} for "no schema": the message is the action alone) and
    query subschemas by name, parsed once per behaviour. */
static json_object *s_ship_doc(const node_behaviour_t *b)
{
    json_object *sockets = json_object_new_object(), *queries = json_object_new_object();
    bool any = false;
    for (int i = 0; i < b->nactions; i++) {
        if (!b->actions[i].socket)
            continue;
        const char *text = b->actions[i].socket_schema;
        json_object *doc = text ? json_tokener_parse(text) : json_object_new_object();
        json_object_object_add(sockets, b->actions[i].name, doc ? doc : json_object_new_object());
        any = true;
    }
    for (int i = 0; i < b->nqschemas; i++) {
        json_object *doc = json_tokener_parse(b->qschemas[i].text);
        json_object_object_add(queries, b->qschemas[i].name, doc ? doc : json_object_new_object());
        any = true;
    }
    if (!any) {
        json_object_put(sockets);
        json_object_put(queries);
        return NULL;
    }
    json_object *ship = json_object_new_object();
    json_object_object_add(ship, "sockets", sockets);
    json_object_object_add(ship, "queries", queries);
    return ship;
}

static bool s_equal(const node_behaviour_t *a, const node_behaviour_t *b)
{
    if (a->nactions != b->nactions || a->ndaemons != b->ndaemons ||
        a->on_start != b->on_start || a->on_stop != b->on_stop ||
        a->default_sentinel != b->default_sentinel)
        return false;
    for (int i = 0; i < a->nactions; i++) {
        const node_action_t *x = &a->actions[i], *y = &b->actions[i];
        if (x->fn != y->fn || x->schema != y->schema || x->concurrent != y->concurrent ||
            x->socket != y->socket || strcmp(x->name, y->name) != 0 ||
            !s_same_text(x->socket_schema, y->socket_schema))
            return false;
    }
    if (a->nqschemas != b->nqschemas)
        return false;
    for (int i = 0; i < a->nqschemas; i++)
        if (strcmp(a->qschemas[i].name, b->qschemas[i].name) != 0 ||
            strcmp(a->qschemas[i].text, b->qschemas[i].text) != 0)
            return false;
    for (int i = 0; i < a->ndaemons; i++) {
        const node_daemon_spec_t *x = &a->daemons[i], *y = &b->daemons[i];
        if (x->fn != y->fn || x->on_failure != y->on_failure || x->flags != y->flags ||
            strcmp(x->name, y->name) != 0)
            return false;
    }
    return true;
}

/*  A heap copy of b with owned names. */
static node_behaviour_t *s_clone(const node_behaviour_t *b)
{
    node_behaviour_t *c = node_calloc(1, sizeof *c);
    *c = *b;
    c->refs = 1;
    c->capactions = c->capdaemons = 0;
    c->actions = b->nactions ? node_malloc((size_t) b->nactions * sizeof *c->actions) : NULL;
    for (int i = 0; i < b->nactions; i++) {
        c->actions[i] = b->actions[i];
        c->actions[i].name = node_strdup(b->actions[i].name);
        c->actions[i].socket_schema = s_dup_or_null(b->actions[i].socket_schema);
    }
    c->capqschemas = 0;
    c->qschemas = b->nqschemas ? node_malloc((size_t) b->nqschemas * sizeof *c->qschemas) : NULL;
    for (int i = 0; i < b->nqschemas; i++) {
        c->qschemas[i].name = node_strdup(b->qschemas[i].name);
        c->qschemas[i].text = node_strdup(b->qschemas[i].text);
    }
    c->ship = s_ship_doc(c);
    c->daemons = b->ndaemons ? node_malloc((size_t) b->ndaemons * sizeof *c->daemons) : NULL;
    for (int i = 0; i < b->ndaemons; i++) {
        c->daemons[i] = b->daemons[i];
        c->daemons[i].name = node_strdup(b->daemons[i].name);
    }
    return c;
}

node_behaviour_t *node_behaviour_finish(node_shard_t *sh, const node_type_t *type,
                                        const node_behaviour_t *built)
{
    (void) sh;
    node_type_t *t = (node_type_t *) type;
    if (t && t->cached && s_equal(t->cached, built)) {
        t->cached->refs++;
        return t->cached;
    }
    node_behaviour_t *b = s_clone(built);
    if (t) {
        node_behaviour_unref(&t->cached);
        t->cached = b;
        b->refs++;
    }
    return b;
}

void node_behaviour_unref(node_behaviour_t **b_p)
{
    node_behaviour_t *b = *b_p;
    if (!b)
        return;
    *b_p = NULL;
    if (--b->refs > 0)
        return;
    for (int i = 0; i < b->nactions; i++) {
        free(b->actions[i].name);
        free(b->actions[i].socket_schema);
    }
    for (int i = 0; i < b->ndaemons; i++)
        free(b->daemons[i].name);
    for (int i = 0; i < b->nqschemas; i++) {
        free(b->qschemas[i].name);
        free(b->qschemas[i].text);
    }
    free(b->actions);
    free(b->daemons);
    free(b->qschemas);
    json_object_put(b->ship);
    free(b);
}

node_behaviour_t *node_behaviour_writable(skick_actor_t *a)
{
    if (a->flags & NODE_A_BUILDING)
        return a->beh;
    if (a->beh->refs > 1) {
        node_behaviour_t *c = s_clone(a->beh);
        node_behaviour_unref(&a->beh);
        a->beh = c;
    }
    return a->beh;
}

const node_action_t *node_behaviour_find(const node_behaviour_t *b, const char *name)
{
    for (int i = 0; i < b->nactions; i++)
        if (strcmp(b->actions[i].name, name) == 0)
            return &b->actions[i];
    return NULL;
}

/*  Compile text for action. A shorthand schema also admits the two keys the
    runtime adds to a conversation opener ("cid?" and "sender?", strings), so
    that an action with a schema can be called; a full JSON Schema ("$schema")
    is taken as written. */
static skick_schema_t *s_compile_action_schema(const char *text, const char *action,
                                               char *err, size_t errlen)
{
    json_object *doc = json_tokener_parse(text);
    if (!doc || !json_object_is_type(doc, json_type_object) ||
        json_object_object_get_ex(doc, "$schema", NULL)) {
        json_object_put(doc);
        return skick_schema_parse(text, action, err, errlen);
    }
    static const char *const conv_keys[][2] = {{"cid", "cid?"}, {"sender", "sender?"}};
    for (size_t i = 0; i < 2; i++)
        if (!json_object_object_get_ex(doc, conv_keys[i][0], NULL) &&
            !json_object_object_get_ex(doc, conv_keys[i][1], NULL))
            json_object_object_add(doc, conv_keys[i][1], json_object_new_string("string"));
    skick_schema_t *s = skick_schema_compile_shorthand(doc, action, err, errlen);
    json_object_put(doc);
    return s;
}

const skick_schema_t *node_schema_cached(node_shard_t *sh, const char *text,
                                         const char *action)
{
    return node_schema_cached_as(sh, text, action, false);
}

const skick_schema_t *node_schema_cached_as(node_shard_t *sh, const char *text,
                                            const char *action, bool socket)
{
    size_t tl = strlen(text), al = strlen(action);
    char *key = node_malloc(tl + al + 3);
    key[0] = socket ? 's' : 'a'; /* client messages get no conversation keys */
    memcpy(key + 1, action, al);
    key[al + 1] = '\n';
    memcpy(key + al + 2, text, tl + 1);
    skick_schema_t *s = node_strmap_get(&sh->schemas, key);
    if (!s) {
        char err[256];
        s = socket ? skick_schema_parse(text, action, err, sizeof err)
                   : s_compile_action_schema(text, action, err, sizeof err);
        if (s)
            node_strmap_put(&sh->schemas, key, s);
        else
            SKICK_LOG(SKICK_LOG_ERROR, "schema", "schema for action '%.40s' rejected: %s",
                      action, err);
    }
    free(key);
    return s;
}

/* ------------------------------------------------------------------------- */
/* The registration API                                                       */

/*  Rebuild the shipping document after a registration outside the factory. */
static void s_refresh_ship(node_behaviour_t *b)
{
    json_object_put(b->ship);
    b->ship = s_ship_doc(b);
}

/*  Make room for one more entry. A builder's first arrays live on
    node_build's stack with capacity stack_cap: those are copied, never
    realloc'd or freed; later (larger) ones are on the heap. */
static void s_grow(void **arr, int *cap, int n, size_t size, bool building, int stack_cap)
{
    if (!building) {
        *arr = node_realloc(*arr, (size_t) (n + 1) * size);
        return;
    }
    if (n < *cap)
        return;
    int ncap = *cap ? *cap * 2 : 8;
    void *bigger = node_malloc((size_t) ncap * size);
    if (n)
        memcpy(bigger, *arr, (size_t) n * size);
    if (*cap > stack_cap)
        free(*arr); /* already on the heap: an earlier growth */
    *arr = bigger;
    *cap = ncap;
}

int node_behaviour_add_action(skick_actor_t *self, const char *name, const char *schema,
                              skick_handler_fn *fn, bool concurrent, bool socket,
                              const char *socket_schema)
{
    if (!name || !*name || !fn) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    if (s_is_reserved(name)) {
        SKICK_LOG(SKICK_LOG_ERROR, "actor",
                  "%s: action name '%s' is reserved; use skick_sentinel_handler or "
                  "skick_default_sentinel for sentinels",
                  self->addr, name);
        skick_set_errno(SKICK_ERESERVED);
        return -1;
    }
    const skick_schema_t *compiled = NULL;
    if (schema) {
        compiled = node_schema_cached(self->shard, schema, name);
        if (!compiled) {
            skick_set_errno(SKICK_ESCHEMA);
            return -1;
        }
    }
    node_behaviour_t *b = node_behaviour_writable(self);
    bool building = (self->flags & NODE_A_BUILDING) != 0;
    for (int i = 0; i < b->nactions; i++)
        if (strcmp(b->actions[i].name, name) == 0) {
            b->actions[i].fn = fn;
            b->actions[i].schema = compiled;
            b->actions[i].concurrent = concurrent;
            b->actions[i].socket = socket;
            if (!building)
                free(b->actions[i].socket_schema);
            b->actions[i].socket_schema =
                building ? (char *) socket_schema : s_dup_or_null(socket_schema);
            if (!building && socket)
                s_refresh_ship(b);
            return 0;
        }
    if (building)
        s_grow((void **) &b->actions, &b->capactions, b->nactions, sizeof *b->actions, true,
               NODE_BUILD_ACTIONS);
    else
        b->actions = node_realloc(b->actions, (size_t) (b->nactions + 1) * sizeof *b->actions);
    /* While building, names are borrowed until node_behaviour_finish copies them. */
    b->actions[b->nactions++] = (node_action_t){
        building ? (char *) name : node_strdup(name), fn, compiled, concurrent, socket,
        building ? (char *) socket_schema : s_dup_or_null(socket_schema)};
    if (!building && socket)
        s_refresh_ship(b);
    return 0;
}

int skick_action(skick_actor_t *self, const char *name, const char *schema,
                 skick_handler_fn *fn)
{
    return node_behaviour_add_action(self, name, schema, fn, false, false, NULL);
}

int skick_conversation(skick_actor_t *self, const char *name, const char *schema,
                       skick_handler_fn *fn)
{
    return node_behaviour_add_action(self, name, schema, fn, true, false, NULL);
}

int skick_query_schema(skick_actor_t *self, const char *name, const char *schema)
{
    char err[200];
    json_object *doc = schema ? json_tokener_parse(schema) : NULL;
    skick_schema_t *check = doc ? skick_schema_compile(doc, err, sizeof err) : NULL;
    json_object_put(doc);
    if (!name || !*name || !check) {
        SKICK_LOG(SKICK_LOG_ERROR, "session", "%s: query schema '%.40s' rejected: %s",
                  self->addr, name ? name : "(null)", check ? "bad name" : err);
        skick_schema_destroy(&check);
        skick_set_errno(check ? SKICK_EINVAL : SKICK_ESCHEMA);
        return -1;
    }
    skick_schema_destroy(&check);
    node_behaviour_t *b = node_behaviour_writable(self);
    bool building = (self->flags & NODE_A_BUILDING) != 0;
    for (int i = 0; i < b->nqschemas; i++)
        if (strcmp(b->qschemas[i].name, name) == 0) {
            if (!building)
                free(b->qschemas[i].text);
            b->qschemas[i].text = building ? (char *) schema : node_strdup(schema);
            if (!building)
                s_refresh_ship(b);
            return 0;
        }
    s_grow((void **) &b->qschemas, &b->capqschemas, b->nqschemas, sizeof *b->qschemas,
           building, 0);
    b->qschemas[b->nqschemas++] = (node_qschema_t){
        building ? (char *) name : node_strdup(name),
        building ? (char *) schema : node_strdup(schema)};
    if (!building)
        s_refresh_ship(b);
    return 0;
}

void skick_on_start(skick_actor_t *self, skick_hook_fn *fn)
{
    node_behaviour_writable(self)->on_start = fn;
}

void skick_on_stop(skick_actor_t *self, skick_hook_fn *fn)
{
    node_behaviour_writable(self)->on_stop = fn;
}

void skick_default_sentinel(skick_actor_t *self, skick_handler_fn *fn)
{
    node_behaviour_writable(self)->default_sentinel = fn;
}

int skick_daemon(skick_actor_t *self, const char *name, skick_hook_fn *fn, int flags,
                 skick_hook_fn *on_failure)
{
    if (!name || !*name || !fn || (flags & ~(SKICK_RESTART | SKICK_DETACHED))) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    if (!(self->flags & NODE_A_BUILDING)) {
        SKICK_LOG(SKICK_LOG_ERROR, "actor", "%s: daemons are registered in the factory",
                  self->addr);
        skick_set_errno(SKICK_ECONTEXT);
        return -1;
    }
    node_behaviour_t *b = self->beh;
    s_grow((void **) &b->daemons, &b->capdaemons, b->ndaemons, sizeof *b->daemons, true,
           NODE_BUILD_DAEMONS);
    b->daemons[b->ndaemons++] = (node_daemon_spec_t){(char *) name, fn, on_failure, flags};
    return 0;
}

int skick_sentinel_handler(skick_actor_t *self, const char *address, skick_handler_fn *fn)
{
    node_ref_t ref;
    if (!address || node_parse_addr(address, &ref) != 0) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    node_extra_t *x = node_extra(self);
    if (!fn) {
        if (x->routes)
            node_strmap_del(x->routes, address);
        return 0;
    }
    if (!x->routes) {
        x->routes = node_malloc(sizeof *x->routes);
        node_strmap_init(x->routes);
    }
    node_strmap_put(x->routes, address, (void *) fn);
    return 0;
}
