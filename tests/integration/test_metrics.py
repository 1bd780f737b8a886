#!/usr/bin/python3
"""test_metrics.py - Prometheus metrics from every process of a real cluster

Usage: /usr/bin/python3 tests/integration/test_metrics.py BUILD_DIR [unittest args]

Starts a broker with --metrics, a front shard (metrics on its web port) and
a back shard with --metrics (test_cluster.Cluster), scrapes each endpoint
over HTTP and checks: the text passes `promtool check metrics` (Debian
package prometheus), the standard process_* metrics are there, and the
counters move as traffic is sent (websocket messages on the front shard,
handler runs and cross-shard envelopes on the back shard, routed envelopes
on the broker). Bad requests get their HTTP errors, a scraper that never
sends its request does not stop another, and a bad --metrics value is a
usage error.
"""
import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skick_proto as sp  # noqa: E402
import test_cluster as tc  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(port, path="/metrics", timeout=10):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def samples(text):
    """{name or name{labels}: value} of every sample line."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def promtool(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def metrics_port(proc):
    m = tc.wait_for(lambda: re.search(r"metrics on port (\d+)", proc.text()))
    assert m, proc.text()[-2000:]
    return int(m.group(1))


class Scrape(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = tc.Cluster(backs=0, broker_args=["--metrics", "127.0.0.1:0"])
        cls.back = cls.c.node("back-1", ["--back", "--app", cls.c.app(),
                                         "--metrics", "127.0.0.1:0"])
        cls.c.wait_shards(2)
        cls.ports = {"broker": metrics_port(cls.c.broker), "front": cls.c.ws_port,
                     "back": metrics_port(cls.back)}

    @classmethod
    def tearDownClass(cls):
        codes = cls.c.close()
        assert all(v == 0 for v in codes.values()), codes
        assert not cls.c.sanitizer_reports(), cls.c.sanitizer_reports()

    def get(self, who):
        status, ctype, text = scrape(self.ports[who])
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        return text

    def wait_value(self, who, key, above, timeout=10):
        """Scrape until sample key is > above (metrics are published once a second)."""
        last = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            last = samples(self.get(who)).get(key)
            if last is not None and last > above:
                return last
            time.sleep(0.2)
        self.fail("%s %s stayed at %s (wanted > %s)" % (who, key, last, above))

    def test_promtool_accepts_every_endpoint(self):
        for who in self.ports:
            text = self.get(who)
            rc, out = promtool(text)
            self.assertEqual(rc, 0, "%s: %s" % (who, out))
            s = samples(text)
            for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                         "process_open_fds", "process_start_time_seconds"):
                self.assertIn(name, s, who)
            self.assertGreater(s["process_resident_memory_bytes"], 1 << 20, who)

    def test_counters_move_with_traffic(self):
        before_f = samples(self.get("front"))
        before_b = samples(self.get("back"))
        before_r = samples(self.get("broker"))
        n = 20

        async def go():
            ws = await tc.ws_session(self.c.ws_port, {"session_type": "cluster_echo"})
            for i in range(n):
                r = await tc.ws_echo(ws, "m%d" % i)
                self.assertEqual(r["echo"], "m%d" % i)
            await ws.close()
        tc.run(go())
        k_in = 'skick_ws_messages_total{direction="in"}'
        k_out = 'skick_ws_messages_total{direction="out"}'
        self.wait_value("front", k_in, before_f.get(k_in, 0) + n - 1)
        self.wait_value("front", k_out, before_f.get(k_out, 0) + n - 1)
        self.wait_value("front", "skick_ws_connections_total",
                        before_f.get("skick_ws_connections_total", 0))
        k_env = 'skick_cluster_envelopes_total{direction="in"}'
        self.wait_value("back", k_env, before_b.get(k_env, 0) + n - 1)
        self.wait_value("broker", "skick_broker_routed_total",
                        before_r.get("skick_broker_routed_total", 0) + 2 * n - 1)
        # an actor of a registered type, called by a client: its type's counters
        shard = self.c.shard_ids("back")[0]
        echo = self.c.spawn_on(shard, "echo")
        k_alive = 'skick_actors{type="echo"}'
        self.wait_value("back", k_alive, 0)
        k_del = 'skick_messages_delivered_total{type="echo"}'
        base = samples(self.get("back")).get(k_del, 0)
        for i in range(5):
            kind, r = self.c.client.ask(echo, {"action": "ask", "n": i})
            self.assertEqual(kind, "reply", r)
        self.wait_value("back", k_del, base + 4)
        # a message to a dead actor: the broker routes it, the shard counts a dead letter
        dead = sp.addr(shard, 0x4242)
        k_dl = 'skick_dead_letters_total{code="EDEAD"}'
        base = samples(self.get("back")).get(k_dl, 0)
        kind, r = self.c.client.ask(dead, {"action": "ask", "n": 1})
        self.assertIn(kind, ("end", "dead"))
        self.wait_value("back", k_dl, base)

    def test_conversations_hash_peers_and_link_rtt(self):
        shard = self.c.shard_ids("back")[0]
        w, echo = self.c.spawn_on(shard, "watcher"), self.c.spawn_on(shard, "echo")
        base = samples(self.get("back"))
        k_ok = 'skick_conversations_total{outcome="ok"}'
        k_dead = 'skick_conversations_total{outcome="EDEAD"}'
        kind, r = self.c.client.ask(w, {"action": "call", "address": echo, "n": 1})
        self.assertEqual((kind, r.get("n")), ("reply", 1), r)
        kind, r = self.c.client.ask(w, {"action": "call", "address": sp.addr(shard, 0x4243),
                                        "n": 1})
        self.assertEqual((kind, r), ("reply", {"error": "EDEAD"}))
        self.wait_value("back", k_ok, base.get(k_ok, 0))
        self.wait_value("back", k_dead, base.get(k_dead, 0))
        # the cluster hash: counted by backend, operation and outcome, timed
        k_set = 'skick_hash_operations_total{backend="broker",op="set",outcome="ok"}'
        k_get = 'skick_hash_operations_total{backend="broker",op="get",outcome="ok"}'
        kind, r = self.c.client.ask(w, {"action": "hset", "key": "m", "value": 7})
        self.assertEqual(kind, "reply", r)
        kind, r = self.c.client.ask(w, {"action": "hget", "key": "m"})
        self.assertEqual(kind, "reply", r)
        self.wait_value("back", k_set, base.get(k_set, 0))
        self.wait_value("back", k_get, base.get(k_get, 0))
        k_lat = 'skick_hash_operation_seconds_count{backend="broker",op="get"}'
        self.wait_value("back", k_lat, base.get(k_lat, 0))
        # the broker answers the heartbeats' pings: the link's round trip
        for who in ("back", "front"):
            self.wait_value(who, "skick_cluster_link_rtt_seconds_count", 0)
        # traffic per peer: the client's asks came in from no shard; the
        # front's session traffic is counted per peer on the back
        async def go():
            ws = await tc.ws_session(self.c.ws_port, {"session_type": "cluster_echo"})
            await tc.ws_echo(ws, "x")
            # sessions by type: its session actor on the back shard, its
            # receptionist on the front
            self.wait_value("back", 'skick_actors{type="cluster_echo"}', 0)
            self.wait_value("front", 'skick_actors{type="receptionist"}', 0)
            await ws.close()
        tc.run(go())
        front = self.c.shard_ids("front")[0]
        key = 'skick_cluster_peer_envelopes_total{peer="%016x",direction="in"}' % front
        self.wait_value("back", key, 0)

    def test_the_broker_counts_peers(self):
        s = samples(self.get("broker"))
        self.assertEqual(s.get('skick_broker_peers{kind="shard"}'), 2, s)
        self.assertGreaterEqual(s.get('skick_broker_peers{kind="client"}'), 1)
        self.assertGreater(s["skick_broker_uptime_seconds"], 0)

    def test_http_errors(self):
        port = self.ports["back"]
        with self.assertRaises(urllib.error.HTTPError) as e:
            scrape(port, "/nope")
        self.assertEqual(e.exception.code, 404)
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port, data=b"x",
                                     method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(e.exception.code, 405)

    def test_a_silent_scraper_does_not_stop_another(self):
        for who in ("broker", "back"):
            with socket.create_connection(("127.0.0.1", self.ports[who]), timeout=5):
                t0 = time.time()
                self.get(who)  # answered while the first connection says nothing
                self.assertLess(time.time() - t0, 5, who)


class BadOptions(unittest.TestCase):
    def test_bad_metrics_values_are_usage_errors(self):
        for prog, want in (("broker/skick-broker", 2), ("node/skick-node", 1)):
            for bad in ("nope:x", "host:70000", "::1:80"):
                p = subprocess.run([os.path.join(tc.BUILD, prog), "--metrics", bad],
                                   capture_output=True, text=True, timeout=20)
                self.assertNotEqual(p.returncode, 0, (prog, bad))
                self.assertIn("--metrics", p.stderr, (prog, bad, p.stderr))

    def test_a_port_in_use_is_a_clear_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            tmp = __import__("tempfile").mkdtemp(prefix="skick-metrics-")
            p = subprocess.run([os.path.join(tc.BUILD, "broker", "skick-broker"), "--bind",
                                "ipc://%s/b" % tmp, "--control", "ipc://%s/c" % tmp,
                                "--metrics", "127.0.0.1:%d" % port],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("Address already in use", p.stderr)


if __name__ == "__main__":
    sys.exit(tc.main())
