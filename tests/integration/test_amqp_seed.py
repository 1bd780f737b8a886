#!/usr/bin/python3
"""test_amqp_seed.py - skick-amqp-bridge --seed-compat: a Python Skick shard joins

Usage: /usr/bin/python3 tests/integration/test_amqp_seed.py BUILD_DIR [unittest args]

A private rabbitmq-server on loopback (test_amqp_bridge.RabbitMQ: ports of
its own), a skick-broker, a front and a back shard loading amqp_test_app.so
and skick-amqp-bridge --seed-compat. The peer is a fake seed shard written
from SEED-SPEC.md with pika (the Python original is not on this machine):
it declares ActorExchange (direct) and BroadcastExchange (fanout) as
aio-pika does (not durable), its queue named by its 64-hex shard id
(auto-delete) bound to ActorExchange by that id and to BroadcastExchange,
publishes [address, message] bodies (8.2), broadcasts receive_info gossip
with the three key shapes every second (6.4), and answers conversations
with the intended protocol of 5.2/5.3 (the original's Respond crashes at
its first reply, B2: the fake does not copy that bug). It checks:

  * the C cluster's gossip reaches it: its shards (pad form), the back
    shard's actor types, services and their providers;
  * a message it sends to a C actor arrives; a conversation it opens with
    a C actor is answered (receive_reply with its cid and the actor's seed
    address as sender), and a ping to a C shard gets its pong;
  * it can spawn on a C shard with a name of its own, and reach the new
    actor by that name;
  * a C actor reaches its actors by their (longer) addresses: seed_alias,
    a one-way message and a conversation (the fake answers receive_reply);
    a C ping to a Python shard is refused (EACTION), never sent;
  * sentinels cross both ways: a spawned actor's monitor and a Python
    monitor of a C actor hear of its end under the seed address they know,
    a C monitor of a Python actor under the proxy's address (the proxy then
    refuses messages with EDEAD and is stopped after a grace period);
  * the alias map is bounded (--seed-aliases 16): beyond, the least
    recently used proxy is stopped and counted; so is the gossip table
    (--seed-keys 32: new keys beyond are dropped and counted);
  * RabbitMQ stopped (SIGSTOP): at most --max-pending (64) messages to
    Python wait for their confirms, the rest are dropped at once and
    counted; after SIGCONT every one is accounted for (confirmed and
    received, or dropped);
  * RabbitMQ killed -9 and restarted: the bridge declares the seed's
    exchanges and queues again, and a seed shard started again is seen and
    reaches C actors; meanwhile a message to Python is dropped and counted;
  * bad input (not JSON, not an array of two, a message without action, an
    address of no C shard) is rejected without requeue (in skick.dead, the
    seed queue empty), counted, and nothing else is lost.

The last line is "N passed, M failed".
"""
import json
import os
import queue
import secrets
import signal
import sys
import threading
import time
import unittest

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_amqp_bridge as TB  # noqa: E402
import test_cluster as TC  # noqa: E402

WAIT = 20.0
ZEROS = "0" * 48


def pad(hex16):
    return ZEROS + hex16


def seed_addr(c_addr):
    """The seed address of a C address SHARD:ACTOR."""
    s, a = c_addr.split(":")
    return pad(s) + ":" + pad(a)


class FakeSeed:
    """A seed shard on RabbitMQ (SEED-SPEC.md 6.4, 8.2), on a thread of its own."""

    def __init__(self, url):
        self.id = secrets.token_hex(32)
        self.addr = self.id + ":" + self.id           # its shard actor
        self.actor = self.id + ":" + secrets.token_hex(32)  # its echo actor, service "pyecho"
        self.monitors = {}     # address -> [monitors] (monitor requests received)
        self.got = []          # (address, message) received, every one
        self.bucket = {}       # gossip: key text -> (timestamp, info)
        self.replies = {}      # cid -> [messages of conversations it opened]
        self.lock = threading.Lock()
        self.out = queue.Queue()
        self.ready = threading.Event()
        self.stop = False
        self.lost = None
        self.url = url
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        assert self.ready.wait(WAIT), "fake seed shard did not connect"

    # -- the thread ---------------------------------------------------------
    def run(self):
        try:
            self.serve()
        except pika.exceptions.AMQPError as e:  # RabbitMQ killed under it
            self.lost = repr(e)

    def serve(self):
        conn = pika.BlockingConnection(pika.URLParameters(self.url + "/%2F"))
        ch = conn.channel()
        ch.exchange_declare("ActorExchange", "direct")      # aio-pika defaults:
        ch.exchange_declare("BroadcastExchange", "fanout")  # not durable, not auto-delete
        ch.queue_declare(self.id, auto_delete=True)
        ch.queue_bind(self.id, "ActorExchange", routing_key=self.id)
        ch.queue_bind(self.id, "BroadcastExchange")
        ch.basic_consume(self.id, self.on_message, consumer_tag=self.id)
        self.ch = ch
        self.ready.set()
        next_gossip = 0
        while not self.stop:
            if time.time() >= next_gossip:
                self.gossip()
                next_gossip = time.time() + 1
            while True:
                try:
                    exchange, key, body = self.out.get_nowait()
                except queue.Empty:
                    break
                ch.basic_publish(exchange, key, body)
            conn.process_data_events(0.05)
        conn.close()

    def publish_now(self, address, message, exchange="ActorExchange"):
        key = address[:len(address) // 2]
        self.ch.basic_publish(exchange, key, json.dumps([address, message]))

    def gossip(self):
        now = time.monotonic()
        batch = [{"key": {"shard": self.addr}, "timestamp": now, "info": True},
                 {"key": {"shard": self.addr, "factory": "pytype"}, "timestamp": now,
                  "info": True},
                 {"key": {"shard": self.addr, "service": "pyecho", "address": self.actor},
                  "timestamp": now, "info": True}]
        self.publish_now("", {"action": "receive_info", "batch": batch, "purge": True,
                              "broadcaster": self.addr}, "BroadcastExchange")

    def on_message(self, ch, method, props, body):
        ch.basic_ack(method.delivery_tag)
        address, msg = json.loads(body)
        with self.lock:
            self.got.append((address, msg))
        action = msg.get("action")
        if action == "receive_info":
            with self.lock:
                for item in msg["batch"]:
                    k = json.dumps(item["key"], sort_keys=True)
                    if k not in self.bucket or self.bucket[k][0] <= item["timestamp"]:
                        self.bucket[k] = (item["timestamp"], item["info"])
        elif action == "monitor":
            with self.lock:
                self.monitors.setdefault(address, []).append(msg["address"])
        elif action in ("receive_reply", "end_conversation"):
            with self.lock:
                self.replies.setdefault(msg["cid"], []).append(msg)
        elif address == self.actor and "cid" in msg and "sender" in msg:
            # Respond (5.2, as intended): the first reply goes back at once
            self.send(msg["sender"], {"action": "receive_reply", "cid": msg["cid"],
                                      "sender": self.actor, "message": {"echo": msg}})

    # -- the test's side ----------------------------------------------------
    def send(self, address, message):
        key = address[:len(address) // 2]
        self.out.put(("ActorExchange", key, json.dumps([address, message])))

    def send_raw(self, key, body):
        self.out.put(("ActorExchange", key, body))

    def call(self, address, greeting):
        """Open a conversation (5.1): the cid."""
        cid = secrets.token_hex(32)
        self.send(address, dict(greeting, sender=self.actor, cid=cid))
        return cid

    def reply(self, cid, timeout=WAIT):
        ok = TC.wait_for(lambda: self.replies.get(cid), timeout)
        assert ok, "no reply for %s; got %s" % (cid, self.got[-5:])
        return self.replies[cid][0]

    def has_key(self, **key):
        with self.lock:
            v = self.bucket.get(json.dumps(key, sort_keys=True))
        return v is not None and v[1] is True

    def end(self, address):
        """The actor at address ends: its monitors get a done sentinel (section 4)."""
        with self.lock:
            mons = self.monitors.pop(address, [])
        for m in mons:
            self.send(m, {"action": "sentinel", "type": "done", "address": address,
                          "tag": "main_task"})
        return mons

    def received(self, address):
        with self.lock:
            return [m for a, m in self.got if a == address]

    def close(self):
        self.stop = True
        self.thread.join(10)


W = None
PY = None


def setUpModule():
    global W, PY
    W = TB.World(bridge_args=["--seed-compat", "--max-pending", "64", "--seed-aliases", "16",
                                  "--seed-keys", "32"])
    try:
        PY = FakeSeed(W.rmq.url)
        # the bridge declares a seed shard's queue once it knows the shard:
        # until then what the seed sends there is unroutable (as to a seed
        # shard that has not started)
        assert TC.wait_for(lambda: W.stats()["seed_queues"] == 3, WAIT), W.stats()
    except BaseException:
        W.close()
        raise


def tearDownModule():
    PY.close()
    codes, reports = W.close()
    assert not reports, reports
    assert all(c == 0 for c in codes.values()), codes


def back_hex():
    return "%016x" % W.back()


def events_if_alive(address):
    """The actor's events, or None while it does not exist (yet)."""
    kind, r = W.cluster.client.ask(address, {"action": "dump"}, WAIT)
    return r["events"] if kind == "reply" else None


def queue_exists(name):
    """Whether RabbitMQ has that queue (asked on a connection of its own:
    a passive declare of a missing queue closes its channel)."""
    conn = pika.BlockingConnection(pika.URLParameters(W.rmq.url + "/%2F"))
    try:
        conn.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        try:
            conn.close()
        except Exception:
            pass


def stat(name):
    return W.stats()[name]


class Seed(unittest.TestCase):
    def test_gossip_shows_the_c_cluster(self):
        b = pad(back_hex())
        shard = b + ":" + b
        self.assertTrue(TC.wait_for(lambda: PY.has_key(shard=shard), WAIT), PY.bucket)
        self.assertTrue(PY.has_key(shard=shard, factory="sink"))
        self.assertTrue(PY.has_key(shard=shard, factory="pub"))
        # the back shard's service and the bridge's own, with seed addresses
        provider = W.cluster.client.request("services", name="amqp-test")["result"][0]["address"]
        self.assertTrue(TC.wait_for(lambda: PY.has_key(shard=shard, service="amqp-test",
                                                       address=seed_addr(provider)), WAIT))
        bridge = W.bridge_addr()
        bs = pad(bridge.split(":")[0])
        self.assertTrue(PY.has_key(shard=bs + ":" + bs, service="amqp",
                                   address=seed_addr(bridge)))
        # and the bridge took the fake's gossip
        self.assertTrue(TC.wait_for(lambda: stat("seed_shards") >= 1, WAIT))
        self.assertGreater(stat("seed_gossip_in"), 0)

    def test_a_message_and_a_conversation_to_a_c_actor(self):
        sink = W.spawn()
        PY.send(seed_addr(sink), {"action": "event", "from": "python"})
        self.assertTrue(TC.wait_for(lambda: W.events(sink), WAIT))
        self.assertEqual(W.events(sink), [{"action": "event", "from": "python"}])
        cid = PY.call(seed_addr(sink), {"action": "add", "n": 41})
        r = PY.reply(cid)
        self.assertEqual(r["action"], "receive_reply")
        self.assertEqual(r["message"], {"sum": 42})
        self.assertEqual(r["sender"], seed_addr(sink))
        PY.send(seed_addr(sink), {"action": "end_conversation", "cid": cid})

    def test_the_seed_pinger_gets_its_pong(self):
        b = pad(back_hex())
        cid = PY.call(b + ":" + b, {"action": "ping"})
        r = PY.reply(cid)
        self.assertEqual(r["message"], {"message": "pong"})

    def test_spawn_on_a_c_shard_with_the_seeds_name(self):
        b = pad(back_hex())
        rand = secrets.token_hex(32)
        name = b + ":" + rand
        PY.send(b + ":" + b, {"action": "spawn", "type": "sink", "name": name, "message": {},
                              "add_monitor": [PY.actor], "remote": "local"})
        c_addr = back_hex() + ":" + rand[:16]
        PY.send(name, {"action": "event", "n": 1})
        self.assertTrue(TC.wait_for(lambda: events_if_alive(c_addr), WAIT),
                        W.bridge.text()[-2000:])
        self.assertEqual(W.events(c_addr), [{"action": "event", "n": 1}])
        cid = PY.call(name, {"action": "count"})
        r = PY.reply(cid)
        self.assertEqual(r["message"], {"n": 1})
        self.assertEqual(r["sender"], name)  # named as the seed named it
        # its monitor (add_monitor: the Python actor) hears of its end, by that name
        PY.send(name, {"action": "quit"})
        self.assertTrue(TC.wait_for(lambda: [m for m in PY.received(PY.actor)
                                             if m.get("action") == "sentinel"
                                             and m.get("address") == name], WAIT))

    def test_a_python_monitor_of_a_c_actor_gets_the_sentinel(self):
        sink = W.spawn()
        PY.send(seed_addr(sink), {"action": "monitor", "address": PY.actor})
        time.sleep(0.5)
        PY.send(seed_addr(sink), {"action": "quit"})
        self.assertTrue(TC.wait_for(lambda: [m for m in PY.received(PY.actor)
                                             if m.get("action") == "sentinel"
                                             and m.get("address") == seed_addr(sink)], WAIT))
        got = [m for m in PY.received(PY.actor) if m.get("address") == seed_addr(sink)][0]
        self.assertEqual((got["type"], got["tag"]), ("cancellation", "main_task"))

    def test_the_gossip_table_is_bounded(self):
        """--seed-keys 32: keys beyond are dropped and counted, the rest kept."""
        self.assertTrue(TC.wait_for(lambda: stat("seed_shards") >= 1, WAIT))
        before = stat("seed_keys_dropped")
        now = time.monotonic()
        batch = [{"key": {"shard": PY.addr, "service": "flood", "address":
                          PY.id + ":" + secrets.token_hex(32)}, "timestamp": now, "info": True}
                 for _ in range(64)]
        b = pad(back_hex())
        PY.send(b + ":" + b, {"action": "receive_info", "batch": batch, "purge": False,
                              "broadcaster": PY.addr})  # whispered to a C shard
        self.assertTrue(TC.wait_for(lambda: stat("seed_keys_dropped") >= before + 32, WAIT),
                        W.stats())
        kind, r = W.cluster.client.ask(W.bridge_addr(), {"action": "seed_service",
                                                         "name": "pyecho"}, WAIT)
        self.assertTrue(kind == "reply" and "address" in r, r)  # known before: kept

    def test_a_c_monitor_of_a_python_actor_gets_the_sentinel(self):
        sink = W.spawn()
        mortal = PY.id + ":" + secrets.token_hex(32)
        kind, r = W.cluster.client.ask(sink, {"action": "watch_seed", "target": mortal}, WAIT)
        self.assertEqual(kind, "reply", r)
        proxy = r["proxy"]
        self.assertTrue(TC.wait_for(lambda: PY.monitors.get(mortal), WAIT))
        self.assertEqual(PY.monitors[mortal], [seed_addr(sink)])
        retired = stat("seed_retired")
        PY.end(mortal)
        self.assertTrue(TC.wait_for(lambda: W.events(sink), WAIT))
        self.assertEqual(W.events(sink), [{"action": "sentinel", "type": "done",
                                           "address": proxy, "tag": "main_task"}])
        # the proxy stops forwarding at once (the original would nack-requeue
        # a message for an actor that is gone, forever: W4) and is stopped later
        kind, r = W.cluster.client.ask(sink, {"action": "call_seed", "target": mortal,
                                              "body": {"action": "echo"}}, WAIT)
        self.assertEqual(r, {"error": "EDEAD"})
        self.assertTrue(TC.wait_for(lambda: stat("seed_retired") == retired + 1, 30))

    def test_the_alias_map_is_bounded(self):
        """--seed-aliases 16: the least recently used proxy is stopped beyond."""
        sink = W.spawn()
        before = stat("seed_evicted")
        cids = []
        for i in range(24):  # 24 Python senders, each opening a conversation
            sender = PY.id + ":" + secrets.token_hex(32)
            cid = secrets.token_hex(32)
            cids.append(cid)
            PY.send(seed_addr(sink), {"action": "add", "n": i, "sender": sender, "cid": cid})
        self.assertTrue(TC.wait_for(lambda: stat("seed_evicted") >= before + 8, WAIT), W.stats())
        self.assertLessEqual(stat("seed_aliases"), 16)

    def test_a_c_actor_reaches_a_python_actor(self):
        sink = W.spawn()
        kind, r = W.cluster.client.ask(sink, {"action": "tell_seed", "target": PY.actor,
                                              "body": {"action": "hello", "x": 1}}, WAIT)
        self.assertEqual(kind, "reply", r)
        proxy = r["proxy"]
        self.assertNotEqual(proxy.split(":")[0], back_hex())  # on the bridge's shard
        self.assertTrue(TC.wait_for(lambda: PY.received(PY.actor), WAIT))
        self.assertIn({"action": "hello", "x": 1}, PY.received(PY.actor))
        # a conversation both ways: the fake answers with receive_reply
        kind, r = W.cluster.client.ask(sink, {"action": "call_seed", "target": PY.actor,
                                              "body": {"action": "echo", "z": 3}}, WAIT)
        self.assertEqual(kind, "reply", r)
        self.assertEqual(r["proxy"], proxy)  # the same alias
        opener = r["reply"]["echo"]
        self.assertEqual(opener["sender"], seed_addr(sink))
        self.assertEqual(len(opener["cid"]), 64)
        self.assertEqual(opener["z"], 3)

    def test_a_c_ping_to_a_python_shard_is_never_sent(self):
        sink = W.spawn()
        before = stat("seed_refused_out")
        kind, r = W.cluster.client.ask(sink, {"action": "call_seed", "target": PY.addr,
                                              "body": {"action": "ping"}}, WAIT)
        self.assertEqual(kind, "reply", r)
        self.assertEqual(r, {"error": "EACTION"})
        self.assertEqual(stat("seed_refused_out"), before + 1)
        time.sleep(0.5)
        self.assertFalse([m for m in PY.received(PY.addr) if m.get("action") == "ping"])

    def test_seed_alias_refuses_what_is_not_a_seed_address(self):
        kind, r = W.cluster.client.ask(W.bridge_addr(), {"action": "seed_alias",
                                                         "address": "short:address"}, WAIT)
        self.assertEqual(kind, "reply", r)
        self.assertEqual(r["error"]["code"], "EINVAL")
        kind, r = W.cluster.client.ask(W.bridge_addr(), {"action": "seed_service",
                                                         "name": "pyecho"}, WAIT)
        self.assertTrue(kind == "reply" and "address" in r, r)

    def test_bad_input_is_rejected_counted_and_nothing_else_is_lost(self):
        sink = W.spawn()
        b = pad(back_hex())
        W.amqp.drain("skick.dead")
        bad0, unknown0 = stat("seed_bad"), stat("seed_unknown")
        PY.send_raw(b, b"not json {")
        PY.send_raw(b, json.dumps({"address": seed_addr(sink)}))
        PY.send_raw(b, json.dumps([seed_addr(sink)]))
        PY.send_raw(b, json.dumps([seed_addr(sink), {"no": "action"}]))
        PY.send_raw(b, json.dumps([pad("00000000deadbeef") + ":" + pad("0000000000000001"),
                                   {"action": "event"}]))
        PY.send_raw(b, json.dumps(["not-an-address", {"action": "event"}]))
        PY.send_raw(b, json.dumps([b + ":" + b, {"action": "receive_info", "batch": "x"}]))
        PY.send(seed_addr(sink), {"action": "event", "after": "bad"})
        self.assertTrue(TC.wait_for(lambda: W.events(sink), WAIT))
        self.assertEqual(W.events(sink), [{"action": "event", "after": "bad"}])
        self.assertTrue(TC.wait_for(lambda: stat("seed_bad") == bad0 + 5
                                    and stat("seed_unknown") == unknown0 + 2, WAIT), W.stats())
        got = []
        self.assertTrue(TC.wait_for(lambda: got.extend(W.amqp.drain("skick.dead"))
                                    or len(got) >= 7, WAIT), got)
        self.assertEqual(len(got), 7, got)
        # rejected once, not requeued: the seed queue is empty
        self.assertTrue(TC.wait_for(lambda: W.amqp.count(b) == 0, WAIT))
        self.assertIn("rejected a message from a seed shard", W.bridge.text())


class SeedRestart(unittest.TestCase):
    """Runs after Seed (unittest orders classes by name): RabbitMQ stopped, killed."""

    def test_a_stopped_rabbitmq_bounds_what_waits_for_python(self):
        """--max-pending 64: beyond, a message to Python is dropped at once, counted;
        what was published is confirmed and arrives once RabbitMQ goes on."""
        sink = W.spawn()
        st0 = W.stats()
        W.rmq.signal(signal.SIGSTOP)
        try:
            for i in range(80):
                kind, r = W.cluster.client.ask(sink, {"action": "tell_seed", "target": PY.actor,
                                                      "body": {"action": "burst", "i": i}}, WAIT)
                self.assertEqual(kind, "reply", r)
            self.assertTrue(TC.wait_for(lambda: stat("seed_dropped") - st0["seed_dropped"] >= 16,
                                        WAIT), W.stats())
        finally:
            W.rmq.signal(signal.SIGCONT)

        # in publish order: those that found room were confirmed and arrive, the
        # rest were dropped (gossip may have taken a slot or two meanwhile)
        def bursts():
            return {m["i"] for m in PY.received(PY.actor) if m.get("action") == "burst"}
        self.assertTrue(TC.wait_for(lambda: len(bursts()) >= 60, 30), (sorted(bursts()),
                                                                        W.stats()))
        time.sleep(1)
        got = bursts()
        self.assertEqual(got, set(range(len(got))))
        self.assertLessEqual(len(got), 64)
        self.assertTrue(TC.wait_for(lambda: stat("seed_pending") == 0, WAIT))

    def test_rabbitmq_killed_and_restarted(self):
        global PY
        sink = W.spawn()
        W.rmq.kill9()
        PY.close()
        # while RabbitMQ is away a message to Python is dropped and counted, at once
        self.assertTrue(TC.wait_for(lambda: not W.stats()["connected"], WAIT))
        dropped = stat("seed_dropped")
        kind, r = W.cluster.client.ask(sink, {"action": "tell_seed", "target": PY.actor,
                                              "body": {"action": "lost"}}, WAIT)
        self.assertEqual(kind, "reply", r)
        self.assertTrue(TC.wait_for(lambda: stat("seed_dropped") == dropped + 1, WAIT))
        W.rmq.start()
        W.amqp.close()
        W.amqp = TB.Amqp(W.rmq.url)
        # the bridge reconnects and declares the seed exchanges and queues again
        self.assertTrue(TC.wait_for(lambda: W.stats()["connects"] >= 2, 60), W.bridge.text()[-2000:])
        b = pad(back_hex())
        self.assertTrue(TC.wait_for(lambda: queue_exists(b), WAIT))
        PY = FakeSeed(W.rmq.url)  # a seed shard that started again, with a new id
        self.assertTrue(TC.wait_for(lambda: PY.has_key(shard=b + ":" + b), WAIT))
        PY.send(seed_addr(sink), {"action": "event", "after": "restart"})
        self.assertTrue(TC.wait_for(lambda: W.events(sink), WAIT))
        self.assertEqual(W.events(sink), [{"action": "event", "after": "restart"}])
        cid = PY.call(seed_addr(sink), {"action": "add", "n": 1})
        self.assertEqual(PY.reply(cid)["message"], {"sum": 2})
        log = W.bridge.text()
        self.assertEqual(log.count("lost the connection to RabbitMQ"), 1, log[-3000:])


if __name__ == "__main__":
    sys.exit(TC.main())
