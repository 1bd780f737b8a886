/*  bridge_confirm - did the other shard take the message? (the bridge's ack rule)

    The bridge acks an AMQP delivery only once the target's shard has put
    the message in the actor's mailbox. A local target answers at once
    (skick_send's result). For a remote one the bridge sends, right behind
    the message and on the same ordered path (bridge shard -> broker ->
    target shard), a "sync" barrier to the target's shard actor with a
    token of ours ("amqp.<n>"). The target shard applies "sync" when its
    envelope arrives (node_app.c), so its "synced" answer leaves after the
    dead letter (EDEAD, EFULL; no cid) of the message before it, if there
    is one, and both come back on one ordered link. So, per target shard S,
    the pending sends form a FIFO whose answers arrive in order:

      * a dead letter without a cid from S for actor X belongs to the
        oldest pending send to X on S (the ones before it were answered
        already, or their dead letter came first);
      * "synced" with our token ends that send's wait: taken, unless a
        dead letter came first;
      * a dead letter for the sync itself belongs to the oldest pending
        send to S (the broker bounces in order too): if the message was
        not bounced before it, the broker found S gone after the message
        passed (taken: S had it, it is gone now) or its queue to S full
        (EFULL: S may not have handled the message yet) -- reported as
        unconfirmed (ETIMEDOUT).

    Any number of sends to one actor are in flight at once: the answers of
    two sends to one actor are told apart by their order.

    Both answers are seen as they arrive, not when the waiting fiber
    resumes: the bridge actor's kind routes them here (intercept runs
    before the mailbox, undelivered as the dead letter is read). The
    message and its sync leave without a suspension between them, so no
    other send to S can come between the two.

    Time-out (the shard's call timeout): the wait ends with ETIMEDOUT and
    the message is reported as unconfirmed; it may have been taken. A dead
    letter that arrives after its send timed out is matched to the next
    send to the same actor, if any: that one is then reported
    (dead-lettered although it may have been taken). A dead letter only
    turns an ack into a reject: over-reporting, never a silent loss.
*/
#include "bridge.h"
#include "node_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BR_TOKEN_PREFIX "amqp."

typedef struct br_pend {
    struct br_pend *next; /* in its shard's FIFO */
    uint64_t seq;         /* the sync's token number */
    uint64_t link;        /* the broker link's generation it was sent in */
    node_ref_t to;        /* the target */
    int err;              /* the first dead letter's code */
    bool linked;          /* in the FIFO and the index */
    node_wait_t w;
} br_pend_t;

typedef struct br_fifo {
    br_pend_t *head, *tail;
} br_fifo_t;

struct br_confirm {
    node_shard_t *sh;
    uint64_t next_seq;
    node_u64map_t by_seq; /* seq -> br_pend_t* */
    node_u64map_t fifos;  /* shard id -> br_fifo_t* (removed when empty) */
};

br_confirm_t *br_confirm_new(node_shard_t *sh)
{
    br_confirm_t *c = node_calloc(1, sizeof *c);
    c->sh = sh;
    node_u64map_init(&c->by_seq);
    node_u64map_init(&c->fifos);
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

/*  The pending send a token of ours names (NULL: not ours, or gone). */
static br_pend_t *s_by_token(br_confirm_t *c, const char *token)
{
    size_t n = sizeof BR_TOKEN_PREFIX - 1;
    if (!token || strncmp(token, BR_TOKEN_PREFIX, n) != 0)
        return NULL;
    char *end;
    unsigned long long seq = strtoull(token + n, &end, 10);
    return *end ? NULL : node_u64map_get(&c->by_seq, seq);
}

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
    br_pend_t p = {.seq = ++c->next_seq, .to = to, .link = node_cluster_link_generation(sh)};
    node_wait_init(&p.w);
    if (skick_send(self, address, msg) != 0)
        return skick_errno();
    s_link(c, &p); /* nothing can come back before the loop runs: at node_wait */
    char token[40], shard_addr[SKICK_ADDR_LEN + 1];
    snprintf(token, sizeof token, BR_TOKEN_PREFIX "%llu", (unsigned long long) p.seq);
    node_format_addr(shard_addr, to.shard, to.shard);
    json_object *sync = json_object_new_object();
    json_object_object_add(sync, "action", json_object_new_string("sync"));
    json_object_object_add(sync, "token", json_object_new_string(token));
    if (skick_send(self, shard_addr, &sync) != 0) {
        int err = skick_errno();
        s_unlink(c, &p);
        return err;
    }
    int rc = node_wait(&p.w, timeout_ms);
    s_unlink(c, &p);
    return rc == SKICK_OK ? p.err : rc;
}

/*  The FIFO of shard id, without the sends of an earlier link generation
    (their answers were lost with that link: EUNREACH, which the bridge
    retries, so they may arrive twice but are not lost). */
static br_fifo_t *s_fifo(br_confirm_t *c, uint64_t id)
{
    uint64_t now = node_cluster_link_generation(c->sh);
    br_fifo_t *f;
    while ((f = node_u64map_get(&c->fifos, id)) && f->head->link != now)
        s_finish(c, f->head, SKICK_EUNREACH);
    return f;
}

bool br_confirm_synced(br_confirm_t *c, node_ref_t from, json_object **body)
{
    s_fifo(c, from.shard);
    br_pend_t *p = s_by_token(c, skick_get_string(*body, "token", NULL));
    if (p && from.shard == p->to.shard && from.id == p->to.shard)
        s_finish(c, p, 0);
    json_object_put(*body); /* a late one (the send timed out) is dropped too */
    *body = NULL;
    return true;
}

void br_confirm_undelivered(br_confirm_t *c, node_ref_t to, const char *action, const char *cid,
                            int err)
{
    if (cid)
        return; /* a conversation's: node_conv_fail has it */
    br_fifo_t *f = s_fifo(c, to.shard);
    if (!f)
        return;
    if (to.id == to.shard && action && strcmp(action, "sync") == 0) {
        /* The sync bounced: the message before it was answered already
           (bounced, or it reached S) unless the broker's queue to S was
           full, which leaves it unknown. */
        s_finish(c, f->head, f->head->err ? 0 : err == SKICK_EFULL ? SKICK_ETIMEDOUT : 0);
        return;
    }
    for (br_pend_t *q = f->head; q; q = q->next)
        if (q->to.id == to.id && !q->err) { /* one dead letter per send */
            q->err = err ? err : SKICK_EDEAD;
            return; /* its sync's answer, right behind, ends the wait */
        }
}
