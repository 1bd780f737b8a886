/*  broker_peers - the peer table: joining, links, heartbeats, loss

    Told by broker_route.c (HELLO, HEARTBEAT, LOST, disconnections, and the
    sends on a peer's link: forwards, replies, dead letters) and by main
    (init, destroy, the timer). Uses broker_dir.c (a lost shard's directory
    removal), broker_net.c, broker_auth.c and broker_util.c. The peer table
    (b->by_id, which owns every broker_peer_t; b->by_rid borrows them) and
    the memory of lost ids are written only here; the peers returned are
    borrowed. Every send goes out under the link's numbering: an envelope
    to a connection that has not joined (p NULL) carries seq 1.
*/
#ifndef BROKER_PEERS_H_INCLUDED
#define BROKER_PEERS_H_INCLUDED

#include "broker_state.h"

/*  broker_peers_init: create the peer tables. Returns 0 or -1. */
int broker_peers_init(broker_t *b);

/*  broker_peers_destroy: forget every peer and free the tables. */
void broker_peers_destroy(broker_t *b);

/*  broker_peer_by_id: the joined peer with this id, or NULL (borrowed). */
broker_peer_t *broker_peer_by_id(broker_t *b, uint64_t id);

/*  broker_peer_by_rid: the joined peer behind routing id rid on ROUTER sock,
    or NULL (borrowed). */
broker_peer_t *broker_peer_by_rid(broker_t *b, int sock, const uint8_t *rid, size_t rid_len);

/*  broker_peer_is_lost: true when id was declared lost (a rejoin gets ELOST). */
bool broker_peer_is_lost(broker_t *b, uint64_t id);

/*  broker_peer_addr: the address the broker writes in `to` of its own
    envelopes to p: a shard's shard actor (id:id) or a client's actor-side
    address (id:1). */
void broker_peer_addr(const broker_peer_t *p, uint64_t *shard, uint64_t *actor);

/*  broker_peer_send: send e to p on its link: e->seq is set to the link's
    next number, which is consumed only when the send succeeds. e is
    borrowed. Returns 0 or -1 with errno as broker_net_send. */
int broker_peer_send(broker_t *b, broker_peer_t *p, skick_envelope_t *e);

/*  broker_peer_forward: send a received message's own frames on to p on its
    link (skick_wire_forward: nothing copied), under the link's next number,
    consumed only when the send succeeds. Returns 0 (m's frames are gone) or
    -1 with errno as broker_net_send (m unchanged). */
int broker_peer_forward(broker_t *b, broker_peer_t *p, skick_wire_held_t *m);

/*  broker_peer_dead_letter: send a DEAD_LETTER about e (borrowed; NULL for
    a frame that could not be decoded) to the peer on (sock, rid) that sent
    it: from and to copied from e when they are full addresses (else 0/0),
    body with code, error, the message's action (at most 64 bytes) and cid.
    p may be NULL for a peer that has not joined. Counts nothing: the caller
    does. */
void broker_peer_dead_letter(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                             broker_peer_t *p, const skick_envelope_t *e, int code,
                             const char *error);

/*  broker_peer_reply: send a REPLY with body (taken: *body_p is set to
    NULL) to the peer on (sock, rid); p may be NULL for a peer that has not
    joined. to_shard/to_id name the recipient; when they are not a full
    address the REPLY goes to p's own address (or 0/0 without p), so that
    the broker never sends half an address. Returns 0 or -1 (errno). */
int broker_peer_reply(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, broker_peer_t *p,
                      uint64_t to_shard, uint64_t to_id, json_object **body_p);

/*  broker_peers_disconnected: the shard ROUTER's connection fd is gone
    (broker_net_disconnected): a shard that joined over it keeps its record
    until it joins again or is lost, but nothing on its routing id is its
    own any more (its fd becomes BROKER_FD_GONE). */
void broker_peers_disconnected(broker_t *b, int fd);

/*  broker_peers_hello: handle a HELLO m (borrowed; its frames carry the
    CURVE role) read from routing id rid on ROUTER sock over connection fd
    (broker_route_srcfd): welcome the peer (joining it, or re-joining: on
    the same connection, or for a shard on a new one that took over its
    routing id when the HELLO carries the welcome's token) or refuse it
    with a welcome false. */
void broker_peers_hello(broker_t *b, int sock, const uint8_t *rid, size_t rid_len, int fd,
                        skick_wire_held_t *m);

/*  broker_peers_heartbeat: account a HEARTBEAT from p (a shard's body is
    its load: kept for ps, "delivered" feeds msgs_per_s). e is borrowed. */
void broker_peers_heartbeat(broker_t *b, broker_peer_t *p, const skick_envelope_t *e);

/*  broker_peers_leave: handle a LOST envelope from p. About p itself it is a
    clean leave (a shard is declared lost with reason "left", a client is
    forgotten); about anyone else it is refused with EPROTO. e borrowed. */
void broker_peers_leave(broker_t *b, broker_peer_t *p, const skick_envelope_t *e);

/*  broker_peers_tick: the timer: send heartbeats when due, declare silent
    shards lost and forget silent clients. now is monotonic ms. */
void broker_peers_tick(broker_t *b, int64_t now);

/*  broker_peers_lose: declare shard p lost: forget it, remember its id,
    send LOST to every other peer (shards and clients) and publish its
    directory removal. p is freed. reason is the text sent in LOST. */
void broker_peers_lose(broker_t *b, broker_peer_t *p, const char *reason);

/*  broker_peers_list: the joined peers as a new list (caller destroys the
    list; the peers are borrowed and stay valid until the table changes). */
zlistx_t *broker_peers_list(broker_t *b);

#endif
