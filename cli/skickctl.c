/*  skickctl - launch, scale, inspect and poke a Skick cluster

    `skickctl [GLOBAL OPTIONS] COMMAND [ARGS]`. Global options may also
    follow the command. Each command is a function in ctl_*.c; this file
    holds the command table, option parsing, help and the error helpers.
    Exit status: 0 ok, 1 failure (one line on stderr naming the error
    code), 2 usage error. docs/skickctl.md is the manual.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "skick/log.h"
#include "skick/skick.h"

enum {
    GOPT_RUN_DIR = 200,
    GOPT_CONTROL,
    GOPT_JSON,
    GOPT_TIMEOUT,
    GOPT_CURVE_SECRET,
    GOPT_CURVE_SERVER,
    GOPT_HELP,
    GOPT_VERSION,
};

static const struct option s_global_opts[] = {
    {"run-dir", required_argument, NULL, GOPT_RUN_DIR},
    {"control", required_argument, NULL, GOPT_CONTROL},
    {"json", no_argument, NULL, GOPT_JSON},
    {"timeout", required_argument, NULL, GOPT_TIMEOUT},
    {"curve-secret", required_argument, NULL, GOPT_CURVE_SECRET},
    {"curve-server", required_argument, NULL, GOPT_CURVE_SERVER},
    {"help", no_argument, NULL, GOPT_HELP},
    {"version", no_argument, NULL, GOPT_VERSION},
};
#define NGLOBAL (sizeof s_global_opts / sizeof s_global_opts[0])

static const struct option s_up_opts[] = {
    {"front", required_argument, NULL, OPT_FRONT},
    {"back", required_argument, NULL, OPT_BACK},
    {"app", required_argument, NULL, OPT_APP},
    {"broker", required_argument, NULL, OPT_BROKER},
    {"port", required_argument, NULL, OPT_PORT},
    {"host", required_argument, NULL, OPT_HOST},
    {"www", required_argument, NULL, OPT_WWW},
    {"node-arg", required_argument, NULL, OPT_NODE_ARG},
    {"curve", no_argument, NULL, OPT_CURVE},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"wait", required_argument, NULL, OPT_WAIT},
    {"hash", required_argument, NULL, OPT_HASH},
    {"hash-file", required_argument, NULL, OPT_HASH_FILE},
    {"amqp", required_argument, NULL, OPT_AMQP},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {NULL, 0, NULL, 0},
};
static const struct option s_wait_opts[] = {
    {"wait", required_argument, NULL, OPT_WAIT},
    {NULL, 0, NULL, 0},
};
static const struct option s_actors_opts[] = {
    {"limit", required_argument, NULL, OPT_LIMIT},
    {NULL, 0, NULL, 0},
};
static const struct option s_send_opts[] = {
    {"no-confirm", no_argument, NULL, OPT_NO_CONFIRM},
    {NULL, 0, NULL, 0},
};
static const struct option s_ask_opts[] = {
    {"stream", no_argument, NULL, OPT_STREAM},
    {NULL, 0, NULL, 0},
};
static const struct option s_run_opts[] = {
    {"cwd", required_argument, NULL, OPT_CWD},
    {"shell", no_argument, NULL, OPT_SHELL},
    {"run-timeout", required_argument, NULL, OPT_RUN_TIMEOUT},
    {NULL, 0, NULL, 0},
};
static const struct option s_logs_opts[] = {
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"lines", required_argument, NULL, OPT_LINES},
    {NULL, 0, NULL, 0},
};
static const struct option s_keygen_opts[] = {
    {"force", no_argument, NULL, OPT_FORCE},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"role", required_argument, NULL, OPT_ROLE},
    {NULL, 0, NULL, 0},
};
static const struct option s_top_opts[] = {
    {"delay", required_argument, NULL, OPT_DELAY},
    {"batch", no_argument, NULL, OPT_BATCH},
    {"once", no_argument, NULL, OPT_BATCH},
    {"iterations", required_argument, NULL, OPT_LINES}, /* -n, as for logs */
    {"sort", required_argument, NULL, OPT_SORT},
    {"reverse", no_argument, NULL, OPT_REVERSE},
    {NULL, 0, NULL, 0},
};
static const struct option s_hash_opts[] = {
    {"ttl", required_argument, NULL, OPT_TTL},
    {"nx", no_argument, NULL, OPT_NX},
    {"max", required_argument, NULL, OPT_MAX},
    {NULL, 0, NULL, 0},
};

typedef struct {
    const char *name;
    const char *args;          /* positional synopsis */
    const char *summary;       /* one line */
    const char *help;          /* details and options */
    const struct option *opts; /* command options, or NULL */
    const char *shortopts;     /* short forms, or "" */
    int min_pos, max_pos;      /* positional argument counts */
    int (*run)(ctl_t *, ctl_args_t *);
} command_t;

static const command_t s_commands[] = {
    {"up", "", "start a broker and front and back shards",
     "Starts skick-broker, N front shards and M back shards as detached\n"
     "processes (logs in RUN_DIR/logs/NAME.log, pid files RUN_DIR/NAME.pid,\n"
     "the cluster's description in RUN_DIR/cluster.json), then waits until\n"
     "`ps` shows every shard.\n"
     "\n"
     "  --front N          front shards (websockets), default 1\n"
     "  --back M           back shards (sessions and actors), default 1\n"
     "  --app PATH         application module for every back shard (repeatable)\n"
     "  --broker ENDPOINT  the broker's shard endpoint (default tcp://127.0.0.1:7400;\n"
     "                     it also uses the next two ports)\n"
     "  --port P           first front's websocket port (default 8000; next P+1...)\n"
     "  --host HOST        websocket listen address (default 127.0.0.1)\n"
     "  --www DIR          directory the front shards serve\n"
     "  --node-arg ARG     extra skick-node argument (repeatable)\n"
     "  --hash URL         keep the hash tables in Redis: the broker and every shard\n"
     "                     (scale's too) get --hash URL, redis://[[USER]:PASSWORD@]\n"
     "                     HOST[:PORT][/DB] or unix:///PATH/redis.sock[?db=N]\n"
     "                     (docs/hashes.md); default: the broker's memory. The\n"
     "                     processes get it in RUN_DIR/hash.url (0600) and\n"
     "                     --hash-file, never on their command lines; a password\n"
     "                     in skickctl's own --hash is visible to local users (ps):\n"
     "                     prefer --hash-file or SKICK_HASH_URL\n"
     "  --hash-file FILE   the same URL, read from FILE (one line, mode 0600)\n"
     "  SKICK_HASH_URL     (environment) the URL when neither is given\n"
     "  --amqp URL         start skick-amqp-bridge too (amqp:// or amqps://; the URL\n"
     "                     goes to RUN_DIR/amqp.url, mode 0600, never on a command\n"
     "                     line; docs/amqp.md)\n"
     "  --metrics [HOST:]PORT_BASE\n"
     "                     Prometheus metrics for every process (docs/metrics.md):\n"
     "                     the broker on PORT_BASE, the AMQP bridge on +1, back-K on\n"
     "                     PORT_BASE+1+K (kept by scale and repairs); front shards\n"
     "                     serve /metrics on their websocket port. HOST defaults to\n"
     "                     127.0.0.1; `ps` shows each endpoint\n"
     "  --insecure         no CURVE: every local user can join the cluster (each\n"
     "                     process warns); by default keys are made in RUN_DIR/keys\n"
     "                     and every link uses CURVE, with one key per role\n"
     "  --curve            accepted for compatibility: CURVE is the default\n"
     "  --wait MS          how long to wait for the shards (default 15000)\n",
     s_up_opts, "", 0, 0, ctl_cmd_up},
    {"down", "", "stop every process of the cluster",
     "SIGTERM to the shards, then the broker; SIGKILL to any still running\n"
     "after the wait; removes the pid files.\n"
     "\n"
     "  --wait MS          grace period before SIGKILL (default 10000)\n",
     s_wait_opts, "", 0, 0, ctl_cmd_down},
    {"scale", "front=N back=M", "start or stop shards to reach the counts",
     "First forgets every dead shard of RUN_DIR/cluster.json (and says how it\n"
     "ended). Then, counting live shards only, starts shards (ROLE-K with the\n"
     "lowest free K: a replacement takes the dead shard's name and port) or\n"
     "stops the newest live ones gracefully until the cluster has N front and\n"
     "M back shards. Either count may be left out. Fails (EUNREACH) without\n"
     "a live broker; waits for another skickctl changing the same cluster.\n"
     "\n"
     "  --wait MS          how long to wait for the shards (default 15000)\n",
     s_wait_opts, "", 1, 2, ctl_cmd_scale},
    {"ps", "", "list the shards",
     "The broker's view: name, shard id, roles, pid, actors, clients (front:\n"
     "open websockets), sessions (back: session actors; front: client\n"
     "sessions), messages per second and websocket URL. Below the table, the\n"
     "shards of RUN_DIR/cluster.json that are dead (with how they ended) or\n"
     "have not joined. A dead broker is an EUNREACH failure saying so.\n",
     NULL, "", 0, 0, ctl_cmd_ps},
    {"actors", "[SHARD]", "list the actors of one shard or of all",
     "SHARD is a shard id (16 hex digits) or a name from `ps` (back-1).\n"
     "\n"
     "  --limit N          at most N actors per shard (default: the shard's, 1000)\n",
     s_actors_opts, "", 0, 1, ctl_cmd_actors},
    {"services", "[NAME]", "list the registered services",
     "Every service registration in the directory (only NAME if given).\n", NULL, "", 0, 1,
     ctl_cmd_services},
    {"sessions", "", "list the open websocket sessions",
     "One row per client session on the front shards: receptionist, session\n"
     "actor, session type, peer.\n",
     NULL, "", 0, 0, ctl_cmd_sessions},
    {"send", "ADDR JSON", "send a message to an actor",
     "JSON is an object with a string \"action\". By default skickctl then\n"
     "checks with the recipient's shard that it was delivered (EDEAD: no\n"
     "such actor, EFULL: mailbox full).\n"
     "\n"
     "  --no-confirm       send and return at once\n",
     s_send_opts, "", 2, 2, ctl_cmd_send},
    {"ask", "ADDR JSON", "ask an actor and print its answer",
     "Opens a conversation (the opener gets \"cid\" and \"sender\") and prints the\n"
     "first answer as JSON. --timeout bounds the wait (default 5000 ms).\n"
     "\n"
     "  --stream           print every turn, one JSON line each, until the\n"
     "                     partner ends the conversation\n",
     s_ask_opts, "", 2, 2, ctl_cmd_ask},
    {"run", "SHARD -- PROGRAM [ARG...]", "run a program on a shard (tools.so), stream its output",
     "Runs PROGRAM with its arguments on the \"command\" actor of SHARD (a shard\n"
     "id or a name from ps; the shard loads tools.so and allows the program:\n"
     "docs/tools.md). Its stdout and stderr are written here as they come, and\n"
     "skickctl exits with its exit status (128 + N when signal N ended it).\n"
     "Put -- before PROGRAM so that its options are not read as skickctl's.\n"
     "\n"
     "  --cwd DIR          its working directory on the shard\n"
     "  --shell            run /bin/sh -c PROGRAM ARG... (the shell must be allowed)\n"
     "  --run-timeout MS   the shard ends it after MS (default 60000)\n",
     s_run_opts, "", 2, CTL_MAX_ARGS, ctl_cmd_run},
    {"stop", "ADDR", "stop an actor",
     "The actor ends with a \"cancellation\" sentinel to its monitors.\n", NULL, "", 1, 1,
     ctl_cmd_stop},
    {"stats", "", "broker and per-shard counters", "Counters of the broker and of every shard.\n",
     NULL, "", 0, 0, ctl_cmd_stats},
    {"top", "", "a live view of the cluster (shards, rates, busiest types)",
     "A refreshing view of the cluster in the spirit of top: per shard its\n"
     "roles, actors, sessions, clients (front), messages handled per second,\n"
     "deepest mailbox, errors per second (dead letters and failed actors) and\n"
     "resident memory (shards on this host); then the busiest actor types\n"
     "(most queued messages, busy actors, actors). Figures come from the\n"
     "broker's `ps` (the shards' heartbeats) and each shard's `actors` list;\n"
     "rates from successive heartbeats. A shard whose heartbeat is old, or\n"
     "that does not answer within a short timeout, shows \"?\" and \"stale\"\n"
     "(it is asked again after 5 s); one the broker no longer lists shows as\n"
     "\"lost\". Nothing waits on a stopped shard.\n"
     "\n"
     "Keys: n a s m x e r sort by name, actors, sessions, msgs/s, mailbox,\n"
     "errors/s, rss; < and > the previous or next column; i inverts the order;\n"
     "space refreshes now; q (or Ctrl-C) quits and restores the terminal.\n"
     "\n"
     "When stdout or stdin is not a terminal, or with -b, prints one snapshot\n"
     "(after two samples the interval apart, for the rates) and exits; --json\n"
     "prints it as one JSON object.\n"
     "\n"
     "  -d, --delay SECONDS    refresh interval (default 1, 0.1 to 3600)\n"
     "  -b, --batch, --once    one plain snapshot, even on a terminal\n"
     "  -n, --iterations N     batch: N snapshots, the interval apart\n"
     "  --sort COLUMN          name, actors, sessions, msgs/s (default), mailbox,\n"
     "                         errors/s, rss, or its key letter\n"
     "  --reverse              the other order\n",
     s_top_opts, "d:bn:", 0, 0, ctl_cmd_top},
    {"logs", "[NAME]", "show the processes' logs",
     "Shows the end of RUN_DIR/logs/NAME.log, or of every log.\n"
     "\n"
     "  -n, --lines N      lines to show (default 20)\n"
     "  -f, --follow       keep printing what is appended (until interrupted)\n",
     s_logs_opts, "fn:", 0, 1, ctl_cmd_logs},
    {"keygen", "DIR NAME", "make a CURVE certificate pair",
     "Writes DIR/NAME.cert (public) and DIR/NAME.cert_secret (secret, mode\n"
     "0600) in CZMQ's certificate format.\n"
     "\n"
     "  --force            overwrite existing files\n"
     "  --allow DIR        also admit the key: copy NAME.cert into the role's\n"
     "                     directory of the broker's --curve-allow DIR\n"
     "  --role ROLE        with --allow: shard (DIR/shards/), client (DIR/clients/,\n"
     "                     skickctl) or bridge (DIR/bridges/)\n",
     s_keygen_opts, "", 2, 2, ctl_cmd_keygen},
    {"hash", "CMD TABLE [ARGS]", "read and change the cluster's hash store",
     "The broker's hash store, the one a cluster's shards use by default:\n"
     "\n"
     "  hash get TABLE KEY          print the value (JSON); ENOTFOUND if absent\n"
     "  hash set TABLE KEY VALUE    store VALUE: JSON text, or else the text as a\n"
     "                              string (hello -> \"hello\"; quote '\"42\"' for a\n"
     "                              string of digits); null is refused\n"
     "  hash del TABLE KEY          delete; ENOTFOUND if absent\n"
     "  hash keys TABLE             the keys, one a line, in no order\n"
     "  hash incr TABLE KEY [DELTA] add DELTA (default 1) to an integer, print\n"
     "                              the result; ETYPE if it is not an integer\n"
     "                              (a negative VALUE or DELTA goes after --:\n"
     "                              hash incr T K -- -5)\n"
     "\n"
     "  --ttl MS           set: the key goes after MS milliseconds\n"
     "  --nx               set: only if the key is absent (prints whether it\n"
     "                     stored; exit 0 either way)\n"
     "  --max N            keys: list at most N (default 1000, up to 100000);\n"
     "                     a note on stderr says when there are more\n"
     "\n"
     "TABLE is 1-256 bytes of A-Z a-z 0-9 _ . -; KEY 1-1024 bytes without\n"
     "control characters (EINVAL otherwise).\n",
     s_hash_opts, "", 2, 4, ctl_cmd_hash},
};
#define NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

static void s_global_help(FILE *out)
{
    fprintf(out, "Usage: skickctl [OPTIONS] COMMAND [ARGS]\n"
                 "Launch, scale and inspect a Skick cluster; talk to its actors.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char syn[64];
        snprintf(syn, sizeof syn, "%s %s", s_commands[i].name, s_commands[i].args);
        fprintf(out, "  %-24s %s\n", syn, s_commands[i].summary);
    }
    fprintf(out, "  %-24s %s\n", "help [COMMAND]", "show help for a command");
    fprintf(out, "\nOptions (before or after the command):\n"
                 "  --run-dir DIR        cluster directory (default $SKICK_RUN_DIR, else\n"
                 "                       $XDG_RUNTIME_DIR/skick/run, else\n"
                 "                       ${SKICK_RUN_BASE:-/tmp}/skick-$UID/run); used only\n"
                 "                       if no other user can change it\n"
                 "  --control ENDPOINT   broker control endpoint (default $SKICK_CONTROL or\n"
                 "                       ipc://RUN_DIR/control)\n"
                 "  --json               machine-readable output\n"
                 "  --timeout MS         bound on every request (default 5000)\n"
                 "  --curve-secret FILE  own CURVE certificate (secret file)\n"
                 "  --curve-server FILE  the broker's public CURVE certificate\n"
                 "                       (default: from RUN_DIR/cluster.json when it uses CURVE)\n"
                 "  -h, --help           show help (skickctl help COMMAND for a command)\n"
                 "  --version            show the version\n"
                 "\nEnvironment: SKICK_RUN_DIR, SKICK_CONTROL, SKICK_BROKER_BIN, SKICK_NODE_BIN.\n"
                 "Exit status: 0 ok, 1 failure, 2 usage error. See docs/skickctl.md.\n");
}

static void s_command_help(const command_t *c, FILE *out)
{
    fprintf(out, "Usage: skickctl [OPTIONS] %s%s%s%s\n%s.\n\n%s", c->name,
            c->opts ? " [OPTIONS]" : "", c->args[0] ? " " : "", c->args, c->summary, c->help);
    fprintf(out, "\nGlobal options: see skickctl --help.\n");
}

static const command_t *s_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0)
            return &s_commands[i];
    return NULL;
}

/* ---- shared helpers -------------------------------------------------------- */

static ctl_t *s_ctl; /* for messages from helpers without a ctl */

int ctl_fail(ctl_t *ctl, int code, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "skickctl: %s: %s\n", skick_err_name(code), text);
    if (ctl && ctl->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(0));
        json_object_object_add(o, "code", json_object_new_string(skick_err_name(code)));
        json_object_object_add(o, "error", json_object_new_string(text));
        ctl_print_json(o);
        json_object_put(o);
    }
    return CTL_FAIL;
}

int ctl_fail_client(ctl_t *ctl, const char *what)
{
    int code = skick_errno();
    if (code == SKICK_OK)
        code = SKICK_EPROTO;
    const char *msg = skick_client_last_error();
    return ctl_fail(ctl, code, "%s: %s", what, msg[0] ? msg : skick_strerror(code));
}

int ctl_usage(ctl_t *ctl, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    const char *cmd = ctl && ctl->cmd ? ctl->cmd : NULL;
    fprintf(stderr, "skickctl%s%s: %s\nTry 'skickctl %s%s--help'.\n", cmd ? " " : "",
            cmd ? cmd : "", text, cmd ? cmd : "", cmd ? " " : "");
    return CTL_USAGE;
}

int ctl_parse_int(ctl_t *ctl, const char *opt, const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < min || v > max) {
        ctl_usage(ctl, "%s expects a number from %ld to %ld, got '%s'", opt, min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

void ctl_print_json(json_object *v)
{
    fputs(v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE)
            : "null",
          stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

skick_client_t *ctl_connect(ctl_t *ctl)
{
    skick_client_opts_t o = {.timeout_ms = ctl->timeout_ms,
                             .curve_secret = ctl->curve_secret,
                             .curve_server = ctl->curve_server};
    char secret[PATH_MAX], server[PATH_MAX];
    json_object *cluster = NULL;
    if (!(cluster = ctl_cluster_load(ctl)) && errno == EPERM && !ctl->control_given) {
        /* the default control socket is in a directory someone else can
           change: whoever answers there is not known to be our broker */
        ctl_fail(ctl, SKICK_EINVAL, "%s", ctl_rundir_why());
        return NULL;
    }
    if (cluster) {
        /* The cluster in RUN_DIR knows its control endpoint (absolute) and,
           when it runs with CURVE, the keys skickctl talks to it with. */
        json_object *curve, *ctrl = NULL;
        json_object_object_get_ex(cluster, "control", &ctrl);
        if (!ctl->control_given && json_object_is_type(ctrl, json_type_string))
            snprintf(ctl->control, sizeof ctl->control, "%s", json_object_get_string(ctrl));
        if (!o.curve_secret && !o.curve_server &&
            json_object_object_get_ex(cluster, "curve", &curve) &&
            json_object_is_type(curve, json_type_object) &&
            json_object_is_type(ctrl, json_type_string) &&
            strcmp(json_object_get_string(ctrl), ctl->control) == 0) {
            json_object *a, *b;
            if (json_object_object_get_ex(curve, "client_secret", &a) &&
                json_object_object_get_ex(curve, "broker_public", &b)) {
                snprintf(secret, sizeof secret, "%s", json_object_get_string(a));
                snprintf(server, sizeof server, "%s", json_object_get_string(b));
                o.curve_secret = secret;
                o.curve_server = server;
            }
        }
        json_object_put(cluster);
    }
    skick_client_t *c = skick_client_connect(ctl->control, &o);
    if (!c)
        ctl_fail_client(ctl, "cannot connect");
    return c;
}

/* ---- option parsing ---------------------------------------------------------- */

static bool s_global_takes_arg(const char *arg)
{
    for (size_t i = 0; i < NGLOBAL; i++) {
        size_t n = strlen(s_global_opts[i].name);
        if (s_global_opts[i].has_arg == required_argument &&
            strncmp(arg + 2, s_global_opts[i].name, n) == 0 && arg[2 + n] == '\0')
            return true;
    }
    return false;
}

/*  Index of the command word in argv, or -1. */
static int s_command_index(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return i + 1 < argc ? i + 1 : -1;
        if (a[0] != '-' || a[1] == '\0')
            return i;
        if (a[1] == '-' && s_global_takes_arg(a))
            i++; /* skip its value */
    }
    return -1;
}

static void s_defaults(ctl_t *ctl)
{
    const char *rd = getenv("SKICK_RUN_DIR");
    if (rd && *rd)
        snprintf(ctl->run_dir, sizeof ctl->run_dir, "%s", rd);
    else
        ctl_rundir_default(ctl->run_dir, sizeof ctl->run_dir);
    ctl->timeout_ms = SKICK_CLIENT_TIMEOUT_DEFAULT;
    const char *ce = getenv("SKICK_CONTROL");
    if (ce && *ce) {
        snprintf(ctl->control, sizeof ctl->control, "%s", ce);
        ctl->control_given = true;
    }
}

/*  Parse argv (the command word removed) with the global and command
    options. Returns -1 for a usage error (printed), 1 for help/version
    (printed), 0 to run. */
static int s_parse(ctl_t *ctl, const command_t *cmd, int argc, char **argv, ctl_args_t *a)
{
    struct option all[64];
    size_t n = 0;
    for (size_t i = 0; i < NGLOBAL; i++)
        all[n++] = s_global_opts[i];
    for (const struct option *o = cmd ? cmd->opts : NULL; o && o->name; o++)
        all[n++] = *o;
    all[n] = (struct option){NULL, 0, NULL, 0};
    char shortopts[16]; /* ':' first: a missing value returns ':', not '?' */
    snprintf(shortopts, sizeof shortopts, ":h%s", cmd ? cmd->shortopts : "");
    bool help = false, version = false;
    long v;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, all, NULL)) != -1) {
        switch (c) {
        case GOPT_RUN_DIR:
            if (!*optarg || strlen(optarg) >= sizeof ctl->run_dir - 32)
                return ctl_usage(ctl, "--run-dir needs a (shorter) directory"), -1;
            snprintf(ctl->run_dir, sizeof ctl->run_dir, "%s", optarg);
            break;
        case GOPT_CONTROL:
            snprintf(ctl->control, sizeof ctl->control, "%s", optarg);
            ctl->control_given = true;
            break;
        case GOPT_JSON:
            ctl->json = true;
            break;
        case GOPT_TIMEOUT:
            if (ctl_parse_int(ctl, "--timeout", optarg, 1, 86400000, &v) != 0)
                return -1;
            ctl->timeout_ms = (int) v;
            break;
        case GOPT_CURVE_SECRET:
            ctl->curve_secret = optarg;
            break;
        case GOPT_CURVE_SERVER:
            ctl->curve_server = optarg;
            break;
        case 'h':
        case GOPT_HELP:
            help = true;
            break;
        case GOPT_VERSION:
            version = true;
            break;
        case 'f':
            c = OPT_FOLLOW;
            goto command_option;
        case 'n':
            c = OPT_LINES;
            goto command_option;
        case 'd':
            c = OPT_DELAY;
            goto command_option;
        case 'b':
            c = OPT_BATCH;
            goto command_option;
        case ':':
            return ctl_usage(ctl, "option '%s' needs a value", argv[optind - 1]), -1;
        case '?':
            if (optopt > 0 && optopt < 128 && argv[optind - 1][1] != '-')
                return ctl_usage(ctl, "unknown option '-%c'", optopt), -1;
            return ctl_usage(ctl, "unknown option '%s'", argv[optind - 1]), -1;
        default:
        command_option:
            if (a->nopts == CTL_MAX_ARGS)
                return ctl_usage(ctl, "too many options"), -1;
            a->opts[a->nopts++] = (ctl_opt_t){c, optarg};
        }
    }
    for (int i = optind; i < argc; i++) {
        if (a->npos == CTL_MAX_ARGS)
            return ctl_usage(ctl, "too many arguments"), -1;
        a->pos[a->npos++] = argv[i];
    }
    if (version) {
        printf("skickctl %s\n", SKICK_VERSION_STRING);
        return 1;
    }
    if (help) {
        if (cmd)
            s_command_help(cmd, stdout);
        else
            s_global_help(stdout);
        return 1;
    }
    if (!ctl->control_given) {
        int k = snprintf(ctl->control, sizeof ctl->control, "ipc://%s/control", ctl->run_dir);
        if (k < 0 || (size_t) k >= sizeof ctl->control)
            return ctl_usage(ctl, "--run-dir too long"), -1;
    }
    if (cmd && (a->npos < cmd->min_pos || a->npos > cmd->max_pos)) {
        if (a->npos < cmd->min_pos)
            ctl_usage(ctl, "missing argument (usage: skickctl %s %s)", cmd->name, cmd->args);
        else
            ctl_usage(ctl, "unexpected argument '%s'", a->pos[cmd->max_pos]);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static ctl_t ctl;
    s_ctl = &ctl;
    ctl.prog = "skickctl";
    ctl.argv_area = argv[0];
    ctl.argv_len = (size_t) (argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
    skick_log_set_ident("skickctl");
    if (!getenv("SKICK_LOG_LEVEL"))
        skick_log_set_level(SKICK_LOG_WARNING);
    s_defaults(&ctl);

    int ci = s_command_index(argc, argv);
    const command_t *cmd = NULL;
    const char *help_for = NULL;
    if (ci > 0) {
        if (strcmp(argv[ci], "help") == 0) {
            help_for = ci + 1 < argc ? argv[ci + 1] : "";
        } else if (!(cmd = s_find(argv[ci]))) {
            return ctl_usage(&ctl, "unknown command '%s'", argv[ci]);
        }
    }
    if (help_for) {
        if (!*help_for) {
            s_global_help(stdout);
            return CTL_OK;
        }
        const command_t *h = s_find(help_for);
        if (!h)
            return ctl_usage(&ctl, "unknown command '%s'", help_for);
        s_command_help(h, stdout);
        return CTL_OK;
    }
    /* argv without the command word */
    char *args[argc + 1];
    int nargs = 0;
    for (int i = 0; i < argc; i++)
        if (i != ci)
            args[nargs++] = argv[i];
    args[nargs] = NULL;
    ctl.cmd = cmd ? cmd->name : NULL;
    static ctl_args_t a;
    int rc = s_parse(&ctl, cmd, nargs, args, &a);
    if (rc < 0)
        return CTL_USAGE;
    if (rc > 0)
        return CTL_OK;
    if (!cmd)
        return ctl_usage(&ctl, "no command given");
    return cmd->run(&ctl, &a);
}
