/*  node_watch - monitors across shards, and what the loss of a shard does

    A sentinel about an actor X normally comes from X's own shard when X
    ends. If that shard dies instead, nobody is left to send it: the shard
    of each monitor M must know beforehand that M watches X, and turn the
    broker's LOST into M's sentinel. So each shard keeps, per remote shard,
    the remote actors that its own actors watch (the *watches*). An entry
    gets there in one of two ways:

      * The requester's shard records the watches of its own actors when a
        request leaves it (node_watch_sent): a "monitor" message naming one
        of them, or a spawn request that names the new address ("name") and
        lists them in add_monitor. node_remote_spawn's requests are of that
        kind. Session requests are recorded by node_remote.c.
      * X's shard tells the shard of every other remote monitor when it
        gives X that monitor (node_watch_tell, through the transport): a third
        party's address in a "monitor" message, the monitors of a local
        spawn, a spawn request without a name. The notice is a control
        envelope {"action":"watch","monitor":"<M>"} from X to the shard actor
        of M's shard (PROTOCOL.md "Watches"). It is applied when it arrives.

    Why there, and why it is exact: X's notice and X's later sentinel travel
    the same ordered path (X's shard -> broker -> M's shard), and the broker
    sends LOST about X's shard only after everything it routed from that
    shard. So M's shard sees the notice, then either the sentinel (which
    drops the entry, so the loss makes no second one) or LOST (which makes
    the one sentinel). The broker keeps nothing: it never parses actor
    bodies and holds no state per actor, and the monitor's shard already
    sees these links in order. Not covered: a request still in flight when
    X's shard dies was never applied, so X never had that monitor. The
    requester's own actors still get their sentinel from the send-time
    record.

    Monitors that end first: their entries stay until X ends or its shard
    is lost. The sentinel then finds no actor and is counted as
    lost_sentinels. A list of watchers drops its dead members before it
    grows, so it holds at most twice its live watchers. A notice for a
    monitor that no longer exists is ignored.

    Runs on the shard's reactor thread, like everything in node_cluster.h.
*/
#include "node_cluster_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t n, cap;
    uint64_t ids[]; /* local watcher actor ids */
} node_watchers_t;

void node_watch_add(node_shard_t *sh, node_ref_t remote, node_ref_t watcher)
{
    node_cluster_t *c = sh->cluster;
    if (!c || remote.shard == sh->id || !remote.id || watcher.shard != sh->id || !watcher.id)
        return;
    node_u64map_t *m = node_u64map_get(&c->watches, remote.shard);
    if (!m) {
        m = node_malloc(sizeof *m);
        node_u64map_init(m);
        node_u64map_put(&c->watches, remote.shard, m);
    }
    node_watchers_t *w = node_u64map_get(m, remote.id);
    for (uint32_t i = 0; w && i < w->n; i++)
        if (w->ids[i] == watcher.id)
            return;
    if (w && w->n == w->cap) {
        uint32_t live = 0; /* before growing: drop the watchers that ended */
        for (uint32_t i = 0; i < w->n; i++)
            if (node_u64map_get(&sh->actors, w->ids[i]))
                w->ids[live++] = w->ids[i];
        c->nwatches -= w->n - live;
        w->n = live;
    }
    if (!w || w->n == w->cap) {
        uint32_t cap = w ? w->cap * 2 : 1;
        w = node_realloc(w, sizeof *w + cap * sizeof w->ids[0]);
        if (cap == 1)
            w->n = 0;
        w->cap = cap;
        node_u64map_put(m, remote.id, w);
    }
    w->ids[w->n++] = watcher.id;
    c->nwatches++;
}

void node_watch_drop(node_shard_t *sh, node_ref_t remote, node_ref_t watcher)
{
    node_cluster_t *c = sh->cluster;
    node_u64map_t *m = c ? node_u64map_get(&c->watches, remote.shard) : NULL;
    node_watchers_t *w = m ? node_u64map_get(m, remote.id) : NULL;
    if (!w)
        return;
    for (uint32_t i = 0; i < w->n; i++)
        if (w->ids[i] == watcher.id) {
            w->ids[i] = w->ids[--w->n];
            c->nwatches--;
            break;
        }
    if (w->n == 0)
        free(node_u64map_del(m, remote.id));
}

size_t node_watch_count(node_shard_t *sh)
{
    return sh->cluster ? sh->cluster->nwatches : 0;
}

static void s_free_watchmap(node_u64map_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            free(m->vals[i]);
    node_u64map_free(m);
    free(m);
}

void node_watch_fini(node_cluster_t *c)
{
    for (size_t i = 0; i < c->watches.cap; i++)
        if (c->watches.keys[i])
            s_free_watchmap(c->watches.vals[i]);
    node_u64map_free(&c->watches);
    c->nwatches = 0;
}

/* ------------------------------------------------------------------------- */
/* Recording, telling, being told                                             */

/*  add_monitor of a spawn request: one address or an array of them. */
static void s_watch_listed(node_shard_t *sh, node_ref_t child, json_object *am)
{
    node_ref_t m;
    if (json_object_is_type(am, json_type_string)) {
        if (node_parse_addr(json_object_get_string(am), &m) == 0)
            node_watch_add(sh, child, m);
        return;
    }
    if (!json_object_is_type(am, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(am) && i < 64; i++)
        if (node_parse_addr(json_object_get_string(json_object_array_get_idx(am, i)), &m) == 0)
            node_watch_add(sh, child, m); /* only our own actors are kept */
}

void node_watch_sent(node_shard_t *sh, node_ref_t to, json_object *body, const char *action)
{
    node_ref_t ref;
    if (strcmp(action, "monitor") == 0) {
        if (node_parse_addr(skick_get_string(body, "address", ""), &ref) == 0)
            node_watch_add(sh, to, ref);
        return;
    }
    json_object *am;
    if (strcmp(action, "spawn") == 0 && to.id == to.shard &&
        node_parse_addr(skick_get_string(body, "name", ""), &ref) == 0 && ref.shard == to.shard &&
        json_object_object_get_ex(body, "add_monitor", &am))
        s_watch_listed(sh, ref, am);
}

void node_watch_tell(node_shard_t *sh, node_ref_t watched, node_ref_t monitor)
{
    node_cluster_t *c = sh->cluster;
    if (!c || monitor.shard == sh->id || !monitor.id || node_u64map_get(&c->lost, monitor.shard))
        return; /* a monitor on a lost shard is gone: nobody to tell */
    char m[SKICK_ADDR_LEN + 1];
    node_format_addr(m, monitor.shard, monitor.id);
    json_object *b = json_object_new_object();
    json_object_object_add(b, "action", json_object_new_string("watch"));
    json_object_object_add(b, "monitor", json_object_new_string(m));
    if (node_cluster_send(sh, SKICK_KIND_ACTOR, watched, (node_ref_t){monitor.shard, monitor.shard},
                          &b, true, 0) != 0) {
        json_object_put(b);
        node_count_dead(sh, skick_errno());
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "%016llx:%016llx: cannot tell the "
                         "shard of its monitor %s (%s): no sentinel reaches it if this shard "
                         "is lost", (unsigned long long) watched.shard,
                         (unsigned long long) watched.id, m, skick_strerror(skick_errno()));
    }
}

void node_watch_notice(node_shard_t *sh, node_ref_t from, json_object *body)
{
    node_ref_t m;
    if (from.shard == sh->id || !from.id ||
        node_parse_addr(skick_get_string(body, "monitor", ""), &m) != 0 || m.shard != sh->id) {
        sh->stats.malformed++;
        NODE_LOG_LIMITED(SKICK_LOG_WARNING, "cluster", "a \"watch\" notice that does not name "
                         "one of our actors as the monitor of a remote actor dropped");
        return;
    }
    if (node_u64map_get(&sh->actors, m.id))
        node_watch_add(sh, from, m); /* a monitor that ended needs no sentinel */
}

/* ------------------------------------------------------------------------- */
/* Loss of a shard                                                            */

/*  Sentinels for the watchers of remote shard `shard`'s actors in m, which
    has been taken out of c->watches (delivery may record new watches);
    frees m. Returns how many were delivered. */
static size_t s_fire(node_shard_t *sh, uint64_t shard, node_u64map_t *m, const char *why)
{
    size_t nsent = 0, nwatched = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        node_watchers_t *w = m->vals[i];
        nwatched += w->n;
        for (uint32_t k = 0; k < w->n; k++) {
            json_object *s = node_sentinel_new(shard, m->keys[i], why);
            if (node_deliver_ref(sh, (node_ref_t){shard, m->keys[i]},
                                 (node_ref_t){sh->id, w->ids[k]}, &s, true) == 0)
                nsent++;
        }
    }
    s_free_watchmap(m);
    sh->cluster->nwatches -= nwatched;
    return nsent;
}

void node_watch_shard_lost(node_shard_t *sh, uint64_t id, const char *reason)
{
    node_cluster_t *c = sh->cluster;
    if (!c || id == sh->id || node_u64map_get(&c->lost, id))
        return;
    node_u64map_put(&c->lost, id, (void *) 1);
    node_u64map_t *m = node_u64map_del(&c->watches, id);
    size_t nsent = m ? s_fire(sh, id, m, "shard lost") : 0;
    node_conv_shard_lost(sh, id, SKICK_EPARTNER);
    node_directory_forget(sh, id);
    SKICK_LOG(SKICK_LOG_NOTICE, "cluster", "shard %016llx lost (%s): %zu sentinel(s) delivered",
              (unsigned long long) id, reason, nsent);
}

/*  Why every watch, not only those of shards that die: the broker holds
    what it had not yet routed, so a sentinel (or a session's last message)
    may have been lost with it, and nothing would ever say so. Like a lost
    connection between Erlang nodes: the remote side is gone as far as this
    shard can tell. Sessions across shards end through these sentinels, on
    both sides (their receptionist and session actor watch each other). */
void node_watch_link_lost(node_shard_t *sh, const char *why)
{
    node_cluster_t *c = sh->cluster;
    if (!c)
        return;
    size_t nsent = 0, nshards = 0;
    node_u64map_t all = c->watches;
    node_u64map_init(&c->watches);
    for (size_t i = 0; i < all.cap; i++)
        if (all.keys[i]) {
            nshards++;
            nsent += s_fire(sh, all.keys[i], all.vals[i], why);
        }
    node_u64map_free(&all);
    node_conv_shard_lost(sh, 0, SKICK_EUNREACH);
    if (nshards)
        SKICK_LOG(SKICK_LOG_NOTICE, "cluster", "%s: %zu sentinel(s) delivered for actors of %zu "
                  "other shard(s)", why, nsent, nshards);
}
