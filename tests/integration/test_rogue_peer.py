#!/usr/bin/python3
"""test_rogue_peer.py - a rogue local peer against a real cluster without CURVE

Usage: /usr/bin/python3 tests/integration/test_rogue_peer.py BUILD_DIR [unittest args]

Starts the real skick-broker, a front shard and two back shards on loopback
(test_cluster.Cluster, no CURVE: the insecure local mode) and attacks them
as any local user could (issue 16, items 1 and 2), with pyzmq speaking the
envelope format of skick_proto.py:

  * HELLO with the wrong role for the endpoint: a client on the shard
    endpoint, a shard on the control endpoint: both refused and counted;
  * a rogue that joins the shard endpoint as a shard and asks for the
    control plane's operations (ps, directory, services, stats; actors,
    sessions, stats, stop forwarded to shards): every one is refused with
    ECONTEXT, logged and counted, and a websocket session it tried to stop
    goes on; its hash operations, which real shards need, are served;
  * directory entries that name other shards, with version 10**12 (an
    empty one that would make every session `denied`, and one offering
    every session type), sent over its link and to the old directory-in
    endpoint (P+1): the real entries are unchanged, 8 new websocket
    sessions all land on real back shards and are answered, the refusals
    are logged and counted; its own entries are taken only when newer, and
    another connection cannot replace them;
  * a forged `from`: an ACTOR naming another shard as sender, and a REPLY
    passing itself off as the broker's own (from 0/0) to a client.

PROTOCOL.md "Who may say what" is the specification. Every wait is bounded.
"""
import asyncio
import json
import os
import socket
import sys
import threading
import time
import unittest

import websockets
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skick_proto as sp  # noqa: E402
import test_cluster as tc  # noqa: E402

WAIT = 5.0


class Rogue:
    """A raw DEALER peer that says whatever it likes (seq kept right, so
    that what it sends is judged on its content, not dropped as a
    duplicate)."""

    def __init__(self, endpoint, kind="shard", pid=None):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.id = pid or int.from_bytes(os.urandom(8), "big") | 1
        self.sock.setsockopt(zmq.ROUTING_ID, self.id.to_bytes(8, "big"))
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.kind = kind
        self.me = (self.id, self.id) if kind == "shard" else (self.id, 1)
        self.seq = 0
        self.req = 0
        self.inbox = []

    def close(self):
        self.sock.close(0)

    def send(self, kind, body, to=(0, 0), frm=None):
        self.seq += 1
        self.sock.send_multipart(sp.pack(kind, self.seq, body, frm or self.me, to))

    def recv(self, pred, timeout=WAIT):
        for i, e in enumerate(self.inbox):
            if pred(e):
                return self.inbox.pop(i)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.sock.poll(max(1, int((deadline - time.time()) * 1000))):
                break
            e = sp.unpack(self.sock.recv_multipart())
            if pred(e):
                return e
            self.inbox.append(e)
        return None

    def hello(self):
        self.seq = 0
        body = {"peer": self.kind, "pid": os.getpid(), "host": "rogue", "version": "0.1.0"}
        if self.kind == "shard":
            body.update(roles=["front", "back"], ws=None, apps=[])
        self.send("HELLO", body)
        e = self.recv(lambda e: e["kind"] == "REPLY" and "welcome" in (e["body"] or {}))
        return e["body"] if e else None

    def control(self, op, to=(0, 0), **args):
        """A CONTROL request; the REPLY body, or None."""
        self.req += 1
        rid = self.req
        self.send("CONTROL", dict(args, op=op, id=rid), to=to)
        e = self.recv(lambda e: e["kind"] == "REPLY" and (e["body"] or {}).get("id") == rid)
        return e["body"] if e else None


def directory_entry(shard, version, sessions=(), roles=("back",), types=()):
    return {"shard": "%016x" % shard, "version": version, "roles": list(roles), "ws": None,
            "types": list(types),
            "sessions": [{"name": n, "handshake": None,
                          "limits": {"max_message": 0, "rate": 0, "burst": 0,
                                     "idle_timeout_ms": 0}} for n in sessions],
            "services": {}}


def stats(c):
    r = c.client.request("stats")
    assert r["ok"], r
    return r["result"]


class RoguePeer(unittest.TestCase):
    """One cluster (broker, front, two backs) for every attack."""

    @classmethod
    def setUpClass(cls):
        cls.c = tc.Cluster(backs=2, lost_after=3000)
        cls.back1, cls.back2 = cls.c.shard_ids("back")
        cls.front = cls.c.shard_ids("front")[0]

    @classmethod
    def tearDownClass(cls):
        codes = cls.c.close()
        assert all(v == 0 for v in codes.values()), codes
        assert not cls.c.sanitizer_reports(), cls.c.sanitizer_reports()

    def rogue(self, endpoint=None, kind="shard", pid=None):
        r = Rogue(endpoint or self.c.endpoint, kind, pid)
        self.addCleanup(r.close)
        return r

    def broker_log(self):
        return self.c.broker.text()

    # ------------------------------------------------------------ HELLO roles

    def test_hello_with_the_wrong_role_for_the_endpoint_is_refused(self):
        before = stats(self.c)
        r = self.rogue(kind="client").hello()
        self.assertIsNotNone(r, "no answer to a client HELLO on the shard endpoint")
        self.assertIs(r["welcome"], False, r)
        self.assertEqual(r["code"], "EINVAL", r)
        self.assertIn("control endpoint", r["error"])
        r = self.rogue(self.c.control, kind="shard").hello()
        self.assertIs(r["welcome"], False, r)
        self.assertEqual(r["code"], "EINVAL", r)
        after = stats(self.c)
        self.assertGreaterEqual(after["hello_refused"] - before["hello_refused"], 2, after)
        self.assertEqual(after["clients"], before["clients"], "no client joined")
        self.assertIn("clients join on the control endpoint", self.broker_log())

    # -------------------------------------------------------- control plane

    def test_control_operations_are_refused_on_the_shard_endpoint(self):
        c = self.c

        async def go():
            ws = await tc.ws_session(c.ws_port, {"session_type": "cluster_echo"})
            first = await tc.ws_echo(ws, "before")
            session = first["session"]
            shard = sp.parse_addr(session)[0]
            rogue = self.rogue()
            welcome = rogue.hello()
            self.assertIs(welcome["welcome"], True, "a rogue may still join as a shard")
            before = stats(c)
            asked = [("ps", (0, 0), {}), ("directory", (0, 0), {}), ("services", (0, 0), {}),
                     ("stats", (0, 0), {}),
                     ("actors", (shard, shard), {}), ("stats", (shard, shard), {}),
                     ("sessions", (self.front, self.front), {}),
                     ("stop", (shard, shard), {"address": session})]
            answers = [(op, to, rogue.control(op, to=to, **args)) for op, to, args in asked]
            hashed = rogue.control("hash", cmd="set", table="rogue", key="k", value=1)
            after = stats(c)
            second = await tc.ws_echo(ws, "after")
            actors = c.client.request("actors", shard=shard)
            await ws.close()
            return (first, second, session, shard, answers, hashed, before, after, actors)

        first, second, session, shard, answers, hashed, before, after, actors = tc.run(go())
        for op, to, r in answers:
            self.assertIsNotNone(r, "no REPLY to %s for %x" % (op, to[0]))
            self.assertIs(r["ok"], False, (op, r))
            self.assertEqual(r["code"], "ECONTEXT", (op, r))
            self.assertIn("control plane", r["error"])
        self.assertEqual(after["control_refused"] - before["control_refused"], len(answers))
        self.assertEqual(second["echo"], "after", "the session it tried to stop goes on")
        self.assertEqual(second["session"], session)
        self.assertTrue(actors["ok"], actors)
        self.assertIn(session, [a["address"] for a in actors["result"]])
        self.assertTrue(hashed and hashed["ok"], "a shard's own need, the hash store: served")
        self.assertIn("refused: this operation belongs to the control plane: use the control "
                      "endpoint", self.broker_log())

    # ------------------------------------------------------------ directory

    def test_forged_directory_entries_are_refused(self):
        c = self.c
        real = c.client.request("directory")["result"]
        before = stats(c)
        rogue = self.rogue()
        self.assertIs(rogue.hello()["welcome"], True)
        every = ["cluster_echo", "hello", "chat", "admin"] + ["type%d" % i for i in range(20)]
        forged = [directory_entry(self.back1, 10 ** 12),          # every session `denied`
                  directory_entry(self.back2, 10 ** 12),
                  directory_entry(self.front, 10 ** 12, every, types=every)]
        for e in forged:
            rogue.send("DIRECTORY", e)
        # the old way in, the anonymous directory-in endpoint (P+1): gone
        pub = zmq.Context.instance().socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.connect("tcp://127.0.0.1:%d" % (c.port + 1))
        deadline = time.time() + 1.5
        while time.time() < deadline:  # PUB/SUB joins slowly: keep sending
            for e in forged:
                shard = int(e["shard"], 16)
                pub.send_multipart(sp.pack("DIRECTORY", e["version"], e, frm=(shard, shard)))
            time.sleep(0.1)
        pub.close(0)
        time.sleep(2.5)  # the real shards re-advertise every 2 s meanwhile
        now = c.client.request("directory")["result"]
        for shard in (self.back1, self.back2, self.front):
            key = "%016x" % shard
            self.assertLess(now[key]["version"], 10 ** 12, now[key])
            self.assertEqual(now[key]["sessions"], real[key]["sessions"])
            self.assertEqual(now[key]["roles"], real[key]["roles"])
        after = stats(c)
        self.assertGreaterEqual(after["directory_refused"] - before["directory_refused"],
                                len(forged), after)
        self.assertIn("a shard publishes its own entry only", self.broker_log())
        with socket.socket() as s:
            s.settimeout(1)
            self.assertNotEqual(s.connect_ex(("127.0.0.1", c.port + 1)), 0,
                                "nothing listens on the old directory-in port")

        async def sessions():
            socks = [await tc.ws_session(c.ws_port, {"session_type": "cluster_echo"})
                     for _ in range(8)]
            answers = [await tc.ws_echo(ws, "s%d" % i) for i, ws in enumerate(socks)]
            for ws in socks:
                await ws.close()
            return answers

        answers = tc.run(sessions())
        self.assertEqual([a.get("echo") for a in answers], ["s%d" % i for i in range(8)])
        for a in answers:
            self.assertIn(sp.parse_addr(a["session"])[0], (self.back1, self.back2))

    def test_own_entries_are_taken_only_when_newer_and_only_from_their_connection(self):
        c = self.c
        rogue = self.rogue()
        self.assertIs(rogue.hello()["welcome"], True)
        key = "%016x" % rogue.id
        mine = dict(directory_entry(rogue.id, 5, roles=("front",)), note="five")
        rogue.send("DIRECTORY", mine)
        got = tc.wait_for(lambda: c.client.request("directory")["result"].get(key), WAIT)
        self.assertEqual(got, mine, "a shard's own entry is taken")
        before = stats(c)
        rogue.send("DIRECTORY", dict(mine, version=3, note="three"))   # older: dropped
        rogue.send("DIRECTORY", dict(mine, version=5, note="again"))   # same: dropped
        other = self.rogue()
        self.assertIs(other.hello()["welcome"], True)
        other.send("DIRECTORY", dict(mine, version=99, note="other"))  # another connection
        rogue.send("DIRECTORY", dict(mine, version=6, note="six"))
        got = tc.wait_for(lambda: (c.client.request("directory")["result"].get(key) or {})
                          .get("version") == 6 and c.client.request("directory")["result"][key])
        self.assertEqual(got and got["note"], "six")
        after = stats(c)
        self.assertEqual(after["directory_dropped"] - before["directory_dropped"], 2, after)
        self.assertEqual(after["directory_refused"] - before["directory_refused"], 1, after)
        # a new HELLO on the same connection starts its versions again
        self.assertIs(rogue.hello()["welcome"], True)
        rogue.send("DIRECTORY", dict(mine, version=1, note="one"))
        got = tc.wait_for(lambda: (c.client.request("directory")["result"].get(key) or {})
                          .get("note") == "one")
        self.assertTrue(got, "after a new HELLO version 1 is new again")
        rogue.send("LOST", {"shard": key, "reason": "left"})
        other.send("LOST", {"shard": "%016x" % other.id, "reason": "left"})

    def test_a_session_placed_on_a_peer_that_never_starts_it_fails(self):
        """A peer may advertise a session type and then never start the
        sessions placed on it (a rogue, or a shard wedged in a handler
        while it still heartbeats): the client is told "session failed"
        and 1011 once the start deadline (10 s) passes, not left waiting."""
        c = self.c
        rogue = self.rogue()
        self.assertIs(rogue.hello()["welcome"], True)
        rogue.send("DIRECTORY", directory_entry(rogue.id, 1, sessions=("ghost",)))
        key = "%016x" % rogue.id
        self.assertTrue(tc.wait_for(lambda: key in c.client.request("directory")["result"]))
        stop = threading.Event()

        def beat():  # alive as far as the broker can tell
            while not stop.wait(0.4):
                rogue.send("HEARTBEAT", {})
        beater = threading.Thread(target=beat, daemon=True)
        beater.start()
        self.addCleanup(beater.join)
        self.addCleanup(stop.set)

        async def go():
            for _ in range(50):  # the front hears of the entry through the directory feed
                ws = await tc.ws_session(c.ws_port, {"session_type": "ghost"})
                try:
                    first = await asyncio.wait_for(ws.recv(), 0.3)
                except asyncio.TimeoutError:
                    break  # placed, and waiting
                await ws.close()
                self.assertEqual(first, "denied")
                await asyncio.sleep(0.1)
            t0 = time.time()
            msg = json.loads(await asyncio.wait_for(ws.recv(), 15))
            self.assertEqual(msg, {"action": "error", "type": "session failed"})
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                await asyncio.wait_for(ws.recv(), WAIT)
            self.assertEqual(cm.exception.code, 1011)
            return time.time() - t0
        waited = asyncio.run(go())
        self.assertLess(waited, 12.0)
        self.assertRegex(c.front.text(), r"session [0-9a-f:]+ \(ghost\) did not start within")
        stop.set()
        beater.join()
        rogue.send("LOST", {"shard": key, "reason": "left"})

    def test_claiming_a_shards_routing_id_does_not_make_you_that_shard(self):
        # A shard's routing id is its id, which anyone can read in the
        # directory. Connecting with it must neither cut the shard off nor
        # let the newcomer speak for it.
        c = self.c
        key = "%016x" % self.back1
        real = c.client.request("directory")["result"][key]
        before = stats(c)
        thief = self.rogue(pid=self.back1)
        time.sleep(0.3)
        thief.send("DIRECTORY", directory_entry(self.back1, 10 ** 12))
        r = thief.hello()
        self.assertTrue(r is None or r["welcome"] is False, r)
        time.sleep(c.lost_after / 1000 + 1.0)  # long enough for back1 to be lost if cut off
        now = c.client.request("directory")["result"][key]
        self.assertLess(now["version"], 10 ** 12)
        self.assertGreater(now["version"], real["version"], "back1 goes on advertising")
        self.assertEqual(now["sessions"], real["sessions"])
        self.assertIn(self.back1, c.shard_ids("back"))
        self.assertNotIn("shard %s lost" % key, self.broker_log(), "back1 was never lost")

        async def session():
            ws = await tc.ws_session(c.ws_port, {"session_type": "cluster_echo"})
            r = await tc.ws_echo(ws, "still")
            await ws.close()
            return r

        self.assertEqual(tc.run(session())["echo"], "still")

    def test_a_routing_id_freed_by_its_shard_is_not_that_shard(self):
        # Once a shard's connection is gone the next connection with its
        # routing id gets it; only the shard itself (it shows the token of
        # its welcome) joins again with that id.
        c = self.c
        shard = self.rogue()
        welcome = shard.hello()
        self.assertIs(welcome["welcome"], True)
        token = welcome.get("token")
        self.assertTrue(token, "a shard's welcome carries a token: %s" % welcome)
        shard.close()
        time.sleep(0.3)
        before = stats(c)
        thief = self.rogue(pid=shard.id)
        thief.send("DIRECTORY", directory_entry(shard.id, 10 ** 12))
        said = thief.recv(lambda e: e["kind"] == "REPLY" and "welcome" in (e["body"] or {}))
        self.assertIsNotNone(said, "an envelope from the new connection is answered")
        self.assertEqual(said["body"]["error"], "say HELLO", said)
        r = thief.hello()
        self.assertIs(r["welcome"], False, r)
        self.assertEqual(r["code"], "EINVAL", r)
        self.assertIn("token", r["error"])
        other = int.from_bytes(os.urandom(8), "big") | 1  # as another shard, on that routing id
        thief.seq = 0
        thief.send("HELLO", {"peer": "shard", "roles": ["front"], "ws": None, "apps": []},
                   frm=(other, other))
        r = thief.recv(lambda e: e["kind"] == "REPLY" and "welcome" in (e["body"] or {}))
        self.assertIs(r and r["body"]["welcome"], False, r)
        self.assertIn("belongs to", r["body"]["error"])
        key = "%016x" % shard.id
        self.assertNotIn("shard %s lost" % key, self.broker_log(), "it did not make it lost")
        self.assertNotIn(key, c.client.request("directory")["result"])
        after = stats(c)
        self.assertEqual(after["hello_refused"] - before["hello_refused"], 2, after)
        self.assertGreaterEqual(after["strangers"] - before["strangers"], 1, after)
        self.assertIn("another connection than the one that joined as " + key, self.broker_log())
        thief.close()
        time.sleep(0.3)
        again = self.rogue(pid=shard.id)
        again.seq = 0
        again.send("HELLO", {"peer": "shard", "pid": os.getpid(), "host": "rogue",
                             "version": "0.1.0", "roles": ["front"], "ws": None, "apps": [],
                             "token": token})
        r = again.recv(lambda e: e["kind"] == "REPLY" and "welcome" in (e["body"] or {}))
        self.assertIs(r and r["body"]["welcome"], True, r)
        self.assertIn(key + " joins again from a new connection", self.broker_log())
        again.send("LOST", {"shard": key, "reason": "left"})

    # ---------------------------------------------------------- forged from

    def test_a_forged_from_is_refused(self):
        c = self.c
        before = stats(c)
        rogue = self.rogue()
        self.assertIs(rogue.hello()["welcome"], True)
        # an actor message in another shard's name
        rogue.send("ACTOR", {"action": "spawn", "type": "echo"},
                   frm=(self.back1, self.back1), to=(self.back2, self.back2))
        d = rogue.recv(lambda e: e["kind"] == "DEAD_LETTER")
        self.assertIsNotNone(d)
        self.assertEqual(d["body"]["code"], "EPROTO", d)
        # a REPLY in the broker's name (from 0/0) to a control-plane client
        victim = sp.Client(c.control)
        self.addCleanup(victim.close)
        rogue.send("REPLY", {"id": 1, "ok": True, "result": "session expired: log in at "
                             "http://evil.example"}, frm=(0, 0), to=victim.me)
        d = rogue.recv(lambda e: e["kind"] == "DEAD_LETTER")
        self.assertIsNotNone(d, "the forged REPLY is refused")
        self.assertEqual(d["body"]["code"], "EPROTO", d)
        self.assertIn("own id", d["body"]["error"])
        heard, deadline = [], time.time() + 1.0
        while time.time() < deadline:
            e = victim.recv(deadline - time.time())
            if e:
                heard.append(e)
        self.assertEqual([e for e in heard if e["kind"] == "REPLY"], [],
                         "the client got nothing in the broker's name")
        # a client cannot speak for a shard either
        victim._send("ACTOR", {"action": "spawn", "type": "echo"}, to=(self.back2, self.back2),
                     frm=(self.back1, self.back1))
        d = None
        deadline = time.time() + WAIT
        while d is None and time.time() < deadline:
            e = victim.recv(deadline - time.time())
            if e and e["kind"] == "DEAD_LETTER":
                d = e
        self.assertIsNotNone(d)
        self.assertEqual(d["body"]["code"], "EPROTO", d)
        after = stats(c)
        self.assertGreaterEqual(after["malformed"] - before["malformed"], 3, after)
        self.assertIn("from_shard must be the sender's own id", self.broker_log())


if __name__ == "__main__":
    # test_cluster's runner: it sets tc.BUILD and runs this module's tests
    sys.exit(tc.main())
