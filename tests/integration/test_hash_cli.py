#!/usr/bin/python3
"""test_hash_cli.py - skickctl hash against a real skick-broker

Usage: /usr/bin/python3 tests/integration/test_hash_cli.py BUILD_DIR [unittest args]

Runs BUILD_DIR/cli/skickctl with --control against a broker it starts
(test_cluster.Proc), and against a cluster whose back shards load
cluster_test_app.so: what skickctl sets a shard reads (skick_hash_get on
table "t"), and what a shard sets skickctl reads. Checks the output, the
--json output, the exit codes (0 ok, 1 failure, 2 usage) and the messages.
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
import test_hash_conformance as thc  # noqa: E402  (LoneBroker)


def skickctl(control, *args, timeout=20):
    env = dict(os.environ)
    env.pop("SKICK_CONTROL", None)
    p = subprocess.run([os.path.join(tc.BUILD, "cli", "skickctl"), "--control", control]
                       + list(args), capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


class HashCommands(thc.LoneBroker):
    """skickctl hash against a broker of its own."""

    def run_ok(self, *args):
        rc, out, err = skickctl(self.control, *args)
        self.assertEqual(rc, 0, (args, out, err))
        return out

    def run_fail(self, rc_want, *args):
        rc, out, err = skickctl(self.control, *args)
        self.assertEqual(rc, rc_want, (args, out, err))
        return out, err

    def test_set_get_values(self):
        cases = [("hello", "hello"), ("hello world", "hello world"), ("42", 42), ("-1.5", -1.5),
                 ("true", True), ('"42"', "42"), ('{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}),
                 ("[]", []), ("h\u00e9llo \u2713", "h\u00e9llo \u2713"), ("{nope", "{nope")]
        for i, (text, value) in enumerate(cases):
            key = "v%d" % i
            dash = ["--"] if text.startswith("-") else []  # else getopt takes it for an option
            self.assertEqual(self.run_ok("hash", "set", "cli", key, *dash, text),
                             "stored cli %s\n" % key)
            self.assertEqual(json.loads(self.run_ok("hash", "get", "cli", key)), value, text)
            got = json.loads(self.run_ok("--json", "hash", "get", "cli", key))
            self.assertEqual(got, {"ok": True, "table": "cli", "key": key, "value": value})
            self.assertEqual(self.run_ok("hash", "del", "cli", key), "deleted cli %s\n" % key)

    def test_missing_keys_fail_with_enotfound(self):
        out, err = self.run_fail(1, "hash", "get", "cli", "absent")
        self.assertEqual(err, "skickctl: ENOTFOUND: hash get: no such key\n")
        out, err = self.run_fail(1, "--json", "hash", "del", "cli", "absent")
        self.assertEqual(json.loads(out)["code"], "ENOTFOUND")

    def test_nx_and_ttl(self):
        self.assertEqual(self.run_ok("hash", "set", "--nx", "cli2", "k", "1"), "stored cli2 k\n")
        self.assertEqual(self.run_ok("hash", "set", "cli2", "k", "2", "--nx"),
                         "not stored: cli2 k is present (--nx)\n")
        self.assertEqual(json.loads(self.run_ok("--json", "hash", "set", "cli2", "k", "3", "--nx")),
                         {"ok": True, "table": "cli2", "key": "k", "stored": False})
        self.assertEqual(self.run_ok("hash", "get", "cli2", "k"), "1\n")
        # The TTL leaves room for a skickctl start under ASan on a busy
        # machine (a 300 ms TTL expired before the first get in CI).
        self.run_ok("hash", "set", "cli2", "t", "soon", "--ttl", "3000")
        self.assertEqual(self.run_ok("hash", "get", "cli2", "t"), '"soon"\n')
        time.sleep(3.2)
        self.run_fail(1, "hash", "get", "cli2", "t")
        self.run_ok("hash", "del", "cli2", "k")

    def test_incr(self):
        self.assertEqual(self.run_ok("hash", "incr", "cli3", "n"), "1\n")
        self.assertEqual(self.run_ok("hash", "incr", "cli3", "n", "41"), "42\n")
        self.assertEqual(self.run_ok("hash", "incr", "cli3", "n", "--", "-50"), "-8\n")
        self.assertEqual(json.loads(self.run_ok("--json", "hash", "incr", "cli3", "n", "0")),
                         {"ok": True, "table": "cli3", "key": "n", "value": -8})
        self.run_ok("hash", "set", "cli3", "s", "text")
        out, err = self.run_fail(1, "hash", "incr", "cli3", "s")
        self.assertEqual(err, "skickctl: ETYPE: hash incr: the stored value is not an integer\n")
        self.run_ok("hash", "set", "cli3", "m", str(2 ** 63 - 1))
        out, err = self.run_fail(1, "hash", "incr", "cli3", "m")
        self.assertIn("EINVAL", err)
        for k in ("n", "s", "m"):
            self.run_ok("hash", "del", "cli3", k)

    def test_keys(self):
        for i in range(5):
            self.run_ok("hash", "set", "cli4", "k%d" % i, str(i))
        self.assertEqual(sorted(self.run_ok("hash", "keys", "cli4").split()),
                         ["k%d" % i for i in range(5)])
        rc, out, err = skickctl(self.control, "hash", "keys", "cli4", "--max", "2")
        self.assertEqual((rc, len(out.split())), (0, 2))
        self.assertIn("more than 2 keys", err)
        got = json.loads(self.run_ok("--json", "hash", "keys", "cli4", "--max", "5"))
        self.assertEqual((sorted(got["keys"]), got["truncated"]), (["k%d" % i for i in range(5)],
                                                                   False))
        self.assertEqual(self.run_ok("hash", "keys", "nosuchtable"), "")
        for i in range(5):
            self.run_ok("hash", "del", "cli4", "k%d" % i)

    def test_usage_errors(self):
        for args, text in [(["hash"], "missing argument"),
                           (["hash", "get"], "missing argument"),
                           (["hash", "frob", "t"], "unknown hash command 'frob'"),
                           (["hash", "get", "t"], "usage: skickctl hash get TABLE KEY"),
                           (["hash", "set", "t", "k"], "usage: skickctl hash set"),
                           (["hash", "keys", "t", "k"], "usage: skickctl hash keys"),
                           (["hash", "set", "t", "k", "null"], "null is not storable"),
                           (["hash", "get", "t", "k", "--ttl", "5"], "--ttl applies to hash set"),
                           (["hash", "get", "t", "k", "--nx"], "--nx applies to hash set"),
                           (["hash", "incr", "t", "k", "--max", "5"], "--max applies to hash keys"),
                           (["hash", "set", "t", "k", "v", "--ttl", "0"], "--ttl expects"),
                           (["hash", "keys", "t", "--max", "100001"], "--max expects"),
                           (["hash", "incr", "t", "k", "1.5"], "DELTA must be an integer"),
                           (["hash", "incr", "t", "k", "-5"], "unknown option '-5'")]:
            out, err = self.run_fail(2, *args)
            self.assertIn(text, err, args)

    def test_bad_names_are_the_brokers_einval(self):
        out, err = self.run_fail(1, "hash", "get", "bad table", "k")
        self.assertIn("EINVAL: hash: a table name is 1-256 bytes", err)
        out, err = self.run_fail(1, "hash", "set", "t", "a\nb", "1")
        self.assertIn("EINVAL: hash: a key is 1-1024 bytes", err)

    def test_help(self):
        out = self.run_ok("hash", "--help")
        for word in ("hash get TABLE KEY", "--ttl MS", "--nx", "--max N", "-- -5"):
            self.assertIn(word, out)
        self.assertIn("hash CMD TABLE [ARGS]", self.run_ok("--help"))

    def test_no_broker(self):
        rc, out, err = skickctl("ipc://%s/nothere" % self.tmp, "hash", "get", "t", "k")
        self.assertEqual(rc, 1)
        self.assertIn("EUNREACH", err)


class WithShards(unittest.TestCase):
    """skickctl and a shard's actors see the same store."""

    def test_skickctl_and_shards_share_the_store(self):
        c = tc.Cluster(backs=1)
        try:
            w = c.spawn_on(c.shard_ids("back")[0], "watcher")
            self.assertEqual(skickctl(c.control, "hash", "set", "t", "from-cli",
                                      '{"n": 1}')[0], 0)
            self.assertEqual(c.client.ask(w, {"action": "hget", "key": "from-cli"}),
                             ("reply", {"value": {"n": 1}}))
            self.assertEqual(c.client.ask(w, {"action": "hset", "key": "from-shard",
                                               "value": [1, "two"]}), ("reply", {}))
            rc, out, err = skickctl(c.control, "hash", "get", "t", "from-shard")
            self.assertEqual((rc, json.loads(out)), (0, [1, "two"]))
            rc, out, err = skickctl(c.control, "hash", "keys", "t")
            self.assertEqual(sorted(out.split()), ["from-cli", "from-shard"])
        finally:
            codes = c.close()
        self.assertTrue(all(v == 0 for v in codes.values()), codes)


if __name__ == "__main__":
    sys.exit(tc.main())  # BUILD_DIR [unittest args]: sets tc.BUILD, runs this file's tests
