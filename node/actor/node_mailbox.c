/*  node_mailbox - mailbox delivery and dispatch

    Delivery is synchronous bookkeeping: the sender's call finds the target,
    routes conversation frames straight to the waiting conversation, applies
    monitor and done requests at once (they carry no user code), and queues
    everything else. Queued user messages are bounded by the shard's mailbox
    capacity; sentinels are control messages and are never refused. The loop
    then gives each scheduled actor a turn of at most NODE_BATCH messages.
    An address on another shard goes to sh->transport; an actor of a kind
    (a session) is asked first about what is the kind's own.

    A plain action blocks its actor while it is suspended: the next message
    waits, as in the seed, where each handler was awaited before the next.
    Conversation actions (skick_conversation) run alongside the mailbox.
*/
#include "node_actor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skick_metrics.h"

/* ------------------------------------------------------------------------- */
/* Delivery                                                                   */

bool node_is_opener(json_object *msg)
{
    json_object *cid, *sender;
    return json_object_object_get_ex(msg, "cid", &cid) &&
           json_object_is_type(cid, json_type_string) &&
           json_object_object_get_ex(msg, "sender", &sender) &&
           json_object_is_type(sender, json_type_string);
}

void node_refuse_opener(node_shard_t *sh, json_object *msg, int err, const char *why)
{
    if (!node_is_opener(msg))
        return;
    json_object *end = json_object_new_object();
    json_object_object_add(end, "action", json_object_new_string("end_conversation"));
    json_object_object_add(end, "cid",
                           json_object_get(json_object_object_get(msg, "cid")));
    json_object_object_add(end, "error", json_object_new_string(why));
    json_object_object_add(end, "code", json_object_new_string(skick_err_name(err)));
    const char *to = json_object_get_string(json_object_object_get(msg, "sender"));
    node_deliver(sh, (node_ref_t){sh->id, sh->id}, to, &end); /* from the shard: a remote
                                                               caller needs a full address */
}

void node_dead_letter(node_shard_t *sh, const char *to, json_object *msg, int err)
{
    node_count_dead(sh, err);
    json_object *act = NULL;
    const char *action = "(none)";
    if (msg && json_object_object_get_ex(msg, "action", &act) &&
        json_object_is_type(act, json_type_string))
        action = json_object_get_string(act);
    NODE_LOG_LIMITED(SKICK_LOG_INFO, "deadletter", "%s: undelivered action '%.40s': %s", to,
                     action, skick_strerror(err));
}

static const char *s_action_of(json_object *body)
{
    json_object *act;
    if (json_object_object_get_ex(body, "action", &act) &&
        json_object_is_type(act, json_type_string))
        return json_object_get_string(act);
    return NULL;
}

static int s_fail_delivery(node_shard_t *sh, const char *to, json_object **body, int err)
{
    const char *action = *body ? s_action_of(*body) : NULL;
    if (action && strcmp(action, "sentinel") == 0)
        sh->stats.lost_sentinels++; /* a monitor that is gone: normal, count only */
    else
        node_dead_letter(sh, to, *body, err);
    json_object_put(*body);
    *body = NULL;
    skick_set_errno(err);
    return -1;
}

/*  Handle the requests that need no user code: monitor and done. Returns 1
    when handled (body consumed), 0 when the message should be queued. */
static int s_deliver_control(skick_actor_t *a, node_ref_t from, const char *action,
                             json_object **body, int *rc)
{
    *rc = 0;
    if (strcmp(action, "monitor") == 0) {
        node_ref_t ref;
        const char *addr = skick_get_string(*body, "address", NULL);
        if (!addr || node_parse_addr(addr, &ref) != 0) {
            *rc = s_fail_delivery(a->shard, a->addr, body, SKICK_EINVAL);
            return 1;
        }
        /* A monitor on a third shard (not ours, not the sender's, which
           recorded its own when the request left) must hear of it. */
        if (node_add_monitor(a, ref) && ref.shard != from.shard && a->shard->transport)
            a->shard->transport->watch_tell(a->shard, node_ref_of(a), ref);
    } else if (strcmp(action, "done") == 0) {
        node_shard_t *sh = a->shard;
        bool allowed = (from.shard == sh->id && (from.id == a->id || from.id == sh->id)) ||
                       (a->parent.id && from.id == a->parent.id && from.shard == a->parent.shard);
        if (!allowed) {
            NODE_LOG_LIMITED(SKICK_LOG_WARNING, "mailbox",
                             "%s: refused 'done' from a sender that is neither the actor, its "
                             "spawner nor its shard",
                             a->addr);
            *rc = s_fail_delivery(sh, a->addr, body, SKICK_ERESERVED);
            return 1;
        }
        node_request_stop(a, NODE_END_DONE);
    } else {
        return 0;
    }
    json_object_put(*body);
    *body = NULL;
    return 1;
}

int node_deliver_ref(node_shard_t *sh, node_ref_t from, node_ref_t to, json_object **body,
                     bool control)
{
    if (to.shard != sh->id && to.shard && sh->transport)
        return sh->transport->deliver(sh, SKICK_KIND_ACTOR, from, to, body, control, 0);
    skick_actor_t *a = node_actor_by_ref(sh, to);
    if (!a || (a->flags & NODE_A_STOPPED)) {
        char addr[SKICK_ADDR_LEN + 1];
        node_format_addr(addr, to.shard, to.id);
        node_refuse_opener(sh, *body, SKICK_EDEAD, "no such actor"); /* no-op unless an opener */
        return s_fail_delivery(sh, addr, body, SKICK_EDEAD);
    }
    const char *action = (a->flags & NODE_A_PROBE) ? NULL : s_action_of(*body);
    if (action) {
        /* The kind first: it may own replies too (the AMQP bridge's confirms,
           which must be seen as they arrive, in order with dead letters). */
        const node_actor_kind_t *kind = a->x ? a->x->kind : NULL;
        if (kind && kind->intercept && kind->intercept(a, from, action, body))
            return 0; /* the kind's own (a session: query replies, news about its client) */
        if (strcmp(action, "receive_reply") == 0 || strcmp(action, "end_conversation") == 0) {
            node_conv_deliver(a, body);
            return 0;
        }
        int rc;
        if (s_deliver_control(a, from, action, body, &rc))
            return rc;
        if (strcmp(action, "sentinel") == 0) {
            /* A session whose receptionist ended stops now, even while a
               handler is blocked (say in skick_query): it has no client. */
            if (kind && kind->partner_ended &&
                kind->partner_ended(a, skick_get_string(*body, "address", ""))) {
                json_object_put(*body);
                *body = NULL;
                return 0;
            }
            control = true;
        }
    }
    if (!control && a->depth >= sh->cfg.mailbox_capacity && !(a->flags & NODE_A_PROBE)) {
        sh->stats.refused_full++;
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "mailbox", "%s: mailbox full (%u), message refused",
                         a->addr, a->depth);
        return s_fail_delivery(sh, a->addr, body, SKICK_EFULL);
    }
    node_msg_t *m = node_malloc(sizeof *m);
    *m = (node_msg_t){.body = *body, .from = from, .control = control};
    *body = NULL;
    node_enqueue(a, m);
    return 0;
}

void node_enqueue(skick_actor_t *a, node_msg_t *m)
{
    if (a->tail)
        a->tail->next = m;
    else
        a->head = m;
    a->tail = m;
    if (!m->control)
        a->depth++;
    a->shard->stats.sent_local++;
    if (!(a->flags & NODE_A_PROBE))
        node_schedule(a);
}

int node_deliver(node_shard_t *sh, node_ref_t from, const char *to, json_object **body)
{
    node_ref_t ref;
    if (node_parse_addr(to, &ref) != 0)
        return s_fail_delivery(sh, to ? to : "(null)", body, SKICK_EINVAL);
    return node_deliver_ref(sh, from, ref, body, false);
}

int skick_send(skick_actor_t *self, const char *address, json_object **msg)
{
    if (!msg || !*msg || !json_object_is_type(*msg, json_type_object)) {
        if (msg) {
            json_object_put(*msg);
            *msg = NULL;
        }
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    return node_deliver(self->shard, node_ref_of(self), address, msg);
}

int skick_monitor(skick_actor_t *self, const char *address)
{
    json_object *req = json_object_new_object();
    json_object_object_add(req, "action", json_object_new_string("monitor"));
    json_object_object_add(req, "address", json_object_new_string(self->addr));
    return skick_send(self, address, &req);
}

/* ------------------------------------------------------------------------- */
/* Dispatch                                                                   */

static void s_unhandled(skick_actor_t *a, node_msg_t *m, int err, const char *what)
{
    node_shard_t *sh = a->shard;
    if (err == SKICK_EACTION)
        sh->stats.unknown_actions++;
    else
        sh->stats.schema_failures++;
    node_count_dead(sh, err);
    NODE_LOG_LIMITED(SKICK_LOG_WARNING, err == SKICK_EACTION ? "dispatch" : "schema",
                     "%s (%s): message dropped: %s", a->addr, skick_type(a), what);
    node_refuse_opener(sh, m->body, err, what);
}

static void s_sentinel(skick_actor_t *a, node_msg_t *m)
{
    const char *about = skick_get_string(m->body, "address", "");
    const node_actor_kind_t *kind = a->x ? a->x->kind : NULL;
    if (kind && kind->partner_ended && kind->partner_ended(a, about))
        return; /* a session's receptionist is gone: the session stops with it */
    skick_handler_fn *fn = NULL;
    if (a->x && a->x->routes)
        fn = (skick_handler_fn *) node_strmap_get(a->x->routes, about);
    if (!fn)
        fn = a->beh->default_sentinel;
    if (!fn)
        return; /* nobody asked: the seed ignores it too */
    node_exec_t exec = {.actor = a, .msg = m, .kind = NODE_EXEC_HANDLER};
    node_cur = &exec;
    fn(a, m->body);
    node_cur = NULL;
    a->shard->stats.delivered++;
}

static void s_dispatch(skick_actor_t *a, node_msg_t *m)
{
    const char *action = s_action_of(m->body);
    if (!action) {
        s_unhandled(a, m, SKICK_EACTION, "missing or non-string \"action\"");
        return;
    }
    if (strcmp(action, "sentinel") == 0) {
        s_sentinel(a, m);
        return;
    }
    const node_actor_kind_t *kind = a->x ? a->x->kind : NULL;
    if (kind && kind->dispatch && kind->dispatch(a, m, action))
        return; /* the kind's own, in mailbox order (a session's skick.drain) */
    const node_action_t *act = node_behaviour_find(a->beh, action);
    if (m->client && !(kind && kind->accepts && kind->accepts(a, m, act))) {
        if (!kind || !kind->accepts)
            s_unhandled(a, m, SKICK_EACTION, "a client message for an actor without clients");
        return;
    }
    if (!act) {
        char what[96];
        snprintf(what, sizeof what, "unknown action '%.40s'", action);
        s_unhandled(a, m, SKICK_EACTION, what);
        return;
    }
    if (act->schema && !skick_schema_valid(act->schema, m->body)) {
        char why[160], what[240];
        skick_schema_check(act->schema, m->body, why, sizeof why);
        snprintf(what, sizeof what, "action '%.40s' not schema compliant: %s", action, why);
        s_unhandled(a, m, SKICK_ESCHEMA, what);
        return;
    }
    skick_handler_fn *fn = act->fn;
    node_exec_t exec = {.actor = a, .msg = m};
    exec.kind = act->concurrent ? NODE_EXEC_TASK : NODE_EXEC_HANDLER;
    if (act->concurrent)
        node_extra(a)->ntasks++;
    node_type_counts_t *tc = node_type_counts(a);
    struct timespec t0 = {0};
    if (tc && ++a->shard->msample >= NODE_METRICS_SAMPLE) {
        a->shard->msample = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
    }
    node_cur = &exec;
    fn(a, m->body); /* may suspend */
    node_cur = NULL;
    if (tc) {
        tc->delivered++;
        if (t0.tv_sec) {
            struct timespec t1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            skick_histogram_observe(tc->latency, (double) (t1.tv_sec - t0.tv_sec) +
                                                     (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);
        }
    }
    if (act->concurrent)
        a->x->ntasks--;
    if ((a->flags & NODE_A_STOPPING) && !exec.answered)
        node_refuse_opener(a->shard, m->body, SKICK_EPARTNER,
                           a->end == NODE_END_EXCEPTION ? "partner failed" : "partner stopped");
    a->shard->stats.delivered++;
}

static void s_start(skick_actor_t *a)
{
    a->flags |= NODE_A_STARTED;
    skick_hook_fn *on_start = a->beh->on_start;
    if (on_start) {
        node_exec_t exec = {.actor = a, .kind = NODE_EXEC_HANDLER};
        node_cur = &exec;
        on_start(a); /* may suspend; messages queue meanwhile */
        node_cur = NULL;
    }
    if (!(a->flags & (NODE_A_STOPPING | NODE_A_REPLACE))) {
        node_daemons_start(a);
        if (a->x && a->x->kind && a->x->kind->started)
            a->x->kind->started(a); /* a session opens to its client once started */
    }
}

static void s_msg_free(node_msg_t *m)
{
    json_object_put(m->body);
    free(m);
}

void node_process_actor(skick_actor_t *a)
{
    if (a->flags & NODE_A_STOPPED) {
        node_free_actor(a); /* it was queued when it finished stopping */
        return;
    }
    if (a->busy)
        return;
    if ((a->flags & NODE_A_PROBE) && !(a->flags & NODE_A_STOPPING))
        return; /* a probe only collects: the test kit reads its mailbox */
    if (a->flags & NODE_A_STOPPING) {
        node_teardown(a);
        return;
    }
    if (a->flags & NODE_A_REPLACE) {
        node_apply_replace(a);
    } else {
        if (!(a->flags & NODE_A_STARTED))
            s_start(a); /* then straight on to the first messages, same turn */
        for (int n = 0; n < NODE_BATCH && a->head && !a->busy &&
                        !(a->flags & (NODE_A_STOPPING | NODE_A_REPLACE | NODE_A_STOPPED));
             n++) {
            node_msg_t *m = a->head;
            a->head = m->next;
            if (!a->head)
                a->tail = NULL;
            if (!m->control)
                a->depth--;
            s_dispatch(a, m);
            s_msg_free(m);
            if (a->busy || (a->flags & (NODE_A_STOPPING | NODE_A_REPLACE | NODE_A_STOPPED)))
                break;
        }
    }
    if (!a->busy && !(a->flags & NODE_A_STOPPED) &&
        (a->head || !(a->flags & NODE_A_STARTED) ||
         (a->flags & (NODE_A_STOPPING | NODE_A_REPLACE))))
        node_schedule(a);
}
