#!/usr/bin/python3
"""test_curve_roles.py - secure by default: CURVE on, keys bound to roles

Usage: /usr/bin/python3 tests/integration/test_curve_roles.py BUILD_DIR [unittest args]

Real processes on loopback (skickctl, skick-broker, skick-node from
BUILD_DIR) and rogue peers written here with pyzmq, speaking the envelope
format of skick_proto.py:

* `skickctl up` without flags makes a CURVE cluster with one key per role
  (RUN_DIR/keys/allow/shards/, clients/, bridges/); a peer without keys, or
  with a key the broker does not admit, gets no link and no directory.
* The client key (skickctl's) cannot join as a shard; a shard key cannot
  join as a client, nor run control-plane operations (ps, stats, forwarded
  shard operations), only `hash`; a client key cannot publish directory
  entries. A key added to allow/clients/ is admitted without a restart.
* `skickctl up --insecure`: skickctl, the broker and every shard warn once
  that the cluster is open to every local user.
* A secret key file others may read makes the broker, a shard and skickctl
  refuse to start, with ssh's "chmod 600" hint; a broker without CURVE
  refuses a non-loopback --bind unless --insecure; certificates directly in
  --curve-allow (the layout before roles) are refused with a migration
  message; keygen writes 0600 secrets and admits a key per role.
"""
import json
import os
import select
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skick_proto as sp  # noqa: E402

BUILD = None
INSECURE = "open to every local user"
# The checks read warnings and notices from the processes' logs, whatever
# level the caller chose (make test runs ctest with SKICK_LOG_LEVEL=error).
os.environ["SKICK_LOG_LEVEL"] = "info"
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def sanitizer_reports(run_dir):
    """The logs of run_dir/logs that hold a sanitizer report (ASan builds)."""
    logs = os.path.join(run_dir, "logs")
    found = []
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        with open(os.path.join(logs, name), errors="replace") as f:
            if SANITIZER.search(f.read()):
                found.append(name)
    return found


def free_base():
    """A port P with P, P+1 and P+2 free on every address (the broker's shard
    endpoint and its two directory endpoints): P is the kernel's pick."""
    for _ in range(200):
        probe = socket.socket()
        probe.bind(("0.0.0.0", 0))
        base = probe.getsockname()[1]
        probe.close()
        if base + 2 >= 65534:
            continue
        try:
            for p in (base, base + 1, base + 2):
                with socket.socket() as s:
                    s.bind(("0.0.0.0", p))
            return base
        except OSError:
            continue
    raise RuntimeError("no three free ports in a row")


def output_until(argv, text, timeout=15):
    """Start argv, read its output until a line holds text (or it ends or
    timeout passes), stop it with SIGTERM; returns what was read."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, deadline = "", time.time() + timeout
    try:
        while text not in out and time.time() < deadline:
            # raw reads under select: never block past the deadline on a
            # process that prints nothing (no buffered readline either)
            if not select.select([proc.stdout], [], [], max(0, deadline - time.time()))[0]:
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk.decode(errors="replace")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()
    return out


def binary(*parts):
    return os.path.join(BUILD, *parts)


def ctl(run_dir, *args, timeout=60):
    return subprocess.run([binary("cli", "skickctl"), "--run-dir", run_dir] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def write_cert(path, pub, sec=None, mode=0o600):
    lines = ["#   ZeroMQ CURVE Certificate (test_curve_roles.py)", "metadata",
             "    name = \"test\"", "curve", "    public-key = \"%s\"" % pub.decode()]
    if sec:
        lines.append("    secret-key = \"%s\"" % sec.decode())
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, mode)


class Rogue:
    """A pyzmq peer: a DEALER (or SUB/PUB) with optional CURVE keys."""

    def __init__(self, endpoint, server=None, key=None, kind=zmq.DEALER, shard_rid=True):
        self.sock = zmq.Context.instance().socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.id = int.from_bytes(os.urandom(8), "big") | 1
        if kind == zmq.DEALER and shard_rid:
            self.sock.setsockopt(zmq.ROUTING_ID, self.id.to_bytes(8, "big"))
        if server:
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, server)
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, key[0])
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, key[1])
        if kind == zmq.SUB:
            self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.seq = 0

    def close(self):
        self.sock.close(0)

    def send(self, kind, body, frm=None, to=(0, 0)):
        self.seq += 1
        self.sock.send_multipart(sp.pack(kind, self.seq, body, frm or (self.id, self.id), to))

    def recv(self, timeout):
        if self.sock.poll(int(timeout * 1000)):
            return sp.unpack(self.sock.recv_multipart())
        return None

    def hello(self, peer="shard", timeout=3.0):
        """The welcome's body, or None when nothing came back."""
        self.seq = 0
        frm = (self.id, self.id) if peer == "shard" else (self.id, 1)
        body = {"peer": peer, "pid": os.getpid(), "host": "rogue", "version": "0.1.0"}
        if peer == "shard":
            body.update(roles=["back"], ws=None, apps=[])
        deadline = time.time() + timeout
        self.send("HELLO", body, frm=frm)
        while time.time() < deadline:
            e = self.recv(deadline - time.time())
            if e and e["kind"] == "REPLY" and "welcome" in (e["body"] or {}):
                return e["body"]
        return None

    def request(self, op, to=(0, 0), frm=None, timeout=3.0, **args):
        body = dict(args, op=op, id=self.seq + 1)
        self.send("CONTROL", body, frm=frm, to=to)
        deadline = time.time() + timeout
        while time.time() < deadline:
            e = self.recv(deadline - time.time())
            if e and e["kind"] == "REPLY" and (e["body"] or {}).get("id") == body["id"]:
                return e["body"]
        return None


class CurveCluster(unittest.TestCase):
    """`skickctl up` without flags: a CURVE cluster, keys per role."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="skick-curve-")
        cls.base = free_base()
        cls.ep = "tcp://127.0.0.1:%d" % cls.base
        p = ctl(cls.dir, "up", "--front", "0", "--back", "1", "--app",
                binary("examples", "hello.so"), "--broker", cls.ep, "--wait", "20000")
        cls.up_stderr = p.stderr
        try:
            # (tearDownClass does not run when this fails: stop what started)
            if p.returncode != 0:
                raise RuntimeError("skickctl up failed: %s%s" % (p.stdout, p.stderr))
            keys = os.path.join(cls.dir, "keys")
            cls.server = sp.read_cert(os.path.join(keys, "broker.cert"))[0]
            cls.node_key = sp.read_cert(os.path.join(keys, "node.cert_secret"))
            cls.client_key = sp.read_cert(os.path.join(keys, "client.cert_secret"))
            cls.control = "ipc://%s/control" % os.path.realpath(cls.dir)
            cls.back = json.loads(ctl(cls.dir, "--json", "ps").stdout)[0]["shard"]
        except Exception:
            ctl(cls.dir, "down", "--wait", "5000")
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        ctl(cls.dir, "down", "--wait", "5000")
        reports = sanitizer_reports(cls.dir)
        if not reports and not os.environ.get("SKICK_TEST_KEEP"):
            shutil.rmtree(cls.dir, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer reports in %s/logs: %s" % (cls.dir, reports))

    def log(self, name):
        with open(os.path.join(self.dir, "logs", name + ".log"), errors="replace") as f:
            return f.read()

    def rogue(self, endpoint, key=None, **kw):
        r = Rogue(endpoint, self.server if key else None, key, **kw)
        self.addCleanup(r.close)
        return r

    def dir_ep(self, offset):
        return "tcp://127.0.0.1:%d" % (self.base + offset)

    def test_up_makes_keys_per_role(self):
        allow = os.path.join(self.dir, "keys", "allow")
        self.assertEqual(sorted(os.listdir(allow)), ["bridges", "clients", "shards"])
        self.assertEqual(os.listdir(os.path.join(allow, "shards")), ["node.cert"])
        self.assertIn("client.cert", os.listdir(os.path.join(allow, "clients")))
        self.assertEqual(os.listdir(os.path.join(allow, "bridges")), [])
        for name in ("broker", "node", "client"):
            mode = os.stat(os.path.join(self.dir, "keys", name + ".cert_secret")).st_mode
            self.assertEqual(mode & 0o077, 0, name)
        self.assertIn("CURVE", self.log("broker"))
        self.assertNotIn(INSECURE, self.log("broker") + self.log("back-1") + self.up_stderr)

    def test_no_keys_no_link_no_directory(self):
        plain = self.rogue(self.ep)
        self.assertIsNone(plain.hello(timeout=1.5), "a peer without CURVE got an answer")
        sub = self.rogue(self.dir_ep(2), kind=zmq.SUB)
        self.assertIsNone(sub.recv(2.0), "a subscriber without CURVE got the directory")

    def test_unknown_key_no_link(self):
        stranger = zmq.curve_keypair()
        r = self.rogue(self.ep, stranger)
        self.assertIsNone(r.hello(timeout=1.5), "a key not admitted got an answer")
        sub = self.rogue(self.dir_ep(2), stranger, kind=zmq.SUB)
        self.assertIsNone(sub.recv(2.0), "a key not admitted got the directory")

    def test_client_key_cannot_join_as_shard(self):
        r = self.rogue(self.ep, self.client_key)
        w = r.hello()
        self.assertIsNotNone(w, "no answer to the client key's shard HELLO")
        self.assertIs(w["welcome"], False, w)
        self.assertEqual(w["code"], "ECONTEXT", w)
        self.assertIn("client key cannot join as a shard", w["error"])
        ps = json.loads(ctl(self.dir, "--json", "ps").stdout)
        self.assertNotIn("%016x" % r.id, [s["shard"] for s in ps])

    def test_client_key_cannot_publish_directory(self):
        # the real shard's entry, taken over with a huge version if a client
        # key could publish it: on the directory-in socket, or over a link
        back = (int(self.back, 16),) * 2
        fake = {"shard": self.back, "version": 10 ** 12, "roles": ["back"], "ws": None,
                "types": [], "services": {}, "sessions": []}
        pub = self.rogue(self.dir_ep(1), self.client_key, kind=zmq.PUB)
        link = self.rogue(self.ep, self.client_key)
        link.hello(peer="client")
        for _ in range(10):
            pub.sock.send_multipart(sp.pack("DIRECTORY", 10 ** 12, fake, frm=back))
            link.send("DIRECTORY", fake, frm=back)
            time.sleep(0.1)
        cl = self.rogue(self.control, self.client_key, shard_rid=False)
        self.assertTrue(cl.hello(peer="client"))
        entry = cl.request("directory", frm=(cl.id, 1))["result"][self.back]
        self.assertLess(entry["version"], 10 ** 12, entry)
        self.assertIn("info", entry["types"])

    def test_shard_key_control_plane_refused(self):
        r = self.rogue(self.ep, self.node_key)
        w = r.hello()
        self.assertTrue(w and w["welcome"], w)
        for op, to in (("ps", (0, 0)), ("stats", (0, 0)), ("services", (0, 0)),
                       ("actors", (int(self.back, 16),) * 2),
                       ("stop", (int(self.back, 16),) * 2)):
            rep = r.request(op, to=to, address="%s:%016x" % (self.back, 1))
            self.assertIsNotNone(rep, op)
            self.assertIs(rep["ok"], False, (op, rep))
            self.assertEqual(rep["code"], "ECONTEXT", (op, rep))
        # the cluster's hash backend stays open to shards
        rep = r.request("hash", cmd="set", table="t", key="k", value=1)
        self.assertTrue(rep and rep["ok"], rep)
        r.send("LOST", {"shard": "%016x" % r.id})

    def test_shard_key_cannot_join_as_client(self):
        r = self.rogue(self.control, self.node_key, shard_rid=False)
        w = r.hello(peer="client")
        self.assertTrue(w is not None and w["welcome"] is False, w)
        self.assertEqual(w["code"], "ECONTEXT", w)

    def test_client_key_runs_control(self):
        r = self.rogue(self.control, self.client_key, shard_rid=False)
        w = r.hello(peer="client")
        self.assertTrue(w and w["welcome"], w)
        rep = r.request("ps", frm=(r.id, 1))
        self.assertTrue(rep and rep["ok"], rep)

    def test_new_key_admitted_without_restart(self):
        pub, sec = zmq.curve_keypair()
        r = self.rogue(self.control, (pub, sec), shard_rid=False)
        self.assertIsNone(r.hello(peer="client", timeout=1.0))
        write_cert(os.path.join(self.dir, "keys", "allow", "clients", "late.cert"), pub,
                   mode=0o644)
        r2 = self.rogue(self.control, (pub, sec), shard_rid=False)
        w = r2.hello(peer="client", timeout=5.0)
        self.assertTrue(w and w["welcome"], w)


    def test_edited_key_admitted_on_sighup(self):
        path = os.path.join(self.dir, "keys", "allow", "clients", "edited.cert")
        write_cert(path, zmq.curve_keypair()[0], mode=0o644)
        r = self.rogue(self.control, self.client_key, shard_rid=False)
        self.assertTrue(r.hello(peer="client"))  # the broker has read the directory since
        pub, sec = zmq.curve_keypair()
        with open(path, "r+") as f:  # rewritten in place: the directory does not change
            text = f.read()
            f.seek(0)
            f.write(re.sub(r'public-key = "[^"]+"', 'public-key = "%s"' % pub.decode(), text))
        r1 = self.rogue(self.control, (pub, sec), shard_rid=False)
        self.assertIsNone(r1.hello(peer="client", timeout=1.0), "admitted before SIGHUP")
        with open(os.path.join(self.dir, "broker.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)
        r2 = self.rogue(self.control, (pub, sec), shard_rid=False)
        w = r2.hello(peer="client", timeout=5.0)
        self.assertTrue(w and w["welcome"], w)
        self.assertIn("SIGHUP: reading the admitted keys again", self.log("broker"))


class InsecureCluster(unittest.TestCase):
    """`skickctl up --insecure`: every process warns once."""

    def test_every_process_warns(self):
        d = tempfile.mkdtemp(prefix="skick-insecure-")
        self.addCleanup(shutil.rmtree, d, True)
        ep = "tcp://127.0.0.1:%d" % free_base()
        p = ctl(d, "up", "--insecure", "--front", "0", "--back", "2", "--app",
                binary("examples", "hello.so"), "--broker", ep, "--wait", "20000")
        try:
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(p.stderr.count(INSECURE), 1, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "keys")))
            for name in ("broker", "back-1", "back-2"):
                with open(os.path.join(d, "logs", name + ".log"), errors="replace") as f:
                    self.assertEqual(f.read().count(INSECURE), 1, name)
        finally:
            ctl(d, "down", "--wait", "5000")
        self.assertEqual(sanitizer_reports(d), [])


class Refusals(unittest.TestCase):
    """Processes that must not start, and keygen."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="skick-refuse-")
        os.chmod(self.dir, 0o700)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.srv = zmq.curve_keypair()
        self.secret = os.path.join(self.dir, "broker.cert_secret")
        write_cert(self.secret, *self.srv)
        write_cert(os.path.join(self.dir, "broker.cert"), self.srv[0], mode=0o644)
        self.allow = os.path.join(self.dir, "allow")
        os.makedirs(os.path.join(self.allow, "shards"))

    def broker(self, *args, timeout=10):
        ep = "tcp://127.0.0.1:%d" % free_base()
        cmd = [binary("broker", "skick-broker"), "--control", "ipc://%s/ctl" % self.dir]
        if "--bind" not in args:
            cmd += ["--bind", ep]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)
        self.assertIsNone(SANITIZER.search(p.stderr), p.stderr)
        return p

    def test_world_readable_secret_broker(self):
        os.chmod(self.secret, 0o644)
        p = self.broker("--curve-secret", self.secret, "--curve-allow", self.allow)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("permissions 0644 for the secret key file %s are too open" % self.secret,
                      p.stderr)
        self.assertIn("chmod 600 %s" % self.secret, p.stderr)

    def test_world_readable_secret_node(self):
        os.chmod(self.secret, 0o666)
        p = subprocess.run([binary("node", "skick-node"), "--back", "--broker",
                            "tcp://127.0.0.1:%d" % free_base(), "--curve-secret", self.secret,
                            "--curve-server", os.path.join(self.dir, "broker.cert")],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("permissions 0666", p.stderr)
        self.assertIn("chmod 600", p.stderr)

    def test_group_readable_secret_skickctl(self):
        os.chmod(self.secret, 0o640)
        listener = zmq.Context.instance().socket(zmq.ROUTER)  # so that skickctl gets as far
        listener.setsockopt(zmq.LINGER, 0)
        listener.bind("ipc://%s/ctl" % self.dir)
        self.addCleanup(listener.close)
        p = subprocess.run([binary("cli", "skickctl"), "--control", "ipc://%s/ctl" % self.dir,
                            "--curve-secret", self.secret, "--curve-server",
                            os.path.join(self.dir, "broker.cert"), "ps"],
                           capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("permissions 0640", p.stderr)

    def test_no_curve_public_bind_refused(self):
        port = free_base()
        p = self.broker("--bind", "tcp://0.0.0.0:%d" % port)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("without CURVE the broker listens on loopback", p.stderr)
        self.assertIn("--insecure", p.stderr)
        # with --insecure it starts, and warns
        out = output_until([binary("broker", "skick-broker"), "--bind", "tcp://0.0.0.0:%d" % port,
                            "--control", "ipc://%s/ctl" % self.dir, "--insecure"],
                           "serving shards")
        self.assertIn("serving shards", out)
        self.assertIn(INSECURE, out)

    def test_flat_allow_refused(self):
        write_cert(os.path.join(self.allow, "old.cert"), zmq.curve_keypair()[0], mode=0o644)
        p = self.broker("--curve-secret", self.secret, "--curve-allow", self.allow)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("move each shard's certificate into %s/shards/" % self.allow, p.stderr)

    def test_standalone_node_does_not_warn(self):
        port = free_base()
        out = output_until([binary("node", "skick-node"), "--port", str(port)], "running with")
        self.assertIn("running with", out)
        self.assertNotIn(INSECURE, out)

    def test_keygen_admits_per_role(self):
        keys = os.path.join(self.dir, "keys")
        p = subprocess.run([binary("cli", "skickctl"), "keygen", "--allow", self.allow,
                            "--role", "client", keys, "admin"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.stat(os.path.join(keys, "admin.cert_secret")).st_mode & 0o777, 0o600)
        admitted = os.path.join(self.allow, "clients", "admin.cert")
        self.assertEqual(sp.read_cert(admitted)[0],
                         sp.read_cert(os.path.join(keys, "admin.cert"))[0])
        p = subprocess.run([binary("cli", "skickctl"), "keygen", "--allow", self.allow,
                            "--role", "root", keys, "x"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2, p.stderr)


def main():
    global BUILD
    if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
        sys.exit(__doc__)
    BUILD = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)


if __name__ == "__main__":
    main()
