/*  ctl_query - skickctl actors, services, sessions, stats, send, ask, stop

    Each command connects to the broker's control endpoint (skick/client.h),
    makes its requests and prints a table, or with --json the results as
    compact JSON. Shard names (front-1, back-2) come from cluster.json by
    pid; shards that skickctl did not start are shown as "-".
*/
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "skick_envelope.h"

/* ---- per-shard listings ------------------------------------------------------------- */

typedef int (*shard_req_fn)(skick_client_t *, const char *, int, json_object **, void *);

static int s_req_actors(skick_client_t *c, const char *shard, int timeout, json_object **out,
                        void *arg)
{
    return skick_client_shard_actors(c, shard, *(int *) arg, timeout, out);
}

static int s_req_sessions(skick_client_t *c, const char *shard, int timeout, json_object **out,
                          void *arg)
{
    (void) arg;
    return skick_client_shard_sessions(c, shard, timeout, out);
}

static int s_req_stats(skick_client_t *c, const char *shard, int timeout, json_object **out,
                       void *arg)
{
    (void) arg;
    return skick_client_shard_stats(c, shard, timeout, out);
}

/*  Run req on one shard (only, when given) or on every shard of ps that
    has role (NULL: any). Returns [{"shard","name", key: result} or
    {"shard","name","code","error"}]; *failures counts the errors (each
    reported on stderr). */
static json_object *s_each_shard(ctl_t *ctl, skick_client_t *c, json_object *cluster,
                                 json_object *ps, const char *only, const char *role,
                                 const char *key, shard_req_fn req, void *arg, int *failures)
{
    json_object *out = json_object_new_array();
    size_t n;
    json_object **v = ctl_ps_sorted(cluster, ps, &n);
    *failures = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = ctl_str(v[i], "shard");
        if (!id || (only && strcmp(only, id) != 0) || (!only && role && !ctl_has_role(v[i], role)))
            continue;
        json_object *res = NULL, *e = json_object_new_object();
        json_object_object_add(e, "shard", json_object_new_string(id));
        json_object_object_add(e, "name", json_object_new_string(ctl_shard_name(cluster, v[i])));
        if (req(c, id, ctl->timeout_ms, &res, arg) == 0) {
            json_object_object_add(e, key, res);
        } else {
            int code = skick_errno();
            json_object_object_add(e, "code", json_object_new_string(skick_err_name(code)));
            json_object_object_add(e, "error", json_object_new_string(skick_client_last_error()));
            fprintf(stderr, "skickctl: %s: shard %s (%s): %s\n", skick_err_name(code), id,
                    ctl_shard_name(cluster, v[i]), skick_client_last_error());
            (*failures)++;
        }
        json_object_array_add(out, e);
    }
    free(v);
    if (only && json_object_array_length(out) == 0) {
        /* an id the broker does not list: ask anyway, it answers EDEAD */
        json_object *res = NULL, *e = json_object_new_object();
        json_object_object_add(e, "shard", json_object_new_string(only));
        json_object_object_add(e, "name", json_object_new_string("-"));
        if (req(c, only, ctl->timeout_ms, &res, arg) == 0) {
            json_object_object_add(e, key, res);
        } else {
            int code = skick_errno();
            json_object_object_add(e, "code", json_object_new_string(skick_err_name(code)));
            json_object_object_add(e, "error", json_object_new_string(skick_client_last_error()));
            fprintf(stderr, "skickctl: %s: shard %s: %s\n", skick_err_name(code), only,
                    skick_client_last_error());
            (*failures)++;
        }
        json_object_array_add(out, e);
    }
    return out;
}

int ctl_cmd_actors(ctl_t *ctl, ctl_args_t *a)
{
    long limit = 0;
    for (int i = 0; i < a->nopts; i++)
        if (a->opts[i].val == OPT_LIMIT &&
            ctl_parse_int(ctl, "--limit", a->opts[i].arg, 1, 10000000, &limit))
            return CTL_USAGE;
    skick_client_t *c;
    json_object *ps;
    if (ctl_ps_fetch(ctl, &c, &ps) != 0)
        return CTL_FAIL;
    json_object *cluster = ctl_cluster_load(ctl);
    char only[17];
    int rc = CTL_OK;
    if (a->npos == 1 && ctl_resolve_shard(cluster, ps, a->pos[0], only) != 0) {
        rc = ctl_fail(ctl, SKICK_ENOTFOUND, "no shard '%s' (give a shard id or a name from ps)",
                      a->pos[0]);
        goto out;
    }
    int lim = (int) limit, failures;
    json_object *res = s_each_shard(ctl, c, cluster, ps, a->npos ? only : NULL, NULL, "actors",
                                    s_req_actors, &lim, &failures);
    if (ctl->json) {
        ctl_print_json(res);
    } else {
        static const char *const head[] = {"SHARD", "ADDRESS", "TYPE", ">DEPTH", "STATE"};
        ctl_table_t *t = ctl_table_new(5, head);
        for (size_t i = 0; i < json_object_array_length(res); i++) {
            json_object *e = json_object_array_get_idx(res, i), *list = ctl_get(e, "actors");
            for (size_t k = 0; list && k < json_object_array_length(list); k++) {
                json_object *ac = json_object_array_get_idx(list, k);
                char b[3][128], type[160];
                json_object *sess = ctl_get(ac, "session");
                snprintf(type, sizeof type, "%s%s",
                         ctl_cell(ctl_get(ac, "type"), b[0], sizeof b[0]),
                         sess && json_object_get_boolean(sess) ? " (session)" : "");
                const char *row[] = {ctl_str(e, "name"), ctl_str(ac, "address"), type,
                                     ctl_cell(ctl_get(ac, "depth"), b[1], sizeof b[1]),
                                     ctl_cell(ctl_get(ac, "state"), b[2], sizeof b[2])};
                ctl_table_add(t, row);
            }
        }
        ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
    }
    json_object_put(res);
    if (failures)
        rc = CTL_FAIL;
out:
    json_object_put(cluster);
    json_object_put(ps);
    skick_client_destroy(&c);
    return rc;
}

int ctl_cmd_sessions(ctl_t *ctl, ctl_args_t *a)
{
    (void) a;
    skick_client_t *c;
    json_object *ps;
    if (ctl_ps_fetch(ctl, &c, &ps) != 0)
        return CTL_FAIL;
    json_object *cluster = ctl_cluster_load(ctl);
    int failures;
    json_object *res = s_each_shard(ctl, c, cluster, ps, NULL, "front", "sessions", s_req_sessions,
                                    NULL, &failures);
    if (ctl->json) {
        ctl_print_json(res);
    } else {
        static const char *const head[] = {"SHARD", "RECEPTIONIST", "SESSION", "TYPE", "PEER"};
        ctl_table_t *t = ctl_table_new(5, head);
        for (size_t i = 0; i < json_object_array_length(res); i++) {
            json_object *e = json_object_array_get_idx(res, i), *list = ctl_get(e, "sessions");
            for (size_t k = 0; list && k < json_object_array_length(list); k++) {
                json_object *s = json_object_array_get_idx(list, k);
                char b[4][128];
                const char *row[] = {ctl_str(e, "name"),
                                     ctl_cell(ctl_get(s, "receptionist"), b[0], sizeof b[0]),
                                     ctl_cell(ctl_get(s, "session"), b[1], sizeof b[1]),
                                     ctl_cell(ctl_get(s, "type"), b[2], sizeof b[2]),
                                     ctl_cell(ctl_get(s, "peer"), b[3], sizeof b[3])};
                ctl_table_add(t, row);
            }
        }
        ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
    }
    json_object_put(res);
    json_object_put(cluster);
    json_object_put(ps);
    skick_client_destroy(&c);
    return failures ? CTL_FAIL : CTL_OK;
}

int ctl_cmd_services(ctl_t *ctl, ctl_args_t *a)
{
    skick_client_t *c;
    json_object *ps, *res = NULL;
    if (ctl_ps_fetch(ctl, &c, &ps) != 0)
        return CTL_FAIL;
    int rc = CTL_OK;
    if (skick_client_services(c, a->npos ? a->pos[0] : NULL, ctl->timeout_ms, &res) != 0) {
        rc = ctl_fail_client(ctl, "services");
    } else if (ctl->json) {
        ctl_print_json(res);
    } else {
        json_object *cluster = ctl_cluster_load(ctl);
        static const char *const head[] = {"NAME", "ADDRESS", "SHARD"};
        ctl_table_t *t = ctl_table_new(3, head);
        for (size_t i = 0;
             res && json_object_is_type(res, json_type_array) && i < json_object_array_length(res);
             i++) {
            json_object *s = json_object_array_get_idx(res, i);
            const char *shard = ctl_str(s, "shard");
            const char *name = "-";
            for (size_t k = 0; shard && k < json_object_array_length(ps); k++) {
                json_object *e = json_object_array_get_idx(ps, k);
                if (ctl_str(e, "shard") && strcmp(ctl_str(e, "shard"), shard) == 0)
                    name = ctl_shard_name(cluster, e);
            }
            char label[64];
            snprintf(label, sizeof label, "%s%s%s%s", strcmp(name, "-") ? name : "",
                     strcmp(name, "-") ? " (" : "", shard ? shard : "-",
                     strcmp(name, "-") ? ")" : "");
            const char *row[] = {ctl_str(s, "name"), ctl_str(s, "address"), label};
            ctl_table_add(t, row);
        }
        ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
        json_object_put(cluster);
    }
    json_object_put(res);
    json_object_put(ps);
    skick_client_destroy(&c);
    return rc;
}

/* ---- stats ------------------------------------------------------------------------- */

int ctl_cmd_stats(ctl_t *ctl, ctl_args_t *a)
{
    (void) a;
    skick_client_t *c;
    json_object *ps, *broker = NULL;
    if (ctl_ps_fetch(ctl, &c, &ps) != 0)
        return CTL_FAIL;
    if (skick_client_stats(c, ctl->timeout_ms, &broker) != 0) {
        int rc = ctl_fail_client(ctl, "stats");
        json_object_put(ps);
        skick_client_destroy(&c);
        return rc;
    }
    json_object *cluster = ctl_cluster_load(ctl);
    int failures;
    json_object *shards =
        s_each_shard(ctl, c, cluster, ps, NULL, NULL, "stats", s_req_stats, NULL, &failures);
    if (ctl->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "broker", json_object_get(broker));
        json_object_object_add(o, "shards", json_object_get(shards));
        ctl_print_json(o);
        json_object_put(o);
    } else {
        printf("Broker\n");
        static const char *const bh[] = {"COUNTER", ">VALUE"};
        ctl_table_t *t = ctl_table_new(2, bh);
        if (broker && json_object_is_type(broker, json_type_object)) {
            json_object_object_foreach(broker, key, val)
            {
                char b[128];
                const char *row[] = {key, ctl_cell(val, b, sizeof b)};
                ctl_table_add(t, row);
            }
        }
        ctl_table_print(t, stdout);
        ctl_table_destroy(&t);
        /* shards: one column each, the union of their counters as rows */
        size_t ns = json_object_array_length(shards);
        if (ns) {
            printf("\nShards\n");
            const char **head = calloc(ns + 1, sizeof *head);
            json_object *keys = json_object_new_object(); /* ordered set of counter names */
            head[0] = "COUNTER";
            char(*names)[48] = calloc(ns, sizeof *names);
            for (size_t i = 0; i < ns; i++) {
                json_object *e = json_object_array_get_idx(shards, i);
                snprintf(names[i], sizeof names[i], ">%s",
                         strcmp(ctl_str(e, "name"), "-") ? ctl_str(e, "name")
                                                         : ctl_str(e, "shard"));
                head[i + 1] = names[i];
                json_object *st = ctl_get(e, "stats");
                if (st && json_object_is_type(st, json_type_object)) {
                    json_object_object_foreach(st, key, val)
                    {
                        (void) val;
                        if (!ctl_get(keys, key))
                            json_object_object_add(keys, key, json_object_new_boolean(1));
                    }
                }
            }
            t = ctl_table_new((int) ns + 1, head);
            const char **row = calloc(ns + 1, sizeof *row);
            char(*cells)[128] = calloc(ns, sizeof *cells);
            json_object_object_foreach(keys, key, unused)
            {
                (void) unused;
                row[0] = key;
                for (size_t i = 0; i < ns; i++) {
                    json_object *st = ctl_get(json_object_array_get_idx(shards, i), "stats");
                    row[i + 1] = ctl_cell(ctl_get(st, key), cells[i], sizeof cells[i]);
                }
                ctl_table_add(t, row);
            }
            ctl_table_print(t, stdout);
            ctl_table_destroy(&t);
            free(row);
            free(cells);
            free(names);
            free(head);
            json_object_put(keys);
        }
    }
    json_object_put(shards);
    json_object_put(broker);
    json_object_put(cluster);
    json_object_put(ps);
    skick_client_destroy(&c);
    return failures ? CTL_FAIL : CTL_OK;
}

/* ---- send, ask, stop ------------------------------------------------------------------ */

/*  Check ADDR and parse JSON: 0, or CTL_USAGE after a message. */
static int s_message_args(ctl_t *ctl, ctl_args_t *a, json_object **msg)
{
    *msg = NULL;
    if (!skick_client_parse_address(a->pos[0], NULL, NULL))
        return ctl_usage(ctl,
                         "EINVAL: '%s' is not an actor address (SHARD:ACTOR, 16 lowercase "
                         "hex digits each)",
                         a->pos[0]);
    if (skick_json_parse_strict(a->pos[1], strlen(a->pos[1]), msg) != 0)
        return ctl_usage(ctl, "EINVAL: the message is not valid JSON: %s", a->pos[1]);
    json_object *act;
    if (!json_object_is_type(*msg, json_type_object) ||
        !json_object_object_get_ex(*msg, "action", &act) ||
        !json_object_is_type(act, json_type_string)) {
        json_object_put(*msg);
        *msg = NULL;
        return ctl_usage(ctl, "EINVAL: the message must be a JSON object with a string \"action\"");
    }
    return 0;
}

int ctl_cmd_send(ctl_t *ctl, ctl_args_t *a)
{
    bool confirm = true;
    for (int i = 0; i < a->nopts; i++)
        if (a->opts[i].val == OPT_NO_CONFIRM)
            confirm = false;
    json_object *msg;
    if (s_message_args(ctl, a, &msg) != 0)
        return CTL_USAGE;
    skick_client_t *c = ctl_connect(ctl);
    if (!c) {
        json_object_put(msg);
        return CTL_FAIL;
    }
    int rc = confirm ? skick_client_send_confirm(c, a->pos[0], msg, ctl->timeout_ms)
                     : skick_client_send(c, a->pos[0], msg);
    json_object_put(msg);
    if (rc != 0) {
        rc = ctl_fail_client(ctl, "send");
    } else if (ctl->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "to", json_object_new_string(a->pos[0]));
        json_object_object_add(o, "confirmed", json_object_new_boolean(confirm));
        ctl_print_json(o);
        json_object_put(o);
    } else {
        printf("sent to %s%s\n", a->pos[0], confirm ? "" : " (not confirmed)");
    }
    skick_client_destroy(&c);
    return rc;
}

int ctl_cmd_ask(ctl_t *ctl, ctl_args_t *a)
{
    bool stream = false;
    for (int i = 0; i < a->nopts; i++)
        if (a->opts[i].val == OPT_STREAM)
            stream = true;
    json_object *msg;
    if (s_message_args(ctl, a, &msg) != 0)
        return CTL_USAGE;
    skick_client_t *c = ctl_connect(ctl);
    if (!c) {
        json_object_put(msg);
        return CTL_FAIL;
    }
    int rc = CTL_OK;
    if (!stream) {
        json_object *answer = NULL;
        if (skick_client_ask(c, a->pos[0], msg, ctl->timeout_ms, &answer) != 0)
            rc = ctl_fail_client(ctl, "ask");
        else
            ctl_print_json(answer);
        json_object_put(answer);
    } else {
        skick_client_conv_t *v = skick_client_converse(c, a->pos[0], msg);
        if (!v)
            rc = ctl_fail_client(ctl, "ask");
        for (int turns = 0; v;) {
            json_object *turn = NULL;
            int r = skick_client_conv_recv(v, ctl->timeout_ms, &turn);
            if (r == 1) {
                ctl_print_json(turn);
                json_object_put(turn);
                turns++;
                continue;
            }
            if (r < 0)
                rc = ctl_fail_client(ctl, "ask");
            else if (turns == 0)
                rc = ctl_fail(ctl, SKICK_ECLOSED,
                              "ask: the partner ended the conversation "
                              "without an answer");
            break;
        }
        skick_client_conv_close(&v);
    }
    json_object_put(msg);
    skick_client_destroy(&c);
    return rc;
}

int ctl_cmd_stop(ctl_t *ctl, ctl_args_t *a)
{
    if (!skick_client_parse_address(a->pos[0], NULL, NULL))
        return ctl_usage(ctl,
                         "EINVAL: '%s' is not an actor address (SHARD:ACTOR, 16 lowercase "
                         "hex digits each)",
                         a->pos[0]);
    skick_client_t *c = ctl_connect(ctl);
    if (!c)
        return CTL_FAIL;
    int rc = CTL_OK;
    if (skick_client_stop(c, a->pos[0], ctl->timeout_ms) != 0) {
        rc = ctl_fail_client(ctl, "stop");
    } else if (ctl->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "stopped", json_object_new_string(a->pos[0]));
        ctl_print_json(o);
        json_object_put(o);
    } else {
        printf("stopped %s\n", a->pos[0]);
    }
    skick_client_destroy(&c);
    return rc;
}
