/*  node_rcpt_handshake - a receptionist's first client message: placement and start

    Runs on the front shard's reactor, called by node_receptionist_input
    while the receptionist is in R_HANDSHAKE; the state is the actor's
    rcpt_t (node_rcpt_int.h), borrowed. The first message must name a
    requestable session type, served by this shard (a back shard that has
    it) or advertised by a back shard of the cluster (sh->transport), and
    pass its handshake schema; anything else gets "denied" and a close. Then
    the session actor is created, here or on the chosen shard, each becomes
    the other's monitor, the session type's limits are applied to the
    connection, and the receptionist waits (R_STARTING) for the session's
    schemas.
*/
#include "node_rcpt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_deny(skick_actor_t *a, rcpt_t *r, const char *why)
{
    SKICK_LOG(SKICK_LOG_INFO, "ws", "%s: session denied: %s", r->peer, why);
    node_rcpt_write(r, "denied", 6);
    node_ws_close(r->ws, r->conn, 1000, "session denied");
    r->denied = true;
    node_request_stop(a, NODE_END_CANCELLATION);
}

/*  Where a requested session type lives: here (a back shard that has it)
    or on a back shard of the cluster that advertises it. */
typedef struct {
    const node_session_type_t *local;    /* this shard's type, or NULL */
    uint64_t remote;                     /* else the chosen shard */
    const skick_schema_t *handshake;     /* its handshake schema, or NULL */
    bool bad_handshake;                  /* advertised but does not compile */
    skick_session_limits_t limits;
} s_placement_t;

static bool s_place(node_shard_t *sh, const char *name, s_placement_t *p)
{
    *p = (s_placement_t){0};
    const node_session_type_t *t = sh->back ? node_session_type(sh->app, name) : NULL;
    if (t && t->requestable) {
        p->local = t;
        p->handshake = t->handshake;
        p->limits = t->limits;
        return true;
    }
    json_object *entry;
    const node_transport_t *tr = sh->transport;
    p->remote = tr ? tr->pick_session(sh, name, &entry) : 0;
    if (!p->remote)
        return false;
    p->handshake = tr->session_handshake(sh, entry);
    p->bad_handshake = !p->handshake && skick_get_string(entry, "handshake", NULL);
    json_object *l = json_object_object_get(entry, "limits");
    int64_t max = skick_get_int(l, "max_message", 0);
    p->limits.max_message = max > 0 ? (size_t) max : 0;
    p->limits.rate = skick_get_double(l, "rate", 0);
    p->limits.burst = skick_get_double(l, "burst", 0);
    p->limits.idle_timeout_ms = skick_get_int(l, "idle_timeout_ms", 0);
    int64_t queue = skick_get_int(l, "send_queue", 0);
    p->limits.send_queue = queue > 0 ? (size_t) queue : 0;
    const char *policy = skick_get_string(l, "send_policy", "");
    p->limits.send_policy = strcmp(policy, "refuse") == 0  ? SKICK_SEND_REFUSE
                            : strcmp(policy, "close") == 0 ? SKICK_SEND_CLOSE
                                                           : SKICK_SEND_DEFAULT;
    return true;
}

void node_rcpt_handshake(skick_actor_t *a, rcpt_t *r, json_object **msg, bool json_error)
{
    node_shard_t *sh = a->shard;
    const char *name = (!json_error && *msg && json_object_is_type(*msg, json_type_object))
                           ? skick_get_string(*msg, "session_type", NULL)
                           : NULL;
    s_placement_t p;
    if (!name || !s_place(sh, name, &p)) {
        s_deny(a, r, name ? "no such session type" : "not a handshake");
        return;
    }
    if (p.bad_handshake) {
        s_deny(a, r, "the session type's handshake schema does not compile here");
        return;
    }
    json_object *init;
    if (p.handshake) {
        if (!skick_schema_valid(p.handshake, *msg)) {
            s_deny(a, r, "handshake fails its schema");
            return;
        }
        init = *msg;
        *msg = NULL;
    } else {
        init = json_object_new_object(); /* only the session type goes through */
        json_object_object_add(init, "session_type", json_object_new_string(name));
    }
    snprintf(r->type, sizeof r->type, "%s", name);
    if (p.local) {
        skick_actor_t *s = node_session_spawn(sh, p.local, &init, node_ref_of(a), 0);
        r->session = node_ref_of(s);
    } else {
        r->session = sh->transport->spawn_session(sh, p.remote, name, &init, node_ref_of(a));
        if (!r->session.id) {
            s_deny(a, r, "the session's shard cannot be reached");
            return;
        }
    }
    node_format_addr(r->session_addr, r->session.shard, r->session.id);
    if (r->sh)
        r->sh->client_sessions++; /* until s_rcpt_free */
    node_add_monitor(a, r->session); /* the session stops when we do */
    r->phase = R_STARTING;
    SKICK_LOG(SKICK_LOG_DEBUG, "ws", "%s: session %s (%s) for connection %llu", a->addr,
              r->session_addr, name, (unsigned long long) r->conn);
    const skick_session_limits_t *l = &p.limits;
    node_ws_set_limits(r->ws, r->conn, l);
    if (l->send_policy)
        r->policy = l->send_policy;
    if (l->idle_timeout_ms)
        r->idle_ms = l->idle_timeout_ms;
    r->started = node_now(sh);
    /* from now on the idle clock runs, and the start's deadline */
    node_rcpt_arm_tick(a, r->idle_ms < NODE_RCPT_START_MS ? r->idle_ms : NODE_RCPT_START_MS);
}

