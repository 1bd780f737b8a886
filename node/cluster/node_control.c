/*  node_control - CONTROL requests addressed to this shard (skickctl)

    Operations (PROTOCOL.md "Control requests"): actors, sessions, stats,
    stop. Each answer is one REPLY body {"id","ok","result"} or
    {"id","ok":false,"code","error"}; nothing here suspends.
*/
#include "node_cluster_int.h"

#include <stdio.h>
#include <string.h>


static json_object *s_reply(json_object *req, json_object *result)
{
    json_object *r = json_object_new_object();
    json_object *id = NULL;
    json_object_object_get_ex(req, "id", &id);
    json_object_object_add(r, "id", json_object_get(id));
    json_object_object_add(r, "ok", json_object_new_boolean(1));
    json_object_object_add(r, "result", result);
    return r;
}

static json_object *s_error(json_object *req, int err, const char *why)
{
    json_object *r = json_object_new_object();
    json_object *id = NULL;
    json_object_object_get_ex(req, "id", &id);
    json_object_object_add(r, "id", json_object_get(id));
    json_object_object_add(r, "ok", json_object_new_boolean(0));
    json_object_object_add(r, "code", json_object_new_string(skick_err_name(err)));
    json_object_object_add(r, "error", json_object_new_string(why));
    return r;
}

static const char *s_state(const skick_actor_t *a)
{
    if (a->flags & (NODE_A_STOPPING | NODE_A_STOPPED))
        return "stopping";
    if (!(a->flags & NODE_A_STARTED))
        return "starting";
    return a->busy ? "busy" : "running";
}

static json_object *s_actors(node_shard_t *sh, json_object *req)
{
    int64_t limit = skick_get_int(req, "limit", 1000);
    json_object *out = json_object_new_array();
    int64_t n = 0;
    for (size_t i = 0; i < sh->actors.cap && n < limit; i++) {
        if (!sh->actors.keys[i])
            continue;
        skick_actor_t *a = sh->actors.vals[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "address", json_object_new_string(a->addr));
        json_object_object_add(o, "type", json_object_new_string(skick_type(a)));
        json_object_object_add(o, "depth", json_object_new_int64(a->depth));
        json_object_object_add(o, "state", json_object_new_string(s_state(a)));
        if (skick_is_session(a))
            json_object_object_add(o, "session", json_object_new_boolean(1));
        json_object_array_add(out, o);
        n++;
    }
    return out;
}

static json_object *s_sessions(node_shard_t *sh)
{
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < sh->actors.cap; i++) {
        if (!sh->actors.keys[i])
            continue;
        json_object *info = node_receptionist_info(sh->actors.vals[i]);
        if (info)
            json_object_array_add(out, info);
    }
    return out;
}

json_object *node_control_stats(node_shard_t *sh)
{
    json_object *o = json_object_new_object();
#define S_STAT(name) json_object_object_add(o, #name, json_object_new_int64((int64_t) sh->stats.name))
    S_STAT(delivered);
    S_STAT(sent_local);
    S_STAT(dead_letters);
    S_STAT(refused_full);
    S_STAT(schema_failures);
    S_STAT(unknown_actions);
    S_STAT(spawned);
    S_STAT(stopped);
    S_STAT(failed);
    S_STAT(stale_replies);
    S_STAT(lost_sentinels);
    S_STAT(switches);
    S_STAT(sent_remote);
    S_STAT(recv_remote);
    S_STAT(remote_dead);
    S_STAT(gaps);
    S_STAT(malformed);
#undef S_STAT
    json_object_object_add(o, "actors", json_object_new_int64((int64_t) sh->live));
    json_object_object_add(o, "sessions", json_object_new_int64((int64_t) sh->sessions));
    json_object_object_add(o, "clients", json_object_new_int64((int64_t) sh->clients));
    json_object_object_add(o, "client_sessions",
                           json_object_new_int64((int64_t) sh->client_sessions));
    json_object_object_add(o, "watches", json_object_new_int64((int64_t) node_watch_count(sh)));
    json_object_object_add(o, "uptime_ms", json_object_new_int64(node_now(sh)));
    json_object *ws = sh->ws ? node_ws_stats_json(sh->ws) : NULL;
    if (ws) /* front shards: what their clients cost them */
        json_object_object_add(o, "ws", ws);
    return o;
}

json_object *node_control_handle(node_shard_t *sh, json_object *req)
{
    const char *op = req ? skick_get_string(req, "op", NULL) : NULL;
    if (!op)
        return s_error(req, SKICK_EINVAL, "a request needs a string \"op\"");
    if (strcmp(op, "actors") == 0)
        return s_reply(req, s_actors(sh, req));
    if (strcmp(op, "sessions") == 0)
        return s_reply(req, s_sessions(sh));
    if (strcmp(op, "stats") == 0)
        return s_reply(req, node_control_stats(sh));
    if (strcmp(op, "stop") == 0) {
        skick_actor_t *a = node_actor_lookup(sh, skick_get_string(req, "address", ""));
        if (!a || (a->flags & NODE_A_STOPPED))
            return s_error(req, SKICK_EDEAD, "no such actor on this shard");
        if (a->flags & NODE_A_SHARD)
            return s_error(req, SKICK_EINVAL, "the shard actor is stopped with skickctl down "
                                              "or scale");
        SKICK_LOG(SKICK_LOG_NOTICE, "control", "%s (%s) stopped by a control request", a->addr,
                  skick_type(a));
        node_request_stop(a, NODE_END_CANCELLATION);
        return s_reply(req, NULL);
    }
    char why[120];
    snprintf(why, sizeof why, "unknown operation '%.40s'", op);
    return s_error(req, SKICK_EINVAL, why);
}
