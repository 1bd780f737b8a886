/*  broker_dir - the cluster directory: each shard's own entry in over its
    link, every entry out on the XPUB

    Shards send their full entry (a DIRECTORY envelope, body {"shard",
    "version", ...}) on their DEALER link whenever it changes and every 2 s.
    The broker decides who publishes what: an entry is taken only from a
    shard (not a client), only when its "shard" is the id that connection
    joined with, and only when its version is newer than the last one taken
    from that connection since its HELLO (a new HELLO starts the count
    again). An entry naming another shard is refused whatever its version,
    so that nobody can replace or shadow another shard's entry; refusals are
    logged under a budget and counted (directory_refused), entries that are
    not newer are dropped and counted (directory_dropped). The entry taken
    is kept in the shard's peer record (broker_peer_t.dir) and republished
    on the XPUB; all of them are republished when a subscriber appears
    (XPUB_VERBOSE shows every subscription), and {"shard": id, "lost": true}
    when a shard is lost. Published envelopes carry the entry's version as
    seq and from/to 0/0. Runs on the broker thread.
*/
#include "broker_dir.h"
#include "broker_net.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void s_publish(broker_t *b, json_object *body, int64_t version)
{
    skick_envelope_t e = {.kind = SKICK_KIND_DIRECTORY, .seq = (uint64_t) version, .body = body};
    broker_net_publish(b, &e);
}

static void s_refuse(broker_t *b, const broker_peer_t *p, const char *why)
{
    b->stats.dir_refused++;
    broker_log_limited(&b->rl_refused, SKICK_LOG_WARNING, "directory",
                       "directory entry from %s %s refused: %s", p->shard ? "shard" : "client",
                       p->hex, why);
}

void broker_dir_advert(broker_t *b, broker_peer_t *p, const skick_envelope_t *e)
{
    if (!p->shard) {
        s_refuse(b, p, "only shards publish directory entries");
        return;
    }
    uint64_t id;
    const char *shard = broker_json_str(e->body, "shard");
    if (!shard || broker_id_parse(shard, &id) != 0) {
        s_refuse(b, p, "the entry has no valid \"shard\" id");
        return;
    }
    if (id != p->id) {
        char why[96];
        snprintf(why, sizeof why, "it names shard %.16s: a shard publishes its own entry only",
                 shard);
        s_refuse(b, p, why);
        return;
    }
    json_object *v;
    if (!json_object_object_get_ex(e->body, "version", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1) {
        s_refuse(b, p, "the entry's \"version\" is not a positive integer");
        return;
    }
    int64_t version = json_object_get_int64(v);
    if (version <= p->dir_version) {
        b->stats.dir_dropped++; /* a shard's versions only grow: a replay */
        SKICK_LOG(SKICK_LOG_DEBUG, "directory",
                  "entry of %s version %lld dropped: not newer than %lld", p->hex,
                  (long long) version, (long long) p->dir_version);
        return;
    }
    json_object_put(p->dir);
    p->dir = json_object_get(e->body);
    p->dir_version = version;
    b->stats.dir_accepted++;
    s_publish(b, p->dir, version);
}

static void s_malformed(broker_t *b, const char *why)
{
    b->stats.malformed++;
    broker_log_limited(&b->rl_malformed, SKICK_LOG_WARNING, "directory", "%s", why);
}

int broker_dir_drain_subs(broker_t *b)
{
    void *raw = zsock_resolve(b->xpub);
    int n = 0;
    while (n < BROKER_BATCH) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, raw, ZMQ_DONTWAIT) < 0) {
            int err = zmq_errno();
            zmq_msg_close(&m);
            if (err == EAGAIN)
                return n;
            errno = err;
            return -1;
        }
        n++;
        const uint8_t *data = zmq_msg_data(&m);
        size_t size = zmq_msg_size(&m);
        bool more = zmq_msg_more(&m);
        if (size >= 1 && data[0] == 1 && !more)
            b->republish = true; /* a (re)subscription: it needs every entry */
        else if (!(size >= 1 && data[0] == 0 && !more))
            s_malformed(b, "not a subscription message on the directory-out socket");
        while (more) { /* consume the rest of a multipart message */
            if (zmq_msg_recv(&m, raw, 0) < 0)
                break;
            more = zmq_msg_more(&m);
        }
        zmq_msg_close(&m);
    }
    return n;
}

void broker_dir_republish_all(broker_t *b)
{
    for (broker_peer_t *p = zhashx_first(b->by_id); p; p = zhashx_next(b->by_id))
        if (p->shard && p->dir)
            s_publish(b, p->dir, p->dir_version);
}

void broker_dir_forget(broker_t *b, broker_peer_t *p)
{
    json_object *body = json_object_new_object();
    json_object_object_add(body, "shard", json_object_new_string(p->hex));
    json_object_object_add(body, "lost", json_object_new_boolean(1));
    s_publish(b, body, p->dir_version + 1);
    json_object_put(body);
    json_object_put(p->dir);
    p->dir = NULL;
    p->dir_version = 0;
}
