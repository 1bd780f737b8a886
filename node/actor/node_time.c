/*  node_time - sleeping, delayed messages and the shard clock for actors

    skick_sleep is a wait with nothing to wait for but its timeout.
    skick_after keeps its message in a node_after_t owned by the actor, so a
    stop or a cancel can free it; when the timer fires the message is
    delivered like any send from the actor to itself.
*/
#include "node_actor.h"

#include <stdlib.h>

typedef struct node_after {
    struct node_after *next; /* actor's list */
    uint64_t timer;          /* loop timer id, also the public id */
    skick_actor_t *actor;    /* owner (valid: the list dies with it) */
    json_object *msg;        /* owned until delivery */
} node_after_t;

int skick_sleep(skick_actor_t *self, int64_t ms)
{
    (void) self;
    node_wait_t w;
    node_wait_init(&w);
    int rc = node_wait(&w, ms < 0 ? 0 : ms);
    if (rc == SKICK_ETIMEDOUT)
        return 0;
    skick_set_errno(rc);
    return -1;
}

static void s_unlink(skick_actor_t *a, node_after_t *af)
{
    for (node_after_t **p = &a->x->afters; *p; p = &(*p)->next)
        if (*p == af) {
            *p = af->next;
            return;
        }
}

static void s_fire(node_shard_t *sh, void *arg, uint64_t id)
{
    (void) id;
    node_after_t *af = arg;
    skick_actor_t *a = af->actor;
    s_unlink(a, af);
    json_object *msg = af->msg;
    free(af);
    node_ref_t self = node_ref_of(a);
    node_deliver_ref(sh, self, self, &msg, false);
}

uint64_t skick_after(skick_actor_t *self, int64_t delay_ms, json_object **msg)
{
    if (!msg || !*msg || !json_object_is_type(*msg, json_type_object)) {
        if (msg) {
            json_object_put(*msg);
            *msg = NULL;
        }
        skick_set_errno(SKICK_EINVAL);
        return 0;
    }
    node_after_t *af = node_calloc(1, sizeof *af);
    af->actor = self;
    af->msg = *msg;
    *msg = NULL;
    af->timer = node_timer_add(self->shard, delay_ms, s_fire, af);
    node_extra_t *x = node_extra(self);
    af->next = x->afters;
    x->afters = af;
    return af->timer;
}

int skick_cancel(skick_actor_t *self, uint64_t timer_id)
{
    node_after_t *af = self->x ? self->x->afters : NULL;
    while (af && af->timer != timer_id)
        af = af->next;
    if (!af) {
        skick_set_errno(SKICK_ENOTFOUND);
        return -1;
    }
    s_unlink(self, af);
    node_timer_cancel(self->shard, af->timer);
    json_object_put(af->msg);
    free(af);
    return 0;
}

void node_afters_cancel(skick_actor_t *a)
{
    if (!a->x)
        return;
    while (a->x->afters) {
        node_after_t *af = a->x->afters;
        a->x->afters = af->next;
        node_timer_cancel(a->shard, af->timer);
        json_object_put(af->msg);
        free(af);
    }
}
