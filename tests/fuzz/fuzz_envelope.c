/*  fuzz_envelope - what decodes bytes received from the wire: envelope
    headers and bodies (proto/skick_envelope.c) and frame sets on ZeroMQ
    sockets (proto/skick_wire.c)

    Input: one flags byte, one routing-id capacity byte, then frames, each
    a 16-bit big-endian length and its bytes (at most S_FRAMES). Frames 0
    and 1 are decoded as header and body. Flags bit 0: the frames also go,
    as one multipart message, through an in-process socket pair (inproc://,
    memory only): DEALER to ROUTER, read by skick_wire_recv (bit 1 clear) or
    skick_wire_recv_held (bit 1 set), or PAIR to PAIR, not routed (bit 2);
    a valid envelope follows them on the same socket.

    What must hold:
      - skick_envelope_decode (building) and skick_envelope_decode_view
        (checking: the broker) agree; a refusal sets SKICK_EPROTO and says
        why;
      - an accepted envelope has a known kind, a nonzero seq, whole or no
        addresses, a 52-byte header that encodes back to the same bytes, and
        the same body both ways (the view's lazily parsed body equals the
        decoded one; its body text is the frame itself; the decoded body's
        text reads back to an equal tree);
      - a frame set read from a socket is accepted exactly when it is one
        header and one body (after the routing id) that decode, the routing
        id comes out when it fits, and the valid envelope sent after it is
        read intact: a bad frame set never desynchronises what follows.
*/
#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "fuzz_common.h"
#include "skick/err.h"
#include "skick_wire.h"

#define S_FRAMES 6
#define S_RID "fuzz-rid" /* the DEALER's routing id: 8 bytes */

static void *s_ctx, *s_router, *s_dealer, *s_pair_in, *s_pair_out;

static void *s_socket(int type, const char *bind, const char *connect)
{
    void *s = zmq_socket(s_ctx, type);
    int linger = 0, hwm = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (type == ZMQ_DEALER)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, S_RID, strlen(S_RID));
    int rc = bind ? zmq_bind(s, bind) : zmq_connect(s, connect);
    FUZZ_ASSERT(rc == 0, "inproc socket: %s", zmq_strerror(errno));
    return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fuzz_warm_up();
    fuzz_signals_elsewhere();
    s_ctx = zmq_ctx_new();
    s_router = s_socket(ZMQ_ROUTER, "inproc://fuzz-envelope-router", NULL);
    s_dealer = s_socket(ZMQ_DEALER, NULL, "inproc://fuzz-envelope-router");
    s_pair_in = s_socket(ZMQ_PAIR, "inproc://fuzz-envelope-pair", NULL);
    s_pair_out = s_socket(ZMQ_PAIR, NULL, "inproc://fuzz-envelope-pair");
    return 0;
}

typedef struct {
    const uint8_t *data;
    size_t len;
} s_frame_t;

static bool s_same_header(const skick_envelope_t *a, const skick_envelope_t *b)
{
    return a->kind == b->kind && a->seq == b->seq && a->flags == b->flags && a->gen == b->gen &&
           a->from_shard == b->from_shard && a->from_id == b->from_id &&
           a->to_shard == b->to_shard && a->to_id == b->to_id;
}

/*  Decode frames h and b both ways and check the promises. Returns the
    decoded envelope (caller destroys) or NULL. */
static skick_envelope_t *s_decode(s_frame_t h, s_frame_t b)
{
    char why[128] = "", vwhy[128] = "";
    skick_set_errno(0);
    skick_envelope_t *e = skick_envelope_decode(h.data, h.len, b.data, b.len, why, sizeof why);
    /* EVERSION: a Skick header of another protocol version, named as such */
    FUZZ_ASSERT(e || ((skick_errno() == SKICK_EPROTO || skick_errno() == SKICK_EVERSION) && why[0]),
                "refused without EPROTO or EVERSION and why");
    skick_envelope_t view;
    int vrc = skick_envelope_decode_view(h.data, h.len, b.data, b.len, &view, vwhy, sizeof vwhy);
    FUZZ_ASSERT((vrc == 0) == (e != NULL), "decode %s, the view %s (%s%s)",
                e ? "accepts" : "refuses", vrc == 0 ? "accepts" : "refuses", why, vwhy);
    if (!e)
        return NULL;
    FUZZ_ASSERT(e->kind > 0 && e->kind < SKICK_KIND_COUNT_ &&
                    strcmp(skick_kind_name(e->kind), "UNKNOWN") != 0,
                "kind %d accepted", e->kind);
    FUZZ_ASSERT(e->seq != 0, "seq 0 accepted");
    FUZZ_ASSERT((e->from_shard == 0) == (e->from_id == 0) && (e->to_shard == 0) == (e->to_id == 0),
                "half an address accepted");
    uint8_t again[SKICK_ENVELOPE_HEADER];
    FUZZ_ASSERT(h.len == SKICK_ENVELOPE_HEADER, "a %zu-byte header accepted", h.len);
    skick_envelope_encode_header(e, again);
    FUZZ_ASSERT(memcmp(again, h.data, sizeof again) == 0, "the header does not encode back");
    FUZZ_ASSERT(s_same_header(e, &view), "decode and view read different headers");
    FUZZ_ASSERT(!e->raw && view.body == NULL, "decode keeps raw text or the view parsed");
    size_t n;
    const char *text = skick_envelope_body_text(&view, &n);
    FUZZ_ASSERT(n == b.len && (n == 0 || text == (const char *) b.data),
                "the view's body text is not its frame");
    json_object *lazy = skick_envelope_body(&view);
    FUZZ_ASSERT(json_object_equal(lazy, e->body), "the view's body differs");
    FUZZ_ASSERT(b.len || (!e->body && !lazy), "an empty body frame made a body");
    text = skick_envelope_body_text(e, &n);
    json_object *back = NULL;
    FUZZ_ASSERT(!e->body || skick_json_parse_strict(text, n, &back) == 0,
                "the body's text does not read back: '%s'", fuzz_show(text, n));
    FUZZ_ASSERT(json_object_equal(back, e->body), "the body's text reads back differently");
    json_object_put(back);
    skick_envelope_clear(&view);
    return e;
}

/*  Send frames as one multipart message (an empty set sends nothing). */
static void s_send_frames(void *sock, const s_frame_t *f, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = zmq_send(sock, f[i].data, f[i].len, i + 1 < n ? ZMQ_SNDMORE : 0);
        FUZZ_ASSERT(rc >= 0, "inproc send: %s", zmq_strerror(errno));
    }
}

/*  The valid envelope sent after the fuzzed frames. */
static const skick_envelope_t s_after = {
    .kind = SKICK_KIND_ACTOR, .seq = 424242, .from_shard = 7, .from_id = 8};

static void s_expect_after(void *sock, bool routed, bool held)
{
    uint8_t rid[SKICK_RID_MAX];
    size_t rid_len = sizeof rid;
    char why[128] = "";
    skick_envelope_t *e = NULL;
    skick_wire_held_t m;
    int rc = held ? skick_wire_recv_held(sock, ZMQ_DONTWAIT, rid, &rid_len, &m, why, sizeof why)
                  : skick_wire_recv(sock, routed, ZMQ_DONTWAIT, rid, &rid_len, &e, why, sizeof why);
    FUZZ_ASSERT(rc == 1, "the envelope after the frames was not read (%d: %s)", rc, why);
    const skick_envelope_t *got = held ? &m.env : e;
    FUZZ_ASSERT(s_same_header(got, &s_after), "the envelope after the frames changed");
    if (held)
        skick_wire_held_close(&m);
    skick_envelope_destroy(&e);
    rc = skick_wire_recv(sock, routed, ZMQ_DONTWAIT, rid, &rid_len, &e, why, sizeof why);
    FUZZ_ASSERT(rc == 0, "something more was waiting (%d)", rc);
}

static void s_wire(const s_frame_t *f, int n, uint8_t flags, size_t rid_cap,
                   skick_envelope_t *decoded)
{
    bool routed = !(flags & 4), held = routed && (flags & 2);
    void *out = routed ? s_dealer : s_pair_out, *in = routed ? s_router : s_pair_in;
    if (n == 0)
        return; /* nothing to send: a message has at least one frame */
    s_send_frames(out, f, n);
    FUZZ_ASSERT(skick_wire_send(out, NULL, 0, &s_after, 0) == 0, "send: %s", zmq_strerror(errno));
    uint8_t rid[SKICK_RID_MAX];
    size_t rid_len = rid_cap;
    char why[128] = "";
    skick_envelope_t *e = NULL;
    skick_wire_held_t m;
    int rc = held ? skick_wire_recv_held(in, ZMQ_DONTWAIT, rid, &rid_len, &m, why, sizeof why)
                  : skick_wire_recv(in, routed, ZMQ_DONTWAIT, rid, &rid_len, &e, why, sizeof why);
    bool fits = strlen(S_RID) <= rid_cap;
    bool want = n == 2 && decoded && (!routed || fits);
    FUZZ_ASSERT(rc == (want ? 1 : -1), "read %d, want %d (%d frames; %s)", rc, want ? 1 : -1, n,
                why);
    FUZZ_ASSERT(rc == 1 || why[0], "refused without a reason");
    if (routed)
        FUZZ_ASSERT(fits ? rid_len == strlen(S_RID) && memcmp(rid, S_RID, rid_len) == 0
                         : rid_len == 0,
                    "routing id %zu bytes (capacity %zu)", rid_len, rid_cap);
    if (rc == 1) {
        const skick_envelope_t *got = held ? &m.env : e;
        FUZZ_ASSERT(s_same_header(got, decoded), "the socket read another header");
        FUZZ_ASSERT(held ? got->raw_len == f[1].len &&
                               (!f[1].len || !memcmp(got->raw, f[1].data, f[1].len))
                         : json_object_equal(got->body, decoded->body),
                    "the socket read another body");
        if (held)
            skick_wire_held_close(&m);
        skick_envelope_destroy(&e);
    }
    s_expect_after(in, routed, held);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input_begin();
    fuzz_cursor_t c = fuzz_cursor(data, size);
    uint8_t flags = fuzz_byte(&c, 0);
    size_t rid_cap = fuzz_byte(&c, 255) % (SKICK_RID_MAX + 1);
    s_frame_t f[S_FRAMES] = {{NULL, 0}};
    int n = 0;
    const uint8_t *len_bytes;
    while (n < S_FRAMES && (len_bytes = fuzz_take(&c, 2))) {
        size_t len = (size_t) len_bytes[0] << 8 | len_bytes[1];
        const uint8_t *bytes = fuzz_take(&c, len);
        if (!bytes) { /* the rest of the input is the last frame */
            len = (size_t) (c.end - c.p);
            bytes = fuzz_take(&c, len);
        }
        f[n++] = (s_frame_t){bytes, len};
    }
    skick_envelope_t *e = s_decode(f[0], f[1]);
    if (flags & 1)
        s_wire(f, n, flags, rid_cap, e);
    skick_envelope_destroy(&e);
    fuzz_input_end();
    return 0;
}
