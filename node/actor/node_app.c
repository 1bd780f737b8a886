/*  node_app - modules, actor types, and the shard actor

    SKICK_MODULE puts a constructor in the program or .so that records the
    module here when it is loaded (before main, or during dlopen). A shard
    then runs every recorded module's init against its skick_app_t, which
    collects actor types and the shard hooks. Two modules registering the
    same type is an error at start, never a silent override.

    The shard actor ("S:S") runs the application's on_start hook as its own
    on_start, answers "ping", "sync" and the seed's "spawn" requests
    (validated, so the seed's B1 crash cannot happen), and on stop runs the
    application's on_stop hook and then stops every other actor.

    "sync" is a barrier for senders on other shards: it is applied when its
    envelope arrives (like spawn), so the "synced" answer leaves after the
    dead letters of everything the same sender sent before it, on the same
    ordered link (the AMQP bridge's ack rule, bridge/bridge_confirm.c).
*/
#include "node_actor.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_MAX_MODULES 256

typedef struct {
    const char *name;           /* module name (static) */
    skick_module_init_fn *init; /* its init */
    const char *origin;         /* file it came from, or NULL (linked in) */
} node_module_t;

static node_module_t s_modules[NODE_MAX_MODULES];
static size_t s_nmodules;
static const char *s_loading; /* file being dlopen'd, for attribution */

void skick_module_register(const char *name, skick_module_init_fn *init)
{
    if (s_nmodules == NODE_MAX_MODULES) {
        fprintf(stderr, "skick: too many modules (limit %d)\n", NODE_MAX_MODULES);
        return;
    }
    s_modules[s_nmodules++] = (node_module_t){name, init, s_loading};
}

int node_app_load_file(const char *path, char *err, size_t errlen)
{
    size_t before = s_nmodules;
    s_loading = path;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    s_loading = NULL;
    if (!h) {
        snprintf(err, errlen, "cannot load application module %s: %s", path, dlerror());
        return -1;
    }
    if (s_nmodules == before) {
        snprintf(err, errlen, "%s defines no SKICK_MODULE (or it was already loaded)", path);
        return -1;
    }
    /* The handle is kept open for the life of the process: its code runs. */
    return 0;
}

skick_app_t *node_app_new(void)
{
    skick_app_t *app = node_calloc(1, sizeof *app);
    node_strmap_init(&app->types);
    node_strmap_init(&app->sessions);
    return app;
}

static void s_free_type(void *p)
{
    node_type_t *t = p;
    node_behaviour_unref(&t->cached);
    free(t->name);
    free(t);
}

void node_app_destroy(skick_app_t **app_p)
{
    skick_app_t *app = *app_p;
    if (!app)
        return;
    *app_p = NULL;
    node_strmap_free(&app->types, s_free_type);
    if (app->sessions_free)
        app->sessions_free(app);
    else
        node_strmap_free(&app->sessions, NULL);
    free(app);
}

static int s_app_error;

int node_app_load_modules(skick_app_t *app)
{
    s_app_error = 0;
    for (size_t i = 0; i < s_nmodules; i++) {
        app->current_module = s_modules[i].name;
        s_modules[i].init(app);
    }
    app->current_module = NULL;
    return s_app_error ? -1 : 0;
}

int skick_actor(skick_app_t *app, const char *type, skick_factory_fn *factory)
{
    size_t n = type ? strnlen(type, 129) : 0;
    if (n == 0 || n > 128 || !factory) {
        SKICK_LOG(SKICK_LOG_ERROR, "app", "module %s: invalid actor type registration",
                  app->current_module ? app->current_module : "?");
        skick_set_errno(SKICK_EINVAL);
        s_app_error = 1;
        return -1;
    }
    node_type_t *old = node_strmap_get(&app->types, type);
    if (old) {
        SKICK_LOG(SKICK_LOG_ERROR, "app", "actor type '%s' is registered by both %s and %s",
                  type, old->module ? old->module : "?",
                  app->current_module ? app->current_module : "?");
        skick_set_errno(SKICK_EINVAL);
        s_app_error = 1;
        return -1;
    }
    node_type_t *t = node_calloc(1, sizeof *t);
    t->index = ++app->ntypes;
    t->name = node_strdup(type);
    t->factory = factory;
    t->module = app->current_module;
    node_strmap_put(&app->types, type, t);
    return 0;
}

static void s_add_hook(skick_app_t *app, skick_hook_fn **hooks, int *n, skick_hook_fn *fn)
{
    if (!fn)
        return;
    if (*n == NODE_MAX_HOOKS) {
        SKICK_LOG(SKICK_LOG_ERROR, "app", "module %s: more than %d shard hooks",
                  app->current_module ? app->current_module : "?", NODE_MAX_HOOKS);
        s_app_error = 1;
        return;
    }
    hooks[(*n)++] = fn;
}

void skick_app_on_start(skick_app_t *app, skick_hook_fn *fn)
{
    s_add_hook(app, app->on_start, &app->non_start, fn);
}

void skick_app_on_stop(skick_app_t *app, skick_hook_fn *fn)
{
    s_add_hook(app, app->on_stop, &app->non_stop, fn);
}

const node_type_t *node_app_type(skick_app_t *app, const char *name)
{
    return app ? node_strmap_get(&app->types, name) : NULL;
}

/* ------------------------------------------------------------------------- */
/* The shard actor                                                            */

static const char s_spawn_schema[] =
    "{\"type\": \"string\", \"name?\": \"string\", \"message?\": \"object\","
    " \"add_monitor?\": {\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"null\"},"
    "  {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"maxItems\": 64}]},"
    " \"remote?\": {\"enum\": [\"mixed\", \"local\", \"remote\"]},"
    " \"sender?\": \"string\", \"cid?\": \"string\"}";

void node_spawn_failed(node_shard_t *sh, json_object *msg, const char *why)
{
    node_ref_t about;
    if (node_parse_addr(skick_get_string(msg, "name", ""), &about) != 0)
        return; /* no address was promised to anyone */
    char text[160];
    snprintf(text, sizeof text, "spawn failed: %s", why);
    json_object *am = NULL;
    if (!json_object_object_get_ex(msg, "add_monitor", &am) || !am)
        return;
    if (json_object_is_type(am, json_type_string)) {
        node_sentinel_to(sh, json_object_get_string(am), about, text);
        return;
    }
    for (size_t i = 0; i < json_object_array_length(am) && i < 64; i++)
        node_sentinel_to(sh, json_object_get_string(json_object_array_get_idx(am, i)), about,
                         text);
}

static void s_on_spawn(skick_actor_t *self, json_object *msg)
{
    node_shard_t *sh = self->shard;
    const char *type_name = skick_get_string(msg, "type", "");
    const node_type_t *type = node_app_type(sh->app, type_name);
    const char *remote = skick_get_string(msg, "remote", "mixed");
    if (!type || strcmp(remote, "remote") == 0) {
        SKICK_LOG(SKICK_LOG_WARNING, "shard", "spawn request for unknown type '%.64s'",
                  type_name);
        node_refuse_opener(sh, msg, SKICK_ENOTYPE, "unknown actor type");
        node_spawn_failed(sh, msg, "unknown actor type");
        return;
    }
    uint64_t want = 0;
    const char *name = skick_get_string(msg, "name", NULL);
    if (name) {
        node_ref_t ref;
        if (node_parse_addr(name, &ref) != 0 || ref.shard != sh->id || ref.id == sh->id ||
            node_u64map_get(&sh->actors, ref.id)) {
            node_refuse_opener(sh, msg, SKICK_EINVAL, "unusable address in \"name\"");
            node_spawn_failed(sh, msg, "unusable address");
            return;
        }
        want = ref.id;
    }
    const char *mons[64];
    size_t nmon = 0;
    json_object *am = NULL;
    if (json_object_object_get_ex(msg, "add_monitor", &am) && am) {
        if (json_object_is_type(am, json_type_string))
            mons[nmon++] = json_object_get_string(am);
        else
            for (size_t i = 0; i < json_object_array_length(am) && nmon < 64; i++)
                mons[nmon++] = json_object_get_string(json_object_array_get_idx(am, i));
    }
    json_object *init = NULL;
    if (json_object_object_get_ex(msg, "message", &init))
        init = json_object_get(init);
    skick_actor_t *a = node_spawn(sh, type, type->factory, &init, (node_ref_t){0, 0}, mons,
                                  nmon, 0, want);
    a->parent = node_cur->msg->from; /* the requester may send it "done" */
    /* A requester that named the address recorded its own actors' watches
       when the request left (node_watch_sent); everyone else hears now. */
    node_announce_monitors(sh, a, name ? a->parent.shard : 0);
    if (node_is_opener(msg)) {
        json_object *reply = json_object_new_object();
        json_object_object_add(reply, "address", json_object_new_string(a->addr));
        skick_reply(self, msg, &reply);
    }
}

static void s_on_ping(skick_actor_t *self, json_object *msg)
{
    json_object *pong = json_object_new_object();
    json_object_object_add(pong, "message", json_object_new_string("pong"));
    skick_reply(self, msg, &pong);
}

static const char s_sync_schema[] = "{\"token\": \"string\"}";

static void s_on_sync(skick_actor_t *self, json_object *msg)
{
    const char *to = skick_sender(self);
    if (!to[0])
        return; /* from outside the actor system: nobody to answer */
    json_object *synced = json_object_new_object();
    json_object_object_add(synced, "action", json_object_new_string("synced"));
    json_object_object_add(synced, "token",
                           json_object_new_string(skick_get_string(msg, "token", "")));
    node_ref_t ref;
    if (node_parse_addr(to, &ref) == 0) /* control: a full mailbox does not refuse it */
        node_deliver_ref(self->shard, node_ref_of(self), ref, &synced, true);
    json_object_put(synced);
}

static void s_shard_on_start(skick_actor_t *self)
{
    node_shard_t *sh = self->shard;
    for (int i = 0; sh->app && i < sh->app->non_start; i++) {
        sh->app->on_start[i](self); /* may suspend */
        if (self->flags & NODE_A_STOPPING)
            break;
    }
    if (self->flags & NODE_A_STOPPING) {
        SKICK_LOG(SKICK_LOG_ERROR, "shard", "the application's on_start hook failed: %s",
                  self->x && self->x->fail_reason ? self->x->fail_reason : "stopped");
        sh->exit_status = 1;
        node_shard_stop(sh);
    }
}

/*  Ask every actor of sh but `except` to stop. */
static void s_stop_all(node_shard_t *sh, skick_actor_t *except)
{
    for (size_t i = 0; i < sh->actors.cap; i++)
        if (sh->actors.keys[i] && sh->actors.vals[i] != except)
            node_request_stop(sh->actors.vals[i], NODE_END_CANCELLATION);
}

static void s_shard_on_stop(skick_actor_t *self)
{
    node_shard_t *sh = self->shard;
    for (int i = sh->app ? sh->app->non_stop - 1 : -1; i >= 0; i--)
        sh->app->on_stop[i](self);
    sh->stopping = true;
    s_stop_all(sh, self);
}

static void s_shard_factory(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_on_start(self, s_shard_on_start);
    skick_on_stop(self, s_shard_on_stop);
    skick_action(self, "spawn", s_spawn_schema, s_on_spawn);
    skick_action(self, "sync", s_sync_schema, s_on_sync);
    for (const node_shard_action_t *sa = self->shard->shard_actions; sa; sa = sa->next)
        skick_action(self, sa->name, sa->schema, sa->fn); /* from the layers above */
    skick_conversation(self, "ping", NULL, s_on_ping);
}

void node_shard_add_action(node_shard_t *sh, const char *name, const char *schema,
                           skick_handler_fn *fn)
{
    node_shard_action_t **tail = &sh->shard_actions;
    while (*tail)
        tail = &(*tail)->next;
    *tail = node_malloc(sizeof **tail);
    **tail = (node_shard_action_t){.name = name, .schema = schema, .fn = fn};
}

/*  Spawn requests: "spawn" and the actions the layers above added (which
    spawn too: spawn_session), and the "sync" barrier, none of which
    suspends. */
static bool s_applies_now(node_shard_t *sh, const char *action)
{
    if (strcmp(action, "spawn") == 0 || strcmp(action, "sync") == 0)
        return true;
    for (const node_shard_action_t *sa = sh->shard_actions; sa; sa = sa->next)
        if (strcmp(sa->name, action) == 0)
            return true;
    return false;
}

bool node_shard_apply_now(node_shard_t *sh, node_ref_t from, json_object **body)
{
    skick_actor_t *sa = sh->shard_actor;
    const char *action = skick_get_string(*body, "action", "");
    if (!sa || (sa->flags & (NODE_A_STOPPING | NODE_A_STOPPED)) || !(sa->flags & NODE_A_STARTED) ||
        !s_applies_now(sh, action))
        return false;
    const node_action_t *act = node_behaviour_find(sa->beh, action);
    if (!act || (act->schema && !skick_schema_valid(act->schema, *body)))
        return false; /* the mailbox path refuses it with the usual answers */
    node_msg_t m = {.body = *body, .from = from, .control = true};
    node_exec_t exec = {.actor = sa, .msg = &m, .kind = NODE_EXEC_HOST};
    node_exec_t *saved = node_cur;
    node_cur = &exec;
    act->fn(sa, *body); /* spawning never suspends: factories run synchronously */
    node_cur = saved;
    sh->stats.delivered++;
    json_object_put(*body);
    *body = NULL;
    return true;
}

void node_shard_start(node_shard_t *sh)
{
    node_shard_t *saved = node_shard;
    node_shard = sh;
    sh->shard_actor = node_spawn(sh, NULL, s_shard_factory, NULL, (node_ref_t){0, 0}, NULL,
                                 0, NODE_A_SHARD, sh->id);
    node_shard = saved;
}

void node_shard_stop(node_shard_t *sh)
{
    if (sh->stopping)
        return;
    sh->stopping = true;
    skick_actor_t *shard = node_u64map_get(&sh->actors, sh->id);
    if (shard) {
        node_request_stop(shard, NODE_END_CANCELLATION); /* its on_stop stops the rest */
    } else {
        s_stop_all(sh, NULL);
    }
    if (sh->live == 0)
        sh->exit_loop = true;
}
