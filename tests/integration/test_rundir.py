#!/usr/bin/python3
"""test_rundir.py - skickctl's run directory against another local user, and the broker repair

Usage: /usr/bin/python3 tests/integration/test_rundir.py BUILD_DIR [unittest args]

The attacker is a real second user: `nobody`, through
`setpriv --reuid=nobody --regid=nogroup --clear-groups`. So the test must run
as root (as it does in CI); otherwise it prints why and exits 77 (ctest:
skipped). The default run directory is ${SKICK_RUN_BASE}/skick-UID/run with
SKICK_RUN_BASE a fresh sticky, world-writable directory standing in for /tmp,
so the real /tmp/skick-0 is never touched.

Attacks (issue 16, item 4): nobody creates skick-UID before us and plants a
run/cluster.json whose node_bin and broker_bin are nobody's program and
whose pids are those of an unrelated `sleep` of ours; the same record in a
world-writable directory, behind a symlink, or as a file of another user in
our own directory; and records of our own whose pids are not the processes
skickctl started (no start time, or another one). In none of them may
`scale`, `up`, `down` or `ps` run the planted program or signal the sleep;
each refuses with EINVAL naming the directory or file, its owner and mode.

The broker repair (item 5): `skickctl up`, kill -9 of the broker, `scale`
restarts it with the recorded command line (same endpoints, same keys), the
shards join it, `ps` works and a websocket session works; `up` over that
run directory repairs too, and a broker restarted by hand is used as it is.
Each test here fails on the skickctl before this change.
"""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from test_cli import SANITIZER, alive, free_ports, start_ticks  # same directory

BUILD = None
SKICKCTL = None
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
UID = os.getuid()


def as_nobody(script):
    """Run a shell script as nobody; fails the test run if it fails."""
    subprocess.run(NOBODY + ["sh", "-ec", script], check=True, timeout=10)


class Base(unittest.TestCase):
    def setUp(self):
        # stands for /tmp: sticky and world-writable, so nobody can create in it
        self.base = tempfile.mkdtemp(prefix="skick-rd-")
        os.chmod(self.base, 0o1777)
        self.home = os.path.join(self.base, "skick-%d" % UID)  # the default's parent
        self.default = os.path.join(self.home, "run")
        self.env = dict(os.environ, SKICK_RUN_BASE=self.base, SKICK_LOG_LEVEL="info")
        for k in ("SKICK_RUN_DIR", "SKICK_CONTROL", "XDG_RUNTIME_DIR"):
            self.env.pop(k, None)
        self.sleep = subprocess.Popen(["sleep", "1000"])  # an unrelated process of ours
        self.marker = os.path.join(self.base, "planted-program-ran")

    def tearDown(self):
        self.sleep.kill()
        self.sleep.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def ctl(self, *args, env=None, timeout=60):
        e = dict(self.env, **(env or {}))
        p = subprocess.run([SKICKCTL] + list(args), capture_output=True, text=True, env=e,
                           timeout=timeout)
        if SANITIZER.search(p.stderr):
            raise AssertionError("sanitizer report from skickctl %s:\n%s" % (args, p.stderr))
        return p

    def planted(self, ticks=True):
        """A record naming nobody's program and our sleep (with its real start
        time: anyone can read it in /proc), as JSON text."""
        prog = os.path.join(self.base, "evil.sh")
        if not os.path.exists(prog):
            as_nobody("printf '#!/bin/sh\\ntouch %s\\nexec sleep 30\\n' > %s; chmod 755 %s"
                      % (self.marker, prog, prog))
        pid = self.sleep.pid
        entry = {"pid": pid, "argv": ["/bin/sleep", "1000"], "started_ms": 1}
        if ticks:
            entry["start_ticks"] = start_ticks(pid)
        procs = [dict(entry, name="broker", role="broker", index=0),
                 dict(entry, name="back-1", role="back", index=1)]
        return json.dumps({"version": 1, "broker": "tcp://127.0.0.1:1", "control":
                           "ipc:///nonexistent/control", "host": "127.0.0.1", "port": 1,
                           "apps": [], "node_args": [], "broker_bin": prog, "node_bin": prog,
                           "curve": None, "processes": procs})

    def assert_untouched(self, p, *needles):
        """p refused with EINVAL naming needles; nothing planted ran, the
        sleep got no signal."""
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("skickctl: EINVAL: ", p.stderr)
        for n in needles:
            self.assertIn(n, p.stderr)
        time.sleep(0.2)
        self.assertFalse(os.path.exists(self.marker), "the planted program ran")
        self.assertIsNone(self.sleep.poll(), "our sleep was signalled")

    def every_command(self, *needles, run_dir=(), logs=True):
        """Each command that reads the record (and logs, which reads the
        directory) refuses."""
        for args in (["scale", "back=2", "--wait", "2000"], ["down", "--wait", "2000"], ["ps"],
                     ["up", "--front", "0", "--back", "0", "--wait", "2000"]) + \
                (["logs"],) * logs:
            p = self.ctl(*(list(run_dir) + args))
            self.assert_untouched(p, *needles)


class Attacks(Base):
    def test_precreated_by_another_user(self):
        # nobody makes /tmp/skick-0 first, with run/ and a record in it
        as_nobody("mkdir -m 755 %s; mkdir -m 755 %s; cat > %s/cluster.json <<'EOF'\n%s\nEOF"
                  % (self.home, self.default, self.default, self.planted()))
        self.every_command("%s, the parent of the run directory, is not safe to use: it belongs "
                           "to another user (owner nobody (uid 65534), mode 0755; you are "
                           % self.home, "Remove %s" % self.home)
        # nor is an explicit --run-dir of another user's
        theirs = os.path.join(self.base, "theirs")
        as_nobody("mkdir -m 755 %s; cp %s/cluster.json %s" % (theirs, self.default, theirs))
        self.every_command("the run directory %s is not safe to use: it belongs to another user"
                           % theirs, run_dir=("--run-dir", theirs))

    def test_world_writable(self):
        # ours, but anyone may rename run/ away and put theirs in its place
        os.mkdir(self.home, 0o700)
        os.chmod(self.home, 0o777)
        as_nobody("mkdir %s; cat > %s/cluster.json <<'EOF'\n%s\nEOF"
                  % (self.default, self.default, self.planted()))
        self.every_command("%s, the parent of the run directory, is not safe to use: it is "
                           "writable by group or others (owner root (uid 0), mode 0777"
                           % self.home)
        # a run directory of ours that is group-writable, with our own record in it
        mine = os.path.join(self.base, "mine")
        os.mkdir(mine, 0o700)
        os.chmod(mine, 0o770)
        with open(os.path.join(mine, "cluster.json"), "w") as f:
            f.write(self.planted())
        self.every_command("the run directory %s is not safe to use: it is writable by group or "
                           "others (owner root (uid 0), mode 0770" % mine,
                           run_dir=("--run-dir", mine))
        # under a parent that others may write to (no sticky bit)
        loose = os.path.join(self.base, "loose")
        os.mkdir(loose)
        os.chmod(loose, 0o777)
        os.mkdir(os.path.join(loose, "run"), 0o700)
        shutil.copy(os.path.join(mine, "cluster.json"), os.path.join(loose, "run"))
        self.every_command("%s, a parent of the run directory %s/run, is not safe to use: it is "
                           "writable by group or others without the sticky bit" % (loose, loose),
                           run_dir=("--run-dir", os.path.join(loose, "run")))

    def test_symlink(self):
        # /tmp/skick-0 as a symlink to nobody's directory
        evil = os.path.join(self.base, "evil")
        as_nobody("mkdir -m 755 %s %s/run; ln -s %s %s; cat > %s/run/cluster.json <<'EOF'\n%s\nEOF"
                  % (evil, evil, evil, self.home, evil, self.planted()))
        self.every_command("%s, the parent of the run directory, is not safe to use: it is a "
                           "symbolic link" % self.home)
        # a run directory that is a symlink, even to a directory of ours
        mine = os.path.join(self.base, "mine")
        os.mkdir(mine, 0o700)
        with open(os.path.join(mine, "cluster.json"), "w") as f:
            f.write(self.planted())
        link = os.path.join(self.base, "link")
        os.symlink(mine, link)
        self.every_command("the run directory %s is not safe to use: it is a symbolic link" % link,
                           run_dir=("--run-dir", link))

    def test_planted_file(self):
        # our directory, but cluster.json is another user's, or writable by anyone
        mine = os.path.join(self.base, "mine")
        os.mkdir(mine, 0o700)
        path = os.path.join(mine, "cluster.json")
        with open(path, "w") as f:
            f.write(self.planted())
        os.chown(path, 65534, 65534)
        self.every_command("%s is not safe to use: it belongs to another user (owner nobody" % path,
                           run_dir=("--run-dir", mine), logs=False)
        os.chown(path, 0, 0)
        os.chmod(path, 0o666)
        self.every_command("%s is not safe to use: it is writable by group or others" % path,
                           run_dir=("--run-dir", mine), logs=False)
        os.unlink(path)
        os.symlink(os.path.join(self.base, "elsewhere.json"), path)
        self.every_command("%s is not safe to use: it is a symbolic link" % path,
                           run_dir=("--run-dir", mine), logs=False)

    def test_pids_not_ours(self):
        # a record of our own whose pids are not what skickctl started: an
        # older record without start times, and one with another start time
        mine = os.path.join(self.base, "mine")
        os.mkdir(mine, 0o700)
        for ticks, why in ((False, "not verifiable (the record has no start time)"),
                           (True, "ended (its pid now runs another process)")):
            rec = json.loads(self.planted(ticks=False))
            for e in rec["processes"]:
                if ticks:
                    e["start_ticks"] = start_ticks(self.sleep.pid) + 1
            with open(os.path.join(mine, "cluster.json"), "w") as f:
                json.dump(rec, f)
            p = self.ctl("--run-dir", mine, "ps")
            self.assertEqual(p.returncode, 1)
            self.assertIn("the broker of the cluster in %s is not running: pid %d %s"
                          % (mine, self.sleep.pid, why), p.stderr)
            p = self.ctl("--run-dir", mine, "down", "--wait", "2000")
            self.assertEqual(p.returncode, 0, p.stderr)
            for name in ("back-1", "broker"):
                self.assertRegex(p.stdout, r"%s\s+%d\s+not signalled: %s"
                                 % (name, self.sleep.pid, why.replace("(", r"\(")
                                    .replace(")", r"\)")))
            time.sleep(0.2)
            self.assertIsNone(self.sleep.poll(), "our sleep was signalled")
            with open(os.path.join(mine, "cluster.json")) as f:
                self.assertEqual(json.load(f)["processes"], [])

    def test_default_dirs_made_0700(self):
        # the default parent and run/ are made owner-only; XDG_RUNTIME_DIR wins
        p = self.ctl("down")
        self.assertEqual(p.returncode, 1)
        self.assertIn("ENOTFOUND", p.stderr)
        self.assertFalse(os.path.exists(self.home))  # down creates nothing
        xdg = os.path.join(self.base, "xdg")
        p = self.ctl("down", env={"XDG_RUNTIME_DIR": xdg})  # a stale one is not used
        self.assertIn("no cluster in %s " % self.default, p.stderr)
        os.mkdir(xdg, 0o700)
        for env, where in (({}, self.default), ({"XDG_RUNTIME_DIR": xdg},
                                                os.path.join(xdg, "skick", "run"))):
            p = self.ctl("--json", "up", "--front", "0", "--back", "0", "--broker",
                         "tcp://127.0.0.1:%d" % free_ports(3), "--wait", "10000", env=env)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(json.loads(p.stdout)["run_dir"], where)
            for d in (os.path.dirname(where), where, os.path.join(where, "logs")):
                self.assertEqual(os.lstat(d).st_mode & 0o777, 0o700, d)
            p = self.ctl("down", env=env)
            self.assertEqual(p.returncode, 0, p.stderr)


def prerequisites():
    if os.geteuid() != 0:
        return "not root: the attacker is another user (nobody), which only root can become"
    if not shutil.which("setpriv"):
        return "no setpriv (util-linux)"
    for prog in ("broker/skick-broker", "node/skick-node", "examples/hello.so"):
        if not os.path.exists(os.path.join(BUILD, prog)):
            return "%s is not built" % prog
    return None


class Repair(Base):
    """kill -9 of the broker of a skickctl cluster, then scale / up."""

    def up(self, *more):
        self.bport, self.wport = free_ports(3), free_ports(1)
        p = self.ctl("up", "--front", "1", "--back", "1", "--app",
                     os.path.join(BUILD, "examples", "hello.so"), "--broker",
                     "tcp://127.0.0.1:%d" % self.bport, "--port", str(self.wport), "--node-arg",
                     "--ws-threads=4", "--wait", "20000", *more)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def tearDown(self):
        self.ctl("down", "--wait", "3000")
        super().tearDown()

    def record(self):
        with open(os.path.join(self.default, "cluster.json")) as f:
            return {e["name"]: e for e in json.load(f)["processes"]}

    def kill_broker(self):
        pid = self.record()["broker"]["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return pid

    def session(self):
        """A websocket session on front-1, placed on back-1 across the broker."""
        import websockets

        async def scenario():
            url = "ws://127.0.0.1:%d/" % self.wport
            async with websockets.connect(url, open_timeout=10) as ws:
                await ws.send(json.dumps({"session_type": "hello"}))
                return await asyncio.wait_for(ws.recv(), 10)

        return asyncio.run(scenario())

    def assert_works(self, shards):
        p = self.ctl("--json", "ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual({e["name"]: (e["pid"], e["state"]) for e in j},
                         {n: (pid, "running") for n, pid in shards.items()})
        self.assertTrue(self.session())

    def test_scale_restarts_a_killed_broker(self):
        self.up()
        before = self.record()
        shards = {n: before[n]["pid"] for n in ("front-1", "back-1")}
        self.assertTrue(self.session())
        old = self.kill_broker()
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 1)
        self.assertIn("`skickctl scale` (or `skickctl up`) restarts the broker as recorded",
                      p.stderr)
        p = self.ctl("--json", "scale", "front=1", "back=1")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual((j["broker_repaired"]["action"], j["broker_repaired"]["pid"],
                          j["broker_repaired"]["ended"]),
                         ("restarted", old, "killed by signal 9 (SIGKILL)"))
        self.assertEqual((j["started"], j["stopped"], j["forgotten"]), ([], [], []))
        now = self.record()
        self.assertNotEqual(now["broker"]["pid"], old)
        self.assertEqual(now["broker"]["argv"], before["broker"]["argv"])  # endpoints, keys
        self.assert_works(shards)  # the same shards joined the new broker

        # `up` over the run directory repairs as well
        old = self.kill_broker()
        p = self.ctl("up", "--front", "3")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("runs without its broker: repairing it", p.stderr)
        self.assertIn("restarted the broker: the cluster's broker (pid %d) killed by signal 9"
                      % old, p.stdout)
        self.assertEqual(sorted(self.record()), ["back-1", "broker", "front-1"])
        self.assert_works(shards)

        # a broker someone restarted by hand with the recorded command line is used
        rec = self.record()["broker"]
        self.kill_broker()
        hand = subprocess.Popen(rec["argv"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            p = self.ctl("--json", "scale", "back=1")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(json.loads(p.stdout)["broker_repaired"]["action"], "adopted")
            self.assertNotIn("broker", self.record())
            self.assertIsNone(hand.poll())
            self.assert_works(shards)
        finally:
            hand.terminate()
            hand.wait(10)


def main(argv):
    global BUILD, SKICKCTL
    if len(argv) < 2:
        print(__doc__)
        return 2
    BUILD = os.path.abspath(argv[1])
    SKICKCTL, why = os.path.join(BUILD, "cli", "skickctl"), prerequisites()
    if why:
        print("SKIPPED: %s" % why)
        return 77
    result = unittest.main(argv=argv[:1] + argv[2:], exit=False, verbosity=2).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
