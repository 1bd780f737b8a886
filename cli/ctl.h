/*  ctl.h - private umbrella of skickctl (the cli directory)

    skickctl.c: main, global options, the command table, help, errors.
    ctl_cluster.c: binaries, logs, shard names.
    ctl_rundir.c: where the run directory is, and whether it may be trusted.
    ctl_record.c: the launcher's record (cluster.json), its lock, and what
        each recorded process has become (alive, or how it ended).
    ctl_spawn.c: starting processes detached under a watcher, stopping them.
    ctl_launch.c: up and down (starting and stopping the processes).
    ctl_launch_record.c: the record up starts from (run directory, old
        record, new record and CURVE keys).
    ctl_wait.c: waiting for the broker's view, and printing what up and
        scale made.
    ctl_scale.c: scale.
    ctl_ps.c: ps (the broker's view joined with the record).
    ctl_query.c: actors, services, sessions, stats, send, ask, stop.
    ctl_misc.c: logs, keygen.
    ctl_hash.c: hash get|set|del|keys|incr (the broker's hash store).
    ctl_table.c: human tables.
    ctl_top.c, ctl_top_screen.c: top (ctl_top.h).

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
    char run_dir[PATH_MAX];      /* --run-dir, $SKICK_RUN_DIR or ctl_rundir_default */
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
/*  The record's entry of the process with this pid, or NULL (borrowed). */
json_object *ctl_proc_for_pid(json_object *cluster, long long pid);
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
/*  A --hash URL as text to show (the password as ***) into buf; the text
    itself when it does not parse. Returns buf. */
const char *ctl_hash_shown(const char *url, char *buf, size_t len);
/*  The display name of a ps entry: its cluster name, or "-". */
const char *ctl_shard_name(json_object *cluster, json_object *entry);

/* ctl_rundir.c */
/*  The default run directory into out: $XDG_RUNTIME_DIR/skick/run when
    XDG_RUNTIME_DIR is set (an absolute path to a directory that exists),
    else ${SKICK_RUN_BASE:-/tmp}/skick-UID/run. */
void ctl_rundir_default(char *out, size_t len);
/*  Make ctl->run_dir safe to use: when create, make it (and logs/, and
    for the default its parent) with 0700; then check it, its parents and
    subdirectories (ctl_rundir.c), replace it with its real path and set
    ctl->control from it unless given. 0, or -1 after ctl_fail (EINVAL for
    a directory another user could change, naming it, its owner and mode,
    and what to do; ENOTFOUND when it does not exist and !create). */
int ctl_rundir_secure(ctl_t *ctl, bool create);
/*  The same check without creating or printing (ctl->run_dir becomes the
    real path): 0, or -1 with errno ENOENT (missing) or EPERM (the reason
    in ctl_rundir_why()). */
int ctl_rundir_check(ctl_t *ctl);
/*  Why the last check refused (borrowed; empty when none did). */
const char *ctl_rundir_why(void);
/*  Open RUN_DIR/name for reading if it is a regular file (not a symlink),
    ours, and not writable by group or others. The descriptor (caller
    closes), or -1 with errno (ENOENT; EPERM: the reason in
    ctl_rundir_why()). Checks the file only: ctl_rundir_check the
    directory first. */
int ctl_rundir_open(ctl_t *ctl, const char *name);

/* ctl_record.c */
typedef struct {
    char name[32];         /* broker, front-1, back-2 */
    char role[8];          /* broker, front, back */
    pid_t pid;             /* the program's pid (not its watcher's) */
    int index;             /* 1.. for shards, 0 for the broker */
    int port;              /* front: websocket port, else 0 */
    long long started_ms;  /* wall clock */
    long long start_ticks; /* its start time (/proc/PID/stat field 22), 0: not recorded */
} ctl_proc_t;

/*  What a recorded pid is now (ctl_proc_state). */
typedef enum {
    CTL_PROC_OURS,     /* it runs, with the recorded start time: the process we started */
    CTL_PROC_GONE,     /* no such process, or a zombie */
    CTL_PROC_NOT_OURS, /* the pid runs another process (reused, or a record planted) */
    CTL_PROC_UNKNOWN,  /* the pid runs, but the record has no start time to compare */
} ctl_proc_state_t;

/*  How long a command that changes the record waits for another one. */
#define CTL_LOCK_WAIT_MS 120000
/*  At most this many processes in a record. */
#define CTL_MAX_PROCS 256

/*  RUN_DIR/cluster.json, read only from a run directory and file that
    ctl_rundir_check and ctl_rundir_open accept. NULL: errno ENOENT when
    there is none, EINVAL when it is not a JSON object, EPERM when it may
    not be trusted (ctl_rundir_why says why). Caller owns. */
json_object *ctl_cluster_load(ctl_t *ctl);
/*  ctl_cluster_load for a command that needs the record: NULL after
    ctl_fail (ENOTFOUND, or EINVAL for a damaged or untrusted file). */
json_object *ctl_cluster_need(ctl_t *ctl);
/*  Write it atomically and durably (temporary file, fsync, rename): 0, or
    -1 with errno after printing nothing (the caller reports). */
int ctl_cluster_save(ctl_t *ctl, json_object *cluster);
/*  Fill procs (at most max) from cluster's "processes"; returns the count. */
int ctl_cluster_procs(json_object *cluster, ctl_proc_t *procs, int max);
/*  Remove p's entry (same name and pid) from cluster's processes, and its
    pid file and NAME.exit if they name p; does not save. */
void ctl_cluster_forget(ctl_t *ctl, json_object *cluster, const ctl_proc_t *p);
/*  What p's pid is now, from /proc: the process we started only when it
    runs with the start time recorded at its start (pids get reused, and a
    record without start times cannot be verified). */
ctl_proc_state_t ctl_proc_state(const ctl_proc_t *p);
/*  Whether p is alive: ctl_proc_state is CTL_PROC_OURS. Only such a
    process is ever signalled. */
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
    which shards still run, and what to do (`scale` repairs it). */
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
    const char *result; /* "stopped", "killed", "not running", "not signalled" (not ours) */
} ctl_stop_t;

/*  Start the broker / a shard (named like ROLE-INDEX, configured from
    cluster) and record it in cluster (saved). 0, or -1 after ctl_fail. */
int ctl_start_broker(ctl_t *ctl, json_object *cluster);
int ctl_start_shard(ctl_t *ctl, json_object *cluster, const char *role, int index);
/*  The metrics endpoint "HOST:PORT" of process role-index into out when the
    record has up's --metrics (ctl_spawn.c "Metrics ports"); false without
    it, or when the port would pass 65535. */
bool ctl_metrics_addr(json_object *cluster, const char *role, int index, char *out, size_t len);
/*  Start skick-amqp-bridge (process "bridge-1", role "bridge") when the
    record has an AMQP URL file (up --amqp); 0 when it has none. */
int ctl_start_bridge(ctl_t *ctl, json_object *cluster);
/*  Stop the processes (SIGTERM all, wait up to grace_ms, SIGKILL the
    rest), remove them from cluster (saved) and their pid files. A process
    that ctl_proc_state does not find to be ours is never signalled. */
void ctl_stop(ctl_t *ctl, json_object *cluster, ctl_stop_t *s, int n, long grace_ms);
/*  qsort order for ctl_stop_t: shards before the broker, newest first. */
int ctl_by_newest(const void *x, const void *y);
/*  A wait status in words: "exited with status 2", "killed by signal 9
    (SIGKILL)". Async-signal-safe: the watcher calls it after a fork. */
void ctl_status_text(int status, char *buf, size_t len);
/*  Reap the watchers that have ended (they are our children). */
void ctl_reap(void);

/* ctl_wait.c */
/*  The options skickctl connects to cluster's control endpoint with: the
    timeout and, when it runs with CURVE, the keys `up` made. */
void ctl_cluster_client_opts(json_object *cluster, int timeout_ms, skick_client_opts_t *o);
/*  Connect to cluster's broker, retrying until deadline (ctl_mono_ms);
    fails at once when the recorded broker process ends meanwhile. The
    client (caller owns), or NULL after ctl_fail (ESTART, with the tail of
    the broker's log). */
skick_client_t *ctl_wait_broker(ctl_t *ctl, json_object *cluster, long long deadline);
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

/* ctl_launch_record.c */
/*  What `up` was asked for (ctl_launch.c parses it). */
typedef struct {
    long front, back;              /* shard counts */
    long port;                     /* the first front shard's websocket port */
    long wait_ms;                  /* --wait */
    const char *broker;            /* the broker's endpoint (--broker) */
    const char *host;              /* --host */
    const char *www;               /* --www (absolute, malloc'd) or NULL */
    bool curve;                    /* false with --insecure */
    const char *hash;              /* the Redis URL (the broker's and every shard's), or NULL:
                                      --hash, --hash-file or SKICK_HASH_URL (malloc'd) */
    bool hash_on_argv;             /* it came in --hash (skickctl's own command line) */
    const char *amqp;              /* --amqp URL: start skick-amqp-bridge too, or NULL */
    char metrics_host[256];        /* --metrics [HOST:]PORT_BASE: its host ("" without) */
    long metrics_base;             /* its port base, 0 without --metrics */
    json_object *apps, *node_args; /* owned until moved into the cluster */
} ctl_launch_opts_t;

/*  Make the run directory (0700) and check it (ctl_rundir.c), absolute,
    with the control endpoint that follows from it. 0, or -1 after
    ctl_fail. */
int ctl_launch_run_dir(ctl_t *ctl);
/*  up --amqp: write url to RUN_DIR/amqp.url (mode 0600: it holds the
    password) and record that file and the bridge's binary (never the URL).
    0, or -1 after ctl_fail. */
int ctl_launch_record_amqp(ctl_t *ctl, json_object *cluster, const char *url,
                           const char *bridge_bin);
/*  Look at the old record in RUN_DIR. Refused when its broker still
    runs, or when it cannot be read; one whose processes have all ended is
    reported and forgotten (then *repair stays NULL and a new cluster
    starts); one whose shards still run without their broker is given in
    *repair (caller owns), to be repaired. 0, or -1 after ctl_fail. */
int ctl_launch_check_old(ctl_t *ctl, json_object **repair);
/*  The new record for o (with fresh CURVE keys when o->curve), saved.
    Takes o's lists (sets them NULL). Caller owns; NULL after ctl_fail. */
json_object *ctl_launch_record_new(ctl_t *ctl, ctl_launch_opts_t *o, const char *broker_bin,
                                   const char *node_bin);

/* ctl_repair.c */
/*  Whether cluster records a broker and it is alive (ctl_proc_alive). */
bool ctl_broker_alive(json_object *cluster);
/*  Bring back cluster's broker when the record has no live one (it was
    killed, or it ended): a broker that already answers on the recorded
    control endpoint (restarted by hand) is used as it is; otherwise the
    dead entry is forgotten and a broker is started with the recorded
    configuration (same endpoints, same keys) and waited for, up to
    wait_ms. 0 with *what (caller owns; NULL when the broker was alive):
    the dead broker as ctl_proc_dead_json plus "action": "restarted" or
    "adopted". -1 after ctl_fail. */
int ctl_repair_broker(ctl_t *ctl, json_object *cluster, long wait_ms, json_object **what);
/*  One line on out for ctl_repair_broker's *what (nothing in --json mode
    or for NULL). */
void ctl_repair_say(ctl_t *ctl, json_object *what, FILE *out);

/* ctl_scale.c */
/*  What `scale` does with counts front and back (-1: leave that role as
    it is), under the record's lock the caller holds: repair the broker,
    forget dead shards, reach the counts, wait up to wait_ms, print the
    result. CTL_OK or CTL_FAIL (printed). */
int ctl_scale_run(ctl_t *ctl, json_object *cluster, long front, long back, long wait_ms);

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
int ctl_cmd_hash(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_top(ctl_t *ctl, ctl_args_t *a);
int ctl_cmd_run(ctl_t *ctl, ctl_args_t *a);

/*  Generate a CZMQ certificate pair DIR/NAME.cert and DIR/NAME.cert_secret
    (0600). 0, or -1 after ctl_fail. pub_out (may be NULL) gets the Z85
    public key. */
int ctl_keygen(ctl_t *ctl, const char *dir, const char *name, bool force, char pub_out[41]);

/*  Admit the public certificate DIR/NAME.cert in role ("shard", "bridge" or
    "client") of a broker's --curve-allow directory allow: a copy in
    ALLOW/shards/, ALLOW/bridges/ or ALLOW/clients/ (made 0700; the copy
    0644). 0, or -1 after ctl_fail. */
int ctl_keygen_admit(ctl_t *ctl, const char *dir, const char *name, const char *allow,
                     const char *role);

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
    OPT_INSECURE,
    OPT_ALLOW,
    OPT_ROLE,
    OPT_TTL,
    OPT_NX,
    OPT_MAX,
    OPT_HASH,
    OPT_HASH_FILE,
    OPT_AMQP,
    OPT_DELAY,
    OPT_BATCH,
    OPT_SORT,
    OPT_REVERSE,
    OPT_METRICS,
    OPT_CWD,
    OPT_SHELL,
    OPT_RUN_TIMEOUT,
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
