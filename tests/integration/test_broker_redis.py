#!/usr/bin/python3
"""test_broker_redis.py - the broker's hash store in Redis (skick-broker --hash)

Usage: /usr/bin/python3 tests/integration/test_broker_redis.py BUILD_DIR [unittest args]

Each test starts its own redis-server on a free loopback port (--save ''
--appendonly no; test_redis.Redis) and checks what it holds with redis-cli:

  * the conformance suite (test_hash_conformance) on the back shards of a
    cluster whose broker runs with --hash (the shards on the broker's store,
    so every operation crosses the broker to Redis), and of one whose
    shards run with --hash too;
  * skickctl hash set/get/keys/incr/del on a broker with --hash: the keys
    and values in Redis in the layout of docs/hashes.md, both ways, stats'
    hash_store; the broker killed -9 and started again loses nothing;
  * faults: Redis down at start (EUNREACH at once, one warning, the
    recovery logged once), killed -9 with requests pending (each answered
    EUNREACH at once), restarted, stopped with SIGSTOP past the bound
    (ETIMEDOUT at --hash-timeout-ms while actor traffic through the broker
    goes on), the in-flight bound (EBACKLOG), AUTH refused (EBACKEND and a
    log line), a bad URL (exit 2);
  * the URL off the command line, with a Redis that requires a password:
    the broker works with --hash-file (0600) and SKICK_HASH_URL, the
    password in neither /proc/PID/cmdline nor the log; one warning for a
    password in --hash; a group-readable or missing file: exit 2;
  * `skickctl up --hash` end to end: the record, every process started with
    --hash-file RUN_DIR/hash.url (0600), the password on no process's
    command line and shown as *** elsewhere, an actor's skick_hash_set seen
    in Redis, `scale` adding a shard that reads the same data, `down`; and
    `up` given the URL by --hash-file and by SKICK_HASH_URL.

The last line is "N passed, M failed".
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
import test_cluster as tc  # noqa: E402
import test_hash_conformance as thc  # noqa: E402
import test_redis as tr  # noqa: E402  (Redis: one redis-server, restartable)


def broker_bin():
    return os.path.join(tc.BUILD, "broker", "skick-broker")


def skickctl(*args, run_dir=None, control=None, timeout=30):
    env = dict(os.environ, SKICK_LOG_LEVEL="info")
    env.pop("SKICK_CONTROL", None)
    env.pop("SKICK_RUN_DIR", None)
    cmd = [os.path.join(tc.BUILD, "cli", "skickctl")]
    if run_dir:
        cmd += ["--run-dir", run_dir]
    if control:
        cmd += ["--control", control]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env,
                          timeout=timeout)


class LoneBroker:
    """A skick-broker with --hash url (and extra), no shards."""

    def __init__(self, url, *extra):
        """url None: no --hash (give --hash-file in extra, or SKICK_HASH_URL)."""
        self.tmp = tempfile.mkdtemp(prefix="skick-bredis-")
        self.control = "ipc://%s/control" % self.tmp
        self.port = tc.free_port(3)
        self.argv = [broker_bin(), "--bind", "tcp://127.0.0.1:%d" % self.port, "--control",
                     self.control] + (["--hash", url] if url else []) + list(extra)
        self.proc = tc.Proc("broker", self.argv, self.tmp)
        self.wait_serving()
        self.client = sp.Client(self.control)

    def wait_serving(self):
        tc.wait_for(lambda: "serving" in self.proc.text() or self.proc.p.poll() is not None)
        assert self.proc.p.poll() is None, self.proc.text()[-2000:]

    def restart(self, sig=signal.SIGKILL):
        self.client.close()
        self.proc.stop(sig)
        self.proc.start()
        tc.wait_for(lambda: self.proc.text().count("serving") >= 2)
        self.client = sp.Client(self.control)

    def ctl(self, *args):
        return skickctl(*args, control=self.control)

    def h(self, cmd, timeout=10, **kw):
        return self.client.request("hash", cmd=cmd, timeout=timeout, **kw)

    def close(self):
        """Stop it; its exit status (-1 after a sanitizer report)."""
        self.client.close()
        code = self.proc.stop()
        if tc.SANITIZER.search(self.proc.text()):
            print(self.proc.text()[-3000:], file=sys.stderr)
            code = -1
        shutil.rmtree(self.tmp, ignore_errors=True)
        return code


def send_many(client, n, table, first=0):
    """n hash sets sent at once without waiting; returns their ids."""
    ids = []
    for i in range(n):
        client.req += 1
        ids.append(client.req)
        client._send("CONTROL", {"op": "hash", "id": client.req, "cmd": "set", "table": table,
                                 "key": "k%d" % (first + i), "value": i}, to=(0, 0))
    return ids


def collect(client, ids, timeout):
    """The REPLY bodies for ids (by id), waiting up to timeout; with the
    time (since the call) each came."""
    want, got, t0 = set(ids), {}, time.monotonic()
    deadline = t0 + timeout
    while want and time.monotonic() < deadline:
        e = client.recv(deadline - time.monotonic())
        if e and e["kind"] == "REPLY" and (e["body"] or {}).get("id") in want:
            want.discard(e["body"]["id"])
            got[e["body"]["id"]] = (e["body"], time.monotonic() - t0)
    return got


class RedisCluster(thc.InCluster):
    """thc.InCluster (a broker, a front and two back shards running the
    conformance module) with the broker on Redis, and the shards too when
    shards_too."""

    def __init__(self, url, shards_too):
        self.c = thc.HashCluster(backs=2, broker_args=["--hash", url],
                                 node_args=["--hash", url] if shards_too else [])
        self.procs = self.c.procs
        self.spawn_actors()


class Conformance(thc.Conformance):
    """The suite of test_hash_conformance on the broker's Redis store."""

    def setUp(self):
        self.redis = tr.Redis()

    def tearDown(self):
        self.redis.close()

    def test_a_standalone_in_process(self):
        self.skipTest("test_hash_conformance.py runs it")

    def test_b_cluster_broker_store(self):
        self.skipTest("test_hash_conformance.py runs it")

    def test_c_broker_on_redis(self):
        self.run_on(lambda: RedisCluster(self.redis.url, False), "bredis")
        # the race table's counter went through the broker to Redis
        keys = self.redis.cli("--scan", "--pattern", "conf-bredis-race-*:n").split()
        self.assertEqual(len(keys), 1, keys)
        self.assertEqual(self.redis.cli("GET", keys[0]), "900")

    def test_d_broker_and_shards_on_redis(self):
        self.run_on(lambda: RedisCluster(self.redis.url, True), "allredis")
        keys = self.redis.cli("--scan", "--pattern", "conf-allredis-race-*:n").split()
        self.assertEqual(len(keys), 1, keys)


class BrokerStore(unittest.TestCase):
    """skickctl hash on a broker with --hash, checked with redis-cli."""

    def setUp(self):
        self.redis = tr.Redis()
        self.b = LoneBroker(self.redis.url)

    def tearDown(self):
        code = self.b.close()
        self.redis.close()
        self.assertEqual(code, 0)

    def ok(self, *args):
        p = self.b.ctl(*args)
        self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p.stdout.strip()

    def test_skickctl_hash_goes_to_redis(self):
        self.ok("hash", "set", "users", "alice", '{"age": 30}')
        self.ok("hash", "set", "users", "bob", '"hello"')
        self.ok("hash", "set", "users", "n", "5")
        self.assertEqual(self.redis.cli("GET", "users:alice"), '{"age":30}')
        self.assertEqual(self.redis.cli("GET", "users:bob"), "hello")
        self.assertEqual(self.ok("hash", "incr", "users", "n", "3"), "8")
        self.assertEqual(self.redis.cli("GET", "users:n"), "8")
        self.assertEqual(sorted(self.ok("hash", "keys", "users").split()), ["alice", "bob", "n"])
        self.assertEqual(json.loads(self.ok("hash", "get", "users", "alice")), {"age": 30})
        # written by redis-cli, read through the broker
        self.redis.cli("SET", "users:carol", "1.5")
        self.assertEqual(self.ok("hash", "get", "users", "carol"), "1.5")
        self.ok("hash", "del", "users", "bob")
        self.assertEqual(self.redis.cli("EXISTS", "users:bob"), "0")
        p = self.b.ctl("hash", "get", "users", "bob")
        self.assertEqual(p.returncode, 1)
        self.assertIn("ENOTFOUND", p.stderr)
        # set-if-absent and a TTL become SET NX / PX
        self.ok("hash", "set", "--nx", "--ttl", "60000", "users", "dave", "1")
        pttl = int(self.redis.cli("PTTL", "users:dave"))
        self.assertTrue(0 < pttl <= 60000, pttl)
        p = self.b.ctl("hash", "set", "users", "a:b", "1")
        self.assertIn("EINVAL", p.stderr)
        st = self.b.client.request("stats")["result"]
        self.assertEqual(st["hash_store"], "redis")
        self.assertTrue(st["hash_connected"])
        self.assertIn("127.0.0.1:%d" % self.redis.port, st["hash_redis"])

    def test_a_broker_restart_loses_nothing(self):
        for i in range(50):
            self.assertTrue(self.b.h("set", table="keep", key="k%d" % i, value=i)["ok"])
        self.assertEqual(self.b.h("incr", table="keep", key="n", delta=7)["result"], 7)
        self.b.restart(signal.SIGKILL)
        tc.wait_for(lambda: self.b.client.request("stats")["result"]["hash_connected"], 5)
        for i in range(50):
            self.assertEqual(self.b.h("get", table="keep", key="k%d" % i)["result"], i)
        self.assertEqual(self.b.h("incr", table="keep", key="n", delta=1)["result"], 8)
        r = self.b.h("keys", table="keep", max=1000)["result"]
        self.assertEqual(len(r["keys"]), 51)
        self.assertFalse(r["truncated"])


class Faults(unittest.TestCase):
    """The fault rows of docs/hashes.md, for the broker."""

    def setUp(self):
        self.redis = None
        self.c = None
        self.b = None

    def tearDown(self):
        if self.c:
            codes = self.c.close()
            self.assertTrue(all(v == 0 for v in codes.values()), codes)
            self.assertFalse(self.c.sanitizer_reports())
        if self.b:
            self.assertEqual(self.b.close(), 0)
        if self.redis:
            self.redis.close()

    def log(self):
        return (self.c.broker if self.c else self.b.proc).text()

    def test_down_at_start_then_up(self):
        self.redis = tr.Redis()
        self.redis.kill()
        self.b = LoneBroker(self.redis.url)
        t0 = time.monotonic()
        r = self.b.h("get", table="t", key="a")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(r["code"], "EUNREACH", r)
        time.sleep(0.5)  # a few reconnects fail: still one warning
        self.assertEqual(self.log().count("cannot connect to redis://"), 1, self.log())
        self.redis.start()
        self.assertTrue(tc.wait_for(lambda: self.b.h("set", table="t", key="a", value=1)["ok"],
                                    8))
        self.assertEqual(self.redis.cli("GET", "t:a"), "1")
        self.assertEqual(self.log().count("connected to redis://"), 1, self.log())

    def test_killed_with_requests_pending_then_restarted(self):
        self.redis = tr.Redis()
        self.b = LoneBroker(self.redis.url)
        self.assertTrue(self.b.h("set", table="t", key="x", value=1)["ok"])
        self.redis.signal(signal.SIGSTOP)
        ids = send_many(self.b.client, 100, "t")
        time.sleep(0.3)  # every request is in flight to the stopped Redis
        self.redis.kill()  # -9 (a stopped process dies too)
        got = collect(self.b.client, ids, 3)
        self.assertEqual(len(got), 100, "unanswered: %s" % (set(ids) - set(got)))
        self.assertEqual({b["code"] for b, _ in got.values()}, {"EUNREACH"})
        self.assertLess(max(t for _, t in got.values()), 1.5)
        self.assertEqual(self.log().count("lost the connection to redis://"), 1)
        self.assertEqual(self.b.h("get", table="t", key="x")["code"], "EUNREACH")
        self.redis.start()  # empty: --save ''
        self.assertTrue(tc.wait_for(lambda: self.b.h("set", table="t", key="y", value=2)["ok"],
                                    8))
        self.assertEqual(self.redis.cli("GET", "t:y"), "2")
        self.assertEqual(self.log().count("connected to redis://"), 1)

    def test_stopped_past_the_bound_while_actors_go_on(self):
        self.redis = tr.Redis()
        self.c = tc.Cluster(backs=1, broker_args=["--hash", self.redis.url,
                                                  "--hash-timeout-ms", "2000"])
        echo = self.c.spawn_on(self.c.shard_ids("back")[0], "echo")
        client = sp.Client(self.c.control)
        try:
            self.assertTrue(client.request("hash", cmd="set", table="t", key="a", value=1)["ok"])
            self.redis.signal(signal.SIGSTOP)
            sent = time.monotonic()
            ids = send_many(client, 20, "t")
            # actor traffic through the broker while Redis does not answer
            t0 = time.monotonic()
            for n in range(20):
                kind, r = self.c.client.ask(echo, {"action": "ask", "n": n}, 2)
                self.assertEqual((kind, r["n"]), ("reply", n))
            self.assertLess(time.monotonic() - t0, 1.5)
            waited = time.monotonic() - sent
            got = collect(client, ids, 4)
            self.assertEqual(len(got), 20)
            self.assertEqual({b["code"] for b, _ in got.values()}, {"ETIMEDOUT"})
            # at the bound (2 s), not before, and not much after (the loop looks every round)
            after = [waited + t for _, t in got.values()]
            self.assertGreaterEqual(min(after), 1.9, after)
            self.assertLess(max(after), 3.0, after)
            self.redis.signal(signal.SIGCONT)
            self.assertTrue(client.request("hash", cmd="get", table="t", key="a")["ok"])
            # the sets that timed out were done late: a timeout says nothing about them
            self.assertEqual(client.request("hash", cmd="get", table="t", key="k3")["result"], 3)
        finally:
            self.redis.signal(signal.SIGCONT)
            client.close()

    def test_in_flight_bound(self):
        self.redis = tr.Redis()
        self.b = LoneBroker(self.redis.url, "--hash-inflight", "5")
        self.redis.signal(signal.SIGSTOP)
        try:
            ids = send_many(self.b.client, 12, "t")
            got = collect(self.b.client, ids[5:], 2)
            self.assertEqual({b["code"] for b, _ in got.values()}, {"EBACKLOG"})
            self.assertEqual(len(got), 7)
        finally:
            self.redis.signal(signal.SIGCONT)
        got = collect(self.b.client, ids[:5], 3)
        self.assertTrue(all(b["ok"] for b, _ in got.values()) and len(got) == 5, got)

    def test_auth_refused(self):
        self.redis = tr.Redis("--requirepass", "right-one")
        self.b = LoneBroker("redis://:wrong-one@127.0.0.1:%d" % self.redis.port)
        self.assertTrue(tc.wait_for(lambda: "refused" in self.log(), 5), self.log())
        r = self.b.h("set", table="t", key="a", value=1)
        self.assertEqual(r["code"], "EBACKEND", r)
        self.assertNotIn("wrong-one", self.log())
        self.assertIn("redis://:***@127.0.0.1", self.log())
        self.assertEqual(self.log().count("refused AUTH"), 1, self.log())

    def test_bad_url_is_a_usage_error(self):
        for url in ("rediss://127.0.0.1:1", "redis://127.0.0.1:99999", "http://x"):
            p = subprocess.run([broker_bin(), "--hash", url], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(p.returncode, 2, (url, p.stderr))
            self.assertIn("--hash", p.stderr)
        p = subprocess.run([broker_bin(), "--help"], capture_output=True, text=True, timeout=10)
        self.assertIn("--hash URL", p.stdout)


class Secret(unittest.TestCase):
    """The broker's URL (its password) off the command line."""

    PASSWORD = "bpw-0ff-the-cmdline"

    def setUp(self):
        self.redis = tr.Redis("--requirepass", self.PASSWORD)
        self.tmp = tempfile.mkdtemp(prefix="skick-bredis-secret-")
        self.url = "redis://:%s@127.0.0.1:%d" % (self.PASSWORD, self.redis.port)
        self.b = None

    def tearDown(self):
        if self.b:
            self.assertEqual(self.b.close(), 0)
        self.redis.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def works_unseen(self, key):
        r = self.b.h("set", table="t", key=key, value="v")
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.redis.cli("GET", "t:" + key, auth=self.PASSWORD), "v")
        self.assertEqual(self.b.h("get", table="t", key=key)["result"], "v")
        self.assertNotIn(self.PASSWORD, tr.cmdline(self.b.proc.p.pid))
        self.assertNotIn(self.PASSWORD, self.b.proc.text())
        self.assertNotIn(tr.ARGV_WARNING, self.b.proc.text())

    def test_hash_file(self):
        self.b = LoneBroker(None, "--hash-file", tr.url_file(self.tmp, self.url + "\n"))
        self.works_unseen("file")

    def test_environment(self):
        os.environ["SKICK_HASH_URL"] = self.url  # tc.Proc passes os.environ on
        try:
            self.b = LoneBroker(None)
        finally:
            del os.environ["SKICK_HASH_URL"]
        self.works_unseen("env")

    def test_on_the_command_line_warns_once(self):
        self.b = LoneBroker(self.url)
        self.assertTrue(self.b.h("set", table="t", key="a", value=1)["ok"])
        self.assertEqual(self.b.proc.text().count(tr.ARGV_WARNING), 1, self.b.proc.text())
        self.assertNotIn(self.PASSWORD, self.b.proc.text())

    def refused(self, *args):
        p = subprocess.run([broker_bin()] + list(args), capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertNotIn(self.PASSWORD, p.stderr)
        return p.stderr

    def test_group_readable_or_missing_file_refused(self):
        path = tr.url_file(self.tmp, self.url, mode=0o640)
        err = self.refused("--hash-file", path)
        self.assertIn("permissions 0640 for %s are too open" % path, err)
        self.assertIn("chmod 600 %s" % path, err)
        missing = os.path.join(self.tmp, "nope.url")
        self.assertIn("cannot open %s" % missing, self.refused("--hash-file", missing))


class UpHash(unittest.TestCase):
    """skickctl up --hash: the broker and every shard on one Redis."""

    def test_up_scale_down(self):
        redis = tr.Redis("--requirepass", "pw-s3cr3t")
        run = tempfile.mkdtemp(prefix="skick-bredis-up-")
        url = "redis://:pw-s3cr3t@127.0.0.1:%d" % redis.port
        app = os.path.join(tc.BUILD, "tests", "integration", "cluster_test_app.so")
        port = tc.free_port(3)
        try:
            p = skickctl("up", "--front", "0", "--back", "1", "--app", app, "--broker",
                         "tcp://127.0.0.1:%d" % port, "--hash", url, run_dir=run)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("Hashes: redis://:***@127.0.0.1:%d" % redis.port, p.stdout)
            self.assertNotIn("pw-s3cr3t", p.stdout + p.stderr)
            self.assertEqual(p.stderr.count(tr.ARGV_WARNING), 1, p.stderr)
            with open(os.path.join(run, "cluster.json")) as f:
                rec = json.load(f)
            self.assertEqual(rec["hash"], url)
            self.check_off_the_command_lines(run, rec, url, "pw-s3cr3t")
            for name in ("broker", "back-1"):
                with open(os.path.join(run, "logs", name + ".log")) as f:
                    self.assertNotIn("pw-s3cr3t", f.read())
            # an actor on back-1 writes; Redis has it; skickctl reads it
            shard = json.loads(skickctl("--json", "ps", run_dir=run).stdout)[0]["shard"]
            w = self.spawn(run, shard)
            r = self.ask(run, w, {"action": "hset", "key": "k", "value": {"v": 1}})
            self.assertEqual(redis.cli("GET", "t:k", auth="pw-s3cr3t"), '{"v":1}', r)
            self.assertEqual(json.loads(skickctl("hash", "get", "t", "k", run_dir=run).stdout),
                             {"v": 1})
            self.assertEqual(skickctl("hash", "set", "t", "k2", "7", run_dir=run).returncode, 0)
            # scale: back-2 gets --hash too and reads the same data
            p = skickctl("scale", "back=2", run_dir=run)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            ps = json.loads(skickctl("--json", "ps", run_dir=run).stdout)
            new = [e["shard"] for e in ps if e["name"] == "back-2"][0]
            w2 = self.spawn(run, new)
            self.assertEqual(self.ask(run, w2, {"action": "hget", "key": "k2"}).get("value"), 7)
            with open(os.path.join(run, "cluster.json")) as f:
                argv = [q for q in json.load(f)["processes"] if q["name"] == "back-2"][0]["argv"]
            self.assertIn("--hash-file", argv)
            with open(os.path.join(run, "cluster.json")) as f:
                self.check_off_the_command_lines(run, json.load(f), url, "pw-s3cr3t")
            st = json.loads(skickctl("--json", "stats", run_dir=run).stdout)
            self.assertIn("hash_store", json.dumps(st))
            self.assertEqual(skickctl("down", run_dir=run).returncode, 0)
        finally:
            skickctl("down", run_dir=run)
            redis.close()
            shutil.rmtree(run, ignore_errors=True)

    def check_off_the_command_lines(self, run, rec, url, password):
        """Every process of rec got --hash-file RUN/hash.url (0600, the URL), and
        the password is on no command line."""
        path = os.path.join(run, "hash.url")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            self.assertEqual(f.read(), url + "\n")
        self.assertEqual({q["name"] for q in rec["processes"]} >= {"broker", "back-1"}, True)
        for proc in rec["processes"]:
            self.assertNotIn("--hash", proc["argv"])
            self.assertEqual(proc["argv"][proc["argv"].index("--hash-file") + 1], path)
            self.assertNotIn(password, tr.cmdline(proc["pid"]), proc["name"])
            with open(proc["log"]) as f:
                self.assertNotIn(password, f.read(), proc["name"])

    def test_up_from_file_and_environment(self):
        redis = tr.Redis("--requirepass", "pw-fr0m-f1le")
        url = "redis://:pw-fr0m-f1le@127.0.0.1:%d" % redis.port
        app = os.path.join(tc.BUILD, "tests", "integration", "cluster_test_app.so")
        tmp = tempfile.mkdtemp(prefix="skick-bredis-upf-")
        try:
            for how in ("file", "env"):
                run = os.path.join(tmp, how)
                port = tc.free_port(3)
                args = ["up", "--front", "0", "--back", "1", "--app", app, "--broker",
                        "tcp://127.0.0.1:%d" % port]
                if how == "file":
                    args += ["--hash-file", tr.url_file(tmp, url + "\n")]
                    os.environ.pop("SKICK_HASH_URL", None)
                else:
                    os.environ["SKICK_HASH_URL"] = url  # skickctl() passes os.environ on
                try:
                    p = skickctl(*args, run_dir=run)
                finally:
                    os.environ.pop("SKICK_HASH_URL", None)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertNotIn(tr.ARGV_WARNING, p.stderr)
                self.assertNotIn("pw-fr0m-f1le", p.stdout + p.stderr)
                with open(os.path.join(run, "cluster.json")) as f:
                    self.check_off_the_command_lines(run, json.load(f), url, "pw-fr0m-f1le")
                self.assertEqual(skickctl("hash", "set", "t", how, "1", run_dir=run).returncode,
                                 0)
                self.assertEqual(redis.cli("GET", "t:" + how, auth="pw-fr0m-f1le"), "1")
                self.assertEqual(skickctl("down", run_dir=run).returncode, 0)
            bad = tr.url_file(tmp, url, mode=0o644, name="open.url")
            p = skickctl("up", "--hash-file", bad, run_dir=os.path.join(tmp, "bad"))
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("permissions 0644 for %s are too open" % bad, p.stderr)
        finally:
            for how in ("file", "env"):
                skickctl("down", run_dir=os.path.join(tmp, how))
            redis.close()
            shutil.rmtree(tmp, ignore_errors=True)

    def spawn(self, run, shard):
        p = skickctl("ask", "%s:%s" % (shard, shard), '{"action":"spawn","type":"watcher"}',
                     run_dir=run)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return json.loads(p.stdout)["address"]

    def ask(self, run, addr, msg):
        p = skickctl("ask", addr, json.dumps(msg), run_dir=run)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return json.loads(p.stdout)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    tc.BUILD = tr.BUILD = os.path.abspath(sys.argv[1])
    if not shutil.which("redis-server"):
        print("redis-server is not installed (Debian: redis-server)")
        return 77
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False, verbosity=2)
    r = prog.result
    print("%d passed, %d failed" % (r.testsRun - len(r.failures) - len(r.errors),
                                    len(r.failures) + len(r.errors)))
    for p in tr._procs:
        if p.poll() is None:
            p.kill()
    return 0 if r.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
