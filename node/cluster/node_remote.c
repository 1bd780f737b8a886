/*  node_remote - actor traffic that crosses shards

    Outgoing: node_deliver_ref and node_deliver_client hand messages for
    other shards here; they leave as ACTOR / CLIENT envelopes. A message
    that cannot leave (no broker, a shard known to be lost) fails the way a
    local one to a dead actor does: the opener is refused, the letter is
    counted, the sender gets -1.

    Incoming: envelopes for our actors are delivered exactly like local
    messages; one that cannot be delivered goes back to the sender's shard
    as a DEAD_LETTER, which ends the sender's conversation if it named one.

    Watches (which local actors must get a sentinel when another shard is
    lost) are node_watch.c's; this file tells it what leaves and arrives:
    a "monitor" message or a named spawn request that left (the sender's
    shard records its own actors' watches), a "watch" notice or a sentinel
    that arrived.
*/
#include "node_cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_action(json_object *body)
{
    json_object *a;
    if (body && json_object_object_get_ex(body, "action", &a) &&
        json_object_is_type(a, json_type_string))
        return json_object_get_string(a);
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* Outgoing                                                                   */

int node_remote_deliver(node_shard_t *sh, int kind, node_ref_t from, node_ref_t to,
                        json_object **body, bool control, uint32_t gen)
{
    node_cluster_t *c = sh->cluster;
    const char *action = s_action(*body);
    int err;
    if (node_u64map_get(&c->lost, to.shard)) {
        err = SKICK_EDEAD;
    } else {
        /* A monitor or spawn request may make our actors watchers: recorded
           once it has left, before anything about it can come back. */
        bool watching = kind == SKICK_KIND_ACTOR && action &&
                        (strcmp(action, "monitor") == 0 || strcmp(action, "spawn") == 0);
        json_object *kept = watching ? json_object_get(*body) : NULL;
        int rc = node_cluster_send(sh, kind, from, to, body, control, gen);
        if (rc == 0 && kept)
            node_watch_sent(sh, to, kept, action);
        json_object_put(kept);
        if (rc == 0)
            return 0;
        err = skick_errno();
    }
    node_remote_undeliverable(sh, to, body, err);
    skick_set_errno(err);
    return -1;
}

void node_remote_undeliverable(node_shard_t *sh, node_ref_t to, json_object **body, int err)
{
    char addr[SKICK_ADDR_LEN + 1];
    node_format_addr(addr, to.shard, to.id);
    const char *action = s_action(*body);
    node_refuse_opener(sh, *body, err, err == SKICK_EDEAD   ? "no such actor (its shard was lost)"
                                       : err == SKICK_EFULL ? "too much traffic queued for the broker"
                                                            : "no broker to reach the actor's shard");
    if (action && strcmp(action, "sentinel") == 0)
        sh->stats.lost_sentinels++;
    else
        node_dead_letter(sh, addr, *body, err);
    json_object_put(*body);
    *body = NULL;
}

skick_addr_t node_remote_spawn(skick_actor_t *self, uint64_t where, const char *type,
                               json_object **init, node_ref_t parent,
                               const char *const *monitors, size_t n)
{
    node_shard_t *sh = self->shard;
    skick_addr_t out = {{0}};
    uint64_t id;
    do
        id = node_random64();
    while (id == 0 || id == where);
    char name[SKICK_ADDR_LEN + 1];
    node_format_addr(name, where, id);
    json_object *req = json_object_new_object();
    json_object_object_add(req, "action", json_object_new_string("spawn"));
    json_object_object_add(req, "type", json_object_new_string(type));
    json_object_object_add(req, "name", json_object_new_string(name));
    json_object_object_add(req, "message", init && *init ? *init : json_object_new_object());
    if (init)
        *init = NULL;
    json_object *mons = json_object_new_array();
    if (parent.id) {
        char p[SKICK_ADDR_LEN + 1];
        node_format_addr(p, parent.shard, parent.id);
        json_object_array_add(mons, json_object_new_string(p));
    }
    for (size_t i = 0; i < n && i < 63; i++) {
        node_ref_t m;
        if (!monitors[i] || node_parse_addr(monitors[i], &m) != 0)
            continue;
        json_object_array_add(mons, json_object_new_string(monitors[i]));
    }
    json_object_object_add(req, "add_monitor", mons); /* the watches: node_watch_sent */
    json_object_object_add(req, "remote", json_object_new_string("local"));
    if (node_remote_deliver(sh, SKICK_KIND_ACTOR, node_ref_of(self), (node_ref_t){where, where},
                            &req, true, 0) != 0)
        return out; /* errno set */
    memcpy(out.str, name, sizeof out.str);
    return out;
}

node_ref_t node_remote_spawn_session(node_shard_t *sh, uint64_t where, const char *type,
                                     json_object **init, node_ref_t rcpt)
{
    uint64_t id;
    do
        id = node_random64();
    while (id == 0 || id == where);
    node_ref_t ref = {where, id};
    char name[SKICK_ADDR_LEN + 1], r[SKICK_ADDR_LEN + 1];
    node_format_addr(name, where, id);
    node_format_addr(r, rcpt.shard, rcpt.id);
    json_object *req = json_object_new_object();
    json_object_object_add(req, "action", json_object_new_string("spawn_session"));
    json_object_object_add(req, "type", json_object_new_string(type));
    json_object_object_add(req, "name", json_object_new_string(name));
    json_object_object_add(req, "message", *init ? *init : json_object_new_object());
    *init = NULL;
    json_object_object_add(req, "receptionist", json_object_new_string(r));
    node_watch_add(sh, ref, rcpt);
    if (node_remote_deliver(sh, SKICK_KIND_ACTOR, rcpt, (node_ref_t){where, where}, &req, true,
                            0) != 0) {
        node_watch_drop(sh, ref, rcpt);
        return (node_ref_t){0, 0};
    }
    return ref;
}

/* ------------------------------------------------------------------------- */
/* The receiving side of spawn requests (shard actor actions)                 */

static void s_on_spawn_session(skick_actor_t *self, json_object *msg)
{
    node_shard_t *sh = self->shard;
    const char *type_name = skick_get_string(msg, "type", "");
    const char *rcpt_addr = skick_get_string(msg, "receptionist", "");
    node_ref_t rcpt, want;
    if (node_parse_addr(rcpt_addr, &rcpt) != 0 ||
        node_parse_addr(skick_get_string(msg, "name", ""), &want) != 0) {
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "shard", "spawn_session with invalid addresses "
                         "dropped");
        return;
    }
    const node_session_type_t *t = sh->back ? node_session_type(sh->app, type_name) : NULL;
    const char *why = NULL;
    if (!t || !t->requestable)
        why = "no such session type on this shard";
    else if (want.shard != sh->id || want.id == sh->id || node_u64map_get(&sh->actors, want.id))
        why = "unusable address";
    else if (sh->stopping)
        why = "shard stopping";
    if (why) {
        SKICK_LOG(SKICK_LOG_WARNING, "shard", "session '%.64s' for %s refused: %s", type_name,
                  rcpt_addr, why);
        node_sentinel_to(sh, rcpt_addr, want, why);
        return;
    }
    json_object *init = json_object_get(json_object_object_get(msg, "message"));
    skick_actor_t *s = node_session_spawn(sh, t, &init, rcpt, want.id);
    node_watch_add(sh, rcpt, node_ref_of(s)); /* the session ends if the front is lost */
}

/* ------------------------------------------------------------------------- */
/* Incoming                                                                   */

static int s_code(const char *name)
{
    for (int e = 1; e < SKICK_ERR_COUNT_; e++)
        if (name && strcmp(name, skick_err_name(e)) == 0)
            return e;
    return SKICK_EDEAD;
}

static void s_dead_letter_in(node_shard_t *sh, skick_envelope_t *e)
{
    sh->stats.remote_dead++;
    json_object *b = e->body;
    char to[SKICK_ADDR_LEN + 1];
    node_format_addr(to, e->to_shard, e->to_id);
    const char *code = skick_get_string(b, "code", "EDEAD");
    NODE_LOG_LIMITED(SKICK_LOG_INFO, "deadletter", "%s: undelivered action '%.40s': %.16s (%.80s)",
                     to, skick_get_string(b, "action", "(none)"), code,
                     skick_get_string(b, "error", ""));
    const char *cid = skick_get_string(b, "cid", NULL);
    skick_actor_t *a = node_actor_by_ref(sh, (node_ref_t){e->from_shard, e->from_id});
    if (cid && a)
        node_conv_fail(a, cid, s_code(code), skick_get_string(b, "error", "undeliverable"));
    const node_actor_kind_t *kind = a && a->x ? a->x->kind : NULL;
    if (kind && kind->undelivered)
        kind->undelivered(a, (node_ref_t){e->to_shard, e->to_id},
                          skick_get_string(b, "action", NULL), cid, s_code(code));
}

static void s_bounce(node_shard_t *sh, node_ref_t from, node_ref_t to, int err,
                     const char *action, const char *cid)
{
    if (!from.shard || from.shard == sh->id)
        return;
    json_object *b = json_object_new_object();
    json_object_object_add(b, "code", json_object_new_string(skick_err_name(err)));
    json_object_object_add(b, "error", json_object_new_string(skick_strerror(err)));
    if (action)
        json_object_object_add(b, "action", json_object_new_string(action));
    if (cid)
        json_object_object_add(b, "cid", json_object_new_string(cid));
    node_cluster_send(sh, SKICK_KIND_DEAD_LETTER, from, to, &b, false, 0);
    json_object_put(b);
}

void node_remote_receive(node_shard_t *sh, skick_envelope_t *e)
{
    sh->stats.recv_remote++;
    node_ref_t from = {e->from_shard, e->from_id};
    if (sh->cluster->metrics && e->kind != SKICK_KIND_DEAD_LETTER)
        node_cluster_metrics_count(sh->cluster, from.shard, false);
    node_ref_t to = {e->to_shard, e->to_id};
    if (e->kind == SKICK_KIND_DEAD_LETTER) {
        if (e->body && json_object_is_type(e->body, json_type_object))
            s_dead_letter_in(sh, e);
        else
            sh->stats.malformed++;
        skick_envelope_destroy(&e);
        return;
    }
    json_object *body = e->body;
    e->body = NULL;
    if (to.shard != sh->id || !to.id || !body || !json_object_is_type(body, json_type_object)) {
        sh->stats.malformed++;
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "%s envelope %s dropped",
                         skick_kind_name(e->kind),
                         to.shard != sh->id ? "for another shard" : "without an object body");
        s_bounce(sh, from, to, SKICK_EPROTO, NULL, NULL);
        json_object_put(body);
        skick_envelope_destroy(&e);
        return;
    }
    const char *action = s_action(body);
    bool sentinel = action && strcmp(action, "sentinel") == 0;
    if (sentinel && from.shard != sh->id)
        node_watch_drop(sh, from, to); /* it ended on its own: no sentinel owed on loss */
    if (e->kind == SKICK_KIND_ACTOR && to.id == sh->id && action && strcmp(action, "watch") == 0) {
        node_watch_notice(sh, from, body); /* applied at once, before what follows it */
        json_object_put(body);
        skick_envelope_destroy(&e);
        return;
    }
    if (e->kind == SKICK_KIND_ACTOR && to.id == sh->id && node_shard_apply_now(sh, from, &body)) {
        skick_envelope_destroy(&e);
        return;
    }
    /* Delivery takes the body; a reference of our own keeps its action and
       cid readable for the dead letter, should delivery fail. */
    json_object *kept = json_object_get(body);
    int rc = e->kind == SKICK_KIND_CLIENT
                 ? node_deliver_client(sh, from, to, &body, e->gen)
                 : node_deliver_ref(sh, from, to, &body, (e->flags & SKICK_ENVELOPE_CONTROL) != 0);
    if (rc != 0 && !sentinel)
        s_bounce(sh, from, to, skick_errno(), s_action(kept), skick_get_string(kept, "cid", NULL));
    json_object_put(kept);
    skick_envelope_destroy(&e);
}

/* ------------------------------------------------------------------------- */
/* What the layers below reach other shards through                           */

static const char s_spawn_session_schema[] =
    "{\"type\": \"string\", \"name\": \"string\", \"message\": \"object\","
    " \"receptionist\": \"string\"}";

void node_cluster_prepare(node_shard_t *sh)
{
    node_shard_add_action(sh, "spawn_session", s_spawn_session_schema, s_on_spawn_session);
}

const node_transport_t node_cluster_transport = {
    .deliver = node_remote_deliver,
    .pick_type = node_directory_pick_type,
    .spawn = node_remote_spawn,
    .pick_service = node_directory_pick_service,
    .services_changed = node_cluster_dir_dirty,
    .watch_tell = node_watch_tell,
    .pick_session = node_directory_pick_session,
    .session_handshake = node_directory_handshake,
    .spawn_session = node_remote_spawn_session,
};
