/*  skick/log.h - leveled logging with component tags, to stderr

    Lines look like `skick-node[123] warning mailbox 1f..:9a..: text`. When
    stderr is connected to journald (JOURNAL_STREAM is set) each line starts
    with a syslog priority prefix `<4>` so journald stores the level. The level
    is checked before the arguments are evaluated, so a disabled debug line
    costs one comparison. Thread-safe: one write(2) per line.
*/
#ifndef SKICK_LOG_H_INCLUDED
#define SKICK_LOG_H_INCLUDED

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SKICK_LOG_DEBUG = 0,
    SKICK_LOG_INFO = 1,
    SKICK_LOG_NOTICE = 2,
    SKICK_LOG_WARNING = 3,
    SKICK_LOG_ERROR = 4,
    SKICK_LOG_SILENT = 5, /* only as a threshold: log nothing */
} skick_log_level_t;

/*  The current threshold; lines below it are skipped. Default SKICK_LOG_INFO,
    or the value of the SKICK_LOG_LEVEL environment variable. */
extern int skick_log_threshold;

/*  Set the threshold. */
void skick_log_set_level(int level);

/*  Parse "debug", "info", "notice", "warning", "error" or "silent". Returns
    the level or -1 if the name is unknown. */
int skick_log_level_parse(const char *name);

/*  Set the program name printed at the start of each line (borrowed, must
    outlive the process; default "skick"). */
void skick_log_set_ident(const char *ident);

/*  Write one line. tag is a short component name ("mailbox", "conv"); who is
    an actor address or NULL. Use the SKICK_LOG macro instead of calling this
    directly so that disabled levels cost nothing. */
void skick_log_write(int level, const char *tag, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*  va_list form of skick_log_write. */
void skick_log_vwrite(int level, const char *tag, const char *who, const char *fmt,
                      va_list ap);

#define SKICK_LOG(level, tag, ...)                                                  \
    do {                                                                            \
        if ((level) >= skick_log_threshold)                                         \
            skick_log_write((level), (tag), NULL, __VA_ARGS__);                     \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
