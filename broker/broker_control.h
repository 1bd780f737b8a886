/*  broker_control - CONTROL requests addressed to the broker (to_shard 0)

    Told by broker_route.c, which checks who may ask and sends the answer:
    this file builds answers and sends nothing. Uses broker_hash.c,
    broker_redis.c and broker_util.c, and reads the peer table (b->by_id) and the counters.
*/
#ifndef BROKER_CONTROL_H_INCLUDED
#define BROKER_CONTROL_H_INCLUDED

#include "broker_state.h"

/*  broker_control_shard_may: true when a CONTROL envelope e (borrowed, its
    body parsed when to_shard is 0) from a peer on the shard endpoint is one
    a shard needs: a hash operation addressed to the broker. Everything else
    (ps, directory, services, stats, and every request forwarded to a shard)
    belongs to the control plane, on the control endpoint. */
bool broker_control_shard_may(const skick_envelope_t *e);

/*  broker_control_answer: run the CONTROL request e (borrowed) addressed to
    the broker, from asker (borrowed), and return the body of its one
    REPLY: {"id", "ok": true, "result"} or {"id", "ok": false, "code",
    "error"}. Caller owns it (broker_route.c hands it to broker_peer_reply).
    NULL when the answer comes later: a hash op on the Redis store, whose
    REPLY body goes to b->answer_later (with asker) once Redis answers. */
json_object *broker_control_answer(broker_t *b, const skick_envelope_t *e,
                                   const broker_asker_t *asker);

#endif
