/*  broker_dir - the cluster directory: adverts in on the XSUB, entries out
    on the XPUB

    Shards publish their full entry (a DIRECTORY envelope, body {"shard",
    "version", ...}) whenever it changes and every 2 s. The broker keeps the
    newest version of each joined shard's entry in that shard's peer record
    (broker_peer_t.dir), republishes each entry it accepts, republishes all
    of them when a subscriber appears (XPUB_VERBOSE shows every
    subscription), and publishes {"shard": id, "lost": true} when a shard is
    lost. Entries from shards that have not joined are dropped and counted;
    an entry that is not newer than the one held (the periodic repeat) is
    dropped silently. Published envelopes carry the entry's version as seq
    and from/to 0/0. Runs on the broker thread.
*/
#include "broker.h"

#include <errno.h>
#include <string.h>

static void s_publish(broker_t *b, json_object *body, int64_t version)
{
    skick_envelope_t e = {.kind = SKICK_KIND_DIRECTORY, .seq = (uint64_t) version, .body = body};
    broker_net_publish(b, &e);
}

static void s_refuse(broker_t *b, const char *why)
{
    b->stats.malformed++;
    broker_log_limited(&b->rl_malformed, SKICK_LOG_WARNING, "directory", "advert refused: %s", why);
}

static void s_advert(broker_t *b, skick_envelope_t *e)
{
    if (e->kind != SKICK_KIND_DIRECTORY) {
        s_refuse(b, "not a DIRECTORY envelope");
        return;
    }
    uint64_t id;
    const char *shard = broker_json_str(e->body, "shard");
    if (!shard || broker_id_parse(shard, &id) != 0 || id == 0) {
        s_refuse(b, "the entry has no valid \"shard\" id");
        return;
    }
    json_object *v;
    int64_t version = (int64_t) e->seq;
    if (json_object_object_get_ex(e->body, "version", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1) {
            s_refuse(b, "the entry's \"version\" is not a positive integer");
            return;
        }
        version = json_object_get_int64(v);
    }
    broker_peer_t *p = broker_peer_by_id(b, id);
    if (!p || !p->shard) {
        b->stats.dir_dropped++;
        broker_log_limited(&b->rl_stranger, SKICK_LOG_INFO, "directory",
                           "entry of %s dropped: not a joined shard", shard);
        return;
    }
    if (version <= p->dir_version)
        return;
    json_object_put(p->dir);
    p->dir = json_object_get(e->body);
    p->dir_version = version;
    b->stats.dir_accepted++;
    s_publish(b, p->dir, version);
}

int broker_dir_drain_in(broker_t *b)
{
    void *raw = zsock_resolve(b->xsub);
    int n = 0;
    while (n < BROKER_BATCH) {
        skick_envelope_t *e = NULL;
        char why[128] = "";
        int rc = skick_wire_recv(raw, false, ZMQ_DONTWAIT, NULL, NULL, &e, why, sizeof why);
        if (rc == 0)
            break;
        if (rc == -2)
            return -1; /* errno EINTR: the caller looks again */
        n++;
        if (rc < 0) {
            s_refuse(b, why);
            continue;
        }
        s_advert(b, e);
        skick_envelope_destroy(&e);
    }
    return n;
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
            s_refuse(b, "not a subscription message on the directory-out socket");
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
