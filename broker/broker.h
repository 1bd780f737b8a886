/*  broker.h - private umbrella header of skick-broker

    skick-broker routes envelopes between shards and clients, keeps the
    cluster's directory and hash store, and detects lost shards. Everything
    runs on one thread: one poll loop (broker_main.c) over three sockets and
    a timer. The state is one broker_t (broker_state.h), owned by main and
    passed to every function; nothing here is thread-safe and nothing needs
    to be.

    "Routing decides; peers and directory are told." The files are levels,
    and a file calls only files on a lower level (checked on the built
    objects by tests/check_broker_calls.sh, ctest broker_calls_check):

      0  broker_main.c     options, signals, the poll loop and its timer;
                           wires everything up
      1  broker_route.c    everything read from the two ROUTERs: link checks,
                           who may send what on which ROUTER, routing, dead
                           letters, malformed frames
         broker_metrics.c  --metrics: mirrors the counters and the peer table
                           into a Prometheus registry once a second (served
                           from a thread of its own, proto/skick_metrics_http)
      2  broker_peers.c    the peer table: HELLO and the welcome, sends on a
                           peer's link (replies and dead letters too),
                           heartbeats, loss detection and the LOST fan-out
         broker_control.c  the answers to CONTROL requests addressed to the
                           broker, and which of them a shard may make
      3  broker_dir.c      the directory: each shard's own entry in over its
                           link, every entry out on the XPUB
      4  broker_net.c      sockets: binding, CURVE, the control endpoint's
                           permissions, the shard ROUTER's disconnections,
                           and sending envelopes on them
      5  broker_auth.c     the ZAP handler (admitted keys per role) and the
                           role checks at HELLO and on CONTROL
         broker_hash.c     the cluster's hash store (tables of JSON values)
         broker_redis.c    the same store in Redis (--hash): hiredis async on
                           main's poll loop; answers go up through the
                           function main registered (b->answer_later)
      6  broker_util.c     ids as text, rate-limited logging, small JSON helpers

    Where a lower file has news for a higher one it returns it: control
    returns the REPLY body that route sends, net returns the descriptors of
    the connections that are gone and route tells the peer table.

    Each file declares what it offers in its own header (broker_<file>.h,
    which says who tells it and what it uses); a file includes its own and
    those of the files below it. This umbrella is for broker_main.c and
    tests/fuzz/fuzz_broker.c, which use all of them.

    Ownership: the broker owns every peer (broker_peer_t) through its two
    tables; a peer owns its JSON members. Envelopes passed to a send function
    are borrowed; envelopes received are destroyed by the reader.
*/
#ifndef BROKER_H_INCLUDED
#define BROKER_H_INCLUDED

#include "broker_state.h"

#include "broker_auth.h"
#include "broker_control.h"
#include "broker_dir.h"
#include "broker_hash.h"
#include "broker_metrics.h"
#include "broker_net.h"
#include "broker_peers.h"
#include "broker_redis.h"
#include "broker_route.h"
#include "broker_util.h"

#endif
