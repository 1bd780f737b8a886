#!/usr/bin/python3
"""test_tools.py - tools.so's command executor with real processes (docs/tools.md)

Usage: /usr/bin/python3 tests/integration/test_tools.py BUILD_DIR [unittest args]

A real broker and two back shards loading BUILD_DIR/tools/tools.so: one
with SKICK_TOOLS_ALLOW="/usr/bin/*" and SKICK_TOOLS_MAX=3, one with nothing
allowed (the default). The suite talks to the "command" actors through the
broker's control endpoint (skick_proto.Client) and checks the processes
themselves: output streamed whole or bounded (truncated), stdin, exit
codes, stderr, a timeout that kills the whole process group (grandchildren
included, and SIGKILL for a group that ignores SIGTERM), refusals (a program
not allowed: nothing ran; bad openers; too many at once), a caller that ends
the conversation early, one that vanishes, the actor stopped mid-command,
and the acknowledgement window that holds a fast child back; and `skickctl
run`.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skick_proto as sp  # noqa: E402
from test_cluster import Proc, free_port, wait_for  # noqa: E402
import test_cluster  # noqa: E402

BUILD = None
WAIT = 20.0
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def alive(marker):
    """pids of processes whose command line contains marker."""
    p = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return [int(x) for x in p.stdout.split()]


def data(turns, stream="stdout"):
    return "".join(t.get("data", "") for t in turns if t.get("stream") == stream)


class Tools(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="skick-tools-")
        port = free_port()
        cls.endpoint = "tcp://127.0.0.1:%d" % port
        control = "ipc://%s/control" % cls.tmp
        cls.procs = []
        cls.broker = Proc("broker", [os.path.join(BUILD, "broker", "skick-broker"), "--bind",
                                     cls.endpoint, "--control", control, "--heartbeat-ms", "200",
                                     "--lost-after-ms", "1500"], cls.tmp)
        cls.procs.append(cls.broker)
        wait_for(lambda: "serving" in cls.broker.text())
        tools = os.path.join(BUILD, "tools", "tools.so")
        node = [os.path.join(BUILD, "node", "skick-node"), "--broker", cls.endpoint, "--back",
                "--app", tools]
        os.environ["SKICK_TOOLS_ALLOW"] = "/usr/bin/*"
        os.environ["SKICK_TOOLS_MAX"] = "3"
        cls.back = Proc("back-allowing", node, cls.tmp)
        del os.environ["SKICK_TOOLS_ALLOW"], os.environ["SKICK_TOOLS_MAX"]
        cls.closed = Proc("back-default", node, cls.tmp)
        cls.procs += [cls.back, cls.closed]
        cls.client = sp.Client(control)

        def two():
            r = cls.client.request("services", name="command")["result"]
            return r if len(r) == 2 else None
        found = wait_for(two, 30)
        if not found:
            raise RuntimeError("no command actors:\n" + "\n".join(
                p.name + ":\n" + p.text()[-2000:] for p in cls.procs))
        pid_of = {}
        for p in (cls.back, cls.closed):
            wait_for(lambda: re.search(r"shard ([0-9a-f]{16}):", p.text()))
            pid_of[re.search(r"shard ([0-9a-f]{16}):", p.text()).group(1)] = p
        for s in found:
            if pid_of[s["shard"]] is cls.back:
                cls.cmd = s["address"]
            else:
                cls.closed_cmd = s["address"]

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        codes = {p.name: p.stop() for p in reversed(cls.procs)}
        reports = [p.name for p in cls.procs if SANITIZER.search(p.text())]
        assert not reports, "sanitizer reports in %s" % reports
        assert all(c == 0 for c in codes.values()), codes

    def run_cmd(self, msg, timeout=WAIT, on_turn=None, to=None, cid=None):
        turns, end = self.client.converse(to or self.cmd, dict(msg, action="run"), timeout,
                                          on_turn, cid)
        return turns, end

    def last(self, turns):
        self.assertTrue(turns, "no turn at all")
        return turns[-1]

    # ---- output -------------------------------------------------------------

    def test_output_is_streamed_whole(self):
        turns, end = self.run_cmd({"argv": ["seq", "1", "100000"]})
        expected = "".join("%d\n" % i for i in range(1, 100001))
        self.assertEqual(data(turns), expected)
        self.assertEqual(self.last(turns), {"exit": 0})
        self.assertGreater(len(turns), 10, "a large output comes in many turns")
        self.assertTrue(all(len(t.get("data", "")) <= 16384 for t in turns))
        self.assertNotIn("code", end or {})

    def test_a_large_output_is_bounded_and_marked_truncated(self):
        turns, _ = self.run_cmd({"argv": ["seq", "1", "3000000"], "max_output": 50000})
        expected = "".join("%d\n" % i for i in range(1, 20000))
        out = data(turns)
        self.assertEqual(len(out), 50000)
        self.assertEqual(out, expected[:50000])
        self.assertEqual(self.last(turns), {"exit": 0, "truncated": True})

    def test_stdin_is_fed_to_the_program(self):
        text = "".join("line %d\n" % i for i in range(20000))  # more than a pipe holds
        turns, _ = self.run_cmd({"argv": ["cat"], "stdin": text})
        self.assertEqual(data(turns), text)
        self.assertEqual(self.last(turns), {"exit": 0})

    def test_non_zero_exit_and_stderr(self):
        turns, _ = self.run_cmd({"argv": ["sh", "-c", "echo oops >&2; echo fine; exit 7"]})
        self.assertEqual(data(turns, "stderr"), "oops\n")
        self.assertEqual(data(turns, "stdout"), "fine\n")
        self.assertNotIn({"running": True}, turns, "a command that is not quiet")
        self.assertEqual(self.last(turns), {"exit": 7})

    def test_cwd_env_and_shell(self):
        turns, _ = self.run_cmd({"argv": ["echo $SKICK_T_VAR; pwd"], "shell": True,
                                 "env": {"SKICK_T_VAR": "from the opener"}, "cwd": self.tmp})
        self.assertEqual(data(turns), "from the opener\n%s\n" % os.path.realpath(self.tmp))

    def test_invalid_utf8_is_replaced(self):
        turns, _ = self.run_cmd({"argv": ["printf", "a\\377b\\n"]})
        self.assertEqual(data(turns), "a?b\n")

    # ---- ending -------------------------------------------------------------

    def test_timeout_kills_the_group_grandchildren_included(self):
        marker = "sleep 987.%d" % os.getpid()
        t0 = time.time()
        turns, _ = self.run_cmd({"argv": ["%s & %s" % (marker, marker)], "shell": True,
                                 "timeout_ms": 1000})
        end = self.last(turns)
        self.assertEqual(end.get("reason"), "timeout", end)
        self.assertIn(end.get("signal"), ("SIGTERM", "SIGKILL"))
        self.assertLess(time.time() - t0, 10)
        self.assertFalse(wait_for(lambda: not alive(marker), 5) is False)
        self.assertEqual(alive(marker), [], "a sleep of the group survived")

    def test_a_group_that_ignores_sigterm_gets_sigkill(self):
        marker = "sleep 876.%d" % os.getpid()
        turns, _ = self.run_cmd({"argv": ["trap '' TERM; %s & %s" % (marker, marker)],
                                 "shell": True, "timeout_ms": 800})
        self.assertEqual(self.last(turns), {"signal": "SIGKILL", "reason": "timeout"})
        self.assertEqual(alive(marker), [])

    def test_a_caller_that_ends_the_conversation_kills_the_process(self):
        marker = "sleep 765.%d" % os.getpid()
        turns, end = self.run_cmd({"argv": ["echo started; %s" % marker], "shell": True},
                                  on_turn=lambda m: m.get("data") == "started\n")
        self.assertIsNone(end)
        self.assertTrue(alive(marker), "the command ran")
        wait_for(lambda: not alive(marker), 10)
        self.assertEqual(alive(marker), [], "the command outlived its conversation")
        wait_for(lambda: "reason\": \"caller\"" in self.back.text(), 5)
        self.assertIn("\"reason\": \"caller\"", self.back.text())

    def test_a_caller_that_vanishes_gets_its_process_killed(self):
        marker = "sleep 654.%d" % os.getpid()
        other = sp.Client("ipc://%s/control" % self.tmp)
        cid = os.urandom(16).hex()
        other.send(self.cmd, {"action": "run", "argv": ["echo x; %s" % marker], "shell": True,
                              "cid": cid, "sender": other.address})
        self.assertTrue(wait_for(lambda: alive(marker), 10), "the command ran")
        seen = []
        deadline = time.time() + 10
        while time.time() < deadline and {"running": True} not in seen:
            e, b = other._heard(deadline)
            if e and b.get("cid") == cid:
                seen.append(b.get("message"))
        # its output came, and then, quiet, it said it runs
        self.assertEqual(seen[:2], [{"stream": "stdout", "data": "x\n"}, {"running": True}])
        other.close()  # no end_conversation: the next such turn to it is a dead letter
        wait_for(lambda: not alive(marker), 15)
        self.assertEqual(alive(marker), [], "the command outlived its vanished caller")

    def test_stopping_the_actor_kills_its_commands(self):
        shard = self.cmd.split(":")[0]
        sid = int(shard, 16)
        kind, r = self.client.ask(sp.addr(sid, sid), {"action": "spawn", "type": "command"})
        self.assertEqual(kind, "reply", r)
        a = r["address"]
        marker = "sleep 543.%d" % os.getpid()
        cid = os.urandom(16).hex()
        self.client.send(a, {"action": "run", "argv": ["trap '' TERM; %s" % marker],
                             "shell": True, "cid": cid, "sender": self.client.address})
        self.assertTrue(wait_for(lambda: alive(marker), 10), "the command ran")
        r = self.client.request("stop", shard=sid, address=a)
        self.assertTrue(r["ok"], r)
        wait_for(lambda: not alive(marker), 10)
        self.assertEqual(alive(marker), [], "the command outlived its actor")

    # ---- refusals -------------------------------------------------------------

    def refused(self, msg, code, to=None):
        turns, _ = self.run_cmd(msg, to=to)
        self.assertEqual(len(turns), 1, turns)
        self.assertEqual(turns[0].get("code"), code, turns)
        self.assertTrue(turns[0].get("error"))
        return turns[0]

    def test_a_program_not_allowed_is_refused_and_nothing_runs(self):
        mark = os.path.join(self.tmp, "ran")
        prog = os.path.join(self.tmp, "prog.sh")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\ntouch %s\n" % mark)
        os.chmod(prog, 0o755)
        r = self.refused({"argv": [prog]}, "EPERM")
        self.assertIn("not allowed", r["error"])
        # a symlink inside the allowed folder does not make it allowed: the
        # realpath is what is checked
        self.refused({"argv": ["./prog.sh"], "cwd": self.tmp}, "EPERM")
        time.sleep(0.3)
        self.assertFalse(os.path.exists(mark), "a refused program ran")
        self.assertIn("EPERM", self.back.text())

    def test_nothing_is_allowed_by_default(self):
        self.refused({"argv": ["true"]}, "EPERM", to=self.closed_cmd)
        self.refused({"argv": ["true"], "shell": True}, "EPERM", to=self.closed_cmd)

    def test_bad_openers(self):
        self.refused({"argv": []}, "EINVAL")
        self.refused({"argv": "ls"}, "EINVAL")
        self.refused({"argv": ["ls", 3]}, "EINVAL")
        self.refused({"argv": ["ls"], "env": ["A=1"]}, "EINVAL")
        self.refused({"argv": ["true"], "env": {"LD_PRELOAD": "/tmp/x.so"}}, "EPERM")
        self.refused({"argv": ["true"], "env": {"GCONV_PATH": "/tmp"}}, "EPERM")
        self.refused({"argv": ["ls"], "timeout_ms": 0}, "EINVAL")
        self.refused({"argv": ["ls"], "max_output": -1}, "EINVAL")
        self.refused({"argv": ["no-such-program-here"]}, "ENOTFOUND")
        self.refused({"argv": ["ls"], "cwd": "/no/such/dir"}, "ESTART")

    def test_too_many_at_once_are_refused(self):
        marker = "sleep 432.%d" % os.getpid()
        cids = []
        for _ in range(3):
            cid = os.urandom(16).hex()
            cids.append(cid)
            self.client.send(self.cmd, {"action": "run", "argv": ["sleep", marker.split()[1]],
                                        "cid": cid, "sender": self.client.address})
        self.assertTrue(wait_for(lambda: len(alive(marker)) == 3, 10), alive(marker))
        r = self.refused({"argv": ["true"]}, "EBUSY")
        self.assertIn("limit", r["error"])
        for cid in cids:
            self.client.send(self.cmd, {"action": "end_conversation", "cid": cid})
        wait_for(lambda: not alive(marker), 10)
        self.assertEqual(alive(marker), [])
        # and the slots are free again
        turns, _ = self.run_cmd({"argv": ["true"]})
        self.assertEqual(self.last(turns), {"exit": 0})

    # ---- back-pressure ----------------------------------------------------------

    def test_a_window_of_unacknowledged_turns_holds_the_child_back(self):
        cid = os.urandom(16).hex()
        got = []
        state = {"held": None}

        def ack(k):
            self.client.send(self.cmd, {"action": "receive_reply", "cid": cid,
                                        "sender": self.client.address, "message": {"ack": k}})

        def on_turn(m):
            got.append(m)
            if "stream" not in m or len(got) < 2:
                return False
            if len(got) == 2:
                # two turns unacknowledged: nothing more may come meanwhile
                deadline = time.time() + 1.5
                while time.time() < deadline and state["held"] is None:
                    e = self.client.recv(0.2)
                    b = e and e["body"] or {}
                    if b.get("cid") == cid and "stream" in (b.get("message") or {}):
                        state["held"] = e
                if state["held"] is None:
                    state["held"] = False
                ack(2)
            else:
                ack(1)
            return False

        turns, _ = self.run_cmd({"argv": ["seq", "1", "100000"], "window": 2}, timeout=60,
                                on_turn=on_turn, cid=cid)
        self.assertIs(state["held"], False, "a third turn came before any ack")
        expected = "".join("%d\n" % i for i in range(1, 100001))
        self.assertEqual(data(turns), expected)
        self.assertEqual(self.last(turns), {"exit": 0})

    # ---- skickctl run -----------------------------------------------------------

    def skickctl(self, *args):
        return subprocess.run([os.path.join(BUILD, "cli", "skickctl"), "--control",
                               "ipc://%s/control" % self.tmp] + list(args),
                              capture_output=True, text=True, timeout=WAIT)

    def test_skickctl_run_streams_and_exits_with_the_remote_status(self):
        shard = self.cmd.split(":")[0]
        p = self.skickctl("run", shard, "--", "sh", "-c", "echo out; echo err >&2; exit 5")
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertEqual(p.stdout, "out\n")
        self.assertIn("err\n", p.stderr)
        p = self.skickctl("run", shard, "--", "seq", "-s", " ", "3")
        self.assertEqual((p.returncode, p.stdout), (0, "1 2 3\n"), p.stderr)
        p = self.skickctl("run", "--run-timeout", "500", shard, "--", "sleep", "50")
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, p.stderr)
        self.assertIn("timeout", p.stderr)
        p = self.skickctl("run", self.closed_cmd.split(":")[0], "--", "true")
        self.assertEqual(p.returncode, 1)
        self.assertIn("EPERM", p.stderr)
        p = self.skickctl("run", "0123456789abcdef", "--", "true")
        self.assertEqual(p.returncode, 1)
        self.assertIn("ENOTFOUND", p.stderr)


def main():
    global BUILD
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    BUILD = os.path.abspath(sys.argv[1])
    test_cluster.BUILD = BUILD
    if not os.path.exists(os.path.join(BUILD, "tools", "tools.so")):
        print("MISSING: %s/tools/tools.so (configure with -DSKICK_BUILD_TOOLS=ON)" % BUILD)
        return 77
    argv = [sys.argv[0]] + sys.argv[2:]
    prog = unittest.main(argv=argv, exit=False, verbosity=2)
    r = prog.result
    print("%d passed, %d failed" % (r.testsRun - len(r.failures) - len(r.errors),
                                    len(r.failures) + len(r.errors)))
    return 0 if r.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
