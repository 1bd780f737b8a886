/*  skick_loglimit - a log-line budget (skick_loglimit.h) */
#include "skick_loglimit.h"
#include "skick_clock.h"

#include <stdio.h>

#include "skick/log.h"

void skick_log_vlimited(skick_loglimit_t *rl, int level, const char *tag, const char *fmt,
                        va_list ap)
{
    if (level < skick_log_threshold)
        return;
    int64_t now = skick_clock_ms();
    if (rl->window_ms == 0 || now - rl->window_ms >= SKICK_LOGLIMIT_WINDOW_MS) {
        rl->window_ms = now;
        rl->lines = 0;
    }
    if (rl->lines >= SKICK_LOGLIMIT_LINES) {
        rl->suppressed++;
        return;
    }
    rl->lines++;
    char line[1200];
    vsnprintf(line, sizeof line, fmt, ap);
    if (rl->suppressed)
        skick_log_write(level, tag, NULL, "%s (%llu similar lines not logged)", line,
                        (unsigned long long) rl->suppressed);
    else
        skick_log_write(level, tag, NULL, "%s", line);
    rl->suppressed = 0;
}

void skick_log_limited(skick_loglimit_t *rl, int level, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    skick_log_vlimited(rl, level, tag, fmt, ap);
    va_end(ap);
}
