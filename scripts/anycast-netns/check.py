#!/usr/bin/env python3
"""Checks for ../anycast-netns.sh.

  check.py unique DECODE.jsonl --src ADDR --min N
      reads `ipsec decode --json --brief --no-replay-check` output: every ESP frame
      must decrypt with the exported keys; over those from ADDR, no (SPI, sequence
      number) and no (SPI, IV) may repeat, and each IV must be its sequence number.
      Prints a JSON summary; exits 1 if not.
  check.py pcap FILE [--after T] [--before T]
      ESP-in-UDP (port 4500, non-IKE) packets of a classic pcap: count, first and last
      timestamp and the longest gap between two (in the window, if given), as JSON.
"""
import argparse
import json
import struct
import sys
from collections import Counter


def unique(a):
    """Every ESP frame must decrypt; among those from a.src, no (SPI, sequence number)
    and no (SPI, IV) twice (the IV is the AES-GCM nonce's explicit part), and the IV
    must be the sequence number (so the two checks are one nonce check)."""
    by_seq = {}
    by_iv = {}
    dup_seq = []
    dup_iv = []
    statuses = Counter()
    bad = Counter()
    spis = Counter()
    iv_is_seq = 0
    n = 0
    total = 0
    with open(a.decode) as f:
        for line in f:
            v = json.loads(line)
            if v.get("proto") not in ("esp", "ah"):
                if v.get("proto") == "other" and v.get("status") != "ok":
                    bad[("other", v.get("status"))] += 1
                continue
            total += 1
            if v.get("status") != "ok":
                bad[(v.get("src"), v.get("status"))] += 1
            if v.get("src") != a.src:
                continue
            n += 1
            statuses[v.get("status")] += 1
            spis[v["spi"]] += 1
            # `seq` is the full sequence number once decrypted (with ESN, 64 bits)
            ks = (v["spi"], v["seq"])
            ki = (v["spi"], v.get("iv"))
            if ks in by_seq:
                dup_seq.append((ks, by_seq[ks], v["frame"]))
            else:
                by_seq[ks] = v["frame"]
            if ki in by_iv:
                dup_iv.append((ki, by_iv[ki], v["frame"]))
            else:
                by_iv[ki] = v["frame"]
            iv = v.get("iv", "")
            if len(iv) == 16 and int(iv, 16) == v["seq"]:
                iv_is_seq += 1
    out = {
        "esp_frames": total,
        "from_src": n,
        "decrypted": statuses.get("ok", 0),
        "not_decrypted": {f"{k[0]} {k[1]}": c for k, c in bad.items()},
        "spis": dict(spis),
        "duplicate_spi_seq": len(dup_seq),
        "duplicate_spi_iv": len(dup_iv),
        "iv_equals_seq": iv_is_seq,
    }
    print(json.dumps(out))
    fail = False
    if dup_seq or dup_iv:
        print(f"DUPLICATES: (SPI, seq) {dup_seq[:5]} (SPI, IV) {dup_iv[:5]}", file=sys.stderr)
        fail = True
    if bad:
        print(f"frames that did not decrypt or parse: {dict(bad)}", file=sys.stderr)
        fail = True
    if iv_is_seq != n:
        print(f"{n - iv_is_seq} frames whose IV is not their sequence number", file=sys.stderr)
        fail = True
    if n < a.min:
        print(f"only {n} ESP frames from {a.src}, wanted at least {a.min}", file=sys.stderr)
        fail = True
    return 1 if fail else 0


def pcap_packets(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            return
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        else:
            endian = ">"
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        linktype = struct.unpack(endian + "I", hdr[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            ts = sec + frac / (1e9 if nano else 1e6)
            yield ts, linktype, data


def is_esp_in_udp(linktype, data):
    if linktype == 1:  # Ethernet
        if len(data) < 14 or data[12:14] != b"\x08\x00":
            return False
        ip = data[14:]
    elif linktype == 113:  # Linux cooked
        ip = data[16:]
    elif linktype == 276:  # Linux cooked v2
        ip = data[20:]
    else:
        ip = data
    if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
        return False
    ihl = (ip[0] & 15) * 4
    udp = ip[ihl:]
    if len(udp) < 12:
        return False
    dport = struct.unpack(">H", udp[2:4])[0]
    sport = struct.unpack(">H", udp[0:2])[0]
    if 4500 not in (sport, dport):
        return False
    return udp[8:12] != b"\x00\x00\x00\x00"  # not IKE (Non-ESP Marker)


def pcap(a):
    n = 0
    first = last = None
    gap = 0.0
    for ts, lt, data in pcap_packets(a.file):
        if a.after is not None and ts < a.after:
            continue
        if a.before is not None and ts > a.before:
            continue
        if not is_esp_in_udp(lt, data):
            continue
        n += 1
        if last is not None:
            gap = max(gap, ts - last)
        first = ts if first is None else first
        last = ts
    print(json.dumps({"esp": n, "first": first, "last": last, "max_gap": gap}))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("unique")
    u.add_argument("decode")
    u.add_argument("--src", required=True)
    u.add_argument("--min", type=int, default=0)
    c = sub.add_parser("pcap")
    c.add_argument("file")
    c.add_argument("--after", type=float)
    c.add_argument("--before", type=float)
    a = p.parse_args()
    return unique(a) if a.cmd == "unique" else pcap(a)


if __name__ == "__main__":
    sys.exit(main())
