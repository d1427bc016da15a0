#!/usr/bin/env python3
"""Figures for slow readers and refused uploads against a storefirst-local binary.

    python3 crates/local/tests/slow_and_refused.py target/debug/storefirst-local

Prints, with the server's default limits (1024 connections, 10 s timeouts):
- how many of 5 slow readers (pipelined GETs, answers never read) are still connected
  after 30 s;
- whether a normal client is answered within 30 s while 1024 slow readers are connected;
- the server's RSS before, during and after 50 stalled uploads without a key (1 MiB
  declared, ~1,000,000 bytes sent, then nothing), and whether `Expect: 100-continue`
  without a key is invited to upload;
- how many of 200 small refused bodies (sent just after the headers) get their 403.
Needs only the standard library; Linux (reads /proc and TCP_INFO).
"""

import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

ESTABLISHED = 1
PIPELINED_GET = b"GET /requests/x HTTP/1.1\r\nHost: x\r\n\r\n" * 1000


def start(binary, db):
    server = subprocess.Popen(
        [binary, "--port", "0", "--api-key", "k", "--log", "warn", "--db", db],
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in server.stdout:
        found = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if found:
            return server, (found.group(1), int(found.group(2)))
    raise SystemExit("the server printed no listening line")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def connected(sock):
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == ESTABLISHED


def slow_reader(addr):
    """Connects and pipelines requests until the server stops taking them; never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(addr)
    sock.setblocking(False)
    stuck_since = time.monotonic()
    while time.monotonic() - stuck_since < 0.5:
        try:
            sock.send(PIPELINED_GET)
            stuck_since = time.monotonic()
        except BlockingIOError:
            time.sleep(0.05)
        except OSError:
            break
    return sock


def still_connected(socks):
    return sum(1 for sock in socks if connected(sock))


def normal_request(addr, timeout):
    started = time.monotonic()
    try:
        with socket.create_connection(addr, timeout=timeout) as sock:
            sock.sendall(b"GET /requests/x HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nConnection: close\r\n\r\n")
            answer = sock.recv(100)
            return answer.split(b"\r\n")[0].decode(), time.monotonic() - started
    except OSError as error:
        return f"no answer ({error})", time.monotonic() - started


def slow_readers(addr):
    socks = [slow_reader(addr) for _ in range(5)]
    time.sleep(30)
    print(f"slow readers still connected after 30 s: {still_connected(socks)} of 5")
    for sock in socks:
        sock.close()


def full_of_slow_readers(addr):
    socks = []
    for _ in range(1024):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(addr)
        sock.setblocking(False)
        socks.append(sock)
    # Every connection pipelines until the server stops taking requests.
    for _ in range(20):
        for sock in socks:
            try:
                sock.send(PIPELINED_GET)
            except OSError:
                pass
        time.sleep(0.05)
    filled = time.monotonic()
    status, took = normal_request(addr, 30)
    print(f"normal client while 1024 slow readers are connected: {status!r} after {took:.1f} s")
    time.sleep(max(0.0, 30 - (time.monotonic() - filled)))
    print(f"slow readers still connected 30 s after filling the limit: {still_connected(socks)} of 1024")
    for sock in socks:
        sock.close()


def refused_uploads(addr, pid):
    time.sleep(2)
    before = rss_kib(pid)
    head = (
        b"PUT /requests/upload HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 1048576\r\n\r\n"
    )
    socks = []
    for _ in range(50):
        sock = socket.create_connection(addr)
        sock.sendall(head)
        sock.setblocking(False)
        sent = 0
        chunk = b" " * 65536
        deadline = time.monotonic() + 2
        while sent < 1_000_000 and time.monotonic() < deadline:
            try:
                sent += sock.send(chunk[: 1_000_000 - sent])
            except BlockingIOError:
                select.select([], [sock], [], 0.05)
            except OSError:
                break
        socks.append(sock)
    time.sleep(2)
    during = rss_kib(pid)
    for sock in socks:
        sock.close()
    time.sleep(12)
    after = rss_kib(pid)
    print(
        f"server RSS, 50 stalled uploads without a key: before {before // 1024} MiB,"
        f" during {during // 1024} MiB, after {after // 1024} MiB"
    )
    with socket.create_connection(addr, timeout=5) as sock:
        sock.sendall(
            b"PUT /requests/x HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 10\r\nexpect: 100-continue\r\n\r\n"
        )
        first = sock.recv(100).split(b"\r\n")[0].decode()
        print(f"Expect: 100-continue without a key: {first!r}")


def small_refused_bodies(addr):
    answered = 0
    for _ in range(200):
        answer = b""
        with socket.create_connection(addr, timeout=5) as sock:
            sock.sendall(
                b"PUT /requests/x HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                b"content-length: 4000\r\n\r\n"
            )
            time.sleep(0.002)
            try:
                sock.sendall(b" " * 4000)
                while not answer.endswith(b"}"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            except OSError:
                pass
            if answer.startswith(b"HTTP/1.1 403") and answer.endswith(b"}"):
                answered += 1
    print(f"small refused bodies answered with a complete 403: {answered} of 200")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as dir:
        server, addr = start(binary, os.path.join(dir, "measure.db"))
        try:
            refused_uploads(addr, server.pid)
            small_refused_bodies(addr)
            slow_readers(addr)
            full_of_slow_readers(addr)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
