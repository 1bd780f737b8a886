#!/usr/bin/python3
"""test_redis.py - the Redis hash backend of a shard, against a real redis-server

Usage: /usr/bin/python3 tests/integration/test_redis.py BUILD_DIR [unittest args]

Each test starts its own redis-server on a free loopback port (--save ''
--appendonly no) and skick-node processes with --hash redis://... that load
BUILD_DIR/tests/integration/redis_test_app.so (redis_app.c: the hash API over
a websocket session), then checks with redis-cli:

  * the layout and the value mapping of docs/hashes.md, both ways (values the
    shard wrote as redis-cli sees them; values redis-cli wrote as the shard
    reads them), TTLs (PTTL), add, incr, keys, delete, contains, the refusals;
  * two shards on one Redis: add from both, exactly one wins; incr sums; a
    shard started with --hash keeps Redis when it joins a cluster;
  * faults: Redis down at start (EUNREACH at once, reconnect with back-off,
    one log line for the loss and one for the recovery), killed -9 with
    operations pending (each ends with EUNREACH), restarted (traffic resumes),
    stopped with SIGSTOP (ETIMEDOUT at the call timeout while another session
    of the shard keeps answering; resumes after SIGCONT), the in-flight bound
    (EBACKLOG), AUTH refused (at start: exit 1; later: EBACKEND), a bad URL
    (exit 2), a Unix socket and a database number;
  * the URL kept off the command line: with a Redis that requires a
    password, the shard works with --hash-file (mode 0600) and with
    SKICK_HASH_URL, the password in neither /proc/PID/cmdline nor the log;
    a password in --hash works and logs one warning; a file group or
    others can read, a missing, an empty file, and --hash with --hash-file
    are refused with a clear message and exit 2.

Every wait is bounded. Shards stop with SIGTERM and must exit 0 with a log
free of sanitizer reports. The last line is "N passed, M failed".
"""
import asyncio
import faulthandler
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BUILD = None  # set by main()
WAIT = 10.0  # bound on one answer (seconds)
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")
_procs = []  # every process started, killed at exit


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not within {timeout} s")


class Redis:
    """One redis-server on loopback (or a Unix socket), restartable on the same port."""

    def __init__(self, *extra, unix=False):
        self.dir = tempfile.mkdtemp(prefix="skick-redis-")
        self.port = free_port()
        self.sock = os.path.join(self.dir, "redis.sock") if unix else None
        self.extra = list(extra)
        self.proc = None
        self.start()

    def start(self):
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--logfile",
                os.path.join(self.dir, "redis.log")] + self.extra
        if self.sock:
            args += ["--unixsocket", self.sock]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _procs.append(self.proc)
        wait_until(lambda: self.ping(), 5, "redis-server ready")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def cli(self, *args, db=0, data=None, auth=None):
        cmd = ["redis-cli", "-p", str(self.port), "-n", str(db)]
        if auth:
            cmd += ["--no-auth-warning", "-a", auth]
        cmd += ["-x"] if data is not None else []
        args = [a if isinstance(a, bytes) else str(a) for a in args]
        r = subprocess.run(cmd + args, input=data, capture_output=True,
                           timeout=5)
        return r.stdout.decode("utf-8", "replace").rstrip("\n")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Node:
    """One skick-node with the test module and --hash url."""

    def __init__(self, url, *extra, wait=True, env=None):
        self.port = free_port()
        fd, self.logpath = tempfile.mkstemp(prefix="skick-redis-node-", suffix=".log")
        self.logfile = os.fdopen(fd, "w")
        cmd = [os.path.join(BUILD, "node", "skick-node"), "--app",
               os.path.join(BUILD, "tests", "integration", "redis_test_app.so"),
               "--port", str(self.port), "--log-level", "info"]
        if url:
            cmd += ["--hash", url]
        self.proc = subprocess.Popen(cmd + list(extra), stdin=subprocess.DEVNULL,
                                     stdout=self.logfile, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        _procs.append(self.proc)
        if wait:
            wait_until(lambda: "notice ws: serving" in self.log() or self.proc.poll() is not None,
                       20, "skick-node start")
            if self.proc.poll() is not None:
                raise AssertionError("skick-node exited at start:\n" + self.log())

    def log(self):
        self.logfile.flush()
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def count(self, pattern):
        return len(re.findall(pattern, self.log()))

    def stop(self):
        """SIGTERM; the exit status and the sanitizer lines."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        bad = [line for line in self.log().splitlines() if SANITIZER.search(line)]
        self.logfile.close()
        if rc == 0 and not bad:
            os.unlink(self.logpath)
        return rc, bad


class Session:
    """A "hash" session: requests with ids, answers matched by id."""

    def __init__(self, ws):
        self.ws = ws
        self.next = 0
        self.waiting = {}
        self.pongs = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, node):
        ws = await asyncio.wait_for(websockets.connect(f"ws://127.0.0.1:{node.port}/",
                                                       max_size=None, ping_interval=None,
                                                       close_timeout=1), WAIT)
        await ws.send(json.dumps({"session_type": "hash"}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert ready == {"ready": "hash"}, ready
        return cls(ws)

    async def _read(self):
        async for raw in self.ws:
            m = json.loads(raw)
            if "pong" in m:
                self.pongs.put_nowait((time.monotonic(), m["pong"]))
            elif m.get("id") in self.waiting:
                self.waiting.pop(m["id"]).set_result(m)

    async def ask(self, action, timeout=WAIT, **fields):
        self.next += 1
        fut = asyncio.get_running_loop().create_future()
        self.waiting[self.next] = fut
        await self.ws.send(json.dumps({"action": action, "id": self.next, **fields}))
        return await asyncio.wait_for(fut, timeout)

    async def op(self, op, table="t", **fields):
        return await self.ask("op", op=op, table=table, **fields)

    async def ok(self, op, table="t", **fields):
        r = await self.op(op, table, **fields)
        assert r["ok"], (op, fields, r)
        return r.get("result")

    async def error(self, op, table="t", **fields):
        r = await self.op(op, table, **fields)
        assert not r["ok"], (op, fields, r)
        return r["error"]

    async def burst(self, op, n, table="t", timeout=WAIT, **fields):
        r = await self.ask("burst", timeout=timeout, op=op, n=n, table=table, **fields)
        return r["errors"]

    async def ping_rtt(self, n):
        t0 = time.monotonic()
        await self.ws.send(json.dumps({"action": "ping", "n": n}))
        t, got = await asyncio.wait_for(self.pongs.get(), WAIT)
        assert got == n
        return t - t0

    async def close(self):
        self.reader.cancel()
        await self.ws.close()


class RedisCase(unittest.IsolatedAsyncioTestCase):
    """A Redis per test; nodes and sessions made by the test are cleaned up."""

    REDIS_ARGS = ()

    def setUp(self):
        self.redis = Redis(*self.REDIS_ARGS)
        self.nodes = []
        self.sessions = []

    async def asyncTearDown(self):
        for s in self.sessions:
            await s.close()

    def tearDown(self):
        for n in self.nodes:
            rc, bad = n.stop()
            self.assertEqual(bad, [], f"sanitizer reports in {n.logpath}")
            self.assertEqual(rc, 0, f"skick-node exit status (log {n.logpath})")
        self.redis.close()

    async def node(self, *extra, url=None, env=None):
        """A node and a session; url "" gives no --hash."""
        n = Node(self.redis.url if url is None else url, *extra, env=env)
        self.nodes.append(n)
        s = await Session.open(n)
        self.sessions.append(s)
        return n, s

    async def session(self, node):
        s = await Session.open(node)
        self.sessions.append(s)
        return s


# ---------------------------------------------------------------------------
# Layout and values


class Layout(RedisCase):
    async def test_c_writes_cli_reads(self):
        _, s = await self.node()
        cases = [("str", "hello world", "hello world"), ("int", 42, "42"),
                 ("neg", -7, "-7"), ("big", 9223372036854775807, "9223372036854775807"),
                 ("float", 1.5, "1.5"), ("whole", 2.0, "2.0"), ("tenth", 0.1, "0.1"),
                 ("numstr", "5", '"5"'), ("boolstr", "true", '"true"'),
                 ("bool", True, "true"), ("obj", {"a": [1, "x/y", None]}, '{"a":[1,"x/y",null]}'),
                 ("arr", [1, 2], "[1,2]"), ("utf8", "café €", "café €"), ("nullstr", "null", "null"),
                 ("quoted", '"q"', '"\\"q\\""'), ("empty", "", "")]
        for key, value, stored in cases:
            await s.ok("set", key=key, value=value)
            self.assertEqual(self.redis.cli("GET", f"t:{key}"), stored, key)
            self.assertEqual(await s.ok("get", key=key), value, key)
        self.assertEqual(await s.error("set", key="nul", value=None), "EINVAL")
        for bad in ("a:b", "{a}", "x}"):
            self.assertEqual(await s.error("set", key=bad, value=1), "EINVAL", bad)
            self.assertEqual(await s.error("get", key=bad), "EINVAL", bad)

    async def test_cli_writes_c_reads(self):
        _, s = await self.node()
        cases = [("s", "plain text", "plain text"), ("i", "12", 12), ("f", "3.25", 3.25),
                 ("inf", "inf", "inf"), ("o", '{"x":1}', {"x": 1}), ("q", '"q"', "q"),
                 ("t", "true", True), ("lead0", "05", "05"), ("null", "null", "null"),
                 ("huge", "99999999999999999999", "99999999999999999999")]
        for key, text, value in cases:
            self.redis.cli("SET", f"t:{key}", text)
            self.assertEqual(await s.ok("get", key=key), value, key)
        self.redis.cli("SET", "t:bin", data=b"\xff\xfe")
        self.assertEqual(await s.error("get", key="bin"), "EBACKEND")
        self.redis.cli("LPUSH", "t:list", "x")
        self.assertEqual(await s.error("get", key="list"), "EBACKEND")
        self.assertEqual(await s.error("get", key="absent"), "ENOTFOUND")

    async def test_ttl_add_incr(self):
        _, s = await self.node()
        await s.ok("set_ttl", key="tmp", value="v", ttl=60000)
        pttl = int(self.redis.cli("PTTL", "t:tmp"))
        self.assertTrue(55000 < pttl <= 60000, pttl)
        await s.ok("incr", key="tmp2", delta=1)
        await s.ok("set", key="tmp", value="lasting")
        self.assertEqual(self.redis.cli("PTTL", "t:tmp"), "-1")
        self.assertTrue(await s.ok("add", key="once", value=1, ttl=30000))
        self.assertFalse(await s.ok("add", key="once", value=2))
        self.assertEqual(self.redis.cli("GET", "t:once"), "1")
        self.assertGreater(int(self.redis.cli("PTTL", "t:once")), 25000)
        self.assertEqual(await s.ok("incr", key="once", delta=5), 6)
        self.assertGreater(int(self.redis.cli("PTTL", "t:once")), 25000, "incr keeps the TTL")
        await s.ok("set_ttl", key="short", value=1, ttl=100)
        await asyncio.sleep(0.3)
        self.assertEqual(await s.error("get", key="short"), "ENOTFOUND")
        self.assertEqual(await s.ok("incr", key="c", delta=-3), -3)
        await s.ok("set", key="max", value=9223372036854775807)
        self.assertEqual(await s.error("incr", key="max", delta=1), "EINVAL")
        await s.ok("set", key="str", value="5")
        self.assertEqual(await s.error("incr", key="str"), "ETYPE")
        await s.ok("set", key="dbl", value=5.0)
        self.assertEqual(await s.error("incr", key="dbl"), "ETYPE")
        self.redis.cli("SET", "t:cli", "41")
        self.assertEqual(await s.ok("incr", key="cli"), 42)

    async def test_keys_delete_contains(self):
        _, s = await self.node()
        for i in range(30):
            await s.ok("set", key=f"k{i}", value=i)
        self.redis.cli("SET", "t2:other", "x")
        self.redis.cli("SET", "tx", "x")
        self.redis.cli("SET", b"t:bad\xff", "x")
        keys = await s.op("keys", max=1000)
        self.assertEqual(sorted(keys["result"]), sorted(f"k{i}" for i in range(30)))
        self.assertFalse(keys["truncated"])
        keys = await s.op("keys", max=30)
        self.assertEqual(len(keys["result"]), 30)
        self.assertFalse(keys["truncated"])
        keys = await s.op("keys", max=7)
        self.assertEqual(len(keys["result"]), 7)
        self.assertTrue(keys["truncated"])
        self.assertEqual(await s.ok("keys", table="empty", max=5), [])
        self.assertTrue(await s.ok("contains", key="k3"))
        await s.ok("delete", key="k3")
        self.assertFalse(await s.ok("contains", key="k3"))
        self.assertEqual(await s.error("delete", key="k3"), "ENOTFOUND")
        self.assertEqual(self.redis.cli("EXISTS", "t:k3"), "0")

    async def test_two_shards(self):
        _, a = await self.node()
        _, b = await self.node()
        for round_ in range(5):
            key = f"race{round_}"
            ra, rb = await asyncio.gather(a.op("add", key=key, value="a"),
                                          b.op("add", key=key, value="b"))
            self.assertEqual(sorted([ra["result"], rb["result"]]), [False, True], (ra, rb))
            winner = "a" if ra["result"] else "b"
            self.assertEqual(self.redis.cli("GET", f"t:{key}"), winner)
        ea, eb = await asyncio.gather(a.burst("incr", 200, key="sum"),
                                      b.burst("incr", 200, key="sum"))
        self.assertEqual((ea, eb), ({"OK": 200}, {"OK": 200}))
        self.assertEqual(self.redis.cli("GET", "t:sum"), "400")
        self.assertEqual(await b.ok("get", key="sum"), 400)


class Places(RedisCase):
    """A database number and a Unix socket; AUTH with a user."""

    REDIS_ARGS = ("--requirepass", "pw")

    def setUp(self):
        super().setUp()
        self.unix = Redis(unix=True)

    def tearDown(self):
        super().tearDown()
        self.unix.close()

    async def test_db_auth_unix(self):
        _, s = await self.node(url=f"redis://default:pw@127.0.0.1:{self.redis.port}/3")
        await s.ok("set", key="x", value="in three")
        self.assertEqual(self.redis.cli("GET", "t:x", db=3, auth="pw"), "in three")
        self.assertEqual(self.redis.cli("EXISTS", "t:x", db=0, auth="pw"), "0")
        _, u = await self.node(url=f"unix://{self.unix.sock}?db=2")
        await u.ok("set", key="y", value=7)
        self.assertEqual(self.unix.cli("GET", "t:y", db=2), "7")


# ---------------------------------------------------------------------------
# Faults


class Faults(RedisCase):
    async def test_down_at_start_then_up(self):
        self.redis.kill()
        t0 = time.monotonic()
        n, s = await self.node()
        for _ in range(3):
            r = await s.op("get", key="k")
            self.assertEqual(r["error"], "EUNREACH")
            self.assertLess(r["ms"], 100, "fails at once")
        self.assertEqual(await s.burst("set", 50, value=1), {"EUNREACH": 50})
        await asyncio.sleep(1.0)  # several failed attempts: 100, 200, 400 ms
        self.redis.start()
        await self._until_ok(s, 8)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(n.count(r"cannot connect to redis://"), 1, n.log())
        self.assertEqual(n.count(r"connected to redis://\S+ again"), 1, n.log())

    async def _until_ok(self, s, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = await s.op("set", key="probe", value=1)
            if r["ok"]:
                return
            self.assertIn(r["error"], ("EUNREACH", "EBACKEND"))
            await asyncio.sleep(0.05)
        self.fail(f"no successful operation within {timeout} s")

    async def test_kill9_with_pending_then_restart(self):
        n, s = await self.node("--call-timeout", "20000")
        await s.ok("set", key="k", value=1)
        self.redis.signal(signal.SIGSTOP)
        pending = asyncio.ensure_future(s.burst("get", 300, key="k", timeout=15))
        await asyncio.sleep(0.3)  # all 300 sent, none answered
        t0 = time.monotonic()
        self.redis.kill()
        self.assertEqual(await pending, {"EUNREACH": 300})
        self.assertLess(time.monotonic() - t0, 3, "pending operations end at once")
        self.assertEqual(await s.error("get", key="k"), "EUNREACH")
        await asyncio.sleep(0.5)
        self.redis.start()
        await self._until_ok(s, 8)
        self.assertEqual(n.count(r"lost the connection to redis://"), 1, n.log())
        self.assertEqual(n.count(r"connected to redis://\S+ again"), 1, n.log())
        # restarted cleanly (SIGTERM) this time: resumes again
        self.redis.signal(signal.SIGTERM)
        self.redis.proc.wait(5)
        await asyncio.sleep(0.3)
        self.assertEqual(await s.error("get", key="k"), "EUNREACH")
        self.redis.start()
        await self._until_ok(s, 8)

    async def test_sigstop_times_out_others_answer(self):
        n, s = await self.node("--call-timeout", "1000")
        other = await self.session(n)
        await s.ok("set", key="k", value=1)
        self.redis.signal(signal.SIGSTOP)
        try:
            slow = asyncio.ensure_future(s.burst("get", 50, key="k"))
            one = asyncio.ensure_future(s.op("get", key="k"))
            rtts = []
            for i in range(5):
                rtts.append(await other.ping_rtt(i))
                await asyncio.sleep(0.1)
            self.assertLess(max(rtts), 0.2, f"the shard stalled: ping round trips {rtts}")
            r = await one
            self.assertEqual(r["error"], "ETIMEDOUT")
            self.assertTrue(900 < r["ms"] < 2500, r)
            self.assertEqual(await slow, {"ETIMEDOUT": 50})
        finally:
            self.redis.signal(signal.SIGCONT)
        await asyncio.sleep(0.1)  # the late answers arrive and touch nothing
        self.assertEqual(await s.ok("get", key="k"), 1)
        self.assertEqual(await s.burst("get", 100, key="k"), {"OK": 100})

    async def test_inflight_bound(self):
        n, s = await self.node("--call-timeout", "1500", "--hash-inflight", "20")
        await s.ok("set", key="k", value=1)
        self.redis.signal(signal.SIGSTOP)
        try:
            errors = await s.burst("get", 30, key="k")
            self.assertEqual(errors, {"EBACKLOG": 10, "ETIMEDOUT": 20})
            self.assertEqual(await s.error("get", key="k"), "EBACKLOG", "still full: not answered")
        finally:
            self.redis.signal(signal.SIGCONT)
        self.assertIn("EBACKLOG", n.log())
        await asyncio.sleep(0.2)
        self.assertEqual(await s.burst("get", 20, key="k"), {"OK": 20})


class Auth(RedisCase):
    REDIS_ARGS = ("--requirepass", "right")

    def test_refused_at_start_exits_1(self):
        n = Node(f"redis://:badpw123@127.0.0.1:{self.redis.port}", wait=False)
        try:
            rc = n.proc.wait(10)
        except subprocess.TimeoutExpired:
            n.proc.kill()
            self.fail("skick-node kept running with a refused AUTH")
        self.assertEqual(rc, 1, n.log())
        self.assertRegex(n.log(), r"error redis: redis://:\*\*\*@127\.0\.0\.1:\d+/0 refused AUTH")
        self.assertNotIn("badpw123", n.log(), "the password is not logged")
        n.logfile.close()

    def test_missing_password_exits_1(self):
        n = Node(self.redis.url, wait=False)
        self.assertEqual(n.proc.wait(10), 1, n.log())
        self.assertIn("NOAUTH", n.log())
        n.logfile.close()

    async def test_refused_later_then_accepted(self):
        n, s = await self.node(url=f"redis://:right@127.0.0.1:{self.redis.port}")
        await s.ok("set", key="k", value=1)
        self.redis.cli("CONFIG", "SET", "requirepass", "changed", auth="right")
        self.redis.cli("CLIENT", "KILL", "TYPE", "normal", auth="changed")
        deadline = time.monotonic() + 5
        while (await s.op("get", key="k")).get("error") != "EBACKEND":
            self.assertLess(time.monotonic(), deadline, "no EBACKEND after AUTH is refused")
            await asyncio.sleep(0.05)
        self.assertEqual(n.proc.poll(), None, "a later refusal does not stop the shard")
        self.assertEqual(n.count(r"refused AUTH"), 1, n.log())
        self.redis.cli("CONFIG", "SET", "requirepass", "right", auth="changed")
        await Faults._until_ok(self, s, 8)


def cmdline(pid):
    """What every local user reads in /proc/PID/cmdline."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode("utf-8", "replace")


def url_file(directory, text, mode=0o600, name="redis.url"):
    """A file holding text, with mode."""
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


ARGV_WARNING = "the Redis password is on the command line (--hash)"


class Secret(RedisCase):
    """The URL (its password) off the command line: --hash-file, SKICK_HASH_URL."""

    PASSWORD = "pw-0ff-the-cmdline"
    REDIS_ARGS = ("--requirepass", PASSWORD)

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="skick-redis-secret-")
        self.secret_url = f"redis://:{self.PASSWORD}@127.0.0.1:{self.redis.port}/0"

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.tmp, ignore_errors=True)

    async def _works_unseen(self, n, s, key):
        await s.ok("set", key=key, value="seen")
        self.assertEqual(self.redis.cli("GET", f"t:{key}", auth=self.PASSWORD), "seen")
        self.assertEqual(await s.ok("get", key=key), "seen")
        self.assertNotIn(self.PASSWORD, cmdline(n.proc.pid))
        self.assertNotIn(self.PASSWORD, n.log())
        self.assertNotIn(ARGV_WARNING, n.log())
        self.assertRegex(n.log(), r"hashes are kept in redis://:\*\*\*@127\.0\.0\.1")

    async def test_hash_file(self):
        path = url_file(self.tmp, self.secret_url + "\n")
        n, s = await self.node("--hash-file", path, url="")
        await self._works_unseen(n, s, "from-file")

    async def test_hash_file_read_only_by_owner(self):
        path = url_file(self.tmp, "  " + self.secret_url + "  \n", mode=0o400)
        n, s = await self.node("--hash-file", path, url="")
        await self._works_unseen(n, s, "ro")

    async def test_environment(self):
        n, s = await self.node(url="", env={"SKICK_HASH_URL": self.secret_url})
        await self._works_unseen(n, s, "from-env")

    async def test_on_the_command_line_warns_once(self):
        n, s = await self.node(url=self.secret_url)
        await s.ok("set", key="argv", value=1)
        self.assertEqual(n.log().count(ARGV_WARNING), 1, n.log())
        self.assertIn("--hash-file", n.log())
        self.assertNotIn(self.PASSWORD, n.log())

    async def test_no_password_no_warning(self):
        other = Redis()
        self.addCleanup(other.close)  # after tearDown has stopped the node
        n, s = await self.node(url=other.url)
        await s.ok("set", key="k", value=1)
        self.assertNotIn(ARGV_WARNING, n.log())

    def _refused(self, *args, env=None):
        r = subprocess.run([os.path.join(BUILD, "node", "skick-node")] + list(args),
                           capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, **(env or {})))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertNotIn(self.PASSWORD, r.stderr)
        return r.stderr

    def test_group_readable_file_refused(self):
        for mode in (0o640, 0o604, 0o660):
            path = url_file(self.tmp, self.secret_url, mode=mode)
            err = self._refused("--hash-file", path)
            self.assertIn(f"permissions {mode:04o} for {path} are too open", err)
            self.assertIn(f"chmod 600 {path}", err)

    def test_bad_files_refused(self):
        missing = os.path.join(self.tmp, "missing.url")
        self.assertIn(f"--hash-file: cannot open {missing}: No such file or directory",
                      self._refused("--hash-file", missing))
        empty = url_file(self.tmp, "\n", name="empty.url")
        self.assertIn("is empty", self._refused("--hash-file", empty))
        two = url_file(self.tmp, self.secret_url + "\nredis://x\n", name="two.url")
        self.assertIn("more than one line", self._refused("--hash-file", two))
        self.assertIn("not a regular file", self._refused("--hash-file", self.tmp))
        bad = url_file(self.tmp, "http://x\n", name="bad.url")
        self.assertIn("--hash-file: bad Redis URL", self._refused("--hash-file", bad))
        good = url_file(self.tmp, self.secret_url, name="good.url")
        self.assertIn("give --hash or --hash-file, not both",
                      self._refused("--hash", self.redis.url, "--hash-file", good))
        self.assertIn("SKICK_HASH_URL: bad Redis URL",
                      self._refused(env={"SKICK_HASH_URL": "redis://h:99999"}))


class InACluster(RedisCase):
    """A shard started with --hash keeps Redis when it joins a cluster."""

    def start_broker(self, tmp):
        """skick-broker on fresh ports (a port taken meanwhile: try others)."""
        from test_cluster import free_port as free_ports  # p, p+1, p+2 free
        for attempt in range(3):
            endpoint = f"tcp://127.0.0.1:{free_ports(3)}"
            path = os.path.join(tmp, f"broker-{attempt}.log")
            with open(path, "w") as log:
                broker = subprocess.Popen([os.path.join(BUILD, "broker", "skick-broker"),
                                           "--log-level", "info", "--bind", endpoint,
                                           "--control",
                                           f"ipc://{tmp}/control-{attempt}"],
                                          stdout=log, stderr=subprocess.STDOUT)
            _procs.append(broker)
            wait_until(lambda: "serving" in open(path).read() or broker.poll() is not None, 20,
                       "skick-broker start")
            if broker.poll() is None:
                return broker, endpoint
        self.fail("skick-broker did not start:\n" + open(path).read())

    async def test_cluster_keeps_redis(self):
        tmp = tempfile.mkdtemp(prefix="skick-redis-broker-")
        broker, endpoint = self.start_broker(tmp)
        try:
            n, s = await self.node("--broker", endpoint)
            wait_until(lambda: "joined the cluster" in n.log(), 10, "the shard joining")
            await s.ok("set", key="c", value="via redis")
            self.assertEqual(self.redis.cli("GET", "t:c"), "via redis")
            self.assertEqual(await s.ok("incr", key="n", delta=2), 2)
        finally:
            broker.terminate()
            broker.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)


class Options(unittest.TestCase):
    def test_bad_url_exits_2(self):
        for url in ("http://h:1", "redis://h:99999", "rediss://h:1", "redis://user@h:1"):
            r = subprocess.run([os.path.join(BUILD, "node", "skick-node"), "--hash", url],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, (url, r.stderr))
            self.assertIn("bad Redis URL", r.stderr)

    def test_help_mentions_hash(self):
        r = subprocess.run([os.path.join(BUILD, "node", "skick-node"), "--help"],
                           capture_output=True, text=True, timeout=10)
        self.assertIn("--hash URL", r.stdout)
        self.assertIn("--hash-file FILE", r.stdout)
        self.assertIn("SKICK_HASH_URL", r.stdout)


def main():
    global BUILD
    if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
        sys.exit(f"usage: {sys.argv[0]} BUILD_DIR [TestClass[.test] ...]")
    BUILD = os.path.abspath(sys.argv[1])
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        print("redis-server / redis-cli missing: deploy/install-deps.sh --test", file=sys.stderr)
        return 2
    faulthandler.dump_traceback_later(280, exit=True)  # under ctest's 300 s
    loader = unittest.defaultTestLoader
    suite = (loader.loadTestsFromNames(sys.argv[2:], sys.modules[__name__]) if sys.argv[2:]
             else loader.loadTestsFromModule(sys.modules[__name__]))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    bad = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - bad - len(result.skipped)} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        for p in _procs:
            if p.poll() is None:
                p.kill()
