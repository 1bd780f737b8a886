/*  node_directory - what the other shards of the cluster offer

    Each shard sends its whole entry (roles, actor types, session types
    with their handshake schemas and limits, services) to the broker over
    its own link; the broker takes only each shard's own entry and relays
    them on its XPUB, which we read. We keep the newest version of each other shard's entry and read
    it for remote spawns, session placement and get_service. An entry goes
    away when its shard is lost; after a broker restart every entry is
    provisional until its shard re-advertises, and one that does not within
    the grace period is treated as lost (its shard died while there was no
    broker to say so).

    Entries are kept as the JSON objects they arrived as (they are small and
    read rarely); the compiled handshake schemas are cached per text. Our
    own entry is built here too (node_directory_own_entry); node_cluster.c
    publishes it.
*/
#include "node_cluster_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    json_object *entry;      /* owned */
    uint64_t version;        /* entry's version */
    int64_t unconfirmed;     /* shard clock when it became provisional, 0 = confirmed */
    bool back;               /* has the back role */
} node_dir_entry_t;

void node_directory_init(node_cluster_t *c)
{
    node_u64map_init(&c->dir);
}

static void s_entry_free(node_dir_entry_t *d)
{
    json_object_put(d->entry);
    free(d);
}

void node_directory_fini(node_cluster_t *c)
{
    for (size_t i = 0; i < c->dir.cap; i++)
        if (c->dir.keys[i])
            s_entry_free(c->dir.vals[i]);
    node_u64map_free(&c->dir);
}

static uint64_t s_shard_id(json_object *body)
{
    uint64_t id;
    return node_parse_id(skick_get_string(body, "shard", NULL), &id) == 0 ? id : 0;
}

static bool s_has_role(json_object *entry, const char *role)
{
    json_object *roles;
    if (!json_object_object_get_ex(entry, "roles", &roles) ||
        !json_object_is_type(roles, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(roles); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(roles, i)), role) == 0)
            return true;
    return false;
}

void node_directory_update(node_shard_t *sh, json_object *body)
{
    node_cluster_t *c = sh->cluster;
    uint64_t id = s_shard_id(body);
    if (!id || !json_object_is_type(body, json_type_object)) {
        sh->stats.malformed++;
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "directory entry without a valid "
                         "\"shard\" dropped");
        return;
    }
    if (id == sh->id)
        return; /* our own, relayed back */
    if (skick_get_bool(body, "lost", false)) {
        if (node_directory_forget(sh, id))
            SKICK_LOG(SKICK_LOG_DEBUG, "cluster", "directory: %016llx removed",
                      (unsigned long long) id);
        return;
    }
    if (node_u64map_get(&c->lost, id))
        return; /* a late entry from a shard already lost */
    int64_t version = skick_get_int(body, "version", -1);
    json_object *types, *sessions, *services;
    if (version < 0 || !json_object_object_get_ex(body, "types", &types) ||
        !json_object_is_type(types, json_type_array) ||
        !json_object_object_get_ex(body, "sessions", &sessions) ||
        !json_object_is_type(sessions, json_type_array) ||
        !json_object_object_get_ex(body, "services", &services) ||
        !json_object_is_type(services, json_type_object)) {
        sh->stats.malformed++;
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "malformed directory entry for %016llx "
                         "dropped", (unsigned long long) id);
        return;
    }
    node_dir_entry_t *d = node_u64map_get(&c->dir, id);
    if (d && (uint64_t) version < d->version && !d->unconfirmed)
        return; /* older than what we have */
    if (!d) {
        d = node_calloc(1, sizeof *d);
        node_u64map_put(&c->dir, id, d);
        SKICK_LOG(SKICK_LOG_INFO, "cluster", "shard %016llx joined the directory",
                  (unsigned long long) id);
    }
    json_object_put(d->entry);
    d->entry = json_object_get(body);
    d->version = (uint64_t) version;
    d->unconfirmed = 0;
    d->back = s_has_role(body, "back");
}

bool node_directory_forget(node_shard_t *sh, uint64_t id)
{
    node_dir_entry_t *d = node_u64map_del(&sh->cluster->dir, id);
    if (!d)
        return false;
    s_entry_free(d);
    return true;
}

void node_directory_unconfirm(node_shard_t *sh)
{
    node_cluster_t *c = sh->cluster;
    int64_t now = node_now(sh);
    for (size_t i = 0; i < c->dir.cap; i++)
        if (c->dir.keys[i])
            ((node_dir_entry_t *) c->dir.vals[i])->unconfirmed = now ? now : 1;
}

bool node_cluster_rejoining(node_shard_t *sh, uint64_t id)
{
    node_dir_entry_t *d = sh->cluster ? node_u64map_get(&sh->cluster->dir, id) : NULL;
    return d && d->unconfirmed;
}

void node_directory_expire(node_shard_t *sh, int64_t grace_ms)
{
    node_cluster_t *c = sh->cluster;
    int64_t now = node_now(sh);
    for (size_t i = 0; c && i < c->dir.cap; i++) {
        if (!c->dir.keys[i])
            continue;
        node_dir_entry_t *d = c->dir.vals[i];
        if (d->unconfirmed && now - d->unconfirmed > grace_ms) {
            uint64_t id = c->dir.keys[i];
            node_directory_forget(sh, id); /* gone even if its loss was already handled */
            node_watch_shard_lost(sh, id, "did not rejoin after a broker restart");
            i = (size_t) -1; /* the table changed: start again */
            if (!sh->cluster)
                return;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Lookups: a uniformly random candidate, chosen in one pass (reservoir)       */

static bool s_array_has(json_object *arr, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        if (json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), name) == 0)
            return true;
    }
    return false;
}

uint64_t node_directory_pick_type(node_shard_t *sh, const char *type)
{
    node_cluster_t *c = sh->cluster;
    uint64_t pick = 0, seen = 0;
    for (size_t i = 0; c && type && i < c->dir.cap; i++) {
        if (!c->dir.keys[i])
            continue;
        node_dir_entry_t *d = c->dir.vals[i];
        json_object *types = json_object_object_get(d->entry, "types");
        if (d->back && s_array_has(types, type) && node_random64() % ++seen == 0)
            pick = c->dir.keys[i];
    }
    return pick;
}

uint64_t node_directory_pick_session(node_shard_t *sh, const char *name, json_object **entry)
{
    node_cluster_t *c = sh->cluster;
    uint64_t pick = 0, seen = 0;
    *entry = NULL;
    for (size_t i = 0; c && name && i < c->dir.cap; i++) {
        if (!c->dir.keys[i])
            continue;
        node_dir_entry_t *d = c->dir.vals[i];
        json_object *sessions = json_object_object_get(d->entry, "sessions");
        if (!d->back)
            continue;
        for (size_t k = 0; k < json_object_array_length(sessions); k++) {
            json_object *s = json_object_array_get_idx(sessions, k);
            if (strcmp(skick_get_string(s, "name", ""), name) == 0) {
                if (node_random64() % ++seen == 0) {
                    pick = c->dir.keys[i];
                    *entry = s;
                }
                break;
            }
        }
    }
    return pick;
}

int node_directory_pick_service(node_shard_t *sh, const char *name, node_ref_t *out)
{
    node_cluster_t *c = sh->cluster;
    uint64_t seen = 0;
    for (size_t i = 0; c && name && i < c->dir.cap; i++) {
        if (!c->dir.keys[i])
            continue;
        node_dir_entry_t *d = c->dir.vals[i];
        json_object *ids = NULL;
        json_object *services = json_object_object_get(d->entry, "services");
        if (!json_object_object_get_ex(services, name, &ids) ||
            !json_object_is_type(ids, json_type_array))
            continue;
        for (size_t k = 0; k < json_object_array_length(ids); k++) {
            uint64_t id;
            if (node_parse_id(json_object_get_string(json_object_array_get_idx(ids, k)), &id) == 0 &&
                node_random64() % ++seen == 0)
                *out = (node_ref_t){c->dir.keys[i], id};
        }
    }
    return seen ? 0 : -1;
}

const skick_schema_t *node_directory_handshake(node_shard_t *sh, json_object *session)
{
    const char *text = skick_get_string(session, "handshake", NULL);
    if (!text)
        return NULL;
    node_cluster_t *c = sh->cluster;
    skick_schema_t *s = node_strmap_get(&c->handshakes, text);
    if (!s) {
        char err[200];
        s = node_session_handshake_compile(text, err, sizeof err);
        if (!s) {
            NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "advertised handshake schema does "
                             "not compile: %s", err);
            return NULL;
        }
        node_strmap_put(&c->handshakes, text, s);
    }
    return s;
}

/* ------------------------------------------------------------------------- */
/* Our own entry                                                              */

static int s_each_type(const char *key, void *val, void *arg)
{
    (void) val;
    json_object_array_add(arg, json_object_new_string(key));
    return 0;
}

static int s_each_session(const char *key, void *val, void *arg)
{
    const node_session_type_t *t = val;
    if (!t->requestable)
        return 0;
    json_object *s = json_object_new_object();
    json_object_object_add(s, "name", json_object_new_string(key));
    json_object_object_add(s, "handshake", t->handshake_text
                                               ? json_object_new_string(t->handshake_text)
                                               : NULL);
    json_object *l = json_object_new_object();
    json_object_object_add(l, "max_message", json_object_new_int64((int64_t) t->limits.max_message));
    json_object_object_add(l, "rate", json_object_new_double(t->limits.rate));
    json_object_object_add(l, "burst", json_object_new_double(t->limits.burst));
    json_object_object_add(l, "idle_timeout_ms", json_object_new_int64(t->limits.idle_timeout_ms));
    json_object_object_add(l, "send_queue", json_object_new_int64((int64_t) t->limits.send_queue));
    if (t->limits.send_policy)
        json_object_object_add(l, "send_policy",
                               json_object_new_string(t->limits.send_policy == SKICK_SEND_REFUSE
                                                          ? "refuse"
                                                          : "close"));
    json_object_object_add(s, "limits", l);
    json_object_array_add(arg, s);
    return 0;
}

json_object *node_directory_own_entry(node_shard_t *sh, uint64_t version)
{
    char id[17];
    node_format_id(id, sh->id);
    json_object *e = json_object_new_object();
    json_object_object_add(e, "shard", json_object_new_string(id));
    json_object_object_add(e, "version", json_object_new_int64((int64_t) version));
    /* roles and ws as the HELLO said them (node_admit_hello_body) */
    json_object *roles = NULL, *hello_ws = NULL;
    if (sh->cluster && sh->cluster->hello) {
        json_object_object_get_ex(sh->cluster->hello, "roles", &roles);
        json_object_object_get_ex(sh->cluster->hello, "ws", &hello_ws);
    }
    json_object_object_add(e, "roles", roles ? json_object_get(roles) : json_object_new_array());
    json_object_object_add(e, "ws", json_object_get(hello_ws));
    json_object *types = json_object_new_array();
    json_object *sessions = json_object_new_array();
    if (sh->back && sh->app) {
        node_strmap_each(&sh->app->types, s_each_type, types);
        node_strmap_each(&sh->app->sessions, s_each_session, sessions);
    }
    json_object_object_add(e, "types", types);
    json_object_object_add(e, "sessions", sessions);
    json_object_object_add(e, "services", node_services_to_json(sh));
    return e;
}

static int64_t s_count(json_object *entry, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(entry, key, &v))
        return 0;
    return json_object_is_type(v, json_type_array)    ? (int64_t) json_object_array_length(v)
           : json_object_is_type(v, json_type_object) ? (int64_t) json_object_object_length(v)
                                                      : 0;
}

json_object *node_cluster_view_shards(node_shard_t *sh, size_t max, void *arg)
{
    (void) arg;
    node_cluster_t *c = sh->cluster;
    if (!c)
        return NULL;
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < c->dir.cap && json_object_array_length(out) < max; i++) {
        node_dir_entry_t *d = c->dir.keys[i] ? c->dir.vals[i] : NULL;
        if (!d || !d->entry)
            continue;
        json_object *e = json_object_new_object(), *v, *names = json_object_new_array();
        if (json_object_object_get_ex(d->entry, "shard", &v))
            json_object_object_add(e, "shard", json_object_get(v));
        if (json_object_object_get_ex(d->entry, "roles", &v))
            json_object_object_add(e, "roles", json_object_get(v));
        json_object_object_add(e, "types", json_object_new_int64(s_count(d->entry, "types")));
        json_object_object_add(e, "services", json_object_new_int64(s_count(d->entry, "services")));
        if (json_object_object_get_ex(d->entry, "sessions", &v) &&
            json_object_is_type(v, json_type_array))
            for (size_t k = 0; k < json_object_array_length(v) && k < 32; k++) {
                json_object *name;
                if (json_object_object_get_ex(json_object_array_get_idx(v, k), "name", &name))
                    json_object_array_add(names, json_object_get(name));
            }
        json_object_object_add(e, "sessions", names);
        if (d->unconfirmed)
            json_object_object_add(e, "provisional", json_object_new_boolean(1));
        json_object_array_add(out, e);
    }
    return out;
}

json_object *node_cluster_directory(node_shard_t *sh)
{
    json_object *all = json_object_new_array();
    json_object_array_add(all, node_directory_own_entry(sh, 0));
    node_cluster_t *c = sh->cluster;
    for (size_t i = 0; c && i < c->dir.cap; i++)
        if (c->dir.keys[i])
            json_object_array_add(all, json_object_get(((node_dir_entry_t *) c->dir.vals[i])->entry));
    return all;
}
