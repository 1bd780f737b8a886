/*  node_loop - the shard's reactor: run queue, tasks, ready fibers, timers, I/O

    The loop body runs on a fiber and never keeps state in locals across a
    switch: everything lives in the shard, so whichever parked fiber is
    switched to next can continue the loop (see node_actor.h). One step does one
    unit of work, in this order: due timers, one ready fiber, one task to
    start, one actor turn (at most NODE_BATCH messages). Descriptors are
    polled when the loop is idle, and every 256 steps under load so that a
    signal is never starved by a busy shard.
*/
#include "node_actor.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__thread node_shard_t *node_shard;
__thread node_exec_t *node_cur;

struct node_timer {
    int64_t deadline;  /* ms, shard clock */
    uint64_t id;       /* > 0 */
    uint64_t seq;      /* insertion order, breaks deadline ties */
    node_timer_fn *fn; /* callback, runs on the loop; must not suspend */
    void *arg;
    size_t index;      /* position in the heap */
};

static void s_loop_entry(void *arg);

/* ------------------------------------------------------------------------- */

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t node_now(node_shard_t *sh)
{
    return sh->virtual_clock ? sh->vnow : s_mono_ms() - sh->epoch_ms;
}

node_shard_t *node_shard_new(skick_app_t *app, bool virtual_clock)
{
    node_shard_t *sh = node_calloc(1, sizeof *sh);
    do
        sh->id = node_random64();
    while (sh->id == 0);
    node_format_addr(sh->addr, sh->id, sh->id);
    sh->cfg.mailbox_capacity = 1024;
    sh->cfg.call_timeout_ms = 5000;
    sh->cfg.stop_timeout_ms = 5000;
    sh->cfg.stack_size = 256 * 1024;
    sh->cfg.idle_fibers = 32;
    sh->virtual_clock = virtual_clock;
    sh->epoch_ms = s_mono_ms();
    sh->app = app;
    sh->host = node_fiber_host();
    node_u64map_init(&sh->actors);
    node_u64map_init(&sh->timers);
    node_strmap_init(&sh->schemas);
    node_conv_init(sh);
    node_services_init(sh);
    sh->front = sh->back = true; /* both roles unless skick_run is told otherwise */
    sh->hash = &node_hash_inproc;
    sh->hash_state = sh->hash->open(sh, NULL);
    return sh;
}

void node_shard_on_destroy(node_shard_t *sh, void (*fn)(node_shard_t *sh))
{
    for (node_shard_hook_t *h = sh->on_destroy; h; h = h->next)
        if (h->fn == fn)
            return;
    node_shard_hook_t *h = node_malloc(sizeof *h);
    *h = (node_shard_hook_t){.next = sh->on_destroy, .fn = fn};
    sh->on_destroy = h;
}

static void s_free_schema(void *p)
{
    skick_schema_t *s = p;
    skick_schema_destroy(&s);
}

void node_shard_destroy(node_shard_t **sh_p)
{
    node_shard_t *sh = *sh_p;
    if (!sh)
        return;
    *sh_p = NULL;
    node_shard_t *saved = node_shard;
    node_shard = sh;
    /* Whatever is left was not stopped cleanly: free it without running code. */
    for (skick_actor_t *a = sh->runq_head, *next; a; a = next) {
        next = a->run_next;
        if (a->flags & NODE_A_STOPPED)
            node_free_actor(a); /* stopped while queued: not in the table any more */
    }
    for (size_t i = 0; i < sh->actors.cap; i++)
        if (sh->actors.keys[i])
            node_free_actor(sh->actors.vals[i]);
    while (sh->tasks_head) {
        node_task_t *t = sh->tasks_head;
        sh->tasks_head = t->next;
        free(t);
    }
    while (sh->idle) {
        node_fiber_t *f = sh->idle;
        sh->idle = *node_fiber_link(f);
        node_fiber_destroy(f);
    }
    node_fiber_destroy(sh->doomed);
    /* The backend may still cancel its timers and drop its descriptors. */
    sh->hash->close(sh->hash_state);
    for (size_t i = 0; i < sh->nheap; i++)
        free(sh->heap[i]);
    free(sh->heap);
    node_u64map_free(&sh->timers);
    node_u64map_free(&sh->actors);
    while (sh->on_destroy) { /* the layers above free what they keep here */
        node_shard_hook_t *h = sh->on_destroy;
        sh->on_destroy = h->next;
        h->fn(sh);
        free(h);
    }
    while (sh->shard_actions) {
        node_shard_action_t *sa = sh->shard_actions;
        sh->shard_actions = sa->next;
        free(sa);
    }
    node_strmap_free(&sh->schemas, s_free_schema);
    node_conv_fini(sh);
    node_services_fini(sh);
    free(sh->io);
    free(sh->pfd);
    free(sh->pfd_gen);
    free(sh);
    node_shard = saved == sh ? NULL : saved;
}

/* ------------------------------------------------------------------------- */
/* Queues                                                                     */

void node_schedule(skick_actor_t *a)
{
    if (a->flags & (NODE_A_SCHEDULED | NODE_A_STOPPED))
        return;
    a->flags |= NODE_A_SCHEDULED;
    a->run_next = NULL;
    node_shard_t *sh = a->shard;
    if (sh->runq_tail)
        sh->runq_tail->run_next = a;
    else
        sh->runq_head = a;
    sh->runq_tail = a;
}

void node_ready(node_fiber_t *f)
{
    node_shard_t *sh = node_shard;
    *node_fiber_link(f) = NULL;
    if (sh->ready_tail)
        *node_fiber_link(sh->ready_tail) = f;
    else
        sh->ready_head = f;
    sh->ready_tail = f;
}

void node_task_post(node_shard_t *sh, skick_actor_t *a, node_exec_kind_t kind,
                    void (*fn)(node_exec_t *exec, void *arg), void *arg)
{
    node_task_t *t = node_malloc(sizeof *t);
    t->next = NULL;
    t->actor = a;
    t->kind = kind;
    t->fn = fn;
    t->arg = arg;
    node_extra(a)->ntasks++;
    if (sh->tasks_tail)
        sh->tasks_tail->next = t;
    else
        sh->tasks_head = t;
    sh->tasks_tail = t;
}

/* ------------------------------------------------------------------------- */
/* Fiber hand-over                                                            */

/*  Free a fiber we were asked to drop, now that nobody runs on it. */
static void s_reap(node_shard_t *sh)
{
    if (sh->doomed) {
        node_fiber_destroy(sh->doomed);
        sh->doomed = NULL;
    }
}

static void s_switch(node_shard_t *sh, node_fiber_t *to)
{
    sh->stats.switches++;
    node_fiber_switch(to);
    s_reap(node_shard);
}

/*  A fiber to continue the loop on: a parked one, or a new one. */
static node_fiber_t *s_loop_fiber(node_shard_t *sh)
{
    node_fiber_t *f = sh->idle;
    if (f) {
        sh->idle = *node_fiber_link(f);
        sh->nidle--;
        return f;
    }
    return node_fiber_new(sh->cfg.stack_size, s_loop_entry, NULL);
}

/*  Park the current loop fiber among the idle ones, or drop it if the pool
    is full (it is freed by whoever runs next). */
static void s_park_current(node_shard_t *sh)
{
    node_fiber_t *self = node_fiber_current();
    if (sh->nidle >= sh->cfg.idle_fibers && !sh->doomed) {
        sh->doomed = self;
        return;
    }
    *node_fiber_link(self) = sh->idle;
    sh->idle = self;
    sh->nidle++;
}

void node_loop_run(node_shard_t *sh, bool until_idle)
{
    node_shard_t *saved = node_shard;
    node_shard = sh;
    sh->until_idle = until_idle;
    sh->exit_loop = false;
    sh->host = node_fiber_host();
    s_switch(sh, s_loop_fiber(sh));
    node_shard = saved;
}

/* ------------------------------------------------------------------------- */
/* Waits                                                                      */

void node_wait_init(node_wait_t *w)
{
    memset(w, 0, sizeof *w);
}

static void s_wait_timeout(node_shard_t *sh, void *arg, uint64_t id)
{
    (void) sh;
    (void) id;
    node_wait_t *w = arg;
    w->timer = 0;
    node_wait_complete(w, SKICK_ETIMEDOUT);
}

/*  The actor's suspended contexts are a doubly linked list: an actor with
    hundreds of tasks waiting (the AMQP bridge) resumes each in O(1). */
static void s_suspended_link(skick_actor_t *a, node_exec_t *exec)
{
    node_extra_t *x = node_extra(a);
    exec->next = x->suspended;
    exec->pprev = &x->suspended;
    if (x->suspended)
        x->suspended->pprev = &exec->next;
    x->suspended = exec;
}

static void s_suspended_unlink(node_exec_t *exec)
{
    *exec->pprev = exec->next;
    if (exec->next)
        exec->next->pprev = exec->pprev;
    exec->next = NULL;
    exec->pprev = NULL;
}

int node_wait(node_wait_t *w, int64_t timeout_ms)
{
    node_exec_t *exec = node_cur;
    node_shard_t *sh = node_shard;
    if (w->done)
        return w->err;
    if (!exec || !exec->actor || exec->kind == NODE_EXEC_HOST ||
        node_fiber_current() == sh->host) {
        w->done = true;
        return w->err = SKICK_ECONTEXT;
    }
    if (exec->cancelled) {
        w->done = true;
        return w->err = SKICK_ESTOPPED;
    }
    skick_actor_t *a = exec->actor;
    w->fiber = node_fiber_current();
    w->suspended = true;
    if (timeout_ms >= 0)
        w->timer = node_timer_add(sh, timeout_ms, s_wait_timeout, w);
    exec->wait = w;
    s_suspended_link(a, exec);
    if (exec->kind == NODE_EXEC_HANDLER)
        a->busy = 1;
    else if (a->head)
        node_schedule(a); /* a concurrent task waits: the mailbox goes on */

    s_switch(sh, s_loop_fiber(sh)); /* the loop goes on elsewhere */

    node_cur = exec;
    w->suspended = false;
    s_suspended_unlink(exec);
    exec->wait = NULL;
    if (exec->kind == NODE_EXEC_HANDLER)
        a->busy = 0;
    if (w->timer) {
        node_timer_cancel(node_shard, w->timer);
        w->timer = 0;
    }
    return w->err;
}

void node_wait_complete(node_wait_t *w, int err)
{
    if (w->done)
        return;
    w->done = true;
    w->err = err;
    if (w->suspended)
        node_ready(w->fiber);
}

/* ------------------------------------------------------------------------- */
/* Timers: a binary min-heap on (deadline, seq)                               */

static bool s_before(const node_timer_t *a, const node_timer_t *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void s_heap_set(node_shard_t *sh, size_t i, node_timer_t *t)
{
    sh->heap[i] = t;
    t->index = i;
}

static void s_heap_up(node_shard_t *sh, size_t i)
{
    node_timer_t *t = sh->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_before(t, sh->heap[parent]))
            break;
        s_heap_set(sh, i, sh->heap[parent]);
        i = parent;
    }
    s_heap_set(sh, i, t);
}

static void s_heap_down(node_shard_t *sh, size_t i)
{
    node_timer_t *t = sh->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= sh->nheap)
            break;
        if (c + 1 < sh->nheap && s_before(sh->heap[c + 1], sh->heap[c]))
            c++;
        if (!s_before(sh->heap[c], t))
            break;
        s_heap_set(sh, i, sh->heap[c]);
        i = c;
    }
    s_heap_set(sh, i, t);
}

static void s_heap_remove(node_shard_t *sh, size_t i)
{
    sh->nheap--;
    if (i == sh->nheap)
        return;
    s_heap_set(sh, i, sh->heap[sh->nheap]);
    s_heap_up(sh, i);
    s_heap_down(sh, sh->heap[i]->index);
}

uint64_t node_timer_add(node_shard_t *sh, int64_t delay_ms, node_timer_fn *fn, void *arg)
{
    if (delay_ms < 0)
        delay_ms = 0;
    node_timer_t *t = node_malloc(sizeof *t);
    t->deadline = node_now(sh) + delay_ms;
    t->id = ++sh->next_timer_id;
    t->seq = t->id;
    t->fn = fn;
    t->arg = arg;
    if (sh->nheap == sh->capheap) {
        sh->capheap = sh->capheap ? sh->capheap * 2 : 64;
        sh->heap = node_realloc(sh->heap, sh->capheap * sizeof *sh->heap);
    }
    s_heap_set(sh, sh->nheap++, t);
    s_heap_up(sh, t->index);
    node_u64map_put(&sh->timers, t->id, t);
    return t->id;
}

int node_timer_cancel(node_shard_t *sh, uint64_t id)
{
    node_timer_t *t = id ? node_u64map_del(&sh->timers, id) : NULL;
    if (!t)
        return -1;
    s_heap_remove(sh, t->index);
    free(t);
    return 0;
}

int64_t node_timer_next(node_shard_t *sh)
{
    if (!sh->nheap)
        return -1;
    int64_t d = sh->heap[0]->deadline - node_now(sh);
    return d < 0 ? 0 : d;
}

static bool s_fire_timers(node_shard_t *sh)
{
    if (!sh->nheap || sh->heap[0]->deadline > node_now(sh))
        return false;
    int64_t now = node_now(sh);
    while (sh->nheap && sh->heap[0]->deadline <= now) {
        node_timer_t *t = sh->heap[0];
        s_heap_remove(sh, 0);
        node_u64map_del(&sh->timers, t->id);
        t->fn(sh, t->arg, t->id);
        free(t);
    }
    return true;
}

/* ------------------------------------------------------------------------- */
/* I/O                                                                        */

static node_io_t *s_io_find(node_shard_t *sh, int fd)
{
    for (size_t i = 0; i < sh->nio; i++)
        if (sh->io[i].fd == fd)
            return &sh->io[i];
    return NULL;
}

int node_io_add_rw(node_shard_t *sh, int fd, node_io_fn *on_read, node_io_fn *on_write,
                   void *arg)
{
    if (fd < 0 || s_io_find(sh, fd))
        return -1;
    if (sh->nio == sh->capio) {
        sh->capio = sh->capio ? 2 * sh->capio : 8;
        sh->io = node_realloc(sh->io, sh->capio * sizeof *sh->io);
    }
    sh->io[sh->nio++] = (node_io_t){.fd = fd, .cb = on_read, .wcb = on_write, .arg = arg,
                                    .gen = ++sh->next_io_gen};
    return 0;
}

int node_io_add(node_shard_t *sh, int fd, void (*cb)(node_shard_t *sh, int fd, void *arg),
                void *arg)
{
    if (node_io_add_rw(sh, fd, cb, NULL, arg) != 0)
        return -1;
    return node_io_watch(sh, fd, true, false);
}

int node_io_watch(node_shard_t *sh, int fd, bool read, bool write)
{
    node_io_t *io = s_io_find(sh, fd);
    if (!io)
        return -1;
    io->read = read && io->cb;
    io->write = write && io->wcb;
    return 0;
}

void node_io_remove(node_shard_t *sh, int fd)
{
    node_io_t *io = s_io_find(sh, fd);
    if (io)
        *io = sh->io[--sh->nio];
}

/*  Build the pollfd array of what is watched; returns its length. */
static size_t s_poll_set(node_shard_t *sh)
{
    if (sh->cappfd < sh->nio) {
        sh->cappfd = sh->capio;
        sh->pfd = node_realloc(sh->pfd, sh->cappfd * sizeof *sh->pfd);
        sh->pfd_gen = node_realloc(sh->pfd_gen, sh->cappfd * sizeof *sh->pfd_gen);
    }
    size_t n = 0;
    for (size_t i = 0; i < sh->nio; i++) {
        const node_io_t *io = &sh->io[i];
        if (!io->read && !io->write)
            continue; /* not even POLLERR: a hung-up socket nobody reads would spin */
        sh->pfd[n] = (struct pollfd){.fd = io->fd, .events = (short) ((io->read ? POLLIN : 0) |
                                                                      (io->write ? POLLOUT : 0))};
        sh->pfd_gen[n++] = io->gen;
    }
    return n;
}

/*  The registration pfd entry i was made for, if it still stands. */
static const node_io_t *s_io_current(node_shard_t *sh, size_t i)
{
    const node_io_t *io = s_io_find(sh, sh->pfd[i].fd);
    return io && io->gen == sh->pfd_gen[i] ? io : NULL;
}

static void s_poll(node_shard_t *sh, int64_t timeout_ms)
{
    if (sh->poll_hook && sh->poll_hook(sh))
        timeout_ms = 0; /* it found work: look again soon, do not sleep */
    size_t n = s_poll_set(sh);
    if (timeout_ms > 60000 || timeout_ms < 0)
        timeout_ms = 60000;
    int rc = poll(sh->pfd, n, (int) timeout_ms);
    if (rc <= 0)
        return;
    /* A callback may add, remove or re-watch descriptors (its own or any
       other): each entry is looked up again before each callback, by fd and
       registration serial, and a copy of it is called. Callbacks never
       suspend and never poll, so the pfd array stays as it is meanwhile. */
    for (size_t i = 0; i < n; i++) {
        short ev = sh->pfd[i].revents;
        if (!ev)
            continue;
        const node_io_t *cur = s_io_current(sh, i);
        bool failed = (ev & (POLLERR | POLLHUP | POLLNVAL)) != 0;
        if (cur && cur->read && (ev & POLLIN || failed)) {
            node_io_t io = *cur;
            io.cb(sh, io.fd, io.arg);
            cur = s_io_current(sh, i);
            failed = false; /* told once */
        }
        if (cur && cur->write && (ev & POLLOUT || failed)) {
            node_io_t io = *cur;
            io.wcb(sh, io.fd, io.arg);
        }
    }
}

/* ------------------------------------------------------------------------- */
/* The loop                                                                   */

static void s_run_task(node_shard_t *sh, node_task_t *t)
{
    skick_actor_t *a = t->actor;
    node_exec_t exec = {.actor = a, .kind = t->kind};
    exec.cancelled = (a->flags & (NODE_A_STOPPING | NODE_A_REPLACE)) != 0;
    void (*fn)(node_exec_t *, void *) = t->fn;
    void *arg = t->arg;
    free(t);
    node_exec_t *saved = node_cur;
    node_cur = &exec;
    fn(&exec, arg); /* may suspend: the loop continues on another fiber */
    node_cur = saved;
    (void) sh;
    a->x->ntasks--;
    if (a->flags & (NODE_A_STOPPING | NODE_A_REPLACE))
        node_schedule(a);
}

static bool s_step(node_shard_t *sh)
{
    if (++sh->steps >= 256) {
        sh->steps = 0;
        if (sh->nio && !sh->virtual_clock)
            s_poll(sh, 0);
    }
    if (s_fire_timers(sh))
        return true;
    if (sh->ready_head) {
        node_fiber_t *f = sh->ready_head;
        sh->ready_head = *node_fiber_link(f);
        if (!sh->ready_head)
            sh->ready_tail = NULL;
        s_park_current(sh);
        s_switch(sh, f);
        return true;
    }
    if (sh->tasks_head) {
        node_task_t *t = sh->tasks_head;
        sh->tasks_head = t->next;
        if (!sh->tasks_head)
            sh->tasks_tail = NULL;
        s_run_task(sh, t);
        return true;
    }
    if (sh->runq_head) {
        skick_actor_t *a = sh->runq_head;
        sh->runq_head = a->run_next;
        if (!sh->runq_head)
            sh->runq_tail = NULL;
        a->flags &= (uint16_t) ~NODE_A_SCHEDULED;
        node_process_actor(a);
        return true;
    }
    return false;
}

static void s_loop_entry(void *arg)
{
    (void) arg;
    s_reap(node_shard);
    for (;;) {
        node_shard_t *sh = node_shard;
        node_cur = NULL;
        if (!sh->exit_loop && s_step(sh))
            continue;
        if (sh->exit_loop || sh->until_idle) {
            s_park_current(sh);
            s_switch(sh, sh->host);
            continue;
        }
        s_poll(sh, node_timer_next(sh));
    }
}
