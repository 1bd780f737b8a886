#!/usr/bin/python3
"""test_top.py - skickctl top on a real cluster, in tmux and without a terminal

Usage: /usr/bin/python3 tests/integration/test_top.py BUILD_DIR [unittest args]

Starts a cluster with `skickctl up --insecure` (one front shard, two back
shards with examples/accumulator.so), then:

* runs `skickctl top` in a detached tmux session (its own server, -L) and
  reads the screen with capture-pane: the shards and their roles show; a
  burst of messages to back-1's accumulator (sent from a client peer on
  the control endpoint) makes back-1's MSGS/S move; the sort keys change
  the order (n: by name, i: inverted; r: by RSS); q quits and the terminal
  is restored (stty after top says icanon and echo again, the normal
  screen is back); SIGTERM ends it the same way;
* a back shard stopped with SIGSTOP shows as not answering ("?", stale or
  lost) while top keeps refreshing (its clock moves), and comes back after
  SIGCONT; a stopped broker is shown as not answering, the last figures
  stay, keys still act, and it clears after SIGCONT;
* without a terminal: one plain snapshot (the table), --json (the shape),
  -b -n 2 (two snapshots), and bad options (exit status 2).

Skipped (77) when tmux or the built programs are missing.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skick_proto as sp  # noqa: E402
from test_cluster import free_port  # noqa: E402

BUILD = None
SKICKCTL = None
TMUX = shutil.which("tmux")
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def read_text(path):
    with open(path) as f:
        return f.read()


def wait_for(pred, timeout=30.0, step=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


class Top(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="skick-top-")
        cls.run_dir = os.path.join(cls.dir, "run")
        cls.env = dict(os.environ, SKICK_RUN_DIR=cls.run_dir, SKICK_LOG_LEVEL="error")
        cls.env.pop("SKICK_CONTROL", None)
        cls.tmux_sock = "skick-top-%d" % os.getpid()
        app = os.path.join(BUILD, "examples", "accumulator.so")
        p = cls.ctl("up", "--insecure", "--front", "1", "--back", "2", "--app", app,
                    "--broker", "tcp://127.0.0.1:%d" % free_port(3),
                    "--port", str(free_port()), "--wait", "30000", timeout=90)
        if p.returncode != 0:
            cls.ctl("down", "--wait", "3000")
            raise AssertionError("up failed: " + p.stdout + p.stderr)
        with open(os.path.join(cls.run_dir, "cluster.json")) as f:
            cls.procs = {q["name"]: q for q in json.load(f)["processes"]}
        cls.client = sp.Client("ipc://%s/control" % cls.run_dir)
        # one session for the class's lifetime: the tmux server exits with its
        # last session, and a new-session racing that exit fails ("server
        # exited unexpectedly")
        subprocess.run([TMUX, "-L", cls.tmux_sock, "new-session", "-d", "-s", "keep",
                        "sleep 100000"], capture_output=True, timeout=20, check=True)

    @classmethod
    def tearDownClass(cls):
        subprocess.run([TMUX, "-L", cls.tmux_sock, "kill-server"], capture_output=True)
        for q in cls.procs.values():
            try:
                os.kill(q["pid"], signal.SIGCONT)
            except OSError:
                pass
        cls.client.close()
        cls.ctl("down", "--wait", "5000")
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def ctl(cls, *args, timeout=60):
        p = subprocess.run([SKICKCTL] + list(args), capture_output=True, text=True,
                           env=cls.env, timeout=timeout)
        if SANITIZER.search(p.stderr):
            raise AssertionError("sanitizer report from skickctl %s:\n%s" % (args, p.stderr))
        return p

    # ---- tmux ---------------------------------------------------------------------

    def tmux(self, *args):
        return subprocess.run([TMUX, "-L", self.tmux_sock] + list(args), capture_output=True,
                              text=True, timeout=20)

    def start_top(self, name, *top_args):
        """top in a detached session; after it ends the shell writes stty -a
        to NAME.stty and says TOP-EXITED."""
        stty = os.path.join(self.dir, name + ".stty")
        cmd = ("env SKICK_RUN_DIR=%s SKICK_LOG_LEVEL=error %s top %s 2>%s/%s.err; "
               "echo \"rc=$?\" >%s/%s.rc; stty -a >%s; echo TOP-EXITED; sleep 600"
               % (self.run_dir, SKICKCTL, " ".join(top_args), self.dir, name, self.dir, name,
                  stty))
        r = self.tmux("new-session", "-d", "-s", name, "-x", "150", "-y", "40", cmd)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.tmux, "kill-session", "-t", name)
        self.assertTrue(wait_for(lambda: "NAME" in self.screen(name)), self.screen(name))
        return stty

    def screen(self, name):
        return self.tmux("capture-pane", "-p", "-t", name).stdout

    def rows(self, name):
        """{shard name: [cells]} and the order of the shard rows."""
        rows, order = {}, []
        for line in self.screen(name).splitlines():
            cells = line.split()
            if len(cells) >= 12 and re.match(r"^[0-9a-f]{16}$", cells[1]):
                rows[cells[0]] = cells
                order.append(cells[0])
        return rows, order

    def clock(self, name):
        m = re.search(r"skickctl top - (\d\d:\d\d:\d\d)", self.screen(name))
        return m and m.group(1)

    def accumulator(self):
        j = json.loads(self.ctl("--json", "actors", "back-1").stdout)
        accs = [a["address"] for a in j[0]["actors"] if a["type"] == "accumulator"]
        self.assertTrue(accs, j)
        return accs[0]

    def burst(self, seconds):
        """About 1000 messages a second to back-1's accumulator."""
        acc = self.accumulator()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(50):
                self.client.send(acc, {"action": "add", "number": 1})
            time.sleep(0.05)
            while self.client.recv(0):
                pass

    def restored(self, stty):
        self.assertTrue(wait_for(lambda: os.path.exists(stty) and os.path.getsize(stty) > 0,
                                 20), stty)
        err = read_text(stty[:-len(".stty")] + ".err")  # top's stderr
        self.assertFalse(SANITIZER.search(err), err)
        flags = read_text(stty).split()
        self.assertIn("icanon", flags)
        self.assertIn("echo", flags)
        self.assertNotIn("-icanon", flags)
        self.assertNotIn("-echo", flags)

    def test_1_live_view(self):
        stty = self.start_top("live", "-d", "0.5")
        rows = wait_for(lambda: len(self.rows("live")[0]) == 3 and self.rows("live")[0], 20)
        self.assertTrue(rows, self.screen("live"))
        self.assertEqual(rows["front-1"][2], "front")
        self.assertEqual(rows["back-1"][2], "back")
        self.assertEqual(rows["back-2"][2], "back")
        self.assertEqual(rows["back-1"][3], str(self.procs["back-1"]["pid"]))
        screen = self.screen("live")
        self.assertIn("Keys:", screen)
        self.assertIn("q quit", screen)
        self.assertIn("Busiest actor types", screen)
        self.assertRegex(screen, r"\naccumulator\s+2\s+2\s")

        # a burst of traffic makes back-1's msgs/s move
        def rate():
            r = self.rows("live")[0].get("back-1")
            return float(r[7]) if r and r[7] != "?" else 0.0
        before = rate()
        import threading
        th = threading.Thread(target=self.burst, args=(4.0,))
        th.start()
        seen = wait_for(lambda: rate() > before + 100, 15, 0.1)
        th.join()
        self.assertTrue(seen, "msgs/s did not move: %s\n%s" % (before, self.screen("live")))

        # sort keys: n by name, i inverted, r by RSS (the front shard, with
        # its web server, is the biggest)
        self.tmux("send-keys", "-t", "live", "n")
        self.assertTrue(wait_for(lambda: self.rows("live")[1] == ["back-1", "back-2", "front-1"],
                                 10), self.screen("live"))
        self.assertIn("sort name", self.screen("live"))
        self.tmux("send-keys", "-t", "live", "i")
        self.assertTrue(wait_for(lambda: self.rows("live")[1] == ["front-1", "back-2", "back-1"],
                                 10), self.screen("live"))
        self.assertIn("(reversed)", self.screen("live"))
        self.tmux("send-keys", "-t", "live", "i", "r")
        self.assertTrue(wait_for(lambda: self.rows("live")[1][:1] == ["front-1"]
                                 and "sort rss" in self.screen("live"), 10), self.screen("live"))
        self.tmux("send-keys", "-t", "live", ">")  # rss -> name (wraps around)
        self.assertTrue(wait_for(lambda: "sort name" in self.screen("live"), 10))

        # a narrow terminal: lines cut to the width, still refreshing
        self.tmux("resize-window", "-t", "live", "-x", "50", "-y", "20")
        self.assertTrue(wait_for(lambda: all(len(line) <= 50 for line in
                                             self.screen("live").splitlines())
                                 and "skickctl top" in self.screen("live"), 10))
        # q quits; the terminal is restored
        self.tmux("send-keys", "-t", "live", "q")
        self.assertTrue(wait_for(lambda: "TOP-EXITED" in self.screen("live"), 15),
                        self.screen("live"))
        self.restored(stty)
        self.assertNotIn("Keys:", self.screen("live"))  # the normal screen is back
        self.assertEqual(read_text(os.path.join(self.dir, "live.rc")).strip(), "rc=0")

    def test_2_sigterm_restores(self):
        stty = self.start_top("term")
        pane = int(self.tmux("display-message", "-p", "-t", "term", "#{pane_pid}").stdout)
        kids = subprocess.run(["pgrep", "-P", str(pane)], capture_output=True, text=True)
        pids = [int(x) for x in kids.stdout.split()]
        self.assertTrue(pids, "no top process under the pane")
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: "TOP-EXITED" in self.screen("term"), 15),
                        self.screen("term"))
        self.restored(stty)

    def test_3_snapshot_without_terminal(self):
        p = self.ctl("top", "-d", "0.3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("\033", p.stdout)  # plain text, no escapes
        self.assertRegex(p.stdout, r"\nNAME\s+SHARD\s+ROLE\s+PID\s+ACTORS\s+SESS\s+CLIENTS\s+"
                         r"MSGS/S\s+MAILBOX\s+ERR/S\s+RSS\s+STATE\n")
        for name, role in (("front-1", "front"), ("back-1", "back"), ("back-2", "back")):
            self.assertRegex(p.stdout, r"\n%s\s+[0-9a-f]{16}\s+%s\s+%d\s" %
                             (name, role, self.procs[name]["pid"]))
        self.assertNotIn("Keys:", p.stdout)
        p = self.ctl("--json", "top", "-d", "0.3", "--sort", "name")
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual(j["sort"], "name")
        self.assertTrue(j["broker_answering"])
        self.assertEqual([s["name"] for s in j["shards"]], ["back-1", "back-2", "front-1"])
        for s in j["shards"]:
            self.assertEqual(s["state"], "ok", s)
            for k in ("shard", "roles", "pid", "actors", "sessions", "msgs_per_s",
                      "errors_per_s", "mailbox_max", "rss_bytes", "heartbeat_age_ms"):
                self.assertIn(k, s)
            self.assertGreater(s["rss_bytes"], 0)
            self.assertGreaterEqual(s["msgs_per_s"], 0)
        types = {t["type"]: t for t in j["types"]}
        self.assertEqual(types["accumulator"]["actors"], 2)
        self.assertEqual(types["accumulator"]["shards"], 2)
        p = self.ctl("top", "-b", "-n", "2", "-d", "0.2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.count("skickctl top - "), 2)
        for bad in (["-d", "0"], ["-d", "x"], ["--sort", "bogus"], ["-n", "0"], ["extra"]):
            p = self.ctl("top", *bad)
            self.assertEqual(p.returncode, 2, (bad, p.stdout, p.stderr))
        p = self.ctl("help", "top")
        self.assertEqual(p.returncode, 0)
        self.assertIn("Keys:", p.stdout)
        self.assertIn("-d, --delay SECONDS", p.stdout)

    def test_4_stopped_shard(self):
        self.start_top("stop", "-d", "0.5")  # its stty file: restored() below
        self.assertTrue(wait_for(lambda: self.rows("stop")[0].get("back-2", [""] * 12)[11]
                                 == "ok", 20), self.screen("stop"))
        pid = self.procs["back-2"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            def silent():
                r = self.rows("stop")[0].get("back-2")
                return r and r[11] in ("stale", "lost") and r[7] == "?" and r[8] == "?"
            self.assertTrue(wait_for(silent, 20), self.screen("stop"))
            # top keeps refreshing: its clock moves, the other shards stay ok
            t0 = self.clock("stop")
            self.assertTrue(wait_for(lambda: self.clock("stop") != t0, 10), self.screen("stop"))
            rows = self.rows("stop")[0]
            self.assertEqual(rows["back-1"][11], "ok", self.screen("stop"))
            self.assertTrue(silent(), self.screen("stop"))
            # snapshots do not hang on it either
            t = time.monotonic()
            j = json.loads(self.ctl("--json", "top", "-d", "0.3").stdout)
            self.assertLess(time.monotonic() - t, 15)
            st = {s["name"]: s for s in j["shards"]}
            if "back-2" in st:
                self.assertNotEqual(st["back-2"]["state"], "ok")
                self.assertIsNone(st["back-2"]["msgs_per_s"])
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertTrue(wait_for(lambda: self.rows("stop")[0].get("back-2", [""] * 12)[11]
                                 == "ok", 30), self.screen("stop"))
        self.tmux("send-keys", "-t", "stop", "q")
        self.assertTrue(wait_for(lambda: "TOP-EXITED" in self.screen("stop"), 15))
        self.restored(os.path.join(self.dir, "stop.stty"))


    def test_5_stopped_broker(self):
        self.start_top("broker", "-d", "0.5")
        pid = self.procs["broker"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            self.assertTrue(wait_for(lambda: "broker not answering" in self.screen("broker"), 20),
                            self.screen("broker"))
            t0 = self.clock("broker")
            self.assertTrue(wait_for(lambda: self.clock("broker") != t0, 10),
                            self.screen("broker"))
            self.assertIn("NAME", self.screen("broker"))  # the last figures stay
            self.tmux("send-keys", "-t", "broker", "m")  # keys still act at once
            self.assertTrue(wait_for(lambda: "sort msgs/s" in self.screen("broker"), 5))
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertTrue(wait_for(lambda: "broker not answering" not in self.screen("broker"),
                                 30), self.screen("broker"))
        self.tmux("send-keys", "-t", "broker", "q")
        self.assertTrue(wait_for(lambda: "TOP-EXITED" in self.screen("broker"), 15))
        self.restored(os.path.join(self.dir, "broker.stty"))

def main(module, tools):
    """Set module.BUILD and module.SKICKCTL from argv, exit 77 (MISSING ...)
    when a built program or one of tools ({path or None: what to install})
    is missing, else run the tests of module."""
    module.BUILD = os.path.abspath(sys.argv.pop(1))
    module.SKICKCTL = os.path.join(module.BUILD, "cli", "skickctl")
    missing = [p for p in (module.SKICKCTL, os.path.join(module.BUILD, "broker", "skick-broker"),
                           os.path.join(module.BUILD, "node", "skick-node"),
                           os.path.join(module.BUILD, "examples", "accumulator.so"))
               if not os.path.exists(p)]
    missing += [what for path, what in tools.items() if not path]
    if missing:
        print("MISSING: " + ", ".join(missing))
        sys.exit(77)
    unittest.main(module=module, verbosity=2)


if __name__ == "__main__":
    main(sys.modules[__name__], {TMUX: "tmux (Debian package tmux)"})
