/*  node_fiber - coroutines on Boost.Context's fcontext, with guarded stacks

    A fiber is a saved machine context plus the stack it runs on. Switching
    is one jump_fcontext (a few ns: no signal mask syscall, unlike
    swapcontext). Stacks are mmap'd with MAP_NORESERVE and a PROT_NONE guard
    page at the low end, so pages are touched lazily and an overflow faults
    instead of corrupting a neighbour. The loop keeps a pool of parked fibers
    (node_loop.c); this file only creates, switches and frees them.

    AddressSanitizer must be told about every switch, or it reports false
    stack errors; valgrind must be told about every stack. Both are done
    here and compile away in normal builds.
*/
#include "node_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* gcc defines __SANITIZE_ADDRESS__ under -fsanitize=address; clang 14 (the
   fuzz build, docs/fuzzing.md) only answers __has_feature */
#if defined(__SANITIZE_ADDRESS__)
#define NODE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NODE_ASAN 1
#endif
#endif
#ifdef NODE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define NODE_VALGRIND 1
#endif
#endif

/*  The C ABI of libboost_context (see DEPS.md §10). */
typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx; /* context of the fiber that switched to us */
    void *data;      /* the node_fiber_t it came from */
} transfer_t;
extern transfer_t jump_fcontext(fcontext_t const to, void *vp);
extern fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

struct node_fiber {
    fcontext_t ctx;           /* saved context while not running */
    char *map;                /* mmap'd region (guard page first), NULL for host */
    size_t map_size;          /* whole region */
    node_fiber_t *next;       /* idle / ready list link */
    void (*entry)(void *);    /* body, for fibers not yet started */
    void *arg;                /* its argument */
    const void *stack_bottom; /* lowest usable address, for ASan */
    size_t stack_size;        /* usable bytes, for ASan */
    void *asan_fake;          /* ASan fake stack handle while switched away */
    unsigned valgrind_id;     /* VALGRIND_STACK_REGISTER id */
};

static __thread node_fiber_t *s_current;
static __thread node_fiber_t s_host;
static size_t s_alive;

node_fiber_t *node_fiber_host(void)
{
    if (!s_current)
        s_current = &s_host;
    return &s_host;
}

node_fiber_t *node_fiber_current(void)
{
    return s_current ? s_current : node_fiber_host();
}

node_fiber_t **node_fiber_link(node_fiber_t *f)
{
    return &f->next;
}

size_t node_fiber_count(void)
{
    return s_alive;
}

static void s_after_switch(node_fiber_t *self, transfer_t t)
{
    node_fiber_t *from = t.data;
    from->ctx = t.fctx;
#ifdef NODE_ASAN
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(self->asan_fake, &bottom, &size);
    if (from == &s_host && !s_host.stack_bottom) {
        s_host.stack_bottom = bottom; /* learn the thread stack on first use */
        s_host.stack_size = size;
    }
#endif
    (void) self;
    s_current = self;
}

static void s_trampoline(transfer_t t)
{
    node_fiber_t *self = s_current;
    s_after_switch(self, t);
    self->entry(self->arg);
    fprintf(stderr, "skick: fiber entry returned (a bug)\n");
    abort();
}

node_fiber_t *node_fiber_new(size_t stack_size, void (*entry)(void *), void *arg)
{
    long page = sysconf(_SC_PAGESIZE);
#ifdef NODE_ASAN
    stack_size *= 4; /* instrumented frames are much larger */
#endif
    stack_size = (stack_size + (size_t) page - 1) & ~((size_t) page - 1);
    size_t map_size = stack_size + (size_t) page;
    char *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) {
        perror("skick: mmap of a fiber stack");
        abort();
    }
    if (mprotect(map, (size_t) page, PROT_NONE) != 0) {
        perror("skick: mprotect of a stack guard page");
        abort();
    }
    node_fiber_t *f = node_calloc(1, sizeof *f);
    f->map = map;
    f->map_size = map_size;
    f->entry = entry;
    f->arg = arg;
    f->stack_bottom = map + page;
    f->stack_size = stack_size;
    f->ctx = make_fcontext(map + map_size, stack_size, s_trampoline);
#ifdef NODE_VALGRIND
    f->valgrind_id = VALGRIND_STACK_REGISTER(map + page, map + map_size);
#endif
    s_alive++;
    return f;
}

void node_fiber_destroy(node_fiber_t *f)
{
    if (!f || f == &s_host)
        return;
#ifdef NODE_VALGRIND
    VALGRIND_STACK_DEREGISTER(f->valgrind_id);
#endif
#ifdef NODE_ASAN
    /* munmap leaves the shadow as the stack's last frames poisoned it: the
       next mapping at this address (another fiber's stack) would trip on it. */
    __asan_unpoison_memory_region(f->stack_bottom, f->stack_size);
#endif
    munmap(f->map, f->map_size);
    free(f);
    s_alive--;
}

void node_fiber_switch(node_fiber_t *to)
{
    node_fiber_t *self = node_fiber_current();
    if (to == self)
        return;
#ifdef NODE_ASAN
    __sanitizer_start_switch_fiber(&self->asan_fake, to->stack_bottom, to->stack_size);
#endif
    s_current = to;
    transfer_t t = jump_fcontext(to->ctx, self);
    s_after_switch(self, t);
}
