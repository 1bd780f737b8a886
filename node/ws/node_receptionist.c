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

    The handshake is in node_rcpt_handshake.c, client messages once the
    session is there in node_rcpt_client.c; what the three share is in
    node_rcpt_int.h. Everything runs on the front shard's reactor.
*/
#include "node_rcpt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_err_failed[] = "{\"action\":\"error\",\"type\":\"session failed\"}";

enum { REPORT_HIGH, REPORT_REFUSED, REPORT_DRAINED };
static void s_report(rcpt_t *r, int why);

/*  Write or queue one frame for the client. 0, or -1 with skick_errno
    (node_ws_send); a full queue under the close policy ends the pair. */
int node_rcpt_write(rcpt_t *r, const char *text, size_t len)
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

int node_rcpt_send(rcpt_t *r, const char *text)
{
    return node_rcpt_write(r, text, strlen(text));
}

int node_rcpt_send_json(rcpt_t *r, json_object *v)
{
    size_t len;
    const char *text = json_object_to_json_string_length(
        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    return node_rcpt_write(r, text, len);
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

bool node_rcpt_from_session(skick_actor_t *self, rcpt_t *r)
{
    return node_sent_by(self, r->session);
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
        node_rcpt_handshake(a, r, msg, json_error);
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
        node_rcpt_client(a, r, msg, json_error);
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
    return msg ? node_rcpt_send_json(r, msg) : node_rcpt_send(r, "null");
}

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
    node_rcpt_arm_tick(a, NODE_RCPT_DRAIN_MS); /* the drain's deadline */
    if (r->phase == R_READY && !r->npending)
        node_rcpt_drain_then_close(a, r);
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
/* The drain, the timer, sentinels, the end                                   */

static void s_close_now(skick_actor_t *a, rcpt_t *r);

/*  Send the session the drain marker behind the client's admitted messages;
    its answer (skick.drained, s_on_drained) or the tick closes the client. */
void node_rcpt_drain_then_close(skick_actor_t *a, rcpt_t *r)
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
    if (node_rcpt_from_session(self, r) && r->close_code && !r->denied)
        s_close_now(self, r);
}

void node_rcpt_arm_tick(skick_actor_t *self, int64_t ms)
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
    node_rcpt_arm_tick(self, next);
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
            node_rcpt_send(r, s_err_failed);
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
    skick_action(self, "session_schemas", NULL, node_rcpt_on_schemas);
    skick_action(self, "socksend", NULL, node_rcpt_on_socksend);
    skick_action(self, "new_query", NULL, node_rcpt_on_new_query);
    skick_action(self, "cancel_query", NULL, node_rcpt_on_cancel_query);
    skick_action(self, "skick.tick", NULL, s_on_tick);
    skick_action(self, "skick.flush", NULL, node_rcpt_on_flush);
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
    node_rcpt_arm_tick(a, node_ws_config(ws)->handshake_timeout_ms);
    return a->id;
}
