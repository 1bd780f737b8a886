/*  node_daemon - daemons: background coroutines of an actor, and their watchers

    Each daemon runs as a task (node_task_post) on its own coroutine. When
    its body returns or fails on its own, the watcher logic below decides,
    from the flags it was registered with: the dead man's switch (default)
    runs on_failure and stops the actor with a "cancellation" sentinel, as the
    seed does; SKICK_RESTART runs on_failure and starts it again after a
    back-off (100 ms doubling to 30 s, back to 100 ms after 10 s of health),
    fixing the seed's hot restart loop; SKICK_DETACHED only runs on_failure,
    also when the body failed (the seed skipped it then). A daemon ended by a
    stop or replace just ends.
*/
#include "node_actor.h"

#include <stdlib.h>
#include <string.h>

#define NODE_BACKOFF_MIN 100
#define NODE_BACKOFF_MAX 30000
#define NODE_HEALTHY_MS 10000

struct node_daemon {
    node_daemon_t *next;       /* actor's list */
    skick_actor_t *actor;      /* owner */
    char *name;                /* owned copy */
    skick_hook_fn *fn;         /* body */
    skick_hook_fn *on_failure; /* or NULL */
    int flags;                 /* SKICK_RESTART, SKICK_DETACHED */
    bool cancelled;            /* stop or replace: do not restart */
    bool failed;               /* skick_fail in the body */
    char *reason;              /* failure reason, owned */
    int64_t backoff_ms;        /* next restart delay */
    int64_t started_at;        /* shard clock at the last start */
    uint64_t restart_timer;    /* pending restart, 0 = none */
    unsigned runs;             /* starts so far */
};

static void s_body(node_exec_t *exec, void *arg);

static void s_restart(node_shard_t *sh, void *arg, uint64_t id)
{
    (void) id;
    node_daemon_t *d = arg;
    d->restart_timer = 0;
    if (!d->cancelled)
        node_task_post(sh, d->actor, NODE_EXEC_DAEMON, s_body, d);
}

static void s_ended(node_exec_t *exec, node_daemon_t *d)
{
    skick_actor_t *a = d->actor;
    node_shard_t *sh = a->shard;
    skick_actor_log(a, d->failed ? SKICK_LOG_WARNING : SKICK_LOG_INFO,
                    "daemon '%s' %s%s%s", d->name, d->failed ? "failed: " : "returned",
                    d->failed && d->reason ? d->reason : "", "");
    if (d->on_failure) {
        exec->failed = false;
        d->on_failure(a); /* may suspend */
    }
    if (d->cancelled || (a->flags & (NODE_A_STOPPING | NODE_A_REPLACE)))
        return;
    if (d->flags & SKICK_RESTART) {
        int64_t ran = node_now(sh) - d->started_at;
        if (ran >= NODE_HEALTHY_MS || d->backoff_ms == 0)
            d->backoff_ms = NODE_BACKOFF_MIN;
        else if (d->backoff_ms < NODE_BACKOFF_MAX)
            d->backoff_ms = d->backoff_ms * 2 > NODE_BACKOFF_MAX ? NODE_BACKOFF_MAX
                                                                 : d->backoff_ms * 2;
        d->restart_timer = node_timer_add(sh, d->backoff_ms, s_restart, d);
    } else if (!(d->flags & SKICK_DETACHED)) {
        skick_actor_log(a, SKICK_LOG_WARNING,
                        "dead man's switch: daemon '%s' ended, stopping the actor", d->name);
        node_request_stop(a, NODE_END_CANCELLATION);
    }
}

static void s_body(node_exec_t *exec, void *arg)
{
    node_daemon_t *d = arg;
    exec->daemon = d;
    if (exec->cancelled || d->cancelled)
        return;
    d->failed = false;
    d->started_at = node_now(d->actor->shard);
    d->runs++;
    d->fn(d->actor); /* usually loops with skick_sleep until cancelled */
    if (d->cancelled || exec->cancelled)
        return;
    s_ended(exec, d);
}

void node_daemons_start(skick_actor_t *a)
{
    const node_behaviour_t *b = a->beh;
    if (!b->ndaemons)
        return;
    node_extra_t *x = node_extra(a);
    for (int i = 0; i < b->ndaemons; i++) {
        node_daemon_t *d = node_calloc(1, sizeof *d);
        d->actor = a;
        d->name = node_strdup(b->daemons[i].name);
        d->fn = b->daemons[i].fn;
        d->on_failure = b->daemons[i].on_failure;
        d->flags = b->daemons[i].flags;
        d->next = x->daemons;
        x->daemons = d;
        node_task_post(a->shard, a, NODE_EXEC_DAEMON, s_body, d);
    }
}

void node_daemons_cancel(skick_actor_t *a)
{
    for (node_daemon_t *d = a->x ? a->x->daemons : NULL; d; d = d->next) {
        d->cancelled = true;
        if (d->restart_timer) {
            node_timer_cancel(a->shard, d->restart_timer);
            d->restart_timer = 0;
        }
    }
}

void node_daemons_free(skick_actor_t *a)
{
    if (!a->x)
        return;
    node_daemons_cancel(a);
    while (a->x->daemons) {
        node_daemon_t *d = a->x->daemons;
        a->x->daemons = d->next;
        free(d->name);
        free(d->reason);
        free(d);
    }
}

void node_daemon_fail(node_daemon_t *d, const char *reason)
{
    d->failed = true;
    free(d->reason);
    d->reason = node_strdup(reason);
}
