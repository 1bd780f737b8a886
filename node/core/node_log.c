/*  node_log - leveled log lines to stderr, journald-aware

    One write(2) per line so lines from several threads (civetweb workers
    later) never interleave. Under systemd (JOURNAL_STREAM set) each line gets
    a "<N>" syslog priority prefix and no timestamp, since journald adds its
    own; elsewhere lines carry an ISO-8601 UTC timestamp.
*/
#include "skick/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int skick_log_threshold = SKICK_LOG_INFO;
static const char *s_ident = "skick";
static int s_journal = -1; /* -1 unknown, 0 no, 1 yes */

static const char *const s_names[] = {"debug", "info", "notice", "warning", "error"};
static const int s_syslog_prio[] = {7, 6, 5, 4, 3};

__attribute__((constructor)) static void s_log_init(void)
{
    const char *env = getenv("SKICK_LOG_LEVEL");
    int level = env ? skick_log_level_parse(env) : -1;
    if (level >= 0)
        skick_log_threshold = level;
}

void skick_log_set_level(int level)
{
    skick_log_threshold = level;
}

int skick_log_level_parse(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (strcasecmp(name, s_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warn") == 0)
        return SKICK_LOG_WARNING;
    if (strcasecmp(name, "silent") == 0 || strcasecmp(name, "none") == 0)
        return SKICK_LOG_SILENT;
    return -1;
}

void skick_log_set_ident(const char *ident)
{
    s_ident = ident;
}

void skick_log_vwrite(int level, const char *tag, const char *who, const char *fmt,
                      va_list ap)
{
    if (level < SKICK_LOG_DEBUG)
        level = SKICK_LOG_DEBUG;
    if (level > SKICK_LOG_ERROR)
        level = SKICK_LOG_ERROR;
    if (s_journal < 0)
        s_journal = getenv("JOURNAL_STREAM") != NULL;
    char line[2048];
    int n;
    if (s_journal) {
        n = snprintf(line, sizeof line, "<%d>%s %s%s%s: ", s_syslog_prio[level],
                     s_names[level], tag ? tag : "-", who ? " " : "", who ? who : "");
    } else {
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s %s%s%s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int) (tv.tv_usec / 1000), s_ident, (int) getpid(),
                     s_names[level], tag ? tag : "-", who ? " " : "", who ? who : "");
    }
    if (n < 0 || (size_t) n >= sizeof line)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t) n - 1, fmt, ap);
    size_t len = (size_t) n + (m < 0 ? 0 : (size_t) m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void) w;
}

void skick_log_write(int level, const char *tag, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    skick_log_vwrite(level, tag, who, fmt, ap);
    va_end(ap);
}
