/*  bridge_actor - the bridge actor: AMQP deliveries in, publishes out

    One actor per bridge process (type skick.amqp_bridge, spawned by the
    module's shard hook), provider of the service --service ("amqp"). It
    owns the AMQP thread (bridge_amqp.c) and watches its event eventfd on
    the shard's loop; nothing here waits for RabbitMQ except coroutines
    that chose to (a publish waiting for its confirm).

    A delivery (from the bridge's queue or a subscription) becomes a task
    of this actor, so that many are in flight at once; basic.qos prefetch
    bounds how many. The task:

      1. checks the body (at most --max-message bytes, strict JSON, an
         object with a string "action"); a bad one is rejected at once
         (basic.reject, requeue false: RabbitMQ moves it to the dead-letter
         exchange), counted and logged (rate-limited), and an RPC request
         also gets an error reply;
      2. finds the target: routing key actor.<SHARD:ACTOR>, service.<name>
         (skick_get_service, cluster-wide), or the subscription's;
      3. one-way: sends it and waits until the target's shard took it
         (bridge_confirm.c), then acks; EDEAD / EFULL / ENOTFOUND and an
         unconfirmed send (ETIMEDOUT) are rejected to the dead-letter
         exchange, counted. RPC (reply_to set): skick_call with the shard's
         call timeout, then publishes the answer or an error body
         {"error":{"code","message"}} (header x-skick-error) to reply_to
         with the request's correlation_id, waits for the publisher
         confirm, and acks (rejects when the request never reached an
         actor);
      4. while the cluster is unreachable (EUNREACH: the broker link is
         down) it retries with back-off for --hold ms before giving up, so
         that a broker restart does not dead-letter what is in flight.

    Never a requeue: a message that cannot be delivered goes to the
    dead-letter exchange once (SEED-SPEC.md W4). Acks name the connection
    they belong to; after a reconnect, RabbitMQ has requeued what was not
    acked and an old ack is dropped by the thread.

    With --seed-compat the actor also owns the seed side (bridge_seed.c):
    deliveries from seed queues become its tasks there, its daemon gossips
    once a second, and "seed_alias" / "seed_service" answer C actors.

    Out: the actions "publish" and "subscribe" / "unsubscribe" of the
    service (skick_amqp_publish in include/skick/amqp.h wraps publish).
    A publish waits for RabbitMQ's confirm; beyond --max-pending publishes
    queued or unconfirmed it fails at once with EBACKLOG, while RabbitMQ is
    unreachable at once with EUNREACH.
*/
#include "bridge.h"
#include "node_cluster.h"
#include "skick_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct br_op { /* a publish or subscription waiting for the thread */
    node_wait_t w;
    int err;
    char *text; /* owned: the thread's reason, or NULL */
} br_op_t;

typedef struct br_target { /* a subscription, as the shard knows it */
    char *queue;   /* owned */
    char *to;      /* owned: an address, or NULL */
    char *service; /* owned: a service name, or NULL */
} br_target_t;

typedef struct bridge {
    skick_actor_t *self;
    br_amqp_t *amqp;
    int efd;
    br_confirm_t *confirm;
    bool up;               /* connected to RabbitMQ, as far as the events said */
    uint64_t next_op;
    size_t pending;        /* publishes in the thread's hands */
    node_u64map_t ops;     /* op id -> br_op_t* (on the waiting task's stack) */
    node_u64map_t subs;    /* subscription id -> br_target_t* */
    br_seed_t *seed;       /* --seed-compat (bridge_seed.c), or NULL */
    br_stats_t st;
} bridge_t;

static bridge_t *s_of(skick_actor_t *self)
{
    return skick_state(self);
}

static int64_t s_timeout(skick_actor_t *self)
{
    return self->shard->cfg.call_timeout_ms;
}

/* ------------------------------------------------------------------------- */
/* Waiting for the thread                                                     */

static uint64_t s_op_begin(bridge_t *b, br_op_t *op)
{
    *op = (br_op_t){0};
    node_wait_init(&op->w);
    uint64_t id = ++b->next_op;
    node_u64map_put(&b->ops, id, op);
    return id;
}

static int s_op_wait(bridge_t *b, uint64_t id, br_op_t *op, int64_t timeout_ms)
{
    int rc = node_wait(&op->w, timeout_ms);
    node_u64map_del(&b->ops, id);
    return rc == SKICK_OK ? op->err : rc;
}

static void s_op_done(bridge_t *b, const br_event_t *e)
{
    br_op_t *op = node_u64map_del(&b->ops, e->id);
    if (!op)
        return; /* its waiter gave up */
    op->err = e->err;
    op->text = e->text ? node_strdup(e->text) : NULL;
    node_wait_complete(&op->w, SKICK_OK);
}

/*  Publish and wait for the confirm: 0 or the error. body is taken. */
static int s_publish(skick_actor_t *self, const char *exchange, const char *routing_key,
                     const char *correlation_id, const char *content_type, char *body,
                     size_t len, json_object **headers, bool persistent)
{
    bridge_t *b = s_of(self);
    int err = !b->up                        ? SKICK_EUNREACH
              : b->pending >= br_cfg.max_pending ? SKICK_EBACKLOG
                                                 : 0;
    if (err) {
        b->st.publish_failed++;
        b->st.backlog += err == SKICK_EBACKLOG;
        free(body);
        json_object_put(headers ? *headers : NULL);
        if (headers)
            *headers = NULL;
        return err;
    }
    br_op_t op;
    br_cmd_t *c = node_calloc(1, sizeof *c);
    c->kind = BR_CMD_PUBLISH;
    c->id = s_op_begin(b, &op);
    c->exchange = node_strdup(exchange);
    c->routing_key = node_strdup(routing_key);
    c->correlation_id = correlation_id ? node_strdup(correlation_id) : NULL;
    c->content_type = content_type ? node_strdup(content_type) : NULL;
    c->body = body;
    c->len = len;
    if (headers) {
        c->headers = *headers;
        *headers = NULL;
    }
    c->persistent = persistent;
    uint64_t id = c->id;
    b->pending++;
    br_amqp_post(b->amqp, c); /* c is the thread's now */
    err = s_op_wait(b, id, &op, s_timeout(self));
    free(op.text);
    if (err)
        b->st.publish_failed++;
    else
        b->st.published++;
    return err;
}

/* ------------------------------------------------------------------------- */
/* Deliveries                                                                 */

static void s_settle(bridge_t *b, const br_event_t *e, bool ack)
{
    br_amqp_settle(b->amqp, e, ack);
}

static json_object *s_error_body(int err, const char *why)
{
    json_object *o = json_object_new_object(), *in = json_object_new_object();
    json_object_object_add(in, "code", json_object_new_string(skick_err_name(err)));
    json_object_object_add(in, "message", json_object_new_string(why ? why : skick_strerror(err)));
    json_object_object_add(o, "error", in);
    return o;
}

/*  Publish the answer (taken; err != 0: an error body instead) to the
    request's reply_to. 0 or the publish's error. */
static int s_answer(skick_actor_t *self, const br_event_t *e, json_object **answer, int err,
                    const char *why)
{
    json_object *body = err ? s_error_body(err, why) : *answer;
    *answer = NULL;
    if (!body)
        body = json_object_new_null();
    json_object *headers = NULL;
    if (err) {
        headers = json_object_new_object();
        json_object_object_add(headers, "x-skick-error",
                               json_object_new_string(skick_err_name(err)));
    }
    size_t len;
    const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
    char *copy = node_malloc(len + 1);
    memcpy(copy, text, len + 1);
    json_object_put(body);
    return s_publish(self, "", e->reply_to, e->correlation_id, "application/json", copy, len,
                     headers ? &headers : NULL, false);
}

/*  The body as an actor message, or an error (why says what was wrong). */
static int s_parse(const br_event_t *e, json_object **out, const char **why)
{
    *out = NULL;
    if (e->too_big) {
        *why = "body larger than --max-message";
        return SKICK_ETOOBIG;
    }
    json_object *v = NULL;
    if (skick_json_parse_strict(e->body, e->len, &v) != 0) {
        *why = "body is not JSON";
        return SKICK_EFORMAT;
    }
    json_object *a;
    if (!json_object_is_type(v, json_type_object)) {
        *why = "body is not a JSON object";
    } else if (!json_object_object_get_ex(v, "action", &a) ||
               !json_object_is_type(a, json_type_string)) {
        *why = "body has no string \"action\"";
    } else {
        *out = v;
        return 0;
    }
    json_object_put(v);
    return SKICK_EFORMAT;
}

/*  The target's address into addr: 0 or the error. */
static int s_target(skick_actor_t *self, const br_event_t *e, char addr[SKICK_ADDR_LEN + 1],
                    const char **why)
{
    bridge_t *b = s_of(self);
    const char *to = NULL, *service = NULL;
    if (e->id) {
        br_target_t *t = node_u64map_get(&b->subs, e->id);
        if (!t) {
            *why = "the subscription has ended";
            return SKICK_ENOTFOUND;
        }
        to = t->to;
        service = t->service;
    } else if (strncmp(e->routing_key, "actor.", 6) == 0) {
        to = e->routing_key + 6;
    } else if (strncmp(e->routing_key, "service.", 8) == 0) {
        service = e->routing_key + 8;
    } else {
        *why = "routing key is neither actor.<address> nor service.<name>";
        return SKICK_EINVAL;
    }
    if (to) {
        node_ref_t ref;
        if (node_parse_addr(to, &ref) != 0) {
            *why = "not an actor address (SHARD:ACTOR, 16 hex digits each)";
            return SKICK_EINVAL;
        }
        snprintf(addr, SKICK_ADDR_LEN + 1, "%s", to);
        return 0;
    }
    skick_addr_t a = skick_get_service(self, service, SKICK_MIXED);
    if (!a.str[0]) {
        *why = "no provider of the service";
        /* a cluster we cannot see may have one: worth waiting for */
        return self->shard->cluster && !node_cluster_connected(self->shard) ? SKICK_EUNREACH
                                                                            : SKICK_ENOTFOUND;
    }
    memcpy(addr, a.str, SKICK_ADDR_LEN + 1);
    return 0;
}

/*  Whether an error means the message never reached an actor. */
static bool s_undelivered(int err)
{
    return err == SKICK_EDEAD || err == SKICK_EFULL || err == SKICK_EUNREACH ||
           err == SKICK_ENOTFOUND || err == SKICK_EINVAL;
}

static bool s_target_rejoining(skick_actor_t *self, const char *addr)
{
    node_ref_t ref;
    return node_parse_addr(addr, &ref) == 0 && ref.shard != self->shard->id &&
           node_cluster_rejoining(self->shard, ref.shard);
}

/*  Deliver msg (borrowed) to the target, retrying while the cluster is
    unreachable, up to --hold, and while the target's mailbox is full, up
    to BR_FULL_RETRY_MS: a burst (up to --prefetch deliveries in flight to
    one actor) waits in RabbitMQ's queue rather than being dead-lettered,
    an actor that stays full is dead-lettered after that. *reply gets the
    answer of a request. */
static int s_attempt(skick_actor_t *self, const br_event_t *e, json_object *msg,
                     json_object **reply, const char **why)
{
    bridge_t *b = s_of(self);
    int64_t start = skick_now(self), until = start + br_cfg.hold_ms, pause = 100, full = 10;
    for (;;) {
        char addr[SKICK_ADDR_LEN + 1] = "";
        int err = s_target(self, e, addr, why);
        if (!err) {
            json_object *m = json_object_get(msg);
            if (e->reply_to) {
                *reply = skick_call(self, addr, &m, SKICK_TIMEOUT_DEFAULT);
                err = *reply ? 0 : skick_errno();
            } else {
                err = br_confirm_send(b->confirm, self, addr, &m, s_timeout(self));
            }
            *why = err ? skick_strerror(err) : NULL;
        }
        if (err == SKICK_EFULL && skick_now(self) - start < BR_FULL_RETRY_MS) {
            if (skick_sleep(self, full) != 0)
                return SKICK_ESTOPPED;
            full = full * 2 > 200 ? 200 : full * 2;
            continue;
        }
        /* Worth waiting for: the cluster unreachable, or the target's
           shard known from before a broker restart and not back yet. */
        bool later = err == SKICK_EUNREACH ||
                     (err == SKICK_EDEAD && s_target_rejoining(self, addr));
        if (!later || skick_now(self) >= until)
            return err;
        if (skick_sleep(self, pause) != 0)
            return SKICK_ESTOPPED;
        pause = pause * 2 > 2000 ? 2000 : pause * 2;
    }
}

static void s_count_reject(bridge_t *b, int err)
{
    if (err == SKICK_ETIMEDOUT)
        b->st.unconfirmed++;
    else
        b->st.undeliverable++;
}

static void s_handle(skick_actor_t *self, br_event_t *e)
{
    bridge_t *b = s_of(self);
    b->st.received++;
    b->st.redelivered += e->redelivered;
    json_object *msg = NULL, *reply = NULL;
    const char *why = NULL;
    int err = s_parse(e, &msg, &why);
    if (err) {
        b->st.bad++;
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "amqp", "rejected a message (routing key %.80s, "
                         "%zu bytes): %s", e->routing_key, e->len, why);
        if (e->reply_to)
            s_answer(self, e, &reply, err, why);
        s_settle(b, e, false);
        return;
    }
    err = s_attempt(self, e, msg, &reply, &why);
    json_object_put(msg);
    if (err == SKICK_ESTOPPED) { /* no ack: RabbitMQ requeues it when we close */
        json_object_put(reply);
        return;
    }
    bool reached = !err || !s_undelivered(err);
    if (!reached || (err && !e->reply_to)) {
        s_count_reject(b, err);
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "amqp", "dead-lettered a message for %.80s: %s (%s)",
                         e->routing_key, skick_err_name(err), why ? why : "");
    }
    if (!e->reply_to) {
        b->st.delivered += !err;
        s_settle(b, e, !err);
        return;
    }
    /* A request: answered, with an error body if need be, whether or not
       it reached an actor; acked once the answer is confirmed. */
    int perr = s_answer(self, e, &reply, err, why);
    if (perr) {
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "amqp", "could not publish the answer to %.80s: %s",
                         e->reply_to, skick_err_name(perr));
        s_settle(b, e, false);
        return;
    }
    if (reached) {
        b->st.rpc++;
        b->st.rpc_errors += err != 0;
    }
    s_settle(b, e, reached);
}

static void s_delivery_task(node_exec_t *exec, void *arg)
{
    br_event_t *e = arg;
    if (!exec->cancelled)
        s_handle(exec->actor, e);
    br_event_free(e);
}

static void s_seed_task(node_exec_t *exec, void *arg)
{
    br_event_t *e = arg;
    bridge_t *b = s_of(exec->actor);
    if (!exec->cancelled && b->seed) /* else no ack: RabbitMQ requeues it when we close */
        br_seed_delivery(b->seed, e);
    br_event_free(e);
}

/*  The AMQP thread has news (on the loop, not in the actor's context). */
static void s_on_events(node_shard_t *sh, int fd, void *arg)
{
    bridge_t *b = arg;
    br_event_t *list = br_amqp_take(b->amqp);
    while (list) {
        br_event_t *e = list;
        list = e->next;
        switch (e->kind) {
        case BR_EV_DELIVERY:
            node_task_post(sh, b->self, NODE_EXEC_TASK,
                           e->consumer == BR_CONSUMER_SEED ? s_seed_task : s_delivery_task, e);
            continue; /* the task frees it */
        case BR_EV_CONFIRM:
        case BR_EV_SUBSCRIBED:
            if (e->id & BR_SEED_ID_BIT) {
                if (b->seed)
                    br_seed_event(b->seed, e);
                break;
            }
            if (e->kind == BR_EV_SUBSCRIBED) {
                s_op_done(b, e);
                break;
            }
            if (b->pending)
                b->pending--;
            s_op_done(b, e);
            break;
        case BR_EV_UP:
        case BR_EV_DOWN:
            b->up = e->kind == BR_EV_UP;
            b->st.connects += b->up;
            if (b->seed)
                br_seed_link(b->seed, b->up);
            break;
        }
        br_event_free(e);
    }
}

/* ------------------------------------------------------------------------- */
/* The service's actions                                                      */

static void s_reply_error(skick_actor_t *self, json_object *msg, int err, const char *why)
{
    json_object *r = s_error_body(err, why);
    skick_reply(self, msg, &r);
}

static void s_reply_ok(skick_actor_t *self, json_object *msg, json_object *extra)
{
    json_object *r = extra ? extra : json_object_new_object();
    json_object_object_add(r, "ok", json_object_new_boolean(1));
    skick_reply(self, msg, &r);
}

static const char s_publish_schema[] =
    "{\"exchange\": \"string\", \"routing_key\": \"string\", \"body\": \"any\","
    " \"headers?\": \"object\", \"correlation_id?\": \"string\"}";

static void s_on_publish(skick_actor_t *self, json_object *msg)
{
    json_object *body = json_object_object_get(msg, "body");
    const char *ctype = "application/json";
    size_t len;
    const char *text;
    if (json_object_is_type(body, json_type_string)) { /* raw text, as it is */
        text = json_object_get_string(body);
        len = (size_t) json_object_get_string_len(body);
        ctype = "text/plain";
    } else {
        text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
    }
    if (len > br_cfg.max_message) {
        s_reply_error(self, msg, SKICK_ETOOBIG, "body larger than the bridge's --max-message");
        return;
    }
    char *copy = node_malloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    json_object *headers = json_object_object_get(msg, "headers");
    headers = headers ? json_object_get(headers) : NULL;
    int err = s_publish(self, skick_get_string(msg, "exchange", ""),
                        skick_get_string(msg, "routing_key", ""),
                        skick_get_string(msg, "correlation_id", NULL), ctype, copy, len,
                        headers ? &headers : NULL, true);
    if (err)
        s_reply_error(self, msg, err, NULL);
    else
        s_reply_ok(self, msg, NULL);
}

static const char s_subscribe_schema[] =
    "{\"queue\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 255},"
    " \"bindings?\": {\"type\": \"array\", \"maxItems\": 32, \"items\": {\"type\": \"object\","
    " \"required\": [\"exchange\", \"routing_key\"], \"properties\": {\"exchange\":"
    " {\"type\": \"string\"}, \"routing_key\": {\"type\": \"string\"}}}},"
    " \"to?\": \"string\", \"service?\": \"string\"}";

static void s_target_free(br_target_t *t)
{
    if (!t)
        return;
    free(t->queue);
    free(t->to);
    free(t->service);
    free(t);
}

static void s_on_subscribe(skick_actor_t *self, json_object *msg)
{
    bridge_t *b = s_of(self);
    const char *to = skick_get_string(msg, "to", NULL);
    const char *service = skick_get_string(msg, "service", NULL);
    node_ref_t ref;
    if (to && service) {
        s_reply_error(self, msg, SKICK_EINVAL, "give \"to\" or \"service\", not both");
        return;
    }
    if (!to && !service)
        to = skick_sender(self);
    if (to && node_parse_addr(to, &ref) != 0) {
        s_reply_error(self, msg, SKICK_EINVAL, "\"to\" is not an actor address");
        return;
    }
    if (!b->up) {
        s_reply_error(self, msg, SKICK_EUNREACH, "RabbitMQ is unreachable");
        return;
    }
    br_target_t *t = node_calloc(1, sizeof *t);
    t->queue = node_strdup(skick_get_string(msg, "queue", ""));
    t->to = to ? node_strdup(to) : NULL;
    t->service = service ? node_strdup(service) : NULL;
    br_op_t op;
    br_cmd_t *c = node_calloc(1, sizeof *c);
    c->kind = BR_CMD_SUBSCRIBE;
    c->id = s_op_begin(b, &op);
    uint64_t id = c->id;
    c->routing_key = node_strdup(t->queue);
    json_object *bindings = json_object_object_get(msg, "bindings");
    c->headers = bindings ? json_object_get(bindings) : NULL;
    node_u64map_put(&b->subs, id, t); /* deliveries may come before the answer */
    br_amqp_post(b->amqp, c);
    int err = s_op_wait(b, id, &op, s_timeout(self));
    if (err) {
        s_target_free(node_u64map_del(&b->subs, id));
        s_reply_error(self, msg, err, op.text);
        if (err == SKICK_ETIMEDOUT) { /* it may yet be set up: undo it */
            br_cmd_t *u = node_calloc(1, sizeof *u);
            u->kind = BR_CMD_UNSUBSCRIBE;
            u->id = id;
            br_amqp_post(b->amqp, u);
        }
    } else {
        /* an actor's subscription ends with the actor (its sentinel, below):
           its messages would only be dead-lettered from then on */
        if (t->to && skick_monitor(self, t->to) != 0)
            NODE_LOG_LIMITED(SKICK_LOG_WARNING, "amqp", "subscription %llu: cannot watch %s "
                             "(%s): it is not dropped when the actor ends",
                             (unsigned long long) id, t->to, skick_strerror(skick_errno()));
        json_object *r = json_object_new_object();
        json_object_object_add(r, "subscription", json_object_new_int64((int64_t) id));
        s_reply_ok(self, msg, r);
    }
    free(op.text);
}

/*  An actor we watch ended: drop the subscriptions delivering to it (the
    queue stays in RabbitMQ, its consumer goes). */
static void s_on_sentinel(skick_actor_t *self, json_object *msg)
{
    bridge_t *b = s_of(self);
    const char *gone = skick_get_string(msg, "address", "");
    size_t n = 0;
    uint64_t *ids = node_calloc(b->subs.count + 1, sizeof *ids);
    for (size_t i = 0; i < b->subs.cap; i++) { /* collected first: deleting moves entries */
        const br_target_t *t = b->subs.keys[i] ? b->subs.vals[i] : NULL;
        if (t && t->to && strcmp(t->to, gone) == 0)
            ids[n++] = b->subs.keys[i];
    }
    for (size_t k = 0; k < n; k++) {
        br_target_t *t = node_u64map_del(&b->subs, ids[k]);
        SKICK_LOG(SKICK_LOG_NOTICE, "amqp", "subscription %llu to queue %.200s dropped: %s "
                  "ended (%.20s)", (unsigned long long) ids[k], t->queue, gone,
                  skick_get_string(msg, "type", "?"));
        s_target_free(t);
        br_cmd_t *c = node_calloc(1, sizeof *c);
        c->kind = BR_CMD_UNSUBSCRIBE;
        c->id = ids[k];
        br_amqp_post(b->amqp, c);
    }
    free(ids);
}

static void s_on_unsubscribe(skick_actor_t *self, json_object *msg)
{
    bridge_t *b = s_of(self);
    uint64_t id = (uint64_t) skick_get_int(msg, "subscription", 0);
    br_target_t *t = node_u64map_del(&b->subs, id);
    if (!t) {
        s_reply_error(self, msg, SKICK_ENOTFOUND, "no such subscription");
        return;
    }
    s_target_free(t);
    br_cmd_t *c = node_calloc(1, sizeof *c);
    c->kind = BR_CMD_UNSUBSCRIBE;
    c->id = id;
    br_amqp_post(b->amqp, c);
    s_reply_ok(self, msg, NULL);
}

static void s_on_stats(skick_actor_t *self, json_object *msg)
{
    bridge_t *b = s_of(self);
    const br_stats_t *s = &b->st;
    json_object *r = json_object_new_object();
#define BR_STAT(name) json_object_object_add(r, #name, json_object_new_int64((int64_t) s->name))
    BR_STAT(received);
    BR_STAT(redelivered);
    BR_STAT(delivered);
    BR_STAT(rpc);
    BR_STAT(rpc_errors);
    BR_STAT(bad);
    BR_STAT(undeliverable);
    BR_STAT(unconfirmed);
    BR_STAT(published);
    BR_STAT(publish_failed);
    BR_STAT(backlog);
    BR_STAT(connects);
#undef BR_STAT
    json_object_object_add(r, "connected", json_object_new_boolean(b->up));
    json_object_object_add(r, "pending", json_object_new_int64((int64_t) b->pending));
    json_object_object_add(r, "subscriptions", json_object_new_int64((int64_t) b->subs.count));
    if (b->seed)
        br_seed_stats(b->seed, r);
    skick_reply(self, msg, &r);
}

/* ------------------------------------------------------------------------- */
/* The actor                                                                  */

static bool s_intercept(skick_actor_t *a, node_ref_t from, const char *action, json_object **body)
{
    bridge_t *b = s_of(a);
    if (!b || strcmp(action, "synced") != 0)
        return false;
    return br_confirm_synced(b->confirm, from, body);
}

static void s_undelivered_hook(skick_actor_t *a, node_ref_t to, const char *action,
                               const char *cid, int err)
{
    bridge_t *b = s_of(a);
    if (b)
        br_confirm_undelivered(b->confirm, to, action, cid, err);
}

static const node_actor_kind_t s_kind = {
    .name = "amqp-bridge",
    .intercept = s_intercept,
    .undelivered = s_undelivered_hook,
};

static void s_free(void *state)
{
    bridge_t *b = state;
    br_metrics_detach();
    br_seed_free(&b->seed);
    br_amqp_stop(&b->amqp); /* normally on_stop did */
    br_confirm_free(&b->confirm);
    for (size_t i = 0; i < b->subs.cap; i++)
        if (b->subs.keys[i])
            s_target_free(b->subs.vals[i]);
    node_u64map_free(&b->subs);
    node_u64map_free(&b->ops);
}

static void s_gauges(void *arg, br_gauges_t *out)
{
    const bridge_t *b = arg;
    *out = (br_gauges_t){.connected = b->up, .pending = b->pending,
                         .subscriptions = b->subs.count};
}

static void s_on_start(skick_actor_t *self)
{
    bridge_t *b = s_of(self);
    b->amqp = br_amqp_start(&br_cfg, &b->efd);
    if (!b->amqp) {
        self->shard->exit_status = 1;
        node_shard_stop(self->shard);
        return;
    }
    node_io_add(self->shard, b->efd, s_on_events, b);
    br_metrics_attach(self->shard, &b->st, s_gauges, b);
    skick_register_service(self, br_cfg.service);
    if (br_cfg.seed_compat)
        b->seed = br_seed_new(self, b->amqp);
}

/*  --seed-compat: seed queues and gossip once a second (SEED-SPEC.md 6.4:
    the seed's broadcaster and whisperer run every second too). */
static void s_seed_daemon(skick_actor_t *self)
{
    while (skick_sleep(self, 1000) == 0) {
        bridge_t *b = s_of(self);
        if (b->seed)
            br_seed_tick(b->seed);
    }
}

static void s_on_stop(skick_actor_t *self)
{
    bridge_t *b = s_of(self);
    if (!b->amqp)
        return;
    node_io_remove(self->shard, b->efd);
    br_seed_free(&b->seed);
    br_amqp_stop(&b->amqp); /* unacked deliveries go back to their queues */
}

void br_actor(skick_actor_t *self, json_object *init)
{
    bridge_t *b = skick_state_new(self, sizeof *b, s_free);
    b->self = self;
    b->confirm = br_confirm_new(self->shard);
    node_u64map_init(&b->ops);
    node_u64map_init(&b->subs);
    node_extra(self)->kind = &s_kind;
    skick_on_start(self, s_on_start);
    skick_on_stop(self, s_on_stop);
    skick_conversation(self, "publish", s_publish_schema, s_on_publish);
    skick_conversation(self, "subscribe", s_subscribe_schema, s_on_subscribe);
    skick_action(self, "unsubscribe", "{\"subscription\": \"integer\"}", s_on_unsubscribe);
    skick_action(self, "stats", NULL, s_on_stats);
    skick_default_sentinel(self, s_on_sentinel);
    skick_conversation(self, "seed_alias", "{\"address\": \"string\"}", br_seed_on_alias);
    skick_conversation(self, "seed_service", "{\"name\": \"string\"}", br_seed_on_service);
    if (br_cfg.seed_compat)
        skick_daemon(self, "seed-gossip", s_seed_daemon, SKICK_DETACHED, NULL);
}

void br_shard_start(skick_actor_t *shard)
{
    /* Up to --prefetch deliveries wait at once, each on a fiber: keep that
       many parked rather than unmap and map their stacks again (an unmap
       is a TLB shootdown on every core). */
    node_shard_t *sh = shard->shard;
    uint32_t want = (uint32_t) br_cfg.prefetch + 32;
    if (sh->cfg.idle_fibers < want)
        sh->cfg.idle_fibers = want;
    skick_addr_t a = skick_spawn(shard, BR_ACTOR_TYPE, NULL, SKICK_LOCAL | SKICK_NO_MONITOR);
    if (!a.str[0])
        skick_fail(shard, "cannot spawn the bridge actor: %s", skick_strerror(skick_errno()));
}
