/*  fuzz_common - what every libFuzzer target in tests/fuzz shares

    FUZZ_ASSERT aborts with a message when an invariant breaks (libFuzzer
    then writes the input as crash-<sha1> and the run fails: see
    docs/fuzzing.md). The malloc counter (AddressSanitizer's hooks) lets a
    target assert that a path documented as allocation-free is. Header only:
    each target is one translation unit.
*/
#ifndef SKICK_FUZZ_COMMON_H_INCLUDED
#define SKICK_FUZZ_COMMON_H_INCLUDED

#include <pthread.h>
#include <sanitizer/allocator_interface.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "skick_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "\nfuzz invariant broken at %s:%d: %s\n  ", __FILE__, __LINE__,        \
                    #cond);                                                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*  What the first input would otherwise do once (and LeakSanitizer would
    count against it): the JSON reader makes its "C" locale on the first
    number it converts. */
static inline void fuzz_warm_up(void)
{
    json_object *v = NULL;
    skick_json_parse_strict("1.5", 3, &v);
    json_object_put(v);
}

/*  When the current input started (CLOCK_MONOTONIC ms), 0 between inputs. */
static _Atomic int64_t fuzz_input_started_ms;

static int64_t fuzz_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *fuzz_watchdog(void *arg)
{
    int64_t limit_ms = 1000 * (int64_t) (intptr_t) arg;
    for (;;) {
        sleep(1); /* libFuzzer's SIGALRM lands here too, and is ignored off its thread */
        int64_t t = fuzz_input_started_ms;
        if (t && fuzz_now_ms() - t > limit_ms) {
            fprintf(stderr, "\nfuzz watchdog: one input ran longer than %lld s\n",
                    (long long) (limit_ms / 1000));
            abort(); /* libFuzzer's crash handler writes the input */
        }
    }
    return NULL;
}

/*  For a target whose ZeroMQ sockets live from one input to the next:
    libFuzzer's SIGALRM (its -timeout check, every second or so) would make a
    receive fail with EINTR, a failure of the harness, not of the code. The
    signal is blocked on the fuzzing thread and a watchdog thread of our own
    times inputs instead (FUZZ_TIMEOUT seconds, default 10): wrap each input
    in fuzz_input_begin / fuzz_input_end. Call from LLVMFuzzerInitialize
    (libzmq's own threads block every signal). */
static inline void fuzz_signals_elsewhere(void)
{
    const char *env = getenv("FUZZ_TIMEOUT");
    intptr_t secs = env && atoi(env) > 0 ? atoi(env) : 10;
    pthread_t t;
    pthread_create(&t, NULL, fuzz_watchdog, (void *) secs);
    pthread_detach(t);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static inline void fuzz_input_begin(void)
{
    fuzz_input_started_ms = fuzz_now_ms();
}

static inline void fuzz_input_end(void)
{
    fuzz_input_started_ms = 0;
}

/*  Allocations made by this thread since the last fuzz_mallocs_reset. */
static _Thread_local size_t fuzz_malloc_count;
static bool fuzz_hooks_installed;

static void fuzz_malloc_hook(const volatile void *ptr, size_t size)
{
    (void) ptr;
    (void) size;
    fuzz_malloc_count++;
}

static void fuzz_free_hook(const volatile void *ptr)
{
    (void) ptr;
}

/*  Start counting allocations (hooks installed on first use). */
static inline void fuzz_mallocs_reset(void)
{
    if (!fuzz_hooks_installed) {
        __sanitizer_install_malloc_and_free_hooks(fuzz_malloc_hook, fuzz_free_hook);
        fuzz_hooks_installed = true;
    }
    fuzz_malloc_count = 0;
}

static inline size_t fuzz_mallocs(void)
{
    return fuzz_malloc_count;
}

/*  A reader over the input: pieces split on a separator, or bytes. */
typedef struct {
    const uint8_t *p, *end; /* what is left */
    bool done;              /* the last piece was taken */
} fuzz_cursor_t;

static inline fuzz_cursor_t fuzz_cursor(const uint8_t *data, size_t size)
{
    return (fuzz_cursor_t){data, data + size, false};
}

/*  The next piece up to the byte sep (not included). An input of k
    separators has k + 1 pieces, empty ones included. False when none is
    left. */
static inline bool fuzz_next(fuzz_cursor_t *c, uint8_t sep, const uint8_t **piece, size_t *len)
{
    if (c->done)
        return false;
    const uint8_t *q = c->p;
    while (q < c->end && *q != sep)
        q++;
    *piece = c->p;
    *len = (size_t) (q - c->p);
    if (q < c->end)
        c->p = q + 1;
    else
        c->done = true;
    return true;
}

/*  The next n bytes, or NULL (and nothing taken) when fewer are left. */
static inline const uint8_t *fuzz_take(fuzz_cursor_t *c, size_t n)
{
    if ((size_t) (c->end - c->p) < n)
        return NULL;
    const uint8_t *at = c->p;
    c->p += n;
    return at;
}

/*  The next byte, or def when none is left. */
static inline uint8_t fuzz_byte(fuzz_cursor_t *c, uint8_t def)
{
    const uint8_t *b = fuzz_take(c, 1);
    return b ? *b : def;
}

/*  s[0..n) as C-escaped text for messages (static buffer, first 120 bytes). */
static inline const char *fuzz_show(const void *s, size_t n)
{
    static char out[4 * 120 + 4];
    const unsigned char *b = s;
    size_t o = 0;
    for (size_t i = 0; i < n && i < 120; i++)
        o +=
            (size_t) snprintf(out + o, sizeof out - o,
                              b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\' ? "%c" : "\\x%02x", b[i]);
    if (n > 120)
        snprintf(out + o, sizeof out - o, "...");
    return out;
}

#endif
