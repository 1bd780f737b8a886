/*  skick/amqp.h - actors and RabbitMQ, through skick-amqp-bridge

    A cluster with a bridge (skick-amqp-bridge, docs/amqp.md) reaches
    RabbitMQ through the bridge actor, the provider of the service
    SKICK_AMQP_SERVICE. These functions find it cluster-wide and ask it, so
    they work from any shard; each suspends the calling coroutine (a
    handler, hook, daemon or task of self) until the bridge answers, at
    most the shard's call timeout.

    The same is open to any actor as messages to the service (the wire is
    in proto/PROTOCOL.md "The AMQP bridge"): {"action": "publish", ...},
    {"action": "subscribe", ...}, {"action": "unsubscribe", ...}.

    Ownership as in skick.h: a json_object ** is taken, success or not.
*/
#ifndef SKICK_AMQP_H_INCLUDED
#define SKICK_AMQP_H_INCLUDED

#include <stdint.h>

#include "skick/skick.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  The bridge's service name (skick-amqp-bridge --service). */
#define SKICK_AMQP_SERVICE "amqp"

/*  Publish *body (taken; a JSON object or array goes as its JSON text with
    content type application/json, a string as its bytes with text/plain)
    to exchange ("" is the default exchange) with routing_key, persistent,
    and wait for RabbitMQ's publisher confirm. Returns 0 once RabbitMQ has
    confirmed it, or -1 with ENOTFOUND (no bridge in the cluster), EUNREACH
    (RabbitMQ is unreachable, nacked it, or the connection was lost before
    the confirm: it may or may not have been routed), EBACKLOG (the bridge
    has --max-pending publishes in flight), ETOOBIG, EINVAL or ETIMEDOUT. */
int skick_amqp_publish(skick_actor_t *self, const char *exchange, const char *routing_key,
                       json_object **body);

/*  Subscribe the actor at address `to` (NULL: self) to queue: the bridge
    declares it (durable, dead-lettering to the bridge's dead-letter
    exchange), binds it to exchange with routing_key (exchange NULL: no
    binding, the queue is used as it is) and consumes from it; what AMQP
    publishers send there is delivered to `to` as actor messages, acked
    once its shard took them (docs/amqp.md). Returns the subscription id
    (> 0, for skick_amqp_unsubscribe), or -1 with ENOTFOUND, EUNREACH,
    EINVAL (RabbitMQ refused the declaration) or ETIMEDOUT. The
    subscription lasts until skick_amqp_unsubscribe or the bridge's end. */
int64_t skick_amqp_subscribe(skick_actor_t *self, const char *queue, const char *exchange,
                             const char *routing_key, const char *to);

/*  End subscription id (the queue and its bindings stay). 0 or -1. */
int skick_amqp_unsubscribe(skick_actor_t *self, int64_t id);

#ifdef __cplusplus
}
#endif
#endif
