/*  ctl_run - skickctl run SHARD -- PROGRAM ARGS...: a command on a shard's
    tools.so command executor (docs/tools.md), its output streamed here

    The shard's "command" actor is found in the services listing; the run
    conversation's stdout turns go to stdout, stderr turns to stderr, and
    skickctl exits with the remote exit status (128 + N for a signal, as a
    shell reports it). A refusal (EPERM, EBUSY...) is a CTL_FAIL line. A
    quiet command is not a failure: the wait for the next turn goes on
    after --timeout, bounded by the remote --run-timeout instead.
*/
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#define CTL_ADDR_LEN 33 /* "SHARD:ACTOR", 16 lowhex each */

/*  The address of a command actor on shard (16 lowhex) into out: 0, or
    CTL_FAIL after printing. */
static int s_find(ctl_t *ctl, skick_client_t *c, const char *shard, char out[CTL_ADDR_LEN + 1])
{
    json_object *res = NULL;
    if (skick_client_services(c, "command", ctl->timeout_ms, &res) != 0)
        return ctl_fail_client(ctl, "run");
    int rc = CTL_FAIL;
    for (size_t i = 0; json_object_is_type(res, json_type_array) &&
                       i < json_object_array_length(res) && rc != CTL_OK;
         i++) {
        json_object *s = json_object_array_get_idx(res, i);
        if (ctl_str(s, "shard") && strcmp(ctl_str(s, "shard"), shard) == 0 &&
            ctl_str(s, "address")) {
            snprintf(out, CTL_ADDR_LEN + 1, "%s", ctl_str(s, "address"));
            rc = CTL_OK;
        }
    }
    json_object_put(res);
    if (rc != CTL_OK)
        ctl_fail(ctl, SKICK_ENOTFOUND,
                 "shard %s offers no \"command\" service (load tools.so there: docs/tools.md)",
                 shard);
    return rc;
}

/*  The number of a signal named "SIGKILL" (glibc's sigabbrev_np), or 0. */
static int s_signum(const char *name)
{
    for (int n = 1; name && strncmp(name, "SIG", 3) == 0 && n < NSIG; n++) {
        const char *abbrev = sigabbrev_np(n);
        if (abbrev && strcmp(abbrev, name + 3) == 0)
            return n;
    }
    return 0;
}

/*  One turn: output written out, or the end. Returns -1 to go on, else the
    exit status. */
static int s_turn(ctl_t *ctl, json_object *turn)
{
    json_object *v;
    const char *stream = ctl_str(turn, "stream");
    if (stream) {
        const char *d = ctl_str(turn, "data");
        FILE *f = strcmp(stream, "stderr") == 0 ? stderr : stdout;
        if (d) {
            fputs(d, f);
            fflush(f);
        }
        return -1;
    }
    if (json_object_object_get_ex(turn, "code", &v))
        return ctl_fail(ctl, skick_err_code(json_object_get_string(v), SKICK_EINVAL), "run: %s",
                        ctl_str(turn, "error") ? ctl_str(turn, "error") : "refused");
    if (json_object_object_get_ex(turn, "truncated", &v) && json_object_get_boolean(v))
        fprintf(stderr, "skickctl: run: the output was truncated (max_output)\n");
    if (json_object_object_get_ex(turn, "exit", &v) && !ctl_str(turn, "signal"))
        return json_object_get_int(v) & 0xff;
    const char *sig = ctl_str(turn, "signal");
    if (sig) {
        fprintf(stderr, "skickctl: run: ended by %s%s%s\n", sig,
                ctl_str(turn, "reason") ? ": " : "",
                ctl_str(turn, "reason") ? ctl_str(turn, "reason") : "");
        return s_signum(sig) ? 128 + s_signum(sig) : CTL_FAIL;
    }
    return -1; /* a turn of some later kind: ignored */
}

int ctl_cmd_run(ctl_t *ctl, ctl_args_t *a)
{
    long run_timeout = 0;
    const char *cwd = NULL;
    bool shell = false;
    for (int i = 0; i < a->nopts; i++) {
        if (a->opts[i].val == OPT_RUN_TIMEOUT &&
            ctl_parse_int(ctl, "--run-timeout", a->opts[i].arg, 1, 86400000, &run_timeout) != 0)
            return CTL_USAGE;
        if (a->opts[i].val == OPT_CWD)
            cwd = a->opts[i].arg;
        if (a->opts[i].val == OPT_SHELL)
            shell = true;
    }
    skick_client_t *c;
    json_object *ps;
    if (ctl_ps_fetch(ctl, &c, &ps) != 0)
        return CTL_FAIL;
    json_object *cluster = ctl_cluster_load(ctl);
    char shard[17], addr[CTL_ADDR_LEN + 1];
    int rc;
    if (ctl_resolve_shard(cluster, ps, a->pos[0], shard) != 0) {
        rc = ctl_fail(ctl, SKICK_ENOTFOUND, "no shard '%s' (give a shard id or a name from ps)",
                      a->pos[0]);
        goto out;
    }
    if ((rc = s_find(ctl, c, shard, addr)) != CTL_OK)
        goto out;
    json_object *msg = json_object_new_object();
    json_object *argv = json_object_new_array();
    for (int i = 1; i < a->npos; i++)
        json_object_array_add(argv, json_object_new_string(a->pos[i]));
    json_object_object_add(msg, "action", json_object_new_string("run"));
    json_object_object_add(msg, "argv", argv);
    if (cwd)
        json_object_object_add(msg, "cwd", json_object_new_string(cwd));
    if (shell)
        json_object_object_add(msg, "shell", json_object_new_boolean(true));
    if (run_timeout)
        json_object_object_add(msg, "timeout_ms", json_object_new_int64(run_timeout));
    skick_client_conv_t *v = skick_client_converse(c, addr, msg);
    json_object_put(msg);
    if (!v) {
        rc = ctl_fail_client(ctl, "run");
        goto out;
    }
    for (rc = -1; rc < 0;) {
        json_object *turn = NULL;
        int r = skick_client_conv_recv(v, ctl->timeout_ms, &turn);
        if (r == 1) {
            rc = s_turn(ctl, turn);
            json_object_put(turn);
        } else if (r == 0) {
            rc = ctl_fail(ctl, SKICK_ECLOSED, "run: the conversation ended without an exit status");
        } else if (skick_errno() != SKICK_ETIMEDOUT) {
            rc = ctl_fail_client(ctl, "run");
        }
    }
    skick_client_conv_close(&v);
out:
    json_object_put(cluster);
    json_object_put(ps);
    skick_client_destroy(&c);
    return rc;
}
