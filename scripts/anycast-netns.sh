#!/usr/bin/env bash
# anycast-netns.sh - one SA served by three gateway nodes behind one anycast address
# (docs/scale-out.md), in network namespaces. Run as root; CI runs it after
# gateway-netns.sh. Fails loudly; never skips.
#
# Topology (all namespaces gw-ac-*):
#   gw-ac-p  charon peer 198.18.9.2, inner 198.19.2.1      \
#   gw-ac-q  our gateway as a peer 198.18.9.3, inner 198.19.3.1 -- bridge in gw-ac-r (router)
#   gw-ac-r  router: 198.18.200.1/32 (the anycast address) via node 1, 2 or 3 (or ECMP)
#   gw-ac-nK node K: 198.18.10K.2 to the router, anycast 198.18.200.1 on lo,
#            10.77.0.1K on the cluster LAN
#   gw-ac-l  cluster LAN (a bridge): etcd at 10.77.0.1, the server 198.19.1.1 routed via
#            the active node
#
# Phase A (charon peer), during one SHA-256-checked 160 MB transfer from the server to
# the peer: the router moves the anycast route from node 1 to 2 to 3 and back to 2;
# node 2 is killed with -9 and the route withdrawn to node 3; charon rekeys the Child
# SA; etcd is killed and restarted (node 1, the IKE SA's owner, must fence its IKE SA
# while etcd is away and resume it after). A capture on the peer's link, decrypted with the
# keys the nodes exported (`--keys`), must show every ESP (SPI, sequence number, IV)
# from the anycast address once, over at least 100 000 packets.
# Phase B (our gateway as the peer, anti-replay off on its side): throughput of one
# SA served by 1, 2 and 3 nodes (ECMP over the nodes, 4 TCP streams).
#
# Environment: OUT (default /tmp/anycast-netns), BIN (an `ipsec` built with
# --features etcd; otherwise this builds one), ETCD (default etcd), MIN_PACKETS (100000),
# PAYLOAD_MB (160), RATE (MB/s of the phase A transfer, 6).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LIB_DIR=$HERE/gateway-netns
AC_DIR=$HERE/anycast-netns
export OUT=${OUT:-/tmp/anycast-netns}
# shellcheck source=gateway-netns/lib.sh
. "$LIB_DIR/lib.sh"
# ours alone: gateway-netns.sh's namespaces are gw-*, not gw-ac-*
NS_PREFIX=gw-ac-
[ "$(id -u)" = 0 ] || die "run as root (network namespaces)"

PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
ETCD=${ETCD:-etcd}
MIN_PACKETS=${MIN_PACKETS:-100000}
PAYLOAD_MB=${PAYLOAD_MB:-160}
RATE=${RATE:-6}
PSK=anycast-netns-psk-0123456789abcdef
ANY=198.18.200.1

fail() { log "FAIL: $*"; exit 1; }
check() { local what=$1; shift; if "$@"; then log "ok: $what"; else fail "$what"; fi; }
now() { date +%s.%N; }
# ping_ok NS SRC DST: three echoes through the tunnel
ping_ok() { ip netns exec "$1" ping -q -c 3 -i 0.2 -W 2 -I "$2" "$3" >/dev/null; }
# gw_established DIR N: N ESTABLISHED IKE SAs, each with a Child SA
gw_established() { gw_check "$1" "len(est(s)) == $2 and all(len(i['children']) >= 1 for i in est(s))"; }

need() { command -v "$1" >/dev/null 2>&1; }
if ! need tcpdump || ! need ethtool || ! need "$ETCD" || ! need swanctl || [ ! -x "$CHARON" ] \
    || ! need ping || ! need python3 || { [ -z "${BIN:-}" ] && ! need protoc; }; then
  if need apt-get; then
    log "installing tcpdump, ethtool, etcd, strongSwan, protoc"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpdump ethtool etcd-server \
      protobuf-compiler strongswan-charon strongswan-swanctl libcharon-extra-plugins \
      libstrongswan-extra-plugins libstrongswan-standard-plugins iproute2 iputils-ping \
      python3 >/dev/null
  fi
fi
need tcpdump || die "tcpdump is missing"
need ethtool || die "ethtool is missing"
need "$ETCD" || die "etcd is missing"
[ -x "$CHARON" ] || die "charon is missing ($CHARON)"

if [ -z "${BIN:-}" ]; then
  log "building ipsec (release, --features etcd)"
  (cd "$ROOT" && cargo build --release -q -p ipsec-cli --features etcd)
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/ipsec
fi
BIN=$(readlink -f "$BIN")

cleanup() { stop_all; del_all_ns; }
trap cleanup EXIT
trap 'log "FAIL: command failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM
cleanup
rm -rf "$OUT"; mkdir -p "$OUT"
CASE_DIR=$OUT

# --- topology ------------------------------------------------------------------------
sysctls() { # ns: forwarding on, reverse-path filtering off
  ip netns exec "$1" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward;
    for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 >$f; done'
}
mk_ns gw-ac-r; mk_ns gw-ac-l; mk_ns gw-ac-p; mk_ns gw-ac-q
ip -n gw-ac-r link add acbr type bridge; ip -n gw-ac-r link set acbr up
ip -n gw-ac-r addr add 198.18.9.1/24 dev acbr
for p in p q; do
  ip link add acx$p netns gw-ac-r type veth peer name ac0 netns gw-ac-$p
  ip -n gw-ac-r link set acx$p master acbr up
  ip -n gw-ac-$p link set ac0 up
done
ip -n gw-ac-p addr add 198.18.9.2/24 dev ac0; ip -n gw-ac-p route add default via 198.18.9.1
ip -n gw-ac-q addr add 198.18.9.3/24 dev ac0; ip -n gw-ac-q route add default via 198.18.9.1
inner_addr gw-ac-p 198.19.2.1
inner_addr gw-ac-q 198.19.3.1
ip -n gw-ac-l link add lan type bridge; ip -n gw-ac-l link set lan up
ip -n gw-ac-l addr add 10.77.0.1/24 dev lan
inner_addr gw-ac-l 198.19.1.1
for k in 1 2 3; do
  mk_ns gw-ac-n$k
  link_ns gw-ac-r acr$k 198.18.10$k.1/24 gw-ac-n$k acn0 198.18.10$k.2/24
  ip link add acl$k netns gw-ac-l type veth peer name acl0 netns gw-ac-n$k
  ip -n gw-ac-l link set acl$k master lan up
  ip -n gw-ac-n$k addr add 10.77.0.1$k/24 dev acl0; ip -n gw-ac-n$k link set acl0 up
  ip -n gw-ac-n$k addr add $ANY/32 dev lo
  ip -n gw-ac-n$k route add 198.18.9.0/24 via 198.18.10$k.1
  ip -n gw-ac-n$k route add 198.19.1.0/24 via 10.77.0.1
  # The gateways send ESP with UDP GSO; a veth passes GSO packets on whole, so the
  # captures would see one frame per batch. Segment on the node instead.
  ip netns exec gw-ac-n$k ethtool -K acn0 tx-udp-segmentation off >/dev/null 2>&1 || true
  ip netns exec gw-ac-n$k ethtool -k acn0 | grep -q '^tx-udp-segmentation: off' \
    || die "cannot turn UDP segmentation off on the nodes' links (captures would see GSO batches)"
  sysctls gw-ac-n$k
done
sysctls gw-ac-r; sysctls gw-ac-l; sysctls gw-ac-p; sysctls gw-ac-q
ip netns exec gw-ac-r sh -c 'echo 1 >/proc/sys/net/ipv4/fib_multipath_hash_policy'
ip netns exec gw-ac-l sh -c 'echo 1 >/proc/sys/net/ipv4/fib_multipath_hash_policy'

MOVES=$OUT/moves.txt; : >"$MOVES"
# route_to K...: the anycast address (from the router) and the peers' inner networks
# (from the LAN) through node K, or ECMP over several
route_to() {
  local r=() l=() k t
  t=$(now)
  for k in "$@"; do r+=(nexthop via 198.18.10$k.2); l+=(nexthop via 10.77.0.1$k); done
  if [ $# -eq 1 ]; then
    ip -n gw-ac-r route replace $ANY/32 via 198.18.10$1.2
    ip -n gw-ac-l route replace 198.19.2.0/24 via 10.77.0.1$1
    ip -n gw-ac-l route replace 198.19.3.0/24 via 10.77.0.1$1
  else
    ip -n gw-ac-r route replace $ANY/32 "${r[@]}"
    ip -n gw-ac-l route replace 198.19.2.0/24 "${l[@]}"
    ip -n gw-ac-l route replace 198.19.3.0/24 "${l[@]}"
  fi
  echo "$t $*" >>"$MOVES"
  log "anycast route -> node(s) $*"
}
route_to 1

# --- etcd and the nodes ----------------------------------------------------------------
ETCD_DIR=$OUT/etcd
start_etcd() {
  local pid i
  pid=$(setsid ip netns exec gw-ac-l "$ETCD" --name ac --data-dir "$ETCD_DIR" \
      --listen-client-urls http://10.77.0.1:2379 --advertise-client-urls http://10.77.0.1:2379 \
      --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
      --initial-cluster ac=http://127.0.0.1:2380 >>"$OUT/etcd.log" 2>&1 </dev/null & echo $!)
  record_pid etcd "$pid" "$(readlink -f "$(command -v "$ETCD")")"
  for i in $(seq 1 100); do
    ip netns exec gw-ac-l "$PY" -c 'import urllib.request,sys; sys.exit(0 if b"true" in urllib.request.urlopen("http://10.77.0.1:2379/health", timeout=1).read() else 1)' 2>/dev/null && { log "etcd up (pid $pid)"; return 0; }
    sleep 0.1
  done
  tail -n 20 "$OUT/etcd.log" >&2; return 1
}
start_etcd || fail "etcd did not start"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$OUT/cluster.key"

node_conf() { # DIR
  write_conf "$1/gateway.conf" "$(conn_block ours peer $ANY 198.18.9.2 anycast.gw.test peer.gw.test \
      198.19.1.0/24 198.19.2.0/24 none)
$(conn_block ours ours $ANY 198.18.9.3 anycast.gw.test ours.gw.test 198.19.1.0/24 198.19.3.0/24 none)" \
    "$(secret_block peer "$PSK" peer.gw.test)
$(secret_block ours "$PSK" ours.gw.test)"
}
start_node() { # K [DIR]
  local d=${2:-$OUT/n$1}
  mkdir -p "$d"; node_conf "$d"
  start_gw "n$1" gw-ac-n$1 "$d" --cluster etcd://10.77.0.1:2379 --node "n$1" --node-index "$1" \
    --cluster-key "$OUT/cluster.key" --cluster-listen "10.77.0.1$1:4600" --keys "$d/keys" \
    || fail "node $1 did not start"
}
for k in 1 2 3; do start_node $k; done
cluster_view() { gw_status "$1" | "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("cluster")))'; }
nodes_seen() { gw_check "$1" "len(s['cluster']['nodes']) == $2"; }
for k in 1 2 3; do check "node $k sees three nodes" wait_for 10 nodes_seen "$OUT/n$k" 3; done

# --- phase A: charon --------------------------------------------------------------------
DP=$OUT/peer
mkdir -p "$DP/swanctl"
write_conf "$DP/swanctl.conf.new" "$(conn_block charon peer 198.18.9.2 $ANY peer.gw.test anycast.gw.test \
    198.19.2.0/24 198.19.1.0/24 none 14400 3600)" "$(secret_block peer "$PSK" peer.gw.test)"
charon_conf "$DP"; mv "$DP/swanctl.conf.new" "$DP/swanctl/swanctl.conf"
start_charon peer gw-ac-p "$DP" || fail "charon did not start"
sw "$DP" --initiate --ike peer --child net --timeout 15 >"$DP/initiate.out" 2>&1 \
  || { cat "$DP/initiate.out" >&2; fail "charon's initiate failed"; }
check "node 1 owns the IKE SA with its Child SA" wait_for 10 gw_check "$OUT/n1" "len(est(s)) == 1"
replicas() { gw_check "$1" "s['cluster']['replicas'] == $2"; }
check "node 2 imported the Child SA" wait_for 10 replicas "$OUT/n2" 1
check "node 3 imported the Child SA" wait_for 10 replicas "$OUT/n3" 1
check "ping through node 1" wait_for 5 ping_ok gw-ac-p 198.19.2.1 198.19.1.1

# captures: the peer's link (full packets, for the uniqueness check) and the router's
# links to the nodes (headers only, for timing)
capture() { # name ns iface snaplen filter
  local pid
  pid=$(setsid ip netns exec "$2" tcpdump -i "$3" -s "$4" -B 65536 -U -w "$OUT/$1.pcap" "$5" \
      >"$OUT/$1.tcpdump.log" 2>&1 </dev/null & echo $!)
  record_pid "cap-$1" "$pid" "$(readlink -f "$(command -v tcpdump)")"
  for i in $(seq 1 50); do grep -q "listening on" "$OUT/$1.tcpdump.log" 2>/dev/null && return 0; sleep 0.1; done
  fail "tcpdump $1 did not start"
}
# cap_done NAME: stop a capture and require that the kernel dropped nothing
cap_done() {
  stop_proc "cap-$1" INT
  grep -qE '(^| )0 packets dropped by kernel' "$OUT/$1.tcpdump.log" \
    || fail "capture $1 lost packets: $(tail -n 3 "$OUT/$1.tcpdump.log" | tr '\n' ' ')"
}
capture peer gw-ac-p ac0 0 "udp port 4500"
for k in 1 2 3; do capture r$k gw-ac-r acr$k 96 "udp port 4500 and src host $ANY"; done

PAYLOAD=$OUT/payload.bin
head -c $((PAYLOAD_MB * 1024 * 1024)) /dev/urandom >"$PAYLOAD"
setsid ip netns exec gw-ac-p "$PY" "$LIB_DIR/tcp.py" serve 198.19.2.1 5001 --timeout 240 \
  >"$OUT/a.server.json" 2>&1 </dev/null &
record_pid tcp-a-srv $! "$(readlink -f "$PY")"
sleep 0.5
setsid ip netns exec gw-ac-l sh -c '"$1" "$2" send 198.19.2.1 5001 "$3" --src 198.19.1.1 \
    --rate "$4" --timeout 240 >"$5/a.json" 2>&1; echo $? >"$5/a.rc"' sh "$PY" "$LIB_DIR/tcp.py" \
    "$PAYLOAD" "$RATE" "$OUT" </dev/null &
SENDER=$!
record_pid tcp-a-send $SENDER "$(readlink -f /bin/sh)"
# sending: the transfer is still running (every step must happen during it)
sending() { [ ! -s "$OUT/a.rc" ] || fail "the transfer ended before: $1"; }
# A steady probe beside TCP (whose retransmission backoff would hide the failover):
# 100 echo requests a second from the server to the peer.
setsid ip netns exec gw-ac-l ping -q -i 0.01 -I 198.19.1.1 198.19.2.1 >"$OUT/probe.txt" 2>&1 </dev/null &
record_pid probe $! "$(readlink -f "$(command -v ping)")"
T0=$(now)
at() { local t=$1; "$PY" -c "import time,sys; d=$T0+$t-time.time(); time.sleep(max(0,d))"; }

at 3;  sending "route to node 2"; route_to 2
at 6;  sending "route to node 3"; route_to 3
at 9;  sending "route back to node 2"; route_to 2
at 11; sending "kill of node 2"; KILL_T=$(now); stop_proc n2 KILL; log "node 2 killed (-9)"
at 11.5; WITHDRAW_T=$(now); route_to 3
at 13; sending "rekey"; REKEY_T=$(now)
sw "$DP" --rekey --child net >"$DP/rekey.out" 2>&1 || { cat "$DP/rekey.out" >&2; fail "charon's rekey failed"; }
log "charon rekeyed the Child SA"
at 17; sending "etcd kill"; ETCD_DOWN_T=$(now); stop_proc etcd KILL; log "etcd killed"
at 20; start_etcd || fail "etcd did not restart"; ETCD_UP_T=$(now)
sleep 2; sending "etcd restart (2 s after)"
while [ ! -s "$OUT/a.rc" ]; do sleep 0.2; done
[ "$(cat "$OUT/a.rc")" = 0 ] || { cat "$OUT/a.json" "$OUT/a.server.json" >&2; fail "phase A transfer not delivered intact"; }
DONE_T=$(now)
log "ok: phase A: $PAYLOAD_MB MB delivered intact: $(cat "$OUT/a.json")"
sleep 1
stop_proc probe INT
sleep 0.5
for c in peer r1 r2 r3; do cap_done $c; done

pc() { "$PY" "$AC_DIR/check.py" pcap "$@"; }
field() { "$PY" -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
mapfile -t MV <"$MOVES"
mt() { echo "${MV[$1]}" | awk '{print $1}'; }   # time of the n-th route change (0: initial)
# each node carried the SA while the route pointed at it
n1=$(pc "$OUT/r1.pcap" --after "$T0" --before "$(mt 1)")
n2=$(pc "$OUT/r2.pcap" --after "$(mt 1)" --before "$(mt 2)")
n3=$(pc "$OUT/r3.pcap" --after "$(mt 2)" --before "$(mt 3)")
log "ESP sent by node 1 / 2 / 3 in their turns: $(field "$n1" esp) / $(field "$n2" esp) / $(field "$n3" esp)"
for n in "$n1" "$n2" "$n3"; do [ "$(field "$n" esp)" -gt 500 ] || fail "a node did not carry the traffic in its turn"; done
# failover: last packet through node 2, first through node 3 after the withdrawal
old=$(pc "$OUT/r2.pcap" --after "$(mt 3)")
new=$(pc "$OUT/r3.pcap" --after "$WITHDRAW_T")
FAILOVER=$("$PY" -c "import json,sys; o=json.loads(sys.argv[1]); n=json.loads(sys.argv[2]); print(round((n['first']-o['last'])*1000,1), round((n['first']-$WITHDRAW_T)*1000,1))" "$old" "$new")
log "failover: $(echo "$FAILOVER" | awk '{print $1}') ms from the last ESP packet through node 2 to the first through node 3 (withdrawal 0.5 s after the kill included); $(echo "$FAILOVER" | awk '{print $2}') ms from the route withdrawal to node 3's first packet"
after_kill=$(pc "$OUT/r3.pcap" --after "$WITHDRAW_T")
[ "$(field "$after_kill" esp)" -gt 500 ] || fail "node 3 did not take over after node 2 was killed"
after_etcd=$(pc "$OUT/r3.pcap" --after "$ETCD_UP_T")
during_etcd=$(pc "$OUT/r3.pcap" --after "$ETCD_DOWN_T" --before "$ETCD_UP_T")
log "ESP through node 3 while etcd was down: $(field "$during_etcd" esp) packets, longest gap $(field "$during_etcd" max_gap) s (a node stops sending when its blocks run out); after etcd came back: $(field "$after_etcd" esp)"
[ "$(field "$after_etcd" esp)" -gt 500 ] || fail "node 3 did not carry the traffic after etcd came back"
fw() { gw_check "$OUT/n3" "s['cluster']['forwarded'][0] >= 1"; }
check "node 3 forwarded the rekey's IKE messages to node 1" fw
check "the cluster view recovers after the etcd restart (node 3)" wait_for 10 gw_check "$OUT/n3" "s['cluster']['store_ok']"
# etcd was down for more than FENCE_AFTER (2 s): node 1 fenced its IKE SA before its
# lease could expire, and resumed it when etcd was back (docs/scale-out.md, "IKE")
resumed() { gw_check "$1" "s['cluster']['resumed'] >= 1 and s['cluster']['fenced'] == 0 and len(est(s)) == 1"; }
check "node 1 fenced its IKE SA while etcd was down and resumed it after" wait_for 10 resumed "$OUT/n1"
log "node 1's view (answers_held: held, left unwritten, longest hold in µs): $(cluster_view "$OUT/n1")"
check "node 2's records expired with its lease (node 3 sees two nodes)" wait_for 10 nodes_seen "$OUT/n3" 2
cluster_view "$OUT/n3" >"$OUT/n3.cluster.json"
"$BIN" status --control "$OUT/n3/ctl.sock" >"$OUT/n3.status.txt"
log "node 3's view: $(cat "$OUT/n3.cluster.json")"
PROP=$("$PY" "$AC_DIR/propagation.py" "$OUT/n1/gateway.log" "$OUT/n2/gateway.log" "$OUT/n3/gateway.log") \
  || fail "no Child SA propagated from node 1 to the others"
log "propagation through etcd, Child SA up on the owner -> installed on another node: $PROP"

# the uniqueness check: every ESP packet the nodes sent, decrypted with the keys they
# exported, (SPI, sequence number, IV) never twice
cat "$OUT"/n*/keys/esp_sa >"$OUT/esp_sa"
log "ESP from the anycast address: peer's capture $(pc "$OUT/peer.pcap" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["esp"])') frames (both directions), router's links $(( $(field "$(pc "$OUT/r1.pcap")" esp) + $(field "$(pc "$OUT/r2.pcap")" esp) + $(field "$(pc "$OUT/r3.pcap")" esp) ))"
"$BIN" decode --keys "$OUT/esp_sa" --json --brief --no-replay-check "$OUT/peer.pcap" >"$OUT/peer.decode.jsonl"
UNIQ=$("$PY" "$AC_DIR/check.py" unique "$OUT/peer.decode.jsonl" --src $ANY --min "$MIN_PACKETS") \
  || { echo "$UNIQ" >&2; fail "uniqueness check"; }
log "ok: uniqueness: $UNIQ"
[ "$("$PY" -c "import json,sys; print(len(json.loads(sys.argv[1])['spis']))" "$UNIQ")" -ge 2 ] \
  || fail "no second SPI in the capture: the rekeyed Child SA did not carry traffic"
log "ok: the rekeyed Child SA carried traffic"

# --- phase A2: the IKE SA's owner dies; another node takes the IKE SA over ------------
ch_ike_ids() { sw "$DP" --list-sas 2>/dev/null | sed -n 's/^peer: \(#[0-9]*\), ESTABLISHED.*/\1/p' | tr '\n' ' '; }
ch_child_ids() { sw "$DP" --list-sas 2>/dev/null | sed -n 's/^ *net: \(#[0-9]*\), reqid.*INSTALLED.*/\1/p' | tr '\n' ' '; }
before=$(ch_ike_ids)
child_before=$(ch_child_ids)
[ -n "$before" ] || fail "charon has no IKE SA before the owner dies"
TAKE_T0=$(now)
stop_proc n1 KILL; log "node 1 (the IKE SA's owner) killed (-9)"
taken() { gw_check "$1" "s['cluster']['taken_over'] == 1 and len(est(s)) == 1"; }
check "node 3 took the IKE SA over" wait_for 15 taken "$OUT/n3"
TAKE_T1=$(now)
TAKEOVER_MS=$("$PY" -c "print(round(($TAKE_T1-$TAKE_T0)*1000))")
log "takeover: node 3 owns the IKE SA $TAKEOVER_MS ms after node 1 was killed (its store lease has a 3 s TTL; status polled every 0.25 s)"
sw "$DP" --rekey --child net >"$DP/rekey2.out" 2>&1 || { cat "$DP/rekey2.out" >&2; fail "charon's Child SA rekey after the takeover"; }
check "ping through the rekeyed Child SA after the takeover" wait_for 10 ping_ok gw-ac-p 198.19.2.1 198.19.1.1
after=$(ch_ike_ids)
child_after=$(ch_child_ids)
log "charon's IKE SA before the takeover: $before, after the Child SA rekey: $after; its Child SA: $child_before -> $child_after"
[ -n "$child_after" ] && [ "$child_before" != "$child_after" ] || fail "charon's Child SA was not rekeyed ($child_before -> $child_after)"
[ "$before" = "$after" ] || fail "charon started a new IKE SA (before: $before, after: $after)"
log "ok: charon kept its IKE SA through the takeover and rekeyed its Child SA with node 3"
sw "$DP" --rekey --ike peer >"$DP/rekey-ike.out" 2>&1 || { cat "$DP/rekey-ike.out" >&2; fail "charon's IKE SA rekey after the takeover"; }
rekeyed_ike() { local n; n=$(ch_ike_ids); [ -n "$n" ] && [ "$n" != "$before" ]; }
check "charon rekeyed its IKE SA with node 3" wait_for 10 rekeyed_ike
check "ping after the IKE SA rekey" wait_for 10 ping_ok gw-ac-p 198.19.2.1 198.19.1.1
check "node 3 has one IKE SA (the rekeyed one)" wait_for 10 gw_check "$OUT/n3" "len(est(s)) == 1"
stop_proc peer

# --- phase B: our gateway as the peer; one SA served by 1, 2 and 3 nodes at once -----------
for k in 1 2 3; do
  if ! alive "n$k"; then
    [ -d "$OUT/n$k" ] && mv "$OUT/n$k" "$OUT/n$k.a"
    start_node $k
  fi
done
check "three nodes again" wait_for 10 nodes_seen "$OUT/n1" 3
no_child_sas() { gw_check "$1" "s['cluster']['child_sas'] == 0"; }
for k in 1 2 3; do check "node $k: charon's Child SAs are gone" wait_for 15 no_child_sas "$OUT/n$k"; done
DQ=$OUT/ours
mkdir -p "$DQ"
write_conf "$DQ/gateway.conf" "$(conn_block ours ours 198.18.9.3 $ANY ours.gw.test anycast.gw.test \
    198.19.3.0/24 198.19.1.0/24 start | sed 's/start_action = start/start_action = start\n        replay_window = 0/')" \
  "$(secret_block ours "$PSK" ours.gw.test)"
route_to 1
start_gw ours gw-ac-q "$DQ" || fail "our peer gateway did not start"
check "our peer has its IKE SA" wait_for 15 gw_established "$DQ" 1
serves() { gw_check "$1" "s['cluster']['child_sas'] == 1 and s['cluster']['replicas'] + len(est(s)) == 1"; }
for k in 1 2 3; do check "node $k serves our peer's Child SA" wait_for 10 serves "$OUT/n$k"; done
check "ping through to our peer" wait_for 5 ping_ok gw-ac-q 198.19.3.1 198.19.1.1
for k in 1 2 3; do capture b-r$k gw-ac-r acr$k 96 "udp port 4500 and src host $ANY"; done
TP=$OUT/throughput.txt; : >"$TP"
STREAMS=16
head -c $((10 * 1024 * 1024)) /dev/urandom >"$OUT/b.bin"
streams() { # TAG BASE [RATE]: $STREAMS TCP streams of 10 MB (RATE MB/s each) from the server to our peer; prints MB/s
  local tag=$1 i pids=() t0 t1 port base=$((5100 + 20 * ${2:-0})) rate=${3:-}
  for i in $(seq 1 $STREAMS); do
    port=$((base + i))
    setsid ip netns exec gw-ac-q "$PY" "$LIB_DIR/tcp.py" serve 198.19.3.1 $port --timeout 120 \
      >"$OUT/$tag.$i.server.json" 2>&1 </dev/null &
    record_pid "tcp-$tag-$i" $! "$(readlink -f "$PY")"
  done
  for i in $(seq 1 $STREAMS); do
    wait_for 5 grep -q listening "$OUT/$tag.$i.server.json" || fail "throughput $tag: server $i"
  done
  t0=$(now)
  for i in $(seq 1 $STREAMS); do
    port=$((base + i))
    ip netns exec gw-ac-l "$PY" "$LIB_DIR/tcp.py" send 198.19.3.1 $port "$OUT/b.bin" --src 198.19.1.1 \
      ${rate:+--rate "$rate"} --timeout 120 >"$OUT/$tag.$i.json" 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || fail "throughput $tag: a stream was not delivered intact"; done
  t1=$(now)
  "$PY" -c "print(round($STREAMS*10*1.048576/($t1-$t0), 1))"
}
round=0
for set in "1" "1 2" "1 2 3"; do
  route_to $set
  n=$(wc -w <<<"$set")
  round=$((round + 1))
  # a short unmeasured round first: each node of the set leases its block (the first
  # packets through a node that gave its block up are dropped until it has one, and a
  # dropped SYN costs TCP a second)
  streams "w$n" $((round * 3)) >/dev/null
  T_START=$(now)
  mbs=$(streams "b$n" $((round * 3 + 1)))
  T_END=$(now)
  if [ "$n" -gt 1 ]; then
    # the same nodes at once again, paced (16 x 1.5 MB/s), with a full capture on the
    # peer's link that keeps up, for the uniqueness check
    capture b-peer$n gw-ac-q ac0 0 "udp port 4500"
    streams "u$n" $((round * 3 + 2)) 1.5 >/dev/null
    cap_done b-peer$n
  fi
  per=""
  for k in $set; do
    c=$(field "$(pc "$OUT/b-r$k.pcap" --after "$T_START" --before "$T_END")" esp)
    per="$per node$k=$c"
    [ "$c" -gt 100 ] || fail "one SA over $n nodes: node $k carried no traffic ($per)"
  done
  echo "nodes=$n mb_per_s=$mbs esp_packets:$per" >>"$TP"
  log "ok: one SA served by $n node(s) at once: $mbs MB/s ($STREAMS TCP streams of 10 MB; ESP sent:$per)"
done
for k in 1 2 3; do cap_done b-r$k; done
# nodes sending on one SA at the same time: still no (SPI, seq) or (SPI, IV) twice
cat "$OUT"/n*/keys/esp_sa >"$OUT/esp_sa.b"
for n in 2 3; do
  "$BIN" decode --keys "$OUT/esp_sa.b" --json --brief --no-replay-check "$OUT/b-peer$n.pcap" >"$OUT/b-peer$n.jsonl"
  U=$("$PY" "$AC_DIR/check.py" unique "$OUT/b-peer$n.jsonl" --src $ANY --min 10000) \
    || { echo "$U" >&2; fail "uniqueness with $n nodes sending at once"; }
  log "ok: uniqueness with $n nodes sending on one SA at once: $U"
done
for k in 1 2 3; do gw_status "$OUT/n$k" | "$PY" -c 'import json,sys; c=json.load(sys.stdin)["cluster"]; print("node", c["node"], "blocks leased", c["blocks_leased"], "forwarded", c["forwarded"])' >&2; done
log "PASS: anycast cluster (results in $OUT)"
