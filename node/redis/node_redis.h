/*  node_redis - the Redis hash backend of a shard (node_redis.c)

    Selected by node/ at start (skick-node --hash redis://... or unix://...):
    node_hash_redis replaces the shard's in-process backend, and the
    cluster leaves it in place when the shard joins. docs/hashes.md says
    what is stored and how faults show.
*/
#ifndef NODE_REDIS_H_INCLUDED
#define NODE_REDIS_H_INCLUDED

#include "node_actor.h"
#include "skick_redis.h"

/*  The bounds (operations in flight, back-off, the handshake's deadline)
    are proto/skick_redis_conn.h's: SKICK_REDIS_INFLIGHT and the others. */

typedef struct {
    size_t max_inflight; /* operations in flight at most (0: SKICK_REDIS_INFLIGHT) */
    /*  Stop the shard with exit status 1 when the very first connection's
        AUTH or SELECT is refused (a wrong password, a missing one, a bad
        database): a configuration error, not an outage. skick-node sets it. */
    bool exit_on_refusal;
} node_redis_opts_t;

/*  The backend table; its open(sh, url) parses url and uses the default
    options (a bad URL gives a backend whose operations fail with EBACKEND). */
extern node_hash_backend_t node_hash_redis;

/*  Open the backend for sh on the server at url with options o (NULL:
    defaults) and start connecting; never blocks. Returns the state to put
    in sh->hash_state with sh->hash = &node_hash_redis. */
void *node_redis_open(node_shard_t *sh, const skick_redis_url_t *url,
                      const node_redis_opts_t *o);

/*  Operations in flight now (sent, not yet answered), cancelled ones included. */
size_t node_redis_inflight(void *state);

#endif
