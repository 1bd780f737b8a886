/*  node_cluster_join - joining the cluster and leaving it

    node_cluster_join makes the link's sockets (CURVE when configured: the
    shard's own certificate and the broker's public key), connects them,
    registers them with the reactor, switches the shard's hashes to the
    broker's store (unless a backend was chosen at start: --hash) and its
    transport to the cluster's, and starts waiting for the welcome
    (node_admit.c). node_cluster_leave says goodbye (LOST
    about ourselves, after the backlog for up to a second) and frees it all;
    the shard is standalone again. The link's traffic is node_cluster.c's.
*/
#include "node_cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* Joining and leaving                                                        */

static int s_curve(zsock_t *sock, zcert_t *own, const char *server_key)
{
    if (!own)
        return 0;
    zcert_apply(own, sock);
    zsock_set_curve_serverkey(sock, server_key);
    return 0;
}

static void s_free_schema(void *p)
{
    skick_schema_t *s = p;
    skick_schema_destroy(&s);
}

static void s_destroy(node_shard_t *sh)
{
    node_cluster_t *c = sh->cluster;
    if (!c)
        return;
    if (c->tick)
        node_timer_cancel(sh, c->tick);
    node_cluster_hash_fail_all(sh);
    node_cluster_fail_backlog(sh);
    if (c->dealer)
        node_admit_fini(sh);
    node_io_remove(sh, zsock_fd(c->dealer));
    node_io_remove(sh, zsock_fd(c->sub));
    zsock_destroy(&c->dealer);
    zsock_destroy(&c->sub);
    json_object_put(c->hello);
    node_directory_fini(c);
    node_strmap_free(&c->handshakes, s_free_schema);
    node_watch_fini(c);
    node_u64map_free(&c->lost);
    node_u64map_free(&c->hash_pending);
    node_cluster_metrics_fini(c);
    free(c);
    sh->cluster = NULL;
    sh->transport = NULL; /* standalone again */
    sh->poll_hook = NULL;
    if (sh->hash == &node_hash_broker) {
        sh->hash = &node_hash_inproc;
        sh->hash_state = sh->hash->open(sh, NULL);
    }
}

int node_cluster_join(node_shard_t *sh, const node_cluster_opts_t *o, char *err, size_t errlen)
{
    char dir_out[300];
    if (skick_endpoint_derive(o->broker, SKICK_EP_DIR_OUT, dir_out, sizeof dir_out) != 0 ||
        strlen(o->broker) >= sizeof sh->cluster->endpoint) {
        snprintf(err, errlen, "--broker %s: want tcp://HOST:PORT or ipc://PATH", o->broker);
        return -1;
    }
    zcert_t *own = NULL, *server = NULL;
    if (o->curve_secret || o->curve_server) {
        if (!o->curve_secret || !o->curve_server) {
            snprintf(err, errlen, "CURVE needs both --curve-secret and --curve-server");
            return -1;
        }
        own = zcert_load(o->curve_secret);
        server = zcert_load(o->curve_server);
        if (!own || !server) {
            snprintf(err, errlen, "cannot load the certificate %s",
                     own ? o->curve_server : o->curve_secret);
            zcert_destroy(&own);
            zcert_destroy(&server);
            return -1;
        }
    }
    zsys_handler_set(NULL); /* our signalfd handles SIGINT/SIGTERM (DEPS.md) */
    node_cluster_t *c = node_calloc(1, sizeof *c);
    sh->cluster = c;
    sh->transport = &node_cluster_transport; /* how the layers below reach the others */
    snprintf(c->endpoint, sizeof c->endpoint, "%s", o->broker);
    c->heartbeat_ms = 500;
    c->lost_after_ms = 3000;
    node_directory_init(c);
    node_strmap_init(&c->handshakes);
    node_u64map_init(&c->watches);
    node_u64map_init(&c->lost);
    node_u64map_init(&c->hash_pending);
    c->hello = node_admit_hello_body(sh, o);
    c->dealer = zsock_new(ZMQ_DEALER);
    c->sub = zsock_new(ZMQ_SUB);
    if (!c->dealer || !c->sub) {
        snprintf(err, errlen, "cannot create ZeroMQ sockets");
        zcert_destroy(&own);
        zcert_destroy(&server);
        s_destroy(sh);
        return -1;
    }
    const char *server_key = server ? zcert_public_txt(server) : NULL;
    s_curve(c->dealer, own, server_key);
    s_curve(c->sub, own, server_key);
    uint8_t rid[8];
    skick_id_to_rid(sh->id, rid);
    zmq_setsockopt(zsock_resolve(c->dealer), ZMQ_ROUTING_ID, rid, sizeof rid);
    zsock_set_immediate(c->dealer, 1); /* never queue toward a broker that is not there */
    zsock_set_sndhwm(c->dealer, 100000);
    zsock_set_rcvhwm(c->dealer, 100000);
    /* Not 0: libzmq 4.3.4 aborts when a connection fails during a close with
       linger 0 and a multipart message half sent (see BROKER_LINGER_MS). */
    zsock_set_linger(c->dealer, NODE_CLUSTER_LINGER_MS);
    zsock_set_linger(c->sub, NODE_CLUSTER_LINGER_MS);
    zsock_set_subscribe(c->sub, "");
    if (node_admit_init(sh, own != NULL, dir_out) != 0) {
        snprintf(err, errlen, "cannot monitor the broker connection: %s",
                 zmq_strerror(zmq_errno()));
        zcert_destroy(&own);
        zcert_destroy(&server);
        s_destroy(sh);
        return -1;
    }
    int rc = zsock_connect(c->dealer, "%s", o->broker);
    rc |= zsock_connect(c->sub, "%s", dir_out);
    zcert_destroy(&own);
    zcert_destroy(&server);
    if (rc != 0) {
        snprintf(err, errlen, "cannot connect to the broker at %s: %s", o->broker,
                 zmq_strerror(zmq_errno()));
        s_destroy(sh);
        return -1;
    }
    node_io_add(sh, zsock_fd(c->dealer), node_cluster_on_fd, NULL);
    node_io_add(sh, zsock_fd(c->sub), node_cluster_on_fd, NULL);
    sh->poll_hook = node_cluster_poll_hook;
    if (sh->hash == &node_hash_inproc) { /* a backend chosen at start (--hash) stays */
        sh->hash->close(sh->hash_state);
        sh->hash = &node_hash_broker; /* the cluster-wide store */
        sh->hash_state = sh->hash->open(sh, NULL);
    }
    node_cluster_metrics_start(sh);
    node_admit_wait(sh);
    c->tick = node_timer_add(sh, NODE_CLUSTER_TICK_MS, node_cluster_tick, NULL);
    SKICK_LOG(SKICK_LOG_INFO, "cluster", "joining the cluster at %s", o->broker);
    return 0;
}

void node_cluster_leave(node_shard_t *sh)
{
    node_cluster_t *c = sh->cluster;
    if (!c)
        return;
    for (int i = 0; i < 100 && c->bl_head && c->welcomed; i++) {
        node_cluster_flush(sh); /* the last sentinels first, for up to a second */
        if (c->bl_head)
            usleep(10000);
    }
    if (c->welcomed) {
        char id[17];
        node_format_id(id, sh->id);
        json_object *b = json_object_new_object();
        json_object_object_add(b, "shard", json_object_new_string(id));
        json_object_object_add(b, "reason", json_object_new_string("left"));
        zsock_set_linger(c->dealer, 1000); /* let the goodbye (and the last sentinels) out */
        node_cluster_send_raw(sh, SKICK_KIND_LOST, (node_ref_t){sh->id, sh->id}, (node_ref_t){0, 0}, b, false, 0);
        json_object_put(b);
    }
    s_destroy(sh);
}
