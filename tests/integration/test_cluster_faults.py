#!/usr/bin/python3
"""test_cluster_faults.py - what a cluster does when a shard dies or is never admitted

Usage: /usr/bin/python3 tests/integration/test_cluster_faults.py BUILD_DIR [unittest args]

Real processes on loopback, with the helpers of test_cluster.py (a broker,
a front shard and back shards loading tests/integration/cluster_test_app.so):

  * Monitors of actors on a shard killed with -9: every monitor gets one
    sentinel, whoever set it (the monitor, a third party, a spawn request)
    and wherever it lives (the setter's shard, a third shard, the spawner's
    shard); an actor that ended before gets no second one.
  * Clients (skickctl, i.e. the client library) asking an actor whose shard
    is killed: EPARTNER within seconds, not the ask's timeout; EDEAD at once
    for a shard nobody knows.
  * A shard the broker does not admit (no broker, a wrong CURVE key, another
    protocol version): a warning within seconds, retries, and it joins once
    the cause is gone.

Every wait is bounded; the bounds asserted ("within N s") have wide margins.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skick_proto as sp  # noqa: E402
import test_cluster as tc  # noqa: E402

WAIT = tc.WAIT


def skickctl(*args):
    return [os.path.join(tc.BUILD, "cli", "skickctl")] + list(args)


class FaultCase(unittest.TestCase):
    """A fresh cluster per test (they kill shards)."""

    BACKS = 2

    def setUp(self):
        self.c = tc.Cluster(backs=self.BACKS)
        self.backs = self.c.shard_ids("back")
        pids = {int(s["shard"], 16): s["pid"] for s in self.c.ps()}
        self.procs = {shard: [p for p in self.c.procs if p.p.pid == pid][0]
                      for shard, pid in pids.items()}

    def tearDown(self):
        self.c.close()
        self.assertEqual(self.c.sanitizer_reports(), [])

    def ask(self, address, msg, timeout=WAIT):
        kind, r = self.c.client.ask(address, msg, timeout)
        self.assertEqual(kind, "reply", (address, msg, r))
        return r

    def stats(self, shard):
        r = self.c.client.request("stats", shard=shard)
        self.assertTrue(r["ok"], r)
        return r["result"]

    def kill(self, shard):
        self.procs[shard].p.kill()
        self.procs[shard].p.wait()


class MonitorsOfALostShard(FaultCase):
    """Three back shards: setters and monitors on 1 and 3, the victim is 2."""

    BACKS = 3

    def sentinels(self, w):
        return self.ask(w, {"action": "sentinels"})["sentinels"]

    def remote_child(self, spawner, where, monitors):
        """A remote spawn from spawner that lands on shard `where` (placement
        is random among the other back shards); returns (child, misses)."""
        for misses in range(40):
            r = self.ask(spawner, {"action": "spawn_monitored", "type": "echo",
                                   "where": "remote", "monitors": monitors})
            if sp.parse_addr(r["child"])[0] == where:
                return r["child"], misses
        self.fail("no remote spawn landed on %016x" % where)

    def test_every_monitor_gets_exactly_one_sentinel(self):
        c = self.c
        b1, b2, b3 = self.backs
        w1 = c.spawn_on(b1, "watcher")    # sets monitors for others
        m1 = c.spawn_on(b1, "watcher")    # a monitor on the setter's (and spawner's) shard
        m3 = c.spawn_on(b3, "watcher")    # a monitor on a third shard
        gone = c.spawn_on(b3, "watcher")  # a monitor that ends before the loss
        expect = {w1: set(), m1: set(), m3: set()}
        # (b) "monitor" messages sent by w1 on behalf of others
        xa = c.spawn_on(b2, "echo")
        for m in (m1, m3, gone):
            self.assertEqual(self.ask(w1, {"action": "monitor_for", "address": xa,
                                           "monitor": m}), {})
        expect[m1].add(xa)
        expect[m3].add(xa)
        # (a) a remote spawn with monitors: the spawner watches too
        xb, misses = self.remote_child(w1, b2, [m1, m3])
        for m in (w1, m1, m3):
            expect[m].add(xb)
        # (a) a local spawn on the victim with monitors on other shards
        w2 = c.spawn_on(b2, "watcher")
        xc = self.ask(w2, {"action": "spawn_monitored", "type": "echo", "where": "local",
                           "monitors": [m1, m3]})["child"]
        self.assertEqual(sp.parse_addr(xc)[0], b2)
        # (a) spawn requests to the victim's shard actor, without and with a name
        xd = c.client.ask(sp.addr(b2, b2), {"action": "spawn", "type": "echo",
                                            "add_monitor": [m1, m3]})[1]["address"]
        name = sp.addr(b2, int.from_bytes(os.urandom(8), "big") | 1)
        xe = c.client.ask(sp.addr(b2, b2), {"action": "spawn", "type": "echo", "name": name,
                                            "add_monitor": [m1, m3]})[1]["address"]
        self.assertEqual(xe, name)
        for x in (xc, xd, xe):
            expect[m1].add(x)
            expect[m3].add(x)
        # an actor that stops normally before the loss: one sentinel, not two
        xf = c.spawn_on(b2, "echo")
        self.assertEqual(self.ask(w1, {"action": "monitor_for", "address": xf,
                                       "monitor": m3}), {})
        # every watch has reached the monitors' shards (the misses landed on
        # b3 and are watched by w1 and m1 from b1)
        want1, want3 = 6 + 2 * misses, 7
        got = tc.wait_for(lambda: (self.stats(b1)["watches"], self.stats(b3)["watches"])
                          == (want1, want3), 15)
        self.assertTrue(got, (self.stats(b1)["watches"], self.stats(b3)["watches"], want1, want3))
        self.assertTrue(c.client.request("stop", shard=b2, address=xf)["ok"])
        self.assertTrue(tc.wait_for(lambda: any(s["address"] == xf for s in self.sentinels(m3))))
        self.assertTrue(tc.wait_for(lambda: self.stats(b3)["watches"] == 6), "xf's watch dropped")
        self.assertTrue(c.client.request("stop", shard=b3, address=gone)["ok"])
        lost_before = self.stats(b3)["lost_sentinels"]
        time.sleep(0.3)

        self.kill(b2)
        counts = {w: len(expect[w]) + (1 if w == m3 else 0) for w in expect}
        done = tc.wait_for(lambda: all(len(self.sentinels(w)) >= counts[w] for w in expect), 20)
        self.assertTrue(done, {w: self.sentinels(w) for w in expect})
        time.sleep(1.0)  # anything extra would have arrived by now
        for w in expect:
            got = self.sentinels(w)
            lost = [s for s in got if s.get("exception") == "shard lost"]
            self.assertEqual(sorted(s["address"] for s in lost), sorted(expect[w]), (w, got))
            for s in lost:
                self.assertEqual((s["type"], s["tag"]), ("exception", "main_task"))
            others = [s for s in got if s not in lost]
            want_others = [(xf, "cancellation")] if w == m3 else []
            self.assertEqual([(s["address"], s["type"]) for s in others], want_others, (w, got))
        # the loss log counts them; the monitor that had ended is counted apart
        for shard, n in ((b1, 6), (b3, 5)):
            self.assertIn("shard %016x lost (no heartbeat for 1500 ms): %d sentinel(s) delivered"
                          % (b2, n), self.procs[shard].text())
        self.assertTrue(tc.wait_for(lambda: self.stats(b3)["lost_sentinels"] > lost_before))
        self.assertEqual(self.stats(b3)["watches"], 0)
        self.assertEqual(self.stats(b1)["watches"], 2 * misses, "only live shards' actors left")

    def test_the_monitor_shard_is_lost_first(self):
        """Watches held for a monitor's lost shard do no harm: the watched
        actor ends later and its sentinel is only counted."""
        c = self.c
        b1, b2, b3 = self.backs
        w1 = c.spawn_on(b1, "watcher")
        m2 = c.spawn_on(b2, "watcher")
        x3 = c.spawn_on(b3, "echo")
        self.assertEqual(self.ask(w1, {"action": "monitor_for", "address": x3,
                                       "monitor": m2}), {})
        self.assertTrue(tc.wait_for(lambda: self.stats(b2)["watches"] == 1))
        self.kill(b2)
        self.assertTrue(tc.wait_for(lambda: len(c.ps()) == 3, 15))
        before = self.stats(b3)["lost_sentinels"]
        self.assertTrue(c.client.request("stop", shard=b3, address=x3)["ok"])
        self.assertTrue(tc.wait_for(lambda: self.stats(b3)["lost_sentinels"] > before))
        self.assertEqual(self.sentinels(w1), [])


class ClientsAskingALostShard(FaultCase):
    """skickctl (the client library) gets the error as fast as actors do."""

    def ctl(self, *args, timeout=60):
        return subprocess.run(skickctl("--control", self.c.control, *args),
                              capture_output=True, text=True, timeout=timeout)

    def start_ask(self, *args):
        return subprocess.Popen(skickctl("--control", self.c.control, "--timeout", "30000",
                                         "ask", *args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_an_ask_waiting_on_a_killed_shard_ends_with_epartner(self):
        c = self.c
        b1, b2 = self.backs
        slow1, slow2 = c.spawn_on(b2, "slow"), c.spawn_on(b2, "slow")
        before = self.stats(b2)["recv_remote"]
        asks = [self.start_ask(slow1, '{"action": "slow", "ms": 30000}'),
                self.start_ask("--stream", slow2, '{"action": "slow", "ms": 30000}')]
        try:
            self.assertTrue(tc.wait_for(lambda: self.stats(b2)["recv_remote"] >= before + 2, 15),
                            "both asks reached their actors")
            time.sleep(0.3)
            t0 = time.monotonic()
            self.kill(b2)
            for p in asks:
                out, err = p.communicate(timeout=40)
                self.assertLess(time.monotonic() - t0, 8.0,
                                "told within seconds, not at the 30 s timeout")
                self.assertEqual(p.returncode, 1, (out, err))
                self.assertIn("skickctl: EPARTNER: ask: the partner's shard %016x was lost" % b2,
                              err)
        finally:
            for p in asks:
                if p.poll() is None:
                    p.kill()
                p.communicate()

    def test_an_ask_sent_after_the_kill_fails_fast(self):
        c = self.c
        b1, b2 = self.backs
        echo = c.spawn_on(b2, "echo")
        self.kill(b2)
        t0 = time.monotonic()
        p = self.start_ask(echo, '{"action": "ask", "n": 1}')
        out, err = p.communicate(timeout=40)
        self.assertLess(time.monotonic() - t0, 8.0)
        self.assertEqual(p.returncode, 1, (out, err))
        self.assertRegex(err, r"skickctl: (EDEAD|EPARTNER): ask: ")
        # once the loss is known, the broker has no such shard any more
        self.assertTrue(tc.wait_for(lambda: len(c.ps()) == 2, 15))
        p = self.ctl("--timeout", "30000", "ask", echo, '{"action": "ask", "n": 1}')
        self.assertEqual(p.returncode, 1)
        self.assertIn("skickctl: EDEAD: ask: no such shard", p.stderr)

    def test_an_ask_to_an_unknown_shard_fails_at_once(self):
        t0 = time.monotonic()
        p = self.ctl("--timeout", "30000", "ask", sp.addr(0x1234567887654321, 5),
                     '{"action": "ask"}')
        self.assertLess(time.monotonic() - t0, 8.0)
        self.assertEqual(p.returncode, 1)
        self.assertIn("skickctl: EDEAD: ask: no such shard", p.stderr)


class Admission(unittest.TestCase):
    """Shards the broker does not admit: they say why, retry, and join."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skick-admit-")
        self.endpoint = "tcp://127.0.0.1:%d" % tc.free_port(3)
        self.control = "ipc://%s/control" % self.tmp
        self.procs = []

    def tearDown(self):
        codes = {p.name: p.stop() for p in reversed(self.procs)}
        self.assertEqual([p.name for p in self.procs if tc.SANITIZER.search(p.text())], [])
        self.assertTrue(all(rc == 0 for rc in codes.values()), codes)

    def node(self, name, *args):
        p = tc.Proc(name, [os.path.join(tc.BUILD, "node", "skick-node"), "--broker",
                           self.endpoint, "--back", "--app", tc.Cluster.app()] + list(args),
                    self.tmp)
        self.procs.append(p)
        return p

    def broker(self, *args):
        p = tc.Proc("broker", [os.path.join(tc.BUILD, "broker", "skick-broker"), "--bind",
                               self.endpoint, "--control", self.control, "--heartbeat-ms", "200",
                               "--lost-after-ms", "1500"] + list(args), self.tmp)
        self.procs.append(p)
        self.assertTrue(tc.wait_for(lambda: "serving" in p.text() or p.p.poll() is not None))
        self.assertIsNone(p.p.poll(), p.text())
        return p

    def said(self, proc, text, within):
        """text appears in proc's log within `within` seconds (a bound with margin)."""
        t0 = time.monotonic()
        self.assertTrue(tc.wait_for(lambda: text in proc.text(), within + 10),
                        "%s never said %r:\n%s" % (proc.name, text, proc.text()[-3000:]))
        self.assertLess(time.monotonic() - t0, within, "%s said %r late" % (proc.name, text))

    def test_no_broker_yet(self):
        n = self.node("lonely")
        self.said(n, "not admitted by the broker at %s after " % self.endpoint, 9)
        self.assertIn(" s: no connection (is the broker running? is the endpoint right?); still "
                      "trying", n.text())
        self.broker()
        self.said(n, "joined the cluster at %s" % self.endpoint, 20)
        self.assertRegex(n.text(), r"joined the cluster at \S+ \(broker [0-9a-f]{16}\) after "
                                   r"\d+ s")
        self.assertLessEqual(n.text().count("not admitted"), 3, "the warnings back off")
        cl = sp.Client(self.control)
        self.assertEqual(len(cl.request("ps")["result"]), 1)
        cl.close()

    def keys(self, *names):
        d = os.path.join(self.tmp, "keys")
        for name in names:
            subprocess.run(skickctl("keygen", d, name), check=True, capture_output=True)
        return d

    def test_curve_failures_are_named_and_fixed_without_a_restart(self):
        d = self.keys("broker", "good", "stranger")
        allow = os.path.join(self.tmp, "allow")
        shards = os.path.join(allow, "shards")  # keys are admitted per role
        os.makedirs(shards)
        shutil.copy(os.path.join(d, "good.cert"), shards)
        self.broker("--curve-secret", os.path.join(d, "broker.cert_secret"),
                    "--curve-allow", allow)
        stranger = self.node("stranger", "--curve-secret", os.path.join(d, "stranger.cert_secret"),
                             "--curve-server", os.path.join(d, "broker.cert"))
        wrong_key = self.node("wrong-key", "--curve-secret", os.path.join(d, "good.cert_secret"),
                              "--curve-server", os.path.join(d, "stranger.cert"))
        plain = self.node("plain")
        good = self.node("good", "--curve-secret", os.path.join(d, "good.cert_secret"),
                         "--curve-server", os.path.join(d, "broker.cert"))
        self.said(good, "joined the cluster", 9)
        self.said(stranger, "CURVE handshake failed: the broker does not admit this shard's "
                  "certificate (ZAP status 400", 9)
        self.said(wrong_key, "CURVE handshake failed: the broker closed the connection during it "
                  "(is the broker's public key right?)", 9)
        # libzmq reports this one either way (the broker's ERROR or its close first)
        self.said(plain, "ZeroMQ handshake failed: ", 9)
        self.assertRegex(plain.text(), r"the two sides use different security mechanisms \(is "
                         r"CURVE configured on one side only\?\)|the broker closed the "
                         r"connection during it \(does the broker use CURVE\?")
        # admitting the stranger's certificate is enough: it connects again by itself
        shutil.copy(os.path.join(d, "stranger.cert"), shards)
        self.said(stranger, "joined the cluster", 25)
        for p in (wrong_key, plain):
            self.assertNotIn("joined", p.text())
            # at once, then at 5, 15, 35 s (and once more for a changed reason),
            # not once per retry (0.5 s doubling to 10 s)
            self.assertLessEqual(p.text().count("not admitted"), 5, "the warnings back off")
            self.assertIsNone(p.p.poll(), p.name + " keeps trying")

    def fake_broker(self):
        """A ROUTER on the endpoint playing a broker of protocol version 2."""
        r = zmq.Context.instance().socket(zmq.ROUTER)
        r.setsockopt(zmq.LINGER, 0)
        r.bind(self.endpoint)
        self.addCleanup(r.close)
        return r

    def hello_from(self, r):
        self.assertTrue(r.poll(15000), "a HELLO arrives")
        rid, head, body = r.recv_multipart()
        self.assertEqual((head[2], head[3]), (1, sp.KINDS["HELLO"]))
        return rid

    def test_another_protocol_version(self):
        r = self.fake_broker()
        n = self.node("v1")
        # a broker that answers in version 2 (a longer header, three frames)
        rid = self.hello_from(r)
        head, body = sp.pack("REPLY", 1, {"welcome": True, "broker": "ab" * 8})
        v2 = bytearray(head) + b"\0" * 4
        v2[2] = 2
        r.send_multipart([rid, bytes(v2), b"", body])
        self.said(n, "the broker speaks another protocol version (unsupported envelope version 2 "
                  "(this side speaks 1)): upgrade one side", 9)
        # a version 2 broker refusing us in version 1, as PROTOCOL.md asks
        rid = self.hello_from(r)
        refusal = {"welcome": False, "code": "EVERSION", "versions": [2],
                   "error": "this broker speaks envelope version 2 only"}
        r.send_multipart([rid] + sp.pack("REPLY", 1, refusal))
        self.said(n, "the broker refused it (EVERSION: this broker speaks envelope version 2 "
                  "only)", 9)
        self.assertIsNone(n.p.poll(), "it keeps trying: the broker may be upgraded")
        # a client of version 1 gives up at once, with the reason
        t0 = time.monotonic()
        p = subprocess.Popen(skickctl("--control", self.endpoint, "--timeout", "20000", "ps"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peer = None
        while peer != "client":  # the shard's HELLOs go on meanwhile
            self.assertTrue(r.poll(15000))
            rid, head, body = r.recv_multipart()
            peer = (sp.unpack([head, body])["body"] or {}).get("peer")
        r.send_multipart([rid, bytes(v2), b"", b"{}"])
        out, err = p.communicate(timeout=30)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("skickctl: EVERSION: cannot connect: the broker at %s speaks another "
                      "protocol version (unsupported envelope version 2" % self.endpoint, err)


if __name__ == "__main__":
    sys.exit(tc.main())  # sets tc.BUILD, runs the tests of this module (__main__)
