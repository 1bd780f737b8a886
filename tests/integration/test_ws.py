#!/usr/bin/python3
"""test_ws.py - the client protocol of front shards, against real processes

Usage: /usr/bin/python3 tests/integration/test_ws.py BUILD_DIR [unittest args]

Starts BUILD_DIR/node/skick-node with the test module
BUILD_DIR/tests/integration/ws_test_app.so (tests/integration/ws_app.c),
talks websockets to it with Debian's python3-websockets (10.4, asyncio
client) and checks what proto/PROTOCOL.md, "The client protocol", promises:
the handshake, the error objects, frames, socket queries, session replace,
lifecycle close codes, limits, shutdown and TLS. One server per test class
(classes differ in their limits); each class ends with a test that stops its
server with SIGTERM and checks exit status 0 and a log free of sanitizer
reports. Every wait is bounded. The last line is "N passed, M failed"; the
exit status is non-zero when anything failed.
"""
import asyncio
import faulthandler
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.frames import Opcode

BUILD = None  # set by main()
WAIT = 10.0  # bound on any single wait for the server (seconds)
START_WAIT = 20.0  # bound on a server start (the ASan build is slower)
STOP_WAIT = 10.0  # bound on a clean stop

SANITIZER = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:"
                       r"|WARNING: ThreadSanitizer")

# The error objects of PROTOCOL.md, as the compact JSON text the server sends.
E_JSON = '{"action":"error","type":"invalid JSON"}'
E_FORMAT = '{"action":"error","type":"Incorrect message format"}'
E_NOACTION = '{"action":"error","type":"No action requested"}'
E_SCHEMA = '{"action":"error","type":"not schema compliant"}'
E_QUERY = '{"action":"error","type":"unknown query"}'
E_FAILED = '{"action":"error","type":"session failed"}'
NOSCHEMA = "No schema present for action '"

_servers = []  # every Server started, killed at exit if still running


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def e_subschema(qid):
    return {"error": "Invalid subschema", "query_id": qid}


def e_noschema(shown):
    return {"action": "error", "type": NOSCHEMA + shown + "'"}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# Servers


class Server:
    """One skick-node process with the test module, its output in a file."""

    def __init__(self, *args, wait=True, scheme="ws"):
        self.port = free_port()
        self.scheme = scheme
        fd, self.logpath = tempfile.mkstemp(prefix="skick-ws-", suffix=".log")
        self.logfile = os.fdopen(fd, "w")
        self.cmd = [os.path.join(BUILD, "node", "skick-node"),
                    "--app", os.path.join(BUILD, "tests", "integration", "ws_test_app.so"),
                    "--port", str(self.port), "--log-level", "info", *args]
        env = dict(os.environ)
        env.pop("SKICK_KEY_PASSWORD", None)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.logfile,
                                     stderr=subprocess.STDOUT, env=env)
        self.rc = None
        _servers.append(self)
        if wait:
            try:
                self.wait_ready()
            except Exception:
                self.cleanup()
                raise

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    def wait_ready(self):
        """Wait for the port to accept and for the "serving" log line. The port
        alone is not enough: node_ws_start registers the websocket handlers
        after mg_start has opened the port, and an upgrade that arrives in
        between is closed without an HTTP answer."""
        deadline = time.monotonic() + START_WAIT
        accepting = False
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"skick-node exited with {self.proc.returncode} at start:\n"
                                   + self.log_tail())
            if not accepting:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        accepting = True
                except OSError:
                    pass
            if accepting and re.search(r"notice ws: serving wss?://", self.log()):
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("skick-node did not accept connections in time:\n" + self.log_tail())

    def log(self):
        self.logfile.flush()
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def log_tail(self, n=25):
        return "\n".join("    " + line[:200] for line in self.log().splitlines()[-n:])

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=STOP_WAIT):
        """SIGTERM, wait; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.rc = None
        else:
            self.rc = self.proc.returncode
        return self.rc

    def wait_exit(self, timeout):
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.rc = None
        return self.rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def sanitizer_lines(self):
        return [line for line in self.log().splitlines() if SANITIZER.search(line)]

    def cleanup(self):
        self.kill()
        self.logfile.close()
        try:
            os.unlink(self.logpath)
        except OSError:
            pass


def _kill_all():
    for s in _servers:
        try:
            s.kill()
        except Exception:
            pass


# ---------------------------------------------------------------------------
# Client helpers (every wait bounded)


async def connect(url, **kw):
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", WAIT)
    kw.setdefault("close_timeout", 3)
    kw.setdefault("ping_interval", None)
    return await asyncio.wait_for(websockets.connect(url, **kw), WAIT + 1)


async def recv(ws, timeout=WAIT):
    """The next message (str or bytes); fails on a timeout or a close."""
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no message from the server within {timeout} s") from None
    except ConnectionClosed as e:
        hint = ""
        if e.sent is not None and e.sent.code == 1007:
            hint = " (the client failed the connection: the server sent a text frame " \
                   "that is not valid UTF-8)"
        raise AssertionError(f"connection closed while waiting for a message: {e}{hint}") \
            from None


async def recv_text(ws, timeout=WAIT):
    m = await recv(ws, timeout)
    if not isinstance(m, str):
        raise AssertionError(f"server sent a binary frame {m[:60]!r}; PROTOCOL.md: every "
                             f"frame the server sends is a text frame")
    return m


async def recv_json(ws, timeout=WAIT):
    return json.loads(await recv_text(ws, timeout))


async def recv_exact(test, ws, expected, timeout=WAIT):
    """The next message is the JSON value expected, as compact JSON."""
    raw = await recv_text(ws, timeout)
    value = json.loads(raw)
    test.assertEqual(value, expected)
    test.assertEqual(raw, compact(value), "not compact JSON")


async def closed(ws, timeout=WAIT):
    """Wait for the close; returns (code, reason, [messages received before])."""
    msgs = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"connection not closed within {timeout} s "
                                 f"(received meanwhile: {msgs[:5]!r})")
        try:
            msgs.append(await asyncio.wait_for(ws.recv(), left))
        except asyncio.TimeoutError:
            raise AssertionError(f"connection not closed within {timeout} s "
                                 f"(received meanwhile: {msgs[:5]!r})") from None
        except ConnectionClosed:
            break
    try:
        await asyncio.wait_for(ws.wait_closed(), max(0.1, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    return ws.close_code, ws.close_reason, msgs


async def nothing_more(test, ws, wait=0.3):
    """Assert no message arrives for a little while."""
    try:
        m = await asyncio.wait_for(ws.recv(), wait)
    except asyncio.TimeoutError:
        return
    except ConnectionClosed as e:
        test.fail(f"connection closed unexpectedly: {e.code} {e.reason!r}")
    test.fail(f"unexpected extra message {m!r}")


async def send_json(ws, value):
    await ws.send(compact(value))


async def session(test, url, stype="echo", ready=None, **extra):
    """Open a session; returns (ws, the ready message)."""
    ws = await connect(url)
    await send_json(ws, {"session_type": stype, **extra})
    msg = await recv_json(ws)
    test.assertEqual(msg.get("ready"), ready or stype, msg)
    return ws, msg


async def echo_ok(test, ws, text="still here"):
    await send_json(ws, {"action": "echo", "text": text})
    test.assertEqual(await recv_json(ws), {"echo": text})


async def refused(url, **kw):
    """None when the upgrade is refused as PROTOCOL.md says (no answer to the
    upgrade request, the TCP connection closed), else what happened."""
    try:
        ws = await connect(url, **kw)
    except InvalidHandshake as e:  # InvalidMessage: no HTTP answer at all
        if isinstance(e, websockets.exceptions.InvalidMessage):
            return None
        return f"the upgrade got an answer: {e!r}"
    except (OSError, EOFError) as e:
        return None if not isinstance(e, ConnectionRefusedError) else repr(e)
    await ws.close()
    return "the websocket was opened"


def sized_echo(total):
    """An echo message of exactly total bytes."""
    head, tail = '{"action":"echo","text":"', '"}'
    n = total - len(head) - len(tail)
    assert n >= 0
    return head + "x" * n + tail, "x" * n


# ---------------------------------------------------------------------------
# Test case bases


# civetweb starts --ws-threads threads (default 1100) and joins them at the
# stop, which takes about 2 s; classes that do not test the defaults use 64.
FEW_THREADS = ("--ws-threads", "64")


class ServerCase(unittest.IsolatedAsyncioTestCase):
    """One server for the class; the last test stops it and checks the exit."""
    server_args = FEW_THREADS

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.server_args)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    @property
    def url(self):
        return self.server.url

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            print(f"\n# {self.id()} failed; the server's log ends with:\n"
                  + self.server.log_tail(15), file=sys.stderr)
        return out

    def assert_server_alive(self):
        self.assertTrue(self.server.alive(), "skick-node died:\n" + self.server.log_tail())

    def test_zz_server_stops_cleanly(self):
        rc = self.server.stop()
        self.assertEqual(rc, 0, "exit status after SIGTERM (None: had to be killed)\n"
                         + self.server.log_tail())
        self.assertEqual(self.server.sanitizer_lines(), [], self.server.log_tail(60))


# ---------------------------------------------------------------------------
# The default server: handshake, messages, queries, replace, lifecycle


class A_Handshake(ServerCase):
    server_args = ()  # all defaults

    async def test_valid_session(self):
        ws = await connect(self.url)
        await send_json(ws, {"session_type": "echo"})
        raw = await recv_text(ws)
        self.assertEqual(raw, '{"ready":"echo","init":{"session_type":"echo"}}')
        await echo_ok(self, ws, "hi")
        await ws.close()

    async def test_ws_path(self):
        ws = await connect(self.url + "ws")
        await send_json(ws, {"session_type": "echo"})
        self.assertEqual((await recv_json(ws))["ready"], "echo")
        await echo_ok(self, ws)
        await ws.close()

    async def test_binary_handshake(self):
        ws = await connect(self.url)
        await ws.send(b'{"session_type":"echo"}')
        self.assertEqual((await recv_json(ws))["ready"], "echo")
        await ws.close()

    async def test_denied(self):
        cases = [
            ("unknown type", '{"session_type":"nosuch"}'),
            ("array", '[{"session_type":"echo"}]'),
            ("string", '"echo"'),
            ("number", "5"),
            ("null", "null"),
            ("invalid JSON", '{"session_type":"echo"'),
            ("trailing garbage", '{"session_type":"echo"} x'),
            ("missing session_type", "{}"),
            ("other key", '{"type":"echo"}'),
            ("non-string session_type", '{"session_type":5}'),
            ("empty session_type", '{"session_type":""}'),
            ("final step requested", '{"session_type":"seq:final"}'),
            ("subsession requested", '{"session_type":"other"}'),
        ]
        for name, text in cases:
            with self.subTest(name):
                ws = await connect(self.url)
                await ws.send(text)
                code, reason, msgs = await closed(ws)
                self.assertEqual(msgs, ["denied"])
                self.assertEqual((code, reason), (1000, "session denied"))

    async def test_extra_fields_dropped_without_schema(self):
        ws, ready = await session(self, self.url, "echo", name="ada", n=1, session_x=[1])
        self.assertEqual(ready["init"], {"session_type": "echo"})
        await ws.close()

    async def test_handshake_schema_accepts(self):
        ws, ready = await session(self, self.url, "greet", name="ada")
        self.assertEqual(ready["init"], {"session_type": "greet", "name": "ada"})
        await echo_ok(self, ws)
        await ws.close()
        ws, ready = await session(self, self.url, "greet", name="bob", age=7)
        self.assertEqual(ready["init"], {"session_type": "greet", "name": "bob", "age": 7})
        await ws.close()

    async def test_handshake_schema_refuses(self):
        cases = [
            ("missing required", {"session_type": "greet"}),
            ("wrong type", {"session_type": "greet", "name": 5}),
            ("extra field", {"session_type": "greet", "name": "ada", "x": 1}),
            ("float for integer", {"session_type": "greet", "name": "ada", "age": 1.5}),
            ("string for integer", {"session_type": "greet", "name": "ada", "age": "3"}),
        ]
        for name, hs in cases:
            with self.subTest(name):
                ws = await connect(self.url)
                await send_json(ws, hs)
                code, reason, msgs = await closed(ws)
                self.assertEqual(msgs, ["denied"])
                self.assertEqual((code, reason), (1000, "session denied"))

    async def test_handshake_sequence(self):
        ws, ready = await session(self, self.url, "seq", ready="seq:final")
        self.assertEqual(ready["init"], {"step": "first"})
        await echo_ok(self, ws)
        await ws.close()


class B_Messages(ServerCase):
    """The five error objects; the connection stays open and nothing is lost."""

    async def asyncSetUp(self):
        self.ws, _ = await session(self, self.url)

    async def asyncTearDown(self):
        await asyncio.wait_for(self.ws.close(), WAIT)

    async def expect_raw(self, send, raw):
        if isinstance(send, tuple):  # ("text-bytes", b"...") : a text frame of raw bytes
            await self.ws.write_frame(True, Opcode.TEXT, send[1])
        else:
            await self.ws.send(send)
        self.assertEqual(await recv_text(self.ws), raw, f"for {send!r}")

    async def finish(self):
        await echo_ok(self, self.ws, "after the errors")
        await nothing_more(self, self.ws)

    async def test_invalid_json(self):
        for text in ['{"action":"echo","text":"a"', '{"action":', "{", '{"action":"echo"} x',
                     '{"action":"echo","text":"a"}{}', '{"action":"echo","text":"a"}]',
                     "{'action':'echo'}", '{"action":"echo","text":"a",}',
                     '{"action":"count","n":01}', '{"action":"echo","text":"a"}\x00',
                     "\ufeff{\"action\":\"echo\",\"text\":\"a\"}", "nul", "", "   ", "\x00"]:
            with self.subTest(text):
                await self.expect_raw(text, E_JSON)
        await self.finish()

    async def test_non_finite_numbers_are_not_json(self):
        # NaN and Infinity are not JSON (RFC 8259): "invalid JSON", not a
        # schema failure
        for text in ['{"action":"echo","text":NaN}', '{"action":"count","n":NaN}',
                     '{"action":"count","n":Infinity}', '{"action":"count","n":-Infinity}',
                     '{"action":"echo","text":"a","x":NaN}']:
            with self.subTest(text):
                await self.expect_raw(text, E_JSON)
        await self.finish()

    async def test_invalid_utf8(self):
        # Each case on its own session: a server that echoes bad bytes back
        # sends an invalid text frame, which ends the connection.
        cases = {"bad bytes": b"\xff\xfe", "truncated sequence": b"\xc3",
                 "5-byte sequence": b"\xf8\x88\x80\x80\x80",
                 "UTF-8 encoded surrogate U+D800": b"\xed\xa0\x80",
                 "overlong '/' (2 bytes)": b"\xc0\xaf", "overlong '/' (3 bytes)": b"\xe0\x80\xaf",
                 "beyond U+10FFFF": b"\xf4\x90\x80\x80"}
        for name, bad in cases.items():
            data = b'{"action":"echo","text":"' + bad + b'"}'
            for frame in ("text", "binary"):
                with self.subTest(name, frame=frame):
                    ws, _ = await session(self, self.url)
                    try:
                        if frame == "text":
                            await ws.write_frame(True, Opcode.TEXT, data)
                        else:
                            await ws.send(data)
                        self.assertEqual(await recv_text(ws), E_JSON, f"for {data!r}")
                        await echo_ok(self, ws)
                    finally:
                        await asyncio.wait_for(ws.close(), WAIT)
        await self.finish()

    async def test_not_an_object(self):
        for text in ["[]", '[{"action":"echo","text":"a"}]', '"echo"', "5", "1.5", "null",
                     "true", "false"]:
            with self.subTest(text):
                await self.expect_raw(text, E_FORMAT)
        await self.finish()

    async def test_no_action(self):
        for msg in [{}, {"text": "a"}, {"action": None}, {"action": ""}, {"action": 0},
                    {"action": 0.0}, {"action": False}, {"action": []}, {"action": {}},
                    {"action": None, "text": "a"}]:
            with self.subTest(msg):
                await self.expect_raw(compact(msg), E_NOACTION)
        await self.finish()

    async def test_non_string_action(self):
        for action, shown in [(5, "5"), (-1, "-1"), (1.5, "1.5"), (True, "true"), ([1], "[1]"),
                              ({"a": 1}, '{"a":1}'), (["echo"], '["echo"]')]:
            with self.subTest(action):
                await send_json(self.ws, {"action": action, "text": "a"})
                self.assertEqual(await recv_json(self.ws), e_noschema(shown))
        await self.finish()

    async def test_unknown_action(self):
        for action in ["nosuch", "Echo", "echo ", "SocketQuery", "error", "done", "monitor"]:
            with self.subTest(action):
                await send_json(self.ws, {"action": action})
                self.assertEqual(await recv_json(self.ws), e_noschema(action))
        await self.finish()

    async def test_action_echo_capped_at_32_bytes(self):
        await send_json(self.ws, {"action": "x" * 100})
        self.assertEqual(await recv_json(self.ws), e_noschema("x" * 32))
        await send_json(self.ws, {"action": list(range(40))})
        self.assertEqual(await recv_json(self.ws), e_noschema(compact(list(range(40)))[:32]))
        await self.finish()

    async def test_action_echo_multibyte_capped(self):
        # 1 + 2*40 bytes: a 32-byte cut falls inside a 2-byte character. Whatever
        # is shown, the frame must stay UTF-8 (PROTOCOL.md: every server frame is
        # UTF-8 JSON), and hold at most 32 bytes of the action.
        action = "a" + "\u00e9" * 40
        await send_json(self.ws, {"action": action})
        msg = await recv_json(self.ws)
        self.assertEqual(msg.get("action"), "error")
        t = msg.get("type", "")
        self.assertTrue(t.startswith(NOSCHEMA) and t.endswith("'"), t)
        shown = t[len(NOSCHEMA):-1]
        self.assertLessEqual(len(shown.encode()), 32, shown)
        self.assertTrue(action.startswith(shown) and len(shown) >= 16, shown)
        await self.finish()

    async def test_action_control_characters_escaped(self):
        action = "a\nb\tc\x01d\x7f"
        await send_json(self.ws, {"action": action})
        msg = await recv_json(self.ws)
        t = msg.get("type", "")
        self.assertTrue(t.startswith(NOSCHEMA), t)
        self.assertFalse(any(ord(c) < 0x20 or ord(c) == 0x7f for c in t), repr(t))
        for c in "abcd":
            self.assertIn(c, t[len(NOSCHEMA):])
        await self.finish()

    async def test_schema_failures(self):
        for msg in [{"action": "echo"},                              # missing key
                    {"action": "echo", "text": 5},                   # wrong type
                    {"action": "echo", "text": None},
                    {"action": "echo", "text": "a", "x": 1},         # extra key
                    {"action": "echo", "text": "a", "cid": "0" * 32},  # no conversation keys
                    {"action": "echo", "text": "a",
                     "sender": "0123456789abcdef:0123456789abcdef"},
                    {"action": "count", "n": 1.0},                   # 1.0 is not an integer
                    {"action": "count", "n": 1.5},
                    {"action": "count", "n": True},
                    {"action": "count", "n": "1"},
                    {"action": "quit", "now": True},                 # NULL schema: action only
                    {"action": "ask", "schema": 5}]:
            with self.subTest(msg):
                await self.expect_raw(compact(msg), E_SCHEMA)
        await send_json(self.ws, {"action": "count", "n": 3})
        self.assertEqual(await recv_json(self.ws), {"count": 3})
        await self.finish()

    async def test_binary_frames(self):
        await self.ws.send(compact({"action": "echo", "text": "bin"}).encode())
        self.assertEqual(await recv_json(self.ws), {"echo": "bin"})
        await self.ws.send('{"action":"echo","text":"\u00e9\u4e2d"}'.encode())
        self.assertEqual(await recv_json(self.ws), {"echo": "\u00e9\u4e2d"})
        await self.expect_raw(b"[1]", E_FORMAT)
        await self.expect_raw(b"{", E_JSON)
        await self.finish()

    async def test_fragmented_messages(self):
        await self.ws.send(['{"action":"ec', 'ho","text":"', "frag", 'ment"}'])
        self.assertEqual(await recv_json(self.ws), {"echo": "fragment"})
        # binary fragments, one character split between two of them
        data = '{"action":"echo","text":"\u00e9!"}'.encode()
        cut = data.index(b"\xc3") + 1
        await self.ws.send([data[:5], data[5:cut], data[cut:]])
        self.assertEqual(await recv_json(self.ws), {"echo": "\u00e9!"})
        # one byte per frame
        text = compact({"action": "echo", "text": "tiny"})
        await self.ws.send(list(text))
        self.assertEqual(await recv_json(self.ws), {"echo": "tiny"})
        # fragments of bad messages get the same answers as whole ones
        await self.ws.send(['{"action":', '"echo"'])
        self.assertEqual(await recv_text(self.ws), E_JSON)
        await self.ws.send(["[", "]"])
        self.assertEqual(await recv_text(self.ws), E_FORMAT)
        await self.finish()

    async def test_ping(self):
        pong = await self.ws.ping(b"hello")
        await asyncio.wait_for(pong, WAIT)
        await self.finish()

    async def test_client_close(self):
        await asyncio.wait_for(self.ws.close(1000, "bye"), WAIT)
        self.assertEqual(self.ws.close_code, 1000)  # the server answered our close


class C_Queries(ServerCase):

    async def asyncSetUp(self):
        self.ws, _ = await session(self, self.url)

    async def asyncTearDown(self):
        await asyncio.wait_for(self.ws.close(), WAIT)

    async def ask(self, schema, payload=None):
        msg = {"action": "ask", "schema": schema}
        if payload is not None:
            msg["payload"] = payload
        await send_json(self.ws, msg)
        q = await recv_json(self.ws)
        self.assertEqual(q.get("action"), "SocketQuery", q)
        self.assertEqual(q.get("schema"), schema, q)
        return q

    async def reply(self, qid, value):
        await send_json(self.ws, {"action": "query_reply", "query_id": qid, "message": value})

    async def test_socket_query_shape(self):
        q = await self.ask("str", {"question": "name?", "n": [1, 2]})
        self.assertEqual(set(q), {"action", "query_id", "message", "schema"})
        self.assertRegex(q["query_id"], r"^[0-9a-f]{32}$")
        self.assertEqual(q["message"], {"question": "name?", "n": [1, 2]})
        await self.reply(q["query_id"], "bob")
        self.assertEqual(await recv_json(self.ws), {"answer": "bob"})
        q2 = await self.ask("default")
        self.assertNotEqual(q2["query_id"], q["query_id"])
        await self.reply(q2["query_id"], 1)
        self.assertEqual(await recv_json(self.ws), {"answer": 1})
        await nothing_more(self, self.ws)

    async def test_subschemas(self):
        table = [
            ("default", [{}, {"a": 1}, [], [1], None], ["s", 7, 2.5, True, False]),
            ("str", [1, True, None, ["a"], {}], ["", "x"]),
            ("int", [True, False, 1.0, 1.5, "1", None, [1]], [0, -3, 42]),
            ("float", [1, 0, -2, "1.5", True, None], [1.5, -0.25]),
            ("bool", [1, 0, "true", None, [True]], [True, False]),
            ("list", [[[1]], [{"a": 1}], [None], "x", {}, 1], [[], ["a", 1, 2.5, True]]),
            ("small", [11, "5", 5.5, True], [10, -1]),
        ]
        for schema, bad, good in table:
            for i, value in enumerate(good):
                with self.subTest(schema=schema, value=value):
                    q = await self.ask(schema)
                    for b in bad if i == 0 else []:
                        await self.reply(q["query_id"], b)
                        self.assertEqual(await recv_json(self.ws),
                                         e_subschema(q["query_id"]),
                                         f"{schema} should refuse {b!r}")
                    await self.reply(q["query_id"], value)
                    got = await recv_json(self.ws)
                    self.assertEqual(got, {"answer": value}, f"{schema} should accept {value!r}")
                    self.assertIs(type(got["answer"]), type(value))
        await nothing_more(self, self.ws)

    async def test_invalid_subschema_keeps_query_open(self):
        q = await self.ask("int")
        await self.reply(q["query_id"], "three")
        await recv_exact(self, self.ws, e_subschema(q["query_id"]))
        await self.reply(q["query_id"], 3.0)
        await recv_exact(self, self.ws, e_subschema(q["query_id"]))
        await self.reply(q["query_id"], 3)
        self.assertEqual(await recv_json(self.ws), {"answer": 3})
        await nothing_more(self, self.ws)

    async def test_non_json_answer(self):
        # NaN is not JSON: the answer is refused as invalid JSON and the
        # question stays open (and no NaN ever reaches the client back)
        q = await self.ask("default")
        await self.ws.send('{"action":"query_reply","query_id":"%s","message":NaN}'
                           % q["query_id"])
        self.assertEqual(await recv_text(self.ws), E_JSON)
        await self.reply(q["query_id"], 2)
        self.assertEqual(await recv_json(self.ws), {"answer": 2})
        await nothing_more(self, self.ws)

    async def test_unknown_query(self):
        await self.reply("0123456789abcdef0123456789abcdef", 1)
        self.assertEqual(await recv_text(self.ws), E_QUERY)
        await self.reply("nope", 1)
        self.assertEqual(await recv_text(self.ws), E_QUERY)
        await echo_ok(self, self.ws)
        await nothing_more(self, self.ws)

    async def test_answer_twice(self):
        q = await self.ask("default")
        await self.reply(q["query_id"], "first")
        self.assertEqual(await recv_json(self.ws), {"answer": "first"})
        await self.reply(q["query_id"], "second")
        self.assertEqual(await recv_text(self.ws), E_QUERY)
        await echo_ok(self, self.ws)
        await nothing_more(self, self.ws)

    async def test_malformed_query_reply(self):
        q = await self.ask("int")
        qid = q["query_id"]
        for msg in [{"action": "query_reply", "query_id": qid, "message": 1, "extra": 1},
                    {"action": "query_reply", "query_id": qid},
                    {"action": "query_reply", "message": 1},
                    {"action": "query_reply", "query_id": 5, "message": 1},
                    {"action": "query_reply", "query_id": qid, "message": 1, "cid": "0" * 32}]:
            with self.subTest(msg):
                await send_json(self.ws, msg)
                self.assertEqual(await recv_text(self.ws), E_SCHEMA)
        await self.reply(qid, 5)  # the query is still open
        self.assertEqual(await recv_json(self.ws), {"answer": 5})
        await nothing_more(self, self.ws)

    async def test_two_queries_open_at_once(self):
        await send_json(self.ws, {"action": "ask2"})
        q1, q2 = await recv_json(self.ws), await recv_json(self.ws)
        for q in (q1, q2):
            self.assertEqual(q.get("action"), "SocketQuery", q)
            self.assertEqual(q.get("schema"), "str")
        self.assertNotEqual(q1["query_id"], q2["query_id"])
        by_task = {q1["message"]["task"]: q1["query_id"], q2["message"]["task"]: q2["query_id"]}
        self.assertEqual(set(by_task), {1, 2})
        # the session's mailbox still works while both wait
        await echo_ok(self, self.ws, "meanwhile")
        await self.reply(by_task[2], 5)  # a refused answer leaves it open
        await recv_exact(self, self.ws, e_subschema(by_task[2]))
        await self.reply(by_task[2], "two")
        self.assertEqual(await recv_json(self.ws), {"task": 2, "answer": "two"})
        await self.reply(by_task[1], "one")
        self.assertEqual(await recv_json(self.ws), {"task": 1, "answer": "one"})
        await nothing_more(self, self.ws)

    async def test_sequential_queries_and_waiting_messages(self):
        # while the "ask" handler waits, a client message waits its turn
        q = await self.ask("bool")
        await send_json(self.ws, {"action": "echo", "text": "queued"})
        await self.reply(q["query_id"], True)
        self.assertEqual(await recv_json(self.ws), {"answer": True})
        self.assertEqual(await recv_json(self.ws), {"echo": "queued"})
        for i in range(5):
            q = await self.ask("int", {"i": i})
            self.assertEqual(q["message"], {"i": i})
            await self.reply(q["query_id"], i * 10)
            self.assertEqual(await recv_json(self.ws), {"answer": i * 10})
        await nothing_more(self, self.ws)

    async def test_query_in_the_middle_of_a_conversation(self):
        await send_json(self.ws, {"action": "converse"})
        q = await recv_json(self.ws)
        self.assertEqual(q.get("action"), "SocketQuery", q)
        self.assertEqual((q["message"], q["schema"]), ({"mid_conversation": True}, "int"))
        await self.reply(q["query_id"], "x")
        await recv_exact(self, self.ws, e_subschema(q["query_id"]))
        await self.reply(q["query_id"], 41)
        self.assertEqual(await recv_json(self.ws), {"first": 2, "answer": 41, "second": 42})
        await nothing_more(self, self.ws)


class D_Replace(ServerCase):

    async def test_become(self):
        ws, _ = await session(self, self.url)
        await send_json(ws, {"action": "become"})
        ready = await recv_json(ws)
        self.assertEqual(ready, {"ready": "other", "init": {"from": "echo"}})
        for old in ["echo", "ask", "become"]:
            msg = {"action": old, "text": "a"} if old == "echo" else {"action": old}
            await send_json(ws, msg)
            self.assertEqual(await recv_json(ws), e_noschema(old))
        await send_json(ws, {"action": "ping", "n": 3})
        self.assertEqual(await recv_json(ws), {"pong": 3})
        await send_json(ws, {"action": "ping", "n": 1.0})
        self.assertEqual(await recv_text(ws), E_SCHEMA)
        await send_json(ws, {"action": "ping"})
        self.assertEqual(await recv_text(ws), E_SCHEMA)
        await nothing_more(self, ws)
        await send_json(ws, {"action": "quit"})
        self.assertEqual(await closed(ws), (1000, "session ended", []))

    async def test_become_with_messages_in_flight(self):
        # messages sent right behind "become" are answered by exactly one of
        # the two behaviours: pong or "No schema" for echo, never lost
        ws, _ = await session(self, self.url)
        await ws.send(compact({"action": "become"}))
        await send_json(ws, {"action": "echo", "text": "late"})
        await send_json(ws, {"action": "ping", "n": 1})
        got = [await recv_json(ws) for _ in range(3)]
        self.assertIn({"ready": "other", "init": {"from": "echo"}}, got)
        echo_answer = [g for g in got if "echo" in g or g == e_noschema("echo")]
        self.assertEqual(len(echo_answer), 1, got)
        self.assertIn(echo_answer[0], [{"echo": "late"}, e_noschema("echo")])
        ping_answer = [g for g in got if "pong" in g or g == e_noschema("ping")]
        self.assertEqual(len(ping_answer), 1, got)
        await nothing_more(self, ws)
        await ws.close()


class E_Lifecycle(ServerCase):

    async def test_session_stops(self):
        ws, _ = await session(self, self.url)
        await send_json(ws, {"action": "quit"})
        self.assertEqual(await closed(ws), (1000, "session ended", []))

    async def test_session_fails(self):
        ws, _ = await session(self, self.url)
        await send_json(ws, {"action": "fail"})
        self.assertEqual(await closed(ws), (1011, "session failed", [E_FAILED]))

    async def test_session_fails_on_start(self):
        ws = await connect(self.url)
        await send_json(ws, {"session_type": "badstart"})
        self.assertEqual(await closed(ws), (1011, "session failed", [E_FAILED]))

    async def test_messages_sent_before_session_start_are_kept(self):
        ws = await connect(self.url)
        await send_json(ws, {"session_type": "echo"})
        await send_json(ws, {"action": "echo", "text": "early"})
        await ws.send("[]")
        self.assertEqual((await recv_json(ws))["ready"], "echo")
        # answers come in no promised order: the receptionist answers a bad
        # message itself, a good one goes to the session and back
        got = sorted([await recv_text(ws), await recv_text(ws)])
        self.assertEqual(got, sorted([compact({"echo": "early"}), E_FORMAT]))
        await nothing_more(self, ws)
        await ws.close()

    async def test_messages_held_while_on_start_runs(self):
        ws = await connect(self.url)
        await send_json(ws, {"session_type": "slow"})
        for i in range(64):
            await send_json(ws, {"action": "echo", "text": str(i)})
        self.assertEqual((await recv_json(ws))["ready"], "slow")
        for i in range(64):
            self.assertEqual(await recv_json(ws), {"echo": str(i)})
        await nothing_more(self, ws)
        await ws.close()

    async def test_too_many_messages_before_start(self):
        ws = await connect(self.url)
        await send_json(ws, {"session_type": "slow"})
        for i in range(65):
            await send_json(ws, {"action": "echo", "text": str(i)})
        code, reason, msgs = await closed(ws)
        self.assertEqual((code, reason), (1008, "too many messages before the session started"))
        self.assertFalse([m for m in msgs if "echo" in m], msgs)

    async def test_client_vanishes(self):
        # transport closed without a close frame, in various states
        async def vanish(ws):
            ws.transport.abort()
            try:
                await asyncio.wait_for(ws.wait_closed(), WAIT)
            except asyncio.TimeoutError:
                pass

        ws = await connect(self.url)  # before the handshake
        await vanish(ws)
        ws = await connect(self.url)  # right behind the handshake
        await send_json(ws, {"session_type": "echo"})
        await vanish(ws)
        ws, _ = await session(self, self.url)  # mid-query
        await send_json(ws, {"action": "ask", "schema": "int"})
        self.assertEqual((await recv_json(ws))["action"], "SocketQuery")
        await vanish(ws)
        ws, _ = await session(self, self.url)  # two queries open
        await send_json(ws, {"action": "ask2"})
        await recv_json(ws)
        await recv_json(ws)
        await vanish(ws)
        ws, _ = await session(self, self.url)  # mid-conversation, query open
        await send_json(ws, {"action": "converse"})
        self.assertEqual((await recv_json(ws))["action"], "SocketQuery")
        await vanish(ws)
        ws, _ = await session(self, self.url)  # inside a fragmented message
        await ws.write_frame(False, Opcode.TEXT, b'{"action":"ec')
        await vanish(ws)
        ws, _ = await session(self, self.url)  # a query answered as it goes
        await send_json(ws, {"action": "converse"})
        q = await recv_json(ws)
        await send_json(ws, {"action": "query_reply", "query_id": q["query_id"], "message": 1})
        await vanish(ws)

        await asyncio.sleep(0.3)
        self.assert_server_alive()
        ws, _ = await session(self, self.url)
        await echo_ok(self, ws)
        await send_json(ws, {"action": "converse"})
        q = await recv_json(ws)
        await send_json(ws, {"action": "query_reply", "query_id": q["query_id"], "message": 9})
        self.assertEqual(await recv_json(ws), {"first": 2, "answer": 9, "second": 10})
        await ws.close()
        self.assert_server_alive()


class F_DefaultLimits(ServerCase):

    async def test_default_max_message(self):
        ws, _ = await session(self, self.url)
        text, body = sized_echo(65536)
        await ws.send(text)
        self.assertEqual(await recv_json(ws), {"echo": body})
        text, _ = sized_echo(65537)
        await ws.send(text)
        self.assertEqual(await closed(ws), (1009, "message too big", []))

    async def test_session_type_max_message(self):
        ws, _ = await session(self, self.url, "limited")
        text, body = sized_echo(100)
        await ws.send(text)
        self.assertEqual(await recv_json(ws), {"echo": body})
        text, _ = sized_echo(101)
        await ws.send(text)
        self.assertEqual(await closed(ws), (1009, "message too big", []))

    async def test_session_type_rate(self):
        ws, _ = await session(self, self.url, "limited")
        for i in range(4):  # within the burst of 5
            await send_json(ws, {"action": "echo", "text": str(i)})
        for i in range(4):
            self.assertEqual(await recv_json(ws), {"echo": str(i)})
        for i in range(20):
            try:
                await send_json(ws, {"action": "echo", "text": "flood"})
            except ConnectionClosed:
                break
        code, reason, msgs = await closed(ws)
        self.assertEqual((code, reason), (1008, "rate limit exceeded"))
        self.assertLess(len(msgs), 20, "all 20 answered: no rate limit")

    async def test_default_origin(self):
        self.assertIsNone(await refused(self.url, origin="http://evil.example"),
                          "a page from another host must be refused")
        ws, _ = await session(self, self.url)  # no Origin: not a browser
        await ws.close()
        ws = await connect(self.url, origin=f"http://127.0.0.1:{self.server.port}")
        await send_json(ws, {"session_type": "echo"})
        self.assertEqual((await recv_json(ws))["ready"], "echo", "same-origin page refused")
        await ws.close()


# ---------------------------------------------------------------------------
# Servers with other settings


class G_Limits(ServerCase):
    server_args = ("--max-message", "1000", "--rate", "5", "--burst", "5", *FEW_THREADS)

    async def test_max_message(self):
        ws, _ = await session(self, self.url)
        text, body = sized_echo(1000)
        await ws.send(text)
        self.assertEqual(await recv_json(ws), {"echo": body})
        text, _ = sized_echo(1001)
        await ws.send(text)
        self.assertEqual(await closed(ws), (1009, "message too big", []))

    async def test_max_message_fragmented(self):
        ws, _ = await session(self, self.url)
        text, body = sized_echo(1000)
        await ws.send([text[i:i + 300] for i in range(0, 1000, 300)])
        self.assertEqual(await recv_json(ws), {"echo": body})
        text, _ = sized_echo(1200)
        await ws.send([text[i:i + 300] for i in range(0, 1200, 300)])
        self.assertEqual(await closed(ws), (1009, "message too big", []))

    async def test_max_message_binary(self):
        ws, _ = await session(self, self.url)
        text, _ = sized_echo(1001)
        await ws.send(text.encode())
        self.assertEqual(await closed(ws), (1009, "message too big", []))

    async def test_rate_limit(self):
        ws, _ = await session(self, self.url)  # the handshake takes one token of 5
        for i in range(4):
            await send_json(ws, {"action": "echo", "text": str(i)})
        for i in range(4):
            self.assertEqual(await recv_json(ws), {"echo": str(i)})
        for i in range(20):
            try:
                await send_json(ws, {"action": "echo", "text": "flood"})
            except ConnectionClosed:
                break
        code, reason, msgs = await closed(ws)
        self.assertEqual((code, reason), (1008, "rate limit exceeded"))
        self.assertLessEqual(len(msgs), 3, f"{len(msgs)} of the flood answered")

    async def test_rate_limit_one_over(self):
        ws, _ = await session(self, self.url)  # the handshake takes one token of 5
        for i in range(4):
            await send_json(ws, {"action": "echo", "text": str(i)})
        for i in range(4):
            self.assertEqual(await recv_json(ws), {"echo": str(i)})
        await send_json(ws, {"action": "echo", "text": "one too many"})
        self.assertEqual(await closed(ws), (1008, "rate limit exceeded", []))

    async def test_rate_refills(self):
        ws, _ = await session(self, self.url)
        for rnd in range(2):
            for i in range(4):
                await send_json(ws, {"action": "echo", "text": f"{rnd}.{i}"})
            for i in range(4):
                self.assertEqual(await recv_json(ws), {"echo": f"{rnd}.{i}"})
            await asyncio.sleep(1.1)  # 5/s: the bucket is full again
        await ws.close()


class H_HandshakeTimeout(ServerCase):
    server_args = ("--handshake-timeout", "500", *FEW_THREADS)

    async def test_silent_client(self):
        ws = await connect(self.url)
        t0 = time.monotonic()
        code, reason, msgs = await closed(ws, 5)
        elapsed = time.monotonic() - t0
        self.assertEqual((code, reason, msgs), (1008, "handshake timeout", []))
        self.assertTrue(0.3 <= elapsed <= 3.0, f"closed after {elapsed:.2f} s, expected ~0.5 s")

    async def test_session_outlives_the_handshake_timeout(self):
        ws, _ = await session(self, self.url)
        await asyncio.sleep(1.2)
        await echo_ok(self, ws)
        await ws.close()


class I_IdleTimeout(ServerCase):
    server_args = ("--idle-timeout", "500", *FEW_THREADS)

    async def test_idle_session_closed(self):
        ws, _ = await session(self, self.url)
        t0 = time.monotonic()
        code, reason, msgs = await closed(ws, 12)
        elapsed = time.monotonic() - t0
        self.assertEqual((code, reason, msgs), (1001, "idle timeout", []))
        self.assertTrue(0.3 <= elapsed <= 3.0,
                        f"closed after {elapsed:.2f} s of silence; --idle-timeout 500")

    async def test_activity_keeps_it_open(self):
        ws, _ = await session(self, self.url)
        for i in range(6):  # 1.5 s of traffic, never 500 ms quiet
            await asyncio.sleep(0.25)
            await echo_ok(self, ws, str(i))
        t0 = time.monotonic()
        code, reason, msgs = await closed(ws, 4)
        elapsed = time.monotonic() - t0
        self.assertEqual((code, reason, msgs), (1001, "idle timeout", []))
        self.assertTrue(0.3 <= elapsed <= 3.0,
                        f"closed after {elapsed:.2f} s of silence; --idle-timeout 500")


class J_MaxConnections(ServerCase):
    server_args = ("--max-connections", "3", *FEW_THREADS)

    async def test_fourth_refused(self):
        sessions = [(await session(self, self.url))[0] for _ in range(3)]
        self.assertIsNone(await refused(self.url), "a 4th connection was served")
        for i, ws in enumerate(sessions):
            await echo_ok(self, ws, f"conn {i}")
        # a slot freed is a slot again (allow the server a moment to notice)
        await sessions[0].close()
        deadline = time.monotonic() + 5
        while True:
            try:
                ws, _ = await session(self, self.url)
                break
            except (InvalidHandshake, OSError, EOFError, ConnectionClosed, AssertionError):
                if time.monotonic() > deadline:
                    self.fail("no connection accepted after one of 3 closed")
                await asyncio.sleep(0.1)
        await echo_ok(self, ws)
        for w in [ws] + sessions[1:]:
            await w.close()


class K_Origin(ServerCase):
    server_args = ("--origin", "http://a.example", *FEW_THREADS)

    async def test_origin_list(self):
        ws = await connect(self.url, origin="http://a.example")
        await send_json(ws, {"session_type": "echo"})
        self.assertEqual((await recv_json(ws))["ready"], "echo")
        await ws.close()
        for other in ["http://b.example", "https://a.example", "http://a.example:8080",
                      "http://a.example.evil"]:
            with self.subTest(other):
                self.assertIsNone(await refused(self.url, origin=other),
                                  f"origin {other} must be refused")
        ws, _ = await session(self, self.url)  # no Origin header: not a browser
        await ws.close()


class L_Shutdown(unittest.IsolatedAsyncioTestCase):

    async def test_sigterm_with_open_sessions(self):
        server = Server()
        try:
            idle, _ = await session(self, server.url)
            asking, _ = await session(self, server.url)
            await send_json(asking, {"action": "ask", "schema": "int"})
            self.assertEqual((await recv_json(asking))["action"], "SocketQuery")
            conversing, _ = await session(self, server.url)
            await send_json(conversing, {"action": "converse"})
            self.assertEqual((await recv_json(conversing))["action"], "SocketQuery")
            no_handshake = await connect(server.url)
            await asyncio.sleep(0.1)
            t0 = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            results = await asyncio.gather(*(closed(w, STOP_WAIT)
                                             for w in (idle, asking, conversing, no_handshake)))
            for name, (code, reason, msgs) in zip(["idle", "asking", "conversing",
                                                   "no handshake"], results):
                with self.subTest(name):
                    self.assertEqual((code, reason), (1001, "server shutting down"), msgs)
            self.assertEqual(results[0][2], [])
            self.assertEqual(results[3][2], [])
            rc = await asyncio.get_running_loop().run_in_executor(None, server.wait_exit,
                                                                  STOP_WAIT)
            self.assertEqual(rc, 0, "exit status after SIGTERM\n" + server.log_tail())
            self.assertLess(time.monotonic() - t0, 5.0, "slow shutdown")
            self.assertEqual(server.sanitizer_lines(), [], server.log_tail(60))
        finally:
            server.cleanup()


# ---------------------------------------------------------------------------
# TLS


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


class M_TLS(unittest.IsolatedAsyncioTestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="skick-ws-tls-")
        d = cls.dir
        subj = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", f"{d}/plain.key", "-out", f"{d}/plain.crt", *subj)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-days", "2", "-passout", "pass:secret",
                 "-keyout", f"{d}/enc.key", "-out", f"{d}/enc.crt", *subj)
        for name in ("plain", "enc"):
            with open(f"{d}/{name}.pem", "w") as out:
                for part in ("key", "crt"):
                    with open(f"{d}/{name}.{part}") as f:
                        out.write(f.read())

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def context(self, name):
        ctx = ssl.create_default_context(cafile=f"{self.dir}/{name}.crt")
        return ctx

    async def run_session(self, server, name):
        ws = await connect(server.url, ssl=self.context(name))
        await send_json(ws, {"session_type": "echo"})
        self.assertEqual((await recv_json(ws))["ready"], "echo")
        await echo_ok(self, ws, "secure")
        await ws.close()

    async def stop_clean(self, server):
        rc = await asyncio.get_running_loop().run_in_executor(None, server.stop)
        self.assertEqual(rc, 0, "exit status after SIGTERM\n" + server.log_tail())
        self.assertEqual(server.sanitizer_lines(), [], server.log_tail(60))

    async def test_wss(self):
        server = Server("--cert", f"{self.dir}/plain.pem", *FEW_THREADS, scheme="wss")
        try:
            await self.run_session(server, "plain")
            # a second client, and one that does not trust the certificate
            await self.run_session(server, "plain")
            with self.assertRaises((ssl.SSLError, OSError, InvalidHandshake)):
                await connect(server.url, ssl=ssl.create_default_context())
            self.assertTrue(server.alive())
            await self.stop_clean(server)
        finally:
            server.cleanup()

    async def test_encrypted_key(self):
        server = Server("--cert", f"{self.dir}/enc.pem", "--key-password", "secret",
                        *FEW_THREADS, scheme="wss")
        try:
            await self.run_session(server, "enc")
            await self.stop_clean(server)
        finally:
            server.cleanup()

    async def test_wrong_key_password(self):
        server = Server("--cert", f"{self.dir}/enc.pem", "--key-password", "wrong",
                        *FEW_THREADS, scheme="wss", wait=False)
        try:
            rc = await asyncio.get_running_loop().run_in_executor(None, server.wait_exit,
                                                                  START_WAIT)
            self.assertIsNotNone(rc, "the server kept running with a wrong key password")
            self.assertNotEqual(rc, 0)
            self.assertLess(rc, 128, f"killed by a signal? status {rc}\n" + server.log_tail())
            self.assertRegex(server.log().lower(), r"password",
                             "no message about the password:\n" + server.log_tail())
            self.assertEqual(server.sanitizer_lines(), [], server.log_tail(60))
        finally:
            server.cleanup()


# ---------------------------------------------------------------------------


def load_tests(loader, standard_tests, pattern):
    """Every TestCase class of the module except the ServerCase base."""
    suite = unittest.TestSuite()
    for name in sorted(globals()):
        obj = globals()[name]
        if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                and obj is not ServerCase):
            suite.addTests(loader.loadTestsFromTestCase(obj))
    return suite


def main():
    global BUILD
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} BUILD_DIR [unittest args]", file=sys.stderr)
        return 2
    BUILD = os.path.abspath(sys.argv[1])
    for f in ("node/skick-node", "tests/integration/ws_test_app.so"):
        if not os.path.exists(os.path.join(BUILD, f)):
            print(f"{BUILD}/{f} is missing: build first", file=sys.stderr)
            return 2
    faulthandler.dump_traceback_later(280, exit=True)  # under ctest's 300 s
    argv = [sys.argv[0]] + sys.argv[2:]
    prog = unittest.main(module=__name__, argv=argv, exit=False, verbosity=2)
    r = prog.result
    # a failed subtest fails its test; setUpClass errors are not counted by testsRun
    failed_names = sorted({getattr(t, "test_case", t).id() for t, _ in r.failures + r.errors})
    real = [n for n in failed_names if not n.startswith(("setUpClass", "tearDownClass"))]
    nfailed = len(failed_names) + len(r.unexpectedSuccesses)
    npassed = max(0, r.testsRun - len(real) - len(r.skipped))
    for name in failed_names:
        print(f"FAILED: {name}")
    print(f"{npassed} passed, {nfailed} failed")
    return 0 if nfailed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        _kill_all()
