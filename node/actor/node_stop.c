/*  node_stop - stopping, failing and replacing actors

    Stopping is requested (skick_stop, skick_fail, done, shard shutdown) and
    carried out by the loop in node_teardown once no handler or task of the
    actor is running: suspended ones are woken with ESTOPPED first and must
    return. Then on_stop runs (it may suspend, bounded by the shard's stop
    timeout), open conversations are ended with an error to their partners,
    conversation openers still queued are refused, other queued messages are
    counted as dead letters, services are withdrawn, and every monitor gets
    the seed's sentinel message. Nothing is dropped without a count.

    Replace follows the same rhythm: it is applied when the current handler
    returns and no task of the old behaviour is still running.
*/
#include "node_actor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_end_names[] = {"cancellation", "done", "exception"};

void node_cancel_waits(skick_actor_t *a)
{
    if (!a->x)
        return;
    for (node_exec_t *e = a->x->suspended; e; e = e->next) {
        e->cancelled = true;
        if (e->wait)
            node_wait_complete(e->wait, SKICK_ESTOPPED);
    }
}

void node_request_stop(skick_actor_t *a, node_end_t end)
{
    if (a->flags & (NODE_A_STOPPING | NODE_A_STOPPED))
        return;
    a->flags |= NODE_A_STOPPING;
    a->end = (uint8_t) end;
    if (node_cur && node_cur->actor == a)
        node_cur->cancelled = true;
    node_daemons_cancel(a);
    node_cancel_waits(a);
    node_schedule(a);
}

void skick_stop(skick_actor_t *self)
{
    node_request_stop(self, NODE_END_CANCELLATION);
}

void skick_fail(skick_actor_t *self, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    node_exec_t *e = node_cur;
    if (e && e->actor == self && e->kind == NODE_EXEC_DAEMON && e->daemon) {
        e->failed = true;
        node_daemon_fail(e->daemon, reason);
        return;
    }
    if (self->flags & (NODE_A_STOPPING | NODE_A_STOPPED))
        return;
    node_extra_t *x = node_extra(self);
    free(x->fail_reason);
    x->fail_reason = node_strdup(reason);
    self->shard->stats.failed++;
    skick_actor_log(self, SKICK_LOG_WARNING, "failed: %s", reason);
    if (e && e->actor == self)
        e->failed = true;
    node_request_stop(self, NODE_END_EXCEPTION);
}

/* ------------------------------------------------------------------------- */

static void s_stop_timeout(node_shard_t *sh, void *arg, uint64_t id)
{
    (void) id;
    skick_actor_t *a = node_u64map_get(&sh->actors, (uint64_t) (uintptr_t) arg);
    if (a && (a->flags & NODE_A_TEARDOWN)) {
        skick_actor_log(a, SKICK_LOG_WARNING, "on_stop took longer than %lld ms; cancelled",
                        (long long) sh->cfg.stop_timeout_ms);
        node_cancel_waits(a);
    }
}

static void s_run_hook(skick_actor_t *a, skick_hook_fn *fn)
{
    node_exec_t exec = {.actor = a, .kind = NODE_EXEC_HANDLER};
    node_cur = &exec;
    fn(a); /* may suspend */
    node_cur = NULL;
}

static void s_drain_mailbox(skick_actor_t *a)
{
    node_shard_t *sh = a->shard;
    size_t dropped = 0;
    while (a->head) {
        node_msg_t *m = a->head;
        a->head = m->next;
        if (!m->control) {
            node_refuse_opener(sh, m->body, SKICK_EPARTNER, "the actor stopped");
            dropped++;
            node_count_dead(sh, SKICK_EPARTNER);
        }
        json_object_put(m->body);
        free(m);
    }
    a->tail = NULL;
    a->depth = 0;
    if (dropped)
        skick_actor_log(a, SKICK_LOG_INFO, "stopped with %zu unhandled message(s)", dropped);
}

/*  The seed's sentinel body: how addr ended (type), and why when it failed. */
static json_object *s_sentinel_body(const char *type, const char *addr, const char *exception)
{
    json_object *s = json_object_new_object();
    json_object_object_add(s, "action", json_object_new_string("sentinel"));
    json_object_object_add(s, "type", json_object_new_string(type));
    json_object_object_add(s, "address", json_object_new_string(addr));
    json_object_object_add(s, "tag", json_object_new_string("main_task"));
    if (exception)
        json_object_object_add(s, "exception", json_object_new_string(exception));
    return s;
}

static void s_send_sentinels(skick_actor_t *a)
{
    node_shard_t *sh = a->shard;
    const char *reason = a->x ? a->x->fail_reason : NULL;
    for (uint32_t i = 0; i < a->nmon; i++) {
        json_object *s =
            s_sentinel_body(s_end_names[a->end], a->addr,
                            a->end == NODE_END_EXCEPTION ? (reason ? reason : "failed") : NULL);
        if (node_deliver_ref(sh, node_ref_of(a), a->monitors[i], &s, true) != 0)
            SKICK_LOG(SKICK_LOG_DEBUG, "sentinel", "%s: a monitor is gone", a->addr);
    }
}

json_object *node_sentinel_new(uint64_t shard, uint64_t id, const char *why)
{
    char addr[SKICK_ADDR_LEN + 1];
    node_format_addr(addr, shard, id);
    return s_sentinel_body("exception", addr, why);
}

void node_sentinel_to(node_shard_t *sh, const char *to, node_ref_t about, const char *why)
{
    node_ref_t r;
    if (!to || node_parse_addr(to, &r) != 0)
        return;
    json_object *s = node_sentinel_new(about.shard, about.id, why);
    node_deliver_ref(sh, about, r, &s, true);
}

static void s_finish(skick_actor_t *a)
{
    node_shard_t *sh = a->shard;
    char why[600];
    if (a->end == NODE_END_EXCEPTION)
        snprintf(why, sizeof why, "partner failed: %s",
                 a->x && a->x->fail_reason ? a->x->fail_reason : "failed");
    else
        snprintf(why, sizeof why, "partner stopped");
    node_conv_end_all(a, SKICK_EPARTNER, why);
    s_drain_mailbox(a);
    node_services_drop_actor(a);
    node_u64map_del(&sh->actors, a->id);
    a->flags |= NODE_A_STOPPED;
    sh->stats.stopped++;
    sh->live--;
    s_send_sentinels(a);
    if (sh->stopping && sh->live == 0)
        sh->exit_loop = true; /* the last actor is gone: the process may end */
    if (!(a->flags & NODE_A_SCHEDULED))
        node_free_actor(a); /* else the loop frees it when it pops it */
}

void node_teardown(skick_actor_t *a)
{
    if (a->busy || (a->x && a->x->ntasks)) {
        node_cancel_waits(a); /* they return, and the last one reschedules us */
        return;
    }
    if (!(a->flags & NODE_A_ONSTOP)) {
        a->flags |= NODE_A_ONSTOP | NODE_A_TEARDOWN;
        node_afters_cancel(a);
        if ((a->flags & NODE_A_STARTED) && a->beh->on_stop) {
            node_shard_t *sh = a->shard;
            uint64_t t = node_timer_add(sh, sh->cfg.stop_timeout_ms, s_stop_timeout,
                                        (void *) (uintptr_t) a->id);
            s_run_hook(a, a->beh->on_stop);
            node_timer_cancel(a->shard, t);
        }
        if (a->x && a->x->ntasks) {
            node_cancel_waits(a);
            return;
        }
    }
    s_finish(a);
}

void node_free_actor(skick_actor_t *a)
{
    node_shard_t *sh = a->shard;
    if (!(a->flags & NODE_A_STOPPED)) {
        node_u64map_del(&sh->actors, a->id);
        sh->live--;
    }
    while (a->head) {
        node_msg_t *m = a->head;
        a->head = m->next;
        json_object_put(m->body);
        free(m);
    }
    node_extra_t *x = a->x;
    if (x) {
        node_daemons_free(a);
        if (x->routes) {
            node_strmap_free(x->routes, NULL);
            free(x->routes);
        }
        free(x->fail_reason);
        node_afters_cancel(a);
        json_object_put(x->replace_init);
        if (x->kind && x->kind->free)
            x->kind->free(a); /* the kind's state (a session's) */
        free(x);
    }
    if (a->state && a->state_free)
        a->state_free(a->state);
    free(a->state);
    free(a->monitors);
    node_behaviour_unref(&a->beh);
    free(a);
}

/* ------------------------------------------------------------------------- */
/* Replace                                                                    */

static int s_request_replace(skick_actor_t *self, const node_type_t *type,
                             skick_factory_fn *factory, json_object **init)
{
    json_object *msg = init ? *init : NULL;
    if (init)
        *init = NULL;
    if (self->flags & (NODE_A_STOPPING | NODE_A_STOPPED)) {
        json_object_put(msg);
        skick_set_errno(SKICK_ESTOPPED);
        return -1;
    }
    node_extra_t *x = node_extra(self);
    json_object_put(x->replace_init);
    x->replace_init = msg;
    x->replace_type = type;
    x->replace_factory = factory;
    self->flags |= NODE_A_REPLACE;
    node_daemons_cancel(self);
    node_schedule(self);
    return 0;
}

int skick_replace(skick_actor_t *self, const char *type, json_object **init)
{
    const node_actor_kind_t *kind = self->x ? self->x->kind : NULL;
    if (kind && kind->replace_type) {
        /* An actor of a kind becomes another type of that kind (a session
           another (sub)session of the same application). */
        const node_type_t *kt = kind->replace_type(self, type);
        if (kt)
            return s_request_replace(self, kt, kt->factory, init);
        if (init) {
            json_object_put(*init);
            *init = NULL;
        }
        skick_set_errno(SKICK_ENOTYPE);
        return -1;
    }
    const node_type_t *t = type ? node_app_type(self->shard->app, type) : NULL;
    if (!t) {
        if (init) {
            json_object_put(*init);
            *init = NULL;
        }
        skick_set_errno(SKICK_ENOTYPE);
        return -1;
    }
    return s_request_replace(self, t, t->factory, init);
}

int skick_replace_with(skick_actor_t *self, skick_factory_fn *factory, json_object **init)
{
    if (!factory) {
        if (init) {
            json_object_put(*init);
            *init = NULL;
        }
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    return s_request_replace(self, NULL, factory, init);
}

void node_apply_replace(skick_actor_t *a)
{
    if (a->busy || (a->x && a->x->ntasks)) {
        node_cancel_waits(a);
        return;
    }
    node_extra_t *x = a->x;
    if ((a->flags & NODE_A_STARTED) && a->beh->on_stop && !(a->flags & NODE_A_ONSTOP)) {
        a->flags |= NODE_A_ONSTOP; /* old on_stop runs once even if it suspends */
        s_run_hook(a, a->beh->on_stop);
        if (a->flags & NODE_A_STOPPING)
            return; /* stopped meanwhile: teardown takes over */
    }
    if (!(a->flags & NODE_A_REPLACE))
        return;
    a->flags &= (uint16_t) ~(NODE_A_REPLACE | NODE_A_ONSTOP | NODE_A_STARTED);
    node_conv_end_all(a, SKICK_ECLOSED, "partner replaced its behaviour");
    node_daemons_free(a);
    if (x->routes) {
        node_strmap_free(x->routes, NULL);
        free(x->routes);
        x->routes = NULL;
    }
    if (a->state && a->state_free)
        a->state_free(a->state);
    free(a->state);
    a->state = NULL;
    a->state_free = NULL;
    node_behaviour_unref(&a->beh);
    json_object *init = x->replace_init;
    x->replace_init = NULL;
    if (x->replace_type)
        a->type = x->replace_type;
    skick_factory_fn *factory = x->replace_factory;
    x->replace_type = NULL;
    x->replace_factory = NULL;
    node_build(a, factory, init);
    json_object_put(init);
    /* The loop runs the new on_start (and daemons) on the actor's next turn. */
}
