#!/usr/bin/env python3
"""Generate AH cross-check vectors with Scapy's AH implementation.

    pip install scapy        # 2.8.0 was used; needs `cryptography` too
    python3 crates/ipsec-ah/tests/gen_scapy_vectors.py > crates/ipsec-ah/tests/vectors/scapy_ah.json

Every record is made by `scapy.layers.ipsec.SecurityAssociation(AH, ...)`; nothing in
here computes an ICV itself. Scapy is an implementation we did not write, so agreeing
with it byte for byte is evidence about our mutable-field handling, padding, ESN and
tunnel framing. Where Scapy disagrees with RFC 4302 the record says so (`scapy_rfc`)
and carries both packets; tests/vectors.rs explains which side is right and why.

Record fields (all bytes as lowercase hex):
  name, generator, mode ("transport" | "tunnel"), family (of the header carrying AH)
  spi, seq (32-bit, as sent), esn_high (int | null)
  integ (ah.json names), integ_key, icv_len
  tunnel: {src, dst, ttl, ident} | null      outer header settings Scapy used
  plaintext_ip_packet                        what was protected (tunnel: the inner packet)
  ah_packet                                  SecurityAssociation.encrypt(plaintext)
  seal_matches (bool)                        our transport-mode placement equals Scapy's
  arrived_packets [ {what, packet} ]         ah_packet after simulated routers changed
                                             mutable fields; must still verify
  scapy_rfc: null | {issue, scapy_ah_packet} where Scapy's own output breaks the RFC
  checks [str]                               what this script verified with Scapy
"""

import json
import struct
import sys

import scapy
from scapy.compat import raw
from scapy.layers import ipsec
from scapy.layers.inet import IP, TCP, UDP, ICMP, IPOption
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    HBHOptUnknown,
    PadN,
    RouterAlert,
    ICMPv6EchoRequest,
)
from scapy.layers.ipsec import AH, SecurityAssociation

ALGOS = {
    # scapy name: (our name, key length, icv length)
    "HMAC-SHA1-96": ("HMAC-SHA1-96", 20, 12),
    "SHA2-256-128": ("HMAC-SHA2-256-128", 32, 16),
    "SHA2-384-192": ("HMAC-SHA2-384-192", 48, 24),
    "SHA2-512-256": ("HMAC-SHA2-512-256", 64, 32),
}

SPI = 0x00001234
OUT = []


def key_for(name, n):
    # Deterministic, different per algorithm.
    seed = sum(name.encode())
    return bytes((seed + 7 * i) & 0xFF for i in range(n))


def payload(n, tag):
    return bytes((tag + i) & 0xFF for i in range(n))


def sa_for(algo, esn_high=None, tunnel=None, seq=1):
    _, klen, _ = ALGOS[algo]
    kw = {}
    if esn_high is not None:
        kw = {"esn_en": True, "esn": esn_high}
    return SecurityAssociation(
        AH,
        spi=SPI,
        seq_num=seq,
        auth_algo=algo,
        auth_key=key_for(algo, klen),
        tunnel_header=tunnel,
        **kw,
    )


def record(name, algo, plain, mode="transport", esn_high=None, tunnel=None, seq=1,
           seal_matches=True, arrive=None, notes="", scapy_rfc=None, decrypts_as_sent=True):
    plain = plain.__class__(raw(plain))  # freeze defaults (lengths, checksums)
    sa = sa_for(algo, esn_high, tunnel, seq)
    ah_pkt = sa.encrypt(plain)
    ah_bytes = raw(ah_pkt)
    ours, klen, icv_len = ALGOS[algo]
    checks = []
    # Scapy verifies its own packet and gives back the plaintext (except where a
    # routing header still has segments left: Scapy's receive side only handles
    # packets that completed their route, see `arrived_packets`).
    family = "ipv4" if ah_bytes[0] >> 4 == 4 else "ipv6"
    parsed = (IP if family == "ipv4" else IPv6)(ah_bytes)
    rx = sa_for(algo, esn_high, tunnel, seq)
    arrived = []
    if decrypts_as_sent:
        dec = rx.decrypt(parsed)
        if mode == "tunnel":
            assert raw(dec) == raw(plain), name
        else:
            assert raw(dec.__class__(raw(dec))) == raw(plain), name
        checks.append("scapy decrypt(ah_packet) == plaintext_ip_packet")
    # A packet that has not finished its route cannot be checked by Scapy's receive
    # side; its arrivals travel the route first (and change the same fields).
    defaults = default_arrivals(family) if decrypts_as_sent else []
    for what, fn in (arrive or []) + defaults:
        moved = fn(bytearray(ah_bytes))
        p = (IP if family == "ipv4" else IPv6)(bytes(moved))
        rx.decrypt(p)  # raises IPSecIntegrityError if it does not verify
        arrived.append({"what": what, "packet": bytes(moved).hex()})
        checks.append("scapy verifies arrived packet: " + what)
    rec = {
        "name": name,
        "generator": "scapy %s SecurityAssociation(AH)" % scapy.__version__,
        "mode": mode,
        "family": family,
        "spi": SPI,
        "seq": seq & 0xFFFFFFFF,
        "esn_high": esn_high,
        "integ": ours,
        "integ_key": key_for(algo, klen).hex(),
        "icv_len": icv_len,
        "tunnel": None,
        "plaintext_ip_packet": raw(plain).hex(),
        "ah_packet": ah_bytes.hex(),
        "seal_matches": seal_matches,
        "arrived_packets": arrived,
        "scapy_rfc": scapy_rfc,
        "checks": checks,
        "notes": notes,
    }
    if tunnel is not None:
        t = raw(tunnel.__class__(raw(tunnel / plain)))
        if tunnel.version == 4:
            rec["tunnel"] = {"src": tunnel.src, "dst": tunnel.dst, "ttl": t[8],
                             "ident": struct.unpack("!H", t[4:6])[0], "df": bool(t[6] & 0x40)}
        else:
            rec["tunnel"] = {"src": tunnel.src, "dst": tunnel.dst, "ttl": t[7],
                             "ident": 0, "df": False}
    OUT.append(rec)
    return rec


# --- what routers may do to a packet in flight (RFC 4302 §3.3.3.1) -----------------

def v4_fix_checksum(b):
    b[10:12] = b"\x00\x00"
    hl = (b[0] & 0xF) * 4
    s = 0
    for i in range(0, hl, 2):
        s += (b[i] << 8) | b[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    b[10:12] = struct.pack("!H", ~s & 0xFFFF)
    return b


def v4_ttl_tos_df(b):
    b[8] = max(b[8] - 3, 0)
    b[1] ^= 0xB9  # DSCP rewritten, ECN set to CE-ish
    b[6] |= 0x40  # a router sets DF (RFC 4302 §3.3.3.1.1.1)
    return v4_fix_checksum(b)


def v6_hlim_tc_fl(b):
    b[7] = max(b[7] - 5, 0)
    first = struct.unpack("!I", b[0:4])[0]
    first ^= (0x2E << 20) | 0xABCDE  # traffic class and flow label
    b[0:4] = struct.pack("!I", first)
    return b


def default_arrivals(family):
    if family == "ipv4":
        return [("ttl, tos and df changed, checksum recomputed", v4_ttl_tos_df)]
    return [("hop limit, traffic class and flow label changed", v6_hlim_tc_fl)]


def v4_options_filled(b):
    """Fill Record Route slots and Timestamp entries, advancing their pointers."""
    hl = (b[0] & 0xF) * 4
    i = 20
    while i < hl:
        t = b[i]
        if t == 0:
            break
        if t == 1:
            i += 1
            continue
        ln = b[i + 1]
        if t in (7, 68):
            ptr = b[i + 2]
            while ptr + 3 <= ln:
                b[i + ptr - 1:i + ptr + 3] = bytes([198, 51, 100, ptr])
                ptr += 4
            b[i + 2] = ptr
        i += ln
    return v4_ttl_tos_df(b)


def v4_source_route_travelled(b):
    """Each hop of a loose source route: record itself, take the next address."""
    hl = (b[0] & 0xF) * 4
    i = 20
    while i < hl:
        t = b[i]
        if t == 0:
            break
        if t == 1:
            i += 1
            continue
        ln = b[i + 1]
        if t in (131, 137):
            ptr = b[i + 2]
            while ptr <= ln:
                nxt = bytes(b[i + ptr - 1:i + ptr + 3])
                b[i + ptr - 1:i + ptr + 3] = bytes([203, 0, 113, ptr])  # the hop's address
                b[16:20] = nxt
                b[8] -= 1
                ptr += 4
            b[i + 2] = ptr
        i += ln
    return v4_fix_checksum(b)


def v6_routed(b):
    """RFC 8200 §4.4 type 0 processing at every hop until segments left is 0; every
    option with the "may change" bit gets new data; hop limit, traffic class and
    flow label change."""
    nh, off = b[6], 40
    while True:
        if nh in (0, 60):
            ln = (b[off + 1] + 1) * 8
            j = off + 2
            while j < off + ln:
                t = b[j]
                if t == 0:
                    j += 1
                    continue
                dl = b[j + 1]
                if t & 0x20:
                    for k in range(dl):
                        b[j + 2 + k] ^= 0x5A
                j += 2 + dl
        elif nh == 43:
            ln = (b[off + 1] + 1) * 8
            if b[off + 2] in (0, 2):
                n = b[off + 1] // 2
                while b[off + 3] > 0:
                    i = n - b[off + 3]
                    a = off + 8 + 16 * i
                    dst = bytes(b[24:40])
                    b[24:40] = b[a:a + 16]
                    b[a:a + 16] = dst
                    b[off + 3] -= 1
                    b[7] -= 1
        else:
            break
        nh = b[off]
        off += ln
    return v6_hlim_tc_fl(b)


# --- the vectors ----------------------------------------------------------------

def v4(options=(), proto_layer=None, dst="192.0.2.2", tos=0, flags=0):
    # Not UDP port 4500: Scapy dissects that payload as ESP (NAT-T) and its
    # AuthAlgo.sign() then takes the ESP branch and appends the ICV to the packet.
    layer = proto_layer if proto_layer is not None else UDP(sport=5000, dport=53) / payload(40, 1)
    return IP(src="192.0.2.1", dst=dst, tos=tos, flags=flags, id=0x4242, ttl=64,
              options=[IPOption(o) for o in options]) / layer


RA = b"\x94\x04\x00\x00"                                   # Router Alert (immutable)
# Timestamp with one slot (mutable). Scapy's IPOption_Timestamp dissects a single
# timestamp only; with more slots the rest is read as further options, so a
# two-slot option cannot be cross-checked once routers have filled it.
TS = b"\x44\x08\x05\x00" + b"\x00" * 4
RR = b"\x07\x0b\x04" + b"\x00" * 8 + b"\x01"              # Record Route, 2 slots + NOP
SEC = b"\x82\x0b" + bytes(range(9)) + b"\x01"             # Security (immutable) + NOP

for algo in ALGOS:
    record("ipv4 transport, router alert + timestamp, " + algo, algo,
           v4([RA, TS]), arrive=[("timestamps filled", v4_options_filled)])
    record("ipv4 transport, record route + security, " + algo, algo,
           v4([RR, SEC], ICMP(type=8, id=7, seq=1) / payload(56, 9)),
           arrive=[("record route filled", v4_options_filled)])

for algo in ALGOS:
    record("ipv4 transport, no options, ESN, " + algo, algo,
           v4([], TCP(sport=1234, dport=80, flags="S") / payload(100, 3)),
           esn_high=0x00000001, seq=0x00000005)
record("ipv4 transport, ESN high bits 0xfedcba98, seq 0xffffffff", "SHA2-256-128",
       v4([], UDP(sport=1, dport=2) / payload(17, 5)), esn_high=0xFEDCBA98, seq=0xFFFFFFFF)


# IPv6: hop-by-hop (Router Alert, immutable; an option with the "may change" bit:
# type 0x3e, RFC 4727 experimental) -> destination options before a routing header
# (also with a mutable option) -> routing type 0, two addresses, 2 segments left.
def v6_chain(upper, final_dstopts=False):
    p = IPv6(src="2001:db8::1", dst="2001:db8:1::1", hlim=64, tc=0, fl=0)
    p /= IPv6ExtHdrHopByHop(options=[RouterAlert(value=0), HBHOptUnknown(otype=0x3E, optdata=b"\x11\x22\x33\x44\x55\x66")])
    p /= IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x3E, optdata=b"\xaa\xbb\xcc\xdd"), PadN(optdata=b"\x00\x00")])
    p /= IPv6ExtHdrRouting(type=0, segleft=2, addresses=["2001:db8:2::2", "2001:db8:3::3"])
    if final_dstopts:
        p /= IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x1E, optdata=b"\x01\x02\x03\x04")])
    return p / upper


for algo in ALGOS:
    record("ipv6 transport, hop-by-hop + dstopts + routing (2 segments left), " + algo, algo,
           v6_chain(UDP(sport=5000, dport=5001) / payload(33, 7)),
           arrive=[("routed to the final destination, mutable option data changed", v6_routed)],
           decrypts_as_sent=False,
           notes="AH after the routing header; the ICV covers the routing header as it will "
                 "be at the final destination (RFC 4302 §3.3.3.1.2.2)")
record("ipv6 transport, final destination options after AH, SHA2-512-256", "SHA2-512-256",
       v6_chain(ICMPv6EchoRequest(id=1, seq=2, data=payload(24, 2)), final_dstopts=True),
       arrive=[("routed to the final destination, mutable option data changed", v6_routed)],
       decrypts_as_sent=False,
       notes="destination options after a routing header are for the final destination: "
             "AH goes in front of them (RFC 8200 §4.1 order)")
for algo in ("HMAC-SHA1-96", "SHA2-384-192"):
    record("ipv6 transport, hop-by-hop only, ESN, " + algo, algo,
           IPv6(src="2001:db8::a", dst="2001:db8::b") /
           IPv6ExtHdrHopByHop(options=[HBHOptUnknown(otype=0x3E, optdata=b"\x01\x02")]) /
           TCP(sport=443, dport=50000, flags="PA") / payload(64, 4),
           esn_high=3, seq=77,
           arrive=[("mutable option data changed", v6_routed)])
record("ipv6 transport, dstopts without routing header (Scapy: AH after it), SHA2-256-128",
       "SHA2-256-128",
       IPv6(src="2001:db8::a", dst="2001:db8::b") /
       IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x3E, optdata=b"\x0f" * 4)]) /
       UDP(sport=7, dport=7) / payload(20, 6),
       seal_matches=False,
       notes="Scapy (like Linux) puts AH after destination options when there is no "
             "routing header; we put it in front of them, where RFC 8200 §4.1 puts "
             "options for the final destination. RFC 4302 §3.1.1 allows both, so only "
             "the receive direction is compared byte for byte.")

# Tunnel mode, all four combinations, with Scapy's default outer header fields
# (IPv4: id 1, ttl 64, DF clear; IPv6: hop limit 64, flow label 0).
inner4 = v4([], UDP(sport=1000, dport=2000) / payload(48, 8))
inner6 = IPv6(src="2001:db8::10", dst="2001:db8::20", hlim=60) / UDP(sport=3, dport=4) / payload(30, 5)
t4 = IP(src="198.51.100.1", dst="198.51.100.2")
t6 = IPv6(src="2001:db8:ffff::1", dst="2001:db8:ffff::2")
for (iname, inner), (tname, th) in [(("ipv4", inner4), ("ipv4", t4)), (("ipv6", inner6), ("ipv6", t6)),
                                    (("ipv4", inner4), ("ipv6", t6)), (("ipv6", inner6), ("ipv4", t4))]:
    for algo in ("HMAC-SHA1-96", "SHA2-512-256"):
        record("tunnel %s in %s, %s" % (iname, tname, algo), algo, inner, mode="tunnel", tunnel=th)
record("tunnel ipv4 in ipv4, ESN, SHA2-384-192", "SHA2-384-192", inner4, mode="tunnel",
       tunnel=t4, esn_high=0x10, seq=2)


# IPv4 loose source route: RFC 4302 §3.3.3.1.1.1 makes the destination address
# "mutable but predictable": the ICV uses the final destination. Scapy's
# zero_mutable_fields() leaves the first hop in the destination field. The record's
# ah_packet is made by Scapy with that one step added (the final destination put
# into the zeroed copy before Scapy's own zeroing); Scapy's unmodified output is kept
# as scapy_rfc.scapy_ah_packet.
def lsrr_plain():
    # dst = first hop 10.1.1.1, route: 10.2.2.2, then the final destination 192.0.2.99.
    lsrr = b"\x83\x0b\x04" + bytes([10, 2, 2, 2]) + bytes([192, 0, 2, 99]) + b"\x00"
    return v4([lsrr], UDP(sport=9, dport=9) / payload(12, 1), dst="10.1.1.1")


scapy_zero = ipsec.zero_mutable_fields
plain = lsrr_plain()
raw_scapy = raw(sa_for("SHA2-256-128").encrypt(plain.__class__(raw(plain))))


def rfc_zero(pkt, sending=False):
    if pkt.version == 4:
        for opt in pkt.options:
            b = raw(opt)
            if b and b[0] in (131, 137) and b[2] <= b[1] and b[1] >= 7:
                pkt.dst = "%d.%d.%d.%d" % tuple(b[b[1] - 4:b[1]])
    return scapy_zero(pkt, sending)


ipsec.zero_mutable_fields = rfc_zero
r = record("ipv4 transport, loose source route (RFC final destination), SHA2-256-128",
           "SHA2-256-128", plain,
           arrive=[("source route travelled: destination is the final one", v4_source_route_travelled)],
           scapy_rfc={"issue": "Scapy computes the ICV over the first-hop destination; "
                               "RFC 4302 §3.3.3.1.1.1 wants the final one",
                      "scapy_ah_packet": raw_scapy.hex()})
ipsec.zero_mutable_fields = scapy_zero
# With the route travelled, unmodified Scapy verifies the RFC packet and rejects its own.
arrived = bytes.fromhex(r["arrived_packets"][0]["packet"])
sa_for("SHA2-256-128").decrypt(IP(arrived))
try:
    sa_for("SHA2-256-128").decrypt(IP(bytes(v4_source_route_travelled(bytearray(raw_scapy)))))
    raise SystemExit("scapy verified its own source-routed packet after the route")
except ipsec.IPSecIntegrityError:
    r["checks"].append("unmodified scapy: accepts the RFC packet after the route, rejects its own")

json.dump(OUT, sys.stdout, indent=1)
sys.stdout.write("\n")
print("%d records" % len(OUT), file=sys.stderr)
