/*  node_cluster - a shard's link to the broker (PROTOCOL.md "The cluster")

    Two ZeroMQ sockets, both driven from the shard's reactor: a DEALER for
    actor envelopes, control requests, heartbeats and our directory entry
    (on our own link, so that the broker knows it is ours: it takes no
    entry naming another shard), and a SUB for everyone's. The link's
    life:

      joining    HELLO sent until a welcome arrives (retries, back-off and the
                 warnings that say why it takes long: node_admit.c)
      welcomed   heartbeats both ways; traffic flows; our directory entry is
                 published when it changes and every 2 s
      silent     no broker envelope for lost_after_ms: remote sends fail at
                 once with EUNREACH, hash requests with EBACKEND; HELLO again.
                 What was in flight may be lost with the broker, so every
                 watch of a remote actor fires and conversations with remote
                 partners end (node_watch_link_lost): sessions across shards
                 end on both sides, and their clients are told.

    A welcome from a different broker instance (a restart) makes the
    directory entries we hold provisional until their shards re-advertise
    (node_directory_unconfirm). ZeroMQ descriptors signal edges, so the
    sockets are drained from the loop's poll hook before every poll, not
    only when their descriptor wakes the poll.
*/
#include "node_cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODE_CLUSTER_REPUBLISH_MS 2000
#define NODE_CLUSTER_DRAIN 256     /* envelopes per socket per poll */

static node_cluster_t *s_c(node_shard_t *sh)
{
    return sh->cluster;
}

bool node_cluster_connected(node_shard_t *sh)
{
    return sh->cluster && sh->cluster->welcomed;
}

uint64_t node_cluster_link_generation(node_shard_t *sh)
{
    return sh->cluster ? sh->cluster->links : 0;
}

void node_cluster_dir_dirty(node_shard_t *sh)
{
    if (sh->cluster)
        sh->cluster->dir_dirty = true;
}

/* ------------------------------------------------------------------------- */
/* Sending                                                                    */

int node_cluster_send_raw(node_shard_t *sh, int kind, node_ref_t from, node_ref_t to,
                          json_object *body, bool control, uint32_t gen)
{
    node_cluster_t *c = s_c(sh);
    skick_envelope_t e = {.kind = (uint8_t) kind, .seq = skick_link_peek(&c->link),
                          .flags = control ? SKICK_ENVELOPE_CONTROL : 0, .gen = gen,
                          .from_shard = from.shard, .from_id = from.id, .to_shard = to.shard,
                          .to_id = to.id, .body = body};
    c->dealer_sent = true;
    if (skick_wire_send(zsock_resolve(c->dealer), NULL, 0, &e, ZMQ_DONTWAIT) != 0)
        return -1;
    skick_link_next(&c->link); /* consumed only once sent: a failed send leaves no gap */
    return 0;
}

static void s_send_heartbeat(node_shard_t *sh);

/*  From the send path, every 1024 envelopes: move the backlog (ZeroMQ's I/O
    thread drains the pipe while a long handler keeps sending) and keep the
    heartbeat going, so neither waits for the handler to return. */
static void s_keepalive(node_shard_t *sh)
{
    node_cluster_t *c = s_c(sh);
    if (c->bl_head)
        node_cluster_flush(sh);
    if (node_now(sh) - c->last_beat >= c->heartbeat_ms)
        s_send_heartbeat(sh);
}

int node_cluster_send(node_shard_t *sh, int kind, node_ref_t from, node_ref_t to,
                      json_object **body, bool control, uint32_t gen)
{
    node_cluster_t *c = s_c(sh);
    if (!c || !c->welcomed) {
        skick_set_errno(SKICK_EUNREACH);
        return -1;
    }
    json_object *b = body ? *body : NULL;
    if ((++c->sends & 1023) == 0)
        s_keepalive(sh); /* a handler that sends for seconds must not look dead */
    if (!c->bl_head && node_cluster_send_raw(sh, kind, from, to, b, control, gen) == 0) {
        json_object_put(b);
    } else if (c->bl_count < NODE_CLUSTER_BACKLOG_MAX) {
        /* the pipe to the broker is full: keep it, in order, for the poll hook */
        node_backlog_t *q = node_malloc(sizeof *q);
        *q = (node_backlog_t){.e = {.kind = (uint8_t) kind,
                                    .flags = control ? SKICK_ENVELOPE_CONTROL : 0, .gen = gen,
                                    .from_shard = from.shard, .from_id = from.id,
                                    .to_shard = to.shard, .to_id = to.id, .body = b}};
        if (c->bl_tail)
            c->bl_tail->next = q;
        else
            c->bl_head = q;
        c->bl_tail = q;
        c->bl_count++;
    } else {
        skick_set_errno(SKICK_EFULL);
        return -1;
    }
    if (body)
        *body = NULL;
    sh->stats.sent_remote++;
    if (c->metrics && (kind == SKICK_KIND_ACTOR || kind == SKICK_KIND_CLIENT))
        node_cluster_metrics_count(c, to.shard, true);
    return 0;
}

/*  Send what waited for room; returns how many went out. */
size_t node_cluster_flush(node_shard_t *sh)
{
    node_cluster_t *c = s_c(sh);
    size_t n = 0;
    while (c->bl_head && c->welcomed) {
        node_backlog_t *q = c->bl_head;
        skick_envelope_t *e = &q->e;
        if (node_cluster_send_raw(sh, e->kind, (node_ref_t){e->from_shard, e->from_id},
                       (node_ref_t){e->to_shard, e->to_id}, e->body,
                       (e->flags & SKICK_ENVELOPE_CONTROL) != 0, e->gen) != 0)
            break;
        c->bl_head = q->next;
        if (!c->bl_head)
            c->bl_tail = NULL;
        c->bl_count--;
        json_object_put(e->body);
        free(q);
        n++;
    }
    return n;
}


/*  The link is down: pending hash requests and queued envelopes fail, and
    we wait for a welcome again. */
static void s_disconnect(node_shard_t *sh)
{
    node_cluster_t *c = s_c(sh);
    bool was = c->welcomed;
    c->welcomed = false;
    node_cluster_hash_fail_all(sh);
    node_cluster_fail_backlog(sh);
    if (was) {
        node_watch_link_lost(sh, "connection to the broker lost");
        node_admit_wait(sh);
    }
}

/*  The link went down: whatever waited will not leave. */
void node_cluster_fail_backlog(node_shard_t *sh)
{
    node_cluster_t *c = s_c(sh);
    while (c->bl_head) {
        node_backlog_t *q = c->bl_head;
        c->bl_head = q->next;
        c->bl_count--;
        if ((q->e.kind == SKICK_KIND_ACTOR || q->e.kind == SKICK_KIND_CLIENT) && q->e.body)
            node_remote_undeliverable(sh, (node_ref_t){q->e.to_shard, q->e.to_id}, &q->e.body,
                                      SKICK_EUNREACH);
        json_object_put(q->e.body);
        free(q);
    }
    c->bl_tail = NULL;
}

int node_cluster_hello(node_shard_t *sh)
{
    node_cluster_t *c = s_c(sh);
    skick_link_reset(&c->link); /* HELLO carries seq 1 */
    return node_cluster_send_raw(sh, SKICK_KIND_HELLO, (node_ref_t){sh->id, sh->id}, (node_ref_t){0, 0},
                      c->hello, false, 0);
}

static void s_send_heartbeat(node_shard_t *sh)
{
    node_cluster_t *c = s_c(sh);
    json_object *b = node_control_stats(sh); /* the load skickctl ps shows */
    if (c->metrics) /* the broker answers it: the link's RTT */
        json_object_object_add(b, "ping_us", json_object_new_int64(node_cluster_clock_us()));
    c->last_beat = node_now(sh);
    node_cluster_send_raw(sh, SKICK_KIND_HEARTBEAT, (node_ref_t){sh->id, sh->id}, (node_ref_t){0, 0}, b, false,
               0);
    json_object_put(b);
}

/*  Our entry, to the broker on the link; versions only grow (the broker
    takes only newer ones per connection). Not queued behind a backlog: it
    is a full state, and one that does not fit now goes at the next tick
    (it stays dirty). */
static void s_publish(node_shard_t *sh)
{
    node_cluster_t *c = s_c(sh);
    json_object *entry = node_directory_own_entry(sh, ++c->dir_version);
    c->dir_dirty = node_cluster_send_raw(sh, SKICK_KIND_DIRECTORY, (node_ref_t){sh->id, sh->id},
                              (node_ref_t){0, 0}, entry, false, 0) != 0;
    if (!c->dir_dirty)
        c->last_pub = node_now(sh);
    else
        SKICK_LOG(SKICK_LOG_DEBUG, "cluster", "directory entry not sent (link full): next tick");
    json_object_put(entry);
}

/* ------------------------------------------------------------------------- */
/* Receiving                                                                  */

static void s_welcome(node_shard_t *sh, skick_envelope_t *e)
{
    node_cluster_t *c = s_c(sh);
    json_object *b = e->body;
    if (!skick_get_bool(b, "welcome", false)) {
        const char *code = skick_get_string(b, "code", "");
        const char *why = skick_get_string(b, "error", "refused");
        if (strcmp(code, "EPROTO") == 0) {
            /* the broker does not know us (it restarted): join again */
            if (c->welcomed)
                SKICK_LOG(SKICK_LOG_WARNING, "cluster", "the broker forgot this shard (%s): "
                          "joining again", why);
            s_disconnect(sh); /* HELLO at once (node_admit_wait) */
            return;
        }
        if (strcmp(code, "EVERSION") == 0) {
            /* another protocol version: the broker may be upgraded, so go
               on trying (and say so) rather than exit */
            s_disconnect(sh);
            node_admit_refused(sh, code, why);
            return;
        }
        if (sh->stopping)
            return; /* said once: the other refusals answer HELLOs already sent */
        SKICK_LOG(SKICK_LOG_ERROR, "cluster", "the broker refused this shard (%.16s: %.200s); "
                  "stopping", code, why);
        s_disconnect(sh);
        sh->declared_lost = strcmp(code, "ELOST") == 0;
        sh->exit_status = 1;
        node_shard_stop(sh);
        return;
    }
    const char *bid = skick_get_string(b, "broker", "");
    uint64_t broker = strtoull(bid, NULL, 16);
    if (c->broker_id && broker != c->broker_id) {
        SKICK_LOG(SKICK_LOG_NOTICE, "cluster", "a new broker instance (%.16s): shards "
                  "re-advertise", bid);
        node_directory_unconfirm(sh);
    }
    c->broker_id = broker;
    /* A HELLO from a new connection (libzmq reconnected with our routing id)
       must show this token, or the broker takes it for someone else's. */
    const char *token = skick_get_string(b, "token", NULL);
    if (token)
        json_object_object_add(c->hello, "token", json_object_new_string(token));
    c->link.last_in = 0;
    skick_link_accept(&c->link, e->seq);
    int64_t hb = skick_get_int(b, "heartbeat_ms", 500);
    int64_t lost = skick_get_int(b, "lost_after_ms", 3000);
    c->heartbeat_ms = hb >= 10 && hb <= 60000 ? hb : 500;
    c->lost_after_ms = lost > c->heartbeat_ms && lost <= 600000 ? lost : 6 * c->heartbeat_ms;
    if (!c->welcomed) {
        node_admit_welcomed(sh, bid);
        c->links++;
    }
    c->welcomed = true;
    c->dir_dirty = true;
    s_send_heartbeat(sh);
}

static void s_on_dealer(node_shard_t *sh, skick_envelope_t *e)
{
    node_cluster_t *c = s_c(sh);
    c->last_heard = node_now(sh);
    if (e->kind == SKICK_KIND_REPLY && e->body && json_object_object_get_ex(e->body, "welcome", NULL)) {
        s_welcome(sh, e);
        skick_envelope_destroy(&e);
        return;
    }
    int64_t gap = skick_link_accept(&c->link, e->seq);
    if (gap < 0) {
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "duplicate envelope from the broker "
                         "(seq %llu) dropped", (unsigned long long) e->seq);
        skick_envelope_destroy(&e);
        return;
    }
    if (gap > 0) {
        sh->stats.gaps += (uint64_t) gap;
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "%lld envelope(s) from the broker are "
                         "missing before seq %llu", (long long) gap,
                         (unsigned long long) e->seq);
    }
    switch (e->kind) {
    case SKICK_KIND_HEARTBEAT:
        if (e->body)
            node_cluster_metrics_pong(c, e->body);
        break;
    case SKICK_KIND_REPLY:
        if (e->body)
            node_cluster_hash_reply(sh, e->body);
        break;
    case SKICK_KIND_CONTROL: {
        json_object *reply = node_control_handle(sh, e->body);
        node_cluster_send(sh, SKICK_KIND_REPLY, (node_ref_t){sh->id, sh->id},
                          (node_ref_t){e->from_shard, e->from_id}, &reply, false, 0);
        json_object_put(reply);
        break;
    }
    case SKICK_KIND_LOST: {
        uint64_t who;
        if (node_parse_id(skick_get_string(e->body, "shard", NULL), &who) != 0) {
            sh->stats.malformed++;
            break;
        }
        if (who == sh->id) {
            if (!sh->stopping)
                SKICK_LOG(SKICK_LOG_ERROR, "cluster", "the broker declared this shard lost "
                          "(%s); stopping", skick_get_string(e->body, "reason", "?"));
            sh->declared_lost = true;
            sh->exit_status = 1;
            node_shard_stop(sh);
            break;
        }
        node_watch_shard_lost(sh, who, skick_get_string(e->body, "reason", "lost"));
        break;
    }
    case SKICK_KIND_ACTOR:
    case SKICK_KIND_CLIENT:
    case SKICK_KIND_DEAD_LETTER:
        node_remote_receive(sh, e); /* takes e */
        return;
    default:
        sh->stats.malformed++;
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "unexpected %s envelope from the broker",
                         skick_kind_name(e->kind));
        break;
    }
    skick_envelope_destroy(&e);
}

/*  Drain up to NODE_CLUSTER_DRAIN envelopes from sock. Returns how many. */
static int s_drain(node_shard_t *sh, zsock_t *sock, bool directory)
{
    int n = 0;
    for (; n < NODE_CLUSTER_DRAIN; n++) {
        skick_envelope_t *e;
        char why[128];
        int rc = skick_wire_recv(zsock_resolve(sock), false, ZMQ_DONTWAIT, NULL, NULL, &e, why,
                                 sizeof why);
        if (rc == 0 || rc == -2)
            break;
        if (rc < 0) {
            sh->stats.malformed++;
            if (!directory && skick_errno() == SKICK_EVERSION)
                node_admit_foreign(sh, why); /* the warning says it, bounded */
            else
                NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "malformed envelope dropped: %s",
                                 why);
            continue;
        }
        if (directory) {
            if (e->kind == SKICK_KIND_DIRECTORY && e->body)
                node_directory_update(sh, e->body);
            else
                sh->stats.malformed++;
            skick_envelope_destroy(&e);
        } else {
            s_on_dealer(sh, e);
        }
        if (!sh->cluster)
            return n + 1; /* left during the handling */
    }
    return n;
}

/*  Before every poll. No ZMQ_EVENTS checks on the way (each is two system
    calls: libzmq polls its command pipe and calls getpid): a descriptor
    fires when its socket's command pipe goes from empty to not empty, and a
    receive that finds nothing has just emptied it. So the DEALER is drained
    when its descriptor fired, when a drain stopped at its limit, and when
    it was sent on since its last dry drain (a send may empty the command
    pipe, taking the edge of a message that arrived meanwhile); the drain
    runs after the backlog's flush so that its last receive comes last. */
bool node_cluster_poll_hook(node_shard_t *sh)
{
    node_cluster_t *c = s_c(sh);
    if (!c)
        return false;
    bool work = c->bl_head && node_cluster_flush(sh) > 0;
    if (c->dealer_ready || c->dealer_sent) {
        c->dealer_sent = false;
        int n = s_drain(sh, c->dealer, false);
        if (!sh->cluster)
            return true; /* left during the handling */
        c->dealer_ready = n == NODE_CLUSTER_DRAIN;
        work |= n > 0;
        /* Room may have come with what that receive processed, and nothing
           would say so again: ask, only while a backlog waits. */
        if (!work && c->bl_head && (zsock_events(c->dealer) & ZMQ_POLLOUT))
            work = true;
    }
    if (c->sub_ready) {
        c->sub_ready = false; /* the directory is not latency-critical: its descriptor
                                 or the tick says when to look */
        int n = s_drain(sh, c->sub, true);
        if (!sh->cluster)
            return true;
        c->sub_ready = n == NODE_CLUSTER_DRAIN;
        work |= n > 0;
    }
    if (c->welcomed && c->dir_dirty)
        s_publish(sh);
    return work;
}

/*  A descriptor fired: the poll hook drains that socket before the next
    poll. */
void node_cluster_on_fd(node_shard_t *sh, int fd, void *arg)
{
    (void) arg;
    node_cluster_t *c = s_c(sh);
    if (!c)
        return;
    if (fd == zsock_fd(c->sub))
        c->sub_ready = true;
    else
        c->dealer_ready = true;
}

/* ------------------------------------------------------------------------- */
/* Housekeeping                                                               */

void node_cluster_tick(node_shard_t *sh, void *arg, uint64_t id)
{
    (void) arg;
    (void) id;
    node_cluster_t *c = s_c(sh);
    if (!c)
        return;
    int64_t now = node_now(sh);
    c->sub_ready = c->dealer_ready = true; /* the safety net of the edges */
    /* After a long handler the loop may not have read the link yet: look
       before calling the broker silent. */
    if (c->welcomed && now - c->last_heard > c->lost_after_ms)
        s_drain(sh, c->dealer, false);
    if (!sh->cluster)
        return;
    if (c->welcomed && now - c->last_heard > c->lost_after_ms) {
        SKICK_LOG(SKICK_LOG_WARNING, "cluster", "no word from the broker for %lld ms: "
                  "disconnected (remote sends fail until it is back)",
                  (long long) (now - c->last_heard));
        s_disconnect(sh);
    }
    node_admit_tick(sh); /* while not welcomed: HELLO, reconnect, warn */
    if (c->welcomed) {
        if (now - c->last_beat >= c->heartbeat_ms)
            s_send_heartbeat(sh);
        if (c->dir_dirty || now - c->last_pub >= NODE_CLUSTER_REPUBLISH_MS)
            s_publish(sh);
        node_directory_expire(sh, 2 * c->lost_after_ms);
    }
    c->tick = node_timer_add(sh, NODE_CLUSTER_TICK_MS, node_cluster_tick, NULL);
}
