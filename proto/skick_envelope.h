/*  skick_envelope - one message between processes: header frame + JSON body

    Private to the project's processes (skick-node, skick-broker, skickctl);
    specified in proto/PROTOCOL.md ("Envelopes"). An envelope travels as two
    ZeroMQ frames: a fixed 52-byte binary header and the body, compact JSON
    text. This module only converts between the struct and the bytes; it
    knows nothing of sockets. Decoding validates every field and never
    trusts a length from the wire: any mismatch is SKICK_EPROTO.

    Ownership: an envelope owns its body (a json_object, or NULL), never its
    raw text (a view into a frame). skick_envelope_decode returns a new
    envelope the caller owns.
*/
#ifndef SKICK_ENVELOPE_H_INCLUDED
#define SKICK_ENVELOPE_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skick_json.h"

#define SKICK_ENVELOPE_SIGNATURE 0xAA51u /* first two bytes of every header */
#define SKICK_ENVELOPE_VERSION 1
#define SKICK_ENVELOPE_HEADER 52              /* bytes */
#define SKICK_ENVELOPE_MAX_BODY (16u << 20) /* 16 MiB */

/*  Message kinds; numbers are fixed forever (retired ones stay reserved). */
#define SKICK_KIND_MAP(XX)                                                          \
    XX(1, ACTOR, "an actor message")                                                \
    XX(2, CLIENT, "a client message for a session, checked under a generation")    \
    XX(3, DEAD_LETTER, "a message that could not be delivered, back to its sender") \
    XX(4, HELLO, "a shard joins (body: roles, types, sessions)")                    \
    XX(5, HEARTBEAT, "a shard is alive")                                            \
    XX(6, DIRECTORY, "directory update (types, sessions, services, shards)")       \
    XX(7, CONTROL, "a control request (skickctl)")                                  \
    XX(8, REPLY, "the answer to a control request")                                 \
    XX(9, LOST, "a shard was declared lost")

typedef enum {
#define SKICK_KIND_ENUM_(n, name, text) SKICK_KIND_##name = n,
    SKICK_KIND_MAP(SKICK_KIND_ENUM_)
#undef SKICK_KIND_ENUM_
    SKICK_KIND_COUNT_
} skick_kind_t;

#define SKICK_ENVELOPE_CONTROL 0x1u /* flag: a control message (sentinel...): never refused */

typedef struct {
    uint8_t kind;                 /* skick_kind_t */
    uint64_t seq;                 /* per-link sequence number, from 1 */
    uint32_t flags;               /* SKICK_ENVELOPE_* */
    uint32_t gen;                 /* CLIENT: schema generation */
    uint64_t from_shard, from_id; /* sender, 0/0 when none */
    uint64_t to_shard, to_id;     /* recipient, 0/0 when not an actor */
    json_object *body;            /* owned, or NULL */
    const char *raw;              /* unparsed body text (a view), borrowed, or NULL */
    size_t raw_len;               /* its length */
} skick_envelope_t;

/*  Encode e's header into out (SKICK_ENVELOPE_HEADER bytes). */
void skick_envelope_encode_header(const skick_envelope_t *e,
                                  uint8_t out[SKICK_ENVELOPE_HEADER]);

/*  The body as compact JSON text (borrowed from e->body, or e->raw when the
    envelope was decoded lazily and its body never parsed; valid until they
    change); "" for no body. *len gets its length. */
const char *skick_envelope_body_text(const skick_envelope_t *e, size_t *len);

/*  Decode a header frame and a body frame. Returns a new envelope (caller
    owns), or NULL with SKICK_EPROTO in skick_errno() and a reason in why:
    wrong size or signature, unknown kind, zero sequence number, a body over
    SKICK_ENVELOPE_MAX_BODY or not one strict JSON value; SKICK_EVERSION for
    a header of another version (skick_envelope_check_version). */
skick_envelope_t *skick_envelope_decode(const void *header, size_t header_len,
                                        const void *body, size_t body_len, char *why,
                                        size_t whylen);

/*  Whether header (a frame of header_len bytes) is a Skick envelope header
    of another version: -1 with SKICK_EVERSION in skick_errno() and a reason
    naming both versions in why, else 0 (ours, or not an envelope at all).
    Only the signature and the version byte are read: they keep their place
    in every version. */
int skick_envelope_check_version(const void *header, size_t header_len, char *why,
                                 size_t whylen);

/*  The same checks into *out (the caller's storage), but the body is only
    validated (skick_json_valid) and out->raw points at it: for a process
    that forwards bodies it does not read (the broker). body must outlive
    the view's use; skick_envelope_body parses it when needed. Returns 0,
    or -1 as skick_envelope_decode fails. Release with skick_envelope_clear. */
int skick_envelope_decode_view(const void *header, size_t header_len, const void *body,
                               size_t body_len, skick_envelope_t *out, char *why, size_t whylen);

/*  e's body as JSON (borrowed), parsing e->raw on first use; NULL for no
    body. */
json_object *skick_envelope_body(skick_envelope_t *e);

/*  Release what e owns (its parsed body) but not e itself: for a view or an
    envelope on the stack. */
void skick_envelope_clear(skick_envelope_t *e);

/*  Free e and its body; NULL-safe; sets *e_p to NULL. */
void skick_envelope_destroy(skick_envelope_t **e_p);

/*  The kind's name ("ACTOR"), or "UNKNOWN". */
const char *skick_kind_name(int kind);

/*  True when v holds no NaN or infinite number (JSON has none). */
bool skick_json_finite(json_object *v);

#endif
