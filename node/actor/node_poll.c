/*  node_poll - skick_poll: a coroutine waits for file descriptors

    The descriptors are registered with the reactor (node_io_add_rw) for the
    length of the call only, and each callback marks its entry and completes
    the one wait. A poll(2) with no timeout first answers descriptors that
    are ready already without a fiber switch (and under the test kit, whose
    loop never polls, that is the only way an entry becomes ready).
*/
#include "node_actor.h"

#include <poll.h>

#define NODE_POLL_MAX 64

typedef struct {
    skick_pollfd_t *p; /* the caller's entry */
    node_wait_t *w;    /* the one wait of the call */
} node_poll_ent_t;

static void s_mark(node_poll_ent_t *e, int bit)
{
    e->p->revents |= e->p->events & bit ? bit : e->p->events;
    node_wait_complete(e->w, SKICK_OK);
}

static void s_on_read(node_shard_t *sh, int fd, void *arg) { s_mark(arg, SKICK_FD_READ); }
static void s_on_write(node_shard_t *sh, int fd, void *arg) { s_mark(arg, SKICK_FD_WRITE); }

/*  poll(2) without waiting; sets revents, returns how many are ready. */
static int s_look(skick_pollfd_t *fds, size_t n)
{
    struct pollfd pfd[NODE_POLL_MAX];
    for (size_t i = 0; i < n; i++)
        pfd[i] = (struct pollfd){.fd = fds[i].fd,
                                 .events = (short) ((fds[i].events & SKICK_FD_READ ? POLLIN : 0) |
                                                    (fds[i].events & SKICK_FD_WRITE ? POLLOUT : 0))};
    if (poll(pfd, n, 0) <= 0)
        return 0;
    int ready = 0;
    for (size_t i = 0; i < n; i++) {
        short r = pfd[i].revents;
        if (r & (POLLERR | POLLHUP | POLLNVAL))
            fds[i].revents = fds[i].events;
        else
            fds[i].revents = (r & POLLIN ? SKICK_FD_READ : 0) | (r & POLLOUT ? SKICK_FD_WRITE : 0);
        ready += fds[i].revents != 0;
    }
    return ready;
}

int skick_poll(skick_actor_t *self, skick_pollfd_t *fds, size_t n, int64_t timeout_ms)
{
    (void) self;
    if (!fds || n == 0 || n > NODE_POLL_MAX) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        fds[i].revents = 0;
        if (fds[i].fd < 0 || !(fds[i].events & (SKICK_FD_READ | SKICK_FD_WRITE))) {
            skick_set_errno(SKICK_EINVAL);
            return -1;
        }
    }
    int ready = s_look(fds, n);
    if (ready > 0 || timeout_ms == 0)
        return ready;
    node_shard_t *sh = node_shard;
    node_wait_t w;
    node_wait_init(&w);
    node_poll_ent_t ent[NODE_POLL_MAX];
    size_t added = 0;
    for (; added < n; added++) {
        ent[added] = (node_poll_ent_t){.p = &fds[added], .w = &w};
        bool r = fds[added].events & SKICK_FD_READ, wr = fds[added].events & SKICK_FD_WRITE;
        if (node_io_add_rw(sh, fds[added].fd, r ? s_on_read : NULL, wr ? s_on_write : NULL,
                           &ent[added]) != 0)
            break;
        node_io_watch(sh, fds[added].fd, r, wr);
    }
    int rc = added < n ? SKICK_EINVAL : node_wait(&w, timeout_ms);
    for (size_t i = 0; i < added; i++)
        node_io_remove(sh, fds[i].fd);
    if (rc != SKICK_OK && rc != SKICK_ETIMEDOUT) {
        skick_set_errno(rc);
        return -1;
    }
    ready = 0;
    for (size_t i = 0; i < n; i++)
        ready += fds[i].revents != 0;
    return ready;
}
