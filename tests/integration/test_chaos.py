#!/usr/bin/python3
"""test_chaos.py - kill -9 and SIGSTOP every kind of process under load, with a ledger

Usage: /usr/bin/python3 tests/integration/test_chaos.py BUILD_DIR [unittest args]
Environment: SKICK_CHAOS_STOP_S (default 20): how long a SIGSTOP lasts.

One cluster (skick-broker, two front shards, two back shards loading
chaos_test_app.so, all with their default timings) under steady load for the
whole run:

  * websocket clients on both fronts, each sending {"action": "echo", "seq"}
    every 100 ms to a "chaos" session (on either back shard) and reconnecting
    when their session ends;
  * pingers on each back shard calling pongers on the other one, and on their
    own shard, every 20 ms (skick_call, 3 s timeout);
  * a client outside the cluster asking a ponger on each back shard (the
    client library's protocol, tests/integration/skick_proto.py);
  * watchers monitoring pongers on the other back shard.

Then, one at a time: kill -9 of a back shard, a front shard and the broker,
and SIGSTOP/SIGCONT of each. After each, the suite checks what the issue
asks: every affected websocket client was told (error object and close code)
within 5 s (of the fault; of the SIGCONT for a stopped front shard, which
cannot tell anyone while it is stopped), every monitor got its sentinel,
pending calls ended with an error, the cluster healed once the process came
back, the other clients kept their round-trip latency, and the ledger
balances: every message sent has an outcome (answered, refused with a
reported code, or ended by a close code the client saw), nothing is
unaccounted. The ledger is printed at the end.
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
import test_cluster as TC  # noqa: E402

STOP_S = float(os.environ.get("SKICK_CHAOS_STOP_S", "20"))
TOLD_S = 5.0          # every affected client is told within this
LATENCY_S = 2.0       # the bound on an unaffected client's round trip (ASan, 2 cores)
CLIENTS_PER_FRONT = 4


# ---------------------------------------------------------------------------
# Websocket load: clients in a thread of their own


class WsClient:
    """One client: an echo every 100 ms; every message gets an outcome."""

    def __init__(self, name, port):
        self.name, self.port = name, port
        self.events = []   # (time, kind, detail): "open", "close", "error"
        self.ledger = {"sent": 0, "answered": 0, "error_object": 0, "closed": 0}
        self.rtts = []     # (time sent, round trip) of answered messages
        self.outstanding = {}  # seq -> time sent, in the current session
        self.shard = None  # the shard of the current session
        self.up = False

    def unanswered(self):
        return len(self.outstanding)

    async def run(self, stop):
        while not stop.is_set():
            try:
                ws = await asyncio.wait_for(websockets.connect(
                    "ws://127.0.0.1:%d/" % self.port, ping_interval=None,
                    close_timeout=1), 5)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                await asyncio.sleep(0.3)
                continue
            await self.session(ws, stop)
            await asyncio.sleep(0.2)

    async def session(self, ws, stop):
        await ws.send(json.dumps({"session_type": "chaos"}))
        self.events.append((time.time(), "open", None))
        self.up, self.shard = True, None
        sender = asyncio.ensure_future(self.send_loop(ws, stop))
        try:
            while True:
                raw = await ws.recv()
                if raw == "denied":  # no back shard offers the session type right now
                    self.events.append((time.time(), "denied", None))
                    continue
                self.on_message(json.loads(raw))
        except websockets.exceptions.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else 1006
            self.events.append((time.time(), "close", code))
            self.ledger["closed"] += len(self.outstanding)  # ended by a close it saw
            self.outstanding.clear()
        finally:
            self.up = False
            sender.cancel()

    async def send_loop(self, ws, stop):
        seq = 0
        while not stop.is_set():
            seq += 1
            self.outstanding[seq] = time.time()
            self.ledger["sent"] += 1
            try:
                await ws.send(json.dumps({"action": "echo", "seq": seq}))
            except websockets.exceptions.ConnectionClosed:
                return  # the receiver counts it with the close
            await asyncio.sleep(0.1)
        await ws.close()

    def on_message(self, m):
        if "seq" in m:
            t = self.outstanding.pop(m["seq"], None)
            if t is not None:
                self.ledger["answered"] += 1
                self.rtts.append((t, time.time() - t))
            self.shard = int(m["shard"], 16)
        elif m.get("action") == "error":
            self.events.append((time.time(), "error", m.get("type")))
            if m.get("type") != "session failed" and self.outstanding:
                # a refusal answers the oldest message waiting (order is kept)
                self.outstanding.pop(min(self.outstanding))
                self.ledger["error_object"] += 1


class Load(threading.Thread):
    def __init__(self, clients):
        super().__init__(daemon=True)
        self.clients = clients
        self.stop = None
        self.loop = asyncio.new_event_loop()

    def run(self):
        asyncio.set_event_loop(self.loop)
        self.stop = asyncio.Event()
        self.loop.run_until_complete(asyncio.gather(*(c.run(self.stop) for c in self.clients)))
        pending = asyncio.all_tasks(self.loop)
        for t in pending:
            t.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def finish(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.join(15)


class Outside(threading.Thread):
    """A client outside the cluster asking pongers; every ask gets an outcome."""

    def __init__(self, control):
        super().__init__(daemon=True)
        self.control = control
        self.targets = {}   # shard id -> ponger address
        self.results = []   # (time, shard, outcome, seconds)
        self.halt = threading.Event()

    def run(self):
        client = None
        while not self.halt.is_set():
            if client is None:
                try:
                    client = sp.Client(self.control, timeout=2)
                except (TimeoutError, RuntimeError):
                    time.sleep(0.3)
                    continue
            for shard, ponger in list(self.targets.items()):
                t0 = time.time()
                try:
                    kind, body = client.ask(ponger, {"action": "ping", "n": 1}, timeout=10)
                    outcome = "reply" if kind == "reply" else body.get("code", kind)
                except TimeoutError:
                    outcome = "timeout"
                if outcome in ("timeout", "EUNREACH"):
                    # the link is gone (a restarted broker does not know us):
                    # join again, as the client library does
                    client.close()
                    client = None
                self.results.append((t0, shard, outcome, time.time() - t0))
                if client is None:
                    break
            time.sleep(0.2)
        if client:
            client.close()


# ---------------------------------------------------------------------------
# The cluster


class ChaosCluster(TC.Cluster):
    """broker, two fronts, two backs, default timings."""

    def __init__(self):
        self.tmp = TC.tempfile.mkdtemp(prefix="skick-chaos-")
        self.broker_args, self.node_args = [], []  # what TC.Cluster.node adds
        self.port = TC.free_port(3)
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.control = "ipc://%s/control" % self.tmp
        self.procs = []
        self.broker = TC.Proc("broker", [os.path.join(TC.BUILD, "broker", "skick-broker"),
                                         "--bind", self.endpoint, "--control", self.control],
                              self.tmp)
        self.procs.append(self.broker)
        TC.wait_for(lambda: "serving" in self.broker.text())
        self.client = sp.Client(self.control)
        self.ws_ports = [TC.free_port(), TC.free_port()]
        self.fronts = [self.node("front-%d" % (i + 1), ["--front", "--port", str(p)])
                       for i, p in enumerate(self.ws_ports)]
        app = os.path.join(TC.BUILD, "tests", "integration", "chaos_test_app.so")
        self.backs = [self.node("back-%d" % (i + 1), ["--back", "--app", app])
                      for i in range(2)]
        self.wait_shards(4)

    def shard_of(self, proc):
        for s in self.ps():
            if s["pid"] == proc.p.pid:
                return int(s["shard"], 16)
        return None

    def restart(self, proc):
        proc.start()

    def reconnect_client(self):
        try:
            self.client.close()
        except Exception:
            pass
        self.client = TC.wait_for(lambda: sp.Client(self.control, timeout=1), 20)


# ---------------------------------------------------------------------------


class Chaos(unittest.TestCase):
    """One cluster for the whole run; the faults in order (test names)."""

    @classmethod
    def setUpClass(cls):
        cls.c = ChaosCluster()
        cls.ledger = []  # one row per phase
        cls.clients = [WsClient("f%d.%d" % (f + 1, i), port)
                       for f, port in enumerate(cls.c.ws_ports)
                       for i in range(CLIENTS_PER_FRONT)]
        cls.load = Load(cls.clients)
        cls.load.start()
        cls.outside = Outside(cls.c.control)
        cls.outside.start()
        cls.actors = {}     # back shard id -> {ponger, watcher, pinger_remote, pinger_local}
        cls.seen = {}       # pinger address -> its ledger when last read
        cls.setup_actors()
        # everyone is placed and answering before the first fault
        TC.wait_for(lambda: all(c.shard for c in cls.clients), 20)

    @classmethod
    def setup_actors(cls):
        """A ponger and a watcher on each back shard that has none (at the
        start, and on a shard that replaced a lost one); pingers calling the
        other back shard's ponger and their own; each watcher watches the
        other shard's ponger. Survivors are pointed at the newcomers."""
        c = cls.c
        backs = [c.shard_of(p) for p in c.backs]
        for gone in [b for b in cls.actors if b not in backs]:
            del cls.actors[gone]  # lost with its shard (its ledgers too)
        new = [b for b in backs if b not in cls.actors]
        for b in new:
            cls.actors[b] = {"ponger": c.spawn_on(b, "ponger"),
                             "watcher": c.spawn_on(b, "watcher")}
        for b in backs:
            other = [x for x in backs if x != b][0]
            a, peer = cls.actors[b], cls.actors[other]["ponger"]
            if b in new:
                a["pinger_remote"] = cls.spawn(b, "pinger", {"peer": peer})
                a["pinger_local"] = cls.spawn(b, "pinger", {"peer": a["ponger"]})
            elif other in new:
                kind, _ = c.client.ask(a["pinger_remote"], {"action": "retarget",
                                                            "peer": peer})
                assert kind == "reply"
            if b in new or other in new:
                kind, _ = c.client.ask(a["watcher"], {"action": "watch", "address": peer})
                assert kind == "reply"
        cls.outside.targets = {b: cls.actors[b]["ponger"] for b in backs}

    @classmethod
    def spawn(cls, shard, type_, init):
        kind, msg = cls.c.client.ask(sp.addr(shard, shard),
                                     {"action": "spawn", "type": type_, "message": init})
        assert kind == "reply", (kind, msg)
        return msg["address"]

    @classmethod
    def tearDownClass(cls):
        cls.outside.halt.set()
        cls.outside.join(15)
        cls.load.finish()
        cls.print_ledger()
        codes = cls.c.close()
        reports = cls.c.sanitizer_reports()
        assert not reports, "sanitizer reports in %s" % reports
        bad = {k: v for k, v in codes.items() if v not in (0, None)}
        assert not bad, "exit status %s" % bad

    @classmethod
    def print_ledger(cls):
        print("\n# chaos ledger (one row per fault; websocket messages | calls between "
              "shards | asks from outside)", file=sys.stderr)
        print("%-14s %6s %6s %5s %5s %4s | %6s %6s %-28s | %5s %5s %-20s" % (
            "fault", "sent", "answd", "errob", "clsd", "lost", "calls", "reply", "errors",
            "asks", "reply", "errors"), file=sys.stderr)
        for row in cls.ledger:
            print("%-14s %6d %6d %5d %5d %4d | %6d %6d %-28s | %5d %5d %-20s" % (
                row["fault"], row["ws"]["sent"], row["ws"]["answered"],
                row["ws"]["error_object"], row["ws"]["closed"], row["ws"]["unaccounted"],
                row["calls"]["sent"], row["calls"]["replied"],
                ",".join("%s=%d" % kv for kv in sorted(row["calls"]["errors"].items())),
                row["asks"]["sent"], row["asks"]["reply"],
                ",".join("%s=%d" % kv for kv in sorted(row["asks"]["errors"].items()))),
                file=sys.stderr)

    # -- the phases ------------------------------------------------------------

    def test_1_kill_a_back_shard(self):
        self.fault(self.c.backs[1], "kill")

    def test_2_stop_a_back_shard(self):
        self.fault(self.c.backs[0], "stop")

    def test_3_kill_a_front_shard(self):
        self.fault(self.c.fronts[0], "kill")

    def test_4_stop_a_front_shard(self):
        self.fault(self.c.fronts[1], "stop")

    def test_5_kill_the_broker(self):
        self.fault(self.c.broker, "kill")

    def test_6_stop_the_broker(self):
        self.fault(self.c.broker, "stop")

    # -- one fault -------------------------------------------------------------

    def fault(self, proc, how):
        c = self.c
        role = "broker" if proc is c.broker else "front" if proc in c.fronts else "back"
        shard = None if role == "broker" else c.shard_of(proc)
        victims = dict(self.actors.get(shard, {}))
        before = self.snapshot()
        self.account_calls()  # what the pingers did before the fault is not this row's
        affected = self.affected(role, proc, shard)
        counts_before = self.sentinel_counts() if role == "broker" else {}
        t0 = time.time()
        if how == "kill":
            proc.p.kill()
            proc.p.wait()
            time.sleep(TOLD_S + 1)
            t_back = time.time()
            c.restart(proc)
        else:
            proc.p.send_signal(signal.SIGSTOP)
            time.sleep(STOP_S)
            t_back = time.time()
            proc.p.send_signal(signal.SIGCONT)
            self.supervise(proc, role)
        self.check_told(role, how, affected, t0, t_back)
        if role != "broker":
            self.check_sentinels(role, shard, victims, counts_before)
        self.heal(role)
        t_healed = time.time()
        if role == "broker":  # asked through the new control link
            self.check_sentinels(role, shard, victims, counts_before)
        self.assertTrue(TC.wait_for(lambda: any(
            t >= t_healed and o == "reply" for t, s, o, d in self.outside.results[-50:]), 15),
            "asks from outside were not answered again after the %s %s" % (role, how))
        time.sleep(1.0)
        after = self.snapshot()
        row = self.account(role + " " + how, before, after)
        type(self).ledger.append(row)
        self.check_bystanders(role, affected, t0, time.time())
        self.check_ledger(row)
        self.check_asks(role, shard, t0)

    def supervise(self, proc, role):
        """What systemd does for a shard: a shard that the cluster declared
        lost while it was stopped exits when it comes back (its actors'
        monitors were told they ended; PROTOCOL.md "Heartbeats and loss")
        and is started again. A broker carries on."""
        if role == "broker":
            time.sleep(1.0)
            self.assertIsNone(proc.p.poll(), "the broker exited after SIGCONT:\n" +
                              proc.text()[-2000:])
            return
        try:
            rc = proc.p.wait(TOLD_S + 5)
        except TC.subprocess.TimeoutExpired:
            self.fail("%s was declared lost while stopped but carried on" % proc.name)
        self.assertEqual(rc, 1, "%s: exit status %s" % (proc.name, rc))
        self.assertIn("declared lost", proc.text())
        self.c.restart(proc)

    def affected(self, role, proc, shard):
        if role == "broker":
            return list(self.clients)
        if role == "front":
            port = self.c.ws_ports[self.c.fronts.index(proc)]
            return [cl for cl in self.clients if cl.port == port]
        return [cl for cl in self.clients if cl.shard == shard]

    def heal(self, role):
        c = self.c
        if role == "broker":
            c.reconnect_client()
        ok = TC.wait_for(lambda: len(c.ps()) == 4 and c.directory_ready(4), 30)
        self.assertTrue(ok, "the cluster did not heal: %s\n%s" % (
            c.ps(), "\n".join(p.name + ":\n" + p.text()[-1500:] for p in c.procs)))
        # actors lost with a shard are created again, the survivors retargeted
        backs = [c.shard_of(p) for p in c.backs]
        type(self).setup_actors()
        healed = TC.wait_for(lambda: all(cl.up and cl.shard in backs for cl in self.clients),
                             20)
        self.assertTrue(healed, "clients did not get sessions again: %s" % [
            (cl.name, cl.up, cl.shard) for cl in self.clients])

    def snapshot(self):
        ws = {k: sum(cl.ledger[k] for cl in self.clients) for k in self.clients[0].ledger}
        # messages of open sessions still waiting (older than a second: the
        # ones just sent are on their way)
        now = time.time()
        ws["unaccounted"] = sum(1 for cl in self.clients for t in list(cl.outstanding.values())
                                if now - t > 1.0)
        return {"ws": ws, "asks": len(self.outside.results), "t": time.time()}

    def account_calls(self):
        """The pingers' calls since they were last read (their ledgers are
        cumulative); pingers lost with their shard are not in it."""
        calls = {"sent": 0, "replied": 0, "errors": {}, "pending": 0, "slowest_error_ms": 0}
        for b, a in self.actors.items():
            for name in ("pinger_remote", "pinger_local"):
                kind, led = self.c.client.ask(a[name], {"action": "ledger"}, timeout=5)
                if kind != "reply":
                    continue
                prev = self.seen.get(a[name], {"sent": 0, "replied": 0, "errors": {},
                                               "pending": 0})
                self.seen[a[name]] = led
                calls["sent"] += led["sent"] - prev["sent"]
                calls["replied"] += led["replied"] - prev["replied"]
                calls["pending"] += led["pending"] - prev["pending"]
                for k, v in led["errors"].items():
                    d = v - prev["errors"].get(k, 0)
                    if d:
                        calls["errors"][k] = calls["errors"].get(k, 0) + d
                calls["slowest_error_ms"] = max(calls["slowest_error_ms"],
                                                led["slowest_error_ms"])
        return calls

    def account(self, fault, before, after):
        ws = {k: after["ws"][k] - before["ws"][k] for k in after["ws"]}
        ws["unaccounted"] = after["ws"]["unaccounted"]
        calls = self.account_calls()
        asks = {"sent": 0, "reply": 0, "errors": {}}
        for t, shard, outcome, dur in self.outside.results[before["asks"]:]:
            asks["sent"] += 1
            if outcome == "reply":
                asks["reply"] += 1
            else:
                asks["errors"][outcome] = asks["errors"].get(outcome, 0) + 1
        return {"fault": fault, "ws": ws, "calls": calls, "asks": asks}

    # -- the checks ------------------------------------------------------------

    def check_told(self, role, how, affected, t0, t_back):
        """Every affected client saw its connection end, with a code, in time:
        from the fault, or from the SIGCONT of a stopped front shard (which
        cannot tell anyone while it is stopped)."""
        start = t_back if (role == "front" and how == "stop") else t0
        deadline = start + TOLD_S + 1.0
        TC.wait_for(lambda: all(self.closes(cl, t0) for cl in affected),
                    max(0.1, deadline - time.time()))
        for cl in affected:
            closes = self.closes(cl, t0)
            self.assertTrue(closes, "%s (on the %s %s) was never told" % (cl.name, role, how))
            t, code = closes[0]
            self.assertLess(t - start, TOLD_S + 1.0, "%s told after %.1f s" % (cl.name,
                                                                             t - start))
            if role != "front" or how == "stop":
                # the session failed: error object, then 1011 (a killed front
                # shard cannot say anything: its clients see the TCP close,
                # 1006). A broker fault ends every session across shards:
                # what it held may be lost (PROTOCOL.md "Heartbeats and loss").
                self.assertEqual(code, 1011, "%s: close %s" % (cl.name, code))
                errors = [d for t, k, d in cl.events if k == "error" and t >= t0]
                self.assertIn("session failed", errors, cl.name)

    @staticmethod
    def closes(cl, t0):
        return [(t, d) for t, k, d in cl.events if k == "close" and t >= t0]

    def watched(self):
        """Each watcher's address -> the ponger it watches."""
        backs = list(self.actors)
        return {self.actors[b]["watcher"]: self.actors[[x for x in backs if x != b][0]]["ponger"]
                for b in backs if len(backs) == 2}

    def sentinel_counts(self):
        """Each watcher -> how many sentinels it has had about its ponger."""
        counts = {}
        for w, ponger in self.watched().items():
            kind, msg = self.c.client.ask(w, {"action": "sentinels"})
            if kind == "reply":
                counts[w] = sum(1 for s in msg["sentinels"] if s.get("address") == ponger)
        return counts

    def check_sentinels(self, role, shard, victims, counts_before):
        """The survivors' watchers got one sentinel for the lost ponger; after
        a broker fault, every watcher got one for the ponger it watched on
        the other shard (the link's loss ends every watch across it), and
        watches again."""
        if role == "broker":
            after = TC.wait_for(lambda: (lambda n: n if all(
                n.get(w, 0) == counts_before.get(w, 0) + 1 for w in counts_before) else None)(
                    self.sentinel_counts()), TOLD_S)
            self.assertTrue(after, "watchers without their sentinel after the broker %s: "
                            "before %s, now %s" % (role, counts_before, self.sentinel_counts()))
            for w, ponger in self.watched().items():
                kind, _ = self.c.client.ask(w, {"action": "watch", "address": ponger})
                self.assertEqual(kind, "reply")
            return
        if role != "back":
            return
        ponger = victims["ponger"]
        for b, a in self.actors.items():
            if b == shard:
                continue
            got = TC.wait_for(lambda: [s for s in self.c.client.ask(
                a["watcher"], {"action": "sentinels"})[1]["sentinels"]
                if s.get("address") == ponger], TOLD_S)
            self.assertEqual(len(got or []), 1, "sentinels for the lost shard's ponger %s: "
                             "%s" % (ponger, got))

    def check_asks(self, role, shard, t0):
        """Asks from outside to the victim's actor ended promptly."""
        if role != "back":
            return
        slow = [(o, d) for t, s, o, d in self.outside.results
                if s == shard and t >= t0 - 1 and o != "reply" and d > TOLD_S + 1]
        self.assertEqual(slow, [], "asks to the lost shard's actor waited too long")

    def check_bystanders(self, role, affected, t0, t1):
        if role == "broker":
            return
        for cl in self.clients:
            if cl in affected:
                continue
            closes = [d for t, k, d in cl.events if k == "close" and t >= t0]
            self.assertEqual(closes, [], "%s was not affected but was closed" % cl.name)
            rtts = [r for t, r in cl.rtts if t0 <= t <= t1]
            self.assertTrue(rtts, "%s made no round trip during the fault" % cl.name)
            self.assertLess(max(rtts), LATENCY_S, "%s: a round trip took %.2f s during the "
                            "fault" % (cl.name, max(rtts)))

    def check_ledger(self, row):
        ws = row["ws"]
        self.assertEqual(ws["unaccounted"], 0, "websocket messages without an outcome: %s"
                         % row)
        self.assertGreater(ws["answered"], 0)
        calls = row["calls"]
        self.assertEqual(calls["sent"], calls["replied"] + sum(calls["errors"].values())
                         + calls["pending"], "the calls' ledger does not balance: %s" % calls)
        self.assertNotIn("timeout", row["asks"]["errors"],
                         "an ask from outside got no answer at all: %s" % row["asks"])


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    TC.BUILD = os.path.abspath(sys.argv[1])
    import faulthandler
    faulthandler.dump_traceback_later(850, exit=True)
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False, verbosity=2)
    r = prog.result
    print("%d passed, %d failed" % (r.testsRun - len(r.failures) - len(r.errors),
                                    len(r.failures) + len(r.errors)))
    return 0 if r.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
