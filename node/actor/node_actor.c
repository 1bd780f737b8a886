/*  node_actor - the actor table: lookup, identity, state and spawning

    An actor is created in two steps so that layers above can attach their
    kind before any user code runs: node_actor_new enters it in the table,
    node_actor_start runs its factory and schedules its start. Placement on
    another shard (skick_spawn of a type this shard lacks, SKICK_REMOTE) goes
    through sh->transport. Delivery and dispatch are node_mailbox.c's.
*/
#include "node_actor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* Lookup and identity                                                        */

node_ref_t node_ref_of(const skick_actor_t *a)
{
    return (node_ref_t){a->shard->id, a->id};
}

skick_actor_t *node_actor_by_ref(node_shard_t *sh, node_ref_t ref)
{
    if (ref.shard != sh->id || ref.id == 0)
        return NULL;
    return node_u64map_get(&sh->actors, ref.id);
}

skick_actor_t *node_actor_lookup(node_shard_t *sh, const char *addr)
{
    node_ref_t ref;
    if (node_parse_addr(addr, &ref) != 0)
        return NULL;
    return node_actor_by_ref(sh, ref);
}

node_extra_t *node_extra(skick_actor_t *a)
{
    if (!a->x)
        a->x = node_calloc(1, sizeof *a->x);
    return a->x;
}

const char *skick_self(skick_actor_t *self)
{
    return self->addr;
}

const char *skick_type(skick_actor_t *self)
{
    if (self->flags & NODE_A_SHARD)
        return "shard";
    return self->type ? self->type->name : "anonymous";
}

const char *skick_sender(skick_actor_t *self)
{
    static __thread char buf[SKICK_ADDR_LEN + 1];
    node_exec_t *e = node_cur;
    if (!e || e->actor != self || !e->msg || !e->msg->from.id)
        return "";
    node_format_addr(buf, e->msg->from.shard, e->msg->from.id);
    return buf;
}

bool node_sent_by(skick_actor_t *self, node_ref_t ref)
{
    node_exec_t *e = node_cur;
    return ref.id && e && e->actor == self && e->msg && e->msg->from.id == ref.id &&
           e->msg->from.shard == ref.shard;
}

int64_t skick_now(skick_actor_t *self)
{
    return node_now(self->shard);
}

void skick_actor_log(skick_actor_t *self, int level, const char *fmt, ...)
{
    if (level < skick_log_threshold)
        return;
    char tag[64];
    snprintf(tag, sizeof tag, "%s", skick_type(self));
    va_list ap;
    va_start(ap, fmt);
    skick_log_vwrite(level, tag, self->addr, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------- */
/* State                                                                      */

void *skick_state_new(skick_actor_t *self, size_t size, void (*destructor)(void *state))
{
    if (self->state && self->state_free)
        self->state_free(self->state);
    free(self->state);
    self->state = node_calloc(1, size);
    self->state_free = destructor;
    return self->state;
}

void *skick_state(skick_actor_t *self)
{
    return self->state;
}

/* ------------------------------------------------------------------------- */
/* Spawning                                                                   */

bool node_add_monitor(skick_actor_t *a, node_ref_t ref)
{
    for (uint32_t i = 0; i < a->nmon; i++)
        if (a->monitors[i].id == ref.id && a->monitors[i].shard == ref.shard)
            return false;
    if (a->nmon == a->capmon) {
        a->capmon = a->capmon ? a->capmon * 2 : 1;
        a->monitors = node_realloc(a->monitors, a->capmon * sizeof *a->monitors);
    }
    a->monitors[a->nmon++] = ref;
    return true;
}

void node_announce_monitors(node_shard_t *sh, skick_actor_t *a, uint64_t recorded_by)
{
    const node_transport_t *t = sh->transport;
    for (uint32_t i = 0; t && i < a->nmon; i++)
        if (a->monitors[i].shard != recorded_by)
            t->watch_tell(sh, node_ref_of(a), a->monitors[i]);
}

void node_build(skick_actor_t *a, skick_factory_fn *factory, json_object *init)
{
    node_shard_t *sh = a->shard;
    /* Registrations land in arrays on this stack frame; node_behaviour_finish
       shares or copies them, so a typical spawn allocates nothing here. */
    node_action_t actions[NODE_BUILD_ACTIONS];
    node_daemon_spec_t daemons[NODE_BUILD_DAEMONS];
    node_behaviour_t builder = {.actions = actions, .capactions = NODE_BUILD_ACTIONS,
                                .daemons = daemons, .capdaemons = NODE_BUILD_DAEMONS};
    a->beh = &builder;
    a->flags |= NODE_A_BUILDING;
    node_exec_t exec = {.actor = a, .kind = NODE_EXEC_HOST};
    node_exec_t *saved = node_cur;
    node_cur = &exec;
    json_object *empty = NULL;
    if (!init)
        init = empty = json_object_new_object();
    factory(a, init);
    json_object_put(empty);
    node_cur = saved;
    a->flags &= (uint16_t) ~NODE_A_BUILDING;
    a->beh = node_behaviour_finish(sh, a->type, &builder);
    if (builder.actions != actions)
        free(builder.actions);
    if (builder.daemons != daemons)
        free(builder.daemons);
    free(builder.qschemas);
    if (exec.failed)
        node_request_stop(a, NODE_END_EXCEPTION);
}

skick_actor_t *node_actor_new(node_shard_t *sh, const node_type_t *type, node_ref_t parent,
                              uint16_t flags, uint64_t want_id)
{
    skick_actor_t *a = node_calloc(1, sizeof *a);
    if (want_id && !node_u64map_get(&sh->actors, want_id))
        a->id = want_id;
    else
        do
            a->id = node_random64();
        while (a->id == 0 || a->id == sh->id || node_u64map_get(&sh->actors, a->id));
    a->shard = sh;
    a->type = type;
    a->parent = parent;
    a->flags = flags;
    node_format_addr(a->addr, sh->id, a->id);
    node_u64map_put(&sh->actors, a->id, a);
    sh->live++;
    sh->stats.spawned++;
    node_type_counts_t *tc = node_type_counts(a);
    if (tc)
        tc->spawned++;
    return a;
}

void node_actor_start(skick_actor_t *a, skick_factory_fn *factory, json_object **init)
{
    json_object *msg = init ? *init : NULL;
    if (init)
        *init = NULL;
    node_build(a, factory, msg);
    json_object_put(msg);
    node_schedule(a);
}

skick_actor_t *node_spawn(node_shard_t *sh, const node_type_t *type,
                          skick_factory_fn *factory, json_object **init, node_ref_t parent,
                          const char *const *monitors, size_t nmon, uint16_t extra_flags,
                          uint64_t want_id)
{
    skick_actor_t *a = node_actor_new(sh, type, parent, extra_flags, want_id);
    if (parent.id)
        node_add_monitor(a, parent);
    for (size_t i = 0; i < nmon; i++) {
        node_ref_t ref;
        if (monitors[i] && node_parse_addr(monitors[i], &ref) == 0)
            node_add_monitor(a, ref);
        else
            SKICK_LOG(SKICK_LOG_WARNING, "spawn", "ignoring invalid monitor address");
    }
    node_actor_start(a, factory, init);
    return a;
}

static skick_addr_t s_spawn(skick_actor_t *self, const char *type_name, json_object **init,
                            int flags, const char *const *monitors, size_t n)
{
    skick_addr_t out = {{0}};
    node_shard_t *sh = self->shard;
    if (sh->stopping || (self->flags & (NODE_A_STOPPING | NODE_A_STOPPED))) {
        if (init) {
            json_object_put(*init);
            *init = NULL;
        }
        skick_set_errno(SKICK_ESTOPPED); /* nothing new while shutting down */
        return out;
    }
    const node_type_t *type = type_name ? node_app_type(sh->app, type_name) : NULL;
    if (init && *init && !json_object_is_type(*init, json_type_object)) {
        json_object_put(*init);
        *init = NULL;
        skick_set_errno(SKICK_EINVAL);
        return out;
    }
    if (!type || (flags & SKICK_REMOTE)) {
        /* Remote placement: a random back shard advertising the type. */
        const node_transport_t *t = sh->transport;
        uint64_t where = (t && type_name && !(flags & SKICK_LOCAL)) ? t->pick_type(sh, type_name)
                                                                    : 0;
        if (where) {
            node_ref_t parent = (flags & SKICK_NO_MONITOR) ? (node_ref_t){0, 0} : node_ref_of(self);
            return t->spawn(self, where, type_name, init, parent, monitors, n);
        }
        if (init) {
            json_object_put(*init);
            *init = NULL;
        }
        skick_set_errno(SKICK_ENOTYPE);
        SKICK_LOG(SKICK_LOG_WARNING, "spawn", "%s: no shard has actor type '%.64s'",
                  self->addr, type_name ? type_name : "(null)");
        return out;
    }
    node_ref_t parent = (flags & SKICK_NO_MONITOR) ? (node_ref_t){0, 0} : node_ref_of(self);
    skick_actor_t *child = node_spawn(sh, type, type->factory, init, parent, monitors, n, 0, 0);
    node_announce_monitors(sh, child, 0); /* monitors on other shards: tell theirs */
    if (flags & SKICK_NO_MONITOR)
        child->parent = node_ref_of(self); /* still the parent: may send done */
    memcpy(out.str, child->addr, sizeof out.str);
    return out;
}

skick_addr_t skick_spawn(skick_actor_t *self, const char *type, json_object **init, int flags)
{
    return s_spawn(self, type, init, flags, NULL, 0);
}

skick_addr_t skick_spawn_monitored(skick_actor_t *self, const char *type,
                                   json_object **init, int flags,
                                   const char *const *monitors, size_t n)
{
    return s_spawn(self, type, init, flags, monitors, n);
}
