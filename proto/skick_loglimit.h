/*  skick_loglimit - a log-line budget for lines a peer can make happen often

    At most SKICK_LOGLIMIT_LINES lines per SKICK_LOGLIMIT_WINDOW_MS under
    one budget; the first line after some were skipped says how many. Used
    where no shard's per-call-site limits exist (the broker's, the Redis
    connection's). One thread per budget.

    Ownership: the budget is the caller's (zero it to start).
*/
#ifndef SKICK_LOGLIMIT_H_INCLUDED
#define SKICK_LOGLIMIT_H_INCLUDED

#include <stdarg.h>
#include <stdint.h>

#define SKICK_LOGLIMIT_LINES 10
#define SKICK_LOGLIMIT_WINDOW_MS 10000

typedef struct {
    int64_t window_ms;   /* start of the current window (monotonic ms) */
    unsigned lines;      /* lines logged in this window */
    uint64_t suppressed; /* lines skipped since the last one logged */
} skick_loglimit_t;

/*  Log one line at level with tag under rl's budget (below the log
    threshold: nothing, and nothing counted). */
void skick_log_limited(skick_loglimit_t *rl, int level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*  va_list form of skick_log_limited. */
void skick_log_vlimited(skick_loglimit_t *rl, int level, const char *tag, const char *fmt,
                        va_list ap);

#endif
