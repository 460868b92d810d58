#!/usr/bin/env python3
"""TCP transfer through a tunnel, checked with SHA-256 (used by ../gateway-netns.sh).

  tcp.py serve BIND_ADDR PORT [--timeout S]
      accepts one connection, reads to EOF, answers with the SHA-256 (hex) and the
      byte count of what it received, prints them as JSON and exits.
  tcp.py send ADDR PORT FILE [--src ADDR] [--rate MBPS] [--timeout S]
      connects (retrying while the port is not open yet), sends FILE (at most MBPS
      megabytes per second if given), half-closes, reads the server's answer, and
      prints JSON: bytes, seconds (connect to answer), MB/s, both hashes, ok.
      Exits 1 if the hashes or lengths differ.
"""
import argparse
import hashlib
import json
import socket
import sys
import time

CHUNK = 64 * 1024


def serve(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.addr, a.port))
    ls.listen(1)
    ls.settimeout(a.timeout)
    print(json.dumps({"listening": f"{a.addr}:{a.port}"}), flush=True)
    conn, peer = ls.accept()
    conn.settimeout(a.timeout)
    h = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    while True:
        b = conn.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    secs = time.monotonic() - t0
    conn.sendall(f"{h.hexdigest()} {n}\n".encode())
    conn.close()
    print(json.dumps({"peer": peer[0], "bytes": n, "sha256": h.hexdigest(),
                      "seconds": round(secs, 3)}), flush=True)


def send(a):
    with open(a.file, "rb") as f:
        data = f.read()
    want = hashlib.sha256(data).hexdigest()
    deadline = time.monotonic() + a.timeout
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if a.src:
            s.bind((a.src, 0))
        s.settimeout(5)
        try:
            s.connect((a.addr, a.port))
            break
        except OSError as e:
            s.close()
            if time.monotonic() > deadline:
                raise SystemExit(f"tcp.py: connect {a.addr}:{a.port}: {e}")
            time.sleep(0.2)
    s.settimeout(max(1.0, deadline - time.monotonic()))
    t0 = time.monotonic()
    sent = 0
    view = memoryview(data)
    while sent < len(data):
        end = min(len(data), sent + CHUNK)
        s.sendall(view[sent:end])
        sent = end
        if a.rate:
            # pace: sent bytes must not run ahead of rate * elapsed
            ahead = sent / (a.rate * 1e6) - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        if time.monotonic() > deadline:
            raise SystemExit(f"tcp.py: timeout after {sent} bytes")
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while not answer.endswith(b"\n"):
        b = s.recv(256)
        if not b:
            break
        answer += b
    secs = time.monotonic() - t0
    s.close()
    got, _, n = answer.decode().strip().partition(" ")
    ok = got == want and n == str(len(data))
    print(json.dumps({"bytes": len(data), "received": int(n or 0), "seconds": round(secs, 3),
                      "mb_per_s": round(len(data) / 1e6 / secs, 2), "sha256_sent": want,
                      "sha256_received": got, "ok": ok}), flush=True)
    sys.exit(0 if ok else 1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("addr")
    s.add_argument("port", type=int)
    s.add_argument("--timeout", type=float, default=60)
    c = sub.add_parser("send")
    c.add_argument("addr")
    c.add_argument("port", type=int)
    c.add_argument("file")
    c.add_argument("--src")
    c.add_argument("--rate", type=float, help="MB/s")
    c.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    serve(a) if a.cmd == "serve" else send(a)


if __name__ == "__main__":
    main()
