/*  bridge_amqp - the AMQP thread: one rabbitmq-c connection, never on the reactor

    rabbitmq-c does blocking I/O, so the connection lives on a thread of its
    own and the shard talks to it through two lists (bridge.h). The thread's
    loop: read every frame that is there (deliveries, publisher confirms,
    closes), then run the commands the shard posted, then poll the socket
    and the command eventfd for at most a second (rabbitmq-c sends and
    checks heartbeats inside its read calls, so a quiet connection is read
    at least that often).

    Channels: 1 consumes (the bridge's queue and the subscriptions) and
    carries their acks and rejects, under basic.qos --prefetch per
    consumer; 2 publishes, in confirm mode (confirm.select: delivery tags
    1, 2, ... in publish order, acked or nacked, possibly several at once);
    3 declares subscription queues, so that a refused declaration (a queue
    that exists with other arguments closes its channel) does not take the
    consumers down.

    Faults: any error on the connection (a socket error, a missed
    heartbeat, a channel or connection closed by the server) drops the
    whole connection: the unconfirmed publishes fail at once with EUNREACH
    (BR_EV_CONFIRM), the shard hears BR_EV_DOWN, and the deliveries not yet
    acked go back to their queues (RabbitMQ redelivers them, flagged
    redelivered); an ack for them that comes later names the old
    generation and is dropped. The thread reconnects with back-off (100 ms
    doubling to 5 s), logging the outage once and the recovery once, and
    re-declares everything, subscriptions included. While it is down a
    publish fails at once (EUNREACH), never waits.
*/
#include "bridge.h"
#include "skick_clock.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define BR_CH_CONSUME 1
#define BR_CH_PUBLISH 2
#define BR_CH_DECLARE 3
#define BR_BACKOFF_MIN_MS 100
#define BR_BACKOFF_MAX_MS 5000
#define BR_SUB_TAG "skick.sub."   /* consumer tags: a subscription's, */
#define BR_SEED_TAG "skick.seed." /* a seed shard queue's */

typedef struct br_unconfirmed {
    struct br_unconfirmed *next;
    uint64_t seq; /* delivery tag of the publish on channel 2 */
    uint64_t id;  /* the shard's publish id */
} br_unconfirmed_t;

typedef struct br_sub {
    struct br_sub *next;
    uint64_t id;
    bool seed;            /* a seed shard's queue: auto-delete, tag skick.seed.<id> */
    char *queue;          /* owned */
    json_object *bindings; /* owned: [{"exchange","routing_key"}] */
} br_sub_t;

struct br_amqp {
    const br_config_t *cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    br_cmd_t *cmd_head, *cmd_tail;   /* under mu */
    br_event_t *ev_head, *ev_tail;   /* under mu */
    bool stop;                       /* under mu */
    int cmd_fd;                      /* the thread polls it */
    int ev_fd;                       /* the shard polls it */
    /* the thread's own */
    char *url;                       /* parsed copy (amqp_parse_url writes into it) */
    struct amqp_connection_info info;
    amqp_connection_state_t conn;    /* NULL while disconnected */
    uint64_t gen;                    /* connections made so far */
    uint64_t seq;                    /* publishes on this connection */
    br_unconfirmed_t *unc_head, *unc_tail;
    br_sub_t *subs;
    char why[512];                   /* the last connection error */
};

/* ------------------------------------------------------------------------- */
/* The lists                                                                  */

static void s_kick(int fd)
{
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    (void) n; /* a full counter still wakes the reader */
}

static void s_drain(int fd)
{
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof v);
    (void) n;
}

void br_cmd_free(br_cmd_t *c)
{
    if (!c)
        return;
    free(c->exchange);
    free(c->routing_key);
    free(c->correlation_id);
    free(c->content_type);
    free(c->body);
    json_object_put(c->headers);
    free(c);
}

void br_event_free(br_event_t *e)
{
    if (!e)
        return;
    free(e->exchange);
    free(e->routing_key);
    free(e->reply_to);
    free(e->correlation_id);
    free(e->body);
    free(e->text);
    free(e);
}

/*  Both lists wake their reader only when they go from empty to not empty:
    the reader reads the eventfd before it takes the whole list, so what is
    appended to a list that was not empty is taken with it, and one write
    per burst replaces one per item (a system call each, the bridge's main
    cost at high rates). */
void br_amqp_post(br_amqp_t *b, br_cmd_t *cmd)
{
    cmd->next = NULL;
    pthread_mutex_lock(&b->mu);
    bool was_empty = !b->cmd_head;
    if (b->cmd_tail)
        b->cmd_tail->next = cmd;
    else
        b->cmd_head = cmd;
    b->cmd_tail = cmd;
    pthread_mutex_unlock(&b->mu);
    if (was_empty)
        s_kick(b->cmd_fd);
}

void br_amqp_settle(br_amqp_t *b, const br_event_t *e, bool ack)
{
    br_cmd_t *c = node_calloc(1, sizeof *c);
    c->kind = ack ? BR_CMD_ACK : BR_CMD_REJECT;
    c->gen = e->gen;
    c->tag = e->tag;
    br_amqp_post(b, c);
}

static void s_event(br_amqp_t *b, br_event_t *e)
{
    e->next = NULL;
    pthread_mutex_lock(&b->mu);
    bool was_empty = !b->ev_head;
    if (b->ev_tail)
        b->ev_tail->next = e;
    else
        b->ev_head = e;
    b->ev_tail = e;
    pthread_mutex_unlock(&b->mu);
    if (was_empty)
        s_kick(b->ev_fd);
}

br_event_t *br_amqp_take(br_amqp_t *b)
{
    s_drain(b->ev_fd);
    pthread_mutex_lock(&b->mu);
    br_event_t *list = b->ev_head;
    b->ev_head = b->ev_tail = NULL;
    pthread_mutex_unlock(&b->mu);
    return list;
}

static br_cmd_t *s_take_cmds(br_amqp_t *b, bool *stop)
{
    s_drain(b->cmd_fd);
    pthread_mutex_lock(&b->mu);
    br_cmd_t *list = b->cmd_head;
    b->cmd_head = b->cmd_tail = NULL;
    *stop = b->stop;
    pthread_mutex_unlock(&b->mu);
    return list;
}

static void s_simple(br_amqp_t *b, br_event_kind_t kind, uint64_t id, int err, const char *text)
{
    br_event_t *e = node_calloc(1, sizeof *e);
    e->kind = kind;
    e->gen = b->gen;
    e->id = id;
    e->err = err;
    e->text = text ? node_strdup(text) : NULL;
    s_event(b, e);
}

/* ------------------------------------------------------------------------- */
/* Errors                                                                     */

static const char *s_reply_text(amqp_rpc_reply_t r, char *buf, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return "ok";
    case AMQP_RESPONSE_NONE:
        return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, len, "connection closed by the server: %u %.*s", m->reply_code,
                     (int) m->reply_text.len, (char *) m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, len, "channel closed by the server: %u %.*s", m->reply_code,
                     (int) m->reply_text.len, (char *) m->reply_text.bytes);
        } else {
            snprintf(buf, len, "server exception, method 0x%08x", r.reply.id);
        }
        return buf;
    }
    return "unknown reply";
}

/*  Whether the last RPC went well; if not, b->why says what (and what for). */
static bool s_ok(br_amqp_t *b, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    char buf[400];
    snprintf(b->why, sizeof b->why, "%s: %s", what, s_reply_text(r, buf, sizeof buf));
    return false;
}

/* ------------------------------------------------------------------------- */
/* Connecting and declaring                                                   */

static amqp_table_t s_dlx_args(br_amqp_t *b, amqp_table_entry_t *entry)
{
    entry->key = amqp_cstring_bytes("x-dead-letter-exchange");
    entry->value.kind = AMQP_FIELD_KIND_UTF8;
    entry->value.value.bytes = amqp_cstring_bytes(b->cfg->dlx);
    return (amqp_table_t){.num_entries = 1, .entries = entry};
}

/*  A queue whose rejects go to the dead-letter exchange: durable, or (a
    seed shard's, like the seed's own) transient and auto-delete. */
static bool s_declare_queue(br_amqp_t *b, int ch, const char *name, bool transient)
{
    amqp_table_entry_t entry;
    amqp_queue_declare(b->conn, ch, amqp_cstring_bytes(name), 0, !transient, 0, transient,
                       s_dlx_args(b, &entry));
    return s_ok(b, "queue.declare");
}

static bool s_bind(br_amqp_t *b, int ch, const char *queue, const char *exchange, const char *key)
{
    amqp_queue_bind(b->conn, ch, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes(key), amqp_empty_table);
    return s_ok(b, "queue.bind");
}

static bool s_consume(br_amqp_t *b, const char *queue, const char *tag)
{
    amqp_basic_consume(b->conn, BR_CH_CONSUME, amqp_cstring_bytes(queue), amqp_cstring_bytes(tag),
                       0, 0, 0, amqp_empty_table);
    return s_ok(b, "basic.consume");
}

static bool s_declare_exchange(br_amqp_t *b, const char *name, const char *type)
{
    amqp_exchange_declare(b->conn, BR_CH_CONSUME, amqp_cstring_bytes(name),
                          amqp_cstring_bytes(type), 0, 0, 0, 0, amqp_empty_table);
    return s_ok(b, "exchange.declare (seed)");
}

/*  After a refused declaration the server closed channel 3: close-ok, reopen. */
static bool s_reopen_declare(br_amqp_t *b)
{
    amqp_channel_close_ok_t ok = {0};
    amqp_send_method(b->conn, BR_CH_DECLARE, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    amqp_channel_open(b->conn, BR_CH_DECLARE);
    return s_ok(b, "channel.open");
}

/*  Declare, bind and consume subscription s. 0; 1 when RabbitMQ refused it
    (text in b->why; the connection is fine); -1 when the connection failed. */
static int s_sub_setup(br_amqp_t *b, const br_sub_t *s)
{
    char tag[64];
    snprintf(tag, sizeof tag, "%s%llu", s->seed ? BR_SEED_TAG : BR_SUB_TAG,
             (unsigned long long) s->id);
    bool ok = s_declare_queue(b, BR_CH_DECLARE, s->queue, s->seed);
    for (size_t i = 0; ok && i < json_object_array_length(s->bindings); i++) {
        json_object *bd = json_object_array_get_idx(s->bindings, i);
        ok = s_bind(b, BR_CH_DECLARE, s->queue, skick_get_string(bd, "exchange", ""),
                    skick_get_string(bd, "routing_key", ""));
    }
    if (!ok) {
        amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            char keep[sizeof b->why];
            memcpy(keep, b->why, sizeof keep);
            if (!s_reopen_declare(b))
                return -1;
            memcpy(b->why, keep, sizeof keep);
            return 1;
        }
        return -1;
    }
    return s_consume(b, s->queue, tag) ? 0 : -1;
}

static void s_close_conn(br_amqp_t *b, bool polite)
{
    if (!b->conn)
        return;
    if (polite)
        amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(b->conn);
    b->conn = NULL;
}

static int s_connect(br_amqp_t *b)
{
    const br_config_t *cfg = b->cfg;
    struct amqp_connection_info *in = &b->info;
    b->conn = amqp_new_connection();
    amqp_socket_t *sock = in->ssl ? amqp_ssl_socket_new(b->conn) : amqp_tcp_socket_new(b->conn);
    if (!sock) {
        snprintf(b->why, sizeof b->why, "cannot make a%s socket", in->ssl ? " TLS" : "");
        s_close_conn(b, false);
        return -1;
    }
    if (in->ssl) {
        amqp_ssl_socket_set_verify_peer(sock, 1);
        amqp_ssl_socket_set_verify_hostname(sock, 1);
        if (cfg->cacert && amqp_ssl_socket_set_cacert(sock, cfg->cacert) != AMQP_STATUS_OK) {
            snprintf(b->why, sizeof b->why, "cannot read the CA file %s", cfg->cacert);
            s_close_conn(b, false);
            return -1;
        }
    }
    struct timeval tv = {.tv_sec = 5};
    int rc = amqp_socket_open_noblock(sock, in->host, in->port, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(b->why, sizeof b->why, "%s:%d: %s", in->host, in->port, amqp_error_string2(rc));
        s_close_conn(b, false);
        return -1;
    }
    struct timeval rpc = {.tv_sec = 10}; /* a hung server fails the RPC instead of the thread */
    amqp_set_rpc_timeout(b->conn, &rpc);
    amqp_rpc_reply_t r = amqp_login(b->conn, in->vhost, 0, 131072, cfg->heartbeat_s,
                                    AMQP_SASL_METHOD_PLAIN, in->user, in->password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char buf[400];
        snprintf(b->why, sizeof b->why, "login as %s: %s", in->user,
                 s_reply_text(r, buf, sizeof buf));
        s_close_conn(b, false);
        return -1;
    }
    bool ok = true;
    for (int ch = BR_CH_CONSUME; ok && ch <= BR_CH_DECLARE; ch++) {
        amqp_channel_open(b->conn, ch);
        ok = s_ok(b, "channel.open");
    }
    if (ok) {
        amqp_basic_qos(b->conn, BR_CH_CONSUME, 0, cfg->prefetch, 0);
        ok = s_ok(b, "basic.qos");
    }
    if (ok) {
        amqp_confirm_select(b->conn, BR_CH_PUBLISH);
        ok = s_ok(b, "confirm.select");
    }
    if (ok) {
        amqp_exchange_declare(b->conn, BR_CH_CONSUME, amqp_cstring_bytes(cfg->exchange),
                              amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
        ok = s_ok(b, "exchange.declare");
    }
    if (ok) {
        amqp_exchange_declare(b->conn, BR_CH_CONSUME, amqp_cstring_bytes(cfg->dlx),
                              amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
        ok = s_ok(b, "exchange.declare (dead letters)");
    }
    if (ok) { /* the dead letters' own queue, so that they are kept, not dropped */
        amqp_queue_declare(b->conn, BR_CH_CONSUME, amqp_cstring_bytes(cfg->dlx), 0, 1, 0, 0,
                           amqp_empty_table);
        ok = s_ok(b, "queue.declare (dead letters)") &&
             s_bind(b, BR_CH_CONSUME, cfg->dlx, cfg->dlx, "#");
    }
    if (ok && cfg->seed_compat) /* as aio-pika declares them: not durable, not auto-delete */
        ok = s_declare_exchange(b, BR_SEED_ACTOR_EXCHANGE, "direct") &&
             s_declare_exchange(b, BR_SEED_BROADCAST_EXCHANGE, "fanout");
    ok = ok && s_declare_queue(b, BR_CH_CONSUME, cfg->queue, false) &&
         s_bind(b, BR_CH_CONSUME, cfg->queue, cfg->exchange, "actor.#") &&
         s_bind(b, BR_CH_CONSUME, cfg->queue, cfg->exchange, "service.#") &&
         s_consume(b, cfg->queue, "skick.main");
    for (br_sub_t *s = b->subs; ok && s; s = s->next) {
        int src = s_sub_setup(b, s);
        if (src > 0)
            SKICK_LOG(SKICK_LOG_WARNING, "amqp", "subscription to queue %s refused: %s",
                      s->queue, b->why);
        ok = src >= 0;
    }
    if (!ok) {
        s_close_conn(b, false);
        return -1;
    }
    b->gen++;
    b->seq = 0;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Publishing                                                                 */

static void s_confirm(br_amqp_t *b, uint64_t tag, bool multiple, int err)
{
    br_unconfirmed_t **pp = &b->unc_head, *last = NULL;
    while (*pp) {
        br_unconfirmed_t *u = *pp;
        if (u->seq == tag || (multiple && u->seq < tag)) {
            s_simple(b, BR_EV_CONFIRM, u->id, err, NULL);
            *pp = u->next;
            free(u);
            continue;
        }
        if (u->seq > tag)
            break;
        last = u;
        pp = &u->next;
    }
    if (!*pp)
        b->unc_tail = last;
}

static void s_fail_unconfirmed(br_amqp_t *b, int err)
{
    while (b->unc_head) {
        br_unconfirmed_t *u = b->unc_head;
        b->unc_head = u->next;
        s_simple(b, BR_EV_CONFIRM, u->id, err, NULL);
        free(u);
    }
    b->unc_tail = NULL;
}

/*  The server closed the publishing channel: fail what it had not
    confirmed with err, open it again in confirm mode. 0 or -1. */
static int s_reopen_publish(br_amqp_t *b, int err)
{
    s_fail_unconfirmed(b, err);
    amqp_channel_close_ok_t ok = {0};
    if (amqp_send_method(b->conn, BR_CH_PUBLISH, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != 0)
        return -1;
    amqp_channel_open(b->conn, BR_CH_PUBLISH);
    if (!s_ok(b, "channel.open"))
        return -1;
    amqp_confirm_select(b->conn, BR_CH_PUBLISH);
    if (!s_ok(b, "confirm.select"))
        return -1;
    b->seq = 0;
    return 0;
}

/*  headers (a JSON object) as an AMQP table; entries point into headers. */
static amqp_table_t s_table(json_object *headers, amqp_table_entry_t *entries, int max)
{
    int n = 0;
    json_object_object_foreach(headers, key, val)
    {
        if (n == max)
            break;
        amqp_table_entry_t *t = &entries[n++];
        t->key = amqp_cstring_bytes(key);
        switch (json_object_get_type(val)) {
        case json_type_boolean:
            t->value.kind = AMQP_FIELD_KIND_BOOLEAN;
            t->value.value.boolean = json_object_get_boolean(val);
            break;
        case json_type_int:
            t->value.kind = AMQP_FIELD_KIND_I64;
            t->value.value.i64 = json_object_get_int64(val);
            break;
        case json_type_double:
            t->value.kind = AMQP_FIELD_KIND_F64;
            t->value.value.f64 = json_object_get_double(val);
            break;
        case json_type_string:
            t->value.kind = AMQP_FIELD_KIND_UTF8;
            t->value.value.bytes = amqp_cstring_bytes(json_object_get_string(val));
            break;
        default: /* null, objects, arrays: their JSON text */
            t->value.kind = AMQP_FIELD_KIND_UTF8;
            t->value.value.bytes =
                amqp_cstring_bytes(json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN));
            break;
        }
    }
    return (amqp_table_t){.num_entries = n, .entries = entries};
}

#define BR_MAX_HEADERS 64

static int s_publish(br_amqp_t *b, br_cmd_t *c)
{
    amqp_basic_properties_t p = {0};
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = c->persistent ? 2 : 1;
    if (c->content_type) {
        p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        p.content_type = amqp_cstring_bytes(c->content_type);
    }
    if (c->correlation_id) {
        p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        p.correlation_id = amqp_cstring_bytes(c->correlation_id);
    }
    amqp_table_entry_t entries[BR_MAX_HEADERS];
    if (c->headers && json_object_is_type(c->headers, json_type_object)) {
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers = s_table(c->headers, entries, BR_MAX_HEADERS);
    }
    amqp_bytes_t body = {.len = c->len, .bytes = c->body};
    int rc = amqp_basic_publish(b->conn, BR_CH_PUBLISH, amqp_cstring_bytes(c->exchange),
                                amqp_cstring_bytes(c->routing_key), 0, 0, &p, body);
    if (rc != AMQP_STATUS_OK) {
        snprintf(b->why, sizeof b->why, "basic.publish: %s", amqp_error_string2(rc));
        s_simple(b, BR_EV_CONFIRM, c->id, SKICK_EUNREACH, NULL);
        return -1;
    }
    br_unconfirmed_t *u = node_malloc(sizeof *u);
    *u = (br_unconfirmed_t){.seq = ++b->seq, .id = c->id};
    if (b->unc_tail)
        b->unc_tail->next = u;
    else
        b->unc_head = u;
    b->unc_tail = u;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Commands                                                                   */

static br_sub_t **s_sub_find(br_amqp_t *b, uint64_t id)
{
    br_sub_t **pp = &b->subs;
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    return pp;
}

static void s_sub_free(br_sub_t *s)
{
    free(s->queue);
    json_object_put(s->bindings);
    free(s);
}

/*  Run one command; -1 when the connection failed (b->why says why). */
static int s_run(br_amqp_t *b, br_cmd_t *c)
{
    int rc = 0;
    switch (c->kind) {
    case BR_CMD_ACK:
    case BR_CMD_REJECT:
        if (!b->conn || c->gen != b->gen)
            break; /* an older connection's delivery: RabbitMQ has requeued it */
        rc = c->kind == BR_CMD_ACK ? amqp_basic_ack(b->conn, BR_CH_CONSUME, c->tag, 0)
                                   : amqp_basic_reject(b->conn, BR_CH_CONSUME, c->tag, 0);
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->why, sizeof b->why, "basic.ack: %s", amqp_error_string2(rc));
            return -1;
        }
        break;
    case BR_CMD_PUBLISH:
        if (!b->conn) {
            s_simple(b, BR_EV_CONFIRM, c->id, SKICK_EUNREACH, NULL);
            break;
        }
        return s_publish(b, c);
    case BR_CMD_SUBSCRIBE: {
        if (!b->conn) {
            s_simple(b, BR_EV_SUBSCRIBED, c->id, SKICK_EUNREACH, "RabbitMQ is unreachable");
            break;
        }
        br_sub_t *s = node_calloc(1, sizeof *s);
        s->id = c->id;
        s->seed = c->seed;
        s->queue = c->routing_key;
        c->routing_key = NULL;
        s->bindings = c->headers ? c->headers : json_object_new_array();
        c->headers = NULL;
        int src = s_sub_setup(b, s);
        if (src != 0) {
            s_simple(b, BR_EV_SUBSCRIBED, s->id, src > 0 ? SKICK_EINVAL : SKICK_EUNREACH,
                     b->why);
            s_sub_free(s);
            return src < 0 ? -1 : 0;
        }
        s->next = b->subs;
        b->subs = s;
        s_simple(b, BR_EV_SUBSCRIBED, s->id, 0, NULL);
        break;
    }
    case BR_CMD_UNSUBSCRIBE: {
        br_sub_t **pp = s_sub_find(b, c->id);
        if (!*pp)
            break;
        br_sub_t *s = *pp;
        *pp = s->next;
        s_sub_free(s);
        if (b->conn) {
            char tag[64];
            snprintf(tag, sizeof tag, "%s%llu", c->seed ? BR_SEED_TAG : BR_SUB_TAG,
                     (unsigned long long) c->id);
            amqp_basic_cancel(b->conn, BR_CH_CONSUME, amqp_cstring_bytes(tag));
            if (!s_ok(b, "basic.cancel"))
                return -1;
        }
        break;
    }
    }
    return 0;
}

/*  Run every command in list (taken); -1 when the connection failed
    (those after the failing one run as if disconnected). */
static int s_run_all(br_amqp_t *b, br_cmd_t *list)
{
    int rc = 0;
    while (list) {
        br_cmd_t *c = list;
        list = c->next;
        if (s_run(b, c) != 0 && rc == 0) {
            rc = -1;
            s_close_conn(b, false);
        }
        br_cmd_free(c);
    }
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Frames                                                                     */

static char *s_dup_bytes(amqp_bytes_t bytes)
{
    char *s = node_malloc(bytes.len + 1);
    if (bytes.len)
        memcpy(s, bytes.bytes, bytes.len);
    s[bytes.len] = '\0';
    return s;
}

static int s_delivery(br_amqp_t *b, const amqp_frame_t *f)
{
    const amqp_basic_deliver_t *d = f->payload.method.decoded;
    br_event_t *e = node_calloc(1, sizeof *e);
    e->kind = BR_EV_DELIVERY;
    e->gen = b->gen;
    e->tag = d->delivery_tag;
    e->redelivered = d->redelivered;
    e->exchange = s_dup_bytes(d->exchange);
    e->routing_key = s_dup_bytes(d->routing_key);
    char *ctag = s_dup_bytes(d->consumer_tag);
    unsigned long long sub = 0;
    e->consumer = BR_CONSUMER_MAIN;
    if (strncmp(ctag, BR_SUB_TAG, strlen(BR_SUB_TAG)) == 0) {
        sub = strtoull(ctag + strlen(BR_SUB_TAG), NULL, 10);
        e->consumer = BR_CONSUMER_SUB;
    } else if (strncmp(ctag, BR_SEED_TAG, strlen(BR_SEED_TAG)) == 0) {
        sub = strtoull(ctag + strlen(BR_SEED_TAG), NULL, 10);
        e->consumer = BR_CONSUMER_SEED;
    }
    free(ctag);
    e->id = sub;
    amqp_message_t m;
    amqp_rpc_reply_t r = amqp_read_message(b->conn, f->channel, &m, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char buf[400];
        snprintf(b->why, sizeof b->why, "reading a message: %s", s_reply_text(r, buf, sizeof buf));
        br_event_free(e);
        return -1;
    }
    if (m.properties._flags & AMQP_BASIC_REPLY_TO_FLAG)
        e->reply_to = s_dup_bytes(m.properties.reply_to);
    if (m.properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG)
        e->correlation_id = s_dup_bytes(m.properties.correlation_id);
    if (m.body.len > b->cfg->max_message) {
        e->too_big = true;
        e->len = m.body.len;
    } else {
        e->body = s_dup_bytes(m.body);
        e->len = m.body.len;
    }
    amqp_destroy_message(&m);
    s_event(b, e);
    return 0;
}

/*  Read and handle every frame there is. 0, or -1 when the connection failed. */
static int s_read_frames(br_amqp_t *b)
{
    for (;;) {
        amqp_frame_t f;
        struct timeval zero = {0};
        int rc = amqp_simple_wait_frame_noblock(b->conn, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            return 0;
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->why, sizeof b->why, "%s", amqp_error_string2(rc));
            return -1;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_DELIVER_METHOD:
            if (s_delivery(b, &f) != 0)
                return -1;
            break;
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            s_confirm(b, a->delivery_tag, a->multiple, 0);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *n = f.payload.method.decoded;
            s_confirm(b, n->delivery_tag, n->multiple, SKICK_EUNREACH);
            break;
        }
        case AMQP_BASIC_RETURN_METHOD: { /* not asked for (no mandatory); read it off */
            amqp_message_t m;
            if (amqp_read_message(b->conn, f.channel, &m, 0).reply_type != AMQP_RESPONSE_NORMAL)
                return -1;
            amqp_destroy_message(&m);
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD: {
            amqp_channel_close_t *m = f.payload.method.decoded;
            snprintf(b->why, sizeof b->why, "channel %u closed by the server: %u %.*s",
                     f.channel, m->reply_code, (int) m->reply_text.len,
                     (char *) m->reply_text.bytes);
            if (f.channel != BR_CH_PUBLISH)
                return -1;
            /* A publish the server refused (say to an exchange that does not
               exist): what was unconfirmed on the channel fails, the channel
               is opened again, the consumers are untouched. */
            int err = m->reply_code == AMQP_NOT_FOUND ? SKICK_ENOTFOUND : SKICK_EUNREACH;
            NODE_LOG_LIMITED(SKICK_LOG_WARNING, "amqp", "a publish was refused: %s", b->why);
            if (s_reopen_publish(b, err) != 0)
                return -1;
            break;
        }
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_connection_close_t *m = f.payload.method.decoded;
            snprintf(b->why, sizeof b->why, "connection closed by the server: %u %.*s",
                     m->reply_code, (int) m->reply_text.len, (char *) m->reply_text.bytes);
            amqp_connection_close_ok_t ok = {0};
            amqp_send_method(b->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
            return -1;
        }
        case AMQP_BASIC_CANCEL_METHOD: /* our queue was deleted: declare it again */
            snprintf(b->why, sizeof b->why, "a consumer was cancelled by the server (queue "
                                            "deleted?)");
            return -1;
        default:
            break;
        }
        amqp_maybe_release_buffers(b->conn);
    }
}

/* ------------------------------------------------------------------------- */
/* The thread                                                                 */

/*  Connected: serve until the connection fails or we are told to stop.
    Returns true when told to stop. */
static bool s_serve(br_amqp_t *b)
{
    int fd = amqp_get_sockfd(b->conn);
    for (;;) {
        if (s_read_frames(b) != 0) {
            s_close_conn(b, false);
            return false;
        }
        bool stop;
        br_cmd_t *cmds = s_take_cmds(b, &stop);
        if (stop) {
            s_run_all(b, cmds);
            return true;
        }
        if (cmds && s_run_all(b, cmds) != 0)
            return false;
        if (amqp_frames_enqueued(b->conn) || amqp_data_in_buffer(b->conn))
            continue;
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = b->cmd_fd, .events = POLLIN}};
        if (poll(p, 2, 1000) < 0 && errno != EINTR) {
            snprintf(b->why, sizeof b->why, "poll: %s", strerror(errno));
            s_close_conn(b, false);
            return false;
        }
    }
}


/*  Disconnected: wait ms, answering commands as a disconnected bridge does.
    Returns true when told to stop. */
static bool s_wait_down(br_amqp_t *b, int64_t ms)
{
    int64_t until = skick_clock_ms() + ms;
    for (;;) {
        bool stop;
        br_cmd_t *cmds = s_take_cmds(b, &stop);
        s_run_all(b, cmds);
        if (stop)
            return true;
        int64_t left = until - skick_clock_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = b->cmd_fd, .events = POLLIN};
        poll(&p, 1, (int) left);
    }
}

static void *s_thread(void *arg)
{
    br_amqp_t *b = arg;
    int64_t backoff = BR_BACKOFF_MIN_MS;
    bool down_logged = false, ever_up = false;
    for (;;) {
        if (s_connect(b) != 0) {
            if (!down_logged)
                SKICK_LOG(SKICK_LOG_WARNING, "amqp", "RabbitMQ unreachable (%s); retrying with "
                          "back-off", b->why);
            down_logged = true;
            if (s_wait_down(b, backoff))
                break;
            backoff = backoff * 2 > BR_BACKOFF_MAX_MS ? BR_BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        SKICK_LOG(SKICK_LOG_NOTICE, "amqp", "%s RabbitMQ at %s:%d (vhost %s, queue %s)",
                  ever_up ? "reconnected to" : "connected to", b->info.host, b->info.port,
                  b->info.vhost, b->cfg->queue);
        ever_up = true;
        down_logged = false;
        backoff = BR_BACKOFF_MIN_MS;
        s_simple(b, BR_EV_UP, 0, 0, NULL);
        bool stop = s_serve(b);
        s_fail_unconfirmed(b, SKICK_EUNREACH);
        if (stop) {
            s_close_conn(b, true);
            break;
        }
        SKICK_LOG(SKICK_LOG_WARNING, "amqp", "lost the connection to RabbitMQ (%s); "
                  "reconnecting", b->why);
        down_logged = true;
        s_simple(b, BR_EV_DOWN, 0, 0, b->why);
        if (s_wait_down(b, backoff))
            break;
    }
    s_fail_unconfirmed(b, SKICK_EUNREACH);
    return NULL;
}

br_amqp_t *br_amqp_start(const br_config_t *cfg, int *event_fd)
{
    br_amqp_t *b = node_calloc(1, sizeof *b);
    b->cfg = cfg;
    b->url = node_strdup(cfg->url);
    amqp_default_connection_info(&b->info);
    if (amqp_parse_url(b->url, &b->info) != AMQP_STATUS_OK) {
        SKICK_LOG(SKICK_LOG_ERROR, "amqp", "cannot parse the AMQP URL");
        free(b->url);
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    b->cmd_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    b->ev_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->cmd_fd < 0 || b->ev_fd < 0 || pthread_create(&b->thread, NULL, s_thread, b) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "amqp", "cannot start the AMQP thread: %s", strerror(errno));
        if (b->cmd_fd >= 0)
            close(b->cmd_fd);
        if (b->ev_fd >= 0)
            close(b->ev_fd);
        pthread_mutex_destroy(&b->mu);
        free(b->url);
        free(b);
        return NULL;
    }
    *event_fd = b->ev_fd;
    return b;
}

void br_amqp_stop(br_amqp_t **b_p)
{
    br_amqp_t *b = b_p ? *b_p : NULL;
    if (!b)
        return;
    *b_p = NULL;
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_mutex_unlock(&b->mu);
    s_kick(b->cmd_fd);
    pthread_join(b->thread, NULL);
    while (b->subs) {
        br_sub_t *s = b->subs;
        b->subs = s->next;
        s_sub_free(s);
    }
    while (b->cmd_head) {
        br_cmd_t *c = b->cmd_head;
        b->cmd_head = c->next;
        br_cmd_free(c);
    }
    while (b->ev_head) {
        br_event_t *e = b->ev_head;
        b->ev_head = e->next;
        br_event_free(e);
    }
    close(b->cmd_fd);
    close(b->ev_fd);
    pthread_mutex_destroy(&b->mu);
    free(b->url);
    free(b);
}
