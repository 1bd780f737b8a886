/*  bridge_confirm - did the other shard take the message? (the bridge's ack rule)

    The bridge acks an AMQP delivery only once the target's shard has put
    the message in the actor's mailbox. A local target answers at once
    (skick_send's result). For a remote one the bridge sends, right behind
    the message and on the same ordered path (bridge shard -> broker ->
    target shard), a "ping" conversation opener to the target's shard
    actor, whose cid is ours ("amqp.ack.<n>", 32 characters). The target shard
    handles envelopes in order: the message is delivered or bounced (a
    DEAD_LETTER with EDEAD or EFULL, no cid) before the ping is even
    queued, and both answers come back on one ordered link. So:

      * a dead letter without a cid from shard S for actor X belongs to
        the pending send to X (one at a time per target, see below);
      * any answer to the ping ends the wait (its reply, or an
        end_conversation if the shard actor refused it): taken, unless a
        dead letter came first;
      * a dead letter for the ping itself ends it: with that code when
        the shard is gone (the broker: no such shard), as taken-unless-
        bounced when the shard actor's mailbox was full (EFULL).

    The shard actor answers the ping only when it gets to it in its
    mailbox, later than the target's shard sends a dead letter for the
    next message: so the answers of two pipelined sends to one actor
    cannot be told apart. Sends to one target actor therefore go one at a
    time (a "lane" per target: the next waits until the one before is
    confirmed); sends to different actors run in parallel. A dead letter
    from shard S for actor X then belongs to the one pending send to X.

    Both answers are seen as they arrive, not when the waiting fiber
    resumes: the bridge actor's kind routes them here (intercept runs
    before conversation replies are routed, undelivered as the dead letter
    is read). The message and its ping leave without a suspension between
    them, so no other send to S can come between the two.

    Time-out (the shard's call timeout): the wait ends with ETIMEDOUT and
    the message is reported as unconfirmed; it may have been taken. A dead
    letter that arrives after its send timed out is matched to the next
    send to the same actor, if any: that one is then reported
    (dead-lettered although it may have been taken). A dead letter only
    turns an ack into a reject: over-reporting, never a silent loss.
*/
#include "bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a cid is 32 characters (skick_reply checks): the prefix and 23 digits */
#define BR_CID_PREFIX "amqp.ack."

typedef struct br_pend {
    struct br_pend *next; /* in its shard's FIFO */
    uint64_t seq;         /* the ping's cid number */
    node_ref_t to;        /* the target */
    int err;              /* the first dead letter's code */
    bool linked;          /* in the FIFO and the index */
    node_wait_t w;
} br_pend_t;

typedef struct br_fifo {
    br_pend_t *head, *tail;
} br_fifo_t;

typedef struct br_waiter {
    struct br_waiter *next;
    bool handed; /* the lane was handed to it */
    node_wait_t w;
} br_waiter_t;

typedef struct br_lane { /* one target actor: one unconfirmed send at a time */
    br_waiter_t *head, *tail;
} br_lane_t;

struct br_confirm {
    uint64_t next_seq;
    node_u64map_t by_seq; /* seq -> br_pend_t* */
    node_u64map_t fifos;  /* shard id -> br_fifo_t* (removed when empty) */
    node_u64map_t lanes;  /* target actor id -> br_lane_t* (present: busy) */
};

br_confirm_t *br_confirm_new(void)
{
    br_confirm_t *c = node_calloc(1, sizeof *c);
    node_u64map_init(&c->by_seq);
    node_u64map_init(&c->fifos);
    node_u64map_init(&c->lanes);
    return c;
}

void br_confirm_free(br_confirm_t **c_p)
{
    br_confirm_t *c = c_p ? *c_p : NULL;
    if (!c)
        return;
    *c_p = NULL;
    for (size_t i = 0; i < c->fifos.cap; i++)
        if (c->fifos.keys[i])
            free(c->fifos.vals[i]);
    for (size_t i = 0; i < c->lanes.cap; i++)
        if (c->lanes.keys[i])
            free(c->lanes.vals[i]);
    node_u64map_free(&c->lanes);
    node_u64map_free(&c->fifos);
    node_u64map_free(&c->by_seq);
    free(c);
}

static void s_link(br_confirm_t *c, br_pend_t *p)
{
    br_fifo_t *f = node_u64map_get(&c->fifos, p->to.shard);
    if (!f) {
        f = node_calloc(1, sizeof *f);
        node_u64map_put(&c->fifos, p->to.shard, f);
    }
    p->next = NULL;
    if (f->tail)
        f->tail->next = p;
    else
        f->head = p;
    f->tail = p;
    node_u64map_put(&c->by_seq, p->seq, p);
    p->linked = true;
}

static void s_unlink(br_confirm_t *c, br_pend_t *p)
{
    if (!p->linked)
        return;
    p->linked = false;
    node_u64map_del(&c->by_seq, p->seq);
    br_fifo_t *f = node_u64map_get(&c->fifos, p->to.shard);
    br_pend_t **pp = &f->head, *prev = NULL;
    while (*pp != p) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = p->next;
    if (f->tail == p)
        f->tail = prev;
    if (!f->head) {
        node_u64map_del(&c->fifos, p->to.shard);
        free(f);
    }
}

static void s_finish(br_confirm_t *c, br_pend_t *p, int err)
{
    if (err && !p->err)
        p->err = err;
    s_unlink(c, p);
    node_wait_complete(&p->w, SKICK_OK);
}

/*  The pending send a cid of ours names (NULL: not ours, or *ours false). */
static br_pend_t *s_by_cid(br_confirm_t *c, const char *cid, bool *ours)
{
    size_t n = sizeof BR_CID_PREFIX - 1;
    *ours = cid && strncmp(cid, BR_CID_PREFIX, n) == 0;
    if (!*ours)
        return NULL;
    char *end;
    unsigned long long seq = strtoull(cid + n, &end, 10);
    return *end ? NULL : node_u64map_get(&c->by_seq, seq);
}

static void s_lane_give(br_confirm_t *c, node_ref_t to);

static uint64_t s_lane_key(node_ref_t to)
{
    return to.id ? to.id : 1;
}

/*  Take the target's lane, waiting for the send before ours. 0 or the
    wait's error (then the lane is not ours). */
static int s_lane_take(br_confirm_t *c, node_ref_t to, int64_t timeout_ms)
{
    br_lane_t *l = node_u64map_get(&c->lanes, s_lane_key(to));
    if (!l) {
        node_u64map_put(&c->lanes, s_lane_key(to), node_calloc(1, sizeof *l));
        return 0;
    }
    br_waiter_t me = {0};
    node_wait_init(&me.w);
    if (l->tail)
        l->tail->next = &me;
    else
        l->head = &me;
    l->tail = &me;
    int rc = node_wait(&me.w, timeout_ms);
    if (me.handed)
        return rc == SKICK_OK ? 0 : (s_lane_give(c, to), rc);
    br_waiter_t **pp = &l->head, *prev = NULL; /* gave up: leave the queue */
    while (*pp != &me) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = me.next;
    if (l->tail == &me)
        l->tail = prev;
    return rc;
}

/*  Hand the lane to the next waiter, or free it. */
static void s_lane_give(br_confirm_t *c, node_ref_t to)
{
    br_lane_t *l = node_u64map_get(&c->lanes, s_lane_key(to));
    br_waiter_t *w = l ? l->head : NULL;
    if (!w) {
        free(node_u64map_del(&c->lanes, s_lane_key(to)));
        return;
    }
    l->head = w->next;
    if (!l->head)
        l->tail = NULL;
    w->handed = true;
    node_wait_complete(&w->w, SKICK_OK);
}

static int s_send_remote(br_confirm_t *c, skick_actor_t *self, const char *address,
                         node_ref_t to, json_object **msg, int64_t timeout_ms);

int br_confirm_send(br_confirm_t *c, skick_actor_t *self, const char *address,
                    json_object **msg, int64_t timeout_ms)
{
    node_shard_t *sh = self->shard;
    node_ref_t to;
    if (node_parse_addr(address, &to) != 0) {
        json_object_put(*msg);
        *msg = NULL;
        return SKICK_EINVAL;
    }
    if (to.shard == sh->id || !sh->transport) /* local: the answer is at hand */
        return skick_send(self, address, msg) == 0 ? 0 : skick_errno();
    int rc = s_lane_take(c, to, timeout_ms);
    if (rc) { /* not sent: the one before ours is still unconfirmed */
        json_object_put(*msg);
        *msg = NULL;
        return rc;
    }
    rc = s_send_remote(c, self, address, to, msg, timeout_ms);
    s_lane_give(c, to);
    return rc;
}

static int s_send_remote(br_confirm_t *c, skick_actor_t *self, const char *address,
                         node_ref_t to, json_object **msg, int64_t timeout_ms)
{
    br_pend_t p = {.seq = ++c->next_seq, .to = to};
    node_wait_init(&p.w);
    if (skick_send(self, address, msg) != 0)
        return skick_errno();
    s_link(c, &p); /* nothing can come back before the loop runs: at node_wait */
    char cid[64], shard_addr[SKICK_ADDR_LEN + 1];
    snprintf(cid, sizeof cid, BR_CID_PREFIX "%023llu", (unsigned long long) p.seq);
    node_format_addr(shard_addr, to.shard, to.shard);
    json_object *ping = json_object_new_object();
    json_object_object_add(ping, "action", json_object_new_string("ping"));
    json_object_object_add(ping, "cid", json_object_new_string(cid));
    json_object_object_add(ping, "sender", json_object_new_string(self->addr));
    if (skick_send(self, shard_addr, &ping) != 0) {
        int err = skick_errno();
        s_unlink(c, &p);
        return err;
    }
    int rc = node_wait(&p.w, timeout_ms);
    s_unlink(c, &p);
    return rc == SKICK_OK ? p.err : rc;
}

bool br_confirm_reply(br_confirm_t *c, node_ref_t from, json_object **body)
{
    bool ours;
    br_pend_t *p = s_by_cid(c, skick_get_string(*body, "cid", NULL), &ours);
    if (!ours)
        return false;
    if (p && from.shard == p->to.shard)
        s_finish(c, p, 0);
    json_object_put(*body); /* a late one (the send timed out) is dropped too */
    *body = NULL;
    return true;
}

void br_confirm_undelivered(br_confirm_t *c, node_ref_t to, const char *cid, int err)
{
    bool ours;
    br_pend_t *p = s_by_cid(c, cid, &ours);
    if (ours) {
        /* The ping itself bounced. EFULL: the shard actor's mailbox is full
           (a burst), and the message before the ping was taken or bounced
           already; else its shard is gone and cannot have taken it. */
        if (p)
            s_finish(c, p, err == SKICK_EFULL ? 0 : err ? err : SKICK_EDEAD);
        return;
    }
    if (cid)
        return; /* a conversation's: node_conv_fail has it */
    br_fifo_t *f = node_u64map_get(&c->fifos, to.shard);
    for (br_pend_t *q = f ? f->head : NULL; q; q = q->next)
        if (q->to.id == to.id && !q->err) { /* one dead letter per send */
            q->err = err ? err : SKICK_EDEAD;
            return; /* its ping's answer, right behind, ends the wait */
        }
}
