/*  test_wire - envelopes over real ZeroMQ sockets (inproc), link sequence
    numbers and endpoint derivation. Malformed multipart messages must be
    consumed whole and refused without desynchronising the next message.
*/
#include <criterion/criterion.h>
#include <string.h>
#include <zmq.h>

#include "skick_wire.h"

static skick_envelope_t s_env(uint64_t seq, const char *json)
{
    skick_envelope_t e = {.kind = SKICK_KIND_ACTOR, .seq = seq, .from_shard = 1, .from_id = 2,
                          .to_shard = 3, .to_id = 4};
    e.body = json ? json_tokener_parse(json) : NULL;
    return e;
}

typedef struct {
    void *ctx, *router, *dealer;
} pair_t;

static pair_t s_pair(void)
{
    pair_t p;
    p.ctx = zmq_ctx_new();
    p.router = zmq_socket(p.ctx, ZMQ_ROUTER);
    p.dealer = zmq_socket(p.ctx, ZMQ_DEALER);
    uint8_t rid[8];
    skick_id_to_rid(0xabcdef, rid);
    zmq_setsockopt(p.dealer, ZMQ_ROUTING_ID, rid, sizeof rid);
    int timeout = 2000;
    zmq_setsockopt(p.router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(p.dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    cr_assert_eq(zmq_bind(p.router, "inproc://wire"), 0);
    cr_assert_eq(zmq_connect(p.dealer, "inproc://wire"), 0);
    return p;
}

static void s_close(pair_t *p)
{
    zmq_close(p->router);
    zmq_close(p->dealer);
    zmq_ctx_term(p->ctx);
}

Test(wire, round_trip_routed)
{
    pair_t p = s_pair();
    skick_envelope_t e = s_env(9, "{\"action\":\"x\",\"n\":[1,2]}");
    cr_assert_eq(skick_wire_send(p.dealer, NULL, 0, &e, 0), 0);
    uint8_t rid[SKICK_RID_MAX];
    size_t rlen = sizeof rid;
    skick_envelope_t *got;
    char why[128];
    cr_assert_eq(skick_wire_recv(p.router, true, 0, rid, &rlen, &got, why, sizeof why), 1, "%s",
                 why);
    cr_assert_eq(skick_rid_to_id(rid, rlen), 0xabcdef);
    cr_assert_eq(got->seq, 9);
    cr_assert(json_object_equal(got->body, e.body));
    /* and back through the ROUTER to the DEALER */
    cr_assert_eq(skick_wire_send(p.router, rid, rlen, got, 0), 0);
    skick_envelope_t *back;
    cr_assert_eq(skick_wire_recv(p.dealer, false, 0, NULL, NULL, &back, why, sizeof why), 1);
    cr_assert(json_object_equal(back->body, e.body));
    skick_envelope_destroy(&got);
    skick_envelope_destroy(&back);
    json_object_put(e.body);
    s_close(&p);
}

Test(wire, malformed_messages_are_consumed_whole)
{
    pair_t p = s_pair();
    /* one frame only; three frames of junk; a bad header; then a good one */
    zmq_send(p.dealer, "junk", 4, 0);
    zmq_send(p.dealer, "a", 1, ZMQ_SNDMORE);
    zmq_send(p.dealer, "b", 1, ZMQ_SNDMORE);
    zmq_send(p.dealer, "c", 1, 0);
    uint8_t badhead[SKICK_ENVELOPE_HEADER] = {0xAA, 0x51, 9};
    zmq_send(p.dealer, badhead, sizeof badhead, ZMQ_SNDMORE);
    zmq_send(p.dealer, "{}", 2, 0);
    skick_envelope_t e = s_env(1, "{\"action\":\"ok\"}");
    skick_wire_send(p.dealer, NULL, 0, &e, 0);
    uint8_t rid[SKICK_RID_MAX];
    char why[128];
    skick_envelope_t *got;
    for (int i = 0; i < 3; i++) {
        size_t rlen = sizeof rid;
        cr_assert_eq(skick_wire_recv(p.router, true, 0, rid, &rlen, &got, why, sizeof why), -1,
                     "message %d accepted", i);
        cr_assert_null(got);
        cr_assert_eq(rlen, 8, "the routing id is kept to answer the peer");
    }
    size_t rlen = sizeof rid;
    cr_assert_eq(skick_wire_recv(p.router, true, 0, rid, &rlen, &got, why, sizeof why), 1);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(got->body, "action")), "ok");
    skick_envelope_destroy(&got);
    json_object_put(e.body);
    /* nothing more: DONTWAIT says so */
    rlen = sizeof rid;
    cr_assert_eq(skick_wire_recv(p.router, true, ZMQ_DONTWAIT, rid, &rlen, &got, why,
                                 sizeof why),
                 0);
    s_close(&p);
}

Test(wire, link_sequence_numbers)
{
    skick_link_t l = {0};
    skick_link_reset(&l);
    cr_assert_eq(skick_link_next(&l), 1);
    cr_assert_eq(skick_link_next(&l), 2);
    cr_assert_eq(skick_link_accept(&l, 1), 0);
    cr_assert_eq(skick_link_accept(&l, 2), 0);
    cr_assert_eq(skick_link_accept(&l, 5), 2, "3 and 4 are missing");
    cr_assert_eq(l.gaps, 2);
    cr_assert_eq(skick_link_accept(&l, 5), -1, "a duplicate");
    cr_assert_eq(skick_link_accept(&l, 3), -1, "stale");
    cr_assert_eq(l.dups, 2);
    skick_link_reset(&l);
    cr_assert_eq(skick_link_accept(&l, 1), 0, "a new link starts again at 1");
}

Test(wire, endpoint_derivation)
{
    char out[128];
    cr_assert_eq(skick_endpoint_derive("tcp://127.0.0.1:7400", SKICK_EP_DIR_IN, out, sizeof out),
                 0);
    cr_assert_str_eq(out, "tcp://127.0.0.1:7401");
    cr_assert_eq(skick_endpoint_derive("tcp://[::1]:7400", SKICK_EP_DIR_OUT, out, sizeof out), 0);
    cr_assert_str_eq(out, "tcp://[::1]:7402");
    cr_assert_eq(skick_endpoint_derive("ipc:///run/skick/b", SKICK_EP_DIR_OUT, out, sizeof out),
                 0);
    cr_assert_str_eq(out, "ipc:///run/skick/b.dir-out");
    cr_assert_eq(skick_endpoint_derive("tcp://h:*", SKICK_EP_DIR_IN, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("tcp://h:65534", SKICK_EP_DIR_IN, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("tcp://h", SKICK_EP_DIR_IN, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("udp://h:1", SKICK_EP_DIR_IN, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("ipc://", SKICK_EP_DIR_IN, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("tcp://h:1", SKICK_EP_DIR_IN, out, 8), -1);
}
