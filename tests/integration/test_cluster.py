#!/usr/bin/python3
"""test_cluster.py - shards as separate processes through a real skick-broker

Usage: /usr/bin/python3 tests/integration/test_cluster.py BUILD_DIR [unittest args]

Starts BUILD_DIR/broker/skick-broker, a front shard with no application
module and back shards loading BUILD_DIR/tests/integration/cluster_test_app.so
(tests/integration/cluster_app.c), all on loopback. The test joins the
broker's control socket as a client (skick_proto.py, raw protocol) to call
actors inside the cluster, and talks websockets to the front shard. It
checks what proto/PROTOCOL.md "The cluster" promises: remote spawns,
conversations, monitors, services and hashes across shards; sessions whose
session actor lives on a back shard; kill -9 of a back shard (clients told,
sentinels delivered, conversations ended, the rest unaffected); a broker
restart (shards rejoin, traffic resumes, what could not be sent is
reported); malformed traffic toward shards. Every wait is bounded.
"""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import websockets
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skick_proto as sp  # noqa: E402

BUILD = None
WAIT = 10.0
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def free_port(n=1):
    """A base port p such that p .. p+n-1 are free now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + n >= 65000:
            continue
        ok = True
        for k in range(1, n):
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", p + k))
                except OSError:
                    ok = False
        if ok:
            return p
    raise RuntimeError("no free ports")


def wait_for(fn, timeout=WAIT, step=0.05):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (TimeoutError, KeyError, IndexError):
            pass
        time.sleep(step)
    return last


class Proc:
    def __init__(self, name, argv, tmp):
        self.name = name
        self.argv = argv
        self.log = os.path.join(tmp, name + ".log")
        self.start()

    def start(self):
        env = dict(os.environ, SKICK_LOG_LEVEL="info")  # the tests read log lines
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        with open(self.log, "a") as out:
            self.p = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=WAIT):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


class Cluster:
    """A broker, one front shard and `backs` back shards."""

    def __init__(self, backs=2, lost_after=1500, broker_args=(), node_args=()):
        """broker_args, node_args: extra arguments for the broker and for
        every shard (e.g. ["--hash", URL])."""
        self.broker_args, self.node_args = list(broker_args), list(node_args)
        self.tmp = tempfile.mkdtemp(prefix="skick-cluster-")
        self.port = free_port(3)
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.control = "ipc://%s/control" % self.tmp
        self.lost_after = lost_after
        self.procs = []
        self.broker = self.start_broker()
        self.client = sp.Client(self.control)
        self.ws_port = free_port()
        self.front = self.node("front", ["--front", "--port", str(self.ws_port)])
        self.backs = [self.node("back-%d" % (i + 1), ["--back", "--app", self.app()])
                      for i in range(backs)]
        self.wait_shards(1 + backs)

    @staticmethod
    def app():
        return os.path.join(BUILD, "tests", "integration", "cluster_test_app.so")

    def start_broker(self):
        p = Proc("broker", [os.path.join(BUILD, "broker", "skick-broker"), "--bind",
                            self.endpoint, "--control", self.control, "--heartbeat-ms", "200",
                            "--lost-after-ms", str(self.lost_after)] + self.broker_args,
                 self.tmp)
        self.procs.append(p)
        wait_for(lambda: "serving" in p.text() or p.p.poll() is not None)
        return p

    def node(self, name, args):
        p = Proc(name, [os.path.join(BUILD, "node", "skick-node"), "--broker", self.endpoint]
                 + args + self.node_args, self.tmp)
        self.procs.append(p)
        return p

    def ps(self):
        r = self.client.request("ps")
        assert r["ok"], r
        return r["result"]

    def wait_shards(self, n):
        got = wait_for(lambda: len(self.ps()) == n and self.directory_ready(n), 20)
        if not got:
            raise RuntimeError("cluster did not come up: %s\n%s" % (
                self.ps(), "\n".join(p.name + ":\n" + p.text()[-2000:] for p in self.procs)))
        time.sleep(0.3)  # let every shard receive the others' entries

    def directory_ready(self, n):
        r = self.client.request("directory")
        return r["ok"] and len(r["result"]) == n

    def shard_ids(self, role):
        return [int(s["shard"], 16) for s in self.ps() if role in s["roles"]
                and (role != "front" or "back" not in s["roles"])]

    def spawn_on(self, shard, type_):
        kind, msg = self.client.ask(sp.addr(shard, shard), {"action": "spawn", "type": type_})
        assert kind == "reply", (kind, msg)
        return msg["address"]

    def close(self):
        self.client.close()
        codes = {}
        for p in reversed(self.procs):
            codes[p.name] = p.stop()
        return codes

    def sanitizer_reports(self):
        return [p.name for p in self.procs if SANITIZER.search(p.text())]


async def ws_session(port, handshake, timeout=WAIT):
    ws = await asyncio.wait_for(websockets.connect("ws://127.0.0.1:%d/" % port,
                                                   open_timeout=timeout), timeout)
    await ws.send(json.dumps(handshake))
    return ws


async def ws_echo(ws, text, timeout=WAIT):
    await ws.send(json.dumps({"action": "echo", "text": text}))
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def run(coro):
    return asyncio.run(coro)


class CrossShard(unittest.TestCase):
    """One cluster for the whole class: broker + front + 2 backs."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(backs=2)
        cls.back1, cls.back2 = cls.c.shard_ids("back")

    @classmethod
    def tearDownClass(cls):
        codes = cls.c.close()
        assert all(v == 0 for v in codes.values()), codes
        assert not cls.c.sanitizer_reports(), cls.c.sanitizer_reports()

    def ask(self, address, msg, timeout=WAIT):
        return self.c.client.ask(address, msg, timeout)

    def test_ps_lists_every_shard_with_roles(self):
        shards = self.c.ps()
        roles = sorted(tuple(s["roles"]) for s in shards)
        self.assertEqual(roles, [("back",), ("back",), ("front",)])
        front = [s for s in shards if s["roles"] == ["front"]][0]
        self.assertEqual(front["ws"], "ws://127.0.0.1:%d/" % self.c.ws_port)
        for s in shards:
            self.assertGreater(s["pid"], 0)

    def test_remote_spawn_lands_on_the_other_back_shard(self):
        w = self.c.spawn_on(self.back1, "watcher")
        self.assertEqual(sp.parse_addr(w)[0], self.back1)
        kind, r = self.ask(w, {"action": "spawn_child", "type": "echo"})
        self.assertEqual(kind, "reply")
        child = r["child"]
        self.assertEqual(sp.parse_addr(child)[0], self.back2, "SKICK_REMOTE: another shard")
        kind, r = self.ask(w, {"action": "call", "address": child, "n": 7})
        self.assertEqual((kind, r), ("reply", {"from": child, "n": 7}))

    def test_a_remote_actor_can_be_called_right_after_its_spawn(self):
        w = self.c.spawn_on(self.back1, "watcher")
        for _ in range(30):
            kind, r = self.ask(w, {"action": "spawn_and_call"})
            self.assertEqual(kind, "reply")
            self.assertEqual(r.get("n"), 9, r)
            self.assertEqual(sp.parse_addr(r["from"])[0], self.back2)

    def test_mixed_spawn_prefers_the_local_shard(self):
        w = self.c.spawn_on(self.back1, "watcher")
        kind, r = self.ask(w, {"action": "spawn_mixed", "type": "echo"})
        self.assertEqual(sp.parse_addr(r["child"])[0], self.back1)

    def test_spawning_an_unknown_type_fails_cleanly(self):
        w = self.c.spawn_on(self.back1, "watcher")
        kind, r = self.ask(w, {"action": "spawn_child", "type": "no_such_type"})
        self.assertEqual((kind, r), ("reply", {"error": "ENOTYPE"}))

    def test_conversation_with_a_dead_remote_actor_ends_with_edead(self):
        w = self.c.spawn_on(self.back1, "watcher")
        ghost = sp.addr(self.back2, 0x1234)
        kind, r = self.ask(w, {"action": "call", "address": ghost, "n": 1})
        self.assertEqual((kind, r), ("reply", {"error": "EDEAD"}))

    def test_client_ask_to_a_dead_actor_gets_an_answer(self):
        kind, r = self.ask(sp.addr(self.back2, 0x999), {"action": "ask", "n": 1})
        self.assertIn(kind, ("end", "dead"))
        self.assertEqual(r.get("code"), "EDEAD")

    def test_remote_monitor_gets_the_sentinel(self):
        w = self.c.spawn_on(self.back1, "watcher")
        target = self.c.spawn_on(self.back2, "echo")
        self.assertEqual(self.ask(w, {"action": "watch", "address": target})[0], "reply")
        time.sleep(0.2)
        r = self.c.client.request("stop", shard=self.back2, address=target)
        self.assertTrue(r["ok"], r)
        got = wait_for(lambda: self.ask(w, {"action": "sentinels"})[1]["sentinels"])
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["address"], target)
        self.assertEqual(got[0]["type"], "cancellation")

    def test_services_are_seen_across_shards(self):
        provider = self.c.spawn_on(self.back1, "watcher")
        seeker = self.c.spawn_on(self.back2, "watcher")
        self.assertEqual(self.ask(provider, {"action": "register", "name": "svc-x"}),
                         ("reply", {}))

        def found():
            k, r = self.ask(seeker, {"action": "find", "name": "svc-x", "where": "remote"})
            return r.get("address")
        self.assertEqual(wait_for(found), provider)
        k, r = self.ask(seeker, {"action": "find", "name": "svc-x", "where": "local"})
        self.assertEqual(r, {"error": "ENOTFOUND"})
        k, r = self.ask(seeker, {"action": "find", "name": "svc-x", "where": "mixed"})
        self.assertEqual(r, {"address": provider})
        svc = self.c.client.request("services")
        self.assertIn({"name": "svc-x", "address": provider, "shard": "%016x" % self.back1},
                      svc["result"])
        # the provider stops: the service leaves the directory
        self.c.client.request("stop", shard=self.back1, address=provider)
        self.assertEqual(wait_for(lambda: self.ask(seeker, {"action": "find", "name": "svc-x",
                                                            "where": "remote"})[1]
                                  .get("error")), "ENOTFOUND")

    def test_hashes_are_shared_through_the_broker(self):
        a = self.c.spawn_on(self.back1, "watcher")
        b = self.c.spawn_on(self.back2, "watcher")
        self.assertEqual(self.ask(a, {"action": "hset", "key": "k1", "value": [1, {"x": 2}]}),
                         ("reply", {}))
        self.assertEqual(self.ask(b, {"action": "hget", "key": "k1"}),
                         ("reply", {"value": [1, {"x": 2}]}))
        self.assertEqual(self.ask(b, {"action": "hget", "key": "nope"}),
                         ("reply", {"error": "ENOTFOUND"}))

    def test_websocket_session_lives_on_a_back_shard(self):
        async def go():
            ws = await ws_session(self.c.ws_port, {"session_type": "cluster_echo", "name": "a"})
            r = await ws_echo(ws, "hi")
            await ws.close()
            return r
        r = run(go())
        self.assertEqual(r["echo"], "hi")
        self.assertIn(sp.parse_addr(r["session"])[0], (self.back1, self.back2))

    def test_remote_session_handshake_schema_and_errors(self):
        async def go():
            ws = await ws_session(self.c.ws_port, {"session_type": "cluster_echo", "name": 5})
            denied = await asyncio.wait_for(ws.recv(), WAIT)
            ws2 = await ws_session(self.c.ws_port, {"session_type": "nope"})
            denied2 = await asyncio.wait_for(ws2.recv(), WAIT)
            ws3 = await ws_session(self.c.ws_port, {"session_type": "cluster_echo"})
            await ws3.send(json.dumps({"action": "echo", "text": 5}))
            bad = json.loads(await asyncio.wait_for(ws3.recv(), WAIT))
            await ws3.send("{nope")
            badjson = json.loads(await asyncio.wait_for(ws3.recv(), WAIT))
            ok = await ws_echo(ws3, "still here")
            await ws3.close()
            return denied, denied2, bad, badjson, ok
        denied, denied2, bad, badjson, ok = run(go())
        self.assertEqual(denied, "denied")
        self.assertEqual(denied2, "denied")
        self.assertEqual(bad, {"action": "error", "type": "not schema compliant"})
        self.assertEqual(badjson, {"action": "error", "type": "invalid JSON"})
        self.assertEqual(ok["echo"], "still here")

    def test_sessions_and_actors_listings(self):
        async def go():
            ws = await ws_session(self.c.ws_port, {"session_type": "cluster_echo"})
            r = await ws_echo(ws, "x")
            front = self.c.shard_ids("front")[0]
            s = self.c.client.request("sessions", shard=front)
            back = sp.parse_addr(r["session"])[0]
            a = self.c.client.request("actors", shard=back)
            await ws.close()
            return r, s, a
        r, s, a = run(go())
        self.assertTrue(s["ok"])
        mine = [x for x in s["result"] if x["session"] == r["session"]]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["type"], "cluster_echo")
        self.assertTrue(any(x["address"] == r["session"] and x.get("session")
                            for x in a["result"]))

    def test_bad_control_requests_and_junk_envelopes_to_a_shard(self):
        cl = self.c.client
        r = cl.request("frobnicate", shard=self.back1)
        self.assertEqual((r["ok"], r["code"]), (False, "EINVAL"))
        r = cl.request("stop", shard=self.back1, address="nonsense")
        self.assertEqual(r["code"], "EDEAD")
        r = cl.request("stop", shard=self.back1, address=sp.addr(self.back1, self.back1))
        self.assertEqual(r["code"], "EINVAL", "the shard actor is not stopped this way")
        before = cl.request("stats", shard=self.back1)["result"]
        # actor and client messages whose body is not an object
        cl._send("ACTOR", [1, 2, 3], to=(self.back1, 5), frm=cl.me)
        cl._send("CLIENT", "text", to=(self.back1, 5), frm=cl.me)
        # a CLIENT message for something that is not a session
        cl._send("CLIENT", {"action": "echo"}, to=(self.back1, self.back1), frm=cl.me)
        # a spawn request with a bad address and one for an unknown type
        cl.send(sp.addr(self.back1, self.back1), {"action": "spawn", "type": "echo",
                                                  "name": "bogus"})
        cl.send(sp.addr(self.back1, self.back1), {"action": "spawn_session", "type": "zzz",
                                                  "name": sp.addr(self.back1, 77),
                                                  "message": {},
                                                  "receptionist": cl.address})
        time.sleep(0.5)
        after = cl.request("stats", shard=self.back1)["result"]
        self.assertGreaterEqual(after["malformed"] - before["malformed"], 2)
        # the refused session request told the "receptionist" (us) with a sentinel
        sentinels = [e for e in cl.inbox + [cl.recv(0.5)] if e and e["kind"] == "ACTOR"
                     and (e["body"] or {}).get("action") == "sentinel"]
        self.assertTrue(any(s["body"]["address"] == sp.addr(self.back1, 77) for s in sentinels))
        # and the shard still works
        w = self.c.spawn_on(self.back1, "watcher")
        self.assertEqual(self.ask(w, {"action": "sentinels"}), ("reply", {"sentinels": []}))


class Failures(unittest.TestCase):
    """A fresh cluster per test: these kill things."""

    def setUp(self):
        self.c = Cluster(backs=2)
        self.back1, self.back2 = self.c.shard_ids("back")

    def tearDown(self):
        self.c.close()
        self.assertEqual(self.c.sanitizer_reports(), [])

    def back_proc(self, shard):
        pid = [s["pid"] for s in self.c.ps() if int(s["shard"], 16) == shard][0]
        return [p for p in self.c.procs if p.p.pid == pid][0]

    def test_kill_9_of_a_back_shard(self):
        c = self.c
        w = c.spawn_on(self.back1, "watcher")
        victim_actor = c.spawn_on(self.back2, "slow")
        self.assertEqual(c.client.ask(w, {"action": "watch", "address": victim_actor})[0],
                         "reply")
        # load across the two back shards, both ways, through the kill
        flooder1, flooder2 = c.spawn_on(self.back1, "watcher"), c.spawn_on(self.back2, "watcher")
        sink1, sink2 = c.spawn_on(self.back1, "echo"), c.spawn_on(self.back2, "echo")

        async def go():
            # sessions on both back shards (placement is random: open until both seen)
            socks = {}
            for _ in range(40):
                ws = await ws_session(c.ws_port, {"session_type": "cluster_echo"})
                r = await ws_echo(ws, "x")
                socks.setdefault(sp.parse_addr(r["session"])[0], []).append(ws)
                if len(socks) == 2 and all(len(v) >= 2 for v in socks.values()):
                    break
            self.assertEqual(set(socks), {self.back1, self.back2})
            # a conversation waiting on the victim, from a survivor
            other = sp.Client(c.control)
            cid_task = asyncio.get_running_loop().run_in_executor(
                None, lambda: other.ask(w, {"action": "call", "address": victim_actor,
                                            "ms": 30000, "timeout": 60000}, 20))
            # the flood outlasts the loss (declared after lost_after) by seconds
            flood_ms = c.lost_after + 4000
            c.client.ask(flooder1, {"action": "flood", "address": sink2, "ms": flood_ms})
            c.client.ask(flooder2, {"action": "flood", "address": sink1, "ms": flood_ms})
            await asyncio.sleep(0.5)
            t0 = time.time()
            self.back_proc(self.back2).p.kill()
            # every client of the lost shard: error object then close 1011
            for ws in socks[self.back2]:
                msg = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                self.assertEqual(msg, {"action": "error", "type": "session failed"})
                try:
                    await asyncio.wait_for(ws.recv(), WAIT)
                    self.fail("the socket stayed open")
                except websockets.exceptions.ConnectionClosed as e:
                    self.assertEqual(e.code, 1011)
            told = time.time() - t0
            # everyone else is unaffected
            for ws in socks[self.back1]:
                r = await ws_echo(ws, "still")
                self.assertEqual(r["echo"], "still")
                await ws.close()
            kind, r = await cid_task
            other.close()
            return told, kind, r
        told, kind, r = run(go())
        self.assertLess(told, 8.0, "clients told within seconds")
        self.assertEqual((kind, r), ("reply", {"error": "EPARTNER"}))
        got = wait_for(lambda: c.client.ask(w, {"action": "sentinels"})[1]["sentinels"])
        self.assertEqual(len(got), 1)
        self.assertEqual((got[0]["address"], got[0]["type"], got[0]["exception"]),
                         (victim_actor, "exception", "shard lost"))
        # the surviving flooder kept going: its sends after the loss were refused, not lost
        flood = wait_for(lambda: c.client.ask(flooder1, {"action": "results"})[1]["results"], 20)
        self.assertEqual(len(flood), 1)
        self.assertGreater(flood[0]["sent"], 1000)
        self.assertGreater(flood[0]["refused"], 0, "sends to the lost shard fail (EDEAD)")
        stats = c.client.request("stats", shard=self.back1)["result"]
        self.assertGreater(stats["recv_remote"], 1000)
        self.assertEqual(len(c.ps()), 2)
        self.assertNotIn("%016x" % self.back2, c.client.request("directory")["result"])
        # new sessions go to the survivor
        async def again():
            ws = await ws_session(c.ws_port, {"session_type": "cluster_echo"})
            r = await ws_echo(ws, "y")
            await ws.close()
            return r
        self.assertEqual(sp.parse_addr(run(again())["session"])[0], self.back1)

    def test_broker_restart(self):
        c = self.c
        w = c.spawn_on(self.back1, "watcher")
        echo = c.spawn_on(self.back2, "echo")
        self.assertEqual(c.client.ask(w, {"action": "call", "address": echo, "n": 1})[1]["n"], 1)
        c.broker.stop(signal.SIGKILL)
        c.client.close()
        time.sleep(c.lost_after / 1000 + 0.5)  # the shards notice the silence
        c.broker.start()
        c.client = sp.Client(c.control)
        c.wait_shards(3)
        # traffic resumes between the same actors
        got = wait_for(lambda: c.client.ask(w, {"action": "call", "address": echo, "n": 2})[1]
                       .get("n") == 2, 10)
        self.assertTrue(got)
        for p in c.procs:
            if p.name != "broker":
                self.assertIn("joined the cluster", p.text())
                self.assertIsNone(p.p.poll(), p.name + " still running")

    def test_broker_loss_ends_what_crossed_it(self):
        """What crossed the link may be lost with the broker (PROTOCOL.md
        "Heartbeats and loss"): every monitor of a remote actor gets a
        sentinel, a call in flight ends with EUNREACH, the clients of
        sessions on back shards get "session failed" and 1011, all within
        lost_after of the kill; the shards rejoin the restarted broker and
        new sessions work."""
        c = self.c
        w = c.spawn_on(self.back1, "watcher")
        slow = c.spawn_on(self.back2, "slow")
        self.assertEqual(c.client.ask(w, {"action": "watch", "address": slow})[0], "reply")
        self.assertEqual(c.client.ask(w, {"action": "call_later", "address": slow, "delay": 0,
                                          "ms": 60000, "timeout": 120000}), ("reply", {}))

        async def go():
            socks = [await ws_session(c.ws_port, {"session_type": "cluster_echo"})
                     for _ in range(3)]
            for ws in socks:
                self.assertEqual((await ws_echo(ws, "before"))["echo"], "before")
            t0 = time.time()
            c.broker.stop(signal.SIGKILL)
            for ws in socks:
                msg = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                self.assertEqual(msg, {"action": "error", "type": "session failed"})
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                    await asyncio.wait_for(ws.recv(), WAIT)
                self.assertEqual(cm.exception.code, 1011)
            return time.time() - t0
        told = run(go())
        self.assertLess(told, c.lost_after / 1000 + 2.0, "clients told within lost_after")
        c.client.close()
        c.broker.start()
        c.client = sp.Client(c.control)
        c.wait_shards(3)
        kind, r = c.client.ask(w, {"action": "results"})
        self.assertEqual(r, {"results": [{"error": "EUNREACH"}]}, "the call in flight ended")
        got = c.client.ask(w, {"action": "sentinels"})[1]["sentinels"]
        self.assertEqual([(s["address"], s["exception"]) for s in got],
                         [(slow, "connection to the broker lost")])
        log = "".join(p.text() for p in c.procs if p.name != "broker")
        self.assertRegex(log, r"connection to the broker lost: \d+ sentinel\(s\) delivered")
        # calls across shards work again, and so do new sessions
        echo = c.spawn_on(self.back2, "echo")
        self.assertEqual(c.client.ask(w, {"action": "call", "address": echo, "n": 4})[1],
                         {"from": echo, "n": 4})

        async def again():
            ws = await ws_session(c.ws_port, {"session_type": "cluster_echo"})
            r = await ws_echo(ws, "after")
            await ws.close()
            return r
        self.assertEqual(run(again())["echo"], "after")

    def test_sends_while_the_broker_is_down_are_reported(self):
        c = self.c
        w = c.spawn_on(self.back1, "watcher")
        echo = c.spawn_on(self.back2, "echo")
        # the call happens while there is no broker: its caller must hear so
        delay = int(c.lost_after + 1200)
        self.assertEqual(c.client.ask(w, {"action": "call_later", "address": echo,
                                          "delay": delay}), ("reply", {}))
        c.broker.stop(signal.SIGKILL)
        c.client.close()
        time.sleep(delay / 1000 + 0.8)
        c.broker.start()
        c.client = sp.Client(c.control)
        c.wait_shards(3)
        kind, r = c.client.ask(w, {"action": "results"})
        self.assertEqual(r, {"results": [{"error": "EUNREACH"}]})
        log = c.backs[0].text() + c.backs[1].text()
        self.assertIn("no word from the broker", log)
        # and once rejoined the same call succeeds
        kind, r = c.client.ask(w, {"action": "call", "address": echo, "n": 3})
        self.assertEqual(r, {"from": echo, "n": 3})


def main():
    global BUILD
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    BUILD = os.path.abspath(sys.argv[1])
    argv = [sys.argv[0]] + sys.argv[2:]
    prog = unittest.main(argv=argv, exit=False, verbosity=2)
    r = prog.result
    print("%d passed, %d failed" % (r.testsRun - len(r.failures) - len(r.errors),
                                    len(r.failures) + len(r.errors)))
    return 0 if r.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
