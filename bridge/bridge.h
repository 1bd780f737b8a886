/*  bridge.h - skick-amqp-bridge: a shard that holds one AMQP connection

    The bridge is a shard (it joins the broker like skick-node, with the
    role "bridge") whose one actor, the bridge actor, is the cluster's door
    to RabbitMQ. Two halves, two threads, one queue each way:

      bridge_amqp.c   the AMQP thread: rabbitmq-c's blocking connection,
                      declarations, the consumers, publishing with
                      publisher confirms, reconnecting with back-off. It
                      never touches a shard structure.
      bridge_actor.c  the bridge actor on the shard's reactor: what a
                      delivery becomes (a message to an actor or a service,
                      or a conversation), when it is acked or rejected, the
                      "publish" and "subscribe" actions of the service.
      bridge_confirm.c  the shard-side confirmation that another shard took
                      a message (a "sync" barrier on the same ordered path;
                      a dead letter arrives first).
      bridge_seed.c   --seed-compat: the Python original's format (seed
                      shard queues per C shard, gossip, proxies for Python
                      addresses); its own consumer kind and its own tasks.
      bridge_main.c   options, then node_run with the bridge's module.

    The queues: commands (shard -> thread: acks, rejects, publishes,
    subscriptions) and events (thread -> shard: deliveries, confirms,
    connection news), each a mutex-protected list with an eventfd the other
    side polls. Neither side ever waits for the other: the shard posts and
    returns; the thread posts and goes on. The bounds are not in the queues
    but at their sources: deliveries by basic.qos (--prefetch unacked per
    consumer), publishes by --max-pending (the publisher gets EBACKLOG at
    once beyond it), acks and rejects by the deliveries they answer.

    The second wire format (the Python original's, SEED-SPEC.md 8.2,
    bridge_seed.c) is one more consumer kind: a consumer carries a kind
    (br_consumer_kind_t, from its tag) that says who handles its
    deliveries, ids with BR_SEED_ID_BIT say whose a confirm is, and
    bridge_amqp.c knows nothing of what bodies mean.

    Ownership: a br_cmd_t or br_event_t and every string in it belong to
    whoever holds the pointer; posting hands it over.
*/
#ifndef BRIDGE_H_INCLUDED
#define BRIDGE_H_INCLUDED

#include "node_actor.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------- */
/* Settings (bridge_main.c fills them in)                                     */

typedef struct br_config {
    char *url;              /* amqp:// or amqps:// URL (owned; holds the password) */
    const char *exchange;   /* topic exchange for inbound traffic ("skick") */
    const char *queue;      /* the bridge's queue ("skick.bridge") */
    const char *dlx;        /* dead-letter exchange ("skick.dead") */
    const char *cacert;     /* amqps: CA file, or NULL: the system's */
    const char *service;    /* the bridge actor's service name ("amqp") */
    uint16_t prefetch;      /* basic.qos per consumer (256) */
    size_t max_message;     /* inbound bodies larger are rejected (1 MiB) */
    size_t max_pending;     /* publishes queued or unconfirmed at most (10000) */
    int64_t hold_ms;        /* retry a delivery while the cluster is unreachable (30000) */
    int heartbeat_s;        /* AMQP heartbeat (30) */
    bool seed_compat;       /* --seed-compat: speak the Python original's format too */
    size_t seed_aliases;    /* proxies for Python addresses, and each of the seed maps (4096) */
    size_t seed_keys;       /* gossip keys kept from the seed shards (65536) */
} br_config_t;

/*  The configuration the bridge runs with (set once by bridge_main.c). */
extern br_config_t br_cfg;

/* ------------------------------------------------------------------------- */
/* The AMQP thread (bridge_amqp.c)                                            */

typedef enum {
    BR_CONSUMER_MAIN, /* the bridge's queue: routing keys actor.* and service.* */
    BR_CONSUMER_SUB,  /* a subscription: every message to one actor or service */
    BR_CONSUMER_SEED, /* a seed shard's queue (--seed-compat, bridge_seed.c) */
} br_consumer_kind_t;

/* the seed's exchanges (SEED-SPEC.md 8.2) */
#define BR_SEED_ACTOR_EXCHANGE "ActorExchange"
#define BR_SEED_BROADCAST_EXCHANGE "BroadcastExchange"
/* publish and subscription ids of bridge_seed.c have this bit, the bridge
   actor's do not: their confirms go to bridge_seed.c */
#define BR_SEED_ID_BIT (1ULL << 63)

typedef enum {
    BR_CMD_ACK,         /* basic.ack tag (dropped unless gen is the current connection) */
    BR_CMD_REJECT,      /* basic.reject tag, requeue false: to the dead-letter exchange */
    BR_CMD_PUBLISH,     /* publish with a confirm; answered by BR_EV_CONFIRM id */
    BR_CMD_SUBSCRIBE,   /* declare queue, bind, consume; answered by BR_EV_SUBSCRIBED id
                           (seed: a seed shard's transient queue, tag skick.seed.<id>) */
    BR_CMD_UNSUBSCRIBE, /* stop consuming subscription id (kept queue and bindings) */
} br_cmd_kind_t;

typedef struct br_cmd {
    struct br_cmd *next;
    br_cmd_kind_t kind;
    uint64_t gen;          /* ACK / REJECT: the connection the delivery came on */
    uint64_t tag;          /* ACK / REJECT: delivery tag */
    uint64_t id;           /* PUBLISH: publish id; (UN)SUBSCRIBE: subscription id */
    char *exchange;        /* PUBLISH: exchange ("" the default one) */
    char *routing_key;     /* PUBLISH: routing key; SUBSCRIBE: queue name */
    char *correlation_id;  /* PUBLISH: or NULL */
    char *content_type;    /* PUBLISH: or NULL */
    char *body;            /* PUBLISH: bytes (len) */
    size_t len;
    json_object *headers;  /* PUBLISH: {"name": string/int/bool/double}; SUBSCRIBE: the
                              bindings [{"exchange","routing_key"}]; or NULL */
    bool persistent;       /* PUBLISH: delivery mode 2 (an actor's publish; replies are not) */
    bool seed;             /* (UN)SUBSCRIBE: a seed shard's queue (auto-delete) */
} br_cmd_t;

typedef enum {
    BR_EV_DELIVERY,   /* a message from a consumer */
    BR_EV_CONFIRM,    /* publish id confirmed (err 0) or failed (EUNREACH) */
    BR_EV_SUBSCRIBED, /* subscription id consuming (err 0) or refused (err, text) */
    BR_EV_UP,         /* connected (again): connection gen */
    BR_EV_DOWN,       /* the connection gen is gone (text: why) */
} br_event_kind_t;

typedef struct br_event {
    struct br_event *next;
    br_event_kind_t kind;
    uint64_t gen;          /* the connection */
    uint64_t tag;          /* DELIVERY: delivery tag */
    uint64_t id;           /* CONFIRM: publish id; SUBSCRIBED / DELIVERY: subscription
                              id (0: the bridge's queue) */
    int err;               /* CONFIRM, SUBSCRIBED */
    br_consumer_kind_t consumer; /* DELIVERY: whose it is (from the consumer tag) */
    bool redelivered;      /* DELIVERY */
    char *exchange;        /* DELIVERY */
    char *routing_key;     /* DELIVERY */
    char *reply_to;        /* DELIVERY: or NULL */
    char *correlation_id;  /* DELIVERY: or NULL */
    char *body;            /* DELIVERY: NUL-terminated copy of the body (len bytes) */
    size_t len;
    bool too_big;          /* DELIVERY: over max_message (body NULL) */
    char *text;            /* SUBSCRIBED, DOWN: a reason, or NULL */
} br_event_t;

typedef struct br_amqp br_amqp_t;

/*  Start the AMQP thread for cfg (borrowed; must outlive it). Events are
    announced on the eventfd *event_fd (the caller polls it and calls
    br_amqp_take when it is readable). NULL when the thread cannot start. */
br_amqp_t *br_amqp_start(const br_config_t *cfg, int *event_fd);
/*  Stop the thread, close the connection (unacked deliveries go back to
    their queues), free everything. NULL-safe; *b_p set to NULL. */
void br_amqp_stop(br_amqp_t **b_p);
/*  Hand cmd to the thread (taken). Never blocks, never fails. */
void br_amqp_post(br_amqp_t *b, br_cmd_t *cmd);
/*  Post the ack (or the reject, requeue false) of delivery e (borrowed). */
void br_amqp_settle(br_amqp_t *b, const br_event_t *e, bool ack);
/*  Every event posted since the last call, oldest first (caller owns the
    list); clears the eventfd. */
br_event_t *br_amqp_take(br_amqp_t *b);
void br_cmd_free(br_cmd_t *c);
void br_event_free(br_event_t *e);

/* ------------------------------------------------------------------------- */
/* Delivery confirmation (bridge_confirm.c)                                   */

typedef struct br_confirm br_confirm_t;

br_confirm_t *br_confirm_new(node_shard_t *sh);
void br_confirm_free(br_confirm_t **c_p);
/*  Send *msg (taken) from self to address and wait until its shard took it
    into the actor's mailbox: 0, or the error (EDEAD, EFULL, EUNREACH,
    EINVAL, ETIMEDOUT after timeout_ms: it may have been taken). Suspends
    (self's task context). */
int br_confirm_send(br_confirm_t *c, skick_actor_t *self, const char *address,
                    json_object **msg, int64_t timeout_ms);
/*  The kind's hooks feed these: a "synced" answer (always taken: true), a
    dead letter that came back (action and cid as it names them, or NULL). */
bool br_confirm_synced(br_confirm_t *c, node_ref_t from, json_object **body);
void br_confirm_undelivered(br_confirm_t *c, node_ref_t to, const char *action, const char *cid,
                            int err);

/* ------------------------------------------------------------------------- */
/* The bridge actor (bridge_actor.c)                                          */

/*  How long a delivery to a full mailbox is retried before it is
    dead-lettered (EFULL), in ms. */
#define BR_FULL_RETRY_MS 1000

#define BR_ACTOR_TYPE "skick.amqp_bridge"

/*  The bridge actor's counters (its "stats" answer, and its metrics). */
typedef struct br_stats {
    uint64_t received;       /* deliveries */
    uint64_t redelivered;    /* of which RabbitMQ flagged redelivered */
    uint64_t delivered;      /* one-way messages a shard took (acked) */
    uint64_t rpc;            /* requests answered (acked) */
    uint64_t rpc_errors;     /* of which with an error body */
    uint64_t bad;            /* rejected: not JSON, not an object, no action, too big */
    uint64_t undeliverable;  /* rejected: no such actor or provider, mailbox full, ... */
    uint64_t unconfirmed;    /* rejected: the target's shard did not answer in time */
    uint64_t published;      /* publishes confirmed (replies included) */
    uint64_t publish_failed; /* publishes nacked, lost or refused */
    uint64_t backlog;        /* of which refused at once: --max-pending */
    uint64_t connects;       /* connections to RabbitMQ made */
} br_stats_t;

/*  What the metrics read besides the counters (bridge_actor.c fills it). */
typedef struct br_gauges {
    bool connected;       /* to RabbitMQ */
    size_t pending;       /* publishes queued or unconfirmed */
    size_t subscriptions; /* subscriptions held */
} br_gauges_t;

/*  The shard on_start hook of the bridge's module: spawn the bridge actor. */
void br_shard_start(skick_actor_t *shard);
/*  The bridge actor's factory. */
void br_actor(skick_actor_t *self, json_object *init);

/* ------------------------------------------------------------------------- */
/* Metrics (bridge_metrics.c), when the shard's are on (--metrics)            */

typedef void(br_gauges_fn)(void *arg, br_gauges_t *out);

/*  Register the bridge's families in sh's registry and mirror *st and the
    gauges into them at each publish. st and arg are borrowed until
    br_metrics_detach. One bridge per process. No-op when metrics are off. */
void br_metrics_attach(node_shard_t *sh, const br_stats_t *st, br_gauges_fn *gauges, void *arg);
/*  The bridge actor is going: stop reading its counters. */
void br_metrics_detach(void);

/* ------------------------------------------------------------------------- */
/* The seed's wire format, --seed-compat (bridge_seed.c)                      */

#define BR_SEED_PROXY_TYPE "skick.seed_proxy"

typedef struct br_seed br_seed_t;

/*  The seed side of the bridge actor self (borrowed, as amqp: both outlive
    it). One per process. */
br_seed_t *br_seed_new(skick_actor_t *self, br_amqp_t *amqp);
/*  Stop its proxies' forwarding and free it. NULL-safe; *s_p set to NULL. */
void br_seed_free(br_seed_t **s_p);
/*  A delivery from a seed queue (taken): acked or rejected here. Runs in a
    task of the bridge actor. */
void br_seed_delivery(br_seed_t *s, br_event_t *e);
/*  A BR_EV_CONFIRM or BR_EV_SUBSCRIBED whose id has BR_SEED_ID_BIT. */
void br_seed_event(br_seed_t *s, const br_event_t *e);
/*  RabbitMQ reachable or not (BR_EV_UP / BR_EV_DOWN). */
void br_seed_link(br_seed_t *s, bool up);
/*  Once a second (the bridge actor's daemon): seed queues for the shards of
    the view, gossip out. */
void br_seed_tick(br_seed_t *s);
/*  Add the seed counters to a stats answer. */
void br_seed_stats(br_seed_t *s, json_object *r);
/*  Actions of the bridge actor: seed_alias {"address"} -> {"address": the C
    address to use}, seed_service {"name"} -> {"address": a proxy of a
    Python provider}. */
void br_seed_on_alias(skick_actor_t *self, json_object *msg);
void br_seed_on_service(skick_actor_t *self, json_object *msg);
/*  The factory of proxy actors (type BR_SEED_PROXY_TYPE). */
void br_seed_proxy(skick_actor_t *self, json_object *init);

#endif
