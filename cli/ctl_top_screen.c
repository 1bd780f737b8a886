/*  ctl_top_screen - skickctl top: what a sample looks like, and the terminal

    The screen is plain ANSI (no curses): the alternate screen and a hidden
    cursor while top runs, each frame drawn from the top-left corner with
    every line cleared to its end and cut to the terminal's width (UTF-8
    aware), then the rest of the screen cleared. The terminal is put in
    non-canonical mode without echo so single keys arrive at once; keys
    are read with poll between refreshes, so a key acts at once and the
    refresh keeps its rhythm.

    Restoring: on q, on SIGINT/SIGTERM/SIGHUP (caught: they only set a
    flag that ends the loop) and on any failure path, the terminal gets
    its saved termios back, the cursor and the normal screen. SIGWINCH sets
    a flag: the next frame is drawn at the new size at once. A sample
    (one ps and one actors request per shard, each bounded, see
    ctl_top.c) happens between two frames; the keys typed meanwhile are
    read right after it.
*/
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl_top.h"

/* ---- cells --------------------------------------------------------------------- */

static const char *s_count(long long v, char *b, size_t len)
{
    if (v == TOP_UNKNOWN)
        return "?";
    snprintf(b, len, "%lld", v);
    return b;
}

static const char *s_rate(double v, bool known, char *b, size_t len)
{
    if (!known || v < 0)
        return "?";
    snprintf(b, len, "%.1f", v);
    return b;
}

static const char *s_bytes(long long v, char *b, size_t len)
{
    if (v == TOP_UNKNOWN)
        return "?";
    if (v >= 10LL << 30)
        snprintf(b, len, "%lldG", v >> 30);
    else if (v >= 10LL << 20)
        snprintf(b, len, "%lldM", v >> 20);
    else
        snprintf(b, len, "%lldK", v >> 10);
    return b;
}

static const char *s_state(const top_shard_t *s)
{
    if (s->state == TOP_LOST)
        return "lost";
    if (s->state == TOP_STALE)
        return s->heartbeat_age_ms > TOP_STALE_HEARTBEAT_MS ? "stale (silent)"
                                                            : "stale (no answer)";
    return "ok";
}

/* ---- rendering ------------------------------------------------------------------- */

/*  The shard table and the types table, into a memory stream. */
static void s_tables(top_t *t, FILE *out, int type_rows)
{
    static const char *const head[] = {"NAME",     "SHARD",  "ROLE",     ">PID",
                                       ">ACTORS",  ">SESS",  ">CLIENTS", ">MSGS/S",
                                       ">MAILBOX", ">ERR/S", ">RSS",     "STATE"};
    ctl_table_t *tab = ctl_table_new(12, head);
    int order[TOP_MAX_SHARDS];
    ctl_top_order(t, order);
    double msgs = 0, errs = 0;
    long long actors = 0, sessions = 0, clients = 0;
    int stale = 0;
    for (int k = 0; k < t->nshards; k++) {
        const top_shard_t *s = &t->shards[order[k]];
        bool ok = s->state == TOP_OK, listed = s->state != TOP_LOST;
        char b[10][32];
        snprintf(b[9], sizeof b[9], "%lld", s->pid);
        const char *row[] = {s->name,
                             s->id,
                             s->roles,
                             b[9],
                             listed ? s_count(s->actors, b[0], sizeof b[0]) : "?",
                             listed ? s_count(s->sessions, b[1], sizeof b[1]) : "?",
                             !strstr(s->roles, "front") ? "-"
                             : listed                   ? s_count(s->clients, b[2], sizeof b[2])
                                                        : "?",
                             s_rate(s->msgs_s, ok, b[3], sizeof b[3]),
                             ok ? s_count(s->mailbox_max, b[4], sizeof b[4]) : "?",
                             s_rate(s->errors_s, ok, b[5], sizeof b[5]),
                             s_bytes(s->rss, b[6], sizeof b[6]),
                             s_state(s)};
        ctl_table_add(tab, row);
        if (!ok) {
            stale++;
            continue;
        }
        msgs += s->msgs_s > 0 ? s->msgs_s : 0;
        errs += s->errors_s > 0 ? s->errors_s : 0;
        actors += s->actors > 0 ? s->actors : 0;
        sessions += s->sessions > 0 ? s->sessions : 0;
        clients += s->clients > 0 ? s->clients : 0;
    }
    fprintf(out,
            "Shards: %d (%d not answering)  actors %lld  sessions %lld  clients %lld  "
            "msgs/s %.1f  errors/s %.1f\n\n",
            t->nshards, stale, actors, sessions, clients, msgs, errs);
    ctl_table_print(tab, out);
    ctl_table_destroy(&tab);

    /* the busiest types: most queued, then most busy, then most actors */
    int idx[TOP_MAX_TYPES];
    for (int i = 0; i < t->ntypes; i++)
        idx[i] = i;
    for (int i = 1; i < t->ntypes; i++) { /* insertion sort: a few dozen types */
        int v = idx[i], j = i;
        const top_type_t *x = &t->types[v];
        while (j > 0) {
            const top_type_t *y = &t->types[idx[j - 1]];
            bool before = x->queued != y->queued ? x->queued > y->queued
                          : x->busy != y->busy   ? x->busy > y->busy
                                                 : x->actors > y->actors;
            if (!before)
                break;
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
    static const char *const thead[] = {"TYPE",  ">ACTORS", ">SHARDS",
                                        ">BUSY", ">QUEUED", ">DEPTH MAX"};
    ctl_table_t *types = ctl_table_new(6, thead);
    int shown = type_rows > 0 && type_rows < t->ntypes ? type_rows : t->ntypes;
    for (int k = 0; k < shown; k++) {
        const top_type_t *ty = &t->types[idx[k]];
        char b[5][32];
        snprintf(b[0], sizeof b[0], "%lld", ty->actors);
        snprintf(b[1], sizeof b[1], "%d", ty->shards);
        snprintf(b[2], sizeof b[2], "%lld", ty->busy);
        snprintf(b[3], sizeof b[3], "%lld", ty->queued);
        snprintf(b[4], sizeof b[4], "%lld", ty->depth_max);
        const char *row[] = {ty->type, b[0], b[1], b[2], b[3], b[4]};
        ctl_table_add(types, row);
    }
    fprintf(out, "\nBusiest actor types (by queued messages, busy actors, actors)%s:\n",
            t->types_truncated ? "; from the first 1000 actors of each shard" : "");
    ctl_table_print(types, out);
    ctl_table_destroy(&types);
    if (shown < t->ntypes)
        fprintf(out, "(%d more types)\n", t->ntypes - shown);
}

/*  Columns of the first n bytes of s (UTF-8 characters). */
static size_t s_cut(const char *s, size_t len, int width)
{
    int cols = 0;
    size_t i = 0;
    for (; i < len; i++) {
        if (((unsigned char) s[i] & 0xC0) != 0x80) {
            if (cols == width)
                break;
            cols++;
        }
    }
    return i;
}

void ctl_top_render(top_t *t, FILE *out, int width, int height, bool keys)
{
    char *body = NULL;
    size_t blen = 0;
    FILE *m = open_memstream(&body, &blen);
    if (!m)
        return;
    char when[32];
    time_t sec = (time_t) (t->sample_wall_ms / 1000);
    struct tm tm;
    strftime(when, sizeof when, "%H:%M:%S", localtime_r(&sec, &tm));
    fprintf(m, "skickctl top - %s  %s  broker %s  refresh %.1fs  sort %s%s\n", when,
            t->ctl->run_dir, t->broker_id[0] ? t->broker_id : "?", t->interval_s,
            ctl_top_sort_name(t->sort), t->reverse ? " (reversed)" : "");
    if (keys)
        fprintf(m, "Keys: n name, a actors, s sessions, m msgs/s, x mailbox, e errors/s, r rss; "
                   "< > column, i invert, space refresh, q quit\n");
    if (!t->broker_ok)
        fprintf(m, "broker not answering (%s): figures as last seen\n", t->broker_error);
    /* rows for the types: what is left below the shards (header 4-5 lines,
       the shard table nshards + 1, the types' title and header 3) */
    int used = 6 + (keys ? 1 : 0) + (!t->broker_ok ? 1 : 0) + t->nshards + 1;
    int type_rows = height > 0 ? height - used - 1 : 0;
    s_tables(t, m, height > 0 ? (type_rows > 1 ? type_rows : 1) : 0);
    fclose(m);
    int lines = 0;
    for (char *p = body; p && *p && (height <= 0 || lines < height); lines++) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t) (nl - p) : strlen(p);
        size_t keep = width > 0 ? s_cut(p, n, width) : n;
        fwrite(p, 1, keep, out);
        if (width > 0)
            fputs("\033[K", out); /* clear what the last frame left on the line */
        if (width > 0 && height > 0 && lines == height - 1)
            break; /* no newline on the last row: it would scroll */
        fputc('\n', out);
        p = nl ? nl + 1 : p + n;
    }
    free(body);
}

/* ---- the terminal ------------------------------------------------------------------ */

static volatile sig_atomic_t s_quit, s_resized;
static struct termios s_saved;
static bool s_raw;

static void s_on_signal(int sig)
{
    if (sig == SIGWINCH)
        s_resized = 1;
    else
        s_quit = 1;
}

static void s_restore(void)
{
    if (!s_raw)
        return;
    fputs("\033[?25h\033[?1049l", stdout); /* cursor back, normal screen */
    fflush(stdout);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &s_saved);
    s_raw = false;
}

static int s_enter(void)
{
    if (tcgetattr(STDIN_FILENO, &s_saved) != 0)
        return -1;
    struct termios raw = s_saved;
    raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0)
        return -1;
    s_raw = true;
    atexit(s_restore); /* an exit from a helper must not leave the terminal raw */
    fputs("\033[?1049h\033[?25l", stdout);
    fflush(stdout);
    return 0;
}

static void s_size(int *w, int *h)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *w = ws.ws_col;
        *h = ws.ws_row;
    } else {
        *w = 80;
        *h = 24;
    }
}

static void s_draw(top_t *t)
{
    int w, h;
    s_size(&w, &h);
    fputs("\033[H", stdout);
    ctl_top_render(t, stdout, w, h, true);
    fputs("\033[J", stdout); /* below the frame */
    fflush(stdout);
}

/*  Act on one key: 1 redraw, 2 resample, -1 quit, 0 nothing. */
static int s_key(top_t *t, char k)
{
    for (int s = 0; s < TOP_SORT_COUNT; s++)
        if (k == ctl_top_sort_key((top_sort_t) s)) {
            t->sort = (top_sort_t) s;
            return 1;
        }
    switch (k) {
    case 'q':
    case 'Q':
    case 3: /* Ctrl-C arrives as a signal; this is for terminals that send it as a byte */
        return -1;
    case '<':
        t->sort = (top_sort_t) ((t->sort + TOP_SORT_COUNT - 1) % TOP_SORT_COUNT);
        return 1;
    case '>':
        t->sort = (top_sort_t) ((t->sort + 1) % TOP_SORT_COUNT);
        return 1;
    case 'i':
    case 'I':
        t->reverse = !t->reverse;
        return 1;
    case ' ':
        return 2;
    default:
        return 0;
    }
}

int ctl_top_interactive(top_t *t)
{
    struct sigaction sa = {.sa_handler = s_on_signal}, old[4];
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, &old[i]); /* no SA_RESTART: poll returns EINTR */
    if (s_enter() != 0) {
        for (int i = 0; i < 4; i++)
            sigaction(sigs[i], &old[i], NULL);
        return ctl_fail(t->ctl, SKICK_EINVAL, "cannot set up the terminal: %s", strerror(errno));
    }
    long long next = 0;
    while (!s_quit) {
        if (ctl_mono_ms() >= next) {
            ctl_top_sample(t);
            next = ctl_mono_ms() + (long long) (t->interval_s * 1000.0);
            s_draw(t);
        }
        if (s_resized) {
            s_resized = 0;
            s_draw(t);
        }
        long long left = next - ctl_mono_ms();
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = poll(&p, 1, left > 0 ? (int) left : 0);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
            break; /* the terminal went away */
        char keys[64];
        ssize_t n = read(STDIN_FILENO, keys, sizeof keys);
        if (n <= 0)
            continue;
        int act = 0;
        for (ssize_t i = 0; i < n && act >= 0; i++) {
            int a = s_key(t, keys[i]);
            act = a < 0 ? -1 : a > act ? a : act;
        }
        if (act < 0)
            break;
        if (act == 2)
            next = 0;
        else if (act == 1)
            s_draw(t);
    }
    s_restore();
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &old[i], NULL);
    return CTL_OK;
}
