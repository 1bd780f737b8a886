/*  broker_dir - the cluster directory: each shard's own entry in over its
    link, every entry out on the XPUB

    Told by broker_route.c (an entry arrived), broker_peers.c (a shard was
    lost: its removal) and main (subscriptions, republishing). Uses
    broker_net.c (publish) and broker_util.c. The entries live in the peer
    records (broker_peer_t.dir, owned by the peer; written only here).
*/
#ifndef BROKER_DIR_H_INCLUDED
#define BROKER_DIR_H_INCLUDED

#include "broker_state.h"

/*  broker_dir_advert: a DIRECTORY envelope e (borrowed) read from joined
    peer p over its own link: taken and republished when it is p's own entry
    (a shard's, "shard" == p's id) and newer than the last one taken from
    this connection; else dropped (not newer) or refused (logged under a
    budget, counted). */
void broker_dir_advert(broker_t *b, broker_peer_t *p, const skick_envelope_t *e);

/*  broker_dir_drain_subs: read up to BROKER_BATCH subscription messages from
    the XPUB; a new subscription sets b->republish. Returns the count or -1. */
int broker_dir_drain_subs(broker_t *b);

/*  broker_dir_republish_all: publish every entry held (new subscriber). */
void broker_dir_republish_all(broker_t *b);

/*  broker_dir_forget: publish {"shard": id, "lost": true} for lost peer p
    and drop its entry. */
void broker_dir_forget(broker_t *b, broker_peer_t *p);

#endif
