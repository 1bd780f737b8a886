/*  broker_route - what arrives on the two ROUTERs, and where it goes

    Each message is read whole by skick_wire_recv_held and kept in its
    frames: the body is checked (skick_json_valid) but not parsed unless the
    broker reads it (its own kinds, and to answer what it cannot deliver);
    forwarding sends the received header and body frames on (no copy). A frame set that is not
    an envelope is counted as malformed, logged (rate-limited) and answered
    with DEAD_LETTER EPROTO to its routing id; one of another protocol
    version gets a refused welcome, EVERSION. An envelope from a connection
    that has not joined gets DEAD_LETTER EUNREACH (actor kinds) and a REPLY
    {"welcome": false, "code": "EPROTO", "error": "say HELLO"} (ELOST for a
    shard declared lost). From a joined peer, the link's sequence number is
    checked (gaps counted, duplicates dropped), then:

      HELLO       join again              (broker_peers.c)
      HEARTBEAT   load and liveness       (broker_peers.c)
      LOST        clean leave             (broker_peers.c)
      DIRECTORY   the sender's own entry  (broker_dir.c)
      CONTROL     to_shard 0: the broker  (broker_control.c); else forwarded;
                  first who may ask is checked: the control plane only from
                  the control endpoint, and the key's role (broker_auth.c)
      ACTOR, CLIENT, REPLY  forwarded to the peer named by to_shard
      DEAD_LETTER           forwarded to the peer named by from_shard (the
                            original sender)

    Who may say what: the endpoint decides the role (shards on the shard
    ROUTER, clients on the control ROUTER: broker_peers.c). CONTROL from a
    peer on the shard ROUTER is served only when a shard needs it
    (broker_control_shard_may: its hash operations); the control plane's
    operations, those forwarded to shards (actors, sessions, stop) among
    them, are refused with a REPLY ECONTEXT, logged under a budget and
    counted (control_refused). Whatever is forwarded must carry the
    sender's own id as from_shard (a REPLY too: 0 would pass it off as the
    broker's own), so nobody speaks for another peer. A shard is also its
    connection: once the connection that said HELLO is gone, another one
    may get its routing id (a shard's id, which is no secret), so an
    envelope on a shard's routing id from another connection than the one
    that said HELLO (ZMQ_SRCFD differs) is not the shard's: it is answered
    like one from a peer that has not joined ("say HELLO"; the shard itself
    joins again with the token of its welcome, broker_peers.c). Forwarding rewrites
    nothing but seq (the destination link's number, in the header frame
    itself).
    A send that fails becomes a dead letter to the sender: EDEAD when no such
    peer or its connection is gone (EHOSTUNREACH), EFULL when its queue is
    full (EAGAIN). A CONTROL request gets a REPLY error instead, and REPLY or
    DEAD_LETTER envelopes that cannot be delivered are counted and logged.

    Routing decides; the files below are told, and none of them calls back
    here (broker.h has the levels): replies and dead letters go out through
    the peer table (broker_peer_reply, broker_peer_dead_letter: they are
    sends on a link), the answer to a CONTROL request comes back from
    broker_control_answer and is sent here, and the shard ROUTER's
    disconnections come back from broker_net_disconnected and are handed
    to the peer table before anything else is read.
    Runs on the broker thread; envelopes read here are destroyed here.
*/
#include "broker_route.h"
#include "broker_auth.h"
#include "broker_control.h"
#include "broker_dir.h"
#include "broker_net.h"
#include "broker_peers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*  Who sent it, for log lines: the peer id, or the routing id in hex. */
static const char *s_who(broker_peer_t *p, const uint8_t *rid, size_t rid_len, char *out,
                         size_t outlen)
{
    if (p)
        return p->hex;
    size_t n = 0;
    n += (size_t) snprintf(out, outlen, "connection ");
    for (size_t i = 0; i < rid_len && i < 16 && n + 3 < outlen; i++)
        n += (size_t) snprintf(out + n, outlen - n, "%02x", rid[i]);
    return out;
}

/*  A REPLY {"id": <id>, "ok": false, "code", "error"} to a CONTROL request. */
static void s_control_error(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                            broker_peer_t *p, const skick_envelope_t *e, int code,
                            const char *error)
{
    json_object *body = json_object_new_object(), *id = NULL;
    json_object_object_get_ex(e->body, "id", &id);
    json_object_object_add(body, "id", json_object_get(id));
    json_object_object_add(body, "ok", json_object_new_boolean(0));
    json_object_object_add(body, "code", json_object_new_string(skick_err_name(code)));
    json_object_object_add(body, "error", json_object_new_string(error));
    broker_peer_reply(b, sock, rid, rid_len, p, e->from_shard, e->from_id, &body);
}

/*  Answer a CONTROL request addressed to the broker (broker_control.c
    says what), with one REPLY to its sender. */
static void s_control_answer(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                             broker_peer_t *p, const skick_envelope_t *e)
{
    broker_asker_t asker = {.sock = sock,
                            .rid_len = rid_len,
                            .peer = p ? p->id : 0,
                            .to_shard = e->from_shard,
                            .to_id = e->from_id};
    memcpy(asker.rid, rid, rid_len);
    json_object *body = broker_control_answer(b, e, &asker);
    if (body) /* NULL: it comes later (Redis), through broker_route_answer_later */
        broker_peer_reply(b, sock, rid, rid_len, p, e->from_shard, e->from_id, &body);
}

void broker_route_answer_later(broker_t *b, const broker_asker_t *asker, json_object **body_p)
{
    broker_peer_t *p = broker_peer_by_rid(b, asker->sock, asker->rid, asker->rid_len);
    if (!p || p->id != asker->peer) {
        /* it left (or its routing id is somebody else's now): nobody to tell */
        SKICK_LOG(SKICK_LOG_DEBUG, "route", "a hash answer for a peer that is gone: dropped");
        return;
    }
    if (broker_peer_reply(b, asker->sock, asker->rid, asker->rid_len, p, asker->to_shard,
                          asker->to_id, body_p) != 0)
        SKICK_LOG(SKICK_LOG_DEBUG, "route", "cannot send a hash answer to %s: %s", p->hex,
                  zmq_strerror(errno));
}

/*  Refuse a CONTROL request that only the control plane may make
    (ECONTEXT: not allowed in this context): from the shard endpoint, or
    from a key whose role does not allow it (broker_auth_may_control).
    Counted, logged (rate-limited), answered. */
static void s_control_refused(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                              broker_peer_t *p, skick_envelope_t *e, const char *why)
{
    b->stats.control_refused++;
    skick_envelope_body(e); /* a forwarded kind: its id is needed for the answer */
    const char *op = broker_json_str(e->body, "op");
    char hex[17];
    broker_id_hex(e->to_shard, hex);
    broker_log_limited(&b->rl_refused, SKICK_LOG_WARNING, "route",
                       "CONTROL %.32s%s%s from %s (key role %s) refused: %s",
                       op ? op : "(no op)", e->to_shard ? " for shard " : "",
                       e->to_shard ? hex : "", p->hex, broker_auth_role_name(p->role), why);
    s_control_error(b, sock, rid, rid_len, p, e, SKICK_ECONTEXT, why);
}

/*  Refuse a well-formed envelope that breaks the protocol (EPROTO). */
static void s_refuse(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, broker_peer_t *p,
                     const skick_envelope_t *e, const char *why)
{
    b->stats.malformed++;
    char who[64];
    broker_log_limited(&b->rl_malformed, SKICK_LOG_WARNING, "route", "%s from %s refused: %s",
                       skick_kind_name(e->kind), s_who(p, rid, rid_len, who, sizeof who), why);
    if (e->kind == SKICK_KIND_CONTROL)
        s_control_error(b, sock, rid, rid_len, p, e, SKICK_EPROTO, why);
    else
        broker_peer_dead_letter(b, sock, rid, rid_len, p, e, SKICK_EPROTO, why);
}

void broker_route_malformed(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                            const char *why)
{
    b->stats.malformed++;
    broker_peer_t *p = rid_len ? broker_peer_by_rid(b, sock, rid, rid_len) : NULL;
    char who[64];
    broker_log_limited(&b->rl_malformed, SKICK_LOG_WARNING, "route",
                       "malformed message from %s refused: %s",
                       s_who(p, rid, rid_len, who, sizeof who), why);
    if (rid_len)
        broker_peer_dead_letter(b, sock, rid, rid_len, p, NULL, SKICK_EPROTO, why);
}

/*  An envelope of another protocol version: answered in ours (version 1,
    which every version must read: PROTOCOL.md "Versions") with a refused
    welcome naming the versions we speak, so that the peer can say why it
    is not admitted. */
static void s_foreign(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, const char *why)
{
    b->stats.malformed++;
    char who[64];
    broker_log_limited(&b->rl_malformed, SKICK_LOG_WARNING, "route",
                       "%s speaks another protocol version (%s): answered EVERSION",
                       s_who(NULL, rid, rid_len, who, sizeof who), why);
    if (!rid_len)
        return;
    char text[200];
    snprintf(text, sizeof text, "this broker speaks envelope version %d only; %s",
             SKICK_ENVELOPE_VERSION, why);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "welcome", json_object_new_boolean(0));
    json_object_object_add(body, "code", json_object_new_string("EVERSION"));
    json_object_object_add(body, "error", json_object_new_string(text));
    json_object *versions = json_object_new_array();
    json_object_array_add(versions, json_object_new_int(SKICK_ENVELOPE_VERSION));
    json_object_object_add(body, "versions", versions);
    uint64_t id = skick_rid_to_id(rid, rid_len); /* a shard's routing id is its id */
    broker_peer_reply(b, sock, rid, rid_len, NULL, id, id, &body);
}

/*  An envelope from a connection that has not joined (or was forgotten);
    taken is the peer whose routing id that connection took over, or NULL. */
static void s_stranger(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                       const broker_peer_t *taken, const skick_envelope_t *e)
{
    b->stats.strangers++;
    if (e->kind == SKICK_KIND_LOST)
        return; /* an unknown peer leaving: nothing to forget */
    uint64_t id = e->from_shard ? e->from_shard : skick_rid_to_id(rid, rid_len);
    bool lost = id && broker_peer_is_lost(b, id);
    char who[64];
    broker_log_limited(&b->rl_stranger, SKICK_LOG_NOTICE, "route",
                       "%s from %s, which has not joined%s%s%s: answered %s",
                       skick_kind_name(e->kind), s_who(NULL, rid, rid_len, who, sizeof who),
                       taken ? " (another connection than the one that joined as " : "",
                       taken ? taken->hex : "", taken ? ")" : "", lost ? "ELOST" : "say HELLO");
    if (e->kind == SKICK_KIND_ACTOR || e->kind == SKICK_KIND_CLIENT) {
        b->stats.dead_letters++;
        broker_peer_dead_letter(b, sock, rid, rid_len, NULL, e, SKICK_EUNREACH,
                                "the sender has not joined the broker: say HELLO");
    }
    json_object *body = json_object_new_object();
    json_object_object_add(body, "welcome", json_object_new_boolean(0));
    json_object_object_add(body, "code", json_object_new_string(lost ? "ELOST" : "EPROTO"));
    json_object_object_add(body, "error",
                           json_object_new_string(lost ? "declared lost: exit" : "say HELLO"));
    json_object *rq;
    if (e->kind == SKICK_KIND_CONTROL && json_object_object_get_ex(e->body, "id", &rq)) {
        json_object_object_add(body, "id", json_object_get(rq));
        json_object_object_add(body, "ok", json_object_new_boolean(0));
    }
    uint64_t ts = e->from_shard, ta = e->from_id;
    if ((!ts || !ta) && id) {
        ts = id;
        ta = id;
    }
    broker_peer_reply(b, sock, rid, rid_len, NULL, ts, ta, &body);
}

/*  The forwarded envelope could not be delivered: tell its sender. */
static void s_undeliverable(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                            broker_peer_t *p, const skick_envelope_t *e, uint64_t dest, int code,
                            const char *error)
{
    b->stats.dead_letters++;
    if (code == SKICK_EFULL)
        b->stats.dead_full++;
    char hex[17];
    broker_id_hex(dest, hex);
    broker_log_limited(&b->rl_dead, SKICK_LOG_INFO, "route", "%s from %s to %s not delivered: %s",
                       skick_kind_name(e->kind), p->hex, hex, skick_err_name(code));
    if (e->kind == SKICK_KIND_ACTOR || e->kind == SKICK_KIND_CLIENT)
        broker_peer_dead_letter(b, sock, rid, rid_len, p, e, code, error);
    else if (e->kind == SKICK_KIND_CONTROL)
        s_control_error(b, sock, rid, rid_len, p, e, code, error);
    /* REPLY and DEAD_LETTER: counted and logged only, never answered */
}

/*  Where a forwarded envelope goes, or 0 with *why set when it breaks the
    protocol (a forged sender, no recipient). */
static uint64_t s_destination(const broker_peer_t *p, const skick_envelope_t *e, const char **why)
{
    *why = NULL;
    if (e->kind == SKICK_KIND_DEAD_LETTER) {
        /* made by the recipient's shard: back to the original sender */
        if (e->to_shard != p->id)
            *why = "a DEAD_LETTER must name one of the sender's actors in to";
        return *why ? 0 : e->from_shard;
    }
    if (e->from_shard != p->id)
        *why = "from_shard must be the sender's own id";
    else if (!e->to_shard && (e->kind == SKICK_KIND_ACTOR || e->kind == SKICK_KIND_CLIENT))
        *why = "no recipient address";
    return *why ? 0 : e->to_shard;
}

static void s_forward(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, broker_peer_t *p,
                      skick_wire_held_t *m)
{
    skick_envelope_t *e = &m->env;
    const char *why;
    uint64_t dest = s_destination(p, e, &why);
    broker_peer_t *d = dest ? broker_peer_by_id(b, dest) : NULL;
    if (!why && d && broker_peer_forward(b, d, m) == 0) {
        b->stats.routed++; /* the common case: the body went on as it came */
        return;
    }
    int err = errno;
    skick_envelope_body(e); /* answering needs its action, cid or id */
    if (why)
        s_refuse(b, sock, rid, rid_len, p, e, why);
    else if (!d)
        s_undeliverable(b, sock, rid, rid_len, p, e, dest, SKICK_EDEAD,
                        dest ? "no such shard (not joined, left or lost)" : "no recipient");
    else if (err == EAGAIN)
        s_undeliverable(b, sock, rid, rid_len, p, e, dest, SKICK_EFULL,
                        "the recipient's queue at the broker is full");
    else
        s_undeliverable(b, sock, rid, rid_len, p, e, dest, SKICK_EDEAD,
                        "the recipient's connection is gone");
}

/*  Check the link's sequence number: false when e is a duplicate to drop. */
static bool s_link_accept(broker_t *b, broker_peer_t *p, const skick_envelope_t *e)
{
    uint64_t expected = p->link.last_in + 1;
    int64_t r = skick_link_accept(&p->link, e->seq);
    if (r == 0)
        return true;
    if (r < 0) {
        b->stats.duplicates++;
        broker_log_limited(&b->rl_link, SKICK_LOG_WARNING, "link",
                           "%s: duplicate %s seq %llu (expected %llu) dropped", p->hex,
                           skick_kind_name(e->kind), (unsigned long long) e->seq,
                           (unsigned long long) expected);
        return false;
    }
    b->stats.gaps += (uint64_t) r;
    broker_log_limited(&b->rl_link, SKICK_LOG_WARNING, "link",
                       "%s: %lld envelope(s) missing before seq %llu", p->hex, (long long) r,
                       (unsigned long long) e->seq);
    return true;
}

/*  The shard ROUTER's disconnections: a shard whose connection is gone
    keeps its record until it joins again or is lost, but nothing that
    arrives on its routing id is its own any more (the kernel may give the
    same descriptor to the next connection). */
static void s_read_events(broker_t *b)
{
    int fds[BROKER_BATCH];
    int n = broker_net_disconnected(b, fds, BROKER_BATCH);
    for (int i = 0; i < n; i++)
        broker_peers_disconnected(b, fds[i]);
}

int broker_route_srcfd(skick_wire_held_t *m)
{
    return zmq_msg_get(&m->head, ZMQ_SRCFD); /* -1 when not read from a connection */
}

void broker_route_handle(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                         skick_wire_held_t *m)
{
    skick_envelope_t *e = &m->env;
    bool forwarded = e->kind == SKICK_KIND_ACTOR || e->kind == SKICK_KIND_CLIENT ||
                     e->kind == SKICK_KIND_REPLY || e->kind == SKICK_KIND_DEAD_LETTER ||
                     (e->kind == SKICK_KIND_CONTROL && e->to_shard);
    if (!forwarded)
        skick_envelope_body(e); /* the broker reads these itself */
    int fd = broker_route_srcfd(m);
    if (e->kind == SKICK_KIND_HELLO) {
        broker_peers_hello(b, sock, rid, rid_len, fd, m);
        return;
    }
    broker_peer_t *p = broker_peer_by_rid(b, sock, rid, rid_len);
    broker_peer_t *taken = p && p->fd != fd && sock == BROKER_SOCK_SHARD ? p : NULL;
    if (!p || taken) {
        skick_envelope_body(e);
        s_stranger(b, sock, rid, rid_len, taken, e);
        return;
    }
    p->last_seen_ms = zclock_mono();
    if (!s_link_accept(b, p, e))
        return;
    const char *why;
    switch (e->kind) {
    case SKICK_KIND_HEARTBEAT:
        broker_peers_heartbeat(b, p, e);
        break;
    case SKICK_KIND_LOST:
        broker_peers_leave(b, p, e); /* p may be freed */
        break;
    case SKICK_KIND_DIRECTORY:
        broker_dir_advert(b, p, e);
        break;
    case SKICK_KIND_CONTROL:
        if (sock == BROKER_SOCK_SHARD && !broker_control_shard_may(e))
            s_control_refused(b, sock, rid, rid_len, p, e,
                              "this operation belongs to the control plane: use the control "
                              "endpoint (skickctl), not the shard endpoint");
        else if (!broker_auth_may_control(p, e, &why))
            s_control_refused(b, sock, rid, rid_len, p, e, why);
        else if (e->to_shard == 0)
            s_control_answer(b, sock, rid, rid_len, p, e);
        else
            s_forward(b, sock, rid, rid_len, p, m);
        break;
    case SKICK_KIND_ACTOR:
    case SKICK_KIND_CLIENT:
    case SKICK_KIND_REPLY:
    case SKICK_KIND_DEAD_LETTER:
        s_forward(b, sock, rid, rid_len, p, m);
        break;
    default:
        s_refuse(b, sock, rid, rid_len, p, e, "the broker does not take this kind from peers");
        break;
    }
}

int broker_route_drain(broker_t *b, int sock)
{
    if (sock == BROKER_SOCK_SHARD)
        s_read_events(b); /* before the messages of the connections that came after */
    void *raw = zsock_resolve(b->router[sock]);
    int n = 0;
    while (n < BROKER_BATCH) {
        uint8_t rid[SKICK_RID_MAX];
        size_t rid_len = sizeof rid;
        skick_wire_held_t m;
        char why[128] = "";
        /* bodies stay in their frames: most are forwarded unread (validated, not parsed) */
        int rc = skick_wire_recv_held(raw, ZMQ_DONTWAIT, rid, &rid_len, &m, why, sizeof why);
        if (rc == 0)
            break;
        if (rc == -2)
            return -1; /* errno EINTR: the caller looks again */
        n++;
        if (rc < 0) {
            if (skick_errno() == SKICK_EVERSION)
                s_foreign(b, sock, rid, rid_len, why);
            else
                broker_route_malformed(b, sock, rid, rid_len, why);
            continue;
        }
        broker_route_handle(b, sock, rid, rid_len, &m);
        skick_wire_held_close(&m);
    }
    return n;
}
