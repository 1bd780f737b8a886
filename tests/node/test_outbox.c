/*  test_outbox - a connection's bounded queue of websocket frames
    (node/ws/node_ws_outbox.c): framing, partial writes, bounds, memory.
*/
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "node_ws_outbox.h"
#include "skick/skick.h"

/*  Write everything queued into out (as a socket taking `chunk` bytes at a
    time would); returns the bytes written. */
static size_t s_drain(node_outbox_t *o, char *out, size_t chunk)
{
    size_t total = 0;
    for (;;) {
        const char *p;
        size_t n;
        node_outbox_peek(o, &p, &n);
        if (!n)
            return total;
        if (n > chunk)
            n = chunk;
        memcpy(out + total, p, n);
        total += n;
        node_outbox_wrote(o, n);
    }
}

static void s_push_text(node_outbox_t *o, const char *text, size_t skip)
{
    unsigned char hdr[NODE_WS_HEADER_MAX];
    size_t h = node_ws_frame_header(hdr, 1, strlen(text));
    node_outbox_push(o, hdr, h, text, strlen(text), skip);
}

Test(outbox, usage)
{
    /* Frames go in whole; they come out as the bytes of the websocket stream. */
    node_outbox_t o;
    node_outbox_init(&o);
    s_push_text(&o, "hello", 0);
    s_push_text(&o, "world", 0);
    cr_assert_eq(node_outbox_frames(&o), 2);
    cr_assert_eq(node_outbox_bytes(&o), 14);
    char out[64];
    cr_assert_eq(s_drain(&o, out, 3), 14);
    cr_assert_eq(memcmp(out, "\x81\x05hello\x81\x05world", 14), 0);
    cr_assert_eq(node_outbox_frames(&o), 0);
    node_outbox_free(&o);
}

Test(outbox, header_sizes)
{
    unsigned char h[NODE_WS_HEADER_MAX];
    cr_assert_eq(node_ws_frame_header(h, 1, 125), 2);
    cr_assert_eq(h[1], 125);
    cr_assert_eq(node_ws_frame_header(h, 1, 126), 4);
    cr_assert_eq(h[1], 126);
    cr_assert_eq((h[2] << 8) | h[3], 126);
    cr_assert_eq(node_ws_frame_header(h, 1, 65535), 4);
    cr_assert_eq(node_ws_frame_header(h, 9, 65536), 10);
    cr_assert_eq(h[0], 0x89);
    cr_assert_eq(h[1], 127);
    cr_assert_eq(h[7], 1); /* 65536 = 0x10000, big endian */
    cr_assert_eq(h[8], 0);
}

Test(outbox, frames_counted_as_they_complete)
{
    node_outbox_t o;
    node_outbox_init(&o);
    s_push_text(&o, "abc", 0); /* 5 bytes */
    s_push_text(&o, "de", 0);  /* 4 bytes */
    node_outbox_wrote(&o, 4);
    cr_assert_eq(node_outbox_frames(&o), 2, "first frame not complete yet");
    node_outbox_wrote(&o, 1);
    cr_assert_eq(node_outbox_frames(&o), 1);
    node_outbox_wrote(&o, 4);
    cr_assert_eq(node_outbox_frames(&o), 0);
    cr_assert_eq(node_outbox_bytes(&o), 0);
    node_outbox_free(&o);
}

Test(outbox, direct_write_remainder)
{
    /* The socket took 3 bytes of a 7-byte frame directly; the rest waits. */
    node_outbox_t o;
    node_outbox_init(&o);
    s_push_text(&o, "hello", 3);
    cr_assert_eq(node_outbox_bytes(&o), 4);
    cr_assert_eq(node_outbox_frames(&o), 1);
    char out[8];
    cr_assert_eq(s_drain(&o, out, 100), 4);
    cr_assert_eq(memcmp(out, "ello", 4), 0);
    cr_assert_eq(node_outbox_frames(&o), 0);
    node_outbox_free(&o);
}

Test(outbox, admit_bounds)
{
    node_outbox_t o;
    node_outbox_init(&o);
    node_outbox_limits_t l = {.bytes = 20, .frames = 2, .policy = SKICK_SEND_CLOSE};
    cr_assert_eq(node_outbox_admit(&o, &l, 21), SKICK_ETOOBIG);
    cr_assert_eq(node_outbox_admit(&o, &l, 20), 0);
    s_push_text(&o, "0123456789", 0); /* 12 bytes */
    cr_assert_eq(node_outbox_admit(&o, &l, 9), SKICK_EBACKLOG, "12 + 9 > 20");
    cr_assert_eq(node_outbox_admit(&o, &l, 8), 0);
    s_push_text(&o, "ab", 0); /* 4 bytes, 2 frames */
    cr_assert_eq(node_outbox_admit(&o, &l, 2), SKICK_EBACKLOG, "frame bound");
    node_outbox_wrote(&o, 12);
    cr_assert_eq(node_outbox_admit(&o, &l, 16), 0, "room again once written");
    node_outbox_free(&o);
}

Test(outbox, large_backlog_moves_and_is_released)
{
    /* A megabyte through a socket taking 1000 bytes at a time, appending as
       it goes: the bytes come out in order, the buffer is compacted and
       released once empty. */
    node_outbox_t o;
    node_outbox_init(&o);
    char *out = malloc(2 << 20), payload[1000];
    size_t total = 0, expect = 0;
    for (int i = 0; i < 1000; i++) {
        memset(payload, 'a' + i % 26, sizeof payload);
        unsigned char hdr[NODE_WS_HEADER_MAX];
        size_t h = node_ws_frame_header(hdr, 2, sizeof payload);
        node_outbox_push(&o, hdr, h, payload, sizeof payload, 0);
        expect += h + sizeof payload;
        const char *p;
        size_t n;
        node_outbox_peek(&o, &p, &n);
        n = n > 700 ? 700 : n;
        memcpy(out + total, p, n);
        total += n;
        node_outbox_wrote(&o, n);
    }
    cr_assert_gt(node_outbox_bytes(&o), 100000);
    total += s_drain(&o, out + total, 4096);
    cr_assert_eq(total, expect);
    for (int i = 0; i < 1000; i++) {
        const char *f = out + (size_t) i * 1004;
        cr_assert_eq((unsigned char) f[0], 0x82);
        cr_assert_eq(f[4], 'a' + i % 26, "frame %d", i);
        cr_assert_eq(f[1003], 'a' + i % 26, "frame %d", i);
    }
    cr_assert_null(o.buf, "a drained megabyte is given back");
    cr_assert_geq(o.peak, 100000);
    free(out);
    node_outbox_free(&o);
}
