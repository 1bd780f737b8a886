/*  node_ws_outbox - a client connection's bounded queue of websocket frames

    One contiguous buffer of encoded frames, written from the front and
    appended at the back, and a ring with the stream offset at which each
    queued frame ends (to count the frames not yet completely written). The buffer is compacted when its
    free space is at the front, and released when it empties after holding
    more than NODE_OUTBOX_KEEP bytes, so that a client that was slow once
    does not keep a megabyte for the rest of its life.

    See node_ws_outbox.h for ownership; nothing here blocks or locks.
*/
#include "node_ws_outbox.h"

#include "node_core.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define NODE_OUTBOX_KEEP 65536 /* buffer kept across empty periods */

size_t node_ws_frame_header(unsigned char hdr[NODE_WS_HEADER_MAX], int opcode, size_t len)
{
    hdr[0] = (unsigned char) (0x80 | (opcode & 0x0f));
    if (len < 126) {
        hdr[1] = (unsigned char) len;
        return 2;
    }
    if (len < 65536) {
        hdr[1] = 126;
        hdr[2] = (unsigned char) (len >> 8);
        hdr[3] = (unsigned char) len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (unsigned char) ((uint64_t) len >> (56 - 8 * i));
    return 10;
}

void node_outbox_init(node_outbox_t *o)
{
    memset(o, 0, sizeof *o);
}

void node_outbox_free(node_outbox_t *o)
{
    free(o->buf);
    free(o->ends);
    uint64_t written = o->written, peak = o->peak;
    node_outbox_init(o);
    o->written = written; /* stream offsets stay monotonic */
    o->peak = peak;
}

size_t node_outbox_bytes(const node_outbox_t *o)
{
    return o->tail - o->head;
}

size_t node_outbox_frames(const node_outbox_t *o)
{
    return o->nframes;
}

int node_outbox_admit(const node_outbox_t *o, const node_outbox_limits_t *l,
                      size_t frame_bytes)
{
    if (frame_bytes > l->bytes)
        return SKICK_ETOOBIG;
    if (node_outbox_bytes(o) + frame_bytes > l->bytes || o->nframes + 1 > l->frames)
        return SKICK_EBACKLOG;
    return 0;
}

/*  Make room for n more bytes at the back. */
static void s_reserve(node_outbox_t *o, size_t n)
{
    size_t used = o->tail - o->head;
    if (o->tail + n <= o->cap)
        return;
    if (o->head > 0 && used + n <= o->cap) { /* the free space is at the front */
        memmove(o->buf, o->buf + o->head, used);
        o->head = 0;
        o->tail = used;
        return;
    }
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < used + n)
        cap *= 2;
    char *buf = node_malloc(cap);
    if (used)
        memcpy(buf, o->buf + o->head, used);
    free(o->buf);
    o->buf = buf;
    o->cap = cap;
    o->head = 0;
    o->tail = used;
}

static void s_add_end(node_outbox_t *o, uint64_t end)
{
    if (o->nframes == o->capends) {
        uint32_t cap = o->capends ? o->capends * 2 : 16;
        uint64_t *ends = node_malloc(cap * sizeof *ends);
        for (uint32_t i = 0; i < o->nframes; i++)
            ends[i] = o->ends[(o->first + i) & (o->capends - 1)];
        free(o->ends);
        o->ends = ends;
        o->capends = cap;
        o->first = 0;
    }
    o->ends[(o->first + o->nframes) & (o->capends - 1)] = end;
    o->nframes++;
}

void node_outbox_push(node_outbox_t *o, const void *hdr, size_t hlen, const void *payload,
                      size_t plen, size_t skip)
{
    assert(skip == 0 || node_outbox_bytes(o) == 0);
    assert(skip <= hlen + plen);
    o->written += skip;
    size_t hskip = skip < hlen ? skip : hlen;
    size_t pskip = skip - hskip;
    size_t n = (hlen - hskip) + (plen - pskip);
    s_reserve(o, n);
    memcpy(o->buf + o->tail, (const char *) hdr + hskip, hlen - hskip);
    o->tail += hlen - hskip;
    if (plen > pskip)
        memcpy(o->buf + o->tail, (const char *) payload + pskip, plen - pskip);
    o->tail += plen - pskip;
    s_add_end(o, o->written + node_outbox_bytes(o));
    if (node_outbox_bytes(o) > o->peak)
        o->peak = node_outbox_bytes(o);
}

void node_outbox_peek(const node_outbox_t *o, const char **p, size_t *n)
{
    *p = o->buf ? o->buf + o->head : NULL;
    *n = node_outbox_bytes(o);
}

void node_outbox_wrote(node_outbox_t *o, size_t n)
{
    assert(n <= node_outbox_bytes(o));
    o->head += n;
    o->written += n;
    while (o->nframes && o->ends[o->first] <= o->written) {
        o->first = (o->first + 1) & (o->capends - 1);
        o->nframes--;
    }
    if (o->head == o->tail) {
        if (o->cap > NODE_OUTBOX_KEEP) {
            node_outbox_free(o);
            return;
        }
        o->head = o->tail = 0;
    }
}
