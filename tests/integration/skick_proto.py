"""skick_proto - the Skick cluster protocol in Python, for the integration tests.

Envelopes (proto/PROTOCOL.md): a 52-byte big-endian header and a JSON body,
and a minimal client peer that joins the broker's control socket, sends
actor messages, asks (conversations) and makes control requests.
"""
import json
import os
import struct
import time

import zmq

HEADER = struct.Struct(">HBBQIIQQQQ")
SIG, VERSION = 0xAA51, 1
KINDS = {"ACTOR": 1, "CLIENT": 2, "DEAD_LETTER": 3, "HELLO": 4, "HEARTBEAT": 5,
         "DIRECTORY": 6, "CONTROL": 7, "REPLY": 8, "LOST": 9}
KIND_NAMES = {v: k for k, v in KINDS.items()}


def pack(kind, seq, body=None, frm=(0, 0), to=(0, 0), flags=0, gen=0):
    head = HEADER.pack(SIG, VERSION, KINDS[kind] if isinstance(kind, str) else kind, seq,
                       flags, gen, frm[0], frm[1], to[0], to[1])
    text = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    return [head, text]


def unpack(frames):
    head, body = frames[-2], frames[-1]
    sig, ver, kind, seq, flags, gen, fs, fi, ts, ti = HEADER.unpack(head)
    return {"kind": KIND_NAMES.get(kind, kind), "seq": seq, "flags": flags, "gen": gen,
            "from": (fs, fi), "to": (ts, ti), "body": json.loads(body) if body else None}


def addr(shard, actor):
    return "%016x:%016x" % (shard, actor)


def parse_addr(a):
    s, i = a.split(":")
    return int(s, 16), int(i, 16)


class Client:
    """A client peer on the broker's control endpoint."""

    def __init__(self, endpoint, timeout=5.0, curve=None):
        """curve: None, or (broker public key, own public key, own secret
        key), Z85 bytes: the link then uses CURVE."""
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.id = int.from_bytes(os.urandom(8), "big") | 1
        self.sock.setsockopt(zmq.ROUTING_ID, self.id.to_bytes(8, "big"))
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve:
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, curve[0])
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, curve[1])
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, curve[2])
        self.sock.connect(endpoint)
        self.seq = 0
        self.req = 0
        self.inbox = []
        self.heard = 0.0
        self.heartbeat_s, self.lost_after_s = 0.5, 3.0
        self.me = (self.id, 1)
        self.address = addr(self.id, 1)
        self.hello(timeout)

    def close(self):
        self.sock.close(0)

    def _send(self, kind, body, to=(0, 0), frm=None, flags=0):
        self.seq += 1
        self.sock.send_multipart(pack(kind, self.seq, body, frm or self.me, to, flags))

    def hello(self, timeout=5.0):
        self.seq = 0
        self._send("HELLO", {"peer": "client", "pid": os.getpid(), "host": "test",
                             "version": "0.1.0"})
        deadline = time.time() + timeout
        while time.time() < deadline:
            e = self.recv(deadline - time.time())
            if e and e["kind"] == "REPLY" and "welcome" in (e["body"] or {}):
                if not e["body"]["welcome"]:
                    raise RuntimeError("refused: %s" % e["body"])
                self.heartbeat_s = e["body"].get("heartbeat_ms", 500) / 1000
                self.lost_after_s = e["body"].get("lost_after_ms", 3000) / 1000
                return e["body"]
        raise TimeoutError("no welcome from the broker")

    def recv(self, timeout):
        if self.sock.poll(max(0, int(timeout * 1000))):
            self.heard = time.time()
            return unpack(self.sock.recv_multipart())
        return None

    def request(self, op, shard=0, timeout=5.0, **args):
        self.req += 1
        rid = self.req
        body = dict(args, op=op, id=rid)
        self._send("CONTROL", body, to=(shard, shard))
        deadline = time.time() + timeout
        while time.time() < deadline:
            e = self.recv(deadline - time.time())
            if e is None:
                break
            if e["kind"] == "REPLY" and (e["body"] or {}).get("id") == rid:
                return e["body"]
            self.inbox.append(e)
        raise TimeoutError("no reply to %s" % op)

    def send(self, address, msg, flags=0):
        self._send("ACTOR", msg, to=parse_addr(address), frm=self.me, flags=flags)

    def _heard(self, deadline):
        """The next envelope and its body (a dict), waiting at most one
        heartbeat period; (None, None) after sending a heartbeat instead."""
        e = self.recv(min(self.heartbeat_s, deadline - time.time()))
        if e is None:
            self._send("HEARTBEAT", {})
            return None, None
        return e, e["body"] or {}

    def ask(self, address, msg, timeout=5.0):
        """A conversation from outside: returns ("reply", message) or
        ("end", body) or ("dead", body); raises TimeoutError."""
        cid = os.urandom(16).hex()
        self.send(address, dict(msg, cid=cid, sender=self.address))
        deadline = time.time() + timeout
        quiet_since = time.time()
        while time.time() < deadline:
            # as the client library does (skick__client_wait): heartbeats
            # while waiting, and a broker silent for lost_after ends the ask
            if time.time() - max(self.heard, quiet_since) > self.lost_after_s + self.heartbeat_s:
                return "end", {"action": "end_conversation", "cid": cid, "code": "EUNREACH",
                               "error": "the broker went silent"}
            e, b = self._heard(deadline)
            if e is None:
                continue
            if e["kind"] == "ACTOR" and b.get("cid") == cid:
                if b.get("action") == "receive_reply":
                    if not b.get("last"):
                        self.send(e_sender(e), {"action": "end_conversation", "cid": cid})
                    return "reply", b.get("message")
                if b.get("action") == "end_conversation":
                    return "end", b
            if e["kind"] == "DEAD_LETTER" and b.get("cid") == cid:
                return "dead", b
            if e["kind"] == "LOST" and b.get("shard") == address.split(":")[0]:
                # PROTOCOL.md "What a client does on LOST": the partner's
                # shard is gone, the conversation ends with EPARTNER.
                self.inbox.append(e)
                return "end", {"action": "end_conversation", "cid": cid, "code": "EPARTNER",
                               "error": "the partner's shard was lost (%s)" % b.get("reason")}
            self.inbox.append(e)
        raise TimeoutError("no answer from %s to %s" % (address, msg.get("action")))

    def converse(self, address, msg, timeout=5.0, on_turn=None, cid=None):
        """A conversation of many turns from outside (a stream): sends the
        opener and collects turns until the partner ends it. on_turn(message)
        is called for each; returning True ends the conversation from our
        side (end_conversation) and the call returns. Returns (turns, end):
        end is the end_conversation or dead letter body, or None when we
        ended it; cid: the conversation id to use (on_turn may send turns
        of its own with it). Raises TimeoutError when timeout passes."""
        cid = cid or os.urandom(16).hex()
        self.send(address, dict(msg, cid=cid, sender=self.address))
        deadline = time.time() + timeout
        turns = []
        while time.time() < deadline:
            e, b = self._heard(deadline)
            if e is None:
                continue
            if e["kind"] == "ACTOR" and b.get("cid") == cid:
                if b.get("action") == "receive_reply":
                    turns.append(b.get("message"))
                    if on_turn and on_turn(b.get("message")):
                        self.send(e_sender(e), {"action": "end_conversation", "cid": cid})
                        return turns, None
                    if b.get("last"):
                        return turns, b
                    continue
                if b.get("action") == "end_conversation":
                    return turns, b
            if e["kind"] == "DEAD_LETTER" and b.get("cid") == cid:
                return turns, b
            self.inbox.append(e)
        raise TimeoutError("conversation with %s: no end after %d turns" % (address, len(turns)))


def read_cert(path):
    """(public key, secret key or None) of a CZMQ certificate file (ZPL
    text, keys in Z85), as bytes."""
    pub = sec = None
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition(" = ")
            if k == "public-key":
                pub = v.strip('"').encode()
            elif k == "secret-key":
                sec = v.strip('"').encode()
    return pub, sec


def e_sender(e):
    return addr(*e["from"])
