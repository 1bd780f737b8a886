/*  skick_wire - envelopes on ZeroMQ sockets, link sequence numbers, endpoints

    A message is [routing id] header body; anything else (a missing or extra
    frame, a frame over the limits) is consumed whole and refused, so one
    bad peer cannot desynchronise the frames that follow it.
*/
#include "skick_wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "skick/err.h"

int skick_wire_send(void *sock, const uint8_t *rid, size_t rid_len, const skick_envelope_t *e,
                    int zflags)
{
    uint8_t head[SKICK_ENVELOPE_HEADER];
    skick_envelope_encode_header(e, head);
    size_t blen;
    const char *body = skick_envelope_body_text(e, &blen);
    /* ZeroMQ sends a multipart message atomically once its first frame is
       accepted, so only the first send can fail with EAGAIN/EHOSTUNREACH. */
    if (rid && zmq_send(sock, rid, rid_len, zflags | ZMQ_SNDMORE) < 0)
        return -1;
    if (zmq_send(sock, head, sizeof head, zflags | ZMQ_SNDMORE) < 0)
        return -1;
    if (zmq_send(sock, body, blen, zflags) < 0)
        return -1;
    return 0;
}

/*  Receive a frame that follows in the same multipart message: it is there
    already (ZeroMQ delivers a message whole), so only a signal can get in
    the way; retry then, or the rest would be read as the next message. */
static int s_recv_part(zmq_msg_t *m, void *sock)
{
    int rc;
    do
        rc = zmq_msg_recv(m, sock, 0);
    while (rc < 0 && errno == EINTR);
    return rc;
}

/*  Consume the rest of a multipart message. */
static void s_drain(void *sock, zmq_msg_t *m)
{
    int more = 1;
    size_t sz = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        if (s_recv_part(m, sock) < 0)
            break;
    }
}

static bool s_more(void *sock)
{
    int more = 0;
    size_t sz = sizeof more;
    return zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more;
}

/*  Read one message's frames: [rid] header body. Returns 1 with frames
    [0, want) filled (the caller closes all three), 0 (EAGAIN), -1 refused
    (all consumed and closed; the routing id copied out when there was one)
    or -2 (socket error). */
static int s_recv_frames(void *sock, bool routed, int zflags, zmq_msg_t frames[3], uint8_t *rid,
                         size_t *rid_len, char *why, size_t whylen)
{
    int want = routed ? 3 : 2;
    int got = 0;
    int rc = -1;
    for (int i = 0; i < 3; i++)
        zmq_msg_init(&frames[i]);
    if (zmq_msg_recv(&frames[0], sock, zflags) < 0) {
        rc = (errno == EAGAIN || errno == EINTR) ? 0 : -2; /* a signal: nothing read yet */
        goto fail;
    }
    got = 1;
    while (got < want && s_more(sock)) {
        if (s_recv_part(&frames[got], sock) < 0) {
            rc = -2;
            goto fail;
        }
        got++;
    }
    bool whole = got == want && !s_more(sock);
    if (!whole)
        s_drain(sock, &frames[got < 3 ? got : 2]);
    /* the routing id, even of a bad message, is still useful to answer the peer */
    bool rid_fits = false;
    if (routed && rid && rid_len) {
        size_t n = zmq_msg_size(&frames[0]);
        rid_fits = n <= *rid_len;
        if (rid_fits)
            memcpy(rid, zmq_msg_data(&frames[0]), n);
        *rid_len = rid_fits ? n : 0;
    }
    int h = routed ? 1 : 0;
    if (!whole && got > h &&
        skick_envelope_check_version(zmq_msg_data(&frames[h]), zmq_msg_size(&frames[h]), why,
                                     whylen) != 0)
        goto fail; /* another version may frame its messages otherwise: EVERSION */
    if (!whole || (routed && !rid_fits)) {
        if (!whole)
            snprintf(why, whylen, "wrong number of frames (want %d)", want);
        else
            snprintf(why, whylen, "routing id too long");
        skick_set_errno(SKICK_EPROTO);
        goto fail;
    }
    return 1;
fail:
    for (int i = 0; i < 3; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

int skick_wire_recv(void *sock, bool routed, int zflags, uint8_t *rid, size_t *rid_len,
                    skick_envelope_t **out, char *why, size_t whylen)
{
    *out = NULL;
    zmq_msg_t frames[3];
    int rc = s_recv_frames(sock, routed, zflags, frames, rid, rid_len, why, whylen);
    if (rc != 1)
        return rc;
    int h = routed ? 1 : 0;
    *out = skick_envelope_decode(zmq_msg_data(&frames[h]), zmq_msg_size(&frames[h]),
                                 zmq_msg_data(&frames[h + 1]), zmq_msg_size(&frames[h + 1]), why,
                                 whylen);
    for (int i = 0; i < 3; i++)
        zmq_msg_close(&frames[i]);
    return *out ? 1 : -1;
}

int skick_wire_recv_held(void *sock, int zflags, uint8_t *rid, size_t *rid_len,
                         skick_wire_held_t *m, char *why, size_t whylen)
{
    zmq_msg_t frames[3];
    int rc = s_recv_frames(sock, true, zflags, frames, rid, rid_len, why, whylen);
    if (rc != 1)
        return rc;
    zmq_msg_close(&frames[0]); /* the routing id was copied out */
    zmq_msg_init(&m->head);
    zmq_msg_init(&m->body);
    zmq_msg_move(&m->head, &frames[1]);
    zmq_msg_move(&m->body, &frames[2]);
    zmq_msg_close(&frames[1]);
    zmq_msg_close(&frames[2]);
    if (skick_envelope_decode_view(zmq_msg_data(&m->head), zmq_msg_size(&m->head),
                                   zmq_msg_data(&m->body), zmq_msg_size(&m->body), &m->env, why,
                                   whylen) != 0) {
        zmq_msg_close(&m->head);
        zmq_msg_close(&m->body);
        return -1;
    }
    return 1;
}

int skick_wire_forward(void *sock, const uint8_t *rid, size_t rid_len, skick_wire_held_t *m,
                       uint64_t seq, int zflags)
{
    /* The header frame is ours: only its seq changes (bytes 4..11). */
    uint8_t *h = zmq_msg_data(&m->head);
    for (int i = 0; i < 8; i++)
        h[4 + i] = (uint8_t) (seq >> (56 - 8 * i));
    /* As in skick_wire_send, only the first frame can fail; the others are
       then moved into the socket (their zmq_msg_t left empty). */
    if (zmq_send(sock, rid, rid_len, zflags | ZMQ_SNDMORE) < 0)
        return -1;
    if (zmq_msg_send(&m->head, sock, zflags | ZMQ_SNDMORE) < 0 ||
        zmq_msg_send(&m->body, sock, zflags) < 0)
        return -1;
    m->env.raw = NULL; /* the text went with the frame */
    m->env.raw_len = 0;
    return 0;
}

void skick_wire_held_close(skick_wire_held_t *m)
{
    skick_envelope_clear(&m->env);
    zmq_msg_close(&m->head);
    zmq_msg_close(&m->body);
}

void skick_link_reset(skick_link_t *l)
{
    l->next_out = 1;
    l->last_in = 0;
}

uint64_t skick_link_next(skick_link_t *l)
{
    if (l->next_out == 0)
        l->next_out = 1;
    return l->next_out++;
}

uint64_t skick_link_peek(const skick_link_t *l)
{
    return l->next_out ? l->next_out : 1;
}

int64_t skick_link_accept(skick_link_t *l, uint64_t seq)
{
    if (seq <= l->last_in) {
        l->dups++;
        return -1;
    }
    uint64_t missing = seq - l->last_in - 1;
    l->last_in = seq;
    l->gaps += missing;
    return (int64_t) (missing > INT64_MAX ? INT64_MAX : missing);
}

int skick_endpoint_derive(const char *ep, int which, char *out, size_t outlen)
{
    if (!ep || which != SKICK_EP_DIR_OUT)
        return -1;
    int n;
    if (strncmp(ep, "ipc://", 6) == 0 && ep[6]) {
        n = snprintf(out, outlen, "%s.dir-out", ep);
        return (n < 0 || (size_t) n >= outlen) ? -1 : 0;
    }
    if (strncmp(ep, "tcp://", 6) != 0)
        return -1;
    const char *colon = strrchr(ep + 6, ':');
    if (!colon || colon == ep + 6 || !colon[1])
        return -1;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || port <= 0 || port >= 65534)
        return -1;
    n = snprintf(out, outlen, "%.*s:%ld", (int) (colon - ep), ep, port + which);
    return (n < 0 || (size_t) n >= outlen) ? -1 : 0;
}

void skick_id_to_rid(uint64_t id, uint8_t rid[8])
{
    for (int i = 0; i < 8; i++)
        rid[i] = (uint8_t) (id >> (56 - 8 * i));
}

uint64_t skick_rid_to_id(const uint8_t *rid, size_t len)
{
    if (len != 8)
        return 0;
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | rid[i];
    return id;
}
