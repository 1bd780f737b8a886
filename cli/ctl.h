/*  ctl.h - private umbrella of skickctl (the cli directory)

    skickctl.c: main, global options, the command table, help, errors.
    ctl_cluster.c: the run directory, cluster.json, processes and binaries.
    ctl_launch.c: up, down, scale.
    ctl_query.c: ps, actors, services, sessions, stats, send, ask, stop.
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
typedef struct {
    char name[32]; /* broker, front-1, back-2 */
    char role[8];  /* broker, front, back */
    pid_t pid;
    int index;            /* 1.. for shards, 0 for the broker */
    int port;             /* front: websocket port, else 0 */
    long long started_ms; /* wall clock */
} ctl_proc_t;

/*  RUN_DIR/cluster.json, or NULL (errno ENOENT when absent). Caller owns. */
json_object *ctl_cluster_load(ctl_t *ctl);
/*  Write it atomically (0 or -1 after printing nothing: caller reports). */
int ctl_cluster_save(ctl_t *ctl, json_object *cluster);
/*  Fill procs (at most max) from cluster's "processes"; returns the count. */
int ctl_cluster_procs(json_object *cluster, ctl_proc_t *procs, int max);
/*  Whether pid is a live (non-zombie) process running the recorded program. */
bool ctl_proc_alive(json_object *cluster, const ctl_proc_t *p);
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

/*  Print the ps table for a ps result (used by ps, up, scale). */
void ctl_print_ps(ctl_t *ctl, json_object *cluster, json_object *ps);
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
