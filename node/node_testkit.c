/*  node_testkit - the in-process test harness (skick/testkit.h)

    A shard with a virtual clock, run from the host (the test) with
    node_loop_run(until_idle). Probes are actors flagged NODE_A_PROBE whose
    deliveries stay in their mailbox untouched (node_actor.c checks the flag
    first), so skick_tk_recv pops exactly what was sent, conversation frames
    and sentinels included.
*/
#include "node_cluster.h"
#include "node_ws.h"
#include "skick/testkit.h"

#include <stdlib.h>
#include <string.h>

#include "skick_metrics.h"

struct skick_tk {
    node_shard_t *sh;  /* the shard */
    skick_app_t *app;  /* its types */
};

static void s_probe_factory(skick_actor_t *self, json_object *init)
{
    (void) self;
    (void) init;
}

skick_tk_t *skick_tk_new(skick_module_init_fn *init)
{
    skick_tk_t *tk = node_calloc(1, sizeof *tk);
    tk->app = node_app_new();
    if (init)
        init(tk->app);
    tk->sh = node_shard_new(tk->app, true);
    node_cluster_prepare(tk->sh);
    node_shard_start(tk->sh);
    return tk;
}

void skick_tk_destroy(skick_tk_t **tk_p)
{
    skick_tk_t *tk = tk_p ? *tk_p : NULL;
    if (!tk)
        return;
    *tk_p = NULL;
    node_shard_stop(tk->sh);
    for (int i = 0; i < 100 && tk->sh->live; i++) {
        skick_tk_run(tk);
        if (tk->sh->live)
            skick_tk_advance(tk, tk->sh->cfg.stop_timeout_ms / 10 + 1);
    }
    node_ws_t *ws = tk->sh->ws;
    node_ws_stop(&ws); /* after the receptionists, which write to it */
    node_shard_destroy(&tk->sh);
    node_app_destroy(&tk->app);
    free(tk);
}

int skick_tk_actor(skick_tk_t *tk, const char *type, skick_factory_fn *factory)
{
    return skick_actor(tk->app, type, factory);
}

void skick_tk_config(skick_tk_t *tk, uint32_t mailbox_capacity, int64_t call_timeout_ms)
{
    if (mailbox_capacity)
        tk->sh->cfg.mailbox_capacity = mailbox_capacity;
    if (call_timeout_ms)
        tk->sh->cfg.call_timeout_ms = call_timeout_ms;
}

skick_addr_t skick_tk_shard(skick_tk_t *tk)
{
    skick_addr_t a;
    memcpy(a.str, tk->sh->addr, sizeof a.str);
    return a;
}

static skick_addr_t s_addr_of(skick_actor_t *a)
{
    skick_addr_t out = {{0}};
    if (a)
        memcpy(out.str, a->addr, sizeof out.str);
    return out;
}

skick_addr_t skick_tk_spawn(skick_tk_t *tk, const char *type, const char *init_json,
                            const char *monitor)
{
    node_shard_t *saved = node_shard;
    node_shard = tk->sh;
    skick_addr_t out = {{0}};
    const node_type_t *t = node_app_type(tk->app, type);
    json_object *init = init_json ? json_tokener_parse(init_json) : NULL;
    if (!t) {
        skick_set_errno(SKICK_ENOTYPE);
    } else if (init_json && !json_object_is_type(init, json_type_object)) {
        skick_set_errno(SKICK_EINVAL);
    } else {
        const char *mons[1] = {monitor};
        out = s_addr_of(node_spawn(tk->sh, t, t->factory, &init, (node_ref_t){0, 0}, mons,
                                   monitor ? 1 : 0, 0, 0));
    }
    json_object_put(init);
    node_shard = saved;
    return out;
}

skick_addr_t skick_tk_probe(skick_tk_t *tk)
{
    node_shard_t *saved = node_shard;
    node_shard = tk->sh;
    skick_actor_t *p = node_spawn(tk->sh, NULL, s_probe_factory, NULL, (node_ref_t){0, 0},
                                  NULL, 0, NODE_A_PROBE | NODE_A_STARTED, 0);
    node_shard = saved;
    return s_addr_of(p);
}

int skick_tk_send_obj(skick_tk_t *tk, const char *from, const char *to, json_object **msg)
{
    node_ref_t ref = {0, 0};
    if (from && node_parse_addr(from, &ref) != 0) {
        json_object_put(*msg);
        *msg = NULL;
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    if (!*msg || !json_object_is_type(*msg, json_type_object)) {
        json_object_put(*msg);
        *msg = NULL;
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    node_shard_t *saved = node_shard;
    node_shard = tk->sh;
    int rc = node_deliver(tk->sh, ref, to, msg);
    node_shard = saved;
    return rc;
}

int skick_tk_send(skick_tk_t *tk, const char *from, const char *to, const char *json)
{
    json_object *msg = json ? json_tokener_parse(json) : NULL;
    return skick_tk_send_obj(tk, from, to, &msg);
}

void skick_tk_run(skick_tk_t *tk)
{
    node_loop_run(tk->sh, true);
}

void skick_tk_advance(skick_tk_t *tk, int64_t ms)
{
    node_shard_t *sh = tk->sh;
    int64_t end = sh->vnow + (ms < 0 ? 0 : ms);
    skick_tk_run(tk);
    for (;;) {
        int64_t next = node_timer_next(sh);
        if (next < 0 || sh->vnow + next > end)
            break;
        sh->vnow += next;
        skick_tk_run(tk);
    }
    sh->vnow = end;
    skick_tk_run(tk);
}

int64_t skick_tk_now(skick_tk_t *tk)
{
    return tk->sh->vnow;
}

json_object *skick_tk_recv(skick_tk_t *tk, const char *probe)
{
    skick_tk_run(tk);
    skick_actor_t *p = node_actor_lookup(tk->sh, probe);
    if (!p || !(p->flags & NODE_A_PROBE) || !p->head)
        return NULL;
    node_msg_t *m = p->head;
    p->head = m->next;
    if (!p->head)
        p->tail = NULL;
    if (!m->control)
        p->depth--;
    json_object *body = m->body;
    free(m);
    return body;
}

size_t skick_tk_pending(skick_tk_t *tk, const char *probe)
{
    skick_tk_run(tk);
    skick_actor_t *p = node_actor_lookup(tk->sh, probe);
    size_t n = 0;
    for (node_msg_t *m = p ? p->head : NULL; m; m = m->next)
        n++;
    return n;
}

/*  Take the first frame of conversation cid from probe p, or NULL. */
static json_object *s_take_frame(skick_actor_t *p, const char *cid)
{
    for (node_msg_t **mp = &p->head, *prev = NULL; *mp; prev = *mp, mp = &(*mp)->next) {
        node_msg_t *m = *mp;
        const char *c = skick_get_string(m->body, "cid", NULL);
        const char *act = skick_get_string(m->body, "action", "");
        if (!c || strcmp(c, cid) != 0 ||
            (strcmp(act, "receive_reply") != 0 && strcmp(act, "end_conversation") != 0))
            continue;
        *mp = m->next;
        if (p->tail == m)
            p->tail = prev;
        if (!m->control)
            p->depth--;
        json_object *body = m->body;
        free(m);
        return body;
    }
    return NULL;
}

static json_object *s_answer(json_object *frame)
{
    const char *act = skick_get_string(frame, "action", "");
    json_object *out = NULL;
    if (strcmp(act, "receive_reply") == 0) {
        json_object *m = NULL;
        json_object_object_get_ex(frame, "message", &m);
        out = m ? json_object_get(m) : json_object_new_object();
    } else {
        skick_set_errno(skick_get_string(frame, "error", NULL) ? SKICK_EPARTNER
                                                               : SKICK_ECLOSED);
        const char *code = skick_get_string(frame, "code", NULL);
        for (int e = 1; code && e < SKICK_ERR_COUNT_; e++)
            if (strcmp(code, skick_err_name(e)) == 0)
                skick_set_errno(e);
    }
    json_object_put(frame);
    return out;
}

json_object *skick_tk_call(skick_tk_t *tk, const char *to, const char *json,
                           int64_t timeout_ms)
{
    json_object *msg = json ? json_tokener_parse(json) : NULL;
    if (!msg || !json_object_is_type(msg, json_type_object)) {
        json_object_put(msg);
        skick_set_errno(SKICK_EINVAL);
        return NULL;
    }
    skick_addr_t probe = skick_tk_probe(tk);
    char cid[33];
    node_new_cid(cid);
    json_object_object_add(msg, "sender", json_object_new_string(probe.str));
    json_object_object_add(msg, "cid", json_object_new_string(cid));
    json_object *answer = NULL;
    if (skick_tk_send_obj(tk, probe.str, to, &msg) == 0) {
        int64_t deadline = tk->sh->vnow + (timeout_ms < 0 ? tk->sh->cfg.call_timeout_ms
                                                          : timeout_ms);
        json_object *frame = NULL;
        for (;;) {
            skick_tk_run(tk);
            skick_actor_t *p = node_actor_lookup(tk->sh, probe.str);
            if ((frame = s_take_frame(p, cid)) != NULL)
                break;
            int64_t next = node_timer_next(tk->sh);
            if (next < 0 || tk->sh->vnow + next > deadline)
                break;
            tk->sh->vnow += next;
        }
        if (frame) {
            answer = s_answer(frame);
        } else {
            /* No answer: the wait lasts its whole timeout in virtual time too,
               as it would for an actor (and timers due by then fire). */
            if (deadline > tk->sh->vnow)
                skick_tk_advance(tk, deadline - tk->sh->vnow);
            skick_set_errno(SKICK_ETIMEDOUT);
        }
    }
    int err = skick_errno();
    skick_tk_stop(tk, probe.str);
    skick_tk_run(tk);
    skick_set_errno(err);
    return answer;
}

bool skick_tk_alive(skick_tk_t *tk, const char *addr)
{
    skick_actor_t *a = node_actor_lookup(tk->sh, addr);
    return a && !(a->flags & (NODE_A_STOPPING | NODE_A_STOPPED));
}

int skick_tk_stop(skick_tk_t *tk, const char *addr)
{
    skick_actor_t *a = node_actor_lookup(tk->sh, addr);
    if (!a) {
        skick_set_errno(SKICK_EDEAD);
        return -1;
    }
    node_shard_t *saved = node_shard;
    node_shard = tk->sh;
    node_request_stop(a, NODE_END_CANCELLATION);
    node_shard = saved;
    return 0;
}

uint64_t skick_tk_stat(skick_tk_t *tk, const char *name)
{
    const node_stats_t *s = &tk->sh->stats;
    static const struct {
        const char *name;
        size_t off;
    } fields[] = {
#define F(x) {#x, offsetof(node_stats_t, x)}
        F(delivered), F(dead_letters), F(refused_full), F(schema_failures),
        F(unknown_actions), F(spawned), F(stopped), F(failed), F(stale_replies),
        F(switches), F(sent_local), F(lost_sentinels),
#undef F
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(name, fields[i].name) == 0)
            return *(const uint64_t *) ((const char *) s + fields[i].off);
    if (strcmp(name, "live") == 0)
        return tk->sh->live;
    if (strcmp(name, "fibers") == 0)
        return node_fiber_count();
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Fake websocket clients                                                     */

static node_ws_t *s_ws(skick_tk_t *tk)
{
    return tk->sh->ws ? tk->sh->ws : node_ws_fake(tk->sh);
}

uint64_t skick_tk_ws_open(skick_tk_t *tk)
{
    node_shard_t *saved = node_shard;
    node_shard = tk->sh;
    uint64_t id = node_ws_fake_open(s_ws(tk));
    node_shard = saved;
    return id;
}

int skick_tk_ws_send(skick_tk_t *tk, uint64_t client, const char *text)
{
    return skick_tk_ws_send_len(tk, client, text, strlen(text));
}

int skick_tk_ws_send_len(skick_tk_t *tk, uint64_t client, const char *data, size_t len)
{
    node_shard_t *saved = node_shard;
    node_shard = tk->sh;
    int rc = node_ws_fake_input(s_ws(tk), client, data, len);
    node_shard = saved;
    return rc;
}

char *skick_tk_ws_recv(skick_tk_t *tk, uint64_t client)
{
    skick_tk_run(tk);
    return node_ws_fake_output(s_ws(tk), client);
}

json_object *skick_tk_ws_recv_json(skick_tk_t *tk, uint64_t client)
{
    char *text = skick_tk_ws_recv(tk, client);
    if (!text)
        return NULL;
    json_object *v = strcmp(text, "denied") == 0 ? json_object_new_string("denied")
                                                 : json_tokener_parse(text);
    free(text);
    return v;
}

bool skick_tk_ws_closed(skick_tk_t *tk, uint64_t client, int *code, const char **reason)
{
    skick_tk_run(tk);
    return node_ws_fake_closed(s_ws(tk), client, code, reason);
}

void skick_tk_ws_drop(skick_tk_t *tk, uint64_t client)
{
    node_shard_t *saved = node_shard;
    node_shard = tk->sh;
    node_ws_fake_drop(s_ws(tk), client);
    node_shard = saved;
}

void skick_tk_ws_pause(skick_tk_t *tk, uint64_t client, bool paused)
{
    node_shard_t *saved = node_shard;
    node_shard = tk->sh;
    node_ws_fake_pause(s_ws(tk), client, paused);
    node_shard = saved;
}

void skick_tk_ws_send_queue(skick_tk_t *tk, size_t bytes, skick_send_policy_t policy)
{
    node_ws_config_t *cfg = (node_ws_config_t *) node_ws_config(s_ws(tk));
    if (bytes)
        cfg->send_queue = bytes;
    if (policy)
        cfg->send_policy = policy;
}

void skick_tk_ws_timeouts(skick_tk_t *tk, int64_t handshake_ms, int64_t idle_ms)
{
    node_ws_config_t *cfg = (node_ws_config_t *) node_ws_config(s_ws(tk));
    if (handshake_ms > 0)
        cfg->handshake_timeout_ms = handshake_ms;
    if (idle_ms > 0)
        cfg->idle_timeout_ms = idle_ms;
}

int skick_tk_metrics(skick_tk_t *tk)
{
    return node_metrics_enable(tk->sh);
}

char *skick_tk_metrics_text(skick_tk_t *tk)
{
    skick_metrics_t *reg = node_metrics_registry(tk->sh);
    if (!reg)
        return NULL;
    node_metrics_publish(tk->sh);
    return skick_metrics_render(reg, NULL);
}

char *skick_tk_metrics_scrape(skick_tk_t *tk)
{
    skick_metrics_t *reg = node_metrics_registry(tk->sh);
    return reg ? skick_metrics_snapshot(reg, NULL, NULL) : NULL;
}
