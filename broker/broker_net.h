/*  broker_net - the broker's three sockets: bind, secure, watch, send

    Told by main (open, close), broker_peers.c (sends on a peer's link),
    broker_dir.c (publish) and broker_route.c (the shard ROUTER's
    disconnections). Uses broker_auth.c (the ZAP handler goes up before the
    CURVE sockets bind) and broker_util.c. The broker owns the sockets, the
    socket monitor, the ZAP handler and the certificate; every send here
    borrows what it sends, and never blocks.
*/
#ifndef BROKER_NET_H_INCLUDED
#define BROKER_NET_H_INCLUDED

#include "broker_state.h"

/*  broker_net_open: create and bind the three sockets (CURVE servers when
    configured), with a socket monitor on the shard ROUTER's
    disconnections (read by broker_net_disconnected). Returns 0, or -1
    after logging why (bind failed, certificate unreadable); what was
    created is freed by broker_net_close. */
int broker_net_open(broker_t *b);

/*  broker_net_close: stop the monitor, close every socket, stop the ZAP
    handler, free the certificate. */
void broker_net_close(broker_t *b);

/*  broker_net_disconnected: read up to max events of the shard ROUTER's
    monitor without waiting, and store in fds the descriptor of each
    connection that is gone (the caller tells the peer table: the kernel
    may give the same descriptor to the next connection). Returns how many
    were stored (0 to max). */
int broker_net_disconnected(broker_t *b, int *fds, int max);

/*  broker_net_send: send e to routing id rid on ROUTER sock, never blocking.
    e is borrowed. Returns 0, or -1 with errno (EHOSTUNREACH: no such
    connection; EAGAIN: its queue is full). */
int broker_net_send(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                    const skick_envelope_t *e);

/*  broker_net_forward: send a received message's frames to rid on ROUTER
    sock with seq (skick_wire_forward). Returns as broker_net_send. */
int broker_net_forward(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                       skick_wire_held_t *m, uint64_t seq);

/*  broker_net_publish: publish e on the XPUB (best effort; e borrowed). */
void broker_net_publish(broker_t *b, const skick_envelope_t *e);

#endif
