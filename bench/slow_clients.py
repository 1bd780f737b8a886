#!/usr/bin/python3
"""slow_clients.py - what non-reading clients cost a front shard

Usage: bench/slow_clients.py BUILD_DIR [--seconds S] [--counts 1,10,100]
           [--every MS] [--size BYTES] [--send-queue BYTES] [--socket-buffer BYTES]
           [--holders N]

One skick-node (standalone, bench/slow_bench_app.so). A bystander on an
"echo" session makes round trips back to back for S seconds, first alone
(the reference), then next to N clients on "stream" sessions, which send
each of them a frame of SIZE bytes every EVERY ms: once with N clients that
read (and drop) everything, once with N clients that never read (4 KiB
receive buffer). A stalled client fills its send queue and is closed (1008
"send queue full"); it is replaced at once, so N stalled clients are always
there and the shard does the closing too. Printed per row: the bystander's
round trips (p50, p99, max), p99 over the reference's (the goal: the same
within noise for the stalled rows next to the reading rows), and how many
stalled clients the shard closed.

Then the memory a stalled client costs: H "hold" sessions whose send queue
is filled to its bound and stays full (SKICK_SEND_REFUSE); printed is the
shard's resident memory and the kernel's TCP buffer memory
(/proc/net/sockstat) per held client.

Figures only: nothing is asserted. Needs /usr/bin/python3 with
python3-websockets.
"""
import argparse
import asyncio
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from slowpeer import RawClient  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def tcp_mem_kib():
    """Kernel memory in TCP socket buffers, all sockets (pages -> KiB)."""
    with open("/proc/net/sockstat") as f:
        m = re.search(r"TCP:.* mem (\d+)", f.read())
    return int(m.group(1)) * os.sysconf("SC_PAGE_SIZE") // 1024


class Crowd(threading.Thread):
    """n clients on "stream" sessions. Readers read and drop everything;
    the others never read, and each one the shard closes is replaced."""

    def __init__(self, port, n, reading, handshake):
        super().__init__(daemon=True)
        self.port, self.n, self.reading, self.hs = port, n, reading, handshake
        self.closed = 0
        self.stop = threading.Event()

    def open_one(self):
        c = RawClient(self.port, rcvbuf=None if self.reading else 4096)
        c.send_json(self.hs)
        c.sock.setblocking(False)
        return c

    def run(self):
        clients = [self.open_one() for _ in range(self.n)]
        while not self.stop.is_set():
            if self.reading:
                socks = {c.sock: c for c in clients}
                ready, _, _ = select.select(list(socks), [], [], 0.05)
                for sk in ready:
                    try:
                        sk.recv(1 << 20)
                    except (BlockingIOError, OSError):
                        pass
                continue
            for i, c in enumerate(clients):
                if self.ended(c):
                    c.close()
                    self.closed += 1
                    clients[i] = self.open_one()
            time.sleep(0.05)
        for c in clients:
            c.close()

    @staticmethod
    def ended(c):
        """The server ended the connection: its reset or FIN arrived (the
        kernel's TCP state; the unread data before it stays readable)."""
        state = c.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        return state in (7, 8)  # TCP_CLOSE, TCP_CLOSE_WAIT


async def bystander(url, seconds):
    lat = []
    async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"session_type": "echo"}))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            await ws.send('{"action":"echo","t":1}')
            await asyncio.wait_for(ws.recv(), 30)
            lat.append(time.perf_counter() - t0)
    lat.sort()
    return lat


def pct(lat, p):
    return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] * 1e6


async def hold(port, n):
    """n clients whose send queues are full; returns (rss KiB, tcp KiB) deltas."""
    clients = []
    for _ in range(n):
        c = RawClient(port, rcvbuf=4096)
        c.send_json({"session_type": "hold"})
        clients.append(c)
    await asyncio.sleep(0.5)
    return clients


def row(name, n, lat, ref, closed):
    p99 = pct(lat, 99)
    print(f"{name:>8} {n:>5} {len(lat):>9} {pct(lat, 50):>8.0f} {p99:>8.0f} "
          f"{lat[-1] * 1e6:>8.0f} {p99 / ref:>8.2f} {closed:>7}", flush=True)


def start_node(a, port, log):
    cmd = [os.path.join(a.build, "node", "skick-node"),
           "--app", os.path.join(a.build, "bench", "slow_bench_app.so"),
           "--port", str(port), "--rate", "0", "--ws-threads", "600",
           "--send-queue", str(a.send_queue), "--log-level", "warning"]
    if a.socket_buffer:
        cmd += ["--socket-buffer", str(a.socket_buffer)]
    node = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            time.sleep(0.3)
            return node
        except OSError:
            if time.monotonic() > deadline or node.poll() is not None:
                raise SystemExit("skick-node did not start; log: " + log.name)
            time.sleep(0.05)


def memory(a, node, port):
    time.sleep(1.0)
    rss0, tcp0 = rss_kib(node.pid), tcp_mem_kib()
    holders = asyncio.run(hold(port, a.holders))
    for c in holders:
        c.send_json({"action": "fill"})
    time.sleep(2.0)
    rss1, tcp1 = rss_kib(node.pid), tcp_mem_kib()
    n = a.holders
    print(f"# memory per stalled client ({n} clients whose send queue of {a.send_queue} "
          f"bytes is full)")
    print(f"shard RSS per client: {(rss1 - rss0) / n:.0f} KiB; kernel TCP buffers per "
          f"client: {(tcp1 - tcp0) / n:.0f} KiB")
    for c in holders:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--counts", default="1,10,100")
    ap.add_argument("--every", type=int, default=50, help="ms between frames per client")
    ap.add_argument("--size", type=int, default=8192, help="bytes per frame")
    ap.add_argument("--send-queue", type=int, default=262144, help="the shard's --send-queue")
    ap.add_argument("--socket-buffer", type=int, default=65536,
                    help="the shard's --socket-buffer (0: kernel autotuning)")
    ap.add_argument("--holders", type=int, default=100)
    a = ap.parse_args()
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="skick-slow-bench-", suffix=".log", delete=False)
    node = start_node(a, port, log)
    try:
        url = f"ws://127.0.0.1:{port}/"
        hs = {"session_type": "stream", "every": a.every, "size": a.size}
        print(f"# slow_clients: bystander echo round trips, {a.seconds:g} s per row, next to "
              f"N stream clients ({a.size} bytes every {a.every} ms each); --send-queue "
              f"{a.send_queue}, --socket-buffer {a.socket_buffer or 'kernel'}; "
              f"{os.cpu_count()} cores")
        print(f"{'clients':>8} {'N':>5} {'trips':>9} {'p50 us':>8} {'p99 us':>8} "
              f"{'max us':>8} {'p99/ref':>8} {'closed':>7}")
        ref_lat = asyncio.run(bystander(url, a.seconds))
        ref = pct(ref_lat, 99)
        row("none", 0, ref_lat, ref, 0)
        for n in [int(x) for x in a.counts.split(",")]:
            for reading in (True, False):
                crowd = Crowd(port, n, reading, hs)
                crowd.start()
                time.sleep(1.0)
                lat = asyncio.run(bystander(url, a.seconds))
                crowd.stop.set()
                crowd.join()
                row("reading" if reading else "stalled", n, lat, ref, crowd.closed)
                time.sleep(1.0)
        memory(a, node, port)
    finally:
        node.terminate()
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
        os.unlink(log.name)


if __name__ == "__main__":
    main()
