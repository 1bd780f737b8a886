/*  ctl.h - private umbrella of skickctl (the cli directory)

    skickctl.c: main, global options, the command table, help, errors.
    ctl_cluster.c: the run directory, binaries, logs, shard names.
    ctl_record.c: the launcher's record (cluster.json), its lock, and what
        each recorded process has become (alive, or how it ended).
    ctl_spawn.c: starting processes detached under a watcher, stopping them.
    ctl_launch.c: up, down, and waiting for the broker's view.
    ctl_scale.c: scale.
    ctl_ps.c: ps (the broker's view joined with the record).
    ctl_query.c: actors, services, sessions, stats, send, ask, stop.
    ctl_misc.c: logs, keygen.
    ctl_table.c: human tables.

    Exit statuses: CTL_OK 0, CTL_FAIL 1 (a one-line "skickctl: CODE: text"
    on stderr), CTL_USAGE 2.
*/
#ifndef CTL_H_INCLUDED
#define CTL_H_INCLUDED

#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "skick/client.h"

#define CTL_OK 0
#define CTL_FAIL 1
#define CTL_USAGE 2

#define CTL_MAX_ARGS 128

typedef struct {
    const char *prog;            /* "skickctl" */
    const char *cmd;             /* the command running, for messages */
    char run_dir[PATH_MAX];      /* --run-dir, $SKICK_RUN_DIR or /tmp/skick-UID/run */
    char control[PATH_MAX + 16]; /* --control, $SKICK_CONTROL or ipc://RUN_DIR/control */
    bool control_given;          /* --control or $SKICK_CONTROL was used */
    bool json;                   /* --json */
    int timeout_ms;              /* --timeout (default 5000) */
    const char *curve_secret;    /* --curve-secret */
    const char *curve_server;    /* --curve-server */
    char *argv_area;             /* main's argv strings, rewritten by the watchers */
    size_t argv_len;             /* their size, NULs included */
} ctl_t;

/*  One command option as parsed: the option's val and its argument. */
typedef struct {
    int val;         /* struct option val */
    const char *arg; /* optarg or NULL */
} ctl_opt_t;

typedef struct {
    ctl_opt_t opts[CTL_MAX_ARGS]; /* command options in order */
    int nopts;
    char *pos[CTL_MAX_ARGS]; /* positional arguments */
    int npos;
} ctl_args_t;

/* skickctl.c */
/*  Print "skickctl: CODE: text" on stderr (and in --json mode an error
    object on stdout); returns CTL_FAIL. */
int ctl_fail(ctl_t *ctl, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*  The last skick_client error as a failure. */
int ctl_fail_client(ctl_t *ctl, const char *what);
/*  A usage error for the running command; returns CTL_USAGE. */
int ctl_usage(ctl_t *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*  Connect to the control endpoint (CURVE from the options or cluster.json).
    NULL after printing the failure. */
skick_client_t *ctl_connect(ctl_t *ctl);
/*  Print v as compact JSON and a newline on stdout. */
void ctl_print_json(json_object *v);
/*  Parse a non-negative integer option; -1 (after a usage message) if bad. */
int ctl_parse_int(ctl_t *ctl, const char *opt, const char *text, long min, long max, long *out);

/* ctl_cluster.c */
/*  The string at key of object o, or NULL (borrowed). */
const char *ctl_str(json_object *o, const char *key);
/*  The value at key of object o, or NULL (borrowed). */
json_object *ctl_get(json_object *o, const char *key);
/*  The integer at key of object o, or 0. */
long long ctl_int(json_object *o, const char *key);
/*  The name of the cluster process with this pid, or NULL. */
const char *ctl_name_for_pid(json_object *cluster, long long pid);
/*  Find a program: $envvar, then next to skickctl (build tree: ../dir/name;
    installed: same directory), then PATH. 0 with out filled, or -1. */
int ctl_find_binary(const char *envvar, const char *subdir, const char *name, char *out,
                    size_t outlen);
/*  mkdir -p with mode for every created level; 0 or -1 (errno). */
int ctl_mkdirs(const char *path, mode_t mode);
/*  Wall-clock milliseconds. */
long long ctl_wall_ms(void);
/*  Monotonic milliseconds. */
long long ctl_mono_ms(void);
/*  Print the last n lines of path to out, each prefixed with prefix. */
void ctl_tail(const char *path, int n, const char *prefix, FILE *out);
/*  Resolve a shard argument (16 lowhex id, or a cluster name like back-1)
    against a ps result; out gets the id. 0, or -1 (not found). */
int ctl_resolve_shard(json_object *cluster, json_object *ps, const char *arg, char out[17]);
/*  The display name of a ps entry: its cluster name, or "-". */
const char *ctl_shard_name(json_object *cluster, json_object *entry);

/* ctl_record.c */
typedef struct {
    char name[32];         /* broker, front-1, back-2 */
    char role[8];          /* broker, front, back */
    pid_t pid;             /* the program's pid (not its watcher's) */
    int index;             /* 1.. for shards, 0 for the broker */
    int port;              /* front: websocket port, else 0 */
    long long started_ms;  /* wall clock */
    long long start_ticks; /* its start time (/proc/PID/stat field 22), 0: not recorded */
    char prog[64];         /* the program's file name (argv[0] without directories) */
} ctl_proc_t;

/*  How long a command that changes the record waits for another one. */
#define CTL_LOCK_WAIT_MS 120000
/*  At most this many processes in a record. */
#define CTL_MAX_PROCS 256

/*  RUN_DIR/cluster.json, or NULL: errno ENOENT when there is none, EINVAL
    when it is not a JSON object. Caller owns. */
json_object *ctl_cluster_load(ctl_t *ctl);
/*  ctl_cluster_load for a command that needs the record: NULL after
    ctl_fail (ENOTFOUND, or EINVAL for a damaged file). */
json_object *ctl_cluster_need(ctl_t *ctl);
/*  Write it atomically and durably (temporary file, fsync, rename): 0, or
    -1 with errno after printing nothing (the caller reports). */
int ctl_cluster_save(ctl_t *ctl, json_object *cluster);
/*  Fill procs (at most max) from cluster's "processes"; returns the count. */
int ctl_cluster_procs(json_object *cluster, ctl_proc_t *procs, int max);
/*  Remove p's entry (same name and pid) from cluster's processes, and its
    pid file and NAME.exit if they name p; does not save. */
void ctl_cluster_forget(ctl_t *ctl, json_object *cluster, const ctl_proc_t *p);
/*  Whether p is alive: its pid runs, is no zombie, started when recorded
    and runs the recorded program (pids get reused). */
bool ctl_proc_alive(const ctl_proc_t *p);
/*  The start time of pid (/proc/PID/stat field 22, clock ticks since
    boot), or 0. */
long long ctl_proc_start_ticks(pid_t pid);
/*  How a dead p ended, from RUN_DIR/NAME.exit (its watcher writes it as
    soon as it has reaped p), waiting up to wait_ms for the file. 0 with
    the wait status in *status, or -1 when nobody knows. */
int ctl_proc_status(ctl_t *ctl, const ctl_proc_t *p, long wait_ms, int *status);
/*  How a dead p ended in words ("killed by signal 9 (SIGKILL)", "exited
    with status 2", "ended, how is not known"); waits as ctl_proc_status. */
void ctl_proc_ended(ctl_t *ctl, const ctl_proc_t *p, long wait_ms, char *buf, size_t len);
/*  A dead p as JSON: {"name","role","pid","state":"dead","ended" and
    "exit_status" or "signal" when known}; waits as ctl_proc_status.
    Caller owns. */
json_object *ctl_proc_dead_json(ctl_t *ctl, const ctl_proc_t *p, long wait_ms);
/*  0 when cluster's broker is alive (or none is recorded). Otherwise
    CTL_FAIL after an EUNREACH failure that says how the broker ended,
    which shards still run, and what to do. */
int ctl_check_broker(ctl_t *ctl, json_object *cluster);
/*  Take RUN_DIR/cluster.lock (flock) for a command that changes the
    record, waiting up to wait_ms while another skickctl holds it. The
    lock ends with the process, however it ends. The descriptor, or -1
    after ctl_fail. */
int ctl_lock(ctl_t *ctl, long wait_ms);
/*  Release the lock (safe on -1); sets *fd_p to -1. */
void ctl_unlock(int *fd_p);

/* ctl_spawn.c */
typedef struct {
    ctl_proc_t p;       /* the process */
    const char *result; /* "stopped", "killed", "not running" */
} ctl_stop_t;

/*  Start the broker / a shard (named like ROLE-INDEX, configured from
    cluster) and record it in cluster (saved). 0, or -1 after ctl_fail. */
int ctl_start_broker(ctl_t *ctl, json_object *cluster);
int ctl_start_shard(ctl_t *ctl, json_object *cluster, const char *role, int index);
/*  Stop the processes (SIGTERM all, wait up to grace_ms, SIGKILL the
    rest), remove them from cluster (saved) and their pid files. */
void ctl_stop(ctl_t *ctl, json_object *cluster, ctl_stop_t *s, int n, long grace_ms);
/*  qsort order for ctl_stop_t: shards before the broker, newest first. */
int ctl_by_newest(const void *x, const void *y);
/*  A wait status in words: "exited with status 2", "killed by signal 9
    (SIGKILL)". Async-signal-safe: the watcher calls it after a fork. */
void ctl_status_text(int status, char *buf, size_t len);
/*  Reap the watchers that have ended (they are our children). */
void ctl_reap(void);

/* ctl_launch.c */
/*  Wait until ps lists every shard recorded in cluster and none of the
    pids in gone. 0 with *ps_out (caller owns), or -1 after the failure
    was printed. */
int ctl_wait_shards(ctl_t *ctl, json_object *cluster, const pid_t *gone, int ngone, long wait_ms,
                    json_object **ps_out);
/*  Print what up or scale made: the ps table and the Connect URLs (by
    shard name), or with --json extra (taken, may be NULL) with the
    cluster's fields added. */
void ctl_print_result(ctl_t *ctl, json_object *cluster, json_object *ps, const char *what,
                      json_object *extra);

/* ctl_ps.c */
/*  Whether a ps entry lists role in its "roles". */
bool ctl_has_role(json_object *entry, const char *role);
/*  Connect and fetch ps: 0 with *c and *ps (caller owns both), or
    CTL_FAIL after printing. */
int ctl_ps_fetch(ctl_t *ctl, skick_client_t **c, json_object **ps);
/*  The entries of ps sorted by name (front-N, back-N, others, unnamed);
    borrowed pointers in an array the caller frees; *n gets the count. */
json_object **ctl_ps_sorted(json_object *cluster, json_object *ps, size_t *n);
/*  Print the ps table for a ps result (used by ps, up, scale): the shards
    the broker lists, except those the record knows to be dead, then one
    line for each recorded shard that is dead or has not joined. */
void ctl_print_ps(ctl_t *ctl, json_object *cluster, json_object *ps);

/* commands */
int ctl_cmd_up(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_down(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_scale(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_ps(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_actors(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_services(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_sessions(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_send(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_ask(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_stop(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_stats(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_logs(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_keygen(ctl_t *ctl, ctl_args_t *a);

/*  Generate a CZMQ certificate pair DIR/NAME.cert and DIR/NAME.cert_secret
    (0600). 0, or -1 after ctl_fail. pub_out (may be NULL) gets the Z85
    public key. */
int ctl_keygen(ctl_t *ctl, const char *dir, const char *name, bool force, char pub_out[41]);

/* command option values (struct option val) */
enum {
    OPT_FRONT = 300,
    OPT_BACK,
    OPT_APP,
    OPT_BROKER,
    OPT_PORT,
    OPT_HOST,
    OPT_WWW,
    OPT_NODE_ARG,
    OPT_CURVE,
    OPT_WAIT,
    OPT_LIMIT,
    OPT_NO_CONFIRM,
    OPT_STREAM,
    OPT_FOLLOW,
    OPT_LINES,
    OPT_FORCE,
};

/* ctl_table.c */
typedef struct ctl_table ctl_table_t;
/*  A table with ncols columns; a header starting with '>' is right-aligned
    (the '>' is not printed). Caller owns; NULL on OOM. */
ctl_table_t *ctl_table_new(int ncols, const char *const *headers);
/*  Add a row of ncols cells (copied; NULL prints "-"). */
void ctl_table_add(ctl_table_t *t, const char *const *cells);
/*  Print with two spaces between columns. */
void ctl_table_print(ctl_table_t *t, FILE *out);
void ctl_table_destroy(ctl_table_t **t_p);
/*  A JSON value as a short cell: strings bare, null "-", others as JSON. */
const char *ctl_cell(json_object *v, char *buf, size_t len);

#endif
