/*  node_cluster.h - the cluster layer of the shard runtime (node/cluster/)

    A shard's membership in a cluster: the broker link (node_cluster.c,
    getting admitted node_admit.c), what the other shards offer
    (node_directory.c), remote delivery, spawns and loss (node_remote.c),
    which local actors watch remote ones (node_watch.c), the broker's hash
    store as a hash backend (node_cluster_hash.c) and requests from skickctl
    (node_control.c). PROTOCOL.md "The cluster" has the wire.

    The top of the runtime: it uses node/ws (remote sessions, front shard
    stats) and node/actor, and hands the actor layer its node_transport_t
    when it joins, so that the layers below reach other shards without
    calling up. This header is what node/ (skick_run) uses; what the
    cluster's files share is node_cluster_int.h. Everything is owned by the
    shard (sh->cluster) and runs on its reactor thread.
*/
#ifndef NODE_CLUSTER_H_INCLUDED
#define NODE_CLUSTER_H_INCLUDED

#include "node_actor.h"

typedef struct node_cluster node_cluster_t;

typedef struct node_cluster_opts {
    const char *broker;        /* the broker's ROUTER endpoint */
    const char *curve_secret;  /* own certificate (secret file), or NULL */
    const char *curve_server;  /* the broker's public certificate file, or NULL */
    const char *ws_url;        /* "ws://host:port" when the shard is a front, or NULL */
    const char *const *apps;   /* module paths, for skickctl ps */
    int napps;
    const char *const *roles;  /* more roles to announce ("bridge"), NULL-terminated,
                                  or NULL: only front / back */
} node_cluster_opts_t;

/*  Connect sh to the broker and start joining (HELLO; the welcome comes
    later, on the loop). 0, or -1 with a reason in err. */
int node_cluster_join(node_shard_t *sh, const node_cluster_opts_t *o, char *err,
                      size_t errlen);
/*  Announce a clean leave (LOST about ourselves) and close the sockets. */
void node_cluster_leave(node_shard_t *sh);
/*  Whether the broker link is up (welcomed and heard from recently). */
bool node_cluster_connected(node_shard_t *sh);
/*  The broker link's generation: it grows each time the shard is welcomed
    (joined, or joined again after the link was lost). Envelopes sent in
    one generation come back (answers, dead letters) in order within it;
    what was sent in an earlier one may have been lost with the link. */
uint64_t node_cluster_link_generation(node_shard_t *sh);
/*  Whether shard id was in the cluster before the broker restarted and
    has not rejoined yet (its directory entry is provisional): a message to
    it is refused (EDEAD) now but may get through once it is back. */
bool node_cluster_rejoining(node_shard_t *sh, uint64_t id);
/*  Give the shard actor of sh the actions other shards send it
    (spawn_session); call before node_shard_start, in a cluster or not. */
void node_cluster_prepare(node_shard_t *sh);
/*  The directory as /skick/cluster.json's shard list (node_ws_view_shards_fn):
    [{"shard", "roles", "types": N, "sessions": [names], "services": N,
    "provisional"?}], at most max (caller owns); NULL when standalone. */
json_object *node_cluster_view_shards(node_shard_t *sh, size_t max, void *arg);
/*  The shard's view of the directory (caller owns the array): its own entry
    first (version 0), then every other shard's as it arrived (PROTOCOL.md
    "The directory"), provisional ones included. Standalone: only its own.
    For programs that show the cluster to another system (the AMQP bridge's
    --seed-compat gossip). */
json_object *node_cluster_directory(node_shard_t *sh);

#endif
