/*  broker_peers - the peer table: joining, heartbeats, loss detection

    A peer (shard or client) joins with HELLO on one of the two ROUTERs and
    is known by its id and by its routing id on that socket; both tables
    point at the same broker_peer_t, which by_id owns. Each peer has a link
    (skick_link_t): the broker numbers what it sends from 1 at the welcome,
    the peer numbers what it sends from 1 at its HELLO.

    The timer (broker_peers_tick) sends HEARTBEAT {} to every peer every
    heartbeat_ms, declares a shard lost after lost_after_ms without any
    envelope from it, and forgets a client after client_timeout_ms. A lost
    shard is forgotten, its id is remembered (a later HELLO gets ELOST),
    every other peer (shards and clients) gets LOST after everything routed
    from the lost one (one thread, ordered links), and the directory
    publishes its removal.

    Every envelope to a peer goes out here, under its link's numbering:
    broker_route.c's forwards, replies and dead letters as well as the
    welcome, LOST and HEARTBEAT; one to a connection that has not joined
    carries seq 1. Nothing here calls broker_route.c (broker.h has the
    levels).
    Runs on the broker thread.
*/
#include "broker_peers.h"
#include "broker_auth.h"
#include "broker_dir.h"
#include "broker_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  The by_rid key of a routing id: socket digit, then the id in hex. */
#define S_RID_KEY_MAX (2 + 2 * SKICK_RID_MAX + 1)

static void s_rid_key(int sock, const uint8_t *rid, size_t rid_len, char out[S_RID_KEY_MAX])
{
    static const char digits[] = "0123456789abcdef";
    out[0] = (char) ('0' + sock);
    out[1] = ':';
    for (size_t i = 0; i < rid_len && i < SKICK_RID_MAX; i++) {
        out[2 + 2 * i] = digits[rid[i] >> 4];
        out[3 + 2 * i] = digits[rid[i] & 0xf];
    }
    out[2 + 2 * (rid_len < SKICK_RID_MAX ? rid_len : SKICK_RID_MAX)] = '\0';
}

static void s_peer_free(void **item)
{
    broker_peer_t *p = *item;
    if (!p)
        return;
    free(p->rid_key);
    json_object_put(p->hello);
    json_object_put(p->load);
    json_object_put(p->dir);
    free(p);
    *item = NULL;
}

int broker_peers_init(broker_t *b)
{
    b->by_id = zhashx_new();
    b->by_rid = zhashx_new();
    b->lost_ids = zhashx_new();
    zhashx_set_destructor(b->by_id, s_peer_free);
    b->lost_ring = broker_alloc(BROKER_LOST_MEMORY * sizeof *b->lost_ring);
    return 0;
}

void broker_peers_destroy(broker_t *b)
{
    zhashx_destroy(&b->by_rid); /* borrowed pointers: first */
    zhashx_destroy(&b->by_id);
    zhashx_destroy(&b->lost_ids);
    free(b->lost_ring);
    b->lost_ring = NULL;
}

broker_peer_t *broker_peer_by_id(broker_t *b, uint64_t id)
{
    char hex[17];
    broker_id_hex(id, hex);
    return zhashx_lookup(b->by_id, hex);
}

broker_peer_t *broker_peer_by_rid(broker_t *b, int sock, const uint8_t *rid, size_t rid_len)
{
    char key[S_RID_KEY_MAX];
    s_rid_key(sock, rid, rid_len, key);
    return zhashx_lookup(b->by_rid, key);
}

bool broker_peer_is_lost(broker_t *b, uint64_t id)
{
    char hex[17];
    broker_id_hex(id, hex);
    return zhashx_lookup(b->lost_ids, hex) != NULL;
}

void broker_peer_addr(const broker_peer_t *p, uint64_t *shard, uint64_t *actor)
{
    *shard = p->id;
    *actor = p->shard ? p->id : BROKER_CLIENT_ACTOR;
}

int broker_peer_send(broker_t *b, broker_peer_t *p, skick_envelope_t *e)
{
    e->seq = p->link.next_out ? p->link.next_out : 1;
    if (broker_net_send(b, p->sock, p->rid, p->rid_len, e) != 0)
        return -1;
    p->link.next_out = e->seq + 1; /* a refused send leaves no gap */
    return 0;
}

int broker_peer_forward(broker_t *b, broker_peer_t *p, skick_wire_held_t *m)
{
    uint64_t seq = p->link.next_out ? p->link.next_out : 1;
    if (broker_net_forward(b, p->sock, p->rid, p->rid_len, m, seq) != 0)
        return -1;
    p->link.next_out = seq + 1;
    return 0;
}

/*  Envelopes to a connection that has not joined carry seq 1: there is no
    link yet (the broker's numbering starts at the welcome). */
static int s_send(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, broker_peer_t *p,
                  skick_envelope_t *e)
{
    if (p)
        return broker_peer_send(b, p, e);
    e->seq = 1;
    return broker_net_send(b, sock, rid, rid_len, e);
}

void broker_peer_dead_letter(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                             broker_peer_t *p, const skick_envelope_t *e, int code,
                             const char *error)
{
    json_object *body = json_object_new_object();
    json_object_object_add(body, "code", json_object_new_string(skick_err_name(code)));
    json_object_object_add(body, "error", json_object_new_string(error));
    const char *action = e ? broker_json_str(e->body, "action") : NULL;
    if (action) {
        size_t n = strlen(action);
        if (n > BROKER_ACTION_MAX) {
            n = BROKER_ACTION_MAX;
            while (n > 0 && ((unsigned char) action[n] & 0xc0) == 0x80)
                n--; /* cut on a character boundary */
        }
        json_object_object_add(body, "action", json_object_new_string_len(action, (int) n));
    }
    const char *cid = e ? broker_json_str(e->body, "cid") : NULL;
    if (cid)
        json_object_object_add(body, "cid", json_object_new_string(cid));
    skick_envelope_t d = {.kind = SKICK_KIND_DEAD_LETTER, .body = body};
    if (e && e->from_shard && e->from_id) { /* full addresses only, never half */
        d.from_shard = e->from_shard;
        d.from_id = e->from_id;
    }
    if (e && e->to_shard && e->to_id) {
        d.to_shard = e->to_shard;
        d.to_id = e->to_id;
    }
    if (s_send(b, sock, rid, rid_len, p, &d) != 0)
        SKICK_LOG(SKICK_LOG_DEBUG, "route", "cannot send a dead letter back: %s",
                  zmq_strerror(errno));
    json_object_put(body);
}

int broker_peer_reply(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, broker_peer_t *p,
                      uint64_t to_shard, uint64_t to_id, json_object **body_p)
{
    skick_envelope_t r = {
        .kind = SKICK_KIND_REPLY, .to_shard = to_shard, .to_id = to_id, .body = *body_p};
    *body_p = NULL;
    if ((!to_shard || !to_id) && p)
        broker_peer_addr(p, &r.to_shard, &r.to_id); /* the peer itself */
    else if (!to_shard || !to_id)
        r.to_shard = r.to_id = 0; /* never half an address */
    int rc = s_send(b, sock, rid, rid_len, p, &r);
    int err = errno;
    json_object_put(r.body);
    errno = err;
    return rc;
}

void broker_peers_disconnected(broker_t *b, int fd)
{
    for (broker_peer_t *p = zhashx_first(b->by_id); p; p = zhashx_next(b->by_id))
        if (p->sock == BROKER_SOCK_SHARD && p->fd == fd)
            p->fd = BROKER_FD_GONE;
}

zlistx_t *broker_peers_list(broker_t *b)
{
    zlistx_t *list = zlistx_new();
    for (broker_peer_t *p = zhashx_first(b->by_id); p; p = zhashx_next(b->by_id))
        zlistx_add_end(list, p);
    return list;
}

/*  Forget p (frees it). */
static void s_remove(broker_t *b, broker_peer_t *p)
{
    zhashx_delete(b->by_rid, p->rid_key);
    char hex[17];
    memcpy(hex, p->hex, sizeof hex);
    zhashx_delete(b->by_id, hex);
}

static void s_remember_lost(broker_t *b, uint64_t id)
{
    char hex[17];
    if (b->lost_count == BROKER_LOST_MEMORY) {
        broker_id_hex(b->lost_ring[b->lost_head], hex);
        zhashx_delete(b->lost_ids, hex);
        b->lost_ring[b->lost_head] = id;
        b->lost_head = (b->lost_head + 1) % BROKER_LOST_MEMORY;
    } else {
        b->lost_ring[(b->lost_head + b->lost_count) % BROKER_LOST_MEMORY] = id;
        b->lost_count++;
    }
    broker_id_hex(id, hex);
    zhashx_update(b->lost_ids, hex, (void *) 1);
}

/*  Answer a HELLO with {"welcome": false, ...}. */
static void s_refuse(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, uint64_t id,
                     bool shard, const char *code, const char *error)
{
    char hex[17];
    broker_id_hex(id, hex);
    /* a refused peer may repeat its HELLO every second: rate-limited */
    broker_log_limited(&b->rl_stranger, SKICK_LOG_NOTICE, "peers",
                       "HELLO from %s %s refused: %s (%s)", shard ? "shard" : "client",
                       id ? hex : "(no id)", code, error);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "welcome", json_object_new_boolean(0));
    json_object_object_add(body, "code", json_object_new_string(code));
    json_object_object_add(body, "error", json_object_new_string(error));
    uint64_t actor = id ? (shard ? id : BROKER_CLIENT_ACTOR) : 0;
    broker_peer_reply(b, sock, rid, rid_len, NULL, id, actor, &body);
}

static void s_welcome(broker_t *b, broker_peer_t *p)
{
    json_object *body = json_object_new_object();
    json_object_object_add(body, "welcome", json_object_new_boolean(1));
    json_object_object_add(body, "broker", json_object_new_string(b->instance_hex));
    json_object_object_add(body, "heartbeat_ms", json_object_new_int(b->cfg.heartbeat_ms));
    json_object_object_add(body, "lost_after_ms", json_object_new_int(b->cfg.lost_after_ms));
    if (p->shard)
        json_object_object_add(body, "token", json_object_new_string(p->token));
    uint64_t shard, actor;
    broker_peer_addr(p, &shard, &actor);
    if (broker_peer_reply(b, p->sock, p->rid, p->rid_len, p, shard, actor, &body) != 0)
        SKICK_LOG(SKICK_LOG_WARNING, "peers", "cannot send the welcome to %s: %s", p->hex,
                  zmq_strerror(errno));
}

static broker_peer_t *s_peer_new(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                                 uint64_t id)
{
    broker_peer_t *p = broker_alloc(sizeof *p);
    p->id = id;
    broker_id_hex(id, p->hex);
    p->sock = sock;
    memcpy(p->rid, rid, rid_len);
    p->rid_len = rid_len;
    char key[S_RID_KEY_MAX];
    s_rid_key(sock, rid, rid_len, key);
    p->rid_key = strdup(key);
    if (!p->rid_key)
        abort();
    broker_id_hex(broker_random64(), p->token);
    p->joined_wall_ms = zclock_time();
    zhashx_insert(b->by_id, p->hex, p);
    zhashx_insert(b->by_rid, p->rid_key, p);
    return p;
}

/*  Why a HELLO must be refused, or NULL; *code gets the welcome's code. */
static const char *s_hello_check(broker_t *b, int sock, uint64_t id, const char *kind, bool shard,
                                 const char **code, char *msg, size_t msglen)
{
    char hex[17];
    broker_id_hex(id, hex);
    *code = "EPROTO";
    if (!kind || (!shard && strcmp(kind, "client") != 0))
        return "HELLO body needs \"peer\": \"shard\" or \"client\"";
    if (!id)
        return "HELLO needs the peer id in from_shard (or an 8-byte routing id)";
    *code = "EINVAL";
    /* The endpoint decides the role: whoever can reach the shard endpoint
       is a shard (and never gets the control plane's operations), the
       control endpoint (owner-only, or CURVE) is for clients. */
    if (shard && sock != BROKER_SOCK_SHARD) {
        b->stats.hello_refused++;
        return "shards join on the shard endpoint, not the control endpoint";
    }
    if (!shard && sock != BROKER_SOCK_CONTROL) {
        b->stats.hello_refused++;
        return "clients join on the control endpoint (skick-broker --control), not the shard "
               "endpoint";
    }
    if (broker_peer_is_lost(b, id)) {
        *code = "ELOST";
        snprintf(msg, msglen, "%s was declared lost: exit (its actors were reported ended)", hex);
        return msg;
    }
    return NULL;
}

/*  A HELLO for shard p on its routing id, from another connection than the
    one that joined (that one is gone, and the ROUTER gave its routing id to
    the next connection claiming it): the shard reconnecting, or anybody
    who knows its id. Only the shard itself knows the token of its welcome. */
static const char *s_handover_check(broker_t *b, const broker_peer_t *p, const skick_envelope_t *e,
                                    char *msg, size_t msglen)
{
    const char *token = broker_json_str(e->body, "token");
    if (p->shard && token && strcmp(token, p->token) == 0)
        return NULL;
    b->stats.hello_refused++;
    snprintf(msg, msglen,
             "id %s is held by another connection (this one took over its routing id); "
             "a shard joining again shows the token of its welcome",
             p->hex);
    return msg;
}

void broker_peers_hello(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, int fd,
                        skick_wire_held_t *m)
{
    const skick_envelope_t *e = &m->env;
    /* the id: from_shard, or else the 8-byte routing id shards use */
    uint64_t id = e->from_shard ? e->from_shard : skick_rid_to_id(rid, rid_len);
    const char *kind = broker_json_str(e->body, "peer");
    bool shard = kind && strcmp(kind, "shard") == 0;
    const char *code;
    char msg[160];
    int role = BROKER_ROLE_NONE;
    const char *why = s_hello_check(b, sock, id, kind, shard, &code, msg, sizeof msg);
    if (!why && (why = broker_auth_hello(b, m, shard, &role)))
        code = "ECONTEXT"; /* the key's role does not allow it */
    broker_peer_t *held = why ? NULL : broker_peer_by_id(b, id);
    broker_peer_t *same = broker_peer_by_rid(b, sock, rid, rid_len);
    if (!why && held && held != same) {
        char hex[17];
        broker_id_hex(id, hex);
        snprintf(msg, sizeof msg, "id %s is already held by another live peer", hex);
        why = msg;
    } else if (!why && held && held->fd != fd && sock == BROKER_SOCK_SHARD) {
        why = s_handover_check(b, held, e, msg, sizeof msg);
    } else if (!why && same && same != held && same->fd != fd && sock == BROKER_SOCK_SHARD) {
        /* not "this connection joins again under a new id": it is another
           connection, which must not make the shard it follows lost */
        b->stats.hello_refused++;
        snprintf(msg, sizeof msg,
                 "this routing id belongs to %s, which joined on another connection: use "
                 "your own",
                 same->hex);
        why = msg;
    }
    if (why) {
        s_refuse(b, sock, rid, rid_len, id, shard, code, why);
        return;
    }
    if (same && same != held) {
        /* this connection joins again under a new id: its old self is gone */
        if (same->shard)
            broker_peers_lose(b, same, "replaced by a new HELLO on its connection");
        else
            s_remove(b, same);
    }
    broker_peer_t *p = held ? held : s_peer_new(b, sock, rid, rid_len, id);
    if (held && held->fd != fd)
        SKICK_LOG(SKICK_LOG_NOTICE, "peers", "%s joins again from a new connection", p->hex);
    p->fd = fd;
    p->shard = shard;
    p->role = role;
    json_object_put(p->hello);
    p->hello = json_object_get(e->body);
    p->last_seen_ms = zclock_mono();
    skick_link_reset(&p->link);
    p->link.last_in = e->seq; /* the peer's numbering restarts at its HELLO */
    /* so does the directory's: the entry and its version are per connection
       incarnation (a welcomed shard sends its entry again at once) */
    json_object_put(p->dir);
    p->dir = NULL;
    p->dir_version = 0;
    const char *host = broker_json_str(e->body, "host");
    SKICK_LOG(SKICK_LOG_INFO, "peers", "%s %s %s (host %s, on the %s socket, key role %s)",
              shard ? "shard" : "client", p->hex, held ? "joined again" : "joined",
              host ? host : "?", sock == BROKER_SOCK_SHARD ? "shard" : "control",
              broker_auth_role_name(role));
    s_welcome(b, p);
}

void broker_peers_heartbeat(broker_t *b, broker_peer_t *p, const skick_envelope_t *e)
{
    int64_t now = zclock_mono();
    p->last_hb_ms = now;
    if (!p->shard || !json_object_is_type(e->body, json_type_object))
        return;
    json_object *ping;
    if (json_object_object_get_ex(e->body, "ping_us", &ping) &&
        json_object_is_type(ping, json_type_int)) {
        /* the shard measures its link: answer at once, the value untouched */
        json_object *pong = json_object_new_object();
        json_object_object_add(pong, "pong_us", json_object_get(ping));
        skick_envelope_t hb = {.kind = SKICK_KIND_HEARTBEAT, .body = pong};
        broker_peer_addr(p, &hb.to_shard, &hb.to_id);
        broker_peer_send(b, p, &hb); /* a full link: its loss shows by silence */
        json_object_put(pong);
    }
    json_object_put(p->load);
    p->load = json_object_get(e->body);
    json_object *d;
    if (!json_object_object_get_ex(e->body, "delivered", &d) ||
        !json_object_is_type(d, json_type_int) || json_object_get_int64(d) < 0)
        return;
    uint64_t delivered = (uint64_t) json_object_get_int64(d);
    /* a rate over at least one second, so that one late heartbeat does not
       make it jump */
    if (p->rate_ms == 0 || delivered < p->rate_delivered) {
        p->rate_ms = now;
        p->rate_delivered = delivered;
    } else if (now - p->rate_ms >= 1000) {
        p->msgs_per_s =
            (double) (delivered - p->rate_delivered) * 1000.0 / (double) (now - p->rate_ms);
        p->rate_ms = now;
        p->rate_delivered = delivered;
    }
}

void broker_peers_leave(broker_t *b, broker_peer_t *p, const skick_envelope_t *e)
{
    uint64_t about = 0;
    const char *who = broker_json_str(e->body, "shard");
    if (!who || broker_id_parse(who, &about) != 0 || about != p->id) {
        b->stats.malformed++;
        SKICK_LOG(SKICK_LOG_WARNING, "peers",
                  "LOST from %s refused: a peer may only announce its own leave", p->hex);
        broker_peer_dead_letter(b, p->sock, p->rid, p->rid_len, p, e, SKICK_EPROTO,
                                "LOST must name the sender itself (a clean leave)");
        return;
    }
    if (p->shard) {
        broker_peers_lose(b, p, "left");
    } else {
        SKICK_LOG(SKICK_LOG_INFO, "peers", "client %s left", p->hex);
        s_remove(b, p);
    }
}

void broker_peers_lose(broker_t *b, broker_peer_t *p, const char *reason)
{
    char hex[17];
    memcpy(hex, p->hex, sizeof hex);
    s_remember_lost(b, p->id);
    b->stats.lost++;
    broker_dir_forget(b, p);
    s_remove(b, p);
    SKICK_LOG(SKICK_LOG_NOTICE, "peers", "shard %s lost: %s", hex, reason);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "shard", json_object_new_string(hex));
    json_object_object_add(body, "reason", json_object_new_string(reason));
    skick_envelope_t lost = {.kind = SKICK_KIND_LOST, .body = body};
    /* Clients too: their conversations with actors of p end at once (EPARTNER)
       instead of running out their timeouts. */
    for (broker_peer_t *q = zhashx_first(b->by_id); q; q = zhashx_next(b->by_id)) {
        broker_peer_addr(q, &lost.to_shard, &lost.to_id);
        if (broker_peer_send(b, q, &lost) != 0)
            SKICK_LOG(SKICK_LOG_WARNING, "peers", "cannot tell %s %s that %s is lost: %s",
                      q->shard ? "shard" : "client", q->hex, hex, zmq_strerror(errno));
    }
    json_object_put(body);
}

void broker_peers_tick(broker_t *b, int64_t now)
{
    const broker_config_t *c = &b->cfg;
    /* If the broker itself did not run for a while (stopped, starved), the
       peers' heartbeats are waiting unread: nobody is to blame, so everyone
       gets a fresh window instead of a mass declaration of loss. */
    bool stalled = b->last_tick_ms && now - b->last_tick_ms > c->lost_after_ms / 2;
    b->last_tick_ms = now;
    if (stalled)
        SKICK_LOG(SKICK_LOG_WARNING, "peers",
                  "the broker did not run for a while: loss detection restarts");
    zlistx_t *peers = broker_peers_list(b);
    for (broker_peer_t *p = zlistx_first(peers); p; p = zlistx_next(peers)) {
        if (stalled)
            p->last_seen_ms = now;
        int64_t silent = now - p->last_seen_ms;
        if (p->shard && silent > c->lost_after_ms) {
            char reason[64];
            snprintf(reason, sizeof reason, "no heartbeat for %d ms", c->lost_after_ms);
            broker_peers_lose(b, p, reason);
        } else if (!p->shard && silent > c->client_timeout_ms) {
            SKICK_LOG(SKICK_LOG_INFO, "peers", "client %s forgotten after %lld ms of silence",
                      p->hex, (long long) silent);
            s_remove(b, p);
        }
    }
    zlistx_destroy(&peers);
    if (now < b->next_hb_ms)
        return;
    b->next_hb_ms = now + c->heartbeat_ms;
    json_object *body = json_object_new_object();
    skick_envelope_t hb = {.kind = SKICK_KIND_HEARTBEAT, .body = body};
    for (broker_peer_t *p = zhashx_first(b->by_id); p; p = zhashx_next(b->by_id)) {
        broker_peer_addr(p, &hb.to_shard, &hb.to_id);
        broker_peer_send(b, p, &hb); /* a full or gone link: its loss shows by silence */
    }
    json_object_put(body);
}
