#!/usr/bin/python3
"""soak.py - minutes of mixed traffic with churn: is the cluster's memory flat?

Usage: bench/soak.py BUILD_DIR [--minutes M] [--sample S] [--clients N]

Starts skick-broker, a front shard and a back shard (examples/hello.so and
bench/slow_bench_app.so) on loopback and, for M minutes (default 10), keeps
them busy the way a site would:

  * N clients (default 40) that connect, hold a session for a random 1-10 s
    and leave (half close cleanly, half just drop the TCP connection): hello
    sessions that greet every 50 ms, chat sessions that talk, curious
    sessions that answer the session's SocketQuery;
  * a few clients on "stream" sessions that stop reading (they are closed
    for a full send queue and come back);
  * clients that never finish their handshake (closed by the handshake
    timeout) and ones that send garbage.

Every S seconds (default 10) it samples each process's resident memory and
open descriptors. Printed: the samples, then each process's figures after
the warm-up (the first 20 % of the run) and at the end, and the drift. The
goal is flat after warm-up. Figures only: nothing is asserted. Not run by
CI; `make soak` runs it.
"""
import argparse
import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from slowpeer import RawClient  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(pid):
    """(RSS KiB, open descriptors) of pid."""
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Counts:
    def __init__(self):
        self.c = {}

    def add(self, k, n=1):
        self.c[k] = self.c.get(k, 0) + n


async def visitor(url, end, counts):
    """Connect, hold one random session for a while, leave; again until end."""
    while time.monotonic() < end:
        kind = random.choice(["hello", "chat", "curious"])
        try:
            ws = await asyncio.wait_for(websockets.connect(url, ping_interval=None), 5)
            hs = {"session_type": kind}
            if kind == "chat":
                hs["name"] = "v%d" % random.randrange(1000)
            await ws.send(json.dumps(hs))
            stay = time.monotonic() + random.uniform(1, 10)
            while time.monotonic() < stay:
                if kind == "hello":
                    await ws.send('{"action": "greet"}')
                elif kind == "chat":
                    await ws.send(json.dumps({"action": "say", "text": "x" * 200}))
                else:
                    await ws.send('{"action": "get_information"}')
                deadline = time.monotonic() + 0.05
                while time.monotonic() < deadline:
                    try:
                        m = await asyncio.wait_for(ws.recv(), 0.05)
                    except asyncio.TimeoutError:
                        break
                    counts.add("frames")
                    if '"SocketQuery"' in m:
                        q = json.loads(m)
                        await ws.send(json.dumps({"action": "query_reply",
                                                  "query_id": q["query_id"], "message": True}))
            if random.random() < 0.5:
                await ws.close()
            else:
                ws.transport.abort()  # vanish
            counts.add("sessions")
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
            counts.add("failed")
            await asyncio.sleep(0.2)


def stallers(port, end, counts):
    """Clients that stop reading on stream sessions, replaced when closed;
    and ones that never say hello, or send garbage."""
    clients = []
    while time.monotonic() < end:
        for c in [c for c in clients if ended(c)]:
            c.close()
            clients.remove(c)
        while len(clients) < 4:
            c = RawClient(port, rcvbuf=4096)
            c.send_json({"session_type": "stream", "every": 20, "size": 8192})
            clients.append(c)
            counts.add("stalled")
        mute = RawClient(port)  # never finishes its handshake
        junk = RawClient(port)
        junk.send_frame(b"\xff\xfe not json")
        junk.close()
        counts.add("junk")
        time.sleep(1.0)
        mute.close()
    for c in clients:
        c.close()


def ended(c):
    state = c.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    return state in (7, 8)  # TCP_CLOSE, TCP_CLOSE_WAIT


def start(build, tmp):
    bport, wport = free_port(), free_port()
    endpoint = f"tcp://127.0.0.1:{bport}"
    logs = []

    def proc(name, argv):
        log = open(os.path.join(tmp, name + ".log"), "w")
        logs.append(log)
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    procs = {"broker": proc("broker", [f"{build}/broker/skick-broker", "--bind", endpoint,
                                       "--control", f"ipc://{tmp}/control"])}
    time.sleep(0.5)
    procs["front"] = proc("front", [f"{build}/node/skick-node", "--broker", endpoint,
                                    "--front", "--port", str(wport), "--rate", "0",
                                    "--handshake-timeout", "2000", "--log-level", "warning"])
    procs["back"] = proc("back", [f"{build}/node/skick-node", "--broker", endpoint, "--back",
                                  "--app", f"{build}/examples/hello.so",
                                  "--app", f"{build}/bench/slow_bench_app.so",
                                  "--log-level", "warning"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", wport), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(2.0)  # the back shard's session types reach the front
    return procs, wport


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--sample", type=float, default=10)
    ap.add_argument("--clients", type=int, default=40)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="skick-soak-")
    procs, port = start(a.build, tmp)
    counts = Counts()
    end = time.monotonic() + a.minutes * 60
    url = f"ws://127.0.0.1:{port}/"
    samples = []  # (seconds, {name: (rss, fds)})
    t0 = time.monotonic()

    async def drive():
        loop = asyncio.get_running_loop()
        stall = loop.run_in_executor(None, stallers, port, end, counts)

        async def sampler():
            while time.monotonic() < end:
                samples.append((time.monotonic() - t0,
                                {n: sample(p.pid) for n, p in procs.items()}))
                s = samples[-1]
                print("%6.0f s  " % s[0] + "  ".join(
                    "%s %6d KiB %4d fds" % (n, v[0], v[1]) for n, v in s[1].items()),
                    flush=True)
                await asyncio.sleep(a.sample)
        await asyncio.gather(sampler(), stall,
                             *(visitor(url, end, counts) for _ in range(a.clients)))

    print(f"# soak: {a.minutes:g} min, {a.clients} visitors with churn, 4 stalled readers, "
          f"handshake-less and junk clients; samples every {a.sample:g} s")
    try:
        asyncio.run(drive())
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    warm = [s for s in samples if s[0] >= 0.2 * a.minutes * 60]
    print(f"# traffic: {counts.c}")
    if len(warm) >= 2:
        first, last = warm[0], warm[-1]
        print("# after warm-up (%.0f s) -> end (%.0f s)" % (first[0], last[0]))
        for n in procs:
            r0, f0 = first[1][n]
            r1, f1 = last[1][n]
            print(f"{n:>7}: RSS {r0} -> {r1} KiB ({r1 - r0:+d}), "
                  f"descriptors {f0} -> {f1} ({f1 - f0:+d})")


if __name__ == "__main__":
    main()
