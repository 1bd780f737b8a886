/*  tools_command - the command executor of tools.so (actor type and service
    "command"; docs/tools.md)

    A conversation opened with {"action":"run","argv":[...],...} starts the
    program as a child of the shard in a process group of its own, streams
    its output as {"stream":"stdout"|"stderr","data":...} turns and ends
    with {"exit":N} or {"signal":NAME,"reason":...}. Nothing runs unless the
    operator allowed it: the program is resolved on PATH, its realpath must
    match one of the globs of SKICK_TOOLS_ALLOW (colon-separated; unset:
    nothing is allowed), and at most SKICK_TOOLS_MAX (default 16) run at once.

    Everything happens on the shard's reactor through skick_poll: the pipes
    are non-blocking, the child's exit is its pidfd turning readable (with a
    250 ms waitid look when pidfd_open is missing), and there is no thread
    and no blocking wait. The handler coroutine of each command loops:
    poll (at most 250 ms), then look whether the caller ended the
    conversation (skick_conv_recv with timeout 0), write stdin, read output,
    send turns, check the timeout.

    Bounds: a turn carries at most 16 KiB (line based: up to the last
    newline; a partial line goes out when the stream is quiet for one
    poll, the buffer is full, or at the end), the total output sent is at
    most max_output bytes (then "truncated": true, and the rest is read and
    dropped so the child does not block). Conversation turns do not go
    through the caller's bounded mailbox, so the runtime cannot say that a
    caller is slow: a caller that wants a bound below max_output opens with
    "window": N and acknowledges turns ({"ack": k}); N unacknowledged turns
    stop the reading of the pipes, and the child blocks on its full pipe
    instead of output piling up. A send refused with EFULL is tried again
    after 50 ms the same way.

    A quiet command sends {"running": true} after 2 s without a turn: the
    broker tells no one that a client vanished, and only a turn that comes
    back as a dead letter (the conversation then ends with EDEAD) says so.

    Ending: the caller ending the conversation, dying, the timeout, and the
    actor stopping all end the process group with SIGTERM, then SIGKILL
    after 2 s. When the leader exits, what is left of its group is killed
    (SIGKILL) before the leader is reaped, so a command's processes never
    outlive it and the group id cannot have been reused. A stopping actor's
    coroutines cannot wait: the records stay in the actor's state, on_stop
    ends their groups (it may suspend), and the state's destructor frees
    them.
*/
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <skick/skick.h>

#define TOOLS_CHUNK 16384                  /* bytes per output turn */
#define TOOLS_SLICE_MS 250                 /* longest poll between looks at the caller */
#define TOOLS_GRACE_MS 2000                /* SIGTERM to SIGKILL */
#define TOOLS_RETRY_MS 50                  /* a full caller mailbox is tried again after */
#define TOOLS_DEFAULT_TIMEOUT_MS 60000     /* "timeout_ms" when absent */
#define TOOLS_DEFAULT_MAX_OUTPUT 1048576   /* "max_output" when absent */
#define TOOLS_MAX_OUTPUT_CAP (64 << 20)    /* the largest "max_output" accepted */
#define TOOLS_MAX_ARGS 256                 /* argv entries */
#define TOOLS_DEFAULT_MAX 16               /* commands at once, SKICK_TOOLS_MAX */
#define TOOLS_ALIVE_MS 2000                /* a quiet command tells its caller it runs */

extern char **environ;

typedef struct {
    int fd;                 /* read end, -1 once closed */
    const char *name;       /* "stdout" / "stderr" */
    char buf[TOOLS_CHUNK];  /* bytes read, not sent yet */
    size_t len;             /* of buf */
} tools_stream_t;

typedef struct tools_cmd {
    struct tools_cmd *next; /* the actor's list of running commands */
    pid_t pid;              /* the child, leader of its own process group */
    int pidfd;              /* its pidfd, or -1 (waitid looks instead) */
    int in;                 /* stdin write end, -1 once closed */
    bool reaped;            /* waited for: pid and group are gone */
    int status;             /* wait status, once reaped */
    tools_stream_t out[2];  /* stdout, stderr */
} tools_cmd_t;

typedef struct {
    char **allow;      /* the globs of SKICK_TOOLS_ALLOW */
    size_t nallow;
    int max;           /* SKICK_TOOLS_MAX */
    int running;       /* commands now */
    tools_cmd_t *cmds; /* running, or left by a stop for on_stop and the destructor */
} tools_state_t;

/* ---- processes ----------------------------------------------------------- */

/*  Whether the leader has exited; if so, kill what is left of its group
    and reap it (the zombie holds the group id until then). */
static bool s_reap(tools_cmd_t *c)
{
    if (c->reaped)
        return true;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t) c->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        si.si_pid != c->pid)
        return false;
    kill(-c->pid, SIGKILL);
    if (waitpid(c->pid, &c->status, 0) == c->pid)
        c->reaped = true;
    return c->reaped;
}

/*  Wait up to ms for the leader to exit; false when it has not. */
static bool s_wait_exit(skick_actor_t *self, tools_cmd_t *c, int64_t ms)
{
    int64_t end = skick_now(self) + ms;
    while (!s_reap(c)) {
        int64_t left = end - skick_now(self);
        if (left <= 0)
            return false;
        if (left > TOOLS_SLICE_MS)
            left = TOOLS_SLICE_MS;
        int rc;
        if (c->pidfd >= 0) {
            skick_pollfd_t p = {.fd = c->pidfd, .events = SKICK_FD_READ};
            rc = skick_poll(self, &p, 1, left);
        } else {
            rc = skick_sleep(self, left < 20 ? left : 20);
        }
        if (rc < 0)
            return s_reap(c); /* stopping: no more waiting here */
    }
    return true;
}

/*  End the group: SIGTERM, SIGKILL after the grace period. */
static void s_terminate(skick_actor_t *self, tools_cmd_t *c)
{
    if (c->reaped)
        return;
    kill(-c->pid, SIGTERM);
    if (!s_wait_exit(self, c, TOOLS_GRACE_MS)) {
        kill(-c->pid, SIGKILL);
        s_wait_exit(self, c, TOOLS_GRACE_MS);
    }
}

static void s_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void s_cmd_free(tools_cmd_t *c)
{
    if (!c->reaped) {
        /* on_stop could not finish (its timeout): SIGKILL cannot be refused,
           so the short bounded look below nearly always reaps it */
        kill(-c->pid, SIGKILL);
        for (int i = 0; i < 100 && !s_reap(c); i++)
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    s_close(&c->pidfd);
    s_close(&c->in);
    s_close(&c->out[0].fd);
    s_close(&c->out[1].fd);
    free(c);
}

static void s_unlink(tools_state_t *st, tools_cmd_t *c)
{
    for (tools_cmd_t **p = &st->cmds; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            return;
        }
}

/* ---- the opener ------------------------------------------------------------ */

/*  The program argv[0] names: as given when it has a '/', else the first
    executable on PATH. Its realpath into real (PATH_MAX). 0 or -1. */
static int s_resolve(const char *prog, const char *cwd, char *real)
{
    char path[PATH_MAX];
    if (strchr(prog, '/')) {
        if (prog[0] != '/' && cwd)
            snprintf(path, sizeof path, "%s/%s", cwd, prog);
        else
            snprintf(path, sizeof path, "%s", prog);
        return access(path, X_OK) == 0 && realpath(path, real) ? 0 : -1;
    }
    const char *env = getenv("PATH");
    char *dirs = strdup(env && *env ? env : "/usr/local/bin:/usr/bin:/bin");
    int rc = -1;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && rc != 0;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof path, "%s/%s", d, prog);
        if (access(path, X_OK) == 0 && realpath(path, real))
            rc = 0;
    }
    free(dirs);
    return rc;
}

static bool s_allowed(tools_state_t *st, const char *real)
{
    for (size_t i = 0; i < st->nallow; i++)
        if (fnmatch(st->allow[i], real, FNM_PATHNAME) == 0)
            return true;
    return false;
}

/*  The child's environment: the shard's, with the opener's "env" members
    (string values) added or replacing. Caller frees the array and its
    strings. */
static char **s_envp(json_object *env)
{
    size_t n = 0, extra = env ? (size_t) json_object_object_length(env) : 0;
    while (environ[n])
        n++;
    char **e = calloc(n + extra + 1, sizeof *e);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        if (env && eq) {
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int) (eq - environ[i]), environ[i]);
            if (json_object_object_get_ex(env, key, NULL))
                continue;
        }
        e[k++] = strdup(environ[i]);
    }
    if (env) {
        json_object_object_foreach(env, key, val) {
            if (!json_object_is_type(val, json_type_string) || !*key || strchr(key, '='))
                continue;
            size_t len = strlen(key) + json_object_get_string_len(val) + 2;
            e[k] = malloc(len);
            snprintf(e[k++], len, "%s=%s", key, json_object_get_string(val));
        }
    }
    return e;
}

static void s_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/*  Start the child (posix_spawn: no fork of the shard's memory, and exec
    errors come back as the return value). 0 or an errno. */
static int s_spawn(tools_cmd_t *c, const char *path, char **argv, char **envp, const char *cwd)
{
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return errno;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]), close(in[1]);
        return errno;
    }
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        return errno;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE); /* the shard ignores it; the child must not inherit that */
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn(&c->pid, path, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(in[0]), close(out[1]), close(err[1]);
    if (rc != 0) {
        close(in[1]), close(out[0]), close(err[0]);
        return rc;
    }
    c->in = in[1];
    c->out[0] = (tools_stream_t){.fd = out[0], .name = "stdout"};
    c->out[1] = (tools_stream_t){.fd = err[0], .name = "stderr"};
    fcntl(c->in, F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    c->pidfd = (int) syscall(SYS_pidfd_open, c->pid, 0); /* Linux 5.3; -1: waitid looks */
    return 0;
}

/* ---- output ------------------------------------------------------------------ */

/*  How many leading bytes of b[0..n) to send: whole UTF-8 characters only
    (an incomplete one at the end waits for its rest unless at_end), and
    invalid bytes are replaced by '?' in place, so every turn is valid JSON
    text for every parser on the way. */
static size_t s_utf8_cut(char *b, size_t n, bool at_end)
{
    size_t i = 0;
    while (i < n) {
        unsigned char ch = (unsigned char) b[i];
        size_t len = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3 : (ch >> 3) == 30 ? 4 : 0;
        if (len == 0) {
            b[i++] = '?';
            continue;
        }
        if (i + len > n) {
            if (!at_end)
                return i;
            for (; i < n; i++)
                b[i] = '?';
            return n;
        }
        size_t k = 1;
        while (k < len && ((unsigned char) b[i + k] >> 6) == 2)
            k++;
        if (k < len) {
            b[i] = '?';
            i++;
            continue;
        }
        i += len;
    }
    return n;
}

typedef struct {
    skick_conv_t *conv;   /* to the caller */
    json_object *pending; /* a turn the caller's full mailbox refused, or NULL */
    int64_t sent;         /* data bytes sent */
    int64_t max_output;   /* their bound */
    bool truncated;       /* the bound was hit */
    int64_t window;       /* output turns in flight before an ack, 0: no window */
    int64_t turns;        /* output turns sent */
    int64_t acked;        /* of them acknowledged by the caller ({"ack": n}) */
    int64_t last_ms;      /* when the caller was last sent a turn */
    bool gone;            /* the caller ended the conversation or cannot be reached */
    int64_t now_ms;       /* the shard clock at the top of the current round */
} tools_out_t;

/*  Send the pending turn. 0 sent, 1 the caller's mailbox is full (try again
    later), -1 the caller is gone. */
static int s_flush_pending(tools_out_t *o)
{
    if (!o->pending)
        return 0;
    json_object *t = json_object_get(o->pending);
    if (skick_conv_send(o->conv, &t) == 0) {
        json_object_put(o->pending);
        o->pending = NULL;
        o->turns++;
        o->last_ms = o->now_ms;
        return 0;
    }
    if (skick_errno() == SKICK_EFULL)
        return 1;
    o->gone = true;
    return -1;
}

/*  Turn what s holds into a pending turn: up to the last newline, or all of
    it when force (quiet stream, full buffer, end). Only when nothing is
    pending. */
static void s_emit(tools_out_t *o, tools_stream_t *s, bool force)
{
    if (o->pending || s->len == 0)
        return;
    size_t n = s->len;
    if (!force) {
        while (n > 0 && s->buf[n - 1] != '\n')
            n--;
        if (n == 0)
            return;
    }
    n = s_utf8_cut(s->buf, n, force && s->fd < 0);
    if (n == 0 && s->fd < 0)
        n = s->len;
    if (n == 0)
        return;
    int64_t room = o->max_output - o->sent;
    size_t send = (int64_t) n > room ? (size_t) (room > 0 ? room : 0) : n;
    if (send < n)
        o->truncated = true;
    if (send > 0) {
        send = s_utf8_cut(s->buf, send, true);
        json_object *t = json_object_new_object();
        json_object_object_add(t, "stream", json_object_new_string(s->name));
        json_object_object_add(t, "data", json_object_new_string_len(s->buf, (int) send));
        o->pending = t;
        o->sent += (int64_t) send;
    }
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
}

/*  Read what s has (non-blocking) into its buffer. true if bytes came. */
static bool s_read(tools_out_t *o, tools_stream_t *s)
{
    if (s->fd < 0 || s->len == sizeof s->buf)
        return false;
    ssize_t r = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    if (r > 0) {
        if (o->truncated || o->sent >= o->max_output) {
            o->truncated = true; /* past the bound: read and dropped */
            return true;
        }
        s->len += (size_t) r;
        return true;
    }
    if (r == 0 || (errno != EAGAIN && errno != EINTR))
        s_close(&s->fd);
    return false;
}

/* ---- the run conversation ---------------------------------------------------- */

static void s_refuse(skick_actor_t *self, json_object *msg, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_refuse(skick_actor_t *self, json_object *msg, int code, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    skick_actor_log(self, SKICK_LOG_WARNING, "refused for %s: %s: %s", skick_sender(self),
                    skick_err_name(code), why);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "code", json_object_new_string(skick_err_name(code)));
    json_object_object_add(r, "error", json_object_new_string(why));
    skick_reply(self, msg, &r);
}

/*  "SIGKILL" for SIGKILL (glibc's sigabbrev_np), into buf. */
static const char *s_signame(int sig, char buf[16])
{
    const char *abbrev = sigabbrev_np(sig);
    snprintf(buf, 16, "SIG%s", abbrev ? abbrev : "UNKNOWN");
    return buf;
}

/*  Send what the buffers hold, turn after turn, until the caller's window
    or mailbox is full or nothing is left. 0, or -1 when the caller is gone. */
static int s_pump(tools_out_t *o, tools_cmd_t *c)
{
    for (;;) {
        if (o->window > 0 && o->turns - o->acked >= o->window)
            return 0;
        int fl = s_flush_pending(o);
        if (fl != 0)
            return fl < 0 ? -1 : 0;
        for (int i = 0; i < 2 && !o->pending; i++)
            s_emit(o, &c->out[i], c->out[i].fd < 0 || c->out[i].len == sizeof c->out[i].buf);
        if (!o->pending)
            return 0;
    }
}

/*  The child runs: stream until it has exited and its pipes are closed,
    or the timeout, or the caller goes. Returns the reason it was ended
    early ("timeout", "caller") or NULL; NULL with *stopping when the actor
    stops. */
static const char *s_stream(skick_actor_t *self, tools_cmd_t *c, tools_out_t *o,
                            const char *stdin_data, size_t stdin_len, int64_t deadline,
                            bool *stopping)
{
    size_t in_off = 0;
    int64_t exited_at = -1;
    if (stdin_len == 0)
        s_close(&c->in);
    o->last_ms = skick_now(self);
    for (;;) {
        o->now_ms = skick_now(self);
        if (!c->reaped && s_reap(c))
            exited_at = skick_now(self);
        else if (c->reaped && exited_at < 0)
            exited_at = skick_now(self);
        /* after the exit, the group is dead: the pipes end at once, save for
           a process that left the group (setsid); it gets 1 s */
        if (c->reaped && exited_at >= 0 && skick_now(self) - exited_at > 1000) {
            s_close(&c->out[0].fd);
            s_close(&c->out[1].fd);
        }
        if (s_pump(o, c) != 0)
            return "caller";
        if (c->reaped && c->out[0].fd < 0 && c->out[1].fd < 0 && c->out[0].len == 0 &&
            c->out[1].len == 0 && !o->pending)
            return NULL;
        int64_t now = skick_now(self);
        if (now >= deadline)
            return "timeout";
        skick_pollfd_t p[4];
        tools_stream_t *ps[4] = {NULL};
        size_t n = 0;
        /* back-pressure: the caller is slow (a full mailbox, or a window
           of unacknowledged turns): the pipes are not read meanwhile */
        bool full = o->window > 0 && o->turns - o->acked >= o->window;
        bool paused = o->pending != NULL || full;
        for (int i = 0; i < 2; i++)
            if (c->out[i].fd >= 0 && !paused && c->out[i].len < sizeof c->out[i].buf) {
                ps[n] = &c->out[i];
                p[n++] = (skick_pollfd_t){.fd = c->out[i].fd, .events = SKICK_FD_READ};
            }
        if (c->in >= 0)
            p[n++] = (skick_pollfd_t){.fd = c->in, .events = SKICK_FD_WRITE};
        if (c->pidfd >= 0 && !c->reaped)
            p[n++] = (skick_pollfd_t){.fd = c->pidfd, .events = SKICK_FD_READ};
        int64_t slice = full ? 20 : paused ? TOOLS_RETRY_MS : c->pidfd >= 0 ? TOOLS_SLICE_MS : 20;
        if (slice > deadline - now)
            slice = deadline - now;
        int rc = n ? skick_poll(self, p, n, slice) : skick_sleep(self, slice);
        if (rc < 0) {
            *stopping = skick_errno() == SKICK_ESTOPPED;
            return *stopping ? NULL : "error";
        }
        /* A client that vanished is noticed only when a turn to it comes
           back as a dead letter (the broker tells no one of a lost client):
           a quiet command sends {"running": true} now and then so that it
           does not run to its timeout for nobody. */
        if (!o->pending && skick_now(self) - o->last_ms >= TOOLS_ALIVE_MS) {
            o->last_ms = skick_now(self);
            json_object *alive = json_object_new_object();
            json_object_object_add(alive, "running", json_object_new_boolean(true));
            if (skick_conv_send(o->conv, &alive) != 0 && skick_errno() != SKICK_EFULL) {
                o->gone = true;
                return "caller";
            }
        }
        json_object *turn;
        while ((turn = skick_conv_recv(o->conv, 0))) {
            int64_t k = skick_get_int(turn, "ack", 0); /* anything else is ignored */
            if (k > 0 && k <= o->turns - o->acked)
                o->acked += k;
            json_object_put(turn);
        }
        if (skick_errno() != SKICK_ETIMEDOUT) {
            o->gone = true;
            return "caller";
        }
        if (c->in >= 0) {
            ssize_t w = write(c->in, stdin_data + in_off, stdin_len - in_off);
            if (w > 0)
                in_off += (size_t) w;
            if (in_off == stdin_len || (w < 0 && errno != EAGAIN && errno != EINTR))
                s_close(&c->in);
        }
        for (size_t i = 0; i < n; i++)
            if (ps[i]) {
                bool got = p[i].revents && s_read(o, ps[i]);
                if (!got)
                    s_emit(o, ps[i], true); /* quiet: the partial line goes out */
            }
    }
}

static int s_parse_argv(json_object *a, char **argv, size_t at)
{
    size_t n = json_object_array_length(a);
    if (n == 0 || n + at >= TOOLS_MAX_ARGS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (!json_object_is_type(v, json_type_string))
            return -1;
        argv[at + i] = (char *) json_object_get_string(v);
    }
    argv[at + n] = NULL;
    return 0;
}

/*  The first key of env that would let the caller run code of its own in
    an allowed program (LD_PRELOAD, LD_LIBRARY_PATH, GCONV_PATH...), or NULL. */
static const char *s_env_refused(json_object *env)
{
    if (!env)
        return NULL;
    json_object_object_foreach(env, key, val) {
        (void) val;
        if (strncmp(key, "LD_", 3) == 0 || strcmp(key, "GCONV_PATH") == 0 ||
            strcmp(key, "GLIBC_TUNABLES") == 0)
            return key;
    }
    return NULL;
}

static void s_run(skick_actor_t *self, json_object *msg)
{
    tools_state_t *st = skick_state(self);
    char caller[SKICK_ADDR_LEN + 1];
    snprintf(caller, sizeof caller, "%s", skick_sender(self));
    json_object *jargv = NULL, *jenv = NULL;
    if (!json_object_object_get_ex(msg, "argv", &jargv) ||
        !json_object_is_type(jargv, json_type_array)) {
        s_refuse(self, msg, SKICK_EINVAL, "\"argv\" must be a non-empty array of strings");
        return;
    }
    if (json_object_object_get_ex(msg, "env", &jenv) &&
        !json_object_is_type(jenv, json_type_object)) {
        s_refuse(self, msg, SKICK_EINVAL, "\"env\" must be an object of strings");
        return;
    }
    const char *bad_env = s_env_refused(jenv);
    if (bad_env) {
        s_refuse(self, msg, SKICK_EPERM,
                 "\"env\" may not set %.64s (the dynamic loader's variables run code that "
                 "no allow glob saw)",
                 bad_env);
        return;
    }
    bool shell = skick_get_bool(msg, "shell", false);
    const char *cwd = skick_get_string(msg, "cwd", NULL);
    int64_t timeout = skick_get_int(msg, "timeout_ms", TOOLS_DEFAULT_TIMEOUT_MS);
    int64_t max_output = skick_get_int(msg, "max_output", TOOLS_DEFAULT_MAX_OUTPUT);
    int64_t window = skick_get_int(msg, "window", 0);
    if (timeout <= 0 || max_output < 0 || max_output > TOOLS_MAX_OUTPUT_CAP || window < 0 ||
        window > 4096) {
        s_refuse(self, msg, SKICK_EINVAL,
                 "\"timeout_ms\" must be > 0, \"max_output\" in 0..%d, \"window\" in 0..4096",
                 TOOLS_MAX_OUTPUT_CAP);
        return;
    }
    char *argv[TOOLS_MAX_ARGS + 3];
    size_t at = 0;
    if (shell) {
        argv[0] = "sh";
        argv[1] = "-c";
        at = 2;
    }
    if (s_parse_argv(jargv, argv, at) != 0) {
        s_refuse(self, msg, SKICK_EINVAL, "\"argv\" must be 1..%d strings", TOOLS_MAX_ARGS - 3);
        return;
    }
    const char *prog = shell ? "/bin/sh" : argv[0];
    char real[PATH_MAX];
    if (s_resolve(prog, cwd, real) != 0) {
        s_refuse(self, msg, SKICK_ENOTFOUND, "no executable '%s' (on PATH or as given)", prog);
        return;
    }
    if (!s_allowed(st, real)) {
        s_refuse(self, msg, SKICK_EPERM, "'%s' is not allowed on this shard (SKICK_TOOLS_ALLOW)",
                 real);
        return;
    }
    if (st->running >= st->max) {
        s_refuse(self, msg, SKICK_EBUSY, "%d commands are running, the limit (SKICK_TOOLS_MAX)",
                 st->running);
        return;
    }
    tools_cmd_t *c = calloc(1, sizeof *c);
    c->pidfd = c->in = c->out[0].fd = c->out[1].fd = -1;
    char **envp = s_envp(jenv);
    int err = s_spawn(c, real, argv, envp, cwd);
    s_strv_free(envp);
    if (err != 0) {
        free(c);
        s_refuse(self, msg, SKICK_ESTART, "cannot start '%s': %s", real, strerror(err));
        return;
    }
    c->next = st->cmds;
    st->cmds = c;
    st->running++;
    skick_actor_log(self, SKICK_LOG_NOTICE, "run for %s: pid %d %s argv %.300s%s", caller,
                    (int) c->pid, real, json_object_to_json_string(jargv),
                    shell ? " (shell)" : "");

    tools_out_t o = {.conv = skick_respond(self, msg), .max_output = max_output,
                     .window = window};
    const char *in = skick_get_string(msg, "stdin", "");
    bool stopping = false;
    const char *why = s_stream(self, c, &o, in, strlen(in), skick_now(self) + timeout, &stopping);
    if (stopping) {
        /* the record stays in the state: on_stop ends the group */
        json_object_put(o.pending);
        st->running--;
        return;
    }
    if (why)
        s_terminate(self, c);
    json_object *end = json_object_new_object();
    if (c->reaped && WIFEXITED(c->status) && !why) {
        json_object_object_add(end, "exit", json_object_new_int(WEXITSTATUS(c->status)));
    } else {
        int sig = c->reaped && WIFSIGNALED(c->status) ? WTERMSIG(c->status) : SIGKILL;
        char name[16];
        json_object_object_add(end, "signal", json_object_new_string(s_signame(sig, name)));
        if (why)
            json_object_object_add(end, "reason", json_object_new_string(why));
        else if (c->reaped && WIFEXITED(c->status))
            json_object_object_add(end, "exit", json_object_new_int(WEXITSTATUS(c->status)));
    }
    if (o.truncated)
        json_object_object_add(end, "truncated", json_object_new_boolean(true));
    skick_actor_log(self, SKICK_LOG_NOTICE, "pid %d for %s ended: %s", (int) c->pid, caller,
                    json_object_to_json_string(end));
    json_object_put(o.pending);
    if (!o.gone) {
        skick_conv_send(o.conv, &end);
    }
    json_object_put(end);
    skick_conv_close(&o.conv);
    s_unlink(st, c);
    st->running--;
    s_cmd_free(c);
}

/* ---- the actor ------------------------------------------------------------------- */

static void s_state_free(void *p)
{
    tools_state_t *st = p;
    while (st->cmds) {
        tools_cmd_t *c = st->cmds;
        st->cmds = c->next;
        s_cmd_free(c);
    }
    for (size_t i = 0; i < st->nallow; i++)
        free(st->allow[i]);
    free(st->allow);
}

/*  Every group still running gets SIGTERM at once, SIGKILL after the grace
    period, and is reaped (on_stop may suspend). */
static void s_on_stop(skick_actor_t *self)
{
    tools_state_t *st = skick_state(self);
    for (tools_cmd_t *c = st->cmds; c; c = c->next)
        if (!c->reaped)
            kill(-c->pid, SIGTERM);
    int64_t end = skick_now(self) + TOOLS_GRACE_MS;
    for (int sig = SIGTERM; sig;) {
        bool left = false;
        for (tools_cmd_t *c = st->cmds; c; c = c->next)
            left |= !s_reap(c);
        if (!left)
            break;
        if (skick_now(self) >= end || skick_sleep(self, 20) != 0) {
            if (sig == SIGKILL)
                break; /* the destructor has the last word */
            sig = SIGKILL;
            end = skick_now(self) + TOOLS_GRACE_MS;
            for (tools_cmd_t *c = st->cmds; c; c = c->next)
                if (!c->reaped)
                    kill(-c->pid, SIGKILL);
        }
    }
}

static void s_on_start(skick_actor_t *self)
{
    tools_state_t *st = skick_state(self);
    if (skick_register_service(self, "command") != 0)
        skick_fail(self, "cannot register the service \"command\"");
    if (st->nallow == 0)
        skick_actor_log(self, SKICK_LOG_NOTICE,
                        "no program is allowed (SKICK_TOOLS_ALLOW is empty): every run is refused");
}

static void s_command(skick_actor_t *self, json_object *init)
{
    tools_state_t *st = skick_state_new(self, sizeof *st, s_state_free);
    const char *allow = getenv("SKICK_TOOLS_ALLOW");
    if (allow && *allow) {
        char *list = strdup(allow);
        for (char *save = NULL, *g = strtok_r(list, ":", &save); g;
             g = strtok_r(NULL, ":", &save)) {
            st->allow = realloc(st->allow, (st->nallow + 1) * sizeof *st->allow);
            st->allow[st->nallow++] = strdup(g);
        }
        free(list);
    }
    const char *max = getenv("SKICK_TOOLS_MAX");
    st->max = max && atoi(max) > 0 ? atoi(max) : TOOLS_DEFAULT_MAX;
    skick_conversation(self, "run", NULL, s_run);
    skick_on_start(self, s_on_start);
    skick_on_stop(self, s_on_stop);
}

/*  The shard's start: one command actor, the provider of "command". */
static void s_shard_start(skick_actor_t *shard)
{
    skick_addr_t a = skick_spawn(shard, "command", NULL, SKICK_LOCAL);
    if (!a.str[0])
        skick_fail(shard, "tools: cannot spawn the command actor: %s",
                   skick_strerror(skick_errno()));
}

SKICK_MODULE(tools_command)
{
    skick_actor(app, "command", s_command);
    skick_app_on_start(app, s_shard_start);
}
