/*  node_service - the service registry: names to provider addresses

    Local providers live here; remote ones are read from the directory the
    broker relays (node/cluster, through sh->transport), to which every
    change of ours is published. A provider that stops leaves every service it had
    (node_services_drop_actor from teardown), so get_service never returns a
    dead local address and never fails the way the seed did (B9).
*/
#include "node_actor.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    node_ref_t *refs; /* providers */
    size_t n, cap;
} node_service_t;

static void s_free(void *p)
{
    node_service_t *s = p;
    free(s->refs);
    free(s);
}

void node_services_init(node_shard_t *sh)
{
    node_strmap_init(&sh->services);
}

void node_services_fini(node_shard_t *sh)
{
    node_strmap_free(&sh->services, s_free);
}

/*  Our services changed: the cluster, if any, advertises them again. */
static void s_changed(node_shard_t *sh)
{
    if (sh->transport)
        sh->transport->services_changed(sh);
}

static bool s_valid_name(const char *name)
{
    size_t n = name ? strnlen(name, 257) : 0;
    return n > 0 && n <= 256;
}

int skick_register_service(skick_actor_t *self, const char *name)
{
    if (!s_valid_name(name)) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    if (self->flags & (NODE_A_STOPPING | NODE_A_STOPPED)) {
        skick_set_errno(SKICK_ESTOPPED);
        return -1;
    }
    node_shard_t *sh = self->shard;
    node_service_t *s = node_strmap_get(&sh->services, name);
    if (!s) {
        s = node_calloc(1, sizeof *s);
        node_strmap_put(&sh->services, name, s);
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->refs[i].id == self->id)
            return 0;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->refs = node_realloc(s->refs, s->cap * sizeof *s->refs);
    }
    s->refs[s->n++] = node_ref_of(self);
    node_extra(self)->nservices++;
    s_changed(sh);
    return 0;
}

static void s_remove(node_shard_t *sh, const char *name, node_service_t *s, skick_actor_t *a)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->refs[i].id == a->id) {
            s->refs[i] = s->refs[--s->n];
            a->x->nservices--;
            s_changed(sh);
            break;
        }
    if (s->n == 0) {
        node_strmap_del(&sh->services, name);
        s_free(s);
    }
}

typedef struct {
    node_shard_t *sh;
    skick_actor_t *a;
} s_drop_ctx_t;

static int s_drop_each(const char *key, void *val, void *arg)
{
    s_drop_ctx_t *c = arg;
    s_remove(c->sh, key, val, c->a);
    return c->a->x->nservices == 0;
}

void skick_unregister_service(skick_actor_t *self, const char *name)
{
    if (!self->x || !self->x->nservices)
        return;
    node_shard_t *sh = self->shard;
    if (name) {
        node_service_t *s = node_strmap_get(&sh->services, name);
        if (s)
            s_remove(sh, name, s, self);
        return;
    }
    s_drop_ctx_t c = {sh, self};
    node_strmap_each(&sh->services, s_drop_each, &c);
}

void node_services_drop_actor(skick_actor_t *a)
{
    skick_unregister_service(a, NULL);
}

skick_addr_t skick_get_service(skick_actor_t *self, const char *name, int where)
{
    skick_addr_t out = {{0}};
    node_shard_t *sh = self->shard;
    node_service_t *s = s_valid_name(name) ? node_strmap_get(&sh->services, name) : NULL;
    node_ref_t r;
    if (where != SKICK_REMOTE && where != SKICK_LOCAL && where != SKICK_MIXED) {
        skick_set_errno(SKICK_EINVAL);
        return out;
    }
    if (where != SKICK_REMOTE && s && s->n) {
        r = s->refs[node_random64() % s->n];
    } else if (where != SKICK_LOCAL && s_valid_name(name) &&
               sh->transport && sh->transport->pick_service(sh, name, &r) == 0) {
        /* from the directory: as fresh as the provider's last advert */
    } else {
        skick_set_errno(SKICK_ENOTFOUND);
        return out;
    }
    node_format_addr(out.str, r.shard, r.id);
    return out;
}

static int s_to_json(const char *key, void *val, void *arg)
{
    node_service_t *s = val;
    json_object *ids = json_object_new_array();
    for (size_t i = 0; i < s->n; i++) {
        char hex[17];
        node_format_id(hex, s->refs[i].id);
        json_object_array_add(ids, json_object_new_string(hex));
    }
    json_object_object_add(arg, key, ids);
    return 0;
}

json_object *node_services_to_json(node_shard_t *sh)
{
    json_object *o = json_object_new_object();
    node_strmap_each(&sh->services, s_to_json, o);
    return o;
}
