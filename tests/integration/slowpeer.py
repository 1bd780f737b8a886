"""slowpeer.py - websocket clients that misbehave on purpose

A raw websocket client over a plain socket (no library), so that a test can
make it stop reading with a tiny receive buffer, stop it altogether, or send
frames and never look at the answers: the peers a front shard must survive.
Used by test_slow.py, test_chaos.py and bench/slow_clients.py.
"""
import base64
import json
import os
import socket
import ssl
import struct
import time


class RawClient:
    """One websocket connection on a blocking socket we control."""

    def __init__(self, port, host="127.0.0.1", rcvbuf=None, timeout=10.0, tls=None):
        """tls: an ssl.SSLContext for wss:// (None: ws://)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # before connect: the window the client advertises follows it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        if tls:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError("upgrade refused: " + head.split(b"\r\n", 1)[0].decode())
        self.buf = b""

    def send_frame(self, payload, opcode=1):
        """One masked, final frame (a client must mask)."""
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send_json(self, value):
        self.send_frame(json.dumps(value))

    def recv_frame(self, timeout=10.0):
        """(opcode, payload) of the next frame, or None at the end of the stream."""
        self.sock.settimeout(timeout)
        while True:
            frame = self._parse()
            if frame:
                return frame
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def _parse(self):
        b = self.buf
        if len(b) < 2:
            return None
        op, n = b[0] & 0x0F, b[1] & 0x7F
        off = 2
        if n == 126:
            if len(b) < 4:
                return None
            n, off = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, off = struct.unpack("!Q", b[2:10])[0], 10
        if len(b) < off + n:
            return None
        self.buf = b[off + n:]
        return op, b[off:off + n]

    def read_until_close(self, timeout=10.0):
        """Read frames until the server's close frame: (code, reason, texts)."""
        deadline = time.monotonic() + timeout
        texts = []
        while time.monotonic() < deadline:
            f = self.recv_frame(max(0.05, deadline - time.monotonic()))
            if f is None:
                return None, None, texts
            op, payload = f
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, payload[2:].decode(errors="replace"), texts
            if op == 1:
                texts.append(payload.decode())
        return "timeout", None, texts

    def stream_ended(self, timeout=10.0):
        """Whether the server ended the TCP stream within timeout (reading and
        dropping whatever comes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return True
            if not chunk:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
