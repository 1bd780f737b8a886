#!/usr/bin/python3
"""test_amqp_bridge.py - skick-amqp-bridge against a real RabbitMQ and a real cluster

Usage: /usr/bin/python3 tests/integration/test_amqp_bridge.py BUILD_DIR [unittest args]

Starts a private rabbitmq-server on loopback (DEPS.md section 5: every path
in a temporary directory, ports of its own so that parallel ctest runs do
not clash), a skick-broker, a front shard and a back shard loading
BUILD_DIR/tests/integration/amqp_test_app.so (amqp_app.c), and
skick-amqp-bridge. AMQP is spoken by clients that are not ours: pika
(python3-pika) and amqp-tools (amqp-publish, amqp-get). It checks what
docs/amqp.md promises:

  * a message to actor.<address> and to service.<name> reaches the actor,
    and is acked (the bridge's queue is empty afterwards);
  * request/reply with a reply queue and with direct reply-to
    (amq.rabbitmq.reply-to): the answer has the request's correlation_id;
    errors come back as error bodies with the x-skick-error header (EDEAD,
    EACTION, ESCHEMA, ETIMEDOUT), never silence;
  * bad bodies (not JSON, not an object, no action, 16 MiB) and bad routing
    keys are rejected without requeue: they are in the dead-letter queue,
    counted in the bridge's stats;
  * a full mailbox: what the shard refused is dead-lettered, the rest
    delivered, every message accounted for;
  * an actor publishing out (skick_amqp_publish, confirmed), to an exchange
    that does not exist (ENOTFOUND, the bridge keeps working), and the
    outbound bound (RabbitMQ stopped: EBACKLOG at once beyond --max-pending);
  * a subscription of an actor to a queue bound to amq.topic;
  * faults: RabbitMQ killed -9 and restarted mid-traffic (every message the
    publisher had confirmed is delivered or dead-lettered; a publish in
    flight fails with EUNREACH; the bridge reconnects, logging the outage
    once), and the skick broker restarted mid-traffic (the bridge holds the
    deliveries and delivers them once the cluster is back).

Every wait is bounded. The processes stop with SIGTERM and must exit 0 with
logs free of sanitizer reports. The last line is "N passed, M failed".
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skick_proto as sp  # noqa: E402
import test_cluster as TC  # noqa: E402

WAIT = 15.0
RMQ_BIN = "/usr/lib/rabbitmq/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RabbitMQ:
    """A private rabbitmq-server (DEPS.md section 5), restartable on its ports and data."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="skick-rmq-")
        self.port, self.dist, self.epmd = free_port(), free_port(), free_port()
        self.tls_port = free_port()
        self.name = "skick%d@localhost" % self.port
        self.env = dict(os.environ, HOME=self.dir, RABBITMQ_NODENAME=self.name,
                        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                        RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(self.dist),
                        ERL_EPMD_ADDRESS="127.0.0.1", ERL_EPMD_PORT=str(self.epmd),
                        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface "
                                                            "{127,0,0,1}",
                        RABBITMQ_CONFIG_FILE=self.path("rabbitmq.conf"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=self.path("enabled_plugins"),
                        RABBITMQ_MNESIA_BASE=self.path("mnesia"),
                        RABBITMQ_LOG_BASE=self.path("log"),
                        RABBITMQ_PID_FILE=self.path("beam.pid"),
                        RABBITMQ_CONF_ENV_FILE=self.path("rabbitmq-env.conf"))
        os.makedirs(self.path("log"))
        open(self.path("rabbitmq-env.conf"), "w").close()
        with open(self.path("enabled_plugins"), "w") as f:
            f.write("[].\n")
        self.make_certs()
        with open(self.path("rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp.default = 127.0.0.1:%d\nlog.console = false\n"
                    "vm_memory_high_watermark.absolute = 1GB\n" % self.port)
            # amqps:// too, with a certificate for localhost from a CA of our own
            f.write("listeners.ssl.default = 127.0.0.1:%d\nssl_options.cacertfile = %s\n"
                    "ssl_options.certfile = %s\nssl_options.keyfile = %s\n"
                    "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n"
                    % (self.tls_port, self.path("ca.pem"), self.path("server.pem"),
                       self.path("server.key")))
        self.proc = None
        self.start()

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_certs(self):
        """ca.pem, and server.pem/server.key for localhost and 127.0.0.1 signed by it;
        other-ca.pem, a CA that signed nothing here."""
        def ssl(*args):
            subprocess.run(["openssl"] + list(args), cwd=self.dir, check=True,
                           capture_output=True, timeout=60)
        for ca in ("ca", "other-ca"):
            ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key",
                "-out", ca + ".pem", "-days", "2", "-subj", "/CN=skick test " + ca)
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=localhost")
        with open(self.path("san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")

    @property
    def url(self):
        return "amqp://guest:guest@127.0.0.1:%d" % self.port

    def start(self):
        if os.path.exists(self.path("beam.pid")):
            os.unlink(self.path("beam.pid"))
        with open(self.path("stdout.log"), "a") as out:
            self.proc = subprocess.Popen([os.path.join(RMQ_BIN, "rabbitmq-server")], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        r = subprocess.run([os.path.join(RMQ_BIN, "rabbitmqctl"), "wait", "--timeout", "120",
                            self.path("beam.pid")], env=self.env, capture_output=True, timeout=130)
        if r.returncode != 0:
            raise RuntimeError("rabbitmq-server did not start: %s" % r.stdout.decode()[-1000:])

    def beam_pid(self):
        with open(self.path("beam.pid")) as f:
            return int(f.read().strip())

    def signal(self, sig):
        os.kill(self.beam_pid(), sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.proc.wait(20)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def close(self):
        self.stop()
        # epmd is daemonized and outlives beam: end ours (its port is ours alone)
        r = subprocess.run(["ss", "-ltnpH", "sport = :%d" % self.epmd], capture_output=True,
                           text=True)
        for part in r.stdout.split("pid=")[1:]:
            try:
                os.kill(int(part.split(",")[0]), signal.SIGTERM)
            except (ValueError, OSError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Amqp:
    """A pika connection with publisher confirms."""

    def __init__(self, url):
        self.conn = pika.BlockingConnection(pika.URLParameters(url + "/%2F"))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def publish(self, key, body, exchange="skick", **props):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        self.ch.basic_publish(exchange, key, body, pika.BasicProperties(**props))

    def rpc(self, key, body, direct=True, timeout=WAIT):
        """Ask over AMQP: (properties, decoded body)."""
        got = []
        if direct:
            reply_to = "amq.rabbitmq.reply-to"
        else:
            reply_to = self.ch.queue_declare("", exclusive=True).method.queue
        tag = self.ch.basic_consume(reply_to, lambda c, m, p, b: got.append((p, b)),
                                    auto_ack=True)
        cid = uuid.uuid4().hex
        self.publish(key, body, reply_to=reply_to, correlation_id=cid)
        deadline = time.time() + timeout
        while not got and time.time() < deadline:
            self.conn.process_data_events(0.1)
        self.ch.basic_cancel(tag)
        if not got:
            raise TimeoutError("no answer to %s" % body)
        props, data = got[0]
        assert props.correlation_id == cid, (props.correlation_id, cid)
        return props, json.loads(data)

    def count(self, queue):
        return self.ch.queue_declare(queue, passive=True).method.message_count

    def drain(self, queue):
        """Every message in queue, as (headers, body bytes)."""
        out = []
        while True:
            m, p, b = self.ch.basic_get(queue, auto_ack=True)
            if m is None:
                return out
            out.append((p.headers or {}, b))

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


class World:
    """RabbitMQ, a cluster (broker, front, one back shard with amqp_app) and the bridge."""

    def __init__(self, bridge_args=()):
        self.rmq = RabbitMQ()
        self.cluster = self.amqp = None
        try:
            TC.Cluster.app = staticmethod(lambda: os.path.join(
                TC.BUILD, "tests", "integration", "amqp_test_app.so"))
            self.cluster = TC.Cluster(backs=1, node_args=["--mailbox", "8"])
            self.bridge = self.start_bridge(bridge_args)
            self.cluster.wait_shards(3)
            self.amqp = Amqp(self.rmq.url)
            self.wait_connected()
        except BaseException:
            self.close()
            raise

    def start_bridge(self, extra, name="bridge"):
        urlfile = os.path.join(self.cluster.tmp, "amqp.url")
        with open(os.open(urlfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(self.rmq.url + "\n")
        url = [] if "--amqp" in extra else ["--amqp-file", urlfile]
        p = TC.Proc(name, [os.path.join(TC.BUILD, "bridge", "skick-amqp-bridge")] + url +
                    ["--broker", self.cluster.endpoint, "--call-timeout", "2000",
                     "--max-pending", "8", "--hold", "20000", "--heartbeat", "5",
                     "--metrics", "127.0.0.1:0"] + list(extra), self.cluster.tmp)
        self.cluster.procs.append(p)
        return p

    def bridge_addr(self):
        r = self.cluster.client.request("services", name="amqp")
        return r["result"][0]["address"]

    def stats(self):
        kind, r = self.cluster.client.ask(self.bridge_addr(), {"action": "stats"}, WAIT)
        assert kind == "reply", (kind, r)
        return r

    def wait_connected(self):
        ok = TC.wait_for(lambda: self.stats()["connected"], 30)
        assert ok, self.bridge.text()[-3000:]

    def back(self):
        return self.cluster.shard_ids("back")[0]

    def spawn(self, type_="sink"):
        return self.cluster.spawn_on(self.back(), type_)

    def ask(self, address, msg, timeout=WAIT):
        kind, r = self.cluster.client.ask(address, msg, timeout)
        assert kind == "reply", (kind, r)
        return r

    def events(self, address):
        # the sink's mailbox is small (--mailbox 8) and the bridge pipelines
        # to it: while a burst fills it, the dump itself may be refused
        deadline = time.time() + WAIT
        while True:
            kind, r = self.cluster.client.ask(address, {"action": "dump"}, WAIT)
            if kind == "reply":
                return r["events"]
            assert kind == "dead" and r.get("code") == "EFULL" and time.time() < deadline, (kind, r)
            time.sleep(0.05)

    def close(self):
        codes, reports = {}, []
        if self.amqp:
            self.amqp.close()
        if self.cluster:
            codes = self.cluster.close()
            reports = self.cluster.sanitizer_reports()
        self.rmq.close()
        return codes, reports


W = None


def s_id(body):
    """The "i" of a dead-lettered test message, or None."""
    try:
        return json.loads(body).get("i")
    except (ValueError, AttributeError):
        return None


def setUpModule():
    global W
    W = World()


def tearDownModule():
    codes, reports = W.close()
    assert not reports, reports
    assert all(c == 0 for c in codes.values()), codes


class Bridge(unittest.TestCase):
    def setUp(self):
        W.amqp.drain("skick.dead")

    def test_ps_lists_the_bridge(self):
        roles = [s["roles"] for s in W.cluster.ps()]
        self.assertIn(["bridge"], roles)

    def test_amqps_with_a_verified_certificate(self):
        """A second bridge on RabbitMQ's TLS listener (its own exchange, queue and
        service): it verifies the server against --amqp-cacert and carries
        messages; with a CA that did not sign the server it refuses to connect."""
        sink = W.spawn()
        url = "amqps://guest:guest@localhost:%d" % W.rmq.tls_port
        common = ["--exchange", "skick.tls", "--queue", "skick.tls", "--service", "amqp-tls"]
        good = W.start_bridge(["--amqp", url, "--amqp-cacert", W.rmq.path("ca.pem")] + common,
                              "bridge-tls")
        ok = TC.wait_for(lambda: "connected to RabbitMQ" in good.text(), 30)
        self.assertTrue(ok, good.text()[-3000:])
        # (it declared its exchange before it said it was connected)
        W.amqp.publish("actor." + sink, {"action": "event", "i": 4242}, exchange="skick.tls")
        self.assertTrue(TC.wait_for(lambda: any(e.get("i") == 4242 for e in W.events(sink))),
                        good.text()[-3000:])
        good.stop()
        bad = W.start_bridge(["--amqp", url, "--amqp-cacert", W.rmq.path("other-ca.pem")]
                             + common, "bridge-badca")
        refused = TC.wait_for(lambda: re.search(r"certificate|verif|TLS|SSL", bad.text()), 30)
        self.assertTrue(refused, bad.text()[-3000:])
        self.assertNotIn("connected to RabbitMQ", bad.text())
        bad.stop()

    def test_metrics_of_the_bridge(self):
        import urllib.request
        m = TC.wait_for(lambda: re.search(r"metrics on port (\d+)", W.bridge.text()))
        self.assertTrue(m, W.bridge.text()[-2000:])
        url = "http://127.0.0.1:%s/metrics" % m.group(1)

        def scrape():
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.read().decode()

        def value(text, key):
            for line in text.splitlines():
                if line.startswith(key + " "):
                    return float(line.split()[1])
            return None
        text = scrape()
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(value(text, "skick_amqp_connected"), 1)
        k_ok = 'skick_amqp_deliveries_total{outcome="delivered"}'
        k_bad = 'skick_amqp_deliveries_total{outcome="bad"}'
        ok0, bad0 = value(text, k_ok), value(text, k_bad)
        sink = W.spawn()
        W.amqp.publish("actor." + sink, {"action": "event", "i": 1})
        W.amqp.publish("actor." + sink, b"not json")
        moved = TC.wait_for(lambda: (lambda t: value(t, k_ok) > ok0 and value(t, k_bad) > bad0)(
            scrape()), 15)
        self.assertTrue(moved, scrape()[-3000:])

    def test_skickctl_up_starts_a_bridge_without_the_password_on_its_command_line(self):
        run = tempfile.mkdtemp(prefix="skick-amqp-ctl-")
        ctl = [os.path.join(TC.BUILD, "cli", "skickctl"), "--run-dir", os.path.join(run, "r")]
        port = TC.free_port(3)
        secret = W.rmq.url  # its password is "guest"
        try:
            r = subprocess.run(ctl + ["up", "--front", "0", "--back", "0", "--broker",
                                      "tcp://127.0.0.1:%d" % port, "--amqp", secret],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = subprocess.run(ctl + ["ps"], capture_output=True, text=True, timeout=WAIT)
            self.assertRegex(r.stdout, r"bridge-1\s+[0-9a-f]{16}\s+bridge\s")
            with open(os.path.join(run, "r", "cluster.json")) as f:
                self.assertNotIn("guest:guest", f.read())
            self.assertEqual(os.stat(os.path.join(run, "r", "amqp.url")).st_mode & 0o777, 0o600)
            pid = int(re.search(r"bridge-1\s+\S+\s+bridge\s+(\d+)", r.stdout).group(1))
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                self.assertNotIn(b"guest:guest", f.read())
        finally:
            r = subprocess.run(ctl + ["down"], capture_output=True, text=True, timeout=60)
            shutil.rmtree(run, ignore_errors=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_amqp_publish_to_an_actor(self):
        sink = W.spawn()
        before = W.stats()
        r = subprocess.run(["amqp-publish", "--url=" + W.rmq.url, "-e", "skick",
                            "-r", "actor." + sink, "-b", '{"action":"event","via":"amqp-tools"}'],
                           capture_output=True, timeout=WAIT)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = TC.wait_for(lambda: W.events(sink))
        self.assertEqual(got, [{"action": "event", "via": "amqp-tools"}])
        self.assertTrue(TC.wait_for(lambda: W.amqp.count("skick.bridge") == 0))
        # acked (its shard confirmed it), not rejected
        self.assertTrue(TC.wait_for(lambda: W.stats()["delivered"] == before["delivered"] + 1))
        self.assertEqual(W.amqp.count("skick.dead"), 0)

    def test_pika_publish_to_a_service(self):
        before = len(W.amqp.rpc("service.amqp-test", {"action": "dump"})[1]["events"])
        W.amqp.publish("service.amqp-test", {"action": "event", "n": 7})
        got = TC.wait_for(lambda: W.amqp.rpc("service.amqp-test",
                                              {"action": "dump"})[1]["events"][before:])
        self.assertEqual(got, [{"action": "event", "n": 7}])

    def test_rpc_with_a_reply_queue_and_with_direct_reply_to(self):
        sink = W.spawn()
        for direct in (False, True):
            props, body = W.amqp.rpc("actor." + sink, {"action": "add", "n": 41}, direct=direct)
            self.assertEqual(body, {"sum": 42})
            self.assertEqual(props.content_type, "application/json")
            self.assertFalse((props.headers or {}).get("x-skick-error"))

    def test_rpc_errors_come_back_as_error_bodies(self):
        sink = W.spawn()
        dead = "%016x:%016x" % (W.back(), 0x1234)
        cases = [("actor." + dead, {"action": "add", "n": 1}, "EDEAD"),
                 ("actor." + sink, {"action": "nope"}, "EACTION"),
                 ("actor." + sink, {"action": "add", "n": "one"}, "ESCHEMA"),
                 ("actor." + sink, {"action": "sleepy", "ms": 6000}, "ETIMEDOUT"),
                 ("service.no-such-service", {"action": "add", "n": 1}, "ENOTFOUND"),
                 ("actor." + sink, "not json", "EFORMAT")]
        for key, body, code in cases:
            props, got = W.amqp.rpc(key, body)
            self.assertEqual(got["error"]["code"], code, (key, body, got))
            self.assertTrue(got["error"]["message"])
            self.assertEqual(props.headers["x-skick-error"], code)

    def test_bad_bodies_and_keys_are_dead_lettered_once(self):
        sink = W.spawn()
        before = W.stats()
        bad = [b"not json", b"[1, 2]", b'{"x": 1}', b'{"action": 5}',
               json.dumps({"action": "event", "pad": "x" * (16 << 20)}).encode()]
        for body in bad:
            W.amqp.publish("actor." + sink, body)
        W.amqp.publish("actor.not-an-address", {"action": "event"})
        W.amqp.publish("actor.%016x:%016x" % (W.back(), 99), {"action": "event"})  # EDEAD
        self.assertTrue(TC.wait_for(lambda: W.amqp.count("skick.dead") == 7), W.amqp.count("skick.dead"))
        after = W.stats()
        self.assertEqual(after["bad"] - before["bad"], 5)
        self.assertEqual(after["undeliverable"] - before["undeliverable"], 2)
        dead = W.amqp.drain("skick.dead")
        self.assertEqual(len(dead), 7)
        for headers, _ in dead:
            self.assertEqual(headers["x-death"][0]["reason"], "rejected")
            self.assertEqual(headers["x-death"][0]["count"], 1)  # once, never requeued
        self.assertEqual(W.events(sink), [])
        self.assertIn("body is not JSON", W.bridge.text())

    def test_a_full_mailbox_is_dead_lettered_and_counted(self):
        sink = W.spawn()
        before = W.stats()
        W.amqp.publish("actor." + sink, {"action": "slow", "ms": 2500})
        time.sleep(0.5)  # the sink is asleep in "slow"; its mailbox holds 8
        n = 30
        for i in range(n):
            W.amqp.publish("actor." + sink, {"action": "event", "i": i})
        TC.wait_for(lambda: W.stats()["received"] - before["received"] >= n + 1)
        time.sleep(3)
        got = [e["i"] for e in W.events(sink) if "i" in e]
        bodies = [json.loads(b) for _, b in W.amqp.drain("skick.dead")]
        dead = [b["i"] for b in bodies if "i" in b]
        self.assertEqual(len(dead), len(bodies), bodies)
        self.assertTrue(dead, "nothing was refused")
        self.assertEqual(sorted(got + dead), list(range(n)))
        after = W.stats()
        self.assertEqual(after["undeliverable"] - before["undeliverable"], len(dead))
        self.assertEqual(after["delivered"] - before["delivered"], len(got) + 1)

    def test_an_actor_publishes_out_with_confirms(self):
        pub = W.spawn("pub")
        q = "test.out.%s" % uuid.uuid4().hex[:8]
        W.amqp.ch.queue_declare(q, auto_delete=False)
        r = W.ask(pub, {"action": "publish_out", "exchange": "", "routing_key": q,
                        "body": {"hello": "rabbit"}})
        self.assertEqual(r, {"ok": 0})
        r = subprocess.run(["amqp-get", "--url=" + W.rmq.url, "-q", q], capture_output=True,
                           timeout=WAIT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"hello": "rabbit"})
        # an exchange that does not exist: ENOTFOUND, and the bridge goes on
        r = W.ask(pub, {"action": "publish_out", "exchange": "no.such.exchange",
                        "routing_key": "x", "body": {}})
        self.assertEqual(r, {"error": "ENOTFOUND"})
        r = W.ask(pub, {"action": "publish_out", "exchange": "", "routing_key": q,
                        "body": "plain text"})
        self.assertEqual(r, {"ok": 0})
        self.assertEqual(W.amqp.drain(q)[0][1], b"plain text")
        self.assertEqual(W.amqp.rpc("actor." + pub, {"action": "add", "n": 1})[1], {"sum": 2})

    def test_a_subscription_delivers_to_its_actor(self):
        pub = W.spawn("pub")
        q = "test.sub.%s" % uuid.uuid4().hex[:8]
        r = W.ask(pub, {"action": "subscribe_me", "queue": q, "exchange": "amq.topic",
                        "routing_key": "events.#"})
        self.assertIn("ok", r)
        for i in range(5):
            W.amqp.publish("events.thing", {"action": "event", "i": i}, exchange="amq.topic")
        W.amqp.publish("events.thing", b"junk", exchange="amq.topic")
        got = TC.wait_for(lambda: len(W.events(pub)) == 5 and W.events(pub))
        self.assertEqual([e["i"] for e in got], list(range(5)))
        self.assertTrue(TC.wait_for(lambda: W.amqp.count("skick.dead") == 1))
        self.assertTrue(TC.wait_for(lambda: W.amqp.count(q) == 0))
        # a subscription to a service, by message to the bridge
        r = W.ask(W.bridge_addr(), {"action": "subscribe", "queue": q + ".svc",
                                    "bindings": [{"exchange": "amq.topic",
                                                  "routing_key": "svc.#"}],
                                    "service": "amqp-test"})
        self.assertTrue(r.get("ok"), r)
        props, body = W.amqp.rpc("service.amqp-test", {"action": "dump"})
        n = len(body["events"])
        W.amqp.publish("svc.a", {"action": "event", "svc": True}, exchange="amq.topic")
        self.assertTrue(TC.wait_for(lambda: len(W.amqp.rpc("service.amqp-test",
                                                             {"action": "dump"})[1]["events"]) == n + 1))
        r = W.ask(W.bridge_addr(), {"action": "unsubscribe", "subscription": r["subscription"]})
        self.assertTrue(r.get("ok"), r)
        # refused declarations come back as errors
        r = W.ask(W.bridge_addr(), {"action": "subscribe", "queue": "amq.reserved"})
        self.assertEqual(r["error"]["code"], "EINVAL", r)

    def test_a_subscription_ends_with_its_actor(self):
        """The subscriber stops: its subscription is dropped (the bridge watched
        it), so what comes next waits in the queue instead of being
        dead-lettered as undeliverable."""
        pub = W.spawn("pub")
        q = "test.gone.%s" % uuid.uuid4().hex[:8]
        r = W.ask(pub, {"action": "subscribe_me", "queue": q, "exchange": "amq.topic",
                        "routing_key": "gone.#"})
        self.assertIn("ok", r)
        W.amqp.publish("gone.a", {"action": "event", "i": 1}, exchange="amq.topic")
        self.assertTrue(TC.wait_for(lambda: len(W.events(pub)) == 1))
        r = W.cluster.client.request("stop", shard=int(pub.split(":")[0], 16), address=pub)
        self.assertTrue(r.get("ok"), r)
        self.assertTrue(TC.wait_for(lambda: "dropped: %s ended" % pub in W.bridge.text()),
                        W.bridge.text()[-2000:])
        dead = W.amqp.count("skick.dead")
        for i in range(3):
            W.amqp.publish("gone.a", {"action": "event", "i": 2 + i}, exchange="amq.topic")
        self.assertTrue(TC.wait_for(lambda: W.amqp.count(q) == 3), W.amqp.count(q))
        time.sleep(0.5)
        self.assertEqual(W.amqp.count("skick.dead"), dead)

    def test_the_outbound_bound_refuses_at_once(self):
        pub = W.spawn("pub")
        q = "test.bound.%s" % uuid.uuid4().hex[:8]
        W.amqp.ch.queue_declare(q)
        W.rmq.signal(signal.SIGSTOP)
        try:
            t0 = time.time()
            r = W.ask(pub, {"action": "publish_many", "n": 20, "exchange": "",
                            "routing_key": q})
            took = time.time() - t0
        finally:
            W.rmq.signal(signal.SIGCONT)
        # 8 (--max-pending) wait for a confirm that cannot come: ETIMEDOUT at the
        # bridge's call timeout; the 12 beyond the bound were refused at once
        self.assertEqual(r["codes"], {"EBACKLOG": 12, "ETIMEDOUT": 8}, r)
        self.assertLess(took, 10)
        self.assertTrue(TC.wait_for(lambda: W.stats()["pending"] == 0, 20))
        self.assertGreaterEqual(W.stats()["backlog"], 12)


class Faults(unittest.TestCase):
    """Run after Bridge (alphabetical order): they restart servers."""

    def test_rabbitmq_killed_and_restarted_mid_traffic(self):
        sink = W.spawn()
        pub = W.spawn("pub")
        q = "test.kill.%s" % uuid.uuid4().hex[:8]
        W.amqp.ch.queue_declare(q, durable=True)
        confirmed = []
        stop = threading.Event()

        def publisher():
            a = None
            i = 0
            while not stop.is_set() and i < 400:
                try:
                    if a is None:
                        a = Amqp(W.rmq.url)
                    a.publish("actor." + sink, {"action": "event", "i": i},
                              delivery_mode=2)
                    confirmed.append(i)
                    i += 1
                except Exception:
                    a = None
                    i += 1  # unconfirmed: it may or may not have arrived
                    time.sleep(0.2)
            if a:
                a.close()

        t = threading.Thread(target=publisher)
        t.start()
        TC.wait_for(lambda: len(confirmed) >= 100)
        # a publish in flight when RabbitMQ dies: stopped first, so it stays unconfirmed
        W.rmq.signal(signal.SIGSTOP)
        c = W.cluster.client
        cid = uuid.uuid4().hex
        c.send(pub, {"action": "publish_out", "exchange": "", "routing_key": q, "body": {},
                     "cid": cid, "sender": c.address})
        time.sleep(0.3)
        W.rmq.kill9()
        answer = None
        deadline = time.time() + WAIT
        while answer is None and time.time() < deadline:
            e = c.recv(0.2)
            if e and (e["body"] or {}).get("cid") == cid:
                answer = e["body"].get("message")
        self.assertEqual(answer, {"error": "EUNREACH"}, W.bridge.text()[-3000:])
        # while it is down a publish fails at once
        self.assertTrue(TC.wait_for(lambda: not W.stats()["connected"]))
        self.assertEqual(W.ask(pub, {"action": "publish_out", "exchange": "", "routing_key": q,
                                     "body": {}}), {"error": "EUNREACH"})
        time.sleep(1)
        W.rmq.start()
        W.amqp = Amqp(W.rmq.url)
        W.wait_connected()
        t.join(60)
        stop.set()
        self.assertGreater(len(confirmed), 100)

        def accounted():
            got = {e.get("i") for e in W.events(sink)}
            accounted.dead |= {s_id(b) for _, b in W.amqp.drain("skick.dead")}
            accounted.missing = set(confirmed) - got - accounted.dead
            return not accounted.missing
        accounted.dead, accounted.missing = set(), None
        ok = TC.wait_for(accounted, 60)
        self.assertTrue(ok, "confirmed but neither delivered nor dead-lettered: %s"
                        % sorted(accounted.missing or []))
        log = W.bridge.text()
        self.assertEqual(log.count("lost the connection to RabbitMQ"), 1, log[-3000:])
        self.assertIn("reconnected to RabbitMQ", log)
        self.assertLessEqual(log.count("RabbitMQ unreachable"), 1)

    def test_skick_broker_restarted_mid_traffic(self):
        sink = W.spawn()
        c = W.cluster
        back = c.backs[0].p
        W.amqp.drain("skick.dead")
        for i in range(20):
            W.amqp.publish("actor." + sink, {"action": "event", "i": i})
        c.client.close()
        c.broker.stop(signal.SIGKILL)
        # once the bridge knows, deliveries wait (--hold) instead of failing
        self.assertTrue(TC.wait_for(lambda: "no word from the broker" in W.bridge.text()))
        # the target's shard is slow to rejoin the new broker: what the
        # bridge holds must wait for it too, not be refused as EDEAD (at most
        # the sink's mailbox bound, 8, so that none is refused as EFULL)
        back.send_signal(signal.SIGSTOP)
        try:
            for i in range(20, 28):
                W.amqp.publish("actor." + sink, {"action": "event", "i": i})
            c.broker.start()
            self.assertTrue(TC.wait_for(
                lambda: W.bridge.text().count("joined the cluster") >= 2, 30),
                W.bridge.text()[-3000:])
            time.sleep(0.5)
        finally:
            back.send_signal(signal.SIGCONT)
        c.client = sp.Client(c.control)
        c.wait_shards(3)

        def accounted():
            got = {e.get("i") for e in W.events(sink)}
            accounted.dead |= {s_id(b) for _, b in W.amqp.drain("skick.dead")}
            return set(range(28)) <= got | accounted.dead and (got, accounted.dead)
        accounted.dead = set()
        ok = TC.wait_for(accounted, 40)
        got = {e["i"] for e in W.events(sink)}
        self.assertTrue(ok, "missing %s; stats %s" % (sorted(set(range(28)) - got - accounted.dead),
                                                      W.stats()))
        got, dead = ok
        self.assertLessEqual(set(range(20, 28)), got, (sorted(dead), W.bridge.text()[-3000:]))


if __name__ == "__main__":
    sys.exit(TC.main())  # sets TC.BUILD, runs this module's tests
