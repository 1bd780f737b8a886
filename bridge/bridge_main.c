/*  skick-amqp-bridge - a shard that connects the cluster to RabbitMQ

    Parses its own options (the AMQP side) out of argv and runs the shard
    with the rest (node_run: --broker, CURVE, --log-level, --call-timeout,
    --app ...), announcing the role "bridge" and neither front nor back
    unless asked. The bridge's module registers the bridge actor's type and
    a shard hook that spawns it. docs/amqp.md is the user guide.
*/
#include "bridge.h"
#include "node_run.h"
#include "skick_secure.h"

#include <amqp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

br_config_t br_cfg = {
    .exchange = "skick",
    .queue = "skick.bridge",
    .dlx = "skick.dead",
    .service = "amqp",
    .prefetch = 256,
    .max_message = 1 << 20,
    .max_pending = 10000,
    .hold_ms = 30000,
    .heartbeat_s = 30,
    .seed_aliases = 4096,
    .seed_keys = 65536,
};

SKICK_MODULE(amqp_bridge)
{
    skick_actor(app, BR_ACTOR_TYPE, br_actor);
    skick_actor(app, BR_SEED_PROXY_TYPE, br_seed_proxy);
    skick_app_on_start(app, br_shard_start);
}

static void s_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s --amqp URL | --amqp-file FILE [OPTIONS] [SHARD OPTIONS]\n"
            "Connect a Skick cluster to RabbitMQ: AMQP messages to actors and services,\n"
            "request/reply, actors publishing and subscribing (docs/amqp.md).\n"
            "\n"
            "  --amqp URL              amqp://USER:PASSWORD@HOST:PORT/VHOST or amqps://...\n"
            "                          (default: $SKICK_AMQP_URL)\n"
            "  --amqp-file FILE        read the URL from FILE (mode 0600: it holds a password)\n"
            "  --amqp-cacert FILE      amqps: the CA certificates to verify the server with\n"
            "  --exchange NAME         topic exchange for inbound messages (default skick)\n"
            "  --queue NAME            the bridge's queue, bound to actor.# and service.#\n"
            "                          (default skick.bridge)\n"
            "  --dead-letter-exchange NAME  where rejected messages go, with a queue of the\n"
            "                          same name bound to # (default skick.dead)\n"
            "  --service NAME          the bridge actor's service (default amqp)\n"
            "  --prefetch N            unacked deliveries per consumer, basic.qos (default 256)\n"
            "  --max-message BYTES     larger inbound bodies are dead-lettered (default 1048576)\n"
            "  --max-pending N         publishes queued or unconfirmed at most; beyond, a\n"
            "                          publish fails at once with EBACKLOG (default 10000)\n"
            "  --hold MS               keep retrying a delivery this long while the cluster is\n"
            "                          unreachable, then dead-letter it (default 30000)\n"
            "  --heartbeat S           AMQP heartbeat in seconds, 0 for none (default 30)\n"
            "  --seed-compat           also speak the Python original's AMQP format, so that\n"
            "                          Python Skick shards on the same RabbitMQ join the\n"
            "                          cluster (docs/amqp.md, \"Mixed clusters\"; off by default)\n"
            "  --seed-aliases N        --seed-compat: proxies for Python addresses at most, the\n"
            "                          least recently used is stopped beyond (default 4096)\n"
            "  --seed-keys N           --seed-compat: gossip keys kept from Python shards\n"
            "                          (default 65536)\n"
            "  -h, --help              show this help\n"
            "\n"
            "Shard options (as skick-node's, see skick-node --help): --broker ENDPOINT,\n"
            "--curve-secret FILE, --curve-server FILE, --log-level LEVEL, --call-timeout MS\n"
            "(the RPC and confirm timeout), --mailbox N, --app FILE.so.\n"
            "Signals: SIGINT, SIGTERM and SIGHUP stop the bridge cleanly (exit 0).\n",
            prog);
}

static int s_number(const char *opt, const char *text, long long min, long long max,
                    long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || errno || v < min || v > max) {
        fprintf(stderr, "skick-amqp-bridge: %s expects a number from %lld to %lld, got '%s'\n",
                opt, min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

/*  The URL in file path (mode 0600), or NULL with a message. */
static char *s_read_url(const char *path)
{
    char err[512];
    if (skick_secret_file_check(path, err, sizeof err) != 0) {
        fprintf(stderr, "skick-amqp-bridge: --amqp-file: %s\n", err);
        return NULL;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "skick-amqp-bridge: --amqp-file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char line[4096] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!line[0]) {
        fprintf(stderr, "skick-amqp-bridge: --amqp-file %s is empty\n", path);
        return NULL;
    }
    return node_strdup(line);
}

static bool s_url_ok(const char *url)
{
    char *copy = node_strdup(url);
    struct amqp_connection_info info;
    bool ok = amqp_parse_url(copy, &info) == AMQP_STATUS_OK;
    free(copy);
    return ok;
}

/*  The value of option name at argv[*i] ("--name V" or "--name=V"), or
    NULL when argv[*i] is not that option; *i moves past it. */
static const char *s_opt(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/*  Take the bridge's options out of argv into br_cfg and rest (argv[0]
    first). -1: exit 2; 1: exit 0 (help); 0: run. */
static int s_parse(int argc, char **argv, char **rest, int *nrest)
{
    const char *url = NULL, *file = NULL;
    *nrest = 0;
    rest[(*nrest)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        long long n;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            s_usage(stdout, argv[0]);
            return 1;
        }
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                rest[(*nrest)++] = argv[i++];
            break;
        }
#define BR_OPT(name) ((v = s_opt(argc, argv, &i, name, &missing)) != NULL)
        if (BR_OPT("--amqp")) {
            url = v;
        } else if (BR_OPT("--amqp-file")) {
            file = v;
        } else if (BR_OPT("--amqp-cacert")) {
            br_cfg.cacert = v;
        } else if (BR_OPT("--exchange")) {
            br_cfg.exchange = v;
        } else if (BR_OPT("--queue")) {
            br_cfg.queue = v;
        } else if (BR_OPT("--dead-letter-exchange")) {
            br_cfg.dlx = v;
        } else if (BR_OPT("--service")) {
            br_cfg.service = v;
        } else if (BR_OPT("--prefetch")) {
            if (s_number("--prefetch", v, 1, 65535, &n))
                return -1;
            br_cfg.prefetch = (uint16_t) n;
        } else if (BR_OPT("--max-message")) {
            if (s_number("--max-message", v, 64, 128LL << 20, &n))
                return -1;
            br_cfg.max_message = (size_t) n;
        } else if (BR_OPT("--max-pending")) {
            if (s_number("--max-pending", v, 1, 10000000, &n))
                return -1;
            br_cfg.max_pending = (size_t) n;
        } else if (BR_OPT("--hold")) {
            if (s_number("--hold", v, 0, 86400000, &n))
                return -1;
            br_cfg.hold_ms = n;
        } else if (BR_OPT("--heartbeat")) {
            if (s_number("--heartbeat", v, 0, 3600, &n))
                return -1;
            br_cfg.heartbeat_s = (int) n;
        } else if (strcmp(argv[i], "--seed-compat") == 0) {
            br_cfg.seed_compat = true;
        } else if (BR_OPT("--seed-aliases")) {
            if (s_number("--seed-aliases", v, 16, 1000000, &n))
                return -1;
            br_cfg.seed_aliases = (size_t) n;
        } else if (BR_OPT("--seed-keys")) {
            if (s_number("--seed-keys", v, 16, 10000000, &n))
                return -1;
            br_cfg.seed_keys = (size_t) n;
        } else if (missing) {
            fprintf(stderr, "skick-amqp-bridge: %s needs a value\n", argv[i]);
            return -1;
        } else {
            rest[(*nrest)++] = argv[i];
        }
#undef BR_OPT
    }
    rest[*nrest] = NULL;
    if (url && file) {
        fprintf(stderr, "skick-amqp-bridge: give --amqp or --amqp-file, not both\n");
        return -1;
    }
    if (file) {
        br_cfg.url = s_read_url(file);
        if (!br_cfg.url)
            return -1;
    } else if (url || getenv("SKICK_AMQP_URL")) {
        br_cfg.url = node_strdup(url ? url : getenv("SKICK_AMQP_URL"));
    } else {
        fprintf(stderr, "skick-amqp-bridge: no RabbitMQ: give --amqp URL, --amqp-file FILE or "
                        "SKICK_AMQP_URL (see --help)\n");
        return -1;
    }
    if (!s_url_ok(br_cfg.url)) {
        fprintf(stderr, "skick-amqp-bridge: not an AMQP URL (amqp://USER:PASSWORD@HOST:PORT/"
                        "VHOST or amqps://...)\n");
        free(br_cfg.url);
        br_cfg.url = NULL;
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char **rest = node_calloc((size_t) argc + 2, sizeof *rest);
    int nrest;
    int rc = s_parse(argc, argv, rest, &nrest);
    if (rc) {
        free(rest);
        return rc > 0 ? 0 : 2;
    }
    static const char *const roles[] = {"bridge", NULL};
    node_run_opts_t ro = {.name = "skick-amqp-bridge", .roles = roles, .no_default_roles = true};
    rc = node_run(nrest, rest, &ro);
    free(rest);
    free(br_cfg.url);
    return rc;
}
