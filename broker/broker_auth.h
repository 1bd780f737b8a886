/*  broker_auth - who may connect (ZAP) and in which role (HELLO, CONTROL)

    Told by broker_net.c (start and stop the ZAP handler around the CURVE
    sockets), broker_peers.c (the role at HELLO), broker_route.c (the role
    on CONTROL) and main (SIGHUP). Uses only broker_util.c. The ZAP handler
    is a CZMQ actor (b->auth, owned by the broker) with its own thread;
    everything declared here runs on the broker thread.
*/
#ifndef BROKER_AUTH_H_INCLUDED
#define BROKER_AUTH_H_INCLUDED

#include "broker_state.h"

/*  The ZAP domain of each CURVE socket is this prefix and the socket's name
    ("shard", "control", "directory-out"): it tells the ZAP
    handler what a connection is for. */
#define BROKER_ZAP_DOMAIN "skick."

/*  broker_auth_start: start the ZAP handler over b->cfg.curve_allow (its
    shards/, bridges/ and clients/ directories), before any CURVE socket is
    bound. Returns 0, or -1 after logging why (not a directory,
    certificates directly in it: the layout before roles). */
int broker_auth_start(broker_t *b);

/*  broker_auth_stop: stop the ZAP handler (NULL-safe). */
void broker_auth_stop(broker_t *b);

/*  broker_auth_reload: make the ZAP handler read the keys again (SIGHUP). */
void broker_auth_reload(broker_t *b);

/*  broker_auth_role_name: "shard", "bridge", "client" or "none". */
const char *broker_auth_role_name(int role);

/*  broker_auth_frame_role: the BROKER_ROLE_* that the ZAP handler gave the
    connection frame came from (its User-Id), NONE without one. */
int broker_auth_frame_role(zmq_msg_t *frame);

/*  broker_auth_hello: check a HELLO (m, borrowed) against the role of the
    key its connection authenticated with, which is stored in *role. shard:
    the HELLO says "peer": "shard". Returns NULL when it may join, else why
    not (refused with ECONTEXT). Without CURVE: NULL, role NONE. */
const char *broker_auth_hello(broker_t *b, skick_wire_held_t *m, bool shard, int *role);

/*  broker_auth_may_control: true when peer p may send CONTROL e (to the
    broker or forwarded to a shard); else false with *why (ECONTEXT). A
    shard key may run only `hash` on the broker. */
bool broker_auth_may_control(const broker_peer_t *p, const skick_envelope_t *e, const char **why);

#endif
