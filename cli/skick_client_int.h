/*  skick_client_int - private to libskick-client (cli/skick_client*.c)

    skick_client.c: the link (connect, HELLO, sequence numbers, sending,
    heartbeats, waiting). skick_client_recv.c: receiving and dispatching
    what the broker sends (welcome, REPLY, turns, dead letters, losses).
    skick_client_ops.c: what callers do with it (control requests, sends,
    conversations, ask). The helpers below are shared between the three
    files and hidden from the library's exported symbols.
*/
#ifndef SKICK_CLIENT_INT_H_INCLUDED
#define SKICK_CLIENT_INT_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "skick/client.h"
#include "skick_wire.h"

#define CLIENT_ACTOR_ID 1ULL  /* the client's actor-side id (PROTOCOL.md) */
#define IDLE_RECHECK_MS 20000 /* a send after this much silence checks the link */

typedef struct turn {
    json_object *msg;  /* the turn's "message" (owned; NULL for JSON null) */
    struct turn *next; /* FIFO */
} turn_t;

struct skick_client_conv {
    skick_client_t *client;    /* NULL once the client is destroyed */
    char cid[33];              /* 32 lowhex */
    uint64_t to_shard, to_id;  /* the partner */
    json_object *opener;       /* kept until the first turn, to re-send after a new HELLO */
    unsigned sent_gen;         /* welcome generation the opener was sent under */
    turn_t *head, *tail;       /* turns received, not yet read */
    bool partner_last;         /* a turn carried "last": no more turns */
    bool ended;                /* end_conversation or a dead letter arrived */
    bool we_closed;            /* we sent "last" or end_conversation */
    int end_code;              /* SKICK_OK for a normal end */
    char end_error[300];       /* the partner's text for an abnormal end */
    skick_client_conv_t *next; /* the client's list */
};

typedef struct {
    uint64_t id;         /* request number, 0 when none is waiting */
    uint64_t shard;      /* 0 for the broker */
    const char *op;      /* for matching dead letters (borrowed) */
    json_object *body;   /* the request, kept to re-send after a new HELLO */
    unsigned sent_gen;   /* welcome generation it was sent under */
    bool done;           /* a REPLY or dead letter settled it */
    int code;            /* SKICK_OK or the error */
    char error[400];     /* the error text */
    json_object *result; /* "result" (owned until handed out) */
} request_t;

struct skick_client {
    void *ctx;              /* own ZeroMQ context */
    void *sock;             /* the DEALER */
    uint64_t id;            /* peer id, random, never 0 */
    char address[34];       /* "ID:0000000000000001" */
    char broker[17];        /* the welcoming broker's id */
    char endpoint[512];     /* for messages */
    int timeout_ms;         /* default bound */
    int heartbeat_ms;       /* from the welcome */
    int lost_after_ms;      /* from the welcome */
    bool welcomed;          /* the link is up */
    unsigned welcome_gen;   /* counts welcomes: a change means "re-send" */
    int fatal;              /* a welcome refusal: the code, else 0 */
    char fatal_error[400];  /* its text */
    skick_link_t link;      /* sequence numbers */
    int64_t last_out_ms;    /* last envelope sent */
    int64_t last_in_ms;     /* last envelope received */
    int64_t last_hello_ms;  /* last HELLO sent (0: must send now) */
    uint64_t next_request;  /* request numbers */
    request_t req;          /* the request being waited for */
    uint64_t confirm_shard; /* send_confirm: the recipient watched for dead letters */
    uint64_t confirm_id;
    int confirm_code; /* a dead letter's code for it, else 0 */
    char confirm_error[300];
    skick_client_conv_t *convs; /* open conversations */
    uint64_t dropped;           /* envelopes nobody waited for */
    uint64_t dead_letters;      /* dead letters received */
};

typedef bool (*cond_fn)(skick_client_t *c, void *arg);

#define SKICK__HIDDEN __attribute__((visibility("hidden")))

/*  Record a failure for skick_errno / skick_client_last_error; returns -1. */
SKICK__HIDDEN int skick__client_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*  Monotonic milliseconds. */
SKICK__HIDDEN int64_t skick__client_now(void);
/*  A random 64-bit number, never 0. */
SKICK__HIDDEN uint64_t skick__client_random64(void);
/*  o[key] as a string (borrowed), or NULL. */
SKICK__HIDDEN const char *skick__client_str(json_object *o, const char *key);
/*  Whether o is an object with key; *v (may be NULL) gets the value, borrowed. */
SKICK__HIDDEN bool skick__client_has(json_object *o, const char *key, json_object **v);
/*  A 16-lowhex, non-zero shard id. */
SKICK__HIDDEN bool skick__client_parse_shard(const char *text, uint64_t *out);
/*  Send one envelope with the next sequence number (body borrowed). 0, or
    -1 with EUNREACH. */
SKICK__HIDDEN int skick__client_send(skick_client_t *c, int kind, uint32_t flags,
                                     uint64_t from_shard, uint64_t from_id, uint64_t to_shard,
                                     uint64_t to_id, json_object *body);
/*  An ACTOR envelope from the client's address. */
SKICK__HIDDEN int skick__client_send_actor(skick_client_t *c, uint64_t to_shard, uint64_t to_id,
                                           json_object *body);
/*  Read and dispatch everything waiting. 0, or -1 (EUNREACH). */
SKICK__HIDDEN int skick__client_drain(skick_client_t *c);
/*  Work the link until cond(c, arg) holds (0) or the deadline passes (-1:
    ETIMEDOUT; EUNREACH when not welcomed or the broker went quiet; the
    broker's code after a refusal). cond NULL: until the deadline, then 0. */
SKICK__HIDDEN int skick__client_wait(skick_client_t *c, int64_t deadline, cond_fn cond, void *arg);
/*  now + timeout_ms, or + the client's default when timeout_ms <= 0. */
SKICK__HIDDEN int64_t skick__client_deadline(skick_client_t *c, int timeout_ms);
/*  cond_fn: the client is welcomed. */
SKICK__HIDDEN bool skick__client_welcomed(skick_client_t *c, void *arg);

#endif
