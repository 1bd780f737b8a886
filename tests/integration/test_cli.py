#!/usr/bin/python3
"""test_cli.py - skickctl and the client library (skick/client.h)

Usage: /usr/bin/python3 tests/integration/test_cli.py BUILD_DIR [unittest args]

Three parts:

* Usage, help, version, exit codes and keygen: skickctl alone.
* The client protocol against a mock broker written here with Debian's
  python3-zmq (a ROUTER on ipc://RUN_DIR/control that follows
  proto/PROTOCOL.md "The cluster": HELLO and welcome, link sequence
  numbers, heartbeats, control requests to the broker and to two fake
  shards, conversations with a fake accumulator, dead letters, "say
  HELLO"). Every query command's table and --json output is checked here,
  and so is the example program cli/example_client.c.
* A real cluster: `skickctl up` with BUILD_DIR/broker/skick-broker and
  BUILD_DIR/node/skick-node (cluster support: --broker), the accumulator
  module, then ps, actors, services, sessions, send, ask, stop, stats,
  logs, scale, down, CURVE and a failing start.

When the real cluster cannot run (no skick-broker built, or a skick-node
without --broker) those tests are reported as MISSING with the reason, and
the exit status is 77 (ctest: skipped) if everything else passed, so they
never pass vacuously. The last line is "N passed, M failed, K missing".
"""
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import zmq

BUILD = None
SKICKCTL = None
WAIT = 20.0  # bound on one skickctl run (seconds)
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")

MISSING = []  # reasons the real-cluster tests could not run


def read_text(path):
    with open(path) as f:
        return f.read()


def compact(v):
    return json.dumps(v, separators=(",", ":"))


def run(args, env=None, timeout=WAIT, run_dir=None, check_sanitizer=True):
    """Run skickctl; returns CompletedProcess (stdout/stderr text)."""
    e = dict(os.environ, SKICK_LOG_LEVEL="info")  # some checks read log lines
    e.pop("SKICK_CONTROL", None)
    e.pop("SKICK_RUN_DIR", None)
    if run_dir:
        e["SKICK_RUN_DIR"] = run_dir
    if env:
        e.update(env)
    p = subprocess.run([SKICKCTL] + args, capture_output=True, text=True, env=e,
                       timeout=timeout)
    if check_sanitizer and SANITIZER.search(p.stderr):
        raise AssertionError("sanitizer report from skickctl %s:\n%s" % (args, p.stderr))
    return p


# ---------------------------------------------------------------------------
# A mock broker speaking PROTOCOL.md "The cluster"

HDR = struct.Struct(">HBBQIIQQQQ")
ACTOR, CLIENT, DEAD_LETTER, HELLO, HEARTBEAT, DIRECTORY, CONTROL, REPLY, LOST = range(1, 10)
SHARD_A = 0x1111222233334444  # a fake back shard
SHARD_B = 0x5555666677778888  # a fake front shard
ACC = 0x00000000000000AC      # the fake accumulator on shard A
ACC_ADDR = "%016x:%016x" % (SHARD_A, ACC)
# The fake shards' pids: live processes (this test and its parent), as
# skickctl checks that the processes of its record still run, with their
# start times (skickctl takes a pid for its own only when that matches).
FRONT_PID = os.getpid()
BACK_PID = os.getppid()


def start_ticks(pid):
    """Field 22 of /proc/PID/stat, as skickctl records it."""
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])
BROKER_ID = "b0b0b0b0b0b0b0b0"


def hexid(n):
    return "%016x" % n


class Peer:
    def __init__(self, rid, pid):
        self.rid = rid
        self.id = pid
        self.out = 0  # last seq sent to it
        self.last_in = 0  # last seq received from it


class MockBroker(threading.Thread):
    """A ROUTER on ENDPOINT. Test code changes behaviour through attributes
    guarded by lock and reads self.log (kind, body, header fields)."""

    def __init__(self, endpoint, heartbeat_ms=500, lost_after_ms=3000):
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.heartbeat_ms = heartbeat_ms
        self.lost_after_ms = lost_after_ms
        self.lock = threading.Lock()
        self.log = []  # (kind, body, from, to, seq)
        self.seq_errors = []  # sequence problems seen on client links
        self.peers = {}  # rid -> Peer
        self.forget = False  # forget every client at the next envelope
        self.refuse = None  # welcome false with this code
        self.mute = False  # answer nothing, send no heartbeats
        self.dup_reply = False  # precede the next REPLY by a stale duplicate
        self.gap = 0  # skip this many seq numbers before the next REPLY
        self.tally = 0
        self.extra_ps = []  # more ps entries
        self.stopped = set()
        self.running = True
        self.ready = threading.Event()

    # -- plumbing
    def send(self, peer, kind, body, frm=(0, 0), to=None, seq=None):
        if seq is None:
            peer.out += 1
            seq = peer.out
        to = to if to is not None else (peer.id, 1)  # the client's own address
        head = HDR.pack(0xAA51, 1, kind, seq, 0, 0, frm[0], frm[1], to[0], to[1])
        data = b"" if body is None else compact(body).encode()
        try:
            self.sock.send_multipart([peer.rid, head, data])
        except zmq.ZMQError:  # EHOSTUNREACH (ROUTER_MANDATORY): the client has gone
            self.peers.pop(peer.rid, None)

    def run(self):
        ctx = zmq.Context.instance()
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.sock.bind(self.endpoint)
        self.ready.set()
        next_hb = time.monotonic()
        while self.running:
            if self.sock.poll(50):
                frames = self.sock.recv_multipart()
                with self.lock:
                    try:
                        self.handle(frames)
                    except Exception as exc:  # reported by tearDown, never a silent hang
                        self.seq_errors.append("mock broker: %r" % exc)
            if time.monotonic() >= next_hb and self.running:
                next_hb = time.monotonic() + self.heartbeat_ms / 1000.0
                with self.lock:
                    if not self.mute:
                        for p in list(self.peers.values()):  # send() may drop one
                            self.send(p, HEARTBEAT, {})
        self.sock.close(0)

    def stop(self):
        self.running = False
        self.join(5)

    def kinds(self, kind):
        with self.lock:
            return [e for e in self.log if e[0] == kind]

    # -- protocol
    def handle(self, frames):
        if len(frames) != 3 or len(frames[1]) != 52:
            self.seq_errors.append("bad frame count/header")
            return
        rid = frames[0]
        sig, ver, kind, seq, flags, gen, fs, fa, ts, ta = HDR.unpack(frames[1])
        body = json.loads(frames[2]) if frames[2] else None
        self.log.append((kind, body, (fs, fa), (ts, ta), seq))
        if sig != 0xAA51 or ver != 1 or seq == 0:
            self.seq_errors.append("bad header")
            return
        if self.mute:
            return
        if kind == HELLO:
            if fa != 1 or fs == 0:  # a client's own address C:0000000000000001
                self.seq_errors.append("HELLO from %x:%x" % (fs, fa))
            if seq != 1:
                self.seq_errors.append("HELLO with seq %d" % seq)
            p = Peer(rid, fs)
            p.last_in = 1
            if self.refuse:
                self.send(p, REPLY, {"welcome": False, "code": self.refuse,
                                     "error": "refused by the test"})
                return
            self.peers[rid] = p
            self.send(p, REPLY, {"welcome": True, "broker": BROKER_ID,
                                 "heartbeat_ms": self.heartbeat_ms,
                                 "lost_after_ms": self.lost_after_ms})
            return
        if self.forget:
            self.forget = False
            self.peers.clear()
        p = self.peers.get(rid)
        if p is None:
            stranger = Peer(rid, fs)
            if kind in (ACTOR, CLIENT, CONTROL):
                dl = {"code": "EUNREACH", "error": "unknown sender"}
                if body and "action" in body:
                    dl["action"] = body["action"]
                if body and "cid" in body:
                    dl["cid"] = body["cid"]
                self.send(stranger, DEAD_LETTER, dl, frm=(fs, fa), to=(ts, ta), seq=1)
            self.send(stranger, REPLY, {"welcome": False, "code": "EPROTO",
                                        "error": "say HELLO"}, seq=2)
            return
        if seq != p.last_in + 1:
            self.seq_errors.append("seq %d after %d" % (seq, p.last_in))
        if kind in (HEARTBEAT, CONTROL) and (fs, fa) != (p.id, 1):
            self.seq_errors.append("%d from %x:%x" % (kind, fs, fa))
        p.last_in = seq
        if kind == CONTROL:
            self.control(p, body, (fs, fa), ts, ta)
        elif kind == ACTOR:
            self.actor(p, body, (fs, fa), (ts, ta))

    def reply(self, p, frm, body):
        if self.gap:
            p.out += self.gap
            self.gap = 0
        if self.dup_reply:
            self.dup_reply = False
            stale = dict(body, result="STALE")
            self.send(p, REPLY, stale, to=frm, seq=max(p.out, 1))
        self.send(p, REPLY, body, to=frm)

    def control(self, p, body, frm, ts, ta):
        rid = body.get("id")
        op = body.get("op")

        def ok(result):
            self.reply(p, frm, {"id": rid, "ok": True, "result": result})

        def err(code, text):
            self.reply(p, frm, {"id": rid, "ok": False, "code": code, "error": text})

        if ts == 0:
            if op == "ps":
                ok([{"shard": hexid(SHARD_A), "roles": ["back"], "pid": BACK_PID, "host": "h",
                     "ws": None, "apps": ["accumulator.so"], "joined_ms": 5,
                     "heartbeat_age_ms": 100,
                     "load": {"actors": 4, "sessions": 2, "clients": 0, "client_sessions": 0,
                              "delivered": 10},
                     "msgs_per_s": 2.5},
                    {"shard": hexid(SHARD_B), "roles": ["front"], "pid": FRONT_PID, "host": "h",
                     "ws": "ws://127.0.0.1:8000", "apps": [], "joined_ms": 5,
                     "heartbeat_age_ms": 100,
                     "load": {"actors": 3, "sessions": 0, "clients": 3, "client_sessions": 2,
                              "delivered": 3},
                     "msgs_per_s": 0.0}] + self.extra_ps)
            elif op == "services":
                svc = [{"name": "adder", "address": ACC_ADDR, "shard": hexid(SHARD_A)}]
                if body.get("name") not in (None, "adder"):
                    svc = []
                ok(svc)
            elif op == "directory":
                ok({hexid(SHARD_A): {"shard": hexid(SHARD_A), "version": 1}})
            elif op == "stats":
                ok({"uptime_ms": 1000, "peers": 3, "shards": 2, "clients": 1, "routed": 7,
                    "dead_letters": 0, "malformed": 0, "gaps": 0, "duplicates": 0, "lost": 0,
                    "hash_tables": 0, "hash_keys": 0})
            else:
                err("EINVAL", "unknown operation '%s'" % op)
            return
        if ts not in (SHARD_A, SHARD_B):
            dl = {"code": "EDEAD", "error": "no such shard"}
            self.send(p, DEAD_LETTER, dl, frm=frm, to=(ts, ta))
            return
        if ta != ts:
            err("EINVAL", "control request not to the shard actor")
            return
        if op == "actors":
            if ts == SHARD_A:
                acts = [{"address": ACC_ADDR, "type": "accumulator", "depth": 0,
                         "state": "running"},
                        {"address": "%016x:%016x" % (SHARD_A, 0xbeef), "type": "hello",
                         "depth": 2, "state": "busy", "session": True}]
                ok(acts[: body.get("limit", 1000)])
            else:
                ok([])
        elif op == "sessions":
            ok([{"receptionist": "%016x:%016x" % (SHARD_B, 0x77), "type": "hello",
                 "session": "%016x:%016x" % (SHARD_A, 0xbeef), "peer": "127.0.0.1:5555"}]
               if ts == SHARD_B else [])
        elif op == "stats":
            ok({"delivered": 10 if ts == SHARD_A else 3, "sent_remote": 1, "recv_remote": 2,
                "gaps": 0})
        elif op == "stop":
            addr = body.get("address", "")
            if addr == ACC_ADDR and ACC not in self.stopped:
                self.stopped.add(ACC)
                ok(None)
            else:
                err("EDEAD", "no such actor %s" % addr)
        else:
            err("EINVAL", "unknown operation '%s'" % op)

    def actor(self, p, body, frm, to):
        ts, ta = to
        if ts not in (SHARD_A, SHARD_B):
            dl = {"code": "EDEAD", "error": "no such shard", "action": body.get("action", "")}
            if "cid" in body:
                dl["cid"] = body["cid"]
            self.send(p, DEAD_LETTER, dl, frm=frm, to=to)
            return
        if ta != ACC or ACC in self.stopped:
            dl = {"code": "EDEAD", "error": "no such actor", "action": body.get("action", "")}
            if "cid" in body:
                dl["cid"] = body["cid"]
            self.send(p, DEAD_LETTER, dl, frm=frm, to=to)
            return
        action, cid = body.get("action"), body.get("cid")
        sender = body.get("sender")

        def turn(message, last=False):
            b = {"action": "receive_reply", "cid": cid, "sender": ACC_ADDR, "message": message}
            if last:
                b["last"] = True
            self.send(p, ACTOR, b, frm=(SHARD_A, ACC), to=frm)

        def end(code=None, error=None):
            b = {"action": "end_conversation", "cid": cid}
            if code:
                b["code"], b["error"] = code, error
            self.send(p, ACTOR, b, frm=(SHARD_A, ACC), to=frm)

        if action in ("receive_reply", "end_conversation"):
            return
        if cid is not None and sender != "%016x:%016x" % frm:
            end("EINVAL", "sender does not match")
            return
        if action == "add":
            self.tally += int(body.get("number", 0))
            if cid:
                turn({"added": body.get("number")})
        elif action == "get_tally":
            turn({"tally": self.tally})
        elif action == "count":
            for i in range(1, 4):
                turn({"n": i}, last=(i == 3))
        elif action == "endless":
            for i in range(1, 3):
                turn({"n": i})
            end()
        elif action == "mute_end":
            end()
        elif action == "null":
            turn(None, last=True)
        elif action == "fail":
            end("EPARTNER", "the partner failed: boom")
        elif action == "silent":
            pass
        elif cid:
            end("EACTION", "no action '%s'" % action)


# ---------------------------------------------------------------------------


class Usage(unittest.TestCase):
    def test_no_command(self):
        p = run([])
        self.assertEqual(p.returncode, 2)
        self.assertIn("no command given", p.stderr)

    def test_unknown_command(self):
        p = run(["frobnicate"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", p.stderr)

    def test_unknown_option(self):
        p = run(["ps", "--frob"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown option '--frob'", p.stderr)
        self.assertIn("skickctl ps --help", p.stderr)

    def test_missing_value(self):
        p = run(["ps", "--timeout"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("needs a value", p.stderr)

    def test_bad_numbers(self):
        for args in (["ps", "--timeout", "abc"], ["up", "--front", "-1"],
                     ["up", "--port", "70000"], ["logs", "-n", "x"],
                     ["scale", "front=x"], ["scale", "middle=2"], ["scale", "front"]):
            p = run(args)
            self.assertEqual(p.returncode, 2, args)
            self.assertTrue(p.stderr.startswith("skickctl "), p.stderr)

    def test_argument_counts(self):
        for args in (["send", "a"], ["ask"], ["stop"], ["keygen", "d"], ["ps", "extra"],
                     ["scale"], ["actors", "a", "b"], ["logs", "a", "b"]):
            p = run(args)
            self.assertEqual(p.returncode, 2, args)

    def test_bad_address_and_json(self):
        good = "0123456789abcdef:0000000000000002"
        cases = [(["send", "nothex", "{}"], "not an actor address"),
                 (["ask", "0123456789ABCDEF:0000000000000002", '{"action":"x"}'],
                  "not an actor address"),
                 (["ask", "0123456789abcdef:0000000000000000", '{"action":"x"}'],
                  "not an actor address"),
                 (["send", good, "{bad json"], "not valid JSON"),
                 (["send", good, "[1,2]"], "string \"action\""),
                 (["send", good, '{"action":1}'], "string \"action\""),
                 (["stop", "xyz"], "not an actor address")]
        for args, text in cases:
            p = run(args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("EINVAL", p.stderr)
            self.assertIn(text, p.stderr)

    def test_bad_broker_endpoint(self):
        p = run(["up", "--broker", "udp://x:1"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("--broker", p.stderr)

    def test_missing_app(self):
        p = run(["up", "--app", "/nonexistent/app.so"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/app.so", p.stderr)

    def test_help(self):
        p = run(["--help"])
        self.assertEqual(p.returncode, 0)
        for cmd in ("up", "down", "scale", "ps", "actors", "services", "sessions", "send",
                    "ask", "stop", "stats", "logs", "keygen", "help"):
            self.assertRegex(p.stdout, r"\n  %s\b" % cmd)
        for opt in ("--run-dir", "--control", "--json", "--timeout", "--version"):
            self.assertIn(opt, p.stdout)
        self.assertEqual(run(["-h"]).stdout, p.stdout)
        self.assertEqual(run(["help"]).stdout, p.stdout)

    def test_command_help(self):
        for cmd, opt in (("up", "--node-arg"), ("down", "--wait"), ("scale", "front=N"),
                         ("ask", "--stream"), ("logs", "--follow"), ("keygen", "--force"),
                         ("send", "--no-confirm"), ("actors", "--limit"), ("ps", "messages per")):
            a = run([cmd, "--help"])
            b = run(["help", cmd])
            self.assertEqual(a.returncode, 0)
            self.assertEqual(b.returncode, 0)
            self.assertEqual(a.stdout, b.stdout)
            self.assertIn("Usage: skickctl [OPTIONS] %s" % cmd, a.stdout)
            self.assertIn(opt, a.stdout)
        p = run(["help", "nope"])
        self.assertEqual(p.returncode, 2)

    def test_version(self):
        p = run(["--version"])
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^skickctl \d+\.\d+\.\d+\n$")

    def test_no_broker(self):
        d = tempfile.mkdtemp(prefix="skick-cli-")
        try:
            t0 = time.monotonic()
            for args in (["ps"], ["--json", "ps"], ["stats"], ["actors"], ["services"],
                         ["sessions"], ["ask", ACC_ADDR, '{"action":"get_tally"}'],
                         ["send", ACC_ADDR, '{"action":"add","number":1}'],
                         ["stop", ACC_ADDR]):
                p = run(args, run_dir=d)
                self.assertEqual(p.returncode, 1, args)
                self.assertIn("skickctl: EUNREACH: ", p.stderr)
                self.assertIn("%s/control" % d, p.stderr)
            self.assertLess(time.monotonic() - t0, 10)
            p = run(["--json", "ps"], run_dir=d)
            err = json.loads(p.stdout)
            self.assertEqual(err["code"], "EUNREACH")
            self.assertFalse(err["ok"])
            # down/scale without a cluster.json
            p = run(["down"], run_dir=d)
            self.assertEqual(p.returncode, 1)
            self.assertIn("ENOTFOUND", p.stderr)
            p = run(["scale", "front=1"], run_dir=d)
            self.assertEqual(p.returncode, 1)
            self.assertIn("ENOTFOUND", p.stderr)
            p = run(["logs"], run_dir=d)
            self.assertEqual(p.returncode, 1)
            self.assertIn("ENOTFOUND", p.stderr)
        finally:
            shutil.rmtree(d)

    def test_tcp_no_broker_times_out(self):
        port = free_ports(1)
        t0 = time.monotonic()
        p = run(["--control", "tcp://127.0.0.1:%d" % port, "--timeout", "700", "ps"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("EUNREACH", p.stderr)
        self.assertLess(time.monotonic() - t0, 5)

    def test_global_options_anywhere(self):
        d = tempfile.mkdtemp(prefix="skick-cli-")
        try:
            p = run(["ps", "--run-dir", d, "--json"])
            self.assertEqual(p.returncode, 1)
            self.assertIn("%s/control" % d, p.stderr)
            self.assertEqual(json.loads(p.stdout)["code"], "EUNREACH")
            p = run(["--control", "ipc://%s/other" % d, "ps"])
            self.assertIn("%s/other" % d, p.stderr)
            p = run(["ps"], env={"SKICK_CONTROL": "ipc://%s/env" % d})
            self.assertIn("%s/env" % d, p.stderr)
        finally:
            shutil.rmtree(d)


class Keygen(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="skick-keys-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_keygen(self):
        kd = os.path.join(self.dir, "k")
        p = run(["keygen", kd, "alice"])
        self.assertEqual(p.returncode, 0, p.stderr)
        pub, sec = os.path.join(kd, "alice.cert"), os.path.join(kd, "alice.cert_secret")
        self.assertIn(pub, p.stdout)
        self.assertIn("mode 0600", p.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(sec).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(pub).st_mode), 0o644)
        pubtext, sectext = read_text(pub), read_text(sec)
        key = re.search(r'public-key = "(.{40})"', pubtext).group(1)
        self.assertIn("public key: %s" % key, p.stdout)
        self.assertNotIn("secret-key", pubtext)
        self.assertIn('secret-key = "', sectext)
        self.assertIn('public-key = "%s"' % key, sectext)
        self.assertIn('name = "alice"', pubtext)
        # the keys are a real CURVE pair (pyzmq derives the public key)
        seckey = re.search(r'secret-key = "(.{40})"', sectext).group(1)
        self.assertEqual(zmq.curve_public(seckey.encode()).decode(), key)
        # no overwrite without --force; --force makes a new pair
        p = run(["keygen", kd, "alice"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("EINVAL", p.stderr)
        self.assertIn("--force", p.stderr)
        p = run(["--json", "keygen", "--force", kd, "alice"])
        self.assertEqual(p.returncode, 0)
        j = json.loads(p.stdout)
        self.assertEqual(j["public"], pub)
        self.assertEqual(j["secret"], sec)
        self.assertNotEqual(j["public_key"], key)
        self.assertEqual(len(j["public_key"]), 40)

    def test_bad_name(self):
        for name in ("../x", ".hidden", "a/b", ""):
            p = run(["keygen", self.dir, name])
            self.assertEqual(p.returncode, 1, name)
            self.assertIn("EINVAL", p.stderr)


def free_ports(n):
    """A base port p with p..p+n-1 free on 127.0.0.1."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
        s.close()
        if base + n > 65000:
            continue
        ok = True
        for i in range(n):
            t = socket.socket()
            try:
                t.bind(("127.0.0.1", base + i))
            except OSError:
                ok = False
            t.close()
        if ok:
            return base
    raise RuntimeError("no free ports")


class Mock(unittest.TestCase):
    """Every query command and the client library against MockBroker."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="skick-cli-")
        self.broker = MockBroker("ipc://%s/control" % self.dir)
        self.broker.start()
        self.broker.ready.wait(5)
        # processes as `up` would record them: names by pid
        with open(os.path.join(self.dir, "cluster.json"), "w") as f:
            json.dump({"version": 1, "control": "ipc://%s/control" % self.dir,
                       "processes": [{"name": "front-1", "role": "front", "pid": FRONT_PID,
                                      "start_ticks": start_ticks(FRONT_PID)},
                                     {"name": "back-1", "role": "back", "pid": BACK_PID,
                                      "start_ticks": start_ticks(BACK_PID)}]}, f)

    def tearDown(self):
        self.broker.stop()
        self.assertEqual(self.broker.seq_errors, [])
        shutil.rmtree(self.dir)

    def ctl(self, *args, **kw):
        return run(list(args), run_dir=self.dir, **kw)

    def test_hello(self):
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        hello = self.broker.kinds(HELLO)
        self.assertEqual(len(hello), 1)
        body = hello[0][1]
        self.assertEqual(body["peer"], "client")
        self.assertEqual(body["pid"] > 0, True)
        self.assertIn("host", body)
        self.assertRegex(body["version"], r"^\d+\.\d+\.\d+$")
        self.assertNotIn("roles", body)
        self.assertEqual(hello[0][2][1], 1)  # from CLIENTID:1
        self.assertEqual(hello[0][3], (0, 0))
        control = self.broker.kinds(CONTROL)[0]
        self.assertEqual(control[2], (hello[0][2][0], 1))  # from CLIENTID:1
        self.assertEqual(control[3], (0, 0))  # to the broker

    def test_ps(self):
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "SHARD", "ROLE", "PID", "ACTORS",
                                            "CLIENTS", "SESSIONS", "MSGS/S", "WS"])
        # a front shard: its clients and its client sessions; a back shard: its
        # session actors
        self.assertEqual(lines[1].split(), ["front-1", hexid(SHARD_B), "front", str(FRONT_PID),
                                            "3", "3", "2", "0.0", "ws://127.0.0.1:8000"])
        self.assertEqual(lines[2].split(), ["back-1", hexid(SHARD_A), "back", str(BACK_PID),
                                            "4", "-", "2", "2.5", "-"])
        self.assertEqual(len(lines), 3)
        p = self.ctl("ps", "--json")
        self.assertEqual(p.returncode, 0)
        j = json.loads(p.stdout)
        self.assertEqual([e["name"] for e in j], ["front-1", "back-1"])
        self.assertEqual([e["state"] for e in j], ["running", "running"])
        self.assertEqual(j[1]["load"]["actors"], 4)
        self.assertEqual(j[1]["msgs_per_s"], 2.5)

    def dead_pid(self):
        p = subprocess.Popen(["/bin/true"])
        p.wait()
        return p.pid

    def record(self, *extra):
        path = os.path.join(self.dir, "cluster.json")
        with open(path) as f:
            c = json.load(f)
        c["processes"].extend(extra)
        with open(path, "w") as f:
            json.dump(c, f)

    def test_ps_dead_shards(self):
        # back-2 died (its watcher wrote how) and the broker still lists it;
        # back-3 died and the broker no longer knows it; front-2 was never seen
        # ended (no watcher record)
        b2, b3, f2 = self.dead_pid(), self.dead_pid(), self.dead_pid()
        self.record({"name": "back-2", "role": "back", "pid": b2},
                    {"name": "back-3", "role": "back", "pid": b3},
                    {"name": "front-2", "role": "front", "pid": f2})
        for name, pid, status in (("back-2", b2, 9), ("back-3", b3, 3 << 8)):
            with open(os.path.join(self.dir, name + ".exit"), "w") as f:
                f.write("%d %d\n" % (pid, status))
        with open(os.path.join(self.dir, "front-2.exit"), "w") as f:
            f.write("%d 0\n" % (f2 + 1))  # another process of that name
        self.broker.extra_ps = [{"shard": "00000000000000b2", "roles": ["back"], "pid": b2,
                                 "load": {"actors": 9, "sessions": 0}, "msgs_per_s": 0.0}]
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual([l.split()[0] for l in lines[1:3]], ["front-1", "back-1"])
        self.assertIn("back-2 (pid %d): dead, killed by signal 9 (SIGKILL) (the broker lists it "
                      "until it declares the shard lost)" % b2, lines)
        self.assertIn("back-3 (pid %d): dead, exited with status 3" % b3, lines)
        self.assertIn("front-2 (pid %d): dead, ended, how is not known" % f2, lines)
        self.assertNotIn("00000000000000b2", p.stdout)  # not a row of the table
        j = json.loads(self.ctl("--json", "ps").stdout)
        by = {e["name"]: e for e in j}
        self.assertEqual(by["back-2"]["state"], "dead")
        self.assertEqual(by["back-2"]["shard"], "00000000000000b2")
        self.assertEqual(by["back-2"]["ended"], "killed by signal 9 (SIGKILL)")
        self.assertEqual({k: by["back-3"][k] for k in ("state", "shard", "pid", "exit_status")},
                         {"state": "dead", "shard": None, "pid": b3, "exit_status": 3})
        self.assertEqual(by["front-2"]["ended"], "ended, how is not known")
        self.assertNotIn("exit_status", by["front-2"])

    def test_ps_dead_broker(self):
        # the record's broker has died: ps says so at once, with how and what still runs
        bp = self.dead_pid()
        self.record({"name": "broker", "role": "broker", "pid": bp})
        with open(os.path.join(self.dir, "broker.exit"), "w") as f:
            f.write("%d 9\n" % bp)
        p = self.ctl("--timeout", "60000", "ps", timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("skickctl: EUNREACH: the broker of the cluster in %s is not running: pid %d "
                      "killed by signal 9 (SIGKILL); shards still running, cut off: front-1, "
                      "back-1. `skickctl scale` (or `skickctl up`) restarts the broker as "
                      "recorded, and they join it" % (os.path.realpath(self.dir), bp), p.stderr)
        self.assertEqual(self.broker.kinds(HELLO), [])  # it did not try

    def test_ps_names_without_cluster(self):
        os.unlink(os.path.join(self.dir, "cluster.json"))
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.splitlines()[1].startswith("-  "))

    def test_actors(self):
        p = self.ctl("actors")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["SHARD", "ADDRESS", "TYPE", "DEPTH", "STATE"])
        self.assertEqual(lines[1].split(), ["back-1", ACC_ADDR, "accumulator", "0", "running"])
        self.assertEqual(lines[2].split(), ["back-1", "%016x:%016x" % (SHARD_A, 0xbeef),
                                            "hello", "(session)", "2", "busy"])
        self.assertEqual(len(lines), 3)
        for sel in ("back-1", hexid(SHARD_A)):
            j = json.loads(self.ctl("--json", "actors", sel).stdout)
            self.assertEqual(len(j), 1)
            self.assertEqual(j[0]["shard"], hexid(SHARD_A))
            self.assertEqual(j[0]["name"], "back-1")
            self.assertEqual(j[0]["actors"][0]["address"], ACC_ADDR)
        j = json.loads(self.ctl("--json", "actors", "--limit", "1", "back-1").stdout)
        self.assertEqual(len(j[0]["actors"]), 1)
        p = self.ctl("actors", "front-9")
        self.assertEqual(p.returncode, 1)
        self.assertIn("ENOTFOUND", p.stderr)
        p = self.ctl("actors", "0000000000000abc")  # an id the broker does not know
        self.assertEqual(p.returncode, 1)
        self.assertIn("EDEAD", p.stderr)

    def test_services(self):
        p = self.ctl("services")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "ADDRESS", "SHARD"])
        self.assertEqual(lines[1].split(), ["adder", ACC_ADDR, "back-1", "(%s)" % hexid(SHARD_A)])
        j = json.loads(self.ctl("services", "--json", "adder").stdout)
        self.assertEqual(j, [{"name": "adder", "address": ACC_ADDR, "shard": hexid(SHARD_A)}])
        self.assertEqual(json.loads(self.ctl("services", "--json", "nope").stdout), [])
        self.assertEqual(self.broker.kinds(CONTROL)[-1][1]["name"], "nope")

    def test_sessions(self):
        p = self.ctl("sessions")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["SHARD", "RECEPTIONIST", "SESSION", "TYPE", "PEER"])
        self.assertEqual(lines[1].split()[0], "front-1")
        self.assertEqual(lines[1].split()[3:], ["hello", "127.0.0.1:5555"])
        j = json.loads(self.ctl("--json", "sessions").stdout)
        self.assertEqual(len(j), 1)  # front shards only
        self.assertEqual(j[0]["sessions"][0]["type"], "hello")
        shard_ops = [(e[3][0], e[1]["op"]) for e in self.broker.kinds(CONTROL) if e[3][0]]
        self.assertNotIn((SHARD_A, "sessions"), shard_ops)

    def test_stats(self):
        p = self.ctl("stats")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Broker", p.stdout)
        self.assertRegex(p.stdout, r"routed\s+7\n")
        self.assertRegex(p.stdout, r"COUNTER\s+front-1\s+back-1\n")
        self.assertRegex(p.stdout, r"delivered\s+3\s+10\n")
        j = json.loads(self.ctl("stats", "--json").stdout)
        self.assertEqual(j["broker"]["routed"], 7)
        self.assertEqual({s["name"]: s["stats"]["delivered"] for s in j["shards"]},
                         {"front-1": 3, "back-1": 10})

    def test_send(self):
        p = self.ctl("send", ACC_ADDR, '{"action":"add","number":5}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "sent to %s\n" % ACC_ADDR)
        self.assertEqual(self.broker.tally, 5)
        actor = self.broker.kinds(ACTOR)[-1]
        self.assertEqual(actor[1], {"action": "add", "number": 5})
        self.assertEqual(actor[3], (SHARD_A, ACC))
        self.assertEqual(actor[2][1], 1)
        j = json.loads(self.ctl("--json", "send", "--no-confirm", ACC_ADDR,
                                '{"action":"add","number":2}').stdout)
        self.assertEqual(j, {"ok": True, "to": ACC_ADDR, "confirmed": False})
        # confirmed sends report dead letters: no actor, no shard
        p = self.ctl("send", "%016x:0000000000000bad" % SHARD_A, '{"action":"add"}')
        self.assertEqual(p.returncode, 1)
        self.assertIn("skickctl: EDEAD: ", p.stderr)
        self.assertIn("no such actor", p.stderr)
        p = self.ctl("send", "00000000000000ff:0000000000000bad", '{"action":"add"}')
        self.assertEqual(p.returncode, 1)
        self.assertIn("EDEAD", p.stderr)
        self.assertIn("no such shard", p.stderr)

    def test_ask(self):
        self.broker.tally = 41
        p = self.ctl("ask", ACC_ADDR, '{"action":"get_tally"}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"tally": 41})
        opener = self.broker.kinds(ACTOR)[0][1]
        self.assertRegex(opener["cid"], r"^[0-9a-f]{32}$")
        client = self.broker.kinds(HELLO)[0][2][0]
        self.assertEqual(opener["sender"], "%016x:0000000000000001" % client)
        # no "last" in the answer: the client closes the conversation
        end = self.broker.kinds(ACTOR)[-1][1]
        self.assertEqual(end, {"action": "end_conversation", "cid": opener["cid"]})
        p = self.ctl("--json", "ask", ACC_ADDR, '{"action":"add","number":1}')
        self.assertEqual(json.loads(p.stdout), {"added": 1})
        # an answer with "last" needs no end_conversation; JSON null answers
        n = len(self.broker.kinds(ACTOR))
        p = self.ctl("ask", ACC_ADDR, '{"action":"null"}')
        self.assertEqual((p.returncode, p.stdout), (0, "null\n"))
        self.assertEqual(len(self.broker.kinds(ACTOR)), n + 1)

    def test_ask_errors(self):
        cases = [('{"action":"fail"}', "EPARTNER", "boom"),
                 ('{"action":"nope"}', "EACTION", "no action 'nope'"),
                 ('{"action":"mute_end"}', "ECLOSED", "without an answer")]
        for msg, code, text in cases:
            p = self.ctl("ask", ACC_ADDR, msg)
            self.assertEqual(p.returncode, 1, msg)
            self.assertIn("skickctl: %s: " % code, p.stderr)
            self.assertIn(text, p.stderr)
            self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        p = self.ctl("ask", "%016x:0000000000000bad" % SHARD_A, '{"action":"x"}')
        self.assertEqual(p.returncode, 1)
        self.assertIn("EDEAD", p.stderr)
        p = self.ctl("--json", "ask", "00000000000000ff:0000000000000bad", '{"action":"x"}')
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout)["code"], "EDEAD")

    def test_ask_timeout(self):
        t0 = time.monotonic()
        p = self.ctl("ask", "--timeout", "1600", ACC_ADDR, '{"action":"silent"}')
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 1)
        self.assertIn("ETIMEDOUT", p.stderr)
        self.assertGreater(took, 1.5)
        self.assertLess(took, 6)
        end = self.broker.kinds(ACTOR)[-1][1]
        self.assertEqual(end["action"], "end_conversation")
        self.assertEqual(end["code"], "ETIMEDOUT")
        # the client kept the link alive while it waited
        self.assertGreaterEqual(len(self.broker.kinds(HEARTBEAT)), 2)
        self.assertEqual(self.broker.kinds(HEARTBEAT)[0][1], {})

    def test_stream(self):
        p = self.ctl("ask", "--stream", ACC_ADDR, '{"action":"count"}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines(), ['{"n":1}', '{"n":2}', '{"n":3}'])
        self.assertEqual(self.broker.kinds(ACTOR)[-1][1]["action"], "count")  # no end needed
        p = self.ctl("ask", "--stream", ACC_ADDR, '{"action":"endless"}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines(), ['{"n":1}', '{"n":2}'])
        p = self.ctl("ask", "--stream", ACC_ADDR, '{"action":"fail"}')
        self.assertEqual(p.returncode, 1)
        self.assertIn("EPARTNER", p.stderr)

    def test_stop(self):
        p = self.ctl("stop", ACC_ADDR)
        self.assertEqual((p.returncode, p.stdout), (0, "stopped %s\n" % ACC_ADDR), p.stderr)
        req = [e for e in self.broker.kinds(CONTROL) if e[1]["op"] == "stop"][0]
        self.assertEqual(req[3], (SHARD_A, SHARD_A))
        self.assertEqual(req[1]["address"], ACC_ADDR)
        p = self.ctl("--json", "stop", ACC_ADDR)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout)["code"], "EDEAD")
        self.assertIn("skickctl: EDEAD: stop: no such actor", p.stderr)

    def test_say_hello_again(self):
        self.broker.forget = True
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.broker.kinds(HELLO)), 2)
        self.broker.forget = True
        p = self.ctl("ask", ACC_ADDR, '{"action":"get_tally"}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"tally": 0})
        self.broker.forget = True
        p = self.ctl("send", ACC_ADDR, '{"action":"add","number":3}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.broker.tally, 3)

    def test_refused(self):
        self.broker.refuse = "EINVAL"
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 1)
        self.assertIn("skickctl: EINVAL: ", p.stderr)
        self.assertIn("refused by the test", p.stderr)

    def test_broker_goes_silent(self):
        self.broker.lost_after_ms = 1000
        self.broker.mute = False
        orig = self.broker.control

        def mute_then(p, body, frm, ts, ta):
            self.broker.mute = True
        self.broker.control = mute_then
        t0 = time.monotonic()
        p = self.ctl("--timeout", "20000", "ps")
        self.assertEqual(p.returncode, 1)
        self.assertIn("EUNREACH", p.stderr)
        self.assertIn("silent", p.stderr)
        self.assertLess(time.monotonic() - t0, 8)
        self.broker.control = orig
        self.broker.mute = False

    def test_duplicate_and_gap(self):
        self.broker.dup_reply = True
        p = self.ctl("--json", "services")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)[0]["name"], "adder")
        self.broker.gap = 3
        p = self.ctl("--json", "services")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("3 envelope(s) from the broker missing", p.stderr)

    def test_unknown_op_and_example(self):
        # the example program: a confirmed send, then an ask
        self.broker.tally = 10
        ex = os.path.join(BUILD, "cli", "skick-client-example")
        p = subprocess.run([ex, "ipc://%s/control" % self.dir, ACC_ADDR], capture_output=True,
                           text=True, timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"tally": 15})
        p = subprocess.run([ex, "ipc://%s/control" % self.dir, "%016x:0000000000000bad" % SHARD_A],
                           capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(p.returncode, 1)
        self.assertIn("send: EDEAD", p.stderr)
        self.assertFalse(SANITIZER.search(p.stderr), p.stderr)


# ---------------------------------------------------------------------------
# The real cluster


async def actl(run_dir, *args):
    """skickctl inside an asyncio scenario (a websocket client stays open); its stdout."""
    import asyncio
    proc = await asyncio.create_subprocess_exec(
        SKICKCTL, "--run-dir", run_dir, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), WAIT)
    return out.decode()


async def poll_json(run_dir, args, done, within):
    """`skickctl --json ARGS` every 0.2 s until done(result) or `within` seconds; the last result."""
    import asyncio
    deadline = time.monotonic() + within
    while True:
        j = json.loads(await actl(run_dir, "--json", *args))
        if done(j) or time.monotonic() > deadline:
            return j
        await asyncio.sleep(0.2)


def cluster_prerequisites():
    broker = os.path.join(BUILD, "broker", "skick-broker")
    node = os.path.join(BUILD, "node", "skick-node")
    app = os.path.join(BUILD, "examples", "accumulator.so")
    missing = []
    if not os.path.exists(os.path.join(BUILD, "examples", "hello.so")):
        missing.append("examples/hello.so is not built")
    if not os.access(broker, os.X_OK):
        missing.append("skick-broker is not built (%s): broker/ is not there yet" % broker)
    if not os.access(node, os.X_OK):
        missing.append("skick-node is not built (%s)" % node)
    else:
        h = subprocess.run([node, "--help"], capture_output=True, text=True, timeout=10)
        if "--broker" not in h.stdout:
            missing.append("skick-node has no --broker option: shard cluster support "
                           "(node/) is not there yet")
    if not os.path.exists(app):
        missing.append("examples/accumulator.so is not built (%s)" % app)
    return missing


class Cluster(unittest.TestCase):
    """`skickctl up` with real processes; skipped (reported MISSING) when the
    broker or the shards' cluster support are not built."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="skick-cl-")
        cls.run_dir = os.path.join(cls.dir, "run")
        cls.app = os.path.join(BUILD, "examples", "accumulator.so")
        cls.bport = free_ports(3)
        cls.wport = free_ports(4)
        cls.up = None

    @classmethod
    def tearDownClass(cls):
        run(["down", "--wait", "3000"], run_dir=cls.run_dir, check_sanitizer=False)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        if MISSING:
            self.skipTest("MISSING: " + "; ".join(MISSING))

    def ctl(self, *args, **kw):
        return run(list(args), run_dir=self.run_dir, **kw)

    def procs(self):
        with open(os.path.join(self.run_dir, "cluster.json")) as f:
            return {p["name"]: p for p in json.load(f)["processes"]}

    def ensure_up(self):
        if Cluster.up is None:
            p = self.ctl("up", "--front", "1", "--back", "1", "--app", self.app,
                         "--app", os.path.join(BUILD, "examples", "hello.so"),
                         "--broker", "tcp://127.0.0.1:%d" % self.bport,
                         "--port", str(self.wport), "--wait", "20000", timeout=60)
            Cluster.up = p
        self.assertEqual(Cluster.up.returncode, 0, Cluster.up.stdout + Cluster.up.stderr)

    def accumulator(self):
        j = json.loads(self.ctl("--json", "actors", "back-1").stdout)
        accs = [a["address"] for a in j[0]["actors"] if a["type"] == "accumulator"]
        self.assertTrue(accs, j)
        return accs[0]

    def test_1_up(self):
        self.ensure_up()
        out = Cluster.up.stdout
        self.assertIn("Cluster up in %s" % os.path.realpath(self.run_dir), out)
        self.assertRegex(out, r"\nNAME\s+SHARD\s+ROLE\s+PID\s+ACTORS\s+CLIENTS\s+SESSIONS\s+MSGS/S"
                         r"\s+WS\n")
        self.assertRegex(out, r"\nfront-1\s+[0-9a-f]{16}\s+front\s+\d+")
        self.assertRegex(out, r"\nback-1\s+[0-9a-f]{16}\s+back\s+\d+")
        self.assertIn("Connect: ws://127.0.0.1:%d/" % self.wport, out)
        self.assertIn("Stop:    skickctl --run-dir", out)
        procs = self.procs()
        self.assertEqual(sorted(procs), ["back-1", "broker", "front-1"])
        for name, p in procs.items():
            pidfile = os.path.join(self.run_dir, name + ".pid")
            self.assertEqual(int(read_text(pidfile)), p["pid"])
            os.kill(p["pid"], 0)
            self.assertTrue(os.path.exists(os.path.join(self.run_dir, "logs", name + ".log")))
            # detached: its own session
            self.assertEqual(os.getsid(p["pid"]), p["pid"])
        self.assertIn("--front", procs["front-1"]["argv"])
        self.assertIn(str(self.wport), procs["front-1"]["argv"])
        self.assertNotIn("--app", procs["front-1"]["argv"])
        self.assertIn(self.app, procs["back-1"]["argv"])
        self.assertIn("--control", procs["broker"]["argv"])
        mode = stat.S_IMODE(os.stat(self.run_dir).st_mode)
        self.assertEqual(mode, 0o700)
        # a second up refuses
        p = self.ctl("up", "--wait", "2000")
        self.assertEqual(p.returncode, 1)
        self.assertIn("already running", p.stderr)

    def test_2_ps(self):
        self.ensure_up()
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"front-1\s+[0-9a-f]{16}\s+front\s+%d\s+\d+\s+\d+\s+\d+\s+"
                         r"[\d.]+\s+ws://127.0.0.1:%d" % (self.procs()["front-1"]["pid"], self.wport))
        self.assertRegex(p.stdout, r"back-1\s+[0-9a-f]{16}\s+back\s+%d\s+\d+\s+-\s+\d+\s+"
                         r"[\d.]+\s+-" % self.procs()["back-1"]["pid"])
        j = json.loads(self.ctl("--json", "ps").stdout)
        self.assertEqual(sorted(e["name"] for e in j), ["back-1", "front-1"])
        for e in j:
            for key in ("shard", "roles", "pid", "host", "ws", "apps", "joined_ms",
                        "heartbeat_age_ms", "load", "msgs_per_s"):
                self.assertIn(key, e)

    def test_3_actors_services(self):
        self.ensure_up()
        acc = self.accumulator()
        p = self.ctl("actors")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"back-1\s+%s\s+accumulator\s+\d+\s+(running|busy|starting)"
                         % acc)
        p = self.ctl("services")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"adder\s+%s\s+back-1" % acc)
        j = json.loads(self.ctl("--json", "services", "adder").stdout)
        self.assertEqual([s["address"] for s in j], [acc])

    def test_4_send_ask(self):
        self.ensure_up()
        acc = self.accumulator()
        p = self.ctl("ask", acc, '{"action":"add","number":1000000}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"added": 1000000})
        p = self.ctl("send", acc, '{"action":"add","number":1000000}')
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.ctl("ask", acc, '{"action":"get_tally"}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreaterEqual(json.loads(p.stdout)["tally"], 2000000)
        shard = acc.split(":")[0]
        p = self.ctl("ask", shard + ":0000000000000bad", '{"action":"get_tally"}')
        self.assertEqual(p.returncode, 1)
        self.assertIn("EDEAD", p.stderr)
        p = self.ctl("send", shard + ":0000000000000bad", '{"action":"get_tally"}')
        self.assertEqual(p.returncode, 1)
        self.assertIn("EDEAD", p.stderr)
        p = self.ctl("ask", "00000000000000ff:0000000000000bad", '{"action":"get_tally"}')
        self.assertEqual(p.returncode, 1)
        self.assertIn("EDEAD", p.stderr)

    def test_4b_refused_openers(self):
        # the shard ends a refused opener at once (PROTOCOL.md, Conversations)
        self.ensure_up()
        acc = self.accumulator()
        for msg, code in (('{"action":"add","number":"x"}', "ESCHEMA"),
                          ('{"action":"no_such_action"}', "EACTION")):
            p = self.ctl("--timeout", "3000", "ask", acc, msg)
            self.assertEqual(p.returncode, 1, msg)
            refused = [l for l in read_text(os.path.join(self.run_dir, "logs", "broker.log"))
                       .splitlines() if "refused" in l]
            self.assertIn("skickctl: %s: " % code, p.stderr,
                          "the shard's end_conversation did not reach the caller; broker log:\n"
                          + "\n".join(refused[-3:]))

    def test_5_stats_sessions_logs(self):
        self.ensure_up()
        p = self.ctl("stats")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"routed\s+\d+")
        self.assertRegex(p.stdout, r"COUNTER\s+front-1\s+back-1|COUNTER\s+back-1\s+front-1")
        j = json.loads(self.ctl("--json", "stats").stdout)
        for key in ("uptime_ms", "peers", "shards", "clients", "routed", "dead_letters",
                    "malformed", "gaps", "duplicates", "lost"):
            self.assertIn(key, j["broker"])
        self.assertEqual(j["broker"]["shards"], 2)
        self.assertEqual(len(j["shards"]), 2)
        for s in j["shards"]:
            for key in ("sent_remote", "recv_remote", "gaps"):
                self.assertIn(key, s["stats"])
        p = self.ctl("sessions")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("SHARD"))
        self.assertEqual(json.loads(self.ctl("--json", "sessions").stdout)[0]["sessions"], [])
        p = self.ctl("logs", "broker", "-n", "3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLessEqual(len(p.stdout.splitlines()), 3)
        p = self.ctl("logs", "-n", "2")
        self.assertEqual(p.returncode, 0)
        for name in ("broker", "front-1", "back-1"):
            self.assertIn("==> %s <==" % name, p.stdout)
        j = json.loads(self.ctl("--json", "logs", "-n", "100000").stdout)
        self.assertEqual(sorted(j), ["back-1", "broker", "front-1"])
        self.assertTrue(j["broker"][0].startswith("==== skickctl: starting:"), j["broker"][0])
        self.assertEqual(len(json.loads(self.ctl("--json", "logs", "-n", "2").stdout)["broker"]),
                         2)
        p = self.ctl("logs", "nope")
        self.assertEqual(p.returncode, 1)
        self.assertIn("ENOTFOUND", p.stderr)

    def test_5b_sessions_live(self):
        # a websocket session on front-1, placed on back-1 (hello.so)
        import asyncio
        import websockets

        async def scenario():
            url = "ws://127.0.0.1:%d/" % self.wport
            async with websockets.connect(url, open_timeout=10) as ws:
                await ws.send(compact({"session_type": "hello"}))
                await asyncio.wait_for(ws.recv(), 10)  # the session's greeting
                j = await poll_json(self.run_dir, ["sessions"], lambda j: j[0].get("sessions"),
                                    10)
                return j, await actl(self.run_dir, "sessions")

        j, table = asyncio.run(scenario())
        self.assertEqual(j[0]["name"], "front-1")
        sess = j[0]["sessions"]
        self.assertEqual(len(sess), 1, j)
        self.assertEqual(sess[0]["type"], "hello")
        back = [e["shard"] for e in json.loads(self.ctl("--json", "ps").stdout)
                if e["name"] == "back-1"][0]
        self.assertTrue(sess[0]["session"].startswith(back + ":"), sess)  # on the back shard
        self.assertRegex(table, r"front-1\s+[0-9a-f]{16}:[0-9a-f]{16}\s+%s:[0-9a-f]{16}\s+hello"
                         % back)

    def test_5c_ps_session_counts(self):
        # one client with a session, one still in the handshake: the front
        # shard shows 2 clients and 1 (client) session, the back shard 1
        # session (actor)
        import asyncio
        import websockets

        def load(j, name):
            return [e for e in j if e["name"] == name][0]["load"]

        def counts(j):
            return (load(j, "front-1").get("clients"), load(j, "front-1").get("client_sessions"),
                    load(j, "back-1").get("sessions"))

        async def scenario():
            url = "ws://127.0.0.1:%d/" % self.wport
            async with websockets.connect(url, open_timeout=10) as ws, \
                    websockets.connect(url, open_timeout=10):
                await ws.send(compact({"session_type": "hello"}))
                await asyncio.wait_for(ws.recv(), 10)  # the session's greeting
                # heartbeats carry the load
                j = await poll_json(self.run_dir, ["ps"], lambda j: counts(j) == (2, 1, 1), 15)
                return counts(j), await actl(self.run_dir, "ps")

        self.ensure_up()
        got, table = asyncio.run(scenario())
        self.assertEqual(got, (2, 1, 1))
        rows = {l.split()[0]: l.split() for l in table.splitlines()[1:]}
        self.assertEqual(rows["front-1"][5:7], ["2", "1"], table)  # CLIENTS, SESSIONS
        self.assertEqual(rows["back-1"][5:7], ["-", "1"], table)

    def test_6_stop(self):
        self.ensure_up()
        acc = self.accumulator()
        p = self.ctl("stop", acc)
        self.assertEqual((p.returncode, p.stdout), (0, "stopped %s\n" % acc), p.stderr)
        p = self.ctl("ask", acc, '{"action":"get_tally"}')
        self.assertEqual(p.returncode, 1)
        self.assertIn("EDEAD", p.stderr)
        p = self.ctl("stop", acc)
        self.assertEqual(p.returncode, 1)
        self.assertIn("EDEAD", p.stderr)

    def test_7_scale(self):
        self.ensure_up()
        p = self.ctl("scale", "front=2", "back=2", timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("started front-2", p.stdout)
        self.assertIn("started back-2", p.stdout)
        self.assertIn("ws://127.0.0.1:%d/" % (self.wport + 1), p.stdout)
        j = json.loads(self.ctl("--json", "ps").stdout)
        self.assertEqual(sorted(e["name"] for e in j), ["back-1", "back-2", "front-1", "front-2"])
        p = self.ctl("--json", "scale", "back=1", timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual(j["stopped"], ["back-2"])
        self.assertEqual(j["started"], [])
        self.assertEqual(sorted(self.procs()), ["back-1", "broker", "front-1", "front-2"])
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "back-2.pid")))
        p = self.ctl("scale", "front=1", timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("stopped front-2", p.stdout)
        p = self.ctl("scale", "front=1")
        self.assertIn("nothing to do", p.stdout)

    def test_8_logs_follow(self):
        self.ensure_up()
        e = dict(os.environ, SKICK_RUN_DIR=self.run_dir)
        f = subprocess.Popen([SKICKCTL, "logs", "-f", "-n", "0", "front-1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
        time.sleep(0.5)
        with open(os.path.join(self.run_dir, "logs", "front-1.log"), "a") as log:
            log.write("marker line 1\nmarker line 2\n")
        time.sleep(1.0)
        f.send_signal(signal.SIGINT)
        out, err = f.communicate(timeout=10)
        self.assertEqual(f.returncode, 0, err)
        self.assertIn("marker line 1\nmarker line 2\n", out)

    def test_9_down(self):
        self.ensure_up()
        pids = {n: p["pid"] for n, p in self.procs().items()}
        p = self.ctl("down", timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "PID", "RESULT"])
        self.assertEqual(lines[-1].split()[0], "broker")  # the broker last
        for name, pid in pids.items():
            self.assertRegex(p.stdout, r"%s\s+%d\s+stopped" % (name, pid))
            self.assertFalse(os.path.exists(os.path.join(self.run_dir, name + ".pid")))
            self.assertFalse(alive(pid), name)
        for name in pids:
            log = read_text(os.path.join(self.run_dir, "logs", name + ".log"))
            self.assertFalse(SANITIZER.search(log), log)
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 1)
        self.assertIn("EUNREACH", p.stderr)
        j = json.loads(self.ctl("--json", "down").stdout)
        self.assertEqual(j, {"ok": True, "stopped": []})
        Cluster.up = None


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class ClusterCurveAndFailures(unittest.TestCase):
    def setUp(self):
        if MISSING:
            self.skipTest("MISSING: " + "; ".join(MISSING))
        self.dir = tempfile.mkdtemp(prefix="skick-cc-")
        self.run_dir = os.path.join(self.dir, "run")

    def tearDown(self):
        run(["down", "--wait", "3000"], run_dir=self.run_dir, check_sanitizer=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def ctl(self, *args, **kw):
        return run(list(args), run_dir=self.run_dir, **kw)

    def test_curve(self):
        app = os.path.join(BUILD, "examples", "accumulator.so")
        b, w = free_ports(3), free_ports(1)
        p = self.ctl("--json", "up", "--curve", "--front", "0", "--back", "1", "--app", app,
                     "--broker", "tcp://127.0.0.1:%d" % b, "--port", str(w), timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual([s["roles"] for s in j["shards"]], [["back"]])
        self.assertEqual(j["connect"], [])
        keys = os.path.join(os.path.realpath(self.run_dir), "keys")
        for f in ("broker", "node", "client"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(keys, f + ".cert_secret"))
                                          .st_mode), 0o600)
        self.assertTrue(os.path.exists(os.path.join(keys, "allow", "clients", "client.cert")))
        self.assertTrue(os.path.exists(os.path.join(keys, "allow", "shards", "node.cert")))
        self.assertFalse(os.path.exists(os.path.join(keys, "allow", "broker.cert_secret")))
        procs = {p["name"]: p for p in j["processes"]}
        self.assertIn("--curve-allow", procs["broker"]["argv"])
        self.assertIn("--curve-server", procs["back-1"]["argv"])
        p = self.ctl("ps")  # skickctl uses the cluster's client key by itself
        self.assertEqual(p.returncode, 0, p.stderr)
        # a client without keys is not admitted
        p = self.ctl("--curve-secret", "/nonexistent", "--curve-server", "/nonexistent", "ps")
        self.assertEqual(p.returncode, 1)
        self.assertIn("EINVAL", p.stderr)
        k = os.path.join(self.dir, "k")
        run(["keygen", k, "stranger"])
        p = self.ctl("--timeout", "1500", "--curve-secret", os.path.join(k, "stranger.cert_secret"),
                     "--curve-server", os.path.join(keys, "broker.cert"), "ps")
        self.assertEqual(p.returncode, 1)
        self.assertIn("EUNREACH", p.stderr)

    def test_failing_shard(self):
        b = free_ports(3)
        t0 = time.monotonic()
        p = self.ctl("up", "--front", "0", "--back", "1", "--broker", "tcp://127.0.0.1:%d" % b,
                     "--node-arg", "--no-such-option", timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertIn("skickctl: ESTART: back-1 exited with status 2", p.stderr)
        self.assertIn("---- last lines of", p.stderr)
        log = read_text(os.path.join(self.run_dir, "logs", "back-1.log"))
        self.assertIn("no-such-option", log)
        self.assertIn(log.splitlines()[-1], p.stderr)  # the tail was shown
        self.assertIn("stopped the processes started", p.stderr)
        with open(os.path.join(self.run_dir, "cluster.json")) as f:
            self.assertEqual(json.load(f)["processes"], [])

    def test_damaged_record(self):
        # a cluster.json that is not JSON: nothing overwrites it or guesses
        os.makedirs(self.run_dir)
        path = os.path.join(self.run_dir, "cluster.json")
        with open(path, "w") as f:
            f.write('{"version": 1, "processes": [{"name": "bro')
        for args in (["up", "--front", "0", "--back", "0"], ["scale", "back=1"], ["down"]):
            p = self.ctl(*args, timeout=60)
            self.assertEqual(p.returncode, 1, args)
            self.assertRegex(p.stderr, r"skickctl: EINVAL: \S+/run/cluster.json is damaged")
        self.assertEqual(read_text(path), '{"version": 1, "processes": [{"name": "bro')
        os.unlink(path)

    def test_missing_binary(self):
        p = self.ctl("up", env={"SKICK_BROKER_BIN": "/nonexistent/skick-broker"})
        self.assertEqual(p.returncode, 1)
        self.assertIn("ESTART", p.stderr)
        self.assertIn("SKICK_BROKER_BIN", p.stderr)


class ClusterCrash(unittest.TestCase):
    """kill -9 of shards and of the broker, and what ps, scale, up and down
    make of it. A fresh cluster per test; the front shards run with few
    civetweb threads."""

    def setUp(self):
        if MISSING:
            self.skipTest("MISSING: " + "; ".join(MISSING))
        self.dir = tempfile.mkdtemp(prefix="skick-ck-")
        self.run_dir = os.path.join(self.dir, "run")
        self.bport = free_ports(3)
        self.wport = free_ports(5)

    def tearDown(self):
        run(["down", "--wait", "3000"], run_dir=self.run_dir, check_sanitizer=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def ctl(self, *args, **kw):
        kw.setdefault("timeout", 60)
        return run(list(args), run_dir=self.run_dir, **kw)

    def up(self, front, back, *more):
        p = self.ctl(*(more + ("up", "--front", str(front), "--back", str(back),
                               "--app", os.path.join(BUILD, "examples", "accumulator.so"),
                               "--broker", "tcp://127.0.0.1:%d" % self.bport,
                               "--port", str(self.wport), "--node-arg", "--ws-threads=4",
                               "--wait", "20000")))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def record(self):
        """cluster.json's processes by name; fails on a duplicate name."""
        with open(os.path.join(self.run_dir, "cluster.json")) as f:
            procs = json.load(f)["processes"]
        names = [p["name"] for p in procs]
        self.assertEqual(len(names), len(set(names)), names)
        return {p["name"]: p for p in procs}

    def pids(self):
        return {n: p["pid"] for n, p in self.record().items()}

    def kill(self, *names):
        pids = self.pids()
        for n in names:
            os.kill(pids[n], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(alive(pids[n]) for n in names) and time.monotonic() < deadline:
            time.sleep(0.05)
        return {n: pids[n] for n in names}

    def scale(self, *args):
        p = self.ctl("--json", "scale", *args)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        j = json.loads(p.stdout)
        return j, sorted(f["name"] for f in j["forgotten"])

    def test_kill_front_and_back(self):
        self.up(2, 2)
        before = self.pids()
        dead = self.kill("back-2", "front-1")  # the newest back, the older front
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        for name in ("front-1", "back-2"):
            self.assertTrue(any(l.startswith("%s (pid %d): dead, killed by signal 9 (SIGKILL)"
                                             % (name, dead[name])) for l in lines), p.stdout)
        rows = [l.split()[0] for l in lines[1:] if re.match(r"\S+\s+[0-9a-f]{16}\s", l)]
        self.assertEqual(rows, ["front-2", "back-1"], p.stdout)
        j = json.loads(self.ctl("--json", "ps").stdout)
        self.assertEqual({e["name"]: e["state"] for e in j},
                         {"front-1": "dead", "front-2": "running", "back-1": "running",
                          "back-2": "dead"})
        p = self.ctl("logs", "back-2", "-n", "1")
        self.assertEqual(p.stdout, "==== skickctl: back-2 (pid %d) ended: killed by signal 9 "
                         "(SIGKILL)\n" % dead["back-2"])
        # scale forgets every dead shard and replaces those of the role it is given
        j, forgot = self.scale("back=2")
        self.assertEqual((forgot, j["started"], j["stopped"]), (["back-2", "front-1"],
                                                                ["back-2"], []))
        now = self.pids()
        self.assertEqual(sorted(now), ["back-1", "back-2", "broker", "front-2"])
        self.assertNotEqual(now["back-2"], before["back-2"])
        for n in ("broker", "front-2", "back-1"):
            self.assertEqual(now[n], before[n], n)
        j, forgot = self.scale("front=2")
        self.assertEqual((forgot, j["started"]), ([], ["front-1"]))
        self.assertIn(str(self.wport), self.record()["front-1"]["argv"])  # its old port
        self.assertIn("ws://127.0.0.1:%d/" % self.wport, j["connect"])
        j = json.loads(self.ctl("--json", "ps").stdout)
        self.assertEqual(sorted((e["name"], e["state"]) for e in j),
                         [("back-1", "running"), ("back-2", "running"), ("front-1", "running"),
                          ("front-2", "running")])
        # nothing to do: nothing changes, the record is not even rewritten
        path = os.path.join(self.run_dir, "cluster.json")
        text, mtime = read_text(path), os.stat(path).st_mtime_ns
        p = self.ctl("scale", "front=2", "back=2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("nothing to do\n"), p.stdout)
        self.assertEqual((read_text(path), os.stat(path).st_mtime_ns), (text, mtime))
        self.assertTrue(all(alive(pid) for pid in self.pids().values()))

    def test_scale_down_after_crash(self):
        self.up(1, 3)
        before = self.pids()
        self.kill("back-1")  # the oldest
        j, forgot = self.scale("back=1")
        # the newest live shard is stopped, the live one left keeps its record
        self.assertEqual((forgot, j["stopped"], j["started"]), (["back-1"], ["back-3"], []))
        self.assertEqual(self.pids(), {n: before[n] for n in ("broker", "front-1", "back-2")})
        self.assertFalse(alive(before["back-3"]))
        log = read_text(os.path.join(self.run_dir, "logs", "back-3.log"))
        self.assertTrue(log.endswith("ended: exited with status 0\n"), log[-300:])
        self.kill("back-2")  # now the newest, and the last
        j, forgot = self.scale("back=0")
        self.assertEqual((forgot, j["stopped"], j["started"]), (["back-2"], [], []))
        self.assertEqual(sorted(self.pids()), ["broker", "front-1"])
        j, forgot = self.scale("back=2")
        self.assertEqual(j["started"], ["back-1", "back-2"])
        self.assertEqual(sorted(self.pids()), ["back-1", "back-2", "broker", "front-1"])

    def test_broker_dead(self):
        # ps says so at once; down stops what runs (scale and up repair it:
        # test_rundir.py)
        self.up(1, 1)
        dead = self.kill("broker")
        text = read_text(os.path.join(self.run_dir, "cluster.json"))
        why = ("the broker of the cluster in %s is not running: pid %d killed by signal 9 "
               "(SIGKILL); shards still running, cut off: front-1, back-1. `skickctl scale` (or "
               "`skickctl up`) restarts the broker as recorded, and they join it"
               % (os.path.realpath(self.run_dir), dead["broker"]))
        p = self.ctl("ps")
        self.assertEqual(p.returncode, 1)
        self.assertIn("skickctl: EUNREACH: " + why, p.stderr)
        self.assertEqual(read_text(os.path.join(self.run_dir, "cluster.json")), text)
        p = self.ctl("down", "--wait", "5000")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"broker\s+%d\s+not running: killed by signal 9 \(SIGKILL\)"
                         % dead["broker"])
        self.assertRegex(p.stdout, r"front-1\s+\d+\s+stopped")

    def test_up_over_an_ended_cluster(self):
        self.up(1, 1)
        old = self.kill("front-1", "back-1", "broker")
        p = self.up(1, 1)
        self.assertIn("skickctl: the cluster recorded in %s had ended: broker (pid %d) killed by "
                      "signal 9 (SIGKILL)" % (os.path.realpath(self.run_dir), old["broker"]),
                      p.stderr)
        now = self.pids()
        self.assertEqual(sorted(now), ["back-1", "broker", "front-1"])
        for n, pid in now.items():
            self.assertNotEqual(pid, old[n])
            self.assertEqual(int(read_text(os.path.join(self.run_dir, n + ".pid"))), pid)

    def test_concurrent_scale(self):
        # two scale runs at once take turns on the record's lock
        self.up(0, 1)
        e = dict(os.environ, SKICK_RUN_DIR=self.run_dir, SKICK_LOG_LEVEL="warning")
        ps = [subprocess.Popen([SKICKCTL, "--json", "scale", "back=3"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=e) for _ in range(2)]
        outs = [p.communicate(timeout=60) for p in ps]
        for p, (out, err) in zip(ps, outs):
            self.assertEqual(p.returncode, 0, out + err)
        started = [json.loads(out)["started"] for out, _ in outs]
        self.assertEqual(sorted(started), [[], ["back-2", "back-3"]])
        self.assertEqual(sorted(self.pids()), ["back-1", "back-2", "back-3", "broker"])

    def test_connect_order(self):
        # the broker lists shards in hash order; Connect follows the names
        p = self.up(5, 0)
        urls = ["ws://127.0.0.1:%d/" % (self.wport + i) for i in range(5)]
        tail = p.stdout[p.stdout.index("\nConnect:"):p.stdout.index("\nStop:")]
        connect = [l.split()[-1] for l in tail.strip().splitlines()]
        self.assertEqual(connect, urls, p.stdout)
        j = json.loads(self.ctl("--json", "scale", "front=5").stdout)
        self.assertEqual(j["connect"], urls)


class Result(unittest.TextTestResult):
    pass


def main():
    global BUILD, SKICKCTL
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    BUILD = os.path.abspath(sys.argv[1])
    SKICKCTL = os.path.join(BUILD, "cli", "skickctl")
    MISSING.extend(cluster_prerequisites())
    argv = [sys.argv[0]] + sys.argv[2:]
    prog = unittest.main(argv=argv, exit=False, verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors)
    missing = len(r.skipped)
    passed = r.testsRun - failed - missing
    for reason in MISSING:
        print("MISSING: %s" % reason)
    print("%d passed, %d failed, %d missing" % (passed, failed, missing))
    if failed:
        return 1
    return 77 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
