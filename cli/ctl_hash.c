/*  ctl_hash - skickctl hash get|set|del|keys|incr: the cluster's hash store

    Each subcommand is one CONTROL "hash" request to the broker (PROTOCOL.md
    "The hash operation"), so it reaches the store the shards of a cluster
    use by default. The broker checks tables and keys (EINVAL with its
    reason); skickctl checks only its own arguments. A VALUE is read as
    strict JSON; text that is not JSON is taken as a string, so `hello`
    stores "hello" while `42`, `true` and `{"a":1}` store what they say.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "skick_json.h"

typedef struct {
    const char *cmd;   /* get, set, del, keys, incr */
    const char *table; /* TABLE */
    const char *key;   /* KEY, or NULL (keys) */
    const char *arg;   /* VALUE or DELTA, or NULL */
    long ttl_ms;       /* --ttl, 0: none */
    bool nx;           /* --nx */
    long max;          /* --max (keys), default 1000 */
} s_hash_args_t;

/*  Positional counts per subcommand: TABLE, KEY, VALUE/DELTA. */
static const struct {
    const char *name;
    const char *wire; /* the broker's cmd */
    int min, max;     /* positional arguments after the subcommand */
    const char *usage;
} s_subs[] = {
    {"get", "get", 2, 2, "hash get TABLE KEY"},
    {"set", "set", 3, 3, "hash set TABLE KEY VALUE [--ttl MS] [--nx]"},
    {"del", "delete", 2, 2, "hash del TABLE KEY"},
    {"keys", "keys", 1, 1, "hash keys TABLE [--max N]"},
    {"incr", "incr", 2, 3, "hash incr TABLE KEY [DELTA]"},
};
#define NSUBS (sizeof s_subs / sizeof s_subs[0])

/*  Read the options and positionals into h; the index of the subcommand in
    s_subs, or -1 after a usage message. */
static int s_parse(ctl_t *ctl, ctl_args_t *a, s_hash_args_t *h)
{
    *h = (s_hash_args_t){.max = 1000};
    int sub = -1;
    for (size_t i = 0; i < NSUBS; i++)
        if (strcmp(a->pos[0], s_subs[i].name) == 0)
            sub = (int) i;
    if (sub < 0)
        return ctl_usage(ctl, "unknown hash command '%s' (get, set, del, keys, incr)", a->pos[0]),
               -1;
    int n = a->npos - 1;
    if (n < s_subs[sub].min || n > s_subs[sub].max)
        return ctl_usage(ctl, "usage: skickctl %s", s_subs[sub].usage), -1;
    h->cmd = s_subs[sub].wire;
    h->table = a->pos[1];
    h->key = n >= 2 ? a->pos[2] : NULL;
    h->arg = n >= 3 ? a->pos[3] : NULL;
    for (int i = 0; i < a->nopts; i++) {
        const ctl_opt_t *o = &a->opts[i];
        if (o->val == OPT_TTL || o->val == OPT_NX) {
            if (strcmp(h->cmd, "set") != 0)
                return ctl_usage(ctl, "%s applies to hash set only",
                                 o->val == OPT_TTL ? "--ttl" : "--nx"),
                       -1;
            if (o->val == OPT_NX)
                h->nx = true;
            else if (ctl_parse_int(ctl, "--ttl", o->arg, 1, 1000000000000L, &h->ttl_ms) != 0)
                return -1;
        } else if (o->val == OPT_MAX) {
            if (strcmp(h->cmd, "keys") != 0)
                return ctl_usage(ctl, "--max applies to hash keys only"), -1;
            if (ctl_parse_int(ctl, "--max", o->arg, 1, 100000, &h->max) != 0)
                return -1;
        }
    }
    return sub;
}

/*  The request's members for h: {"table","key"?, "value"|"delta"|"max"|...}.
    NULL after a usage message. Caller owns. */
static json_object *s_request(ctl_t *ctl, const s_hash_args_t *h)
{
    json_object *rq = json_object_new_object(), *value = NULL;
    json_object_object_add(rq, "cmd", json_object_new_string(h->cmd));
    json_object_object_add(rq, "table", json_object_new_string(h->table));
    if (h->key)
        json_object_object_add(rq, "key", json_object_new_string(h->key));
    if (strcmp(h->cmd, "set") == 0) {
        size_t len = strlen(h->arg);
        if (skick_json_parse_strict(h->arg, len, &value) == 0 && !value) {
            ctl_usage(ctl, "null is not storable (skick_hash_set refuses it): use hash del");
            json_object_put(rq);
            return NULL;
        }
        if (!value) {
            if (!skick_utf8_valid((const unsigned char *) h->arg, len)) {
                ctl_usage(ctl, "VALUE is neither JSON nor UTF-8 text");
                json_object_put(rq);
                return NULL;
            }
            value = json_object_new_string(h->arg); /* not JSON: the text itself */
        }
        json_object_object_add(rq, "value", value);
        if (h->ttl_ms)
            json_object_object_add(rq, "ttl_ms", json_object_new_int64(h->ttl_ms));
        if (h->nx)
            json_object_object_add(rq, "nx", json_object_new_boolean(true));
    } else if (strcmp(h->cmd, "incr") == 0) {
        char *end;
        errno = 0;
        long long delta = h->arg ? strtoll(h->arg, &end, 10) : 1;
        if (h->arg && (!*h->arg || *end || errno)) {
            ctl_usage(ctl, "DELTA must be an integer (int64), got '%s'", h->arg);
            json_object_put(rq);
            return NULL;
        }
        json_object_object_add(rq, "delta", json_object_new_int64(delta));
    } else if (strcmp(h->cmd, "keys") == 0) {
        json_object_object_add(rq, "max", json_object_new_int64(h->max));
    }
    return rq;
}

/*  Print what the broker answered for h. */
static void s_print(ctl_t *ctl, const s_hash_args_t *h, json_object *result)
{
    bool keys = strcmp(h->cmd, "keys") == 0, set = strcmp(h->cmd, "set") == 0;
    bool stored = !h->nx || json_object_get_boolean(result);
    if (ctl->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "table", json_object_new_string(h->table));
        if (h->key)
            json_object_object_add(o, "key", json_object_new_string(h->key));
        if (keys) {
            json_object_object_add(o, "keys", json_object_get(ctl_get(result, "keys")));
            json_object_object_add(o, "truncated", json_object_get(ctl_get(result, "truncated")));
        } else if (set) {
            json_object_object_add(o, "stored", json_object_new_boolean(stored));
        } else if (strcmp(h->cmd, "delete") == 0) {
            json_object_object_add(o, "deleted", json_object_new_boolean(1));
        } else {
            json_object_object_add(o, "value", json_object_get(result));
        }
        ctl_print_json(o);
        json_object_put(o);
    } else if (keys) {
        json_object *list = ctl_get(result, "keys");
        for (size_t i = 0; list && i < json_object_array_length(list); i++)
            printf("%s\n", json_object_get_string(json_object_array_get_idx(list, i)));
        fflush(stdout);
        if (json_object_get_boolean(ctl_get(result, "truncated")))
            fprintf(stderr,
                    "skickctl: table %s has more than %ld keys (raise --max, up to "
                    "100000)\n",
                    h->table, h->max);
    } else if (set) {
        if (stored)
            printf("stored %s %s\n", h->table, h->key);
        else
            printf("not stored: %s %s is present (--nx)\n", h->table, h->key);
    } else if (strcmp(h->cmd, "delete") == 0) {
        printf("deleted %s %s\n", h->table, h->key);
    } else {
        ctl_print_json(result); /* get: the value; incr: the new number */
    }
}

int ctl_cmd_hash(ctl_t *ctl, ctl_args_t *a)
{
    s_hash_args_t h;
    if (s_parse(ctl, a, &h) < 0)
        return CTL_USAGE;
    json_object *rq = s_request(ctl, &h), *result = NULL;
    if (!rq)
        return CTL_USAGE;
    skick_client_t *c = ctl_connect(ctl);
    if (!c) {
        json_object_put(rq);
        return CTL_FAIL;
    }
    int rc = CTL_OK;
    if (skick_client_request(c, NULL, "hash", rq, ctl->timeout_ms, &result) != 0) {
        /* the broker's reasons name the hash cmd already ("hash incr: ...") */
        const char *why = skick_client_last_error();
        if (strncmp(why, "hash", 4) == 0 && skick_errno() != SKICK_OK)
            rc = ctl_fail(ctl, skick_errno(), "%s", why);
        else {
            char what[64];
            snprintf(what, sizeof what, "hash %s", a->pos[0]);
            rc = ctl_fail_client(ctl, what);
        }
    } else
        s_print(ctl, &h, result);
    json_object_put(result);
    json_object_put(rq);
    skick_client_destroy(&c);
    return rc;
}
