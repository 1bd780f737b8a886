#!/usr/bin/python3
"""test_cluster_view.py - GET /skick/cluster.json on a front shard (skick-node --cluster-view)

Usage: /usr/bin/python3 tests/integration/test_cluster_view.py BUILD_DIR [unittest args]

A broker, a front shard without --cluster-view and a back shard
(test_cluster.Cluster), and a second front shard with it:

* the JSON's shape (members and types, this shard's own entry, the
  headers: application/json, no-cache, nosniff), and HEAD;
* its counters move with traffic: a websocket session that sends
  messages raises client_sessions, websockets, messages_in/out and the
  rates, and they fall back when it closes;
* other methods get 405; the answer stays within its bound (64 KiB);
* without --cluster-view the path is not served (404) while /metrics is;
* a client that connects and sends nothing does not stop the others.
"""
import asyncio
import json
import os
import socket
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402


def get(port, path="/skick/cluster.json", method="GET", timeout=10):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.headers, r.read()


def view(port, timeout=10):
    """The view; a 503 (not rendered yet: the shard's first second) is retried."""
    deadline = time.time() + timeout
    while True:
        try:
            status, headers, body = get(port)
            return json.loads(body)
        except urllib.error.HTTPError as e:
            if e.code != 503 or time.time() > deadline:
                raise
        time.sleep(0.2)


class ClusterView(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = tc.Cluster(backs=1)  # its front shard runs without --cluster-view
        cls.plain_port = cls.c.ws_port
        cls.port = tc.free_port()
        cls.viewed = cls.c.node("front-2", ["--front", "--port", str(cls.port),
                                            "--cluster-view"])
        cls.c.wait_shards(3)

    @classmethod
    def tearDownClass(cls):
        codes = cls.c.close()
        assert all(v == 0 for v in codes.values()), codes
        assert not cls.c.sanitizer_reports(), cls.c.sanitizer_reports()

    def wait_view(self, pred, timeout=15):
        """The view, once pred(view) holds (rendered once a second)."""
        deadline = time.time() + timeout
        v = None
        while time.time() < deadline:
            v = view(self.port)
            if pred(v):
                return v
            time.sleep(0.2)
        self.fail("the view never matched: %s" % v)

    def test_shape_and_headers(self):
        v = self.wait_view(lambda v: v["uptime_ms"] > 0)
        for key in ("actors", "sessions", "clients", "client_sessions", "websockets",
                    "delivered", "messages_in", "messages_out", "uptime_ms"):
            self.assertIsInstance(v[key], int, key)
        for key in ("delivered_per_s", "messages_in_per_s", "messages_out_per_s"):
            self.assertIsInstance(v[key], (int, float), key)
        self.assertEqual(v["version"], 1)
        self.assertIsInstance(v["directory"], bool)
        self.assertIs(v["truncated"], False)
        self.assertIn(v["shard"], ["%016x" % i for i in self.c.shard_ids("front")])
        me = [e for e in v["shards"] if e.get("self")]
        self.assertEqual(len(me), 1, v)
        self.assertEqual(me[0]["shard"], v["shard"])
        self.assertEqual(me[0]["roles"], ["front"])
        status, headers, body = get(self.port)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["Cache-Control"], "no-cache")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertLessEqual(len(body), 64 * 1024)
        status, headers, body = get(self.port, method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertGreater(int(headers["Content-Length"]), 0)

    def test_counters_move_with_traffic(self):
        base = self.wait_view(lambda v: v["client_sessions"] == 0)
        n = 30

        async def go():
            ws = await tc.ws_session(self.port, {"session_type": "cluster_echo"})
            for i in range(n):
                r = await tc.ws_echo(ws, "m%d" % i)
                await asyncio.sleep(0.02)  # under the default rate limit
                self.assertEqual(r["echo"], "m%d" % i)
            # while it is open: the session, the websocket and the rates show
            self.wait_view(lambda v: v["client_sessions"] == 1 and v["websockets"] == 1
                           and v["messages_in"] >= base["messages_in"] + n)
            await ws.close()
        tc.run(go())
        v = self.wait_view(lambda v: v["messages_out"] >= base["messages_out"] + n)
        self.assertGreater(v["delivered"], base["delivered"])
        # some rendering saw the rates of the burst, or the totals prove it
        # moved; the rates then fall back to 0 once it is quiet
        self.wait_view(lambda v: v["client_sessions"] == 0 and v["websockets"] == 0
                       and v["messages_in_per_s"] == 0)

    def test_rates_show_a_burst(self):
        async def go():
            ws = await tc.ws_session(self.port, {"session_type": "cluster_echo"})
            seen = 0.0
            deadline = time.time() + 15
            while seen <= 0 and time.time() < deadline:
                for i in range(10):  # 50 a second: under the default rate limit
                    await tc.ws_echo(ws, "r%d" % i)
                await asyncio.sleep(0.2)
                seen = view(self.port)["messages_in_per_s"]
            await ws.close()
            return seen
        self.assertGreater(tc.run(go()), 0)

    def test_other_methods(self):
        for method in ("POST", "PUT", "DELETE"):
            with self.assertRaises(urllib.error.HTTPError) as e:
                get(self.port, method=method)
            self.assertEqual(e.exception.code, 405, method)

    def test_off_without_the_option(self):
        with self.assertRaises(urllib.error.HTTPError) as e:
            get(self.plain_port)
        self.assertEqual(e.exception.code, 404)
        status, _, _ = get(self.plain_port, path="/metrics")
        self.assertEqual(status, 200)

    def test_a_silent_client_does_not_stop_others(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        try:
            s.sendall(b"GET /skick/cluster.json HTTP/1.1\r\n")  # and never the rest
            t = time.time()
            self.assertIn("shard", view(self.port))
            self.assertLess(time.time() - t, 5)
        finally:
            s.close()


if __name__ == "__main__":
    sys.exit(tc.main())
