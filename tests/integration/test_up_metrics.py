#!/usr/bin/python3
"""test_up_metrics.py - skickctl up --metrics, and deploy/'s Prometheus and Grafana files

Usage: /usr/bin/python3 tests/integration/test_up_metrics.py BUILD_DIR [unittest args]

Starts a cluster with `skickctl up --insecure --metrics PORT_BASE` (one
front shard, one back shard) and checks:

* the ports follow the names: the broker on PORT_BASE, back-K on
  PORT_BASE+1+K, front shards on their websocket port; the record and
  `ps` (the METRICS column, the broker's line, --json "metrics") say so;
* every endpoint answers and `promtool check metrics` passes on it;
* a shard started by `scale` gets its port (and promtool passes on it), a
  killed back shard's replacement gets the same port back, and so does a
  broker brought back by scale's repair after kill -9;
* bad --metrics values are usage errors (exit 2); a port in use stops
  `up` with the shard's log;
* deploy/prometheus/prometheus.yml passes `promtool check config`;
* deploy/grafana/skick-dashboard.json is valid JSON, and every metric name
  its queries use is exposed by some process of the running cluster.

Skipped (77) when promtool (Debian package prometheus) or the built
programs are missing.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_top  # noqa: E402
from test_cluster import free_port  # noqa: E402

BUILD = None
SKICKCTL = None
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMTOOL = shutil.which("promtool")
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def scrape(addr, timeout=10):
    with urllib.request.urlopen("http://%s/metrics" % addr, timeout=timeout) as r:
        return r.read().decode()


def promtool_metrics(text):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def exposed_names(text):
    """The metric names of a scrape, histogram series included."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"^# TYPE (\S+) (\S+)", line)
        if m:
            names.add(m.group(1))
            if m.group(2) == "histogram":
                names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    return names


class UpMetrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="skick-upm-")
        cls.run_dir = os.path.join(cls.dir, "run")
        cls.env = dict(os.environ, SKICK_RUN_DIR=cls.run_dir, SKICK_LOG_LEVEL="error")
        cls.env.pop("SKICK_CONTROL", None)
        cls.base = free_port(6)
        cls.wport = free_port()
        p = cls.ctl("up", "--insecure", "--front", "1", "--back", "1",
                    "--app", os.path.join(BUILD, "examples", "accumulator.so"),
                    "--broker", "tcp://127.0.0.1:%d" % free_port(3), "--port", str(cls.wport),
                    "--metrics", "127.0.0.1:%d" % cls.base, "--wait", "30000", timeout=90)
        cls.up = p
        if p.returncode != 0:
            cls.ctl("down", "--wait", "3000")
            raise AssertionError("up failed: " + p.stdout + p.stderr)

    @classmethod
    def tearDownClass(cls):
        cls.ctl("down", "--wait", "5000")
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def ctl(cls, *args, timeout=90):
        p = subprocess.run([SKICKCTL] + list(args), capture_output=True, text=True,
                           env=cls.env, timeout=timeout)
        if SANITIZER.search(p.stderr):
            raise AssertionError("sanitizer report from skickctl %s:\n%s" % (args, p.stderr))
        return p

    def procs(self):
        with open(os.path.join(self.run_dir, "cluster.json")) as f:
            return {q["name"]: q for q in json.load(f)["processes"]}

    def expected(self, name):
        if name == "broker":
            return "127.0.0.1:%d" % self.base
        if name.startswith("front-"):
            return "127.0.0.1:%d" % (self.wport + int(name[6:]) - 1)
        return "127.0.0.1:%d" % (self.base + 1 + int(name[5:]))

    def check_endpoint(self, addr):
        deadline = time.monotonic() + 15
        while True:  # a shard just started publishes within a second
            try:
                text = scrape(addr)
                if "process_resident_memory_bytes" in text:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        rc, out = promtool_metrics(text)
        self.assertEqual(rc, 0, "%s: %s" % (addr, out))
        return text

    def check_record_and_ps(self):
        procs = self.procs()
        for name, q in procs.items():
            self.assertEqual(q.get("metrics"), self.expected(name), (name, q))
            argv = q["argv"]
            if name.startswith("front-"):
                self.assertNotIn("--metrics", argv)
            else:
                self.assertEqual(argv[argv.index("--metrics") + 1], self.expected(name))
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"NAME\s+SHARD\s+ROLE\s+PID\s+ACTORS\s+CLIENTS\s+SESSIONS\s+"
                         r"MSGS/S\s+WS\s+METRICS\n")
        self.assertIn("Metrics of broker: http://%s/metrics" % self.expected("broker"), p.stdout)
        j = json.loads(self.ctl("--json", "ps").stdout)
        for e in j:
            if e.get("state") == "running":
                self.assertEqual(e["metrics"], "http://%s/metrics" % self.expected(e["name"]), e)
        return procs

    def test_1_ports_record_ps_promtool(self):
        self.assertIn("METRICS", self.up.stdout)
        procs = self.check_record_and_ps()
        self.assertEqual(sorted(procs), ["back-1", "broker", "front-1"])
        for name in procs:
            self.check_endpoint(self.expected(name))

    def test_2_scale_and_repairs_keep_the_ports(self):
        p = self.ctl("scale", "back=2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.procs()["back-2"]["metrics"], self.expected("back-2"))
        self.check_endpoint(self.expected("back-2"))
        # a killed back shard: its replacement takes the name, and the port
        old = self.procs()["back-1"]["pid"]
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            p = self.ctl("scale", "back=2")
            if p.returncode == 0 and self.procs()["back-1"]["pid"] != old:
                break
            time.sleep(0.5)
        self.assertNotEqual(self.procs()["back-1"]["pid"], old, p.stdout + p.stderr)
        self.check_endpoint(self.expected("back-1"))
        # a killed broker: scale brings it back, on its port
        old = self.procs()["broker"]["pid"]
        os.kill(old, signal.SIGKILL)
        time.sleep(0.5)
        p = self.ctl("scale", "back=2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotEqual(self.procs()["broker"]["pid"], old)
        self.check_endpoint(self.expected("broker"))
        self.check_record_and_ps()

    def test_3_bad_values(self):
        for bad in ("x", "127.0.0.1:", "0", "65534", "127.0.0.1:99999", "[::1"):
            p = self.ctl("up", "--metrics", bad, "--run-dir", os.path.join(self.dir, "bad"))
            self.assertEqual(p.returncode, 2, (bad, p.stdout, p.stderr))
            self.assertIn("--metrics", p.stderr)

    def test_3b_a_port_in_use(self):
        """back-1's port taken: up fails with its log, and stops what it started."""
        import socket
        base = free_port(4)
        run_dir = os.path.join(self.dir, "busy")
        with socket.socket() as s:
            s.bind(("127.0.0.1", base + 2))
            s.listen()
            p = self.ctl("--run-dir", run_dir, "up", "--insecure", "--front", "0", "--back", "1",
                         "--broker", "tcp://127.0.0.1:%d" % free_port(3),
                         "--metrics", str(base), "--wait", "15000")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("ESTART: back-1 exited", p.stderr)
        self.assertIn("127.0.0.1:%d: Address already in use" % (base + 2), p.stderr)
        self.assertIn("stopped the processes started", p.stderr)

    def test_4_prometheus_config(self):
        path = os.path.join(SOURCE, "deploy", "prometheus", "prometheus.yml")
        p = subprocess.run([PROMTOOL, "check", "config", path], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_5_dashboard_names_exist(self):
        with open(os.path.join(SOURCE, "deploy", "grafana", "skick-dashboard.json")) as f:
            dash = json.load(f)
        exprs = []

        def walk(v):
            if isinstance(v, dict):
                for k, x in v.items():
                    if k == "expr" and isinstance(x, str):
                        exprs.append(x)
                    else:
                        walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
        walk(dash)
        self.assertGreater(len(exprs), 10)
        used = set()
        for e in exprs:
            used.update(re.findall(r"\b((?:skick|process)_[a-zA-Z0-9_]+)", e))
        self.assertTrue(used)
        # a family shows once it has a series (the broker's per-peer rates
        # after the shards' heartbeats): scrape again for a while
        exposed = set()
        deadline = time.monotonic() + 20
        while used - exposed and time.monotonic() < deadline:
            for name in self.procs():
                exposed |= exposed_names(scrape(self.expected(name)))
            time.sleep(0.5)
        self.assertFalse(sorted(used - exposed), "the dashboard uses names no process exposes")
        self.assertEqual(len({p["id"] for p in dash["panels"]}), len(dash["panels"]))


if __name__ == "__main__":
    test_top.main(sys.modules[__name__], {PROMTOOL: "promtool (Debian package prometheus)"})
