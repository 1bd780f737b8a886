#!/usr/bin/python3
"""test_slow.py - clients that do not read, stop, or go over their limits

Usage: /usr/bin/python3 tests/integration/test_slow.py BUILD_DIR [unittest args]

Real skick-node processes with the test module (ws_app.c) and the stock
example (examples/hello.c), real sockets: raw clients with a 4 KiB receive
buffer that never read (slowpeer.py), client processes stopped with SIGSTOP,
and python3-websockets clients as bystanders. What PROTOCOL.md "Slow
clients" promises: the shard never waits for a client; a client whose send
queue is full is closed with 1008 "send queue full" (or its frames are
refused under the refuse policy) and nobody else notices; a silent client is
disconnected after three ping intervals; a client closed for its rate or
size limit gets the answers to what it sent before. Server setup and client
helpers come from test_ws.py. The last line is "N passed, M failed".
"""
import asyncio
import concurrent.futures
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ws as W  # noqa: E402  (Server, connect, recv_json, closed, ...)
from slowpeer import RawClient  # noqa: E402

CHAT = 60000 * "y"  # one chat line of the repro


def hello_so():
    return os.path.join(W.BUILD, "examples", "hello.so")


class SlowCase(W.ServerCase):
    """A server with the test module and the stock example. A 64 KiB kernel
    send buffer per client (--socket-buffer) keeps the floods small: with
    loopback's autotuning the kernel alone would take 4 MB per client."""
    server_args = ("--app", "", "--rate", "0", "--socket-buffer", "65536", *W.FEW_THREADS)

    @classmethod
    def setUpClass(cls):
        args = list(cls.server_args)
        args[args.index("")] = hello_so()
        cls.server = W.Server(*args)

    def raw(self, session_type, rcvbuf=4096, **extra):
        c = RawClient(self.server.port, rcvbuf=rcvbuf)
        c.send_json({"session_type": session_type, **extra})
        return c

    async def greet_latencies(self, ws, stop, every=0.25):
        """Greet until stop is set; the round trip of each greet (seconds)."""
        lat = []
        while not stop.is_set():
            t0 = time.monotonic()
            await W.send_json(ws, {"action": "greet"})
            msg = await W.recv_json(ws, 30)
            lat.append(time.monotonic() - t0)
            self.assertIn("greeting", msg)
            await asyncio.sleep(every)
        return lat

    async def bystander(self):
        ws = await W.connect(self.url)
        await W.send_json(ws, {"session_type": "hello"})
        self.assertIn("greeting", await W.recv_json(ws))
        return ws


class A_StoppedReaders(SlowCase):

    async def test_a_stopped_reader_does_not_freeze_the_shard(self):
        """The issue's repro: one chat member never reads (4 KiB receive
        buffer), another says 150 lines of 60 kB, a third greets on a hello
        session. Before, the greets stalled for more than 20 s."""
        sleeper = self.raw("chat", name="sleeper")
        talker = await W.connect(self.url, max_queue=None)
        await W.send_json(talker, {"session_type": "chat", "name": "talker"})
        by = await self.bystander()
        stop = asyncio.Event()
        lines = 0
        window = asyncio.Semaphore(8)  # the talker reads its own lines as it goes

        async def read_talker():
            nonlocal lines
            try:
                while True:
                    m = json.loads(await asyncio.wait_for(talker.recv(), 20))
                    if m.get("action") == "chat_line" and m.get("from") == "talker":
                        lines += 1
                        window.release()
                    if lines == 150:
                        return
            except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
                return

        async def talk():
            await asyncio.sleep(0.3)
            for _ in range(150):
                await window.acquire()
                await W.send_json(talker, {"action": "say", "text": CHAT})

        greets = asyncio.ensure_future(self.greet_latencies(by, stop))
        t0 = time.monotonic()
        await asyncio.gather(talk(), read_talker())
        stop.set()
        lat = await greets
        self.assertEqual(lines, 150, "the talker (a reading client) lost lines")
        self.assertLess(max(lat), 2.0, f"a greet took {max(lat):.2f} s while a chat member "
                                       f"did not read (round trips: {len(lat)})")
        # The sleeper was closed: its stream ends (the close frame cannot get
        # through its full window; the close timeout shuts the socket down).
        ended = await asyncio.get_running_loop().run_in_executor(None, sleeper.stream_ended, 8)
        self.assertTrue(ended, "the stalled client was never disconnected")
        self.assertLess(time.monotonic() - t0, 30)
        self.assertRegex(self.server.log(), r"connection \d+: client too slow: send queue full")
        for ws in (talker, by):
            await ws.close()
        sleeper.close()
        self.assert_server_alive()

    async def test_a2_the_outbox_bytes_show_in_the_metrics(self):
        """A member that does not read holds what it was sent in its outbox
        (under the bound: not closed); /metrics shows those bytes, and they
        are gone with the connection."""
        import urllib.request

        def outbox():
            url = "http://127.0.0.1:%d/metrics" % self.server.port
            with urllib.request.urlopen(url, timeout=10) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("skick_ws_outbox_bytes "):
                        return float(line.split()[1])
            return None

        def wait(pred, timeout=10):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                v = outbox()
                if v is not None and pred(v):
                    return v
                time.sleep(0.2)
            self.fail("skick_ws_outbox_bytes stayed at %s" % outbox())

        sleeper = self.raw("chat", name="sleeper2")
        talker = await W.connect(self.url, max_queue=None)
        await W.send_json(talker, {"session_type": "chat", "name": "talker2"})
        await asyncio.sleep(0.3)
        for _ in range(10):  # 600 kB: more than the kernel takes, less than the 1 MiB bound
            await W.send_json(talker, {"action": "say", "text": CHAT})
        loop = asyncio.get_running_loop()
        held = await loop.run_in_executor(None, wait, lambda v: v > 100000)
        self.assertLess(held, 1 << 20)
        sleeper.close()
        await loop.run_in_executor(None, wait, lambda v: v == 0)
        await talker.close()
        self.assert_server_alive()

    async def test_b_slow_reader_sees_1008(self):
        """A client that stops reading for a moment and then reads again gets
        what fitted, whole frames in order, then close 1008."""
        c = self.raw("burst")
        c.send_json({"action": "flood", "n": 40, "size": 60000})  # 2.4 MB, 1 MiB queue
        time.sleep(0.5)
        code, reason, texts = c.read_until_close(10)
        c.close()
        self.assertEqual((code, reason), (1008, "send queue full"))
        frames = [json.loads(t) for t in texts]
        self.assertEqual(frames[0]["ready"], "burst")
        idx = [f["i"] for f in frames[1:]]
        self.assertEqual(idx, list(range(len(idx))), "frames lost or out of order")
        self.assertGreater(len(idx), 5, "what fitted in the queue is delivered")
        self.assertLess(len(idx), 40)

    async def test_c_reading_client_gets_everything(self):
        ws, _ = await W.session(self, self.url, "burst")
        await W.send_json(ws, {"action": "flood", "n": 500, "size": 1000})
        for i in range(500):
            self.assertEqual((await W.recv_json(ws))["i"], i)
        await W.send_json(ws, {"action": "report"})
        r = await W.recv_json(ws)
        self.assertEqual((r["sent"], r["refused"]), (500, 0), r)
        self.assertEqual(r["limit"], 1 << 20)
        await ws.close()

    async def test_d_message_larger_than_the_queue(self):
        ws, _ = await W.session(self, self.url, "burst")
        await W.send_json(ws, {"action": "flood", "n": 1, "size": 1100000})
        await W.send_json(ws, {"action": "report"})
        r = await W.recv_json(ws)
        self.assertEqual((r["sent"], r["refused"], r["err"]), (0, 1, "ETOOBIG"), r)
        await W.echo_ok(self, ws, "still open")
        await ws.close()

    async def test_e_many_stalled_clients(self):
        """Twenty clients that never read, each sent 2.4 MB: all closed, the
        bystander's round trips stay short."""
        by = await self.bystander()
        stop = asyncio.Event()
        greets = asyncio.ensure_future(self.greet_latencies(by, stop, 0.1))
        slow_before = self.server.log().count("client too slow")
        stalled = []
        for _ in range(20):
            c = self.raw("burst")
            c.send_json({"action": "flood", "n": 40, "size": 60000})
            stalled.append(c)
        # Nobody reads until the shard has given up on all twenty: a client
        # that started reading early would keep up and rightly stay open.
        deadline = time.monotonic() + 15
        while (self.server.log().count("client too slow") < slow_before + 20
               and time.monotonic() < deadline):
            await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(len(stalled)) as pool:
            ended = await asyncio.gather(*(loop.run_in_executor(pool, c.stream_ended, 10)
                                           for c in stalled))
        stop.set()
        lat = await greets
        self.assertEqual(ended.count(True), 20, "stalled clients left connected")
        self.assertLess(max(lat), 2.0, f"a greet took {max(lat):.2f} s")
        for c in stalled:
            c.close()
        await by.close()
        self.assert_server_alive()


class B_RefusePolicy(SlowCase):

    async def test_refused_frames_keep_the_client(self):
        c = self.raw("burst_refuse")  # a 64 KiB queue, SKICK_SEND_REFUSE
        ready = json.loads(c.recv_frame()[1])
        self.assertEqual(ready["ready"], "burst_refuse")
        c.send_json({"action": "flood", "n": 200, "size": 2000})  # 400 kB
        time.sleep(0.5)
        c.send_json({"action": "report"})
        got = []
        while True:
            op, payload = c.recv_frame(10)
            self.assertEqual(op, 1, f"frame op {op}: the client was closed?")
            m = json.loads(payload)
            if "sent" in m:
                break
            got.append(m["i"])
        self.assertEqual(got, list(range(len(got))), "frames lost or out of order")
        self.assertEqual(m["sent"], len(got))
        self.assertGreater(m["refused"], 0)
        self.assertEqual(m["sent"] + m["refused"], 200)
        self.assertEqual(m["err"], "EBACKLOG")
        self.assertEqual(m["queue_refused"], m["refused"])
        self.assertEqual(m["limit"], 65536)
        c.send_json({"action": "echo", "text": "after"})
        self.assertEqual(json.loads(c.recv_frame()[1]), {"echo": "after"})
        c.close()


class C_Silent(W.ServerCase):
    server_args = ("--ping", "500", *W.FEW_THREADS)

    async def test_sigstopped_client_is_disconnected(self):
        """A client process stopped with SIGSTOP answers no ping: it is
        disconnected after three intervals; a reading one stays."""
        script = ("import sys, json, time; sys.path.insert(0, %r)\n"
                  "from slowpeer import RawClient\n"
                  "c = RawClient(%d)\n"
                  "c.send_json({'session_type': 'echo'})\n"
                  "print(json.loads(c.recv_frame()[1])['ready'], flush=True)\n"
                  "try:\n"
                  "    while True:\n"
                  "        f = c.recv_frame(30)\n"
                  "        if f is None: break\n"
                  "        if f[0] == 9: c.send_frame(f[1], 10)\n"
                  "except OSError: pass\n"
                  "print('ended', flush=True)\n"
                  % (os.path.dirname(os.path.abspath(__file__)), self.server.port))
        child = subprocess.Popen(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE,
                                 text=True)
        try:
            self.assertEqual(child.stdout.readline().strip(), "echo")
            ws, _ = await W.session(self, self.url)  # answers pings (the library does)
            await asyncio.sleep(1.2)  # two intervals: the child answers its pings
            self.assertIsNone(child.poll())
            child.send_signal(signal.SIGSTOP)
            t0 = time.monotonic()
            while "no answer to pings" not in self.server.log():
                self.assertLess(time.monotonic() - t0, 8, "a stopped client stayed connected")
                await asyncio.sleep(0.1)
            elapsed = time.monotonic() - t0
            self.assertGreater(elapsed, 0.5)
            child.send_signal(signal.SIGCONT)
            self.assertEqual(child.stdout.readline().strip(), "ended")
            await W.echo_ok(self, ws, "the other client stays")
            await ws.close()
        finally:
            child.kill()
            child.wait()


class D_LimitCloses(W.ServerCase):
    """A client over its rate or size limit gets the answers to what it sent
    before the limit, then the close (PROTOCOL.md "Limits and close codes")."""
    server_args = W.FEW_THREADS

    async def test_rate_limit_answers_what_was_admitted(self):
        ws, _ = await W.session(self, self.url, "limited")  # 5/s, burst 5; the handshake took 1
        for i in range(7):  # 4 admitted, the 5th is over
            await W.send_json(ws, {"action": "echo", "text": str(i)})
        code, reason, msgs = await W.closed(ws)
        self.assertEqual((code, reason), (1008, "rate limit exceeded"))
        # 4 tokens were left; one more may have come back while the session
        # started (5/s). Whatever was admitted is answered, in order.
        got = [json.loads(m) for m in msgs]
        self.assertEqual(got, [{"echo": str(i)} for i in range(len(got))])
        self.assertIn(len(got), (4, 5), "the admitted messages must be answered before the "
                      "close")

    async def test_size_limit_answers_what_was_admitted(self):
        ws, _ = await W.session(self, self.url, "limited")  # 100 bytes per message
        await W.send_json(ws, {"action": "echo", "text": "a"})
        await W.send_json(ws, {"action": "echo", "text": "b"})
        await ws.send(W.sized_echo(101)[0])
        code, reason, msgs = await W.closed(ws)
        self.assertEqual((code, reason), (1009, "message too big"))
        self.assertEqual([json.loads(m) for m in msgs], [{"echo": "a"}, {"echo": "b"}])


class E_TLS(unittest.IsolatedAsyncioTestCase):

    async def test_wss_stalled_client(self):
        d = tempfile.mkdtemp(prefix="skick-slow-tls-")
        W._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                   "-keyout", f"{d}/k.pem", "-out", f"{d}/c.pem", "-subj", "/CN=localhost",
                   "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
        with open(f"{d}/server.pem", "w") as out:
            for part in ("k.pem", "c.pem"):
                with open(f"{d}/{part}") as f:
                    out.write(f.read())
        server = W.Server("--cert", f"{d}/server.pem", *W.FEW_THREADS, scheme="wss")
        try:
            ctx = ssl.create_default_context(cafile=f"{d}/c.pem")
            stalled = RawClient(server.port, rcvbuf=4096, tls=ctx)
            stalled.send_json({"session_type": "burst"})
            stalled.send_json({"action": "flood", "n": 40, "size": 60000})
            ws = await W.connect(server.url, ssl=ctx)
            await W.send_json(ws, {"session_type": "echo"})
            self.assertEqual((await W.recv_json(ws))["ready"], "echo")
            for i in range(10):
                t0 = time.monotonic()
                await W.echo_ok(self, ws, f"tls {i}")
                self.assertLess(time.monotonic() - t0, 2.0)
            ended = await asyncio.get_running_loop().run_in_executor(None,
                                                                     stalled.stream_ended, 10)
            self.assertTrue(ended, "the stalled wss client was never disconnected")
            self.assertRegex(server.log(), r"client too slow: send queue full")
            await ws.close()
            stalled.close()
            rc = await asyncio.get_running_loop().run_in_executor(None, server.stop)
            self.assertEqual(rc, 0, server.log_tail())
            self.assertEqual(server.sanitizer_lines(), [], server.log_tail(60))
        finally:
            server.cleanup()


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in (A_StoppedReaders, B_RefusePolicy, C_Silent, D_LimitCloses, E_TLS):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


def main():
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} BUILD_DIR [unittest args]", file=sys.stderr)
        return 2
    W.BUILD = os.path.abspath(sys.argv[1])
    for f in ("node/skick-node", "tests/integration/ws_test_app.so", "examples/hello.so"):
        if not os.path.exists(os.path.join(W.BUILD, f)):
            print(f"{W.BUILD}/{f} is missing: build first", file=sys.stderr)
            return 2
    import faulthandler
    faulthandler.dump_traceback_later(280, exit=True)
    prog = unittest.main(module=__name__, argv=[sys.argv[0]] + sys.argv[2:], exit=False,
                         verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
    print(f"{r.testsRun - failed - len(r.skipped)} passed, {failed} failed")
    return 0 if failed == 0 and r.testsRun else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        W._kill_all()
