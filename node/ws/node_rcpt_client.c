/*  node_rcpt_client - a receptionist's client messages once its session is there

    Runs on the front shard's reactor, inside the receptionist's handlers
    and its entry points (node_receptionist.c); the state is the actor's
    rcpt_t (node_rcpt_int.h), borrowed. Every client message is checked here
    (JSON, object, action, the socket schema of the generation in force) and
    either forwarded to the session, tagged with that generation, or
    answered with one of the seed's error objects; query_reply answers are
    checked against the question's subschema. Messages that arrived while
    the session was STARTING are handed over in order once it ships its
    schemas (skick.flush). The session's own messages about schemas, socket
    sends and queries are handled here too.

    Schema sets: each distinct pair of shipped documents (socket schemas,
    query subschemas) is compiled once per shard and kept in
    sh->schema_sets, which owns it until the shard is destroyed; a
    receptionist only points at the set of its generation.
*/
#include "node_rcpt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_err_json[] = "{\"action\":\"error\",\"type\":\"invalid JSON\"}";
static const char s_err_format[] = "{\"action\":\"error\",\"type\":\"Incorrect message format\"}";
static const char s_err_noaction[] = "{\"action\":\"error\",\"type\":\"No action requested\"}";
static const char s_err_schema[] = "{\"action\":\"error\",\"type\":\"not schema compliant\"}";
static const char s_err_query[] = "{\"action\":\"error\",\"type\":\"unknown query\"}";
static const char s_err_busy[] = "{\"action\":\"error\",\"type\":\"server busy\"}";

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

static void s_sets_free(node_shard_t *sh)
{
    node_strmap_free(&sh->schema_sets, s_set_free);
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
    if (!sh->schema_sets.cap) { /* the first one: the shard frees the table */
        node_strmap_init(&sh->schema_sets);
        node_shard_on_destroy(sh, s_sets_free);
    }
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
    node_rcpt_send_json(r, e);
    json_object_put(e);
}

static void s_query_reply(skick_actor_t *a, rcpt_t *r, json_object **msg)
{
    json_object *qid_j, *v = NULL;
    if (json_object_object_length(*msg) != 3 ||
        !json_object_object_get_ex(*msg, "query_id", &qid_j) ||
        !json_object_is_type(qid_j, json_type_string) ||
        !json_object_object_get_ex(*msg, "message", &v)) {
        node_rcpt_send(r, s_err_schema);
        return;
    }
    const char *qid = json_object_get_string(qid_j);
    char *name = node_strmap_get(&r->queries, qid);
    if (!name) {
        node_rcpt_send(r, s_err_query);
        return;
    }
    if (!s_query_ok(r, name, v)) {
        /* The seed's reply, plus the query id (old clients ignore it) so that
           a client with several questions open knows which one to answer
           again. The question stays open. */
        json_object *e = json_object_new_object();
        json_object_object_add(e, "error", json_object_new_string("Invalid subschema"));
        json_object_object_add(e, "query_id", json_object_new_string(qid));
        node_rcpt_send_json(r, e);
        json_object_put(e);
        return;
    }
    free(node_strmap_del(&r->queries, qid));
    node_deliver_ref(a->shard, node_ref_of(a), r->session, msg, false);
}

void node_rcpt_client(skick_actor_t *a, rcpt_t *r, json_object **msg, bool json_error)
{
    json_object *act;
    if (json_error) {
        node_rcpt_send(r, s_err_json);
    } else if (!*msg || !json_object_is_type(*msg, json_type_object)) {
        node_rcpt_send(r, s_err_format);
    } else if (!json_object_object_get_ex(*msg, "action", &act) || s_falsy(act)) {
        node_rcpt_send(r, s_err_noaction);
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
            node_rcpt_send(r, s_err_schema);
        else if (node_deliver_client(a->shard, node_ref_of(a), r->session, msg, r->gen) != 0)
            node_rcpt_send(r, s_err_busy);
    }
}

/* ------------------------------------------------------------------------- */
/* Messages from the session and the held client messages                     */

static void s_flush_pending(skick_actor_t *a, rcpt_t *r)
{
    int n = r->npending;
    r->npending = 0;
    for (int i = 0; i < n; i++) {
        json_object *m = r->pending[i].msg;
        if (!(a->flags & NODE_A_STOPPING))
            node_rcpt_client(a, r, &m, r->pending[i].json_error);
        json_object_put(m);
    }
    if (r->close_code)
        node_rcpt_drain_then_close(a, r);
}

void node_rcpt_on_schemas(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    if (!node_rcpt_from_session(self, r))
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

void node_rcpt_on_flush(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    if (node_sent_by(self, node_ref_of(self)))
        s_flush_pending(self, skick_state(self));
}

void node_rcpt_on_socksend(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    json_object *m = NULL;
    if (!node_rcpt_from_session(self, r) || !json_object_object_get_ex(msg, "message", &m))
        return;
    if (m)
        node_rcpt_send_json(r, m);
    else
        node_rcpt_send(r, "null");
}

void node_rcpt_on_new_query(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    const char *qid = skick_get_string(msg, "query_id", NULL);
    const char *name = skick_get_string(msg, "schema", "default");
    if (!node_rcpt_from_session(self, r) || !qid)
        return;
    free(node_strmap_del(&r->queries, qid));
    node_strmap_put(&r->queries, qid, node_strdup(name));
    json_object *q = json_object_new_object();
    json_object_object_add(q, "action", json_object_new_string("SocketQuery"));
    json_object_object_add(q, "query_id", json_object_new_string(qid));
    json_object_object_add(q, "message", json_object_get(json_object_object_get(msg, "message")));
    json_object_object_add(q, "schema", json_object_new_string(name));
    int rc = node_rcpt_send_json(r, q);
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

void node_rcpt_on_cancel_query(skick_actor_t *self, json_object *msg)
{
    rcpt_t *r = skick_state(self);
    const char *qid = skick_get_string(msg, "query_id", NULL);
    if (node_rcpt_from_session(self, r) && qid)
        free(node_strmap_del(&r->queries, qid));
}
