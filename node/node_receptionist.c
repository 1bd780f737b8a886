/*  node_receptionist - the front half of a session: one actor per websocket

    Runs on the front shard's reactor and needs no application code. Its
    life, in phases:

      HANDSHAKE  the first client message must name a requestable session
                 type (and pass its handshake schema); anything else gets
                 "denied". Then the session actor is created (node_session.c)
                 and each becomes the other's monitor.
      STARTING   client messages wait (at most NODE_RCPT_PENDING) until the
                 session ships its socket schemas. A session that has not
                 done so within NODE_RCPT_START_MS failed: its shard may be
                 gone, stopped, or a peer that advertised a session type it
                 does not serve; the client is told (session failed, 1011)
                 rather than left waiting for ever.
      READY      every client message is checked (JSON, object, action,
                 schema) and either forwarded to the session, tagged with the
                 schema generation, or answered with one of the seed's error
                 objects. query_reply answers are checked here too.

    It ends when the client goes away, when the session ends (its sentinel),
    on a handshake or idle timeout, when the client is too slow to take what
    is sent to it (its send queue is full), or when the shard stops; on_stop
    then closes the socket with a code and reason that say which (SEED-SPEC
    §9.3 codes, PROTOCOL.md). Client input arrives by direct calls from
    node_ws.c on the loop, not through the mailbox; the mailbox carries the
    session's messages, the timer tick and sentinels.

    A client that goes over its rate or size limit is closed after a drain:
    what it sent before is delivered, then the session is sent skick.drain
    behind it and answers skick.drained once it has handled everything
    before (its answers are queued for the client by then), and only then is
    the close frame queued; NODE_RCPT_DRAIN_MS bounds the wait.

    Send queue reports: a session on another shard cannot see its client's
    send queue, so the receptionist tells it (skick.client_queue) when the
    queue passes half its bound, when it refuses a frame, and when it drains.
*/
#include "node.h"
#include "node_ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_RCPT_PENDING 64   /* client messages held until the session is ready */
#define NODE_RCPT_DRAIN_MS 2000 /* how long a limit close waits for the session */
#define NODE_RCPT_START_MS 10000 /* how long a session may take to start */

enum { R_HANDSHAKE, R_STARTING, R_READY };

typedef struct {
    node_strmap_t sockets; /* action -> const skick_schema_t* (shard cache) */
    node_strmap_t queries; /* subschema name -> skick_schema_t* (owned) */
} node_schema_set_t;

typedef struct {
    uint64_t conn;                 /* websocket connection id */
    node_ws_t *ws;                 /* the server */
    int phase;                     /* R_* */
    node_ref_t session;            /* the session actor once created */
    char session_addr[SKICK_ADDR_LEN + 1];
    uint32_t gen;                  /* schema generation in force */
    const node_schema_set_t *set;  /* the schemas of that generation */
    node_strmap_t queries;         /* open query id -> subschema name (owned) */
    struct node_rcpt_pending {
        json_object *msg;          /* owned; NULL for JSON null or invalid JSON */
        bool json_error;           /* it was not valid JSON */
    } *pending;                    /* NODE_RCPT_PENDING held while STARTING (allocated
                                      on first use: most sessions never need it) */
    int npending;
    int64_t last_input;            /* shard clock of the last client message */
    int64_t started;               /* shard clock of the handshake (STARTING since) */
    int64_t idle_ms;               /* idle timeout in force */
    uint64_t tick;                 /* pending handshake/idle timer */
    int session_end;               /* -1, or how the session ended (node_end_t) */
    bool conn_gone;                /* the client side closed */
    bool denied;                   /* closed already (refused, timed out, too slow) */
    int close_code;                /* a limit close waiting for the drain, or 0 */
    char close_reason[64];         /* and its reason */
    skick_send_policy_t policy;    /* what a full send queue means */
    bool reported_refusal;         /* the session was told of a refusal since the
                                      queue last drained */
    char peer[64];                 /* remote address, for logs */
    char type[64];                 /* session type name, once chosen */
    node_shard_t *sh;              /* owner, for the client count */
    skick_actor_t *self;           /* the receptionist */
} rcpt_t;

static const char s_err_json[] = "{\"action\":\"error\",\"type\":\"invalid JSON\"}";
static const char s_err_format[] = "{\"action\":\"error\",\"type\":\"Incorrect message format\"}";
static const char s_err_noaction[] = "{\"action\":\"error\",\"type\":\"No action requested\"}";
static const char s_err_schema[] = "{\"action\":\"error\",\"type\":\"not schema compliant\"}";
static const char s_err_query[] = "{\"action\":\"error\",\"type\":\"unknown query\"}";
static const char s_err_busy[] = "{\"action\":\"error\",\"type\":\"server busy\"}";
static const char s_err_failed[] = "{\"action\":\"error\",\"type\":\"session failed\"}";

enum { REPORT_HIGH, REPORT_REFUSED, REPORT_DRAINED };
static void s_report(rcpt_t *r, int why);

/*  Write or queue one frame for the client. 0, or -1 with skick_errno
    (node_ws_send); a full queue under the close policy ends the pair. */
static int s_write(rcpt_t *r, const char *text, size_t len)
{
    bool high;
    if (node_ws_send(r->ws, r->conn, text, len, &high) == 0) {
        if (high)
            s_report(r, REPORT_HIGH);
        return 0;
    }
    int err = skick_errno();
    if (err == SKICK_EBACKLOG && r->policy != SKICK_SEND_REFUSE) {
        r->denied = true; /* node_ws_send queued the close frame: 1008 send queue full */
        node_request_stop(r->self, NODE_END_CANCELLATION);
    } else if (err == SKICK_EBACKLOG || err == SKICK_ETOOBIG) {
        if (err == SKICK_ETOOBIG)
            NODE_LOG_LIMITED(SKICK_LOG_WARNING, "ws", "%s: a message of %zu bytes for the "
                             "client is larger than its send queue: refused",
                             r->peer, len);
        s_report(r, REPORT_REFUSED);
    }
    skick_set_errno(err);
    return -1;
}

static int s_send(rcpt_t *r, const char *text)
{
    return s_write(r, text, strlen(text));
}

static int s_send_json(rcpt_t *r, json_object *v)
{
    size_t len;
    const char *text = json_object_to_json_string_length(
        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    return s_write(r, text, len);
}

/*  Tell a session on another shard how its client's send queue stands
    (one that shares our shard reads it directly: skick_socket_status). */
static void s_report(rcpt_t *r, int why)
{
    skick_socket_status_t st;
    if (!r->session.id || r->session.shard == r->sh->id || r->policy != SKICK_SEND_REFUSE ||
        node_ws_status(r->ws, r->conn, &st) != 0)
        return;
    if (why == REPORT_REFUSED && r->reported_refusal)
        return; /* once per backlog: the drain report carries the total */
    r->reported_refusal = why == REPORT_REFUSED || (why == REPORT_HIGH && r->reported_refusal);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "action", json_object_new_string("skick.client_queue"));
    json_object_object_add(m, "queued", json_object_new_int64((int64_t) st.queued));
    json_object_object_add(m, "limit", json_object_new_int64((int64_t) st.limit));
    json_object_object_add(m, "refused", json_object_new_int64((int64_t) (st.refused)));
    node_deliver_ref(r->sh, node_ref_of(r->self), r->session, &m, true);
}

void node_receptionist_pressure(node_shard_t *sh, uint64_t actor)
{
    skick_actor_t *a = node_u64map_get(&sh->actors, actor);
    if (!a || a->type != node_ws_rcpt_type_of(sh) || !a->state)
        return;
    rcpt_t *r = a->state;
    s_report(r, REPORT_DRAINED);
    r->reported_refusal = false;
}

int node_receptionist_status(skick_actor_t *a, skick_socket_status_t *st)
{
    if (a->type != node_ws_rcpt_type_of(a->shard) || !a->state)
        return -1;
    rcpt_t *r = a->state;
    return node_ws_status(r->ws, r->conn, st);
}

static bool s_from_session(skick_actor_t *self, rcpt_t *r)
{
    return node_sent_by(self, r->session);
}

/* ------------------------------------------------------------------------- */
/* Schema sets: compiled once per distinct shipped document, per shard        */

static void s_schema_free(void *p)
{
    skick_schema_t *s = p;
    skick_schema_destroy(&s);
}

static void s_set_free(void *p)
{
    node_schema_set_t *set = p;
    node_strmap_free(&set->sockets, NULL); /* entries belong to the shard's cache */
    node_strmap_free(&set->queries, s_schema_free);
    free(set);
}

static const node_schema_set_t *s_schema_set(node_shard_t *sh, json_object *sockets,
                                             json_object *queries)
{
    const char *st = json_object_to_json_string_ext(sockets, JSON_C_TO_STRING_PLAIN);
    size_t sl = strlen(st);
    const char *qt = json_object_to_json_string_ext(queries, JSON_C_TO_STRING_PLAIN);
    size_t ql = strlen(qt);
    char *key = node_malloc(sl + ql + 2);
    memcpy(key, st, sl);
    key[sl] = '\n';
    memcpy(key + sl + 1, qt, ql + 1);
    node_schema_set_t *set = node_strmap_get(&sh->schema_sets, key);
    if (!set) {
        set = node_calloc(1, sizeof *set);
        node_strmap_init(&set->sockets);
        node_strmap_init(&set->queries);
        json_object_object_foreach(sockets, name, doc)
        {
            const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
            const skick_schema_t *c = node_schema_cached_as(sh, text, name, true);
            if (c)
                node_strmap_put(&set->sockets, name, (void *) c);
        }
        json_object_object_foreach(queries, qname, qdoc)
        {
            char err[200];
            skick_schema_t *c = skick_schema_compile(qdoc, err, sizeof err);
            if (c)
                node_strmap_put(&set->queries, qname, c);
            else
                SKICK_LOG(SKICK_LOG_ERROR, "session", "query schema '%s': %s", qname, err);
        }
        node_strmap_put(&sh->schema_sets, key, set);
    }
    free(key);
    return set;
}

void node_schema_sets_free(node_shard_t *sh)
{
    node_strmap_free(&sh->schema_sets, s_set_free);
}

/* ------------------------------------------------------------------------- */
/* The built-in query subschemas (SEED-SPEC §9.8, with booleans not integers) */

static bool s_scalar(json_object *v)
{
    return json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_int) ||
           json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_boolean);
}

/*  1: valid, 0: invalid, -1: not a built-in name. */
static int s_builtin_query(const char *name, json_object *v)
{
    if (strcmp(name, "default") == 0)
        return v && s_scalar(v);
    if (strcmp(name, "str") == 0)
        return json_object_is_type(v, json_type_string);
    if (strcmp(name, "int") == 0)
        return json_object_is_type(v, json_type_int);
    if (strcmp(name, "float") == 0)
        return json_object_is_type(v, json_type_double);
    if (strcmp(name, "bool") == 0)
        return json_object_is_type(v, json_type_boolean);
    if (strcmp(name, "list") == 0) {
        if (!json_object_is_type(v, json_type_array))
            return 0;
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!s_scalar(json_object_array_get_idx(v, i)))
                return 0;
        return 1;
    }
    return -1;
}

static bool s_query_ok(rcpt_t *r, const char *name, json_object *v)
{
    const skick_schema_t *custom = r->set ? node_strmap_get(&r->set->queries, name) : NULL;
    if (custom)
        return skick_schema_valid(custom, v);
    int b = s_builtin_query(name, v);
    return b < 0 ? s_builtin_query("default", v) == 1 : b == 1; /* unknown: default */
}

/* ------------------------------------------------------------------------- */
/* Client input                                                               */

/*  The seed's "falsy": null, false, 0, 0.0, "", [] and {}. */
static bool s_falsy(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return true;
    case json_type_boolean:
        return !json_object_get_boolean(v);
    case json_type_int:
        return json_object_get_int64(v) == 0;
    case json_type_double:
        return json_object_get_double(v) == 0.0;
    case json_type_string:
        return json_object_get_string_len(v) == 0;
    case json_type_array:
        return json_object_array_length(v) == 0;
    case json_type_object:
        return json_object_object_length(v) == 0;
    }
    return false;
}

static void s_no_schema(rcpt_t *r, json_object *act)
{
    /* Echo at most 32 bytes of what the client sent, control bytes escaped. */
    const char *raw = json_object_is_type(act, json_type_string)
                          ? json_object_get_string(act)
                          : json_object_to_json_string_ext(act, JSON_C_TO_STRING_PLAIN);
    char shown[32 * 4 + 1];
    size_t o = 0, n = strnlen(raw, 33);
    if (n > 32) {
        n = 32; /* cut on a character boundary: the reply must stay valid UTF-8 */
        while (n > 0 && ((unsigned char) raw[n] & 0xc0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) raw[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t) snprintf(shown + o, sizeof shown - o, "\\x%02x", c);
        else
            shown[o++] = (char) c;
    }
    shown[o] = '\0';
    char type[200];
    snprintf(type, sizeof type, "No schema present for action '%s'", shown);
    json_object *e = json_object_new_object();
    json_object_object_add(e, "action", json_object_new_string("error"));
    json_object_object_add(e, "type", json_object_new_string(type));
    s_send_json(r, e);
    json_object_put(e);
}

static void s_query_reply(skick_actor_t *a, rcpt_t *r, json_object **msg)
{
    json_object *qid_j, *v = NULL;
    if (json_object_object_length(*msg) != 3 ||
        !json_object_object_get_ex(*msg, "query_id", &qid_j) ||
        !json_object_is_type(qid_j, json_type_string) ||
        !json_object_object_get_ex(*msg, "message", &v)) {
        s_send(r, s_err_schema);
        return;
    }
    const char *qid = json_object_get_string(qid_j);
    char *name = node_strmap_get(&r->queries, qid);
    if (!name) {
        s_send(r, s_err_query);
        return;
    }
    if (!s_query_ok(r, name, v)) {
        /* The seed's reply, plus the query id (old clients ignore it) so that
           a client with several questions open knows which one to answer
           again. The question stays open. */
        json_object *e = json_object_new_object();
        json_object_object_add(e, "error", json_object_new_string("Invalid subschema"));
        json_object_object_add(e, "query_id", json_object_new_string(qid));
        s_send_json(r, e);
        json_object_put(e);
        return;
    }
    free(node_strmap_del(&r->queries, qid));
    node_deliver_ref(a->shard, node_ref_of(a), r->session, msg, false);
}

static void s_client(skick_actor_t *a, rcpt_t *r, json_object **msg, bool json_error)
{
    json_object *act;
    if (json_error) {
        s_send(r, s_err_json);
    } else if (!*msg || !json_object_is_type(*msg, json_type_object)) {
        s_send(r, s_err_format);
    } else if (!json_object_object_get_ex(*msg, "action", &act) || s_falsy(act)) {
        s_send(r, s_err_noaction);
    } else if (!json_object_is_type(act, json_type_string)) {
        s_no_schema(r, act);
    } else if (strcmp(json_object_get_string(act), "query_reply") == 0) {
        s_query_reply(a, r, msg);
    } else {
        const skick_schema_t *schema = node_strmap_get(&r->set->sockets,
                                                       json_object_get_string(act));
        if (!schema)
            s_no_schema(r, act);
        else if (!skick_schema_valid(schema, *msg))
            s_send(r, s_err_schema);
        else if (node_deliver_client(a->shard, node_ref_of(a), r->session, msg, r->gen) != 0)
            s_send(r, s_err_busy);
    }
}

/* ------------------------------------------------------------------------- */
/* Handshake                                                                  */

static void s_deny(skick_actor_t *a, rcpt_t *r, const char *why)
{
    SKICK_LOG(SKICK_LOG_INFO, "ws", "%s: session denied: %s", r->peer, why);
    s_write(r, "denied", 6);
    node_ws_close(r->ws, r->conn, 1000, "session denied");
    r->denied = true;
    node_request_stop(a, NODE_END_CANCELLATION);
}

static void s_arm_tick(skick_actor_t *self, int64_t ms);

/*  Where a requested session type lives: here (a back shard that has it)
    or on a back shard of the cluster that advertises it. */
typedef struct {
    const node_session_type_t *local;    /* this shard's type, or NULL */
    uint64_t remote;                     /* else the chosen shard */
    const skick_schema_t *handshake;     /* its handshake schema, or NULL */
    bool bad_handshake;                  /* advertised but does not compile */
    skick_session_limits_t limits;
} s_placement_t;

static bool s_place(node_shard_t *sh, const char *name, s_placement_t *p)
{
    *p = (s_placement_t){0};
    const node_session_type_t *t = sh->back ? node_session_type(sh->app, name) : NULL;
    if (t && t->requestable) {
        p->local = t;
        p->handshake = t->handshake;
        p->limits = t->limits;
        return true;
    }
    json_object *entry;
    p->remote = sh->cluster ? node_directory_pick_session(sh, name, &entry) : 0;
    if (!p->remote)
        return false;
    p->handshake = node_directory_handshake(sh, entry);
    p->bad_handshake = !p->handshake && skick_get_string(entry, "handshake", NULL);
    json_object *l = json_object_object_get(entry, "limits");
    int64_t max = skick_get_int(l, "max_message", 0);
    p->limits.max_message = max > 0 ? (size_t) max : 0;
    p->limits.rate = skick_get_double(l, "rate", 0);
    p->limits.burst = skick_get_double(l, "burst", 0);
    p->limits.idle_timeout_ms = skick_get_int(l, "idle_timeout_ms", 0);
    int64_t queue = skick_get_int(l, "send_queue", 0);
    p->limits.send_queue = queue > 0 ? (size_t) queue : 0;
    const char *policy = skick_get_string(l, "send_policy", "");
    p->limits.send_policy = strcmp(policy, "refuse") == 0  ? SKICK_SEND_REFUSE
                            : strcmp(policy, "close") == 0 ? SKICK_SEND_CLOSE
                                                           : SKICK_SEND_DEFAULT;
    return true;
}

static void s_handshake(skick_actor_t *a, rcpt_t *r, json_object **msg, bool json_error)
{
    node_shard_t *sh = a->shard;
    const char *name = (!json_error && *msg && json_object_is_type(*msg, json_type_object))
                           ? skick_get_string(*msg, "session_type", NULL)
                           : NULL;
    s_placement_t p;
    if (!name || !s_place(sh, name, &p)) {
        s_deny(a, r, name ? "no such session type" : "not a handshake");
        return;
    }
    if (p.bad_handshake) {
        s_deny(a, r, "the session type's handshake schema does not compile here");
        return;
    }
    json_object *init;
    if (p.handshake) {
        if (!skick_schema_valid(p.handshake, *msg)) {
            s_deny(a, r, "handshake fails its schema");
            return;
        }
        init = *msg;
        *msg = NULL;
    } else {
        init = json_object_new_object(); /* only the session type goes through */
        json_object_object_add(init, "session_type", json_object_new_string(name));
    }
    snprintf(r->type, sizeof r->type, "%s", name);
    if (p.local) {
        skick_actor_t *s = node_session_spawn(sh, p.local, &init, node_ref_of(a), 0);
        r->session = node_ref_of(s);
    } else {
        r->session = node_remote_spawn_session(sh, p.remote, name, &init, node_ref_of(a));
        if (!r->session.id) {
            s_deny(a, r, "the session's shard cannot be reached");
            return;
        }
    }
    node_format_addr(r->session_addr, r->session.shard, r->session.id);
    if (r->sh)
        r->sh->client_sessions++; /* until s_rcpt_free */
    node_add_monitor(a, r->session); /* the session stops when we do */
    r->phase = R_STARTING;
    SKICK_LOG(SKICK_LOG_DEBUG, "ws", "%s: session %s (%s) for connection %llu", a->addr,
              r->session_addr, name, (unsigned long long) r->conn);
    const skick_session_limits_t *l = &p.limits;
    node_ws_set_limits(r->ws, r->conn, l);
    if (l->send_policy)
        r->policy = l->send_policy;
    if (l->idle_timeout_ms)
        r->idle_ms = l->idle_timeout_ms;
    r->started = node_now(sh);
    /* from now on the idle clock runs, and the start's deadline */
    s_arm_tick(a, r->idle_ms < NODE_RCPT_START_MS ? r->idle_ms : NODE_RCPT_START_MS);
}

json_object *node_receptionist_info(skick_actor_t *a)
{
    if (a->type != node_ws_rcpt_type_of(a->shard) || !a->state)
        return NULL;
    rcpt_t *r = a->state;
    if (!r->session.id)
        return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "receptionist", json_object_new_string(a->addr));
    json_object_object_add(o, "session", json_object_new_string(r->session_addr));
    json_object_object_add(o, "type", json_object_new_string(r->type));
    json_object_object_add(o, "peer", json_object_new_string(r->peer));
    return o;
}

/* ------------------------------------------------------------------------- */
/* Entry points from node_ws.c                                                */

static skick_actor_t *s_live(node_shard_t *sh, uint64_t id)
{
    skick_actor_t *a = node_u64map_get(&sh->actors, id);
    return a && !(a->flags & (NODE_A_STOPPING | NODE_A_STOPPED)) ? a : NULL;
}

void node_receptionist_input(node_shard_t *sh, uint64_t actor, json_object **msg,
                             bool json_error)
{
    skick_actor_t *a = s_live(sh, actor);
    if (!a)
        return;
    rcpt_t *r = a->state;
    r->last_input = node_now(sh);
    if (r->phase == R_HANDSHAKE) {
        s_handshake(a, r, msg, json_error);
    } else if (r->phase == R_STARTING || r->npending) { /* keep the client's order */
        if (r->npending == NODE_RCPT_PENDING) {
            node_ws_close(r->ws, r->conn, 1008, "too many messages before the session started");
            node_request_stop(a, NODE_END_CANCELLATION);
            return;
        }
        if (!r->pending)
            r->pending = node_malloc(NODE_RCPT_PENDING * sizeof *r->pending);
        r->pending[r->npending].msg = *msg;
        r->pending[r->npending].json_error = json_error;
        r->npending++;
        *msg = NULL;
    } else {
        s_client(a, r, msg, json_error);
    }
}

int node_receptionist_direct(skick_actor_t *a, json_object *msg)
{
    rcpt_t *r = a->state;
    if ((a->flags & (NODE_A_STOPPING | NODE_A_STOPPED)) || (r && (r->denied || r->conn_gone))) {
        skick_set_errno(SKICK_EDEAD); /* the client is gone or being closed */
        return -1;
    }
    if (a->head || a->busy || !r || r->phase != R_READY || a->beh->on_stop == NULL)
        return 1;
    return msg ? s_send_json(r, msg) : s_send(r, "null");
}

static void s_drain_then_close(skick_actor_t *a, rcpt_t *r);

void node_receptionist_refused(node_shard_t *sh, uint64_t actor, int code, const char *why,
                               bool drain)
{
    skick_actor_t *a = s_live(sh, actor);
    if (!a)
        return;
    rcpt_t *r = a->state;
    if (r->close_code || r->denied)
        return;
    if (!drain || r->phase == R_HANDSHAKE) { /* nothing admitted to deliver */
        node_ws_close(r->ws, r->conn, code, why);
        r->denied = true;
        node_request_stop(a, NODE_END_CANCELLATION);
        return;
    }
    r->close_code = code;
    snprintf(r->close_reason, sizeof r->close_reason, "%s", why);
    s_arm_tick(a, NODE_RCPT_DRAIN_MS); /* the drain's deadline */
    if (r->phase == R_READY && !r->npending)
        s_drain_then_close(a, r);
    /* else s_flush_pending sends the marker behind the held messages */
}

void node_receptionist_closed(node_shard_t *sh, uint64_t actor)
{
    skick_actor_t *a = node_u64map_get(&sh->actors, actor);
    if (!a)
        return;
    ((rcpt_t *) a->state)->conn_gone = true;
    node_request_stop(a, NODE_END_CANCELLATION);
}

/* ------------------------------------------------------------------------- */
/* Messages from the session, the timer, sentinels                            */

static void s_client(skick_actor_t *a, rcpt_t *r, json_object **msg, bool json_error);
static void s_close_now(skick_actor_t *a, rcpt_t *r);

static void s_flush_pending(skick_actor_t *a, rcpt_t *r)
{
    int n = r->npending;
    r->npending = 0;
    for (int i = 0; i < n; i++) {
        json_object *m = r->pending[i].msg;
        if (!(a->flags & NODE_A_STOPPING))
            s_client(a, r, &m, r->pending[i].json_error);
        json_object_put(m);
    }
    if (r->close_code)
        s_drain_then_close(a, r);
}

/*  Send the session the drain marker behind the client's admitted messages;
    its answer (skick.drained, s_on_drained) or the tick closes the client. */
static void s_drain_then_close(skick_actor_t *a, rcpt_t *r)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "action", json_object_new_string("skick.drain"));
    if (node_deliver_ref(a->shard, node_ref_of(a), r->session, &m, true) != 0)
        s_close_now(a, r);
}

/*  Close the client with the limit it went over (the drain is done). */
static void s_close_now(skick_actor_t *a, rcpt_t *r)
{
    node_ws_close(r->ws, r->conn, r->close_code, r->close_reason);
    r->denied = true;
    node_request_stop(a, NODE_END_CANCELLATION);
}

static void s_on_drained(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    rcpt_t *r = skick_state(self);
    if (s_from_session(self, r) && r->close_code && !r->denied)
        s_close_now(self, r);
}

static void s_on_schemas(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    if (!s_from_session(self, r))
        return;
    int64_t gen = skick_get_int(msg, "generation", 0);
    json_object *sockets = json_object_object_get(msg, "sockets");
    json_object *queries = json_object_object_get(msg, "queries");
    if (gen <= r->gen || !json_object_is_type(sockets, json_type_object) ||
        !json_object_is_type(queries, json_type_object))
        return;
    r->set = s_schema_set(self->shard, sockets, queries);
    r->gen = (uint32_t) gen;
    SKICK_LOG(SKICK_LOG_DEBUG, "ws", "%s: schemas generation %u, %d message(s) waiting",
              self->addr, r->gen, r->npending);
    if (r->phase == R_STARTING) {
        /* Ready; the held messages go after what the session already queued
           for its client (a greeting from on_start comes first). */
        r->phase = R_READY;
        json_object *flush = json_object_new_object();
        json_object_object_add(flush, "action", json_object_new_string("skick.flush"));
        node_ref_t me = node_ref_of(self);
        node_deliver_ref(self->shard, me, me, &flush, true);
    }
}

static void s_on_flush(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    if (node_sent_by(self, node_ref_of(self)))
        s_flush_pending(self, skick_state(self));
}

static void s_on_socksend(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    json_object *m = NULL;
    if (!s_from_session(self, r) || !json_object_object_get_ex(msg, "message", &m))
        return;
    if (m)
        s_send_json(r, m);
    else
        s_send(r, "null");
}

static void s_on_new_query(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    const char *qid = skick_get_string(msg, "query_id", NULL);
    const char *name = skick_get_string(msg, "schema", "default");
    if (!s_from_session(self, r) || !qid)
        return;
    free(node_strmap_del(&r->queries, qid));
    node_strmap_put(&r->queries, qid, node_strdup(name));
    json_object *q = json_object_new_object();
    json_object_object_add(q, "action", json_object_new_string("SocketQuery"));
    json_object_object_add(q, "query_id", json_object_new_string(qid));
    json_object_object_add(q, "message", json_object_get(json_object_object_get(msg, "message")));
    json_object_object_add(q, "schema", json_object_new_string(name));
    int rc = s_send_json(r, q);
    json_object_put(q);
    if (rc != 0 && !(self->flags & NODE_A_STOPPING)) {
        /* Refused (a full send queue under SKICK_SEND_REFUSE, or too big):
           the question never reaches the client, so it fails now. */
        int err = skick_errno();
        free(node_strmap_del(&r->queries, qid));
        json_object *no = json_object_new_object();
        json_object_object_add(no, "action", json_object_new_string("skick.query_refused"));
        json_object_object_add(no, "query_id", json_object_new_string(qid));
        json_object_object_add(no, "code", json_object_new_string(skick_err_name(err)));
        node_deliver_ref(self->shard, node_ref_of(self), r->session, &no, true);
    }
}

static void s_on_cancel_query(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    const char *qid = skick_get_string(msg, "query_id", NULL);
    if (s_from_session(self, r) && qid)
        free(node_strmap_del(&r->queries, qid));
}

static void s_arm_tick(skick_actor_t *self, int64_t ms)
{
    rcpt_t *r = self->state;
    json_object *tick = json_object_new_object();
    json_object_object_add(tick, "action", json_object_new_string("skick.tick"));
    if (r->tick)
        skick_cancel(self, r->tick);
    r->tick = skick_after(self, ms, &tick);
}

static void s_on_tick(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    if (!node_sent_by(self, node_ref_of(self)))
        return;
    r->tick = 0; /* fired */
    if (r->close_code) { /* the drain took too long */
        if (!r->denied)
            s_close_now(self, r);
        return;
    }
    if (r->phase == R_HANDSHAKE) {
        SKICK_LOG(SKICK_LOG_INFO, "ws", "%s: no handshake in time", r->peer);
        node_ws_close(r->ws, r->conn, 1008, "handshake timeout");
        r->denied = true;
        skick_stop(self);
        return;
    }
    int64_t now = node_now(self->shard), quiet = now - r->last_input;
    if (r->phase == R_STARTING && now - r->started >= NODE_RCPT_START_MS) {
        SKICK_LOG(SKICK_LOG_WARNING, "ws", "%s: session %s (%s) did not start within %d ms: "
                  "failed", r->peer, r->session_addr, r->type, NODE_RCPT_START_MS);
        r->session_end = NODE_END_EXCEPTION; /* error object and 1011 (s_on_stop) */
        skick_stop(self);
        return;
    }
    if (quiet >= r->idle_ms) {
        node_ws_close(r->ws, r->conn, 1001, "idle timeout");
        r->denied = true;
        skick_stop(self);
        return;
    }
    int64_t next = r->idle_ms - quiet;
    if (r->phase == R_STARTING && NODE_RCPT_START_MS - (now - r->started) < next)
        next = NODE_RCPT_START_MS - (now - r->started);
    s_arm_tick(self, next);
}

static void s_on_sentinel(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    if (strcmp(skick_get_string(msg, "address", ""), r->session_addr) != 0)
        return;
    const char *type = skick_get_string(msg, "type", "");
    r->session_end = strcmp(type, "exception") == 0 ? NODE_END_EXCEPTION
                     : strcmp(type, "done") == 0    ? NODE_END_DONE
                                                    : NODE_END_CANCELLATION;
    skick_stop(self);
}

static void s_on_stop(skick_actor_t *self)
{
    rcpt_t *r = skick_state(self);
    node_ws_unbind(r->ws, r->conn);
    if (!r->conn_gone && !r->denied && r->close_code) {
        node_ws_close(r->ws, r->conn, r->close_code, r->close_reason);
    } else if (!r->conn_gone && !r->denied) {
        /* A shard the cluster declared lost stops too: its sessions' other
           halves were ended, so its clients' sessions have failed. */
        bool failed = r->session_end == NODE_END_EXCEPTION || self->end == NODE_END_EXCEPTION ||
                      self->shard->declared_lost;
        if (failed) {
            s_send(r, s_err_failed);
            node_ws_close(r->ws, r->conn, 1011, "session failed");
        } else if (self->shard->stopping) {
            node_ws_close(r->ws, r->conn, 1001, "server shutting down");
        } else {
            node_ws_close(r->ws, r->conn, 1000, "session ended");
        }
    }
}

static void s_rcpt_free(void *p)
{
    rcpt_t *r = p;
    if (r->sh) {
        r->sh->clients--;
        if (r->session.id)
            r->sh->client_sessions--;
    }
    for (int i = 0; i < r->npending; i++)
        json_object_put(r->pending[i].msg);
    free(r->pending);
    node_strmap_free(&r->queries, free);
}

static void s_factory(skick_actor_t *self, json_object *init)
{
    (void) init;
    rcpt_t *r = skick_state_new(self, sizeof *r, s_rcpt_free);
    node_strmap_init(&r->queries);
    r->session_end = -1;
    skick_action(self, "session_schemas", NULL, s_on_schemas);
    skick_action(self, "socksend", NULL, s_on_socksend);
    skick_action(self, "new_query", NULL, s_on_new_query);
    skick_action(self, "cancel_query", NULL, s_on_cancel_query);
    skick_action(self, "skick.tick", NULL, s_on_tick);
    skick_action(self, "skick.flush", NULL, s_on_flush);
    skick_action(self, "skick.drained", NULL, s_on_drained);
    skick_default_sentinel(self, s_on_sentinel);
    skick_on_stop(self, s_on_stop);
}

uint64_t node_receptionist_open(node_shard_t *sh, uint64_t conn, const char *peer)
{
    node_ws_t *ws = node_ws_of(sh);
    if (!ws || sh->stopping) {
        if (ws)
            node_ws_close(ws, conn, 1001, "server shutting down");
        return 0;
    }
    skick_actor_t *a = node_actor_new(sh, node_ws_rcpt_type(ws), (node_ref_t){0, 0}, 0, 0);
    node_actor_start(a, s_factory, NULL);
    rcpt_t *r = a->state;
    r->conn = conn;
    r->ws = ws;
    r->sh = sh;
    r->self = a;
    r->policy = node_ws_config(ws)->send_policy;
    sh->clients++;
    snprintf(r->peer, sizeof r->peer, "%s", peer);
    r->idle_ms = node_ws_config(ws)->idle_timeout_ms;
    r->last_input = node_now(sh);
    s_arm_tick(a, node_ws_config(ws)->handshake_timeout_ms);
    return a->id;
}
