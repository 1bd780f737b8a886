/*  fuzz_broker - the broker's handling of received frame sets
    (broker/broker_route.c and what it calls: peers, control, hash store)

    The broker's own code opens its sockets (broker_net_open) on inproc://
    endpoints, memory only, once; each input then runs against a fresh
    broker_t (empty peer tables and hash store) and feeds it records, each
    handed to broker_route_handle as broker_route_drain would after
    skick_wire_recv_held, or to broker_route_malformed when it is not an
    envelope. No receive socket is involved; what the broker sends goes to
    in-process DEALERs standing for three peers, and is read back.

    A record: sel (1 byte), header length (1 byte) and header, body length
    (16-bit big-endian) and body. sel & 3 picks the sender: shard A or B on
    the shard ROUTER, client C on the control ROUTER, or a routing id no
    socket has (answers to it fail, EHOSTUNREACH). sel & 4 swaps the
    ROUTER; sel & 8 makes the record a frame set with the wrong number of
    frames. After the last record the timer runs far in the future (every
    shard is declared lost, every client forgotten).

    What must hold:
      - everything the broker sends is one well-formed envelope (two frames
        that skick_envelope_decode accepts: known kind, nonzero seq, never
        half an address), and each peer's sequence numbers go up by one or
        restart at 1 (an answer before joining); welcome answers, which
        peers read outside the link's numbering, carry 1 (and a welcome
        restarts the link);
      - nothing is lost silently (DESIGN.md §9): every record but a
        HEARTBEAT or LOST from a joined peer (accepted, nothing to say)
        makes the broker send something or count it;
      - no crash, leak or undefined behaviour, whatever the order of joins,
        leaves, losses and requests.
*/
#include <string.h>

#include "broker.h"
#include "fuzz_common.h"

#define S_SHARD_EP "inproc://fuzz-broker-shard"
#define S_CONTROL_EP "inproc://fuzz-broker-control"

enum { S_A, S_B, S_C, S_NOBODY, S_PEERS };

static broker_t s_net;                 /* the sockets, opened once */
static zsock_t *s_dealer[S_PEERS - 1]; /* the peers that can hear answers */
static uint64_t s_last_seq[S_PEERS - 1];
static const uint8_t s_rid[S_PEERS][8] = {
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11},
    {0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22},
    {0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33},
    {0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44},
};

/*  At exit, before CZMQ's own shutdown (registered earlier, so run later),
    which would report the sockets still open. */
static void s_close_all(void)
{
    for (int i = 0; i < S_NOBODY; i++)
        zsock_destroy(&s_dealer[i]);
    broker_net_close(&s_net);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fuzz_warm_up();
    fuzz_signals_elsewhere();
    skick_log_set_level(SKICK_LOG_SILENT);
    zsys_handler_set(NULL); /* libFuzzer handles the signals */
    s_net.cfg.bind = S_SHARD_EP;
    snprintf(s_net.cfg.control, sizeof s_net.cfg.control, "%s", S_CONTROL_EP);
    snprintf(s_net.cfg.dir_out, sizeof s_net.cfg.dir_out, "inproc://fuzz-broker-dir-out");
    FUZZ_ASSERT(broker_net_open(&s_net) == 0, "the broker's sockets did not open");
    for (int i = 0; i < S_NOBODY; i++) {
        zsock_t *d = zsock_new(ZMQ_DEALER);
        zsock_set_rcvhwm(d, 0);
        zmq_setsockopt(zsock_resolve(d), ZMQ_ROUTING_ID, s_rid[i], sizeof s_rid[i]);
        FUZZ_ASSERT(zsock_connect(d, "%s", i == S_C ? S_CONTROL_EP : S_SHARD_EP) == 0,
                    "a peer did not connect");
        s_dealer[i] = d;
    }
    atexit(s_close_all);
    return 0;
}

/*  Read what the broker sent to every peer and check it. Returns the
    number of envelopes read. */
static int s_read_peers(void)
{
    int n = 0;
    for (int i = 0; i < S_NOBODY; i++) {
        for (;;) {
            char why[128] = "";
            skick_envelope_t *e = NULL;
            int rc = skick_wire_recv(zsock_resolve(s_dealer[i]), false, ZMQ_DONTWAIT, NULL, NULL,
                                     &e, why, sizeof why);
            if (rc == 0)
                break;
            FUZZ_ASSERT(rc == 1, "the broker sent peer %d a bad envelope (%d): %s", i, rc, why);
            json_object *welcome = NULL;
            if (e->kind == SKICK_KIND_REPLY)
                json_object_object_get_ex(e->body, "welcome", &welcome);
            if (welcome) { /* outside the link's numbering: seq 1, the link restarts on true */
                FUZZ_ASSERT(e->seq == 1, "a welcome with seq %llu", (unsigned long long) e->seq);
                if (json_object_get_boolean(welcome))
                    s_last_seq[i] = 1;
            } else {
                FUZZ_ASSERT(e->seq == 1 || e->seq == s_last_seq[i] + 1,
                            "peer %d got seq %llu after %llu", i, (unsigned long long) e->seq,
                            (unsigned long long) s_last_seq[i]);
                s_last_seq[i] = e->seq;
            }
            skick_envelope_destroy(&e);
            n++;
        }
    }
    return n;
}

static broker_t *s_broker_new(void)
{
    broker_t *b = calloc(1, sizeof *b);
    b->cfg = s_net.cfg;
    b->cfg.heartbeat_ms = 500;
    b->cfg.lost_after_ms = 3000;
    b->cfg.client_timeout_ms = 30000;
    b->instance = 0x0123456789abcdefULL;
    broker_id_hex(b->instance, b->instance_hex);
    memcpy(b->router, s_net.router, sizeof b->router);
    b->xpub = s_net.xpub;
    b->started_ms = zclock_mono();
    broker_peers_init(b);
    b->hash = broker_hash_new();
    return b;
}

static void s_broker_destroy(broker_t *b)
{
    broker_peers_destroy(b);
    broker_hash_destroy(&b->hash);
    free(b);
}

/*  One record: decoded as skick_wire_recv_held does, then handled. */
static void s_record(broker_t *b, uint8_t sel, const uint8_t *head, size_t hlen,
                     const uint8_t *body, size_t blen)
{
    int who = sel & 3;
    int sock = (who == S_C) != !!(sel & 4) ? BROKER_SOCK_CONTROL : BROKER_SOCK_SHARD;
    const uint8_t *rid = s_rid[who];
    broker_stats_t before = b->stats;
    memset(b->sent_on, 0, sizeof b->sent_on);
    bool quiet_ok = false;
    if (sel & 8) {
        broker_route_malformed(b, sock, rid, 8, "wrong number of frames (want 3)");
    } else {
        skick_wire_held_t m;
        zmq_msg_init_size(&m.head, hlen);
        memcpy(zmq_msg_data(&m.head), head, hlen);
        zmq_msg_init_size(&m.body, blen);
        if (blen)
            memcpy(zmq_msg_data(&m.body), body, blen);
        char why[128] = "";
        if (skick_envelope_decode_view(zmq_msg_data(&m.head), hlen, zmq_msg_data(&m.body), blen,
                                       &m.env, why, sizeof why) != 0) {
            zmq_msg_close(&m.head);
            zmq_msg_close(&m.body);
            broker_route_malformed(b, sock, rid, 8, why);
        } else {
            int kind = m.env.kind;
            quiet_ok = (kind == SKICK_KIND_HEARTBEAT || kind == SKICK_KIND_LOST) &&
                       broker_peer_by_rid(b, sock, rid, 8);
            broker_route_handle(b, sock, rid, 8, &m);
            skick_wire_held_close(&m);
        }
    }
    bool sent = false;
    for (int i = 0; i < BROKER_SOCKS; i++)
        sent |= b->sent_on[i];
    FUZZ_ASSERT(sent || quiet_ok || memcmp(&before, &b->stats, sizeof before) != 0,
                "a record from peer %d was neither answered nor counted", who);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input_begin();
    broker_t *b = s_broker_new();
    memset(s_last_seq, 0, sizeof s_last_seq);
    fuzz_cursor_t c = fuzz_cursor(data, size);
    const uint8_t *sel, *hlen, *head, *blen, *body;
    while ((sel = fuzz_take(&c, 1)) && (hlen = fuzz_take(&c, 1)) && (head = fuzz_take(&c, *hlen)) &&
           (blen = fuzz_take(&c, 2)) && (body = fuzz_take(&c, (size_t) blen[0] << 8 | blen[1]))) {
        s_record(b, *sel, head, *hlen, body, (size_t) blen[0] << 8 | blen[1]);
        s_read_peers();
    }
    broker_peers_tick(b, zclock_mono() + 3600 * 1000);
    s_read_peers();
    FUZZ_ASSERT(zhashx_size(b->by_id) == 0, "%zu peers outlived the timer", zhashx_size(b->by_id));
    s_broker_destroy(b);
    fuzz_input_end();
    return 0;
}
