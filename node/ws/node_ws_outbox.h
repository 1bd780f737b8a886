/*  node_ws_outbox.h - a client connection's bounded queue of websocket frames

    The reactor never waits for a client: a frame that the socket does not
    take at once waits here, and the connection is flushed when the socket
    becomes writable again. The queue is bounded in bytes and in frames; what
    happens when a frame does not fit (close the client, or refuse the frame)
    is the connection's send policy, decided by the caller with
    node_outbox_admit (PROTOCOL.md "Slow clients").

    The outbox is plain data: no locks, no sockets. The owner serialises use
    (node_ws_write.c holds the connection's lock; the test kit's fake server runs on
    one thread). It owns its buffers; frames are copied in.

    Bytes are counted from the first byte ever queued or written ("stream
    offsets"), so that a frame's end stays valid while the buffer moves.
*/
#ifndef NODE_WS_OUTBOX_H_INCLUDED
#define NODE_WS_OUTBOX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Bounds and policy of one connection's outbox. */
typedef struct node_outbox_limits {
    size_t bytes;  /* queued bytes at most (headers included) */
    size_t frames; /* queued frames at most */
    int policy;    /* SKICK_SEND_CLOSE or SKICK_SEND_REFUSE (skick/session.h) */
} node_outbox_limits_t;

typedef struct node_outbox {
    char *buf;         /* queued bytes are buf[head, tail) */
    size_t head;       /* first unwritten byte */
    size_t tail;       /* end of the queued bytes */
    size_t cap;        /* allocated size of buf */
    uint64_t *ends;    /* ring: stream offset where each queued frame ends */
    uint32_t first;    /* ring index of the oldest queued frame */
    uint32_t nframes;  /* frames queued (partly written ones included) */
    uint32_t capends;  /* ring size, a power of two */
    uint64_t written;  /* stream offset of buf[head]: bytes written so far */
    uint64_t peak;     /* largest byte count ever queued, for stats */
} node_outbox_t;

/*  Most bytes a websocket frame header of ours takes (no mask). */
#define NODE_WS_HEADER_MAX 10

/*  Encode the header of an unmasked, final frame of `opcode` carrying len
    payload bytes into hdr. Returns the header's length (2, 4 or 10). */
size_t node_ws_frame_header(unsigned char hdr[NODE_WS_HEADER_MAX], int opcode, size_t len);

/*  An empty outbox; allocates nothing. */
void node_outbox_init(node_outbox_t *o);
/*  Free the buffers; the outbox is empty and reusable afterwards. */
void node_outbox_free(node_outbox_t *o);

/*  Bytes queued and not yet written. */
size_t node_outbox_bytes(const node_outbox_t *o);
/*  Frames queued and not yet completely written. */
size_t node_outbox_frames(const node_outbox_t *o);

/*  Whether a frame of frame_bytes (header included) may be queued behind
    what is queued now under l: 0 yes; SKICK_ETOOBIG when it could never fit
    (larger than l->bytes); SKICK_EBACKLOG when it does not fit now. */
int node_outbox_admit(const node_outbox_t *o, const node_outbox_limits_t *l,
                      size_t frame_bytes);

/*  Queue one frame made of hdr (hlen bytes) and payload (plen bytes), of
    which the first `skip` bytes were written to the socket already (by a
    direct write, allowed only while the outbox is empty; 0 otherwise).
    Copies. Control frames are pushed without node_outbox_admit: like
    control messages, they are exempt from the bounds. */
void node_outbox_push(node_outbox_t *o, const void *hdr, size_t hlen, const void *payload,
                      size_t plen, size_t skip);

/*  The bytes to write next: *p and *n (n = 0 when empty). Borrowed until the
    next call that changes the outbox. */
void node_outbox_peek(const node_outbox_t *o, const char **p, size_t *n);

/*  n bytes of the front were written: drop them, and the frames they end. */
void node_outbox_wrote(node_outbox_t *o, size_t n);

#endif
