/*  node_ws_view - GET /skick/cluster.json: the cluster as this front shard sees it

    For pages that show the system working (examples/www, `make demo`): the
    shard's own load (actors, sessions, websockets, client sessions) and
    rates (messages handled, client messages in and out, per second), and
    the shards it knows. Off unless node_ws_config_t.cluster_view
    (skick-node --cluster-view): it tells anyone who reaches the web port
    the shard ids, roles and actor types of the cluster and how busy it is
    (docs/security.md, "The websocket front").

    Like /metrics, the answer never waits for the reactor: the reactor
    renders the JSON once a second (a collect callback of the shard's
    metrics, node/actor/node_metrics.c) into a snapshot under a mutex, and
    the civetweb worker copies the last one. Its size is bounded
    (NODE_WS_VIEW_MAX): the shard list is cut first (at most
    NODE_WS_VIEW_SHARDS, then none), and "truncated" says so.

    The shards beyond this one come from the layer above (the cluster's
    directory, node_ws_set_view_shards): this layer never calls the
    cluster. Without it the list holds this shard only and "directory" is
    false.
*/
#include "node_ws_int.h"

#include <civetweb.h>
#include <stdlib.h>
#include <string.h>

#include "node_core.h"

static void s_add_int(json_object *o, const char *key, int64_t v)
{
    json_object_object_add(o, key, json_object_new_int64(v));
}

static double s_rate(uint64_t now, uint64_t before, int64_t dt_ms)
{
    return dt_ms > 0 && now >= before ? (double) (now - before) * 1000.0 / (double) dt_ms : 0.0;
}

static json_object *s_rounded(double v)
{
    return json_object_new_double((double) (int64_t) (v * 10.0 + 0.5) / 10.0);
}

/*  This shard as an entry of the shard list. */
static json_object *s_self(node_shard_t *sh)
{
    json_object *e = json_object_new_object(), *roles = json_object_new_array();
    char id[17];
    node_format_id(id, sh->id);
    json_object_object_add(e, "shard", json_object_new_string(id));
    if (sh->front)
        json_object_array_add(roles, json_object_new_string("front"));
    if (sh->back)
        json_object_array_add(roles, json_object_new_string("back"));
    json_object_object_add(e, "roles", roles);
    json_object_object_add(e, "self", json_object_new_boolean(1));
    return e;
}

static char *s_render(json_object *o, size_t *len)
{
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    *len = strlen(text);
    return *len <= NODE_WS_VIEW_MAX ? strdup(text) : NULL;
}

/*  Render the view (reactor). */
static void s_collect(node_shard_t *sh, void *arg)
{
    node_ws_t *ws = arg;
    node_ws_view_t *v = &ws->view;
    if (!sh->ws || sh->ws != ws)
        return; /* node_ws_stop began */
    int64_t now = node_now(sh), dt = v->have_prev ? now - v->prev_ms : 0;
    uint64_t delivered = sh->stats.delivered, in = atomic_load(&ws->n.msgs_in),
             out = atomic_load(&ws->n.msgs_out);
    json_object *o = json_object_new_object();
    char id[17];
    node_format_id(id, sh->id);
    s_add_int(o, "version", 1);
    json_object_object_add(o, "shard", json_object_new_string(id));
    s_add_int(o, "uptime_ms", now);
    s_add_int(o, "actors", (int64_t) sh->live);
    s_add_int(o, "sessions", (int64_t) sh->sessions);
    s_add_int(o, "clients", (int64_t) sh->clients);
    s_add_int(o, "client_sessions", (int64_t) sh->client_sessions);
    s_add_int(o, "websockets", atomic_load(&ws->open));
    s_add_int(o, "delivered", (int64_t) delivered);
    s_add_int(o, "messages_in", (int64_t) in);
    s_add_int(o, "messages_out", (int64_t) out);
    json_object_object_add(o, "delivered_per_s", s_rounded(s_rate(delivered, v->delivered, dt)));
    json_object_object_add(o, "messages_in_per_s", s_rounded(s_rate(in, v->in, dt)));
    json_object_object_add(o, "messages_out_per_s", s_rounded(s_rate(out, v->out, dt)));
    v->prev_ms = now;
    v->delivered = delivered;
    v->in = in;
    v->out = out;
    v->have_prev = true;
    json_object *shards = v->shards ? v->shards(sh, NODE_WS_VIEW_SHARDS, v->shards_arg) : NULL;
    bool truncated = false;
    if (!json_object_is_type(shards, json_type_array)) {
        json_object_put(shards);
        shards = NULL;
    }
    while (shards && json_object_array_length(shards) > NODE_WS_VIEW_SHARDS) {
        json_object_array_del_idx(shards, json_object_array_length(shards) - 1, 1);
        truncated = true;
    }
    json_object_object_add(o, "directory", json_object_new_boolean(shards != NULL));
    if (!shards)
        shards = json_object_new_array();
    json_object_array_put_idx(shards, json_object_array_length(shards), s_self(sh));
    json_object_object_add(o, "shards", shards);
    json_object_object_add(o, "truncated", json_object_new_boolean(truncated));
    size_t len;
    char *text = s_render(o, &len);
    if (!text) { /* too big even so: without the other shards */
        json_object *only = json_object_new_array();
        json_object_array_add(only, s_self(sh));
        json_object_object_add(o, "shards", only);
        json_object_object_add(o, "truncated", json_object_new_boolean(1));
        text = s_render(o, &len);
    }
    json_object_put(o);
    if (!text)
        return;
    pthread_mutex_lock(&v->lock);
    free(v->text);
    v->text = text;
    v->len = len;
    pthread_mutex_unlock(&v->lock);
}

/*  GET /skick/cluster.json (a civetweb worker). */
static int s_on_view(struct mg_connection *c, void *cbdata)
{
    node_ws_view_t *v = &((node_ws_t *) cbdata)->view;
    const struct mg_request_info *ri = mg_get_request_info(c);
    bool head = strcmp(ri->request_method, "HEAD") == 0;
    if (!head && strcmp(ri->request_method, "GET") != 0) {
        mg_printf(c, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
        return 405;
    }
    pthread_mutex_lock(&v->lock);
    size_t len = v->len;
    char *text = v->text ? malloc(len) : NULL;
    if (text)
        memcpy(text, v->text, len);
    pthread_mutex_unlock(&v->lock);
    if (!text) { /* not rendered yet (the first second), or out of memory */
        mg_printf(c, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n");
        return 503;
    }
    mg_printf(c,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
              "Connection: close\r\n\r\n",
              len);
    if (!head)
        mg_write(c, text, len);
    free(text);
    return 200;
}

void node_ws_view_start(node_ws_t *ws)
{
    node_ws_view_t *v = &ws->view;
    pthread_mutex_init(&v->lock, NULL);
    v->started = true;
    if (!ws->cfg.cluster_view || ws->fake)
        return;
    if (node_metrics_on_collect(ws->sh, s_collect, ws) != 0) {
        SKICK_LOG(SKICK_LOG_WARNING, "ws", "no /skick/cluster.json: the shard's metrics are off");
        return;
    }
    mg_set_request_handler(ws->ctx, "/skick/cluster.json$", s_on_view, ws);
}

void node_ws_view_stop(node_ws_t *ws)
{
    node_ws_view_t *v = &ws->view;
    if (!v->started)
        return;
    free(v->text);
    v->text = NULL;
    pthread_mutex_destroy(&v->lock);
    v->started = false;
}

void node_ws_set_view_shards(node_ws_t *ws, node_ws_view_shards_fn *fn, void *arg)
{
    if (!ws)
        return;
    ws->view.shards = fn;
    ws->view.shards_arg = arg;
}
