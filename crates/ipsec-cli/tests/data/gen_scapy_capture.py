#!/usr/bin/env python3
"""Makes a capture that our code did not write, for `ipsec decode` to read.

Scapy (PyPI package `scapy`, tested with 2.6/2.8) encrypts each packet with its own
ESP implementation (scapy.layers.ipsec.SecurityAssociation). This script writes:
  scapy_esp.pcap      the frames (link type RAW)
  scapy_esp_sa        the SAs in Wireshark's esp_sa format
  scapy_expected.json per frame: the status `ipsec decode --json` must report and,
                      for good frames, the inner packet as Scapy itself decrypts it
Run: python3 gen_scapy_capture.py   (deterministic: fixed keys; Scapy picks IVs at
random, so the ciphertext differs per run but the expectations always match it)
"""
import json
import os

from scapy.all import IP, IPv6, UDP, ICMP, TCP, Raw
from scapy.utils import RawPcapWriter
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.inet6 import ICMPv6EchoRequest

HERE = os.path.dirname(os.path.abspath(__file__))

WS_ENC = {"AES-GCM": "AES-GCM with 16 octet ICV [RFC4106]", "AES-CBC": "AES-CBC [RFC3602]", "NULL": "NULL"}
WS_AUTH = {None: "NULL", "HMAC-SHA1-96": "HMAC-SHA-1-96 [RFC2404]", "SHA2-256-128": "HMAC-SHA-256-128 [RFC4868]",
           "SHA2-384-192": "HMAC-SHA-384-192 [RFC4868]", "SHA2-512-256": "HMAC-SHA-512-256 [RFC4868]"}


def key(n, seed):
    return bytes((seed * 31 + i * 7) & 0xFF for i in range(n))


cases = [
    # name, spi, crypt, crypt_key, auth, auth_key, tunnel header, nat-t, plain packets
    ("tunnel v4 AES-GCM-128", 0x1001, "AES-GCM", key(20, 1), None, None,
     IP(src="192.0.2.1", dst="192.0.2.2"), None,
     [IP(src="10.0.1.1", dst="10.0.2.1") / ICMP(id=7, seq=s) / Raw(b"scapy-%d" % s * 9) for s in range(3)]),
    ("transport v4 AES-CBC-128 HMAC-SHA2-256-128", 0x1002, "AES-CBC", key(16, 2), "SHA2-256-128", key(32, 3),
     None, None,
     [IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=5000 + s, dport=53) / Raw(b"q" * (10 + 40 * s)) for s in range(3)]),
    ("tunnel v6-in-v4 AES-CBC-256 HMAC-SHA1-96", 0x1003, "AES-CBC", key(32, 4), "HMAC-SHA1-96", key(20, 5),
     IP(src="192.0.2.1", dst="192.0.2.2"), None,
     [IPv6(src="2001:db8:1::1", dst="2001:db8:2::1") / ICMPv6EchoRequest(id=1, seq=s, data=b"v6" * 20) for s in range(2)]),
    ("transport v6 AES-GCM-256", 0x1004, "AES-GCM", key(36, 6), None, None, None, None,
     [IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=40000, dport=443, flags="S", seq=s) for s in range(2)]),
    ("tunnel v4 in UDP 4500 AES-GCM-256", 0x1005, "AES-GCM", key(36, 7), None, None,
     IP(src="198.51.100.1", dst="203.0.113.9"), UDP(sport=4500, dport=4500),
     [IP(src="10.9.0.1", dst="10.8.0.1") / UDP(sport=1234, dport=5678) / Raw(b"nat" * (5 + 100 * s)) for s in range(3)]),
    ("tunnel v4 NULL HMAC-SHA2-512-256", 0x1006, "NULL", None, "SHA2-512-256", key(64, 8),
     IP(src="192.0.2.1", dst="192.0.2.2"), None,
     [IP(src="10.0.1.1", dst="10.0.2.1") / ICMP(seq=s) / Raw(b"null-enc") for s in range(2)]),
    ("transport v4 AES-CBC-128 HMAC-SHA2-384-192", 0x1007, "AES-CBC", key(16, 9), "SHA2-384-192", key(48, 10),
     None, None,
     [IP(src="192.0.2.3", dst="192.0.2.4") / TCP(sport=22, dport=50000, flags="PA") / Raw(b"ssh" * 30)]),
]

frames, expected, rows = [], [], []
for name, spi, crypt, ck, auth, ak, tun, natt, pkts in cases:
    sa = SecurityAssociation(ESP, spi=spi, crypt_algo=crypt, crypt_key=ck, auth_algo=auth, auth_key=ak,
                             tunnel_header=tun, nat_t_header=natt)
    outer = tun if tun is not None else pkts[0]
    fam = "IPv6" if outer.version == 6 else "IPv4"
    rows.append('"%s","%s","%s","0x%08x","%s","0x%s","%s","%s"' % (
        fam, outer.src, outer.dst, spi, WS_ENC[crypt], (ck or b"").hex(), WS_AUTH[auth],
        ("0x" + ak.hex()) if ak else ""))
    for p in pkts:
        p = p.__class__(bytes(p))  # fix lengths and checksums first
        e = sa.encrypt(p)
        wire = bytes(e)
        frames.append(wire)
        inner = bytes(sa.decrypt(e.__class__(wire)))
        expected.append({"case": name, "status": "ok", "inner": inner.hex()})
    # A replay of the last frame, and a copy with one ciphertext bit flipped.
    frames.append(frames[-1])
    expected.append({"case": name + " (replayed)", "status": "replay"})
    if auth is not None or crypt == "AES-GCM":
        bad = bytearray(frames[-2])
        bad[-1] ^= 0x01  # last ICV byte
        # give it a fresh sequence number so the replay check passes
        off = bytes(frames[-2]).find(spi.to_bytes(4, "big"))
        bad[off + 4:off + 8] = (0x7fff0000).to_bytes(4, "big")
        frames.append(bytes(bad))
        expected.append({"case": name + " (forged)", "status": "integrity"})

w = RawPcapWriter(os.path.join(HERE, "scapy_esp.pcap"), linktype=101)  # LINKTYPE_RAW
w.write_header(None)
for i, f in enumerate(frames):
    w.write_packet(f, sec=1700000000 + i, usec=0)
w.close()
with open(os.path.join(HERE, "scapy_esp_sa"), "w") as fh:
    fh.write("# esp_sa rows for scapy_esp.pcap, written by gen_scapy_capture.py\n")
    fh.write("".join(r + "\n" for r in rows))
with open(os.path.join(HERE, "scapy_expected.json"), "w") as fh:
    json.dump(expected, fh, indent=1)
print("%d frames" % len(frames))
