/*  skick_wire - envelopes on ZeroMQ sockets, link sequence numbers, endpoints

    Shared by skick-node, skick-broker and the client library (skickctl).
    The functions take libzmq socket handles (void *; for a CZMQ zsock_t use
    zsock_resolve) and never block unless asked to. Specified in
    proto/PROTOCOL.md ("The cluster").

    Ownership: skick_wire_send borrows the envelope; skick_wire_recv hands a
    new envelope to the caller; skick_wire_recv_held fills the caller's
    skick_wire_held_t, which skick_wire_forward empties of its frames.
*/
#ifndef SKICK_WIRE_H_INCLUDED
#define SKICK_WIRE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "skick_envelope.h"

#define SKICK_RID_MAX 255 /* longest ZeroMQ routing id */

/*  Send e as one multipart message: [rid] header body. rid may be NULL
    (DEALER, PUB). zflags: 0 or ZMQ_DONTWAIT. Returns 0, or -1 with errno
    set by libzmq (EAGAIN, EHOSTUNREACH with ROUTER_MANDATORY...); on
    failure nothing was sent. */
int skick_wire_send(void *sock, const uint8_t *rid, size_t rid_len, const skick_envelope_t *e,
                    int zflags);

/*  Receive one message from sock. routed: a routing-id frame comes first
    (ROUTER, XPUB is not routed). rid/rid_len: where to store the routing id
    (*rid_len in: capacity, out: length); may be NULL when not routed.
    Returns:
       1  *out is a new envelope (caller owns)
       0  nothing waiting (ZMQ_DONTWAIT and EAGAIN)
      -1  a message was read and refused: every frame of it was consumed and
          why says what was wrong (wrong frame count, bad header or body);
          skick_errno() is SKICK_EVERSION when it was an envelope of
          another protocol version, else SKICK_EPROTO
      -2  socket error (errno from libzmq, e.g. ETERM, EINTR) */
int skick_wire_recv(void *sock, bool routed, int zflags, uint8_t *rid, size_t *rid_len,
                    skick_envelope_t **out, char *why, size_t whylen);

/*  A message received on a ROUTER and kept in its frames, for a process
    that forwards what it does not read (the broker): env is a view
    (skick_envelope_decode_view: env.raw points into the body frame), and
    skick_wire_forward sends the same frames on without copying them. */
typedef struct {
    zmq_msg_t head, body;
    skick_envelope_t env;
} skick_wire_held_t;

/*  skick_wire_recv for a ROUTER, the message kept in *m. Returns as
    skick_wire_recv; after 1, release m with skick_wire_held_close. */
int skick_wire_recv_held(void *sock, int zflags, uint8_t *rid, size_t *rid_len,
                         skick_wire_held_t *m, char *why, size_t whylen);

/*  Send m's frames to rid on a ROUTER, with seq in place of m->env.seq.
    Returns 0 (the frames went: m->env.raw is gone, m->env.body stays), or
    -1 with errno as skick_wire_send (nothing sent, m unchanged but seq). */
int skick_wire_forward(void *sock, const uint8_t *rid, size_t rid_len, skick_wire_held_t *m,
                       uint64_t seq, int zflags);

/*  Release m (its parsed body and its frames). */
void skick_wire_held_close(skick_wire_held_t *m);

/*  Per-direction sequence numbers of a link (PROTOCOL.md "Peers and links"). */
typedef struct {
    uint64_t next_out; /* next seq to send (1 after reset) */
    uint64_t last_in;  /* last seq received, 0 = none yet */
    uint64_t gaps;     /* envelopes found missing */
    uint64_t dups;     /* envelopes dropped as duplicates */
} skick_link_t;

/*  Restart both counters (a new HELLO / welcome). */
void skick_link_reset(skick_link_t *l);

/*  The seq for the next outgoing envelope (consumed). */
uint64_t skick_link_next(skick_link_t *l);
/*  The seq the next outgoing envelope will carry, not consumed: for a send
    that may fail (consume it with skick_link_next once it went out). */
uint64_t skick_link_peek(const skick_link_t *l);

/*  Account an incoming seq. Returns 0 when it is the expected one, n > 0
    when n envelopes before it are missing (it is accepted; l->gaps grows),
    -1 for a duplicate or stale number (drop it; l->dups grows). */
int64_t skick_link_accept(skick_link_t *l, uint64_t seq);

/*  The derived endpoints. 1 was the broker's XSUB (directory entries in);
    shards now send their entry over their own DEALER link, so that the
    broker knows who sent it, and P+1 is no longer bound. */
enum {
    SKICK_EP_DIR_OUT = 2 /* the broker's XPUB: shards' SUB connects here */
};

/*  Derive the directory endpoint from the broker's ROUTER endpoint:
    tcp://H:P -> tcp://H:P+2, ipc://PATH -> ipc://PATH.dir-out (which must
    be SKICK_EP_DIR_OUT). Returns 0, or -1 when ep is not tcp:// with a
    numeric port below 65534 or ipc:// (or out is too small). */
int skick_endpoint_derive(const char *ep, int which, char *out, size_t outlen);

/*  Shard ids as 8 big-endian bytes (the DEALER routing id) and back. */
void skick_id_to_rid(uint64_t id, uint8_t rid[8]);
uint64_t skick_rid_to_id(const uint8_t *rid, size_t len); /* 0 unless len == 8 */

#endif
