#!/usr/bin/python3
"""test_broker.py - skick-broker against raw ZeroMQ peers

Starts the real broker (BUILD/broker/skick-broker) on free loopback ports and
ipc paths under a temporary directory, and speaks the cluster protocol of
proto/PROTOCOL.md ("Envelopes", "The cluster") with pyzmq DEALER and SUB
sockets playing shards and clients: joining, sequence numbers, routing,
dead letters, heartbeats and loss, the directory, control operations, the
hash store, CURVE, malformed input, signals and command-line handling.

Usage: test_broker.py BUILD_DIR        (exit 0: every check passed)
"""
import json
import os
import random
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

import zmq

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
BROKER = os.path.join(BUILD, "broker", "skick-broker")

HB_MS = 100      # --heartbeat-ms of the main broker
LOST_MS = 2000   # --lost-after-ms of the main broker (slack for a loaded machine)
CLIENT_MS = 3000  # --client-timeout-ms of the main broker

# ---------------------------------------------------------------- envelopes

HDR = struct.Struct(">HBBQIIQQQQ")  # 52 bytes, PROTOCOL.md "Envelopes"
assert HDR.size == 52
ACTOR, CLIENT, DEAD_LETTER, HELLO, HEARTBEAT, DIRECTORY, CONTROL, REPLY, LOST = range(1, 10)
KIND = {1: "ACTOR", 2: "CLIENT", 3: "DEAD_LETTER", 4: "HELLO", 5: "HEARTBEAT",
        6: "DIRECTORY", 7: "CONTROL", 8: "REPLY", 9: "LOST"}


def header(kind, seq, frm=(0, 0), to=(0, 0), flags=0, gen=0, sig=0xAA51, version=1):
    return HDR.pack(sig, version, kind, seq, flags, gen, frm[0], frm[1], to[0], to[1])


def pack(kind, seq, body=None, frm=(0, 0), to=(0, 0), flags=0, gen=0):
    raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    return [header(kind, seq, frm, to, flags, gen), raw]


class Env:
    """One received envelope."""

    def __init__(self, frames):
        if len(frames) != 2 or len(frames[0]) != 52:
            raise ValueError("not an envelope: %r" % (frames,))
        (sig, ver, self.kind, self.seq, self.flags, self.gen, fs, fa, ts, ta) = HDR.unpack(frames[0])
        if sig != 0xAA51 or ver != 1:
            raise ValueError("bad signature/version")
        self.frm = (fs, fa)
        self.to = (ts, ta)
        self.raw = frames[1]
        self.body = json.loads(frames[1]) if frames[1] else None

    def __repr__(self):
        return "<%s seq=%d from=%x:%x to=%x:%x %s>" % (
            KIND.get(self.kind, self.kind), self.seq, self.frm[0], self.frm[1],
            self.to[0], self.to[1], self.raw[:200])


def hexid(n):
    return "%016x" % n


def rand_id():
    return random.randrange(1 << 56, 1 << 64)  # never 0; any first byte works too


# ------------------------------------------------------------------- checks

CHECKS = [0]
FAILED = []


def check(cond, what, detail=""):
    CHECKS[0] += 1
    if cond:
        print("ok   " + what)
    else:
        FAILED.append(what)
        print("FAIL " + what + (("  -- " + str(detail)) if detail != "" else ""))
    sys.stdout.flush()
    return bool(cond)


# ------------------------------------------------------------------ brokers

def free_base():
    """A port P with P, P+1 and P+2 free on 127.0.0.1."""
    for _ in range(500):
        base = random.randrange(20000, 60000)
        ok = True
        for p in (base, base + 1, base + 2):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    raise RuntimeError("no free ports")


class Broker:
    def __init__(self, tmp, name, args=(), control=None, bind=None, wait=True):
        if bind:
            self.bind = bind
            self.dir_out = bind + ".dir-out"  # ipc://
        else:
            base = free_base()
            self.bind = "tcp://127.0.0.1:%d" % base
            self.dir_out = "tcp://127.0.0.1:%d" % (base + 2)
        self.control = control or "ipc://%s/%s/ctl/control" % (tmp, name)
        self.log_path = os.path.join(tmp, name + ".log")
        self.cmd = [BROKER, "--bind", self.bind, "--control", self.control,
                    "--log-level", "info"] + list(args)
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "serving shards on" in self.log():
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("broker did not start: rc=%s log:\n%s" % (self.proc.poll(), self.log()))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        return rc


def run(args, timeout=30):
    """Run the broker to completion: (exit status, stdout + stderr)."""
    p = subprocess.run([BROKER] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


# -------------------------------------------------------------------- peers

class World:
    """Every fake peer and subscriber, pumped together: incoming envelopes go
    to inboxes, and peers with auto_hb send their heartbeats on time."""

    def __init__(self):
        self.ctx = zmq.Context()
        self.peers = []
        self.subs = []
        self.poller = zmq.Poller()

    def add(self, x):
        (self.peers if isinstance(x, Peer) else self.subs).append(x)
        self.poller.register(x.sock, zmq.POLLIN)

    def detach(self, x):
        """Stop reading x (its socket stays open)."""
        self.poller.unregister(x.sock)
        (self.peers if isinstance(x, Peer) else self.subs).remove(x)

    def remove(self, x):
        self.detach(x)
        x.sock.close(0)

    def pump(self, seconds=0.0):
        deadline = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            for p in self.peers:
                if p.auto_hb and now - p.last_hb >= HB_MS / 1000.0:
                    p.heartbeat()
            wait = max(0, min(deadline - now, 0.02))
            for sock, _ in self.poller.poll(wait * 1000):
                owner = next(x for x in self.peers + self.subs if x.sock is sock)
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    owner.take(frames)
            if time.monotonic() >= deadline:
                return

    def wait(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = pred()
            if r:
                return r
            self.pump(0.02)
        return pred()

    def close(self):
        self.ctx.destroy(linger=0)  # every socket, including ones a failed check left open


class Peer:
    """A DEALER playing a shard or a client on one of the broker's ROUTERs."""

    def __init__(self, world, ep, kind="shard", pid=None, rid=True, curve=None, opts=()):
        self.world = world
        self.id = pid or rand_id()
        self.kind = kind
        self.sock = world.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)  # never refuse the broker's dead letters
        for opt, value in opts:
            self.sock.setsockopt(opt, value)
        if rid:
            self.sock.setsockopt(zmq.ROUTING_ID, self.id.to_bytes(8, "big"))
        if curve:
            server_pub, pub, sec = curve
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, server_pub)
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, pub)
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, sec)
        self.sock.connect(ep)
        self.seq = 0
        self.inbox = []
        self.heartbeats = []
        self.expect_seq = None   # next seq from the broker once welcomed
        self.seq_errors = []
        self.auto_hb = False
        self.last_hb = 0.0
        self.delivered = 0
        self.last_sent = 0.0
        self.welcome = None
        world.add(self)

    @property
    def addr(self):
        """The peer's own address: shard actor id:id, client id:1."""
        return (self.id, self.id if self.kind == "shard" else 1)

    def send_frames(self, frames):
        self.sock.send_multipart(frames)
        self.last_sent = time.monotonic()

    def send(self, kind, body=None, frm=None, to=(0, 0), flags=0, gen=0, seq=None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.send_frames(pack(kind, seq, body, self.addr if frm is None else frm, to, flags, gen))
        return seq

    def take(self, frames):
        e = Env(frames)
        if (e.kind == REPLY and isinstance(e.body, dict) and "welcome" in e.body
                and not (e.body.get("code") == "EVERSION" and self.expect_seq is not None)):
            self.welcome = e.body
            self.expect_seq = (e.seq + 1) if e.body["welcome"] else None
        elif e.kind == REPLY and isinstance(e.body, dict) and "welcome" in e.body:
            pass  # EVERSION to a joined peer: outside its link (seq 1), which goes on
        elif self.expect_seq is not None:
            if e.seq != self.expect_seq:
                self.seq_errors.append((self.expect_seq, e))
            self.expect_seq = e.seq + 1
        (self.heartbeats if e.kind == HEARTBEAT else self.inbox).append(e)

    def hello(self, frm=None, body=None, expect=True, timeout=5.0):
        """Say HELLO (seq restarts at 1); returns the welcome body (or None)."""
        self.seq = 0
        self.welcome = None
        if body is None:
            body = {"peer": self.kind, "pid": 4242, "host": "testhost", "version": "0.1.0"}
            if self.kind == "shard":
                body.update({"roles": ["front", "back"], "ws": "ws://127.0.0.1:8000",
                             "apps": ["hello.so"]})
        self.send(HELLO, body, frm=self.addr if frm is None else frm)
        if not expect:
            return None
        r = self.expect(REPLY, lambda e: isinstance(e.body, dict) and "welcome" in e.body,
                        timeout)
        return r.body if r else None

    def heartbeat(self):
        if self.kind == "shard":
            self.delivered += 100
            body = {"actors": 12, "sessions": 3, "delivered": self.delivered,
                    "sent_remote": 100, "recv_remote": 90, "dead_letters": 0,
                    "mailbox_max": 4, "uptime_ms": 60000}
        else:
            body = {}
        self.send(HEARTBEAT, body, frm=(0, 0))
        self.last_hb = time.monotonic()

    def expect(self, kind, pred=None, timeout=5.0):
        """Wait for an envelope of this kind (matching pred); remove and return it."""
        def find():
            for i, e in enumerate(self.inbox):
                if e.kind == kind and (pred is None or pred(e)):
                    return self.inbox.pop(i)
            return None
        return self.world.wait(find, timeout)

    def request(self, op, to=(0, 0), timeout=5.0, **args):
        """A CONTROL request; returns the REPLY body (or None)."""
        self.seq_req = getattr(self, "seq_req", 0) + 1
        rid = self.seq_req
        body = dict(args, op=op, id=rid)
        self.send(CONTROL, body, to=to)
        r = self.expect(REPLY, lambda e: isinstance(e.body, dict) and e.body.get("id") == rid,
                        timeout)
        return r.body if r else None


class Sub:
    """A SUB on the directory-out endpoint."""

    def __init__(self, world, ep, curve=None):
        self.sock = world.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve:
            server_pub, pub, sec = curve
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, server_pub)
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, pub)
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, sec)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(ep)
        self.inbox = []
        world.add(self)

    def take(self, frames):
        self.inbox.append(Env(frames))

    def find(self, pred):
        for i, e in enumerate(self.inbox):
            if pred(e):
                return self.inbox.pop(i)
        return None


def entry(shard, version, services=None):
    return {"shard": hexid(shard), "version": version, "roles": ["front", "back"],
            "ws": None, "types": ["accumulator"],
            "sessions": [{"name": "hello", "handshake": None,
                          "limits": {"max_message": 0, "rate": 0, "burst": 0,
                                     "idle_timeout_ms": 0}}],
            "services": services or {}}


def publish(peer, shard, version, services=None):
    """An entry naming shard, sent over peer's own link (PROTOCOL.md "The directory")."""
    body = entry(shard, version, services)
    peer.send(DIRECTORY, body)
    return body


def is_dead(e, code):
    return isinstance(e.body, dict) and e.body.get("code") == code


# ------------------------------------------------------------------- tests

def test_join_and_heartbeats(w, br, a, b):
    wa = a.hello()
    check(wa is not None and wa.get("welcome") is True, "shard A (from = A:A) is welcomed", wa)
    check(a.expect_seq == 2, "the welcome carries seq 1", a.expect_seq)
    check(re.fullmatch(r"[0-9a-f]{16}", str(wa and wa.get("broker"))) is not None,
          "welcome names the broker instance (16 lowhex)", wa)
    check(wa and wa.get("heartbeat_ms") == HB_MS and wa.get("lost_after_ms") == LOST_MS,
          "welcome carries heartbeat_ms and lost_after_ms", wa)
    # B says HELLO from 0/0: its id comes from its 8-byte routing id
    wb = b.hello(frm=(0, 0))
    check(wb is not None and wb.get("welcome") is True, "shard B (from 0/0, id from rid) is welcomed", wb)
    check(wa and wb and wa["broker"] == wb["broker"], "one broker id for everyone")
    a.auto_hb = b.auto_hb = True
    w.pump(0.6)
    check(len(a.heartbeats) >= 2, "the broker sends heartbeats", len(a.heartbeats))
    check(all(h.body == {} and h.to == a.addr and h.frm == (0, 0) for h in a.heartbeats),
          "broker heartbeats: body {}, to the peer, from 0/0", a.heartbeats[:2])
    check(not a.seq_errors and not b.seq_errors, "broker-to-peer seq numbers are consecutive",
          a.seq_errors + b.seq_errors)
    # the same connection says HELLO again: welcomed again, link restarts
    wb2 = b.hello(frm=(0, 0))
    check(wb2 and wb2.get("welcome") is True and wb2["broker"] == wb["broker"],
          "a repeated HELLO is welcomed again (same broker id)", wb2)


def test_routing(w, a, b):
    a.send(ACTOR, {"action": "ping", "n": 1}, frm=(a.id, 0x10), to=(b.id, 0x20), flags=1)
    e = b.expect(ACTOR)
    check(e is not None and e.frm == (a.id, 0x10) and e.to == (b.id, 0x20) and e.flags == 1
          and e.body == {"action": "ping", "n": 1},
          "ACTOR A->B arrives with from, to, flags and body unchanged", e)
    b.send(CLIENT, {"action": "chat", "text": "h\u00e9"}, frm=(b.id, 0x21), to=(a.id, 0x11), gen=7)
    e = a.expect(CLIENT)
    check(e is not None and e.frm == (b.id, 0x21) and e.to == (a.id, 0x11) and e.gen == 7
          and e.body == {"action": "chat", "text": "h\u00e9"},
          "CLIENT B->A arrives with gen kept", e)
    for i in range(300):
        a.send(ACTOR, {"action": "n", "i": i}, frm=(a.id, 0x10), to=(b.id, 0x20))
    w.wait(lambda: sum(1 for x in b.inbox if x.kind == ACTOR) >= 300, 10)
    got = [x.body["i"] for x in b.inbox if x.kind == ACTOR]
    b.inbox[:] = [x for x in b.inbox if x.kind != ACTOR]
    check(got == list(range(300)), "300 envelopes A->B arrive complete and in order",
          "%d received" % len(got))
    check(not a.seq_errors and not b.seq_errors,
          "seq is rewritten per destination link (no gaps seen by the receiver)",
          a.seq_errors + b.seq_errors)
    # a dead letter made by the recipient's shard travels back to the sender
    b.send(DEAD_LETTER, {"code": "EFULL", "error": "mailbox full", "action": "ping"},
           frm=(a.id, 0x10), to=(b.id, 0x20))
    e = a.expect(DEAD_LETTER)
    check(e is not None and e.frm == (a.id, 0x10) and e.to == (b.id, 0x20) and
          e.body.get("code") == "EFULL", "a shard's DEAD_LETTER goes back to the original sender", e)
    b.send(DEAD_LETTER, {"code": "EDEAD"}, frm=(a.id, 0x10), to=(a.id, 0x20))
    e = b.expect(DEAD_LETTER, lambda e: is_dead(e, "EPROTO"))
    check(e is not None, "a DEAD_LETTER about someone else's actor is refused (EPROTO)", e)
    check(a.expect(DEAD_LETTER, None, 0.2) is None, "... and not forwarded")


def test_dead_letters(w, br, a, c):
    z = rand_id()
    cid = "c" * 32
    a.send(ACTOR, {"action": "x" * 100, "cid": cid}, frm=(a.id, 0x10), to=(z, 1))
    e = a.expect(DEAD_LETTER)
    check(e is not None and is_dead(e, "EDEAD") and e.frm == (a.id, 0x10) and e.to == (z, 1),
          "ACTOR to an unknown shard: DEAD_LETTER EDEAD back, from/to kept", e)
    check(e is not None and e.body.get("action") == "x" * 64 and e.body.get("cid") == cid,
          "the dead letter quotes the action (64 bytes) and the cid", e)
    # an action cut on a character boundary
    a.send(ACTOR, {"action": "a" + "\u00e9" * 40}, frm=(a.id, 0x10), to=(z, 1))
    e = a.expect(DEAD_LETTER)
    check(e is not None and len(e.body["action"].encode()) <= 64 and
          e.body["action"] == "a" + "\u00e9" * 31, "a long UTF-8 action is cut on a character boundary", e)
    # a forged sender
    m0 = c.request("stats")["result"]["malformed"]
    a.send(ACTOR, {"action": "forged"}, frm=(z, 5), to=(a.id, 0x10))
    e = a.expect(DEAD_LETTER)
    check(e is not None and is_dead(e, "EPROTO"), "ACTOR with someone else's from_shard: EPROTO", e)
    check(c.request("stats")["result"]["malformed"] == m0 + 1, "the forgery is counted as malformed")
    # an unknown sender
    s = Peer(w, br.bind)
    s.send(ACTOR, {"action": "hi", "cid": cid}, frm=(s.id, 9), to=(a.id, 0x10))
    d = s.expect(DEAD_LETTER)
    r = s.expect(REPLY)
    check(d is not None and is_dead(d, "EUNREACH") and d.frm == (s.id, 9) and d.body.get("cid") == cid,
          "ACTOR from a peer that has not joined: DEAD_LETTER EUNREACH", d)
    check(r is not None and r.body == {"welcome": False, "code": "EPROTO", "error": "say HELLO"},
          "... plus REPLY say HELLO", r)
    check(a.expect(ACTOR, lambda e: e.body.get("action") == "hi", 0.3) is None,
          "... and nothing from it is routed")
    s.send(CONTROL, {"op": "stats", "id": 77})
    r = s.expect(REPLY)
    check(r is not None and r.body.get("code") == "EPROTO" and r.body.get("id") == 77 and
          r.body.get("ok") is False, "CONTROL from an unjoined peer: say HELLO with the request id", r)
    s.send(HEARTBEAT, {}, frm=(0, 0))
    r = s.expect(REPLY)
    check(r is not None and r.body.get("error") == "say HELLO", "HEARTBEAT from an unjoined peer: say HELLO", r)
    ws = s.hello()
    check(ws and ws.get("welcome") is True, "after say HELLO, the peer joins", ws)
    s.auto_hb = True
    s.send(ACTOR, {"action": "hi2"}, frm=(s.id, 9), to=(a.id, 0x10))
    check(a.expect(ACTOR, lambda e: e.body.get("action") == "hi2") is not None,
          "... and is routed from then on")
    s.send(LOST, {"shard": hexid(s.id), "reason": "left"}, frm=(0, 0))
    e = a.expect(LOST, lambda e: e.body.get("shard") == hexid(s.id))
    check(e is not None and e.body.get("reason") == "left", "clean leave of that shard: LOST to A", e)
    w.remove(s)


def test_seq_checks(w, a, b, c):
    st0 = c.request("stats")["result"]
    a.seq += 3  # three envelopes "lost" on the way
    a.send(ACTOR, {"action": "after-gap"}, frm=(a.id, 0x10), to=(b.id, 0x20))
    e = b.expect(ACTOR, lambda e: e.body.get("action") == "after-gap")
    check(e is not None, "an envelope after a gap is still routed")
    st1 = c.request("stats")["result"]
    check(st1["gaps"] == st0["gaps"] + 3, "a gap of 3 is counted in stats.gaps",
          (st0["gaps"], st1["gaps"]))
    a.send(ACTOR, {"action": "dup"}, frm=(a.id, 0x10), to=(b.id, 0x20), seq=a.seq)
    a.send(ACTOR, {"action": "old"}, frm=(a.id, 0x10), to=(b.id, 0x20), seq=a.seq - 2)
    a.send(ACTOR, {"action": "next"}, frm=(a.id, 0x10), to=(b.id, 0x20))
    e = b.expect(ACTOR, lambda e: e.body.get("action") == "next")
    check(e is not None, "the next envelope in sequence is routed")
    check(not [x for x in b.inbox if x.kind == ACTOR and x.body.get("action") in ("dup", "old")],
          "duplicate and stale seq numbers are dropped", b.inbox)
    st2 = c.request("stats")["result"]
    check(st2["duplicates"] == st1["duplicates"] + 2 and st2["gaps"] == st1["gaps"],
          "duplicates counted (2), no new gap", (st1, st2))


def test_control(w, br, a, b, c):
    st = c.request("stats")
    check(st and st.get("ok") is True and st.get("id") == c.seq_req, "stats answers ok with the id", st)
    r = st["result"] if st else {}
    keys = ["uptime_ms", "peers", "shards", "clients", "routed", "dead_letters", "malformed",
            "gaps", "duplicates", "lost", "hash_tables", "hash_keys"]
    check(all(isinstance(r.get(k), int) for k in keys), "stats has every counter", r)
    check(r.get("shards") == 2 and r.get("clients") == 1 and r.get("peers") == 3,
          "stats counts 2 shards and 1 client", r)
    check(r.get("routed", 0) >= 300, "stats counts routed envelopes", r.get("routed"))
    w.pump(1.3)  # a few heartbeats with growing "delivered"
    ps = c.request("ps")
    rows = {row.get("shard"): row for row in (ps or {}).get("result", [])}
    check(set(rows) == {hexid(a.id), hexid(b.id)}, "ps lists the two shards (not clients)", rows.keys())
    ra = rows.get(hexid(a.id), {})
    check(ra.get("roles") == ["front", "back"] and ra.get("pid") == 4242 and
          ra.get("host") == "testhost" and ra.get("ws") == "ws://127.0.0.1:8000" and
          ra.get("apps") == ["hello.so"], "ps shows the HELLO's roles, pid, host, ws, apps", ra)
    check(isinstance(ra.get("joined_ms"), int) and abs(ra["joined_ms"] / 1000 - time.time()) < 120,
          "ps joined_ms is the wall-clock join time", ra.get("joined_ms"))
    check(isinstance(ra.get("heartbeat_age_ms"), int) and 0 <= ra["heartbeat_age_ms"] < LOST_MS,
          "ps heartbeat_age_ms", ra.get("heartbeat_age_ms"))
    load = ra.get("load") or {}
    check(load.get("actors") == 12 and load.get("mailbox_max") == 4 and
          isinstance(load.get("delivered"), int) and load["delivered"] > 0,
          "ps load is the last heartbeat body", load)
    check(isinstance(ra.get("msgs_per_s"), (int, float)) and ra["msgs_per_s"] > 0,
          "ps msgs_per_s comes from the delivered deltas", ra.get("msgs_per_s"))
    # hash
    def h(cmd, **kw):
        return c.request("hash", cmd=cmd, **kw)
    r = h("set", table="t", key="k", value={"x": [1, 2]})
    check(r and r["ok"] is True and r.get("result") is None, "hash set -> null", r)
    r = h("get", table="t", key="k")
    check(r and r["ok"] is True and r.get("result") == {"x": [1, 2]}, "hash get returns the value", r)
    r = h("contains", table="t", key="k")
    check(r and r.get("result") is True, "hash contains -> true", r)
    r = h("contains", table="t", key="nope")
    check(r and r["ok"] is True and r.get("result") is False, "hash contains -> false", r)
    r = h("get", table="t", key="nope")
    check(r and r["ok"] is False and r.get("code") == "ENOTFOUND", "hash get of a missing key: ENOTFOUND", r)
    r = h("get", table="nosuchtable", key="k")
    check(r and r.get("code") == "ENOTFOUND", "hash get in a missing table: ENOTFOUND", r)
    h("set", table="t", key="k2", value=None)
    r = h("get", table="t", key="k2")
    check(r and r["ok"] is True and "result" in r and r["result"] is None, "hash holds a JSON null", r)
    h("set", table="u", key="k", value=3)
    h("set", table="t", key="k", value="new")
    r = h("get", table="t", key="k")
    check(r and r.get("result") == "new", "hash set replaces", r)
    st = c.request("stats")["result"]
    check(st["hash_tables"] == 2 and st["hash_keys"] == 3, "stats counts hash tables and keys", st)
    r = h("delete", table="t", key="k")
    check(r and r["ok"] is True and r.get("result") is None, "hash delete -> null", r)
    r = h("delete", table="t", key="k")
    check(r and r["ok"] is False and r.get("code") == "ENOTFOUND", "hash delete of a missing key: ENOTFOUND", r)
    h("delete", table="t", key="k2")
    st = c.request("stats")["result"]
    check(st["hash_tables"] == 1 and st["hash_keys"] == 1, "an emptied table goes away", st)
    r = h("set", table="t", key="k")
    check(r and r.get("code") == "EINVAL", "hash set without value: EINVAL", r)
    r = h("frobnicate", table="t", key="k")
    check(r and r.get("code") == "EINVAL", "unknown hash cmd: EINVAL", r)
    r = c.request("hash", cmd="get", key="k")
    check(r and r.get("code") == "EINVAL", "hash without table: EINVAL", r)
    r = c.request("launch_missiles")
    check(r and r["ok"] is False and r.get("code") == "EINVAL" and r.get("id") == c.seq_req,
          "unknown op: EINVAL, id echoed", r)
    c.send(CONTROL, [1, 2, 3])
    e = c.expect(REPLY, lambda e: isinstance(e.body, dict) and e.body.get("id") is None)
    check(e is not None and e.body.get("code") == "EINVAL", "a non-object request: EINVAL", e)
    # a shard's hash request comes back to the asking actor
    a.send(CONTROL, {"op": "hash", "cmd": "get", "table": "u", "key": "k", "id": 5},
           frm=(a.id, 0x77))
    e = a.expect(REPLY, lambda e: e.body.get("id") == 5)
    check(e is not None and e.to == (a.id, 0x77) and e.body.get("result") == 3,
          "a shard's hash request is answered to the asking actor", e)


def test_client_routing(w, br, a, c):
    cid = "%032x" % random.getrandbits(128)
    caddr = "%s:%s" % (hexid(c.id), hexid(1))
    c.send(ACTOR, {"action": "add", "number": 1, "sender": caddr, "cid": cid}, to=(a.id, 0x30))
    e = a.expect(ACTOR, lambda e: e.body.get("cid") == cid)
    check(e is not None and e.frm == (c.id, 1) and e.to == (a.id, 0x30),
          "a client's ask reaches the shard, from CLIENTID:1", e)
    a.send(ACTOR, {"action": "receive_reply", "cid": cid, "sender": "x", "message": {"tally": 1},
                   "last": True}, frm=(a.id, 0x30), to=(c.id, 1))
    e = c.expect(ACTOR, lambda e: e.body.get("cid") == cid)
    check(e is not None and e.body.get("message") == {"tally": 1} and e.body.get("last") is True,
          "the shard's reply reaches the client on the control socket", e)
    # CONTROL forwarded to a shard, REPLY back to the client
    c.send(CONTROL, {"op": "actors", "id": 901}, to=a.addr)
    e = a.expect(CONTROL, lambda e: e.body.get("id") == 901)
    check(e is not None and e.frm == (c.id, 1), "a CONTROL for a shard is forwarded to it", e)
    a.send(REPLY, {"id": 901, "ok": True, "result": []}, frm=a.addr, to=(c.id, 1))
    e = c.expect(REPLY, lambda e: e.body.get("id") == 901)
    check(e is not None and e.body.get("result") == [], "the shard's REPLY is forwarded to the client", e)
    r = c.request("actors", to=(rand_id(), 5))
    check(r and r["ok"] is False and r.get("code") == "EDEAD",
          "a CONTROL for an unknown shard: REPLY EDEAD", r)
    # clients join on the control socket only (the endpoint decides the role)
    d = Peer(w, br.bind, kind="client", rid=False)
    wd = d.hello()
    check(wd and wd.get("welcome") is False and wd.get("code") == "EINVAL",
          "a client on the shard socket: EINVAL", wd)
    w.remove(d)
    d = Peer(w, br.control, kind="client")
    d.hello()
    d.send(LOST, {"shard": hexid(d.id), "reason": "left"}, frm=(0, 0))
    w.pump(0.2)
    check(a.expect(LOST, lambda e: e.body.get("shard") == hexid(d.id), 0.2) is None,
          "a client leaving is no LOST for shards")
    w.remove(d)


def test_hello_refusals(w, br, a):
    x = Peer(w, br.control, kind="client")
    r = x.hello(frm=(a.id, 1))
    check(r and r.get("welcome") is False and r.get("code") == "EINVAL",
          "HELLO with an id held by another live peer: EINVAL", r)
    y = Peer(w, br.control, kind="shard")
    r = y.hello()
    check(r and r.get("welcome") is False and r.get("code") == "EINVAL",
          "a shard on the control socket: EINVAL", r)
    z = Peer(w, br.bind, kind="client", rid=False)
    r = z.hello(frm=(0, 0))
    check(r and r.get("welcome") is False and r.get("code") == "EPROTO",
          "HELLO with no id (from 0/0, no 8-byte routing id): EPROTO", r)
    r = z.hello(body={"peer": "toaster"})
    check(r and r.get("welcome") is False and r.get("code") == "EPROTO",
          "HELLO with a bad peer kind: EPROTO", r)
    # another protocol version, framed otherwise: answered in version 1
    v = Peer(w, br.bind, kind="shard")
    head, raw = pack(HELLO, 1, {"peer": "shard"}, v.addr)
    v2 = bytearray(head) + b"\0\0\0\0"
    v2[2] = 2
    v.send_frames([bytes(v2), b"extra", raw])
    r = v.expect(REPLY, lambda e: isinstance(e.body, dict) and "welcome" in e.body)
    check(r and r.body.get("welcome") is False and r.body.get("code") == "EVERSION"
          and r.body.get("versions") == [1] and "version 2" in r.body.get("error", "")
          and r.to == v.addr, "a HELLO of protocol version 2: a refused welcome EVERSION", r)
    for p in (x, y, z, v):
        w.remove(p)


def test_directory(w, br, a, c):
    sub1 = Sub(w, br.dir_out)
    services = {"chat_room": [hexid(0xabc)], "bad": ["nothex"]}
    sent = publish(a, a.id, 3, services)
    # published at once, or, when the SUB joins later, republished for it
    got = w.wait(lambda: sub1.find(lambda e: e.kind == DIRECTORY
                                   and e.body.get("shard") == hexid(a.id)), 10)
    check(got is not None and got.body == sent and got.seq == 3,
          "a shard's entry, sent on its link, is republished on the XPUB (seq = version)", got)
    w.pump(0.3)
    sub1.inbox.clear()
    st0 = c.request("stats")["result"]
    publish(a, a.id, 2, services)   # older
    publish(a, a.id, 3, services)   # same
    publish(a, a.id, 4, services)   # newer
    w.wait(lambda: sub1.inbox, 3)
    w.pump(0.3)
    versions = [e.body.get("version") for e in sub1.inbox]
    check(versions == [4], "only newer versions are republished", versions)
    st = c.request("stats")["result"]
    check(st["directory_dropped"] - st0["directory_dropped"] == 2,
          "... the others are dropped and counted", st)
    sub1.inbox.clear()
    u = rand_id()
    publish(a, u, 1)
    ok = w.wait(lambda: c.request("stats")["result"]["directory_refused"] > st0["directory_refused"], 3)
    check(ok, "an entry naming another shard is refused and counted")
    check(not sub1.find(lambda e: e.body.get("shard") == hexid(u)), "... and not republished")
    check("a shard publishes its own entry only" in br.log(), "... and logged")
    st1 = c.request("stats")["result"]
    a.send(DIRECTORY, ["garbage"])
    c.send(DIRECTORY, entry(c.id, 1))
    ok = w.wait(lambda: c.request("stats")["result"]["directory_refused"] >= st1["directory_refused"] + 2, 3)
    check(ok, "an entry without a shard id, and one from a client, are refused and counted")
    # a new subscriber gets every entry without the shard publishing again
    sub1.inbox.clear()
    sub2 = Sub(w, br.dir_out)
    got2 = w.wait(lambda: sub2.find(lambda e: e.body.get("shard") == hexid(a.id)), 5)
    check(got2 is not None and got2.body.get("version") == 4,
          "a new subscriber triggers a republish of every entry", got2)
    r = c.request("directory")
    check(r and r["ok"] and r["result"] == {hexid(a.id): entry(a.id, 4, services)},
          "the directory op returns the entries", r)
    r = c.request("services")
    check(r and r["result"] == [{"name": "chat_room", "address": "%s:%s" % (hexid(a.id), hexid(0xabc)),
                                 "shard": hexid(a.id)}],
          "services lists name, address, shard (bad ids skipped)", r)
    r = c.request("services", name="chat_room")
    check(r and len(r["result"]) == 1, "services filtered by name", r)
    r = c.request("services", name="nope")
    check(r and r["result"] == [], "services for an unknown name: []", r)
    w.remove(sub2)
    return sub1


def test_loss(w, br, a, b, c, sub):
    l = Peer(w, br.bind)
    wl = l.hello()
    check(wl and wl.get("welcome") is True, "shard L joins", wl)
    publish(l, l.id, 1)
    w.wait(lambda: sub.find(lambda e: e.body.get("shard") == hexid(l.id)), 5)
    w.pump(0.2)  # L's heartbeats: none at all; it is silent from here
    silent_since = l.last_sent
    la = a.expect(LOST, lambda e: e.body.get("shard") == hexid(l.id), 8)
    t_lost = time.monotonic()
    check(la is not None and la.body == {"shard": hexid(l.id), "reason": "no heartbeat for %d ms" % LOST_MS}
          and la.to[0] == a.id and la.frm == (0, 0), "a silent shard is declared lost: LOST to A", la)
    check(la is None or t_lost - silent_since >= LOST_MS / 1000.0,
          "... not before lost_after_ms of silence", t_lost - silent_since)
    lb = b.expect(LOST, lambda e: e.body.get("shard") == hexid(l.id), 3)
    check(lb is not None and lb.to[0] == b.id, "... and to B", lb)
    w.pump(0.3)
    lc = [e for e in c.inbox if e.kind == LOST and e.body.get("shard") == hexid(l.id)]
    check(len(lc) == 1 and lc[0].to == (c.id, 1) and lc[0].frm == (0, 0),
          "clients get LOST too (their asks to that shard end at once)", c.inbox)
    check(not [e for e in l.inbox if e.kind == LOST], "the lost shard itself gets no LOST")
    gone = w.wait(lambda: sub.find(lambda e: e.body == {"shard": hexid(l.id), "lost": True}), 3)
    check(gone is not None and gone.seq >= 2, "the directory publishes {shard, lost: true}", gone)
    r = c.request("ps")["result"]
    check(hexid(l.id) not in [x["shard"] for x in r] and len(r) == 2,
          "ps forgets the lost shard and keeps A and B", r)
    check(hexid(l.id) not in c.request("directory")["result"], "the directory forgets it")
    check(c.request("stats")["result"]["lost"] >= 1, "stats counts lost shards")
    l.inbox.clear()
    r = l.hello()
    check(r and r.get("welcome") is False and r.get("code") == "ELOST", "a lost shard's HELLO: ELOST", r)
    l.send(ACTOR, {"action": "zombie"}, frm=(l.id, 3), to=(a.id, 0x10))
    d = l.expect(DEAD_LETTER)
    r = l.expect(REPLY)
    check(d is not None and is_dead(d, "EUNREACH") and r is not None and r.body.get("code") == "ELOST",
          "a lost shard's ACTOR: DEAD_LETTER EUNREACH + ELOST", (d, r))
    w.remove(l)
    # a clean leave
    m = Peer(w, br.bind)
    m.hello()
    m.auto_hb = True
    w.pump(0.2)
    m.auto_hb = False
    m.send(LOST, {"shard": hexid(m.id), "reason": "left"}, frm=(0, 0))
    e = a.expect(LOST, lambda e: e.body.get("shard") == hexid(m.id), 3)
    check(e is not None and e.body.get("reason") == "left", "a clean leave: LOST reason left", e)
    r = m.hello()
    check(r and r.get("code") == "ELOST", "after a clean leave the id is lost (ELOST)", r)
    w.remove(m)
    # LOST about someone else is refused
    m0 = c.request("stats")["result"]["malformed"]
    a.send(LOST, {"shard": hexid(b.id), "reason": "left"}, frm=(0, 0))
    e = a.expect(DEAD_LETTER, lambda e: is_dead(e, "EPROTO"))
    check(e is not None, "LOST about another shard: EPROTO", e)
    check(hexid(b.id) in [x["shard"] for x in c.request("ps")["result"]] and
          c.request("stats")["result"]["malformed"] == m0 + 1, "... and B stays joined")
    check(b.expect(LOST, lambda e: e.body.get("shard") == hexid(b.id), 0.2) is None,
          "... and nobody is told")
    # a joined shard whose connection is gone: EDEAD at once
    g = Peer(w, br.bind)
    g.hello()
    w.remove(g)
    w.pump(0.15)
    a.send(ACTOR, {"action": "to-gone"}, frm=(a.id, 0x10), to=(g.id, 1))
    e = a.expect(DEAD_LETTER, lambda e: e.body.get("action") == "to-gone")
    check(e is not None and is_dead(e, "EDEAD"), "ACTOR to a shard whose connection is gone: EDEAD", e)


def test_client_forgotten(w, br, a, c):
    e_ = Peer(w, br.control, kind="client")
    e_.hello()
    n0 = c.request("stats")["result"]["clients"]
    ok = w.wait(lambda: c.request("stats")["result"]["clients"] == n0 - 1, CLIENT_MS / 1000.0 + 4)
    check(ok, "a silent client is forgotten after --client-timeout-ms")
    a.send(ACTOR, {"action": "to-client"}, frm=(a.id, 0x10), to=(e_.id, 1))
    d = a.expect(DEAD_LETTER, lambda e: e.body.get("action") == "to-client")
    check(d is not None and is_dead(d, "EDEAD"), "... and messages to it are dead letters", d)
    e_.send(HEARTBEAT, {}, frm=(0, 0))
    r = e_.expect(REPLY)
    check(r is not None and r.body.get("error") == "say HELLO", "... and it is told to say HELLO", r)
    w.remove(e_)


def test_malformed(w, br, a, b, c):
    m0 = c.request("stats")["result"]["malformed"]
    h_ok = header(ACTOR, 1, (a.id, 1), (b.id, 1))
    bads = [
        ("one frame", [h_ok]),
        ("three frames", [h_ok, b"{}", b"extra"]),
        ("short header", [h_ok[:51], b"{}"]),
        ("bad signature", [header(ACTOR, 1, (a.id, 1), (b.id, 1), sig=0xAA52), b"{}"]),
        ("kind 0", [header(0, 1, (a.id, 1), (b.id, 1)), b"{}"]),
        ("kind 10", [header(10, 1, (a.id, 1), (b.id, 1)), b"{}"]),
        ("seq 0", [header(ACTOR, 0, (a.id, 1), (b.id, 1)), b"{}"]),
        ("half an address", [header(ACTOR, 1, (a.id, 0), (b.id, 1)), b"{}"]),
        ("invalid JSON", [h_ok, b"{"]),
        ("trailing bytes", [h_ok, b"{} x"]),
        ("NaN", [h_ok, b"NaN"]),
        ("invalid UTF-8", [h_ok, b'"\xc0\xaf"']),
        ("surrogate", [h_ok, b'"\xed\xa0\x80"']),
        ("too deep", [h_ok, b"[" * 200 + b"]" * 200]),
        ("oversized body", [h_ok, b'"' + b"a" * (16 << 20) + b'"']),
    ]
    for name, frames in bads:
        a.send_frames(frames)
        e = a.expect(DEAD_LETTER, lambda e: is_dead(e, "EPROTO"), 10)
        check(e is not None and e.body.get("error"), "malformed (%s): DEAD_LETTER EPROTO" % name, e)
    # another protocol version gets a refused welcome (version 1) that says so
    # (outside A's link: a broker heartbeat is left waiting before it, as under
    # load, and A's numbering must go on across it)
    time.sleep(1.5 * HB_MS / 1000.0)
    a.send_frames([header(ACTOR, 1, (a.id, 1), (b.id, 1), version=2), b"{}"])
    e = a.expect(REPLY, lambda e: isinstance(e.body, dict) and e.body.get("code") == "EVERSION", 10)
    check(e is not None and e.body.get("welcome") is False and e.seq == 1,
          "malformed (another version): a refused welcome EVERSION, outside the link", e)
    w.pump(2.5 * HB_MS / 1000.0)
    check(not a.seq_errors and a.welcome.get("welcome") is True,
          "... and the link goes on: no seq gap on A across the EVERSION answer", a.seq_errors)
    st = c.request("stats")["result"]
    check(st["malformed"] == m0 + len(bads) + 1, "every malformed message is counted",
          (m0, st["malformed"], len(bads)))
    check(not [x for x in b.inbox if x.kind == ACTOR and x.body == {}],
          "nothing malformed was routed", b.inbox)
    g0 = st["gaps"]
    a.send(ACTOR, {"action": "still-routing"}, frm=(a.id, 0x10), to=(b.id, 0x20))
    e = b.expect(ACTOR, lambda e: e.body.get("action") == "still-routing")
    check(e is not None, "the broker keeps routing after malformed input")
    check(c.request("stats")["result"]["gaps"] == g0, "malformed frames do not disturb the link's seq")
    s = Peer(w, br.bind)
    s.send_frames([b"hello?"])
    e = s.expect(DEAD_LETTER)
    check(e is not None and is_dead(e, "EPROTO"), "malformed from an unjoined peer: EPROTO too", e)
    w.remove(s)
    check(br.proc.poll() is None, "the broker is still running")


def test_efull(tmp, w):
    br = Broker(tmp, "efull", ["--heartbeat-ms", "1000", "--lost-after-ms", "60000"])
    r = None
    try:
        a = Peer(w, br.bind, opts=[(zmq.SNDHWM, 1000)])  # block rather than hoard
        a.hello()
        r = Peer(w, br.bind, opts=[(zmq.RCVHWM, 1), (zmq.RCVBUF, 4096)])
        r.hello()
        w.detach(r)  # r stops reading; its connection stays up
        c = Peer(w, br.control, kind="client")
        c.hello()
        st0 = c.request("stats")["result"]
        sent = 0
        full = None
        payload = "x" * 2000
        while sent < 200000 and full is None:
            for _ in range(1000):
                a.send(ACTOR, {"action": "flood", "p": payload}, frm=(a.id, 1), to=(r.id, 1))
            sent += 1000
            w.pump(0.01)
            full = next((e for e in a.inbox if e.kind == DEAD_LETTER), None)
        check(full is not None and is_dead(full, "EFULL") and full.body.get("action") == "flood",
              "a recipient that does not read: EFULL dead letters (after %d sent)" % sent, full)

        def settled():
            st = c.request("stats", timeout=20)["result"]
            dl = sum(1 for e in a.inbox if e.kind == DEAD_LETTER)
            routed = st["routed"] - st0["routed"]
            dead = st["dead_letters"] - st0["dead_letters"]
            return (routed, dead, dl) if routed + dead == sent and dead == dl else None
        got = w.wait(settled, 30)
        check(got is not None and got[1] > 0,
              "nothing lost silently: routed + dead letters = sent, each dead letter returned",
              (sent, got))
        a.inbox.clear()
        for x in (a, c):
            w.remove(x)
    finally:
        if r:
            r.sock.close(0)
        rc = br.stop()
        check(rc == 0, "EFULL broker exits 0", rc)


def test_curve(tmp, w):
    d = os.path.join(tmp, "curve")
    allow = os.path.join(d, "allow")
    os.makedirs(os.path.join(allow, "shards"))
    os.makedirs(os.path.join(allow, "clients"))
    srv_pub, srv_sec = zmq.curve_keypair()
    ok_pub, ok_sec = zmq.curve_keypair()
    cl_pub, cl_sec = zmq.curve_keypair()
    bad_pub, bad_sec = zmq.curve_keypair()

    def cert(path, pub, sec=None):
        lines = ["#   ****  Generated by test_broker.py  ****",
                 "#   ZeroMQ CURVE %s Certificate" % ("**Secret**" if sec else "Public"),
                 "", "metadata", "    name = \"test\"", "curve",
                 "    public-key = \"%s\"" % pub.decode()]
        if sec:
            lines.append("    secret-key = \"%s\"" % sec.decode())
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)  # a secret others may read is refused

    cert(os.path.join(d, "broker.cert_secret"), srv_pub, srv_sec)
    cert(os.path.join(d, "broker.cert"), srv_pub)
    cert(os.path.join(d, "public-only.cert"), srv_pub)  # no public-only.cert_secret beside it
    cert(os.path.join(allow, "shards", "shard.cert"), ok_pub)  # keys are admitted per role
    cert(os.path.join(allow, "clients", "client.cert"), cl_pub)
    ctl = "tcp://127.0.0.1:%d" % free_base()
    br = Broker(tmp, "curve", ["--curve-secret", os.path.join(d, "broker.cert_secret"),
                               "--curve-allow", allow], control=ctl)
    try:
        check("CURVE" in br.log(), "the broker says CURVE is on")
        good = (srv_pub, ok_pub, ok_sec)
        s = Peer(w, br.bind, curve=good)
        r = s.hello(timeout=10)
        s.auto_hb = True
        check(r and r.get("welcome") is True, "CURVE: a shard with an allowed certificate joins", r)
        cl = Peer(w, ctl, kind="client", rid=False, curve=(srv_pub, cl_pub, cl_sec))
        r = cl.hello(timeout=10)
        cl.auto_hb = True
        check(r and r.get("welcome") is True, "CURVE: a client on the tcp control endpoint joins", r)
        bad = Peer(w, ctl, kind="client", rid=False, curve=(srv_pub, bad_pub, bad_sec))
        r = bad.hello(timeout=1.5)
        check(r is None, "CURVE: a certificate not in --curve-allow is not admitted", r)
        plain = Peer(w, br.bind, kind="shard")
        r = plain.hello(timeout=1.5)
        check(r is None, "CURVE: a peer without CURVE is not admitted", r)
        st = cl.request("stats", timeout=10)
        check(st and st["result"]["peers"] == 2, "CURVE: only the two allowed peers joined", st)
        sub = Sub(w, br.dir_out, curve=good)
        got = w.wait(lambda: (s.hello(), publish(s, s.id, 1), sub.find(
            lambda e: e.body.get("shard") == hexid(s.id)))[2], 10)
        check(got is not None, "CURVE: the directory works for allowed peers", got)
        badsub = Sub(w, br.dir_out, curve=(srv_pub, bad_pub, bad_sec))
        publish(s, s.id, 2)
        w.pump(1.0)
        check(not badsub.inbox and sub.find(lambda e: e.body.get("version") == 2),
              "CURVE: a subscriber that is not allowed gets nothing", badsub.inbox)
        for x in (s, cl, bad, plain, sub, badsub):
            w.remove(x)
    finally:
        rc = br.stop()
        check(rc == 0, "CURVE broker exits 0 on SIGTERM", rc)
    rc, out = run(["--bind", "tcp://127.0.0.1:%d" % free_base(), "--control", ctl,
                   "--curve-secret", os.path.join(d, "missing"), "--curve-allow", allow])
    check(rc == 1 and "cannot read the secret key file" in out,
          "an unreadable certificate: exit 1 with a message", (rc, out))
    rc, out = run(["--bind", "tcp://127.0.0.1:%d" % free_base(), "--control", ctl,
                   "--curve-secret", os.path.join(d, "public-only.cert"), "--curve-allow", allow])
    check(rc == 1 and "secret" in out, "a public certificate as --curve-secret: exit 1", (rc, out))
    rc, out = run(["--bind", "tcp://127.0.0.1:%d" % free_base(), "--control", ctl,
                   "--curve-secret", os.path.join(d, "broker.cert_secret"),
                   "--curve-allow", os.path.join(d, "nodir")])
    check(rc == 1 and "curve-allow" in out, "a missing --curve-allow directory: exit 1", (rc, out))


def test_command_line(tmp):
    rc, out = run(["--help"])
    check(rc == 0 and all(o in out for o in ("--bind", "--control", "--heartbeat-ms",
                                              "--lost-after-ms", "--log-level", "--pid-file",
                                              "--curve-secret", "--curve-allow", "--version")),
          "--help: exit 0 and the full usage", rc)
    rc, out = run(["--version"])
    check(rc == 0 and re.match(r"skick-broker \d+\.\d+\.\d+", out), "--version", (rc, out))
    for args, what in ((["--bogus"], "an unknown option"),
                       (["--heartbeat-ms", "abc"], "a bad number"),
                       (["--heartbeat-ms"], "a missing argument"),
                       (["extra"], "a stray argument"),
                       (["--heartbeat-ms", "500", "--lost-after-ms", "400"], "lost-after <= heartbeat"),
                       (["--log-level", "loud"], "a bad log level"),
                       (["--bind", "udp://x"], "a bad --bind"),
                       (["--curve-secret", "x"], "--curve-secret without --curve-allow")):
        rc, out = run(args)
        check(rc == 2 and "skick-broker:" in out, "usage error (%s): exit 2" % what, (rc, out))
    rc, out = run(["--bind", "tcp://127.0.0.1:%d" % free_base(),
                   "--control", "tcp://127.0.0.1:%d" % free_base()])
    check(rc == 2 and "CURVE" in out, "a tcp:// control endpoint without CURVE is refused", (rc, out))
    rc, out = run(["--bind", "tcp://127.0.0.1:%d" % free_base(), "--control", "ipc://@skick-test"])
    check(rc == 2, "an abstract ipc control endpoint without CURVE is refused", (rc, out))
    # permissions, pid file, a busy port, a busy control socket, SIGINT
    pidf = os.path.join(tmp, "b1.pid")
    b1 = Broker(tmp, "b1", ["--pid-file", pidf])
    path = b1.control[len("ipc://"):]
    mode = stat.S_IMODE(os.stat(path).st_mode)
    check(stat.S_ISSOCK(os.stat(path).st_mode) and mode == 0o600,
          "the control socket is owner-only (0600)", oct(mode))
    dmode = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
    check(dmode == 0o700, "the control directory is created 0700", oct(dmode))
    with open(pidf) as f:
        check(f.read().strip() == str(b1.proc.pid), "--pid-file holds the pid")
    m = re.search(r"serving shards on (\S+), control on (\S+?) ", b1.log())
    check(m and m.group(1) == b1.bind and m.group(2) == b1.control,
          "the ready line names both endpoints", b1.log())
    rc, out = run(["--bind", b1.bind, "--control", "ipc://%s/other/control" % tmp])
    check(rc == 1 and "cannot bind" in out, "a shard endpoint in use: exit 1 with a message", (rc, out))
    rc, out = run(["--bind", "tcp://127.0.0.1:%d" % free_base(), "--control", b1.control])
    check(rc == 1 and "control" in out, "a control endpoint in use: exit 1 with a message", (rc, out))
    check(os.path.exists(path), "... and the first broker keeps its control socket")
    rc = b1.stop(signal.SIGINT)
    check(rc == 0, "SIGINT: exit 0", rc)
    check(not os.path.exists(pidf), "the pid file is removed at exit")
    # an ipc:// shard endpoint
    ipc_bind = "ipc://%s/shards" % tmp
    b3 = Broker(tmp, "b3", bind=ipc_bind)
    check("directory out %s.dir-out" % ipc_bind in b3.log(),
          "an ipc:// shard endpoint derives .dir-out", b3.log())
    w = World()
    p = Peer(w, ipc_bind)
    r = p.hello()
    check(r and r.get("welcome") is True, "a shard joins over ipc://", r)
    w.close()
    rc = b3.stop()
    check(rc == 0, "SIGTERM: exit 0", rc)


def main():
    if not os.access(BROKER, os.X_OK):
        print("no broker at %s" % BROKER)
        return 1
    random.seed()
    tmp = tempfile.mkdtemp(prefix="skick-broker-test-")
    os.chmod(tmp, 0o700)
    print("broker %s, temp %s" % (BROKER, tmp))
    test_command_line(tmp)
    br = Broker(tmp, "main", ["--heartbeat-ms", str(HB_MS), "--lost-after-ms", str(LOST_MS),
                              "--client-timeout-ms", str(CLIENT_MS)])
    w = World()
    try:
        a = Peer(w, br.bind)
        b = Peer(w, br.bind)
        test_join_and_heartbeats(w, br, a, b)
        c = Peer(w, br.control, kind="client")
        wc = c.hello()
        check(wc and wc.get("welcome") is True, "a client joins on the control socket", wc)
        c.auto_hb = True
        test_routing(w, a, b)
        test_dead_letters(w, br, a, c)
        test_seq_checks(w, a, b, c)
        test_control(w, br, a, b, c)
        test_client_routing(w, br, a, c)
        test_hello_refusals(w, br, a)
        sub = test_directory(w, br, a, c)
        test_loss(w, br, a, b, c, sub)
        test_client_forgotten(w, br, a, c)
        test_malformed(w, br, a, b, c)
        check(not a.seq_errors and not b.seq_errors and not c.seq_errors,
              "no seq gaps on any broker-to-peer link in the whole run",
              a.seq_errors + b.seq_errors + c.seq_errors)
    finally:
        rc = br.stop()
        check(rc == 0, "SIGTERM: the main broker exits 0", rc)
        w.close()
    log = br.log()
    check("ERROR: AddressSanitizer" not in log and "runtime error" not in log,
          "no sanitizer reports in the main broker's log")
    w = World()
    try:
        test_efull(tmp, w)
        test_curve(tmp, w)
    finally:
        w.close()
    print("%d checks, %d failed" % (CHECKS[0], len(FAILED)))
    for f in FAILED:
        print("  failed: " + f)
    if FAILED or os.environ.get("SKICK_TEST_KEEP"):
        print("logs kept in " + tmp)
    else:
        subprocess.run(["rm", "-rf", tmp])
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
