/*  test_wire - envelopes over real ZeroMQ sockets (inproc), link sequence
    numbers and endpoint derivation. Malformed multipart messages must be
    consumed whole and refused without desynchronising the next message.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "skick/err.h"
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

/*  The broker's path: received into frames, forwarded without a copy, with
    only the seq rewritten; a refused forward leaves the message intact. */
Test(wire, held_messages_are_forwarded_as_they_came)
{
    pair_t p = s_pair();
    void *other = zmq_socket(p.ctx, ZMQ_DEALER);
    uint8_t orid[8];
    skick_id_to_rid(0x1234, orid);
    zmq_setsockopt(other, ZMQ_ROUTING_ID, orid, sizeof orid);
    int timeout = 2000, mandatory = 1;
    zmq_setsockopt(other, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(p.router, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    cr_assert_eq(zmq_connect(other, "inproc://wire"), 0);
    zmq_send(other, "", 0, 0); /* let the ROUTER learn its routing id */
    uint8_t rid[SKICK_RID_MAX];
    size_t rlen = sizeof rid;
    char buf[8];
    cr_assert_eq(zmq_recv(p.router, rid, sizeof rid, 0), 8);
    cr_assert_eq(zmq_recv(p.router, buf, sizeof buf, 0), 0);

    skick_envelope_t e = s_env(5, "{\"action\":\"x\", \"n\" : [1, 2.50]}");
    const char *text = " {\"action\":\"x\", \"n\" : [1, 2.50]} "; /* as a peer wrote it */
    uint8_t h[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(&e, h);
    zmq_send(p.dealer, h, sizeof h, ZMQ_SNDMORE);
    zmq_send(p.dealer, text, strlen(text), 0);
    skick_wire_held_t m;
    char why[128];
    cr_assert_eq(skick_wire_recv_held(p.router, 0, rid, &rlen, &m, why, sizeof why), 1, "%s", why);
    cr_assert_eq(skick_rid_to_id(rid, rlen), 0xabcdef);
    cr_assert_eq(m.env.seq, 5);
    cr_assert_eq(m.env.raw_len, strlen(text));
    cr_assert_null(m.env.body, "not parsed");
    /* a routing id nobody has: refused, the message intact */
    uint8_t nobody[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    cr_assert_eq(skick_wire_forward(p.router, nobody, 8, &m, 77, ZMQ_DONTWAIT), -1);
    cr_assert_eq(errno, EHOSTUNREACH);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(skick_envelope_body(&m.env),
                                                                   "action")),
                     "x", "still readable for a dead letter");
    cr_assert_eq(skick_wire_forward(p.router, orid, 8, &m, 77, ZMQ_DONTWAIT), 0);
    skick_wire_held_close(&m);
    /* the other side gets the same body bytes, seq 77, the rest of the header as sent */
    uint8_t got_h[64];
    char got_b[128];
    cr_assert_eq(zmq_recv(other, got_h, sizeof got_h, 0), SKICK_ENVELOPE_HEADER);
    int n = zmq_recv(other, got_b, sizeof got_b, 0);
    cr_assert_eq(n, (int) strlen(text));
    cr_assert(memcmp(got_b, text, (size_t) n) == 0, "byte for byte");
    skick_envelope_t want = e;
    want.seq = 77;
    uint8_t want_h[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(&want, want_h);
    cr_assert(memcmp(got_h, want_h, sizeof want_h) == 0, "only seq rewritten");
    /* a malformed message is refused whole, as skick_wire_recv does */
    zmq_send(p.dealer, "junk", 4, 0);
    rlen = sizeof rid;
    cr_assert_eq(skick_wire_recv_held(p.router, 0, rid, &rlen, &m, why, sizeof why), -1);
    cr_assert_eq(rlen, 8);
    h[3] = 0; /* kind 0 */
    zmq_send(p.dealer, h, sizeof h, ZMQ_SNDMORE);
    zmq_send(p.dealer, "{}", 2, 0);
    rlen = sizeof rid;
    cr_assert_eq(skick_wire_recv_held(p.router, 0, rid, &rlen, &m, why, sizeof why), -1);
    cr_assert_str_eq(why, "unknown message kind");
    rlen = sizeof rid;
    cr_assert_eq(skick_wire_recv_held(p.router, ZMQ_DONTWAIT, rid, &rlen, &m, why, sizeof why), 0);
    json_object_put(e.body);
    zmq_close(other);
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
    uint8_t badhead[SKICK_ENVELOPE_HEADER] = {0xAA, 0x51, 1, 99};
    zmq_send(p.dealer, badhead, sizeof badhead, ZMQ_SNDMORE);
    zmq_send(p.dealer, "{}", 2, 0);
    /* another protocol version, framed otherwise (three frames, a longer header) */
    uint8_t v2head[SKICK_ENVELOPE_HEADER + 4] = {0xAA, 0x51, 2};
    zmq_send(p.dealer, v2head, sizeof v2head, ZMQ_SNDMORE);
    zmq_send(p.dealer, "x", 1, ZMQ_SNDMORE);
    zmq_send(p.dealer, "{}", 2, 0);
    skick_envelope_t e = s_env(1, "{\"action\":\"ok\"}");
    skick_wire_send(p.dealer, NULL, 0, &e, 0);
    uint8_t rid[SKICK_RID_MAX];
    char why[128];
    skick_envelope_t *got;
    for (int i = 0; i < 4; i++) {
        size_t rlen = sizeof rid;
        cr_assert_eq(skick_wire_recv(p.router, true, 0, rid, &rlen, &got, why, sizeof why), -1,
                     "message %d accepted", i);
        cr_assert_null(got);
        cr_assert_eq(rlen, 8, "the routing id is kept to answer the peer");
        cr_assert_eq(skick_errno(), i == 3 ? SKICK_EVERSION : SKICK_EPROTO, "message %d: %s", i,
                     why);
    }
    cr_assert_str_eq(why, "unsupported envelope version 2 (this side speaks 1)");
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
    cr_assert_eq(skick_endpoint_derive("tcp://127.0.0.1:7400", SKICK_EP_DIR_OUT, out, sizeof out),
                 0);
    cr_assert_str_eq(out, "tcp://127.0.0.1:7402");
    cr_assert_eq(skick_endpoint_derive("tcp://[::1]:7400", SKICK_EP_DIR_OUT, out, sizeof out), 0);
    cr_assert_str_eq(out, "tcp://[::1]:7402");
    cr_assert_eq(skick_endpoint_derive("ipc:///run/skick/b", SKICK_EP_DIR_OUT, out, sizeof out),
                 0);
    cr_assert_str_eq(out, "ipc:///run/skick/b.dir-out");
    cr_assert_eq(skick_endpoint_derive("tcp://127.0.0.1:7400", 1, out, sizeof out), -1,
                 "the directory-in endpoint is gone (entries travel on the shard's link)");
    cr_assert_eq(skick_endpoint_derive("tcp://h:*", SKICK_EP_DIR_OUT, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("tcp://h:65534", SKICK_EP_DIR_OUT, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("tcp://h", SKICK_EP_DIR_OUT, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("udp://h:1", SKICK_EP_DIR_OUT, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("ipc://", SKICK_EP_DIR_OUT, out, sizeof out), -1);
    cr_assert_eq(skick_endpoint_derive("tcp://h:1", SKICK_EP_DIR_OUT, out, 8), -1);
}
