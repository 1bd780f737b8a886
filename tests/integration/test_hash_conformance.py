#!/usr/bin/python3
"""test_hash_conformance.py - the same hash checks on every backend

Usage: /usr/bin/python3 tests/integration/test_hash_conformance.py BUILD_DIR [unittest args]

The checks live in C (tests/integration/hash_conformance_app.c, action
"conformance"): get/set/delete/contains, add, set_ttl with real time, incr,
the key listing's bound, EINVAL for bad names, ETYPE, value round trips.
Here a Backend says how shards with one kind of store are started and how
to call into them from outside; `conformance(test, backend)` runs the
checks on each shard (concurrently when there are several) and, when the
shards share the store, races two shards on add and incr.

  (a) Standalone: one skick-node, the in-process backend, over a websocket
      (the module's session type "hash_conformance").
  (b) InCluster: a broker and two back shards, the broker's store, through
      the broker's control endpoint (skick_proto.Client asking the module's
      actor "hash_conformance" on each back shard).
  (c) Redis (issue 10): two skick-node processes with --hash redis://...
      on one redis-server the test starts (test_redis.Redis), sharing it.

Also: the broker's hash op itself (fields, answers, errors, expiry on the
broker's clock, the sweep), and pending operations of the new kinds failing
with EBACKEND when the broker is killed -9.
"""
import asyncio
import json
import os
import signal
import sys
import threading
import time
import unittest

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skick_proto as sp  # noqa: E402
import test_cluster as tc  # noqa: E402  (Proc, Cluster, free_port, wait_for)

WAIT = 20.0


def app():
    return os.path.join(tc.BUILD, "tests", "integration", "hash_conformance_app.so")


def unique(name):
    return "conf-%s-%d-%s" % (name, os.getpid(), os.urandom(3).hex())


class Backend:
    """Shards that use one kind of hash store. nodes: how many; shared:
    whether they see the same store (then the races are checked)."""
    nodes = 1
    shared = False

    def call_all(self, calls, timeout=WAIT):
        """[(node index, message)] -> their answers, made concurrently."""
        raise NotImplementedError

    def call(self, i, msg, timeout=WAIT):
        return self.call_all([(i, msg)], timeout)[0]

    def close(self):
        """Stop everything; returns {process name: exit code}."""
        raise NotImplementedError

    def sanitizer_reports(self):
        return [p.name for p in self.procs if tc.SANITIZER.search(p.text())]


class Standalone(Backend):
    """count skick-node processes without a broker, each with node_args (its
    hash backend), called over websockets."""

    def __init__(self, count=1, node_args=(), shared=False):
        self.tmp = tc.tempfile.mkdtemp(prefix="skick-hash-")
        self.nodes, self.shared = count, shared
        self.ports, self.procs = [], []
        for i in range(count):
            port = tc.free_port()
            p = tc.Proc("node-%d" % (i + 1), [os.path.join(tc.BUILD, "node", "skick-node"),
                                              "--app", app(), "--port", str(port)]
                        + list(node_args), self.tmp)
            self.ports.append(port)
            self.procs.append(p)
        for p in self.procs:
            if not tc.wait_for(lambda: "serving ws://" in p.text() or p.p.poll() is not None):
                raise RuntimeError("skick-node did not start:\n" + p.text()[-2000:])
            if p.p.poll() is not None:
                raise RuntimeError("skick-node ended:\n" + p.text()[-2000:])

    async def _one(self, i, msg, timeout):
        async with websockets.connect("ws://127.0.0.1:%d/" % self.ports[i],
                                      open_timeout=timeout, max_size=None) as ws:
            await ws.send(json.dumps({"session_type": "hash_conformance"}))
            await ws.send(json.dumps(msg))
            return json.loads(await asyncio.wait_for(ws.recv(), timeout))

    def call_all(self, calls, timeout=WAIT):
        async def go():
            return await asyncio.gather(*(self._one(i, m, timeout) for i, m in calls))
        return asyncio.run(go())

    def close(self):
        return {p.name: p.stop() for p in self.procs}


class HashCluster(tc.Cluster):
    @staticmethod
    def app():
        return app()


class InCluster(Backend):
    """A broker, a front shard and two back shards: the broker's store, called
    through the broker's control endpoint."""
    nodes = 2
    shared = True

    def __init__(self):
        self.c = HashCluster(backs=2)
        self.procs = self.c.procs
        self.spawn_actors()

    def spawn_actors(self):
        self.actors = [self.c.spawn_on(s, "hash_conformance") for s in self.c.shard_ids("back")]

    def call_all(self, calls, timeout=WAIT):
        out = [None] * len(calls)

        def one(k, i, msg):
            client = sp.Client(self.c.control)  # one DEALER per thread
            try:
                kind, r = client.ask(self.actors[i], msg, timeout)
                out[k] = r if kind == "reply" else {"kind": kind, "body": r}
            finally:
                client.close()
        threads = [threading.Thread(target=one, args=(k, i, m)) for k, (i, m) in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 5)
        return out

    def close(self):
        return self.c.close()


def conformance(test, backend, name):
    """The whole suite on backend: the checks on every shard at once (each in
    a table of its own), then, when the store is shared, the races."""
    tables = [unique("%s-%d" % (name, i)) for i in range(backend.nodes)]
    answers = backend.call_all([(i, {"action": "conformance", "table": t})
                                for i, t in enumerate(tables)])
    for i, r in enumerate(answers):
        test.assertTrue(r and r.get("ok"), "shard %d: %s" % (i, json.dumps(r, indent=1)))
        test.assertGreater(r["checks"], 200)
    if not backend.shared:
        return
    t = unique(name + "-race")
    # two shards add the same 20 keys at once: exactly one of each pair stores
    calls = [(i, {"action": "add", "table": t, "key": "k%d" % k, "value": i})
             for k in range(20) for i in (0, 1)]
    got = backend.call_all(calls)
    for k in range(20):
        pair = got[2 * k: 2 * k + 2]
        test.assertEqual(sorted(r.get("stored") for r in pair), [False, True], pair)
    # the stored value is the winner's
    for k in range(20):
        winner = [i for i in (0, 1) if got[2 * k + i]["stored"]][0]
        r = backend.call(1 - winner, {"action": "add", "table": t, "key": "k%d" % k, "value": 9})
        test.assertEqual(r, {"stored": False})
    # two shards increment one counter 300 times each at once: it sums exactly
    got = backend.call_all([(i, {"action": "incr", "table": t, "key": "n", "delta": d, "n": 300})
                            for i, d in ((0, 1), (1, 2))])
    test.assertEqual([r["errors"] for r in got], [0, 0], got)
    total = backend.call(0, {"action": "incr", "table": t, "key": "n", "delta": 0, "n": 1})
    test.assertEqual(total["last"], 900)
    test.assertEqual(max(r["last"] for r in got), 900)


class OnRedis(Standalone):
    """Two standalone shards sharing one redis-server (--hash redis://...)."""

    def __init__(self):
        import test_redis  # noqa: E402  (Redis: a redis-server of the test's own)
        self.redis = test_redis.Redis()
        try:
            super().__init__(count=2, node_args=["--hash", self.redis.url], shared=True)
        except Exception:
            self.redis.close()
            raise

    def close(self):
        codes = super().close()
        self.redis.close()
        return codes


class Conformance(unittest.TestCase):
    """One method per backend; each starts its own processes."""

    def run_on(self, make, name):
        backend = make()
        try:
            conformance(self, backend, name)
        finally:
            codes = backend.close()
        self.assertTrue(all(v == 0 for v in codes.values()), codes)
        self.assertFalse(backend.sanitizer_reports())

    def test_a_standalone_in_process(self):
        self.run_on(Standalone, "inproc")

    def test_b_cluster_broker_store(self):
        self.run_on(InCluster, "broker")

    def test_c_redis(self):
        self.run_on(OnRedis, "redis")


class LoneBroker(unittest.TestCase):
    """A test class with a skick-broker of its own and no shards: cls.broker
    (a test_cluster.Proc), cls.control (its control endpoint), cls.tmp."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tc.tempfile.mkdtemp(prefix="skick-hash-broker-")
        cls.control = "ipc://%s/control" % cls.tmp
        port = tc.free_port(3)
        cls.broker = tc.Proc("broker", [os.path.join(tc.BUILD, "broker", "skick-broker"),
                                        "--bind", "tcp://127.0.0.1:%d" % port,
                                        "--control", cls.control], cls.tmp)
        tc.wait_for(lambda: "serving" in cls.broker.text() or cls.broker.p.poll() is not None)

    @classmethod
    def tearDownClass(cls):
        assert cls.broker.stop() == 0, cls.broker.text()[-2000:]


class BrokerHashOp(LoneBroker):
    """The broker's CONTROL "hash" op, from a client (PROTOCOL.md)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client = sp.Client(cls.control)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        super().tearDownClass()

    def h(self, cmd, **kw):
        return self.client.request("hash", cmd=cmd, **kw)

    def ok(self, cmd, **kw):
        r = self.h(cmd, **kw)
        self.assertTrue(r["ok"], r)
        return r.get("result")

    def err(self, code, cmd, text=None, **kw):
        r = self.h(cmd, **kw)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["code"], code, r)
        if text:
            self.assertIn(text, r["error"])
        return r

    def stats(self):
        return self.client.request("stats")["result"]

    def test_set_nx_and_ttl(self):
        t = unique("op")
        self.assertIsNone(self.ok("set", table=t, key="a", value=1))
        self.assertIs(self.ok("set", table=t, key="a", value=2, nx=True), False)
        self.assertEqual(self.ok("get", table=t, key="a"), 1)
        self.assertIs(self.ok("set", table=t, key="b", value=[1], nx=True, ttl_ms=1000), True)
        self.assertIs(self.ok("set", table=t, key="c", value="x", ttl_ms=1000), None)
        self.assertEqual(self.ok("get", table=t, key="b"), [1])
        time.sleep(1.3)
        self.err("ENOTFOUND", "get", table=t, key="b")
        self.assertIs(self.ok("contains", table=t, key="c"), False)
        self.assertIs(self.ok("set", table=t, key="b", value=3, nx=True), True)
        r = self.ok("keys", table=t, max=10)
        self.assertEqual((sorted(r["keys"]), r["truncated"]), (["a", "b"], False))
        self.ok("delete", table=t, key="a")
        self.ok("delete", table=t, key="b")

    def test_incr(self):
        t = unique("op")
        self.assertEqual(self.ok("incr", table=t, key="n", delta=5), 5)
        self.assertEqual(self.ok("incr", table=t, key="n", delta=-6), -1)
        self.ok("set", table=t, key="s", value="5")
        self.err("ETYPE", "incr", "not an integer", table=t, key="s", delta=1)
        self.ok("set", table=t, key="m", value=2 ** 63 - 1)
        self.err("EINVAL", "incr", "overflow", table=t, key="m", delta=1)
        self.ok("set", table=t, key="u", value=2 ** 64 - 1)  # json-c's uint64
        self.err("EINVAL", "incr", "overflow", table=t, key="u", delta=0)
        self.assertEqual(self.ok("get", table=t, key="m"), 2 ** 63 - 1)
        # a key with a ttl keeps it through incr
        self.ok("set", table=t, key="tt", value=1, ttl_ms=1000)
        self.assertEqual(self.ok("incr", table=t, key="tt", delta=1), 2)
        time.sleep(1.3)
        self.err("ENOTFOUND", "get", table=t, key="tt")
        for k in ("n", "s", "m", "u"):
            self.ok("delete", table=t, key=k)

    def test_keys_bound(self):
        t = unique("op")
        for i in range(7):
            self.ok("set", table=t, key="k%d" % i, value=i)
        r = self.ok("keys", table=t, max=3)
        self.assertEqual((len(r["keys"]), r["truncated"]), (3, True))
        self.assertLessEqual(set(r["keys"]), {"k%d" % i for i in range(7)})
        r = self.ok("keys", table=t, max=7)
        self.assertEqual((sorted(r["keys"]), r["truncated"]), (["k%d" % i for i in range(7)], False))
        self.assertEqual(self.ok("keys", table=unique("none"), max=1),
                         {"keys": [], "truncated": False})
        for i in range(7):
            self.ok("delete", table=t, key="k%d" % i)

    def test_validation(self):
        t = unique("op")
        self.err("EINVAL", "frob", "unknown hash cmd", table=t, key="k")
        self.err("EINVAL", "get", "table", key="k")
        self.err("EINVAL", "get", "table", table=5, key="k")
        self.err("EINVAL", "get", "table name", table="bad name", key="k")
        self.err("EINVAL", "get", "table name", table="x" * 257, key="k")
        self.err("EINVAL", "get", "table name", table="", key="k")
        self.err("EINVAL", "get", "key", table=t)
        self.err("EINVAL", "get", "key", table=t, key=["k"])
        self.err("EINVAL", "get", "control characters", table=t, key="a\nb")
        self.err("EINVAL", "get", "control characters", table=t, key="a\u0000b")
        self.err("EINVAL", "get", "control characters", table=t, key="k" * 1025)
        self.ok("set", table="t" * 256, key="k" * 1024, value=1)
        self.ok("delete", table="t" * 256, key="k" * 1024)
        self.err("EINVAL", "set", "value", table=t, key="k")
        for bad in (0, -1, "100", 1.5, True, 2 ** 64 - 1):
            self.err("EINVAL", "set", "ttl_ms", table=t, key="k", value=1, ttl_ms=bad)
        for bad in (1, "yes", None):
            self.err("EINVAL", "set", "nx", table=t, key="k", value=1, nx=bad)
        self.err("EINVAL", "incr", "delta", table=t, key="k")
        for bad in ("1", 1.5, None, 2 ** 64 - 1):
            self.err("EINVAL", "incr", "delta", table=t, key="k", delta=bad)
        self.err("EINVAL", "keys", "max", table=t)
        for bad in (0, -1, 100001, "10", 2.5):
            self.err("EINVAL", "keys", "max", table=t, max=bad)
        self.assertIs(self.ok("contains", table=t, key="k"), False, "nothing was stored")

    def test_the_sweep_gives_memory_back(self):
        """Expired keys nobody touches again go within a few ticks."""
        t = unique("sweep")
        before = self.stats()["hash_keys"]
        t0 = time.monotonic()
        for i in range(300):
            self.ok("set", table=t, key="k%d" % i, value="x" * 100, ttl_ms=1500)
        if time.monotonic() - t0 < 1.2:  # else some may have gone already (a slow machine)
            self.assertEqual(self.stats()["hash_keys"], before + 300)
        got = tc.wait_for(lambda: self.stats()["hash_keys"] == before, 10)
        self.assertTrue(got, self.stats())


class BrokerLoss(unittest.TestCase):
    """A shard's pending add, set_ttl, incr and keys end with EBACKEND when the
    broker is killed -9, and work again once the shard has rejoined."""

    def test_pending_new_ops_fail_with_ebackend(self):
        b = InCluster()
        try:
            c = b.c
            t = unique("loss")
            self.assertEqual(b.call(0, {"action": "ops_later", "table": t, "delay": 150}), {})
            c.broker.stop(signal.SIGKILL)
            c.client.close()
            time.sleep(c.lost_after / 1000 + 1.0)  # the shard notices the silence
            c.broker.start()
            c.client = sp.Client(c.control)
            c.wait_shards(3)
            r = b.call(0, {"action": "results"})
            self.assertEqual(r, {"results": {op: "EBACKEND" for op in
                                             ("add", "set_ttl", "incr", "keys")}})
            self.assertEqual(b.call(0, {"action": "add", "table": t, "key": "x", "value": 1}),
                             {"stored": True})
            r = b.call(1, {"action": "conformance", "table": t + "-after"})
            self.assertTrue(r.get("ok"), r)
        finally:
            codes = b.close()
        self.assertTrue(all(v == 0 for v in codes.values()), codes)


if __name__ == "__main__":
    sys.exit(tc.main())  # BUILD_DIR [unittest args]: sets tc.BUILD, runs this file's tests
