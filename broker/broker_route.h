/*  broker_route - what arrives on the two ROUTERs, and where it goes

    The level below main: it decides what happens to each envelope and
    tells the files below it (broker_peers.c, broker_control.c,
    broker_dir.c, broker_auth.c, broker_net.c); none of them calls back up.
    Told by main (drain) and tests/fuzz/fuzz_broker.c (handle, malformed).
*/
#ifndef BROKER_ROUTE_H_INCLUDED
#define BROKER_ROUTE_H_INCLUDED

#include "broker_state.h"

/*  broker_route_drain: read up to BROKER_BATCH messages from ROUTER sock and
    handle each one (join, heartbeat, route, control, refuse). Returns the
    number of messages read (fewer than BROKER_BATCH: the last receive found
    nothing); -1 on a socket error (errno from libzmq; EINTR: interrupted,
    drain again). broker_dir_drain_subs counts the same way. */
int broker_route_drain(broker_t *b, int sock);

/*  broker_route_handle: handle one message m read whole from routing id rid
    on ROUTER sock (what broker_route_drain does with each envelope it
    reads; the seam tests/fuzz/fuzz_broker.c drives without sockets). m is
    borrowed: its frames may have been forwarded, the caller closes it. */
void broker_route_handle(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                         skick_wire_held_t *m);

/*  broker_route_srcfd: the descriptor of the connection m was read from
    (ZMQ_SRCFD), -1 when it was not read from one: which connection of a
    routing id sent it. */
int broker_route_srcfd(skick_wire_held_t *m);

/*  broker_route_answer_later: send the REPLY *body_p (taken) of a CONTROL
    request answered after its envelope was handled (a hash op on Redis) to
    asker, when its peer is still there with the same id (broker_answer_fn;
    main sets b->answer_later to it). */
void broker_route_answer_later(broker_t *b, const broker_asker_t *asker, json_object **body_p);

/*  broker_route_malformed: count, log and answer (DEAD_LETTER EPROTO, when
    there is a routing id) a frame set from rid on ROUTER sock that is not
    an envelope; why says what was wrong. */
void broker_route_malformed(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                            const char *why);

#endif
