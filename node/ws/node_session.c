/*  node_session - session types and the session actor's side of the pair

    A session actor is an ordinary actor with a node_session_t in its extra
    part: the address of its receptionist, the generation of the socket
    schemas it last shipped, and its open socket queries. Its factory
    registers socket actions (skick_socket): handlers plus the schema text
    the receptionist will check client messages against. Each time it has
    started (its on_start returned: the first time, and after each replace)
    the runtime ships the schemas to the receptionist with a new generation; client messages come back
    tagged with the generation they were checked under, and one checked
    under an older generation is refused here, so a new behaviour never sees
    a message that only the old schemas admitted.

    Messages between the pair (all plain actor messages, so the pair may
    span shards):
      session -> receptionist: session_schemas, socksend, new_query, cancel_query,
                               skick.drained
      receptionist -> session: client messages (tagged), query_reply,
                               skick.drain, skick.client_queue, skick.query_refused
    The skick.* ones are the runtime's (PROTOCOL.md "Slow clients", "Limits
    and close codes"); they are taken only from the session's receptionist.
*/
#include "node_ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct node_query {
    struct node_query *next;  /* session's list */
    char qid[33];             /* query id */
    node_wait_t *wait;        /* the waiting skick_query */
    json_object *answer;      /* set when answered */
} node_query_t;

typedef struct node_session {
    node_ref_t rcpt;                  /* the receptionist */
    char rcpt_addr[SKICK_ADDR_LEN + 1];
    uint32_t gen;                     /* generation last shipped */
    const node_session_type_t *type;  /* what it was created as */
    node_query_t *queries;            /* open skick_query calls */
    skick_socket_status_t queue;      /* a remote receptionist's last report */
} node_session_t;

/* ------------------------------------------------------------------------- */
/* Registry                                                                   */

static void s_sessions_free(skick_app_t *app);

static int s_register(skick_app_t *app, const char *name, skick_factory_fn *factory,
                      bool requestable)
{
    size_t n = name ? strnlen(name, 129) : 0;
    if (n == 0 || n > 128 || !factory || (requestable && strchr(name, ':'))) {
        SKICK_LOG(SKICK_LOG_ERROR, "app", "module %s: invalid session registration '%.64s'%s",
                  app->current_module ? app->current_module : "?", name ? name : "(null)",
                  requestable && name && strchr(name, ':') ? " (':' is for subsessions)" : "");
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    if (node_strmap_get(&app->sessions, name)) {
        SKICK_LOG(SKICK_LOG_ERROR, "app", "session type '%s' is registered twice", name);
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    node_session_type_t *t = node_calloc(1, sizeof *t);
    t->name = node_strdup(name);
    t->factory = factory;
    t->requestable = requestable;
    t->module = app->current_module;
    t->as_type = (node_type_t){.name = t->name, .factory = factory, .module = t->module};
    node_strmap_put(&app->sessions, name, t);
    app->sessions_free = s_sessions_free; /* the app frees what we put there */
    return 0;
}

int skick_session(skick_app_t *app, const char *name, skick_factory_fn *factory)
{
    return s_register(app, name, factory, true);
}

int skick_subsession(skick_app_t *app, const char *name, skick_factory_fn *factory)
{
    return s_register(app, name, factory, false);
}

int skick_handshake(skick_app_t *app, const char *name, skick_factory_fn *first,
                    skick_factory_fn *final)
{
    char final_name[160];
    if (!name || strlen(name) > 128 || !final) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    snprintf(final_name, sizeof final_name, "%s:final", name);
    if (s_register(app, name, first, true) != 0)
        return -1;
    return s_register(app, final_name, final, false);
}

skick_schema_t *node_session_handshake_compile(const char *schema, char *err, size_t errlen)
{
    json_object *doc = schema ? json_tokener_parse(schema) : NULL;
    if (!doc || !json_object_is_type(doc, json_type_object)) {
        snprintf(err, errlen, "not a JSON object");
        json_object_put(doc);
        return NULL;
    }
    if (!json_object_object_get_ex(doc, "session_type", NULL))
        json_object_object_add(doc, "session_type", json_object_new_string("string"));
    skick_schema_t *check = skick_schema_compile_shorthand(doc, NULL, err, errlen);
    json_object_put(doc);
    return check;
}

int skick_session_handshake_schema(skick_app_t *app, const char *name, const char *schema)
{
    node_session_type_t *t = name ? node_strmap_get(&app->sessions, name) : NULL;
    char err[200];
    skick_schema_t *check = node_session_handshake_compile(schema, err, sizeof err);
    if (!t || !check) {
        SKICK_LOG(SKICK_LOG_ERROR, "app", "handshake schema for '%.64s' rejected: %s",
                  name ? name : "(null)", t ? err : "no such session type");
        skick_schema_destroy(&check);
        skick_set_errno(t ? SKICK_ESCHEMA : SKICK_ENOTYPE);
        return -1;
    }
    skick_schema_destroy(&t->handshake);
    t->handshake = check;
    free(t->handshake_text);
    t->handshake_text = node_strdup(schema); /* advertised to front shards */
    return 0;
}

int skick_session_limits(skick_app_t *app, const char *name,
                         const skick_session_limits_t *limits)
{
    node_session_type_t *t = name ? node_strmap_get(&app->sessions, name) : NULL;
    if (!t || !limits) {
        skick_set_errno(t ? SKICK_EINVAL : SKICK_ENOTYPE);
        return -1;
    }
    t->limits = *limits;
    return 0;
}

const node_session_type_t *node_session_type(skick_app_t *app, const char *name)
{
    return app && name ? node_strmap_get(&app->sessions, name) : NULL;
}

static void s_free_type(void *p)
{
    node_session_type_t *t = p;
    node_behaviour_unref(&t->as_type.cached);
    free(t->name);
    skick_schema_destroy(&t->handshake);
    free(t->handshake_text);
    free(t);
}

static void s_sessions_free(skick_app_t *app)
{
    node_strmap_free(&app->sessions, s_free_type);
}

/* ------------------------------------------------------------------------- */
/* The session actor                                                          */

static const node_actor_kind_t s_kind;

static node_session_t *s_session(skick_actor_t *a)
{
    return a->x && a->x->kind == &s_kind ? a->x->kind_state : NULL;
}

bool skick_is_session(skick_actor_t *self)
{
    return s_session(self) != NULL;
}

skick_actor_t *node_session_spawn(node_shard_t *sh, const node_session_type_t *type,
                                  json_object **init, node_ref_t rcpt, uint64_t want_id)
{
    node_session_t *s = node_calloc(1, sizeof *s);
    s->rcpt = rcpt;
    s->type = type;
    node_format_addr(s->rcpt_addr, rcpt.shard, rcpt.id);
    skick_actor_t *a = node_actor_new(sh, &type->as_type, rcpt, 0, want_id);
    node_extra_t *x = node_extra(a);
    x->kind = &s_kind;
    x->kind_state = s;
    sh->sessions++;
    node_add_monitor(a, rcpt); /* the receptionist learns when we end */
    node_actor_start(a, type->factory, init); /* ships its schemas once started */
    return a;
}

/*  Send the session's current schemas to its receptionist (new generation):
    once started, and again after a replace. */
static void s_ship(skick_actor_t *a)
{
    node_session_t *s = s_session(a);
    if (!s)
        return;
    json_object *m = json_object_new_object();
    json_object_object_add(m, "action", json_object_new_string("session_schemas"));
    json_object_object_add(m, "generation", json_object_new_int64(++s->gen));
    json_object *ship = a->beh->ship;
    json_object_object_add(m, "sockets",
                           ship ? json_object_get(json_object_object_get(ship, "sockets"))
                                : json_object_new_object());
    json_object_object_add(m, "queries",
                           ship ? json_object_get(json_object_object_get(ship, "queries"))
                                : json_object_new_object());
    node_deliver_ref(a->shard, node_ref_of(a), s->rcpt, &m, true);
}

int skick_socket(skick_actor_t *self, const char *name, const char *schema,
                 skick_handler_fn *fn)
{
    if (!s_session(self)) {
        SKICK_LOG(SKICK_LOG_ERROR, "session", "%s: skick_socket outside a session", self->addr);
        skick_set_errno(SKICK_ECONTEXT);
        return -1;
    }
    if (name && !node_schema_cached_as(self->shard, schema ? schema : "{}", name, true)) {
        skick_set_errno(SKICK_ESCHEMA);
        return -1;
    }
    return node_behaviour_add_action(self, name, NULL, fn, false, true, schema ? schema : "{}");
}

static int s_to_rcpt(skick_actor_t *self, json_object **m)
{
    node_session_t *s = s_session(self);
    if (!s) {
        json_object_put(*m);
        *m = NULL;
        skick_set_errno(SKICK_ECONTEXT);
        return -1;
    }
    return node_deliver_ref(self->shard, node_ref_of(self), s->rcpt, m, false);
}

int skick_socksend(skick_actor_t *self, json_object **msg)
{
    if (!msg) {
        skick_set_errno(SKICK_EINVAL);
        return -1;
    }
    node_session_t *s = s_session(self);
    skick_actor_t *r = s ? node_actor_by_ref(self->shard, s->rcpt) : NULL;
    int rc = r && r->type == node_ws_rcpt_type_of(self->shard)
                 ? node_receptionist_direct(r, *msg)
                 : 1;
    if (rc <= 0) { /* written or queued, or refused: the receptionist was idle */
        json_object_put(*msg);
        *msg = NULL;
        return rc;
    }
    json_object *m = json_object_new_object();
    json_object_object_add(m, "action", json_object_new_string("socksend"));
    json_object_object_add(m, "message", *msg);
    *msg = NULL;
    return s_to_rcpt(self, &m);
}

int skick_socket_status(skick_actor_t *self, skick_socket_status_t *st)
{
    node_session_t *s = s_session(self);
    if (!s || !st) {
        skick_set_errno(s ? SKICK_EINVAL : SKICK_ECONTEXT);
        return -1;
    }
    skick_actor_t *r = node_actor_by_ref(self->shard, s->rcpt);
    if (r && node_receptionist_status(r, st) == 0)
        return 0;
    *st = s->queue; /* the client is on another shard: its last report */
    st->exact = false;
    return 0;
}

json_object *skick_query(skick_actor_t *self, json_object **payload, const char *subschema,
                         int64_t timeout_ms)
{
    node_session_t *s = s_session(self);
    json_object *p = payload ? *payload : NULL;
    if (payload)
        *payload = NULL;
    if (!s) {
        json_object_put(p);
        skick_set_errno(SKICK_ECONTEXT);
        return NULL;
    }
    node_query_t q = {0};
    node_new_cid(q.qid);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "action", json_object_new_string("new_query"));
    json_object_object_add(m, "query_id", json_object_new_string(q.qid));
    json_object_object_add(m, "message", p);
    json_object_object_add(m, "schema", json_object_new_string(subschema ? subschema : "default"));
    if (s_to_rcpt(self, &m) != 0)
        return NULL;
    node_wait_t w;
    node_wait_init(&w);
    q.wait = &w;
    q.next = s->queries;
    s->queries = &q;
    int rc = node_wait(&w, timeout_ms < 0 ? self->shard->cfg.call_timeout_ms : timeout_ms);
    for (node_query_t **pp = &s->queries; *pp; pp = &(*pp)->next)
        if (*pp == &q) {
            *pp = q.next;
            break;
        }
    if (q.answer)
        return q.answer;
    /* Unanswered: the receptionist forgets the question. */
    json_object *cancel = json_object_new_object();
    json_object_object_add(cancel, "action", json_object_new_string("cancel_query"));
    json_object_object_add(cancel, "query_id", json_object_new_string(q.qid));
    s_to_rcpt(self, &cancel);
    skick_set_errno(rc == SKICK_OK ? SKICK_ECLOSED : rc);
    return NULL;
}

/*  The open query qid, if it still waits. */
static node_query_t *s_open_query(node_session_t *s, const char *qid)
{
    node_query_t *q = s ? s->queries : NULL;
    while (q && strcmp(q->qid, qid) != 0)
        q = q->next;
    return q && !q->answer && !q->wait->done ? q : NULL;
}

/*  A query_reply for session a (body taken): straight to the waiting
    skick_query. */
static void s_query_reply(skick_actor_t *a, json_object **body)
{
    json_object *b = *body;
    *body = NULL;
    node_query_t *q = s_open_query(s_session(a), skick_get_string(b, "query_id", ""));
    if (!q) {
        a->shard->stats.stale_replies++;
        json_object_put(b);
        return;
    }
    json_object *v = NULL;
    json_object_object_get_ex(b, "message", &v);
    q->answer = v ? json_object_get(v) : json_object_new_object();
    json_object_put(b);
    node_wait_complete(q->wait, SKICK_OK);
}

/*  A skick.* message for session a: taken (and true) when it is the
    runtime's news from its receptionist that applies at once (client queue
    reports, refused queries); skick.drain is left for the mailbox. */
static bool s_from_rcpt(skick_actor_t *a, node_ref_t from, const char *action,
                        json_object **body)
{
    node_session_t *s = s_session(a);
    if (!s || strncmp(action, "skick.", 6) != 0)
        return false;
    if (from.shard != s->rcpt.shard || from.id != s->rcpt.id) {
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "session",
                         "%s: refused '%.40s' from an actor that is not its receptionist",
                         a->addr, action);
    } else if (strcmp(action, "skick.client_queue") == 0) {
        int64_t queued = skick_get_int(*body, "queued", 0), limit = skick_get_int(*body, "limit", 0);
        int64_t refused = skick_get_int(*body, "refused", 0);
        s->queue.queued = queued > 0 ? (size_t) queued : 0;
        s->queue.limit = limit > 0 ? (size_t) limit : 0;
        s->queue.refused = refused > 0 ? (uint64_t) refused : 0;
    } else if (strcmp(action, "skick.query_refused") == 0) {
        node_query_t *q = s_open_query(s, skick_get_string(*body, "query_id", ""));
        if (q)
            node_wait_complete(q->wait, skick_err_code(skick_get_string(*body, "code", NULL),
                                                       SKICK_EBACKLOG));
    } else {
        return false; /* skick.drain is answered in mailbox order: s_dispatch */
    }
    json_object_put(*body);
    *body = NULL;
    return true;
}

/*  The kind's messages before the mailbox: query replies and the news. */
static bool s_intercept(skick_actor_t *a, node_ref_t from, const char *action,
                        json_object **body)
{
    if (strcmp(action, "query_reply") == 0) {
        s_query_reply(a, body);
        return true;
    }
    return s_from_rcpt(a, from, action, body);
}

/*  skick.drain from the receptionist, handled in mailbox order: everything
    the client sent before it has been handled; answer skick.drained. */
static bool s_dispatch(skick_actor_t *a, const node_msg_t *m, const char *action)
{
    if (strcmp(action, "skick.drain") != 0)
        return false;
    node_session_t *s = s_session(a);
    if (!s || m->from.shard != s->rcpt.shard || m->from.id != s->rcpt.id)
        return true;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "action", json_object_new_string("skick.drained"));
    s_to_rcpt(a, &d);
    return true;
}

int node_deliver_client(node_shard_t *sh, node_ref_t from, node_ref_t to, json_object **body,
                        uint32_t gen)
{
    if (to.shard != sh->id && sh->transport)
        return sh->transport->deliver(sh, SKICK_KIND_CLIENT, from, to, body, false, gen);
    skick_actor_t *a = node_actor_by_ref(sh, to);
    if (!a || !s_session(a) || (a->flags & (NODE_A_STOPPING | NODE_A_STOPPED))) {
        json_object_put(*body);
        *body = NULL;
        skick_set_errno(SKICK_EDEAD);
        return -1;
    }
    if (a->depth >= sh->cfg.mailbox_capacity) {
        json_object_put(*body);
        *body = NULL;
        sh->stats.refused_full++;
        skick_set_errno(SKICK_EFULL);
        return -1;
    }
    node_msg_t *m = node_malloc(sizeof *m);
    *m = (node_msg_t){.body = *body, .from = from, .client = true, .gen = gen};
    *body = NULL;
    node_enqueue(a, m);
    return 0;
}

/*  Whether a client message may be dispatched now (it was checked against
    the schemas in force); answers the client itself when not. */
static bool s_accepts(skick_actor_t *a, const node_msg_t *m, const node_action_t *act)
{
    node_session_t *s = s_session(a);
    if (s && act && act->socket && m->gen == s->gen)
        return true;
    /* Checked under schemas this behaviour no longer has: refuse it the way
       the receptionist would have with the current ones. */
    char text[200];
    const char *action = skick_get_string(m->body, "action", "");
    snprintf(text, sizeof text, "No schema present for action '%.32s'", action);
    json_object *err = json_object_new_object();
    json_object_object_add(err, "action", json_object_new_string("error"));
    json_object_object_add(err, "type", json_object_new_string(text));
    skick_socksend(a, &err);
    a->shard->stats.schema_failures++;
    return false;
}

/*  Whether sentinel about `about` concerns a's receptionist (a then stops). */
static bool s_partner_ended(skick_actor_t *a, const char *about)
{
    node_session_t *s = s_session(a);
    if (!s || strcmp(s->rcpt_addr, about) != 0)
        return false;
    node_request_stop(a, NODE_END_CANCELLATION);
    return true;
}

static void s_free(skick_actor_t *a)
{
    node_session_t *s = s_session(a);
    if (!s)
        return;
    a->x->kind = NULL;
    a->x->kind_state = NULL;
    a->shard->sessions--;
    free(s);
}

/*  skick_replace of a session: another (sub)session of the application. */
static const node_type_t *s_replace_type(skick_actor_t *a, const char *name)
{
    const node_session_type_t *st = node_session_type(a->shard->app, name);
    return st ? &st->as_type : NULL;
}

/*  What a session actor adds to the actor core (node_actor_kind_t). */
static const node_actor_kind_t s_kind = {
    .name = "session",
    .intercept = s_intercept,
    .dispatch = s_dispatch,
    .accepts = s_accepts,
    .partner_ended = s_partner_ended,
    .started = s_ship,
    .replace_type = s_replace_type,
    .free = s_free,
};
