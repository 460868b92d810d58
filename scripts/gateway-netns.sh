#!/usr/bin/env bash
# gateway-netns.sh - network-namespace tests of the VPN gateway (`ipsec gateway`)
# against itself and against strongSwan's charon (kernel-libipsec: ESP in user space
# over a TUN device, as in ../../shared/interop). Run as root; CI runs it after the
# interop step. The cases (docs/gateway.md, "Namespace tests"):
#   1. our gateway <-> charon, each side initiating: ping and a 20 MB TCP transfer
#      (SHA-256 checked) through the TUN devices, Child SA and IKE SA rekeys during it
#   2. the same between two of our gateways
#   3. one gateway serving four peers in their own namespaces (a charon, two of ours,
#      and a charon presenting another peer's PSK, which must be refused)
#   4. kill -9 of two peers (a charon, one of ours): DPD removes their SAs and routes,
#      the peers restart and reconnect
#   5. 20 MB TCP throughput through our gateway pair and through a charon pair
#      (results in $OUT/throughput.txt)
#   6. `ipsec load` handshakes against our gateway and against charon: responder CPU
#      time per handshake (results in $OUT/load.txt)
#   7. certificates: our gateway with auth = pubkey and swanctl's credential directories,
#      charon initiating with its certificate; pings both ways
#   8-12. remote access (gateway-netns/roadwarrior.sh): charon road warriors with
#      EAP-MSCHAPv2 and virtual IPs (one with a 20 MB TCP transfer; three at once, and
#      a wrong password), MOBIKE during a transfer, `ipsec connect` against a charon
#      gateway with a pool, redirect between two of our gateways
#
# Environment: OUT (artifacts, default /tmp/gateway-netns), CASES (default "1 2 ... 12"),
# BIN (an already built `ipsec`; otherwise `cargo build --release -p ipsec-cli`),
# GW_LOG (RUST_LOG for the gateways, default info), LOAD_COUNT (500), LOAD_CONCURRENCY (20).
# Fails loudly; never skips.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LIB_DIR=$HERE/gateway-netns
export OUT=${OUT:-/tmp/gateway-netns}
# shellcheck source=gateway-netns/lib.sh
. "$LIB_DIR/lib.sh"

PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
PSK_A=gw-netns-psk-a-0123456789abcdef
PAYLOAD=$OUT/payload.bin          # 20 MB of random bytes, made once per run
PAYLOAD_MB=20
RATE=${RATE:-1.6}                 # MB/s for the transfers that must span rekeys
LOAD_COUNT=${LOAD_COUNT:-500}
LOAD_CONCURRENCY=${LOAD_CONCURRENCY:-20}

# ------------------------------------------------------------------------------------
# helpers used by the cases
# ------------------------------------------------------------------------------------
fail() { log "FAIL: $*"; exit 1; }
# check DESCRIPTION CMD...: run CMD, fail the case with DESCRIPTION if it fails
check() { local what=$1; shift; if "$@"; then log "ok: $what"; else fail "$what"; fi; }

# pair NSA NSB N: veth NSA 198.18.N.1/24 <-> NSB 198.18.N.2/24; inner addresses
# 198.19.1.1 (NSA) and 198.19.2.1 (NSB); selectors 198.19.1.0/24 <=> 198.19.2.0/24
pair() {
  mk_ns "$1"; mk_ns "$2"
  link_ns "$1" "$1-0" "198.18.$3.1/24" "$2" "$2-0" "198.18.$3.2/24"
  inner_addr "$1" 198.19.1.1
  inner_addr "$2" 198.19.2.1
}

# gw_up NAME NS DIR: our gateway, waiting for nothing but its control socket
gw_up() { start_gw "$@" || fail "gateway $1 did not start"; }
ch_up() { charon_conf "$3"; mv "$3/swanctl.conf.new" "$3/swanctl/swanctl.conf"; start_charon "$1" "$2" "$3" || fail "charon $1 did not start"; }

# gw_established DIR N: N ESTABLISHED IKE SAs, each with a Child SA
gw_established() { gw_check "$1" "len(est(s)) == $2 and all(len(i['children']) >= 1 for i in est(s))"; }
# ch_established DIR IKE-NAME: charon has that IKE SA ESTABLISHED with an INSTALLED child
ch_established() {
  local l; l=$(sw "$1" --list-sas --ike "$2" 2>/dev/null) || return 1
  grep -q ESTABLISHED <<<"$l" && grep -q INSTALLED <<<"$l"
}
ch_count() { sw "$1" --list-sas 2>/dev/null | grep -c ': #[0-9]*, ESTABLISHED' || true; }

# tun_route NS DST DEV: the route to DST (from NS's inner address) goes out through DEV
tun_route() {
  local r; r=$(ip -n "$1" route get "$2" | head -n 1)
  log "$1: route get $2: $r"
  grep -q " dev $3 " <<<"$r"
}
# ping_ok NS SRC DST: three echoes through the tunnel
ping_ok() { ip netns exec "$1" ping -q -c 3 -i 0.2 -W 2 -I "$2" "$3" >/dev/null; }

# sa_ids KIND DIR: "IKE SAs | Child SAs" as identifiers that change when they are
# rekeyed (ours: SPIs from the status; charon: the unique ids of swanctl --list-sas)
sa_ids() {
  if [ "$1" = charon ]; then
    sw "$2" --list-sas | "$PY" -c '
import re, sys
t = sys.stdin.read()
print(" ".join(re.findall(r"^\w+: (#\d+), ESTABLISHED", t, re.M)), "|",
      " ".join(re.findall(r"^  +\w+: (#\d+), reqid \d+, INSTALLED", t, re.M)))'
    return
  fi
  gw_status "$2" | "$PY" -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(sorted(i["local_spi"] for i in s["ike_sas"])), "|",
      " ".join(sorted(c["spi_in"] for i in s["ike_sas"] for c in i["children"])))'
}

# transfer TAG SRV_NS SRV_ADDR CLI_NS CLI_ADDR [RATE]: 20 MB over TCP, SHA-256 checked;
# the client's JSON in $CASE_DIR/TAG.json; prints MB/s
transfer() {
  local tag=$1 sns=$2 saddr=$3 cns=$4 caddr=$5 rate=${6:-} port=5001 pid i
  setsid ip netns exec "$sns" "$PY" "$LIB_DIR/tcp.py" serve "$saddr" $port --timeout 90 \
    >"$CASE_DIR/$tag.server.json" 2>&1 </dev/null &
  pid=$!
  record_pid "tcp-$tag" $pid "$(readlink -f "$PY")"
  for i in $(seq 1 40); do grep -q listening "$CASE_DIR/$tag.server.json" 2>/dev/null && break; sleep 0.1; done
  if ! ip netns exec "$cns" "$PY" "$LIB_DIR/tcp.py" send "$saddr" $port "$PAYLOAD" --src "$caddr" \
      ${rate:+--rate "$rate"} --timeout 90 >"$CASE_DIR/$tag.json" 2>&1; then
    cat "$CASE_DIR/$tag.json" "$CASE_DIR/$tag.server.json" >&2
    fail "transfer $tag ($caddr -> $saddr): not delivered intact"
  fi
  wait $pid 2>/dev/null || true
  rm -f "$OUT/pids/tcp-$tag.pid"
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["mb_per_s"])' "$CASE_DIR/$tag.json"
}

# ------------------------------------------------------------------------------------
# case 1 and 2: two peers, ping, a 20 MB transfer spanning rekeys
# ------------------------------------------------------------------------------------
# The transfer runs at $RATE MB/s (about 12 s for 20 MB); the rekeying side has
# child rekey_time 5 s and IKE rekey_time 8 s, the other side 1 h / 4 h, so the rekeys
# are started by the side under test (first the initiator, then the responder).
two_peer_run() { # TAG KIND_A KIND_B INITIATOR(a|b) REKEYER(a|b)
  local tag=$1 ka=$2 kb=$3 init=$4 rekeyer=$5
  local da=$CASE_DIR/$tag-a db=$CASE_DIR/$tag-b
  local ra=(14400 3600) rb=(14400 3600) sa sb
  [ "$rekeyer" = a ] && ra=(8 5) || rb=(8 5)
  sa=$([ "$init" = a ] && echo start || echo none)
  sb=$([ "$init" = b ] && echo start || echo none)
  log "--- $tag: a=$ka b=$kb, $init initiates, $rekeyer rekeys (IKE ${ra[0]}/${rb[0]} s, child ${ra[1]}/${rb[1]} s)"
  pair gw-a gw-b 1
  mkdir -p "$da/swanctl" "$db/swanctl"
  local fa fb
  fa=$([ "$ka" = ours ] && echo "$da/gateway.conf" || echo "$da/swanctl.conf.new")
  fb=$([ "$kb" = ours ] && echo "$db/gateway.conf" || echo "$db/swanctl.conf.new")
  write_conf "$fa" "$(conn_block "$ka" peer 198.18.1.1 198.18.1.2 a.gw.test b.gw.test \
      198.19.1.0/24 198.19.2.0/24 "$sa" "${ra[@]}")" "$(secret_block peer "$PSK_A")"
  write_conf "$fb" "$(conn_block "$kb" peer 198.18.1.2 198.18.1.1 b.gw.test a.gw.test \
      198.19.2.0/24 198.19.1.0/24 "$sb" "${rb[@]}")" "$(secret_block peer "$PSK_A")"
  # responder first
  local first=b second=a
  [ "$init" = b ] && { first=a; second=b; }
  for side in $first $second; do
    local k d ns
    if [ $side = a ]; then k=$ka d=$da ns=gw-a; else k=$kb d=$db ns=gw-b; fi
    if [ "$k" = ours ]; then gw_up "$tag-$side" $ns "$d"; else ch_up "$tag-$side" $ns "$d"; fi
  done
  # a charon initiator is told to initiate; ours has start_action = start
  local di; di=$([ "$init" = a ] && echo "$da" || echo "$db")
  local ki; ki=$([ "$init" = a ] && echo "$ka" || echo "$kb")
  if [ "$ki" = charon ]; then
    sw "$di" --initiate --ike peer --child net --timeout 15 >"$di/initiate.out" 2>&1 \
      || { cat "$di/initiate.out" >&2; fail "$tag: charon's initiate failed"; }
  fi
  for side in a b; do
    local k d; if [ $side = a ]; then k=$ka d=$da; else k=$kb d=$db; fi
    if [ "$k" = ours ]; then check "$tag: $side has the IKE SA and Child SA" wait_for 15 gw_established "$d" 1
    else check "$tag: $side (charon) has the IKE SA and Child SA" wait_for 15 ch_established "$d" peer; fi
  done
  check "$tag: ping a -> b through the tunnel" wait_for 5 ping_ok gw-a 198.19.1.1 198.19.2.1
  # the inner addresses are reachable only through the TUN devices (gwtun0: ours,
  # ipsec0: charon's kernel-libipsec)
  local dev_a dev_b
  dev_a=$([ "$ka" = ours ] && echo gwtun0 || echo ipsec0)
  dev_b=$([ "$kb" = ours ] && echo gwtun0 || echo ipsec0)
  check "$tag: a routes to b's selector through $dev_a" tun_route gw-a 198.19.2.1 $dev_a
  check "$tag: b routes to a's selector through $dev_b" tun_route gw-b 198.19.1.1 $dev_b
  check "$tag: ping b -> a through the tunnel" ping_ok gw-b 198.19.2.1 198.19.1.1
  # rekeys are checked on our side if there is one (the rekeying side if it is ours)
  local dr kr
  if [ "$rekeyer" = a ]; then dr=$da kr=$ka; else dr=$db kr=$kb; fi
  if [ "$kr" != ours ]; then
    if [ "$rekeyer" = a ] && [ "$kb" = ours ]; then dr=$db kr=ours; fi
    if [ "$rekeyer" = b ] && [ "$ka" = ours ]; then dr=$da kr=ours; fi
  fi
  local before after mbs
  before=$(sa_ids "$kr" "$dr")
  # the transfer goes from the initiator's side to the responder's
  if [ "$init" = a ]; then mbs=$(transfer "$tag" gw-b 198.19.2.1 gw-a 198.19.1.1 "$RATE")
  else mbs=$(transfer "$tag" gw-a 198.19.1.1 gw-b 198.19.2.1 "$RATE"); fi
  after=$(sa_ids "$kr" "$dr")
  log "$tag: 20 MB delivered intact at $mbs MB/s; SAs before [$before] after [$after]"
  [ "${before%|*}" != "${after%|*}" ] || fail "$tag: no IKE SA rekey during the transfer ($before / $after)"
  [ "${before#*|}" != "${after#*|}" ] || fail "$tag: no Child SA rekey during the transfer ($before / $after)"
  log "ok: $tag: IKE SA and Child SA rekeyed during the transfer"
  if [ "$kr" = ours ]; then
    gw_status "$dr" | "$PY" -c 'import json,sys; print("counters:", json.dumps(json.load(sys.stdin)["counters"], sort_keys=True))' >&2
    check "$tag: still one IKE SA with its Child SA after the rekeys" gw_established "$dr" 1
    if [ "$ka" = ours ] && [ "$kb" = ours ]; then
      check "$tag: the other side too" gw_established "$([ "$dr" = "$da" ] && echo "$db" || echo "$da")" 1
    fi
  else
    check "$tag: still one IKE SA with its Child SA after the rekeys" test "$(ch_count "$dr")" -eq 1
  fi
  check "$tag: ping a -> b after the rekeys" ping_ok gw-a 198.19.1.1 198.19.2.1
  check "$tag: ping b -> a after the rekeys" ping_ok gw-b 198.19.2.1 198.19.1.1
  stop_all; del_all_ns
}

case_1() {
  two_peer_run 1a-ours-initiates ours charon a a
  two_peer_run 1b-charon-initiates ours charon b b
}
case_selftest() {
  two_peer_run selftest charon charon a b
}
case_2() {
  # one run: a initiates, b (the responder) starts the rekeys
  two_peer_run 2-ours-ours ours ours a b
}

# ------------------------------------------------------------------------------------
# cases 3 and 4: a hub serving peers in their own namespaces
# ------------------------------------------------------------------------------------
# hub: gw-hub, inner 198.19.0.1, selector 198.19.0.0/24; peer i: gw-pi, outer
# 198.18.1i.2 (hub side 198.18.1i.1), inner 198.19.1i.1, selector 198.19.1i.0/24,
# identity pi.gw.test, PSK psk-i.
hub_psk() { printf 'gw-netns-psk-peer%s-0123456789' "$1"; }
# hub_setup DPD PEER-SPECS...: PEER-SPEC is i:kind[:psk-of-j]
hub_setup() {
  local dpd=$1; shift
  local conns="" secrets="" spec i kind pskof
  mk_ns gw-hub; inner_addr gw-hub 198.19.0.1
  for spec in "$@"; do
    IFS=: read -r i kind pskof <<<"$spec"
    mk_ns "gw-p$i"
    link_ns gw-hub "gw-h$i" "198.18.1$i.1/24" "gw-p$i" "gw-p$i-0" "198.18.1$i.2/24"
    inner_addr "gw-p$i" "198.19.1$i.1"
    conns+=$(conn_block ours "p$i" "198.18.1$i.1" "198.18.1$i.2" hub.gw.test "p$i.gw.test" \
      198.19.0.0/24 "198.19.1$i.0/24" none 14400 3600 "$dpd")$'\n'
    secrets+=$(secret_block "p$i" "$(hub_psk "$i")" "p$i.gw.test")$'\n'
  done
  write_conf "$CASE_DIR/hub/gateway.conf" "$conns" "$secrets"
  # with DPD, a short retransmission schedule (0.5 s, 1 s, 2 s): a dead peer is declared
  # so 2 s + 3.5 s after its last packet instead of 2 s + 63 s
  if [ "$dpd" != 0 ]; then gw_up hub gw-hub "$CASE_DIR/hub" --retransmit-timeout 0.5 --retransmit-tries 3
  else gw_up hub gw-hub "$CASE_DIR/hub"; fi
  for spec in "$@"; do
    IFS=: read -r i kind pskof <<<"$spec"
    peer_start "$i" "$kind" "${pskof:-$i}" "$dpd"
  done
}
# peer_start I KIND PSK-OF DPD: (re)starts peer i; a charon peer is told to initiate
peer_start() {
  local i=$1 kind=$2 pskof=$3 dpd=$4 d=$CASE_DIR/p$1 f
  mkdir -p "$d/swanctl"
  f=$([ "$kind" = ours ] && echo "$d/gateway.conf" || echo "$d/swanctl.conf.new")
  write_conf "$f" "$(conn_block "$kind" hub "198.18.1$i.2" "198.18.1$i.1" "p$i.gw.test" hub.gw.test \
      "198.19.1$i.0/24" 198.19.0.0/24 start 14400 3600 "$dpd")" "$(secret_block hub "$(hub_psk "$pskof")")"
  if [ "$kind" = ours ]; then gw_up "p$i" "gw-p$i" "$d"
  else
    rm -f "$d/run/charon.pid"
    ch_up "p$i" "gw-p$i" "$d"
    sw "$d" --initiate --ike hub --child net --timeout 10 >"$d/initiate.out" 2>&1 || true
  fi
}
peer_established() { # i kind
  if [ "$2" = ours ]; then gw_established "$CASE_DIR/p$1" 1; else ch_established "$CASE_DIR/p$1" hub; fi
}
hub_has() { # i: the hub has an ESTABLISHED IKE SA with peer i, with a Child SA, and a route
  gw_check "$CASE_DIR/hub" "len([x for x in ike(s, remote_id='p$1.gw.test') if x['state'] == 'ESTABLISHED' and x['children']]) == 1" \
    && ip -n gw-hub route show table all | grep -q "^198.19.1$1.0/24 "
}
hub_lacks() { # i: no IKE SA of peer i at the hub, and no route to its selector
  gw_check "$CASE_DIR/hub" "len(ike(s, remote_id='p$1.gw.test')) == 0 and len(ike(s, remote='198.18.1$1.2')) == 0" \
    && ! ip -n gw-hub route show table all | grep -q "^198.19.1$1.0/24 "
}

case_3() {
  # p1 charon, p2 and p3 ours, p4 a charon with p1's PSK (its own identity p4.gw.test)
  hub_setup 0 1:charon 2:ours 3:ours 4:charon:1
  local i
  for i in 1 2 3; do
    check "3: the hub has peer $i's IKE SA, Child SA and route" wait_for 15 hub_has $i
  done
  check "3: peer 1 (charon) established" peer_established 1 charon
  check "3: peer 2 (ours) established" peer_established 2 ours
  check "3: peer 3 (ours) established" peer_established 3 ours
  for i in 1 2 3; do
    check "3: ping peer $i -> hub" ping_ok "gw-p$i" "198.19.1$i.1" 198.19.0.1
    check "3: ping hub -> peer $i" ping_ok gw-hub 198.19.0.1 "198.19.1$i.1"
  done
  # the three at once
  local pids=() rc=0
  for i in 1 2 3; do ip netns exec "gw-p$i" ping -q -c 20 -i 0.05 -W 2 -I "198.19.1$i.1" 198.19.0.1 >"$CASE_DIR/ping$i.out" 2>&1 & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  [ $rc -eq 0 ] || { cat "$CASE_DIR"/ping?.out; fail "3: concurrent pings from the three peers"; }
  log "ok: 3: concurrent pings from the three peers"
  # the impostor: refused at the hub, no SA anywhere
  sw "$CASE_DIR/p4" --initiate --ike hub --child net --timeout 10 >"$CASE_DIR/p4/initiate2.out" 2>&1 || true
  check "3: the hub counts failed authentications (peer 4 with peer 1's PSK)" \
    wait_for 10 gw_check "$CASE_DIR/hub" "sum(v for k, v in s['counters']['handshake_failures'].items() if k.startswith('authentication_failed')) >= 1"
  check "3: the hub has no SA and no route for peer 4" hub_lacks 4
  check "3: peer 4 (charon) has no IKE SA" test "$(ch_count "$CASE_DIR/p4")" -eq 0
  grep -h 'AUTHENTICATION_FAILED\|authentication.*fail' "$CASE_DIR/p4/charon.log" | tail -n 2 || true
  check "3: peer 4 cannot reach the hub" bash -c "! ip netns exec gw-p4 ping -q -c 1 -W 1 -I 198.19.14.1 198.19.0.1 >/dev/null 2>&1"
  check "3: still three IKE SAs at the hub" gw_established "$CASE_DIR/hub" 3
  gw_status "$CASE_DIR/hub" | "$PY" -c 'import json,sys; print("hub counters:", json.dumps(json.load(sys.stdin)["counters"], sort_keys=True))'
  stop_all; del_all_ns
}

case_4() {
  hub_setup 2 1:charon 2:ours
  check "4: the hub has peer 1's SAs and route" wait_for 15 hub_has 1
  check "4: the hub has peer 2's SAs and route" wait_for 15 hub_has 2
  ip -n gw-hub route show table all | grep '^198\.19\.' | sed 's/^/    route: /'
  log "kill -9 of peer 1 (charon, pid $(pid_of p1)) and peer 2 (ours, pid $(pid_of p2))"
  stop_proc p1 KILL; stop_proc p2 KILL
  local t0=$SECONDS
  check "4: DPD removed peer 1's SAs and route at the hub" wait_for 30 hub_lacks 1
  check "4: DPD removed peer 2's SAs and route at the hub" wait_for 10 hub_lacks 2
  log "4: both peers cleared $((SECONDS - t0)) s after the kill"
  check "4: the hub closed both IKE SAs as timed out (DPD)" \
    gw_check "$CASE_DIR/hub" "s['counters']['ike_closed'].get('timeout', 0) == 2"
  ip -n gw-hub route show table all | grep '^198\.19\.' | sed 's/^/    route: /' || true
  peer_start 1 charon 1 2
  peer_start 2 ours 2 2
  check "4: peer 1 reconnected" wait_for 15 hub_has 1
  check "4: peer 2 reconnected" wait_for 15 hub_has 2
  check "4: ping peer 1 -> hub after the restart" wait_for 5 ping_ok gw-p1 198.19.11.1 198.19.0.1
  check "4: ping peer 2 -> hub after the restart" wait_for 5 ping_ok gw-p2 198.19.12.1 198.19.0.1
  check "4: exactly two IKE SAs at the hub" gw_established "$CASE_DIR/hub" 2
  stop_all; del_all_ns
}

# ------------------------------------------------------------------------------------
# case 5: throughput, our pair against a charon pair
# ------------------------------------------------------------------------------------
case_5() {
  local ours theirs
  two_up() { # KIND NS_A NS_B N DIR
    local k=$1 a=$2 b=$3 n=$4 d=$5 fa fb
    pair "$a" "$b" "$n"
    mkdir -p "$d-a/swanctl" "$d-b/swanctl"
    fa=$([ "$k" = ours ] && echo "$d-a/gateway.conf" || echo "$d-a/swanctl.conf.new")
    fb=$([ "$k" = ours ] && echo "$d-b/gateway.conf" || echo "$d-b/swanctl.conf.new")
    write_conf "$fb" "$(conn_block "$k" peer "198.18.$n.2" "198.18.$n.1" b.gw.test a.gw.test \
        198.19.2.0/24 198.19.1.0/24 none)" "$(secret_block peer "$PSK_A")"
    write_conf "$fa" "$(conn_block "$k" peer "198.18.$n.1" "198.18.$n.2" a.gw.test b.gw.test \
        198.19.1.0/24 198.19.2.0/24 start)" "$(secret_block peer "$PSK_A")"
    if [ "$k" = ours ]; then
      gw_up "5-$k-b" "$b" "$d-b"; gw_up "5-$k-a" "$a" "$d-a"
      check "5: our pair established" wait_for 15 gw_established "$d-a" 1
    else
      ch_up "5-$k-b" "$b" "$d-b"; ch_up "5-$k-a" "$a" "$d-a"
      sw "$d-a" --initiate --ike peer --child net --timeout 15 >/dev/null || fail "5: charon initiate"
      check "5: charon pair established" ch_established "$d-a" peer
    fi
    check "5: ping through the $k pair" wait_for 5 ping_ok "$a" 198.19.1.1 198.19.2.1
  }
  two_up ours gw-a gw-b 1 "$CASE_DIR/ours"
  two_up charon gw-c gw-d 5 "$CASE_DIR/charon"
  ours=$(transfer 5-ours gw-b 198.19.2.1 gw-a 198.19.1.1)
  theirs=$(transfer 5-charon gw-d 198.19.2.1 gw-c 198.19.1.1)
  {
    echo "# 20 MB TCP transfer through the tunnel (python3 sockets, one stream), $(date -u +%FT%TZ), $(nproc) CPUs"
    printf 'ours    %8s MB/s\n' "$ours"
    printf 'charon  %8s MB/s  (strongSwan %s, kernel-libipsec)\n' "$theirs" "$(charon_version)"
    printf 'ratio   %8s (ours / charon; target >= 2)\n' "$("$PY" -c "print(round($ours / $theirs, 2))")"
  } >"$OUT/throughput.txt"
  cat "$OUT/throughput.txt"
  stop_all; del_all_ns
}
charon_version() { dpkg-query -W -f '${Version}' strongswan-charon 2>/dev/null || echo '?'; }

# ------------------------------------------------------------------------------------
# case 6: handshake load, our gateway against charon as responder
# ------------------------------------------------------------------------------------
load_against() { # KIND: prints "cpu_ms_per_handshake handshakes rate"
  local k=$1 d=$CASE_DIR/$1 pid t0 t1 hz
  mkdir -p "$d/swanctl"
  printf '%s' "$PSK_A" >"$CASE_DIR/load.psk"
  local f; f=$([ "$k" = ours ] && echo "$d/gateway.conf" || echo "$d/swanctl.conf.new")
  write_conf "$f" "$(conn_block "$k" load 198.18.6.1 %any load-gw.test %any \
      198.19.0.0/24 10.99.0.0/16 none)" "$(secret_block load "$PSK_A")"
  if [ "$k" = ours ]; then GW_LOG=${GW_LOG_LOAD:-warn} gw_up "6-$k" gw-lr "$d"
  else CHARON_LOG_IKE=0 ch_up "6-$k" gw-lr "$d"; fi
  pid=$(pid_of "6-$k")
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid")
  ip netns exec gw-lc "$BIN" load --remote 198.18.6.1 --count "$LOAD_COUNT" \
     --concurrency "$LOAD_CONCURRENCY" --psk-file "$CASE_DIR/load.psk" \
     --id-format 'load-{n}.example' --ike "${IKE_PROPOSAL:-aes128gcm16-prfsha256-x25519}" \
     --esp "${ESP_PROPOSAL:-aes128gcm16}" --local-ts 10.99.0.0/16 --remote-ts 198.19.0.0/24 --json >"$d/load.json" 2>"$d/load.err" \
     || { cat "$d/load.json" "$d/load.err" >&2; fail "6: ipsec load against $k failed"; }
  t1=$(cpu_ticks "$pid")
  "$PY" - "$d/load.json" "$LOAD_COUNT" "$t0" "$t1" "$hz" <<'EOP' || fail "6: not all handshakes against $k succeeded"
import json, sys
path, n, t0, t1, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
txt = open(path).read().strip().splitlines()
d = json.loads(txt[-1])
ok, failed = d.get("handshakes"), d.get("failed")
ms = (t1 - t0) * 1000 / hz / n
print(f"{ms:7.3f} ms CPU per handshake  ({ok} handshakes, {failed} failed, {d.get('rate', 0):.0f}/s at the client)")
sys.exit(0 if ok == n and not failed else 1)
EOP
  stop_proc "6-$k"
}
case_6() {
  mk_ns gw-lc; mk_ns gw-lr
  link_ns gw-lc gw-lc-0 198.18.6.2/24 gw-lr gw-lr-0 198.18.6.1/24
  inner_addr gw-lr 198.19.0.1
  local ours theirs
  ours=$(load_against ours)
  log "6: ours: $ours"
  theirs=$(load_against charon)
  log "6: charon: $theirs"
  {
    echo "# ipsec load: $LOAD_COUNT handshakes, concurrency $LOAD_CONCURRENCY, ${IKE_PROPOSAL:-aes128gcm16-prfsha256-x25519} / ${ESP_PROPOSAL:-aes128gcm16}; responder CPU (utime+stime), $(date -u +%FT%TZ)"
    echo "# CPU: the responder's utime+stime over the run (handshakes and the deletes after them), clock ticks of 1/$(getconf CLK_TCK) s"
    echo "ours    $ours"
    echo "charon  $theirs  (strongSwan $(charon_version))"
    printf 'ratio   %s (charon CPU per handshake / ours)\n' "$("$PY" -c "a=float('$ours'.split()[0]); b=float('$theirs'.split()[0]); print(round(b / a, 2) if a else 'inf')")"
  } >"$OUT/load.txt"
  cat "$OUT/load.txt"
  stop_all; del_all_ns
}

# ------------------------------------------------------------------------------------
# case 7: certificates (auth = pubkey) between our gateway and charon
# ------------------------------------------------------------------------------------
# Certificates from strongSwan's pki (scripts/interop-certs.sh: root -> intermediate ->
# end entities) in swanctl's directories beside each swanctl.conf: ours ECDSA P-256 in
# x509/ + ecdsa/, charon's Ed25519 in x509/ + pkcs8/, root and intermediate in x509ca/.
# Our gateway has no local id (it is the certificate's subject DN) and no remote id
# (any identity the certificate proves); charon requires our DN and initiates.
certs_side() { # DIR end-entity keydir
  mkdir -p "$1/x509" "$1/x509ca" "$1/$3"
  cp "$OUT/pki/$2.pem" "$1/x509/"; cp "$OUT/pki/$2.key" "$1/$3/"
  cp "$OUT/pki/root.pem" "$OUT/pki/inter.pem" "$1/x509ca/"
}
case_7() {
  local da=$CASE_DIR/a db=$CASE_DIR/b dn="C=CH, O=ipsec-rs interop, CN=a.ipsec.test"
  "$ROOT/scripts/interop-certs.sh" "$OUT/pki" >/dev/null
  pair gw-a gw-b 1
  mkdir -p "$da" "$db/swanctl"
  certs_side "$da" a-p256 ecdsa
  certs_side "$db/swanctl" b-ed pkcs8
  CONN_AUTH=pubkey CONN_CERT=a-p256.pem write_conf "$da/gateway.conf" \
    "$(CONN_AUTH=pubkey CONN_CERT=a-p256.pem conn_block ours peer 198.18.1.1 198.18.1.2 "" "" \
        198.19.1.0/24 198.19.2.0/24 none)" ""
  write_conf "$db/swanctl.conf.new" \
    "$(CONN_AUTH=pubkey CONN_CERT=b-ed.pem conn_block charon peer 198.18.1.2 198.18.1.1 b.ipsec.test "$dn" \
        198.19.2.0/24 198.19.1.0/24 none)" ""
  gw_up 7-a gw-a "$da"
  ch_up 7-b gw-b "$db"
  sw "$db" --initiate --ike peer --child net --timeout 15 >"$db/initiate.out" 2>&1 \
    || { cat "$db/initiate.out" >&2; fail "7: charon's initiate failed"; }
  check "7: our gateway has the IKE SA and Child SA" wait_for 15 gw_established "$da" 1
  check "7: charon has the IKE SA and Child SA" ch_established "$db" peer
  check "7: ipsec status names both sides as their certificates do" gw_check "$da" \
    "est(s)[0]['local_id'] == '$dn' and est(s)[0]['remote_id'] == '@b.ipsec.test'"
  check "7: charon verified our ECDSA signature" grep -qE "authentication of '$dn' with ECDSA_WITH_SHA256" "$db/charon.log"
  check "7: ping b -> a through the tunnel" wait_for 5 ping_ok gw-b 198.19.2.1 198.19.1.1
  check "7: ping a -> b through the tunnel" ping_ok gw-a 198.19.1.1 198.19.2.1
  stop_all; del_all_ns
}

# cases 8-12: remote access (EAP, virtual IPs, MOBIKE, redirect)
# shellcheck source=gateway-netns/roadwarrior.sh
. "$LIB_DIR/roadwarrior.sh"

# ------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------
declare -A TITLES=(
  [selftest]="rig self-test: charon <-> charon, ping, 20 MB TCP with rekeys"
  [1]="our gateway <-> charon, each side initiating: ping, 20 MB TCP with rekeys"
  [2]="our gateway <-> our gateway: ping, 20 MB TCP with rekeys"
  [3]="one gateway, three peers (charon + ours), a peer with another's PSK refused"
  [4]="kill -9 of peers: DPD clears SAs and routes, peers reconnect"
  [5]="throughput: our gateway pair vs charon pair"
  [6]="ipsec load: CPU per handshake, our gateway vs charon"
  [7]="certificates: our gateway (auth = pubkey, swanctl directories) <-> charon initiating"
  [8]="road warrior: charon with EAP-MSCHAPv2 gets a virtual IP from our gateway; ping, 20 MB TCP"
  [9]="road warriors: three charon clients get distinct addresses, a wrong password fails"
  [10]="MOBIKE: the client's address moves during a 20 MB TCP transfer"
  [11]="ipsec connect, then our gateway, as EAP-MSCHAPv2 road warriors with a virtual IP against a charon gateway with a pool"
  [12]="redirect: our gateway sends an established charon client, then our ipsec connect in IKE_AUTH, to our second gateway"
)
declare -A TIMEOUTS=([selftest]=60 [1]=100 [2]=60 [3]=60 [4]=90 [5]=90 [6]=180 [7]=60 [8]=60 [9]=90 [10]=60 [11]=60 [12]=60)

if [ "${1:-}" = --one-case ]; then     # internal: one case in its own process (timeout)
  CASE_DIR=$OUT/case$2
  set -E
  trap 'log "FAIL: command failed (rc $?) at line $LINENO: $BASH_COMMAND"' ERR
  "case_$2"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
mkdir -p "$OUT"
cleanup() { stop_all; del_all_ns; }
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup

if [ ! -x /usr/lib/ipsec/charon ] || ! command -v swanctl >/dev/null 2>&1; then
  die "strongSwan is not installed (charon, swanctl): see .ci/run"
fi
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p ipsec-cli)
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/ipsec
fi
BIN=$(readlink -f "$BIN")
export BIN
[ -x "$BIN" ] || die "no ipsec binary at $BIN"
head -c $((PAYLOAD_MB * 1000 * 1000)) /dev/urandom >"$PAYLOAD"
rm -f "$OUT/throughput.txt" "$OUT/load.txt"     # only this run's results are printed

pass=(); failed=()
for n in ${CASES:-1 2 3 4 5 6 7 8 9 10 11 12}; do
  CASE_DIR=$OUT/case$n
  rm -rf "$CASE_DIR"; mkdir -p "$CASE_DIR"
  echo
  log "=== case $n: ${TITLES[$n]}"
  t0=$SECONDS
  set +e
  timeout -k 5 "${TIMEOUTS[$n]}" bash "$0" --one-case "$n" 2>&1 | tee "$CASE_DIR/output.log"
  rc=${PIPESTATUS[0]}
  set -e
  cleanup
  if [ "$rc" -eq 0 ]; then
    pass+=("$n"); echo "=== case $n: ${TITLES[$n]}: PASS ($((SECONDS - t0)) s)"
  else
    failed+=("$n")
    [ "$rc" -eq 124 ] && log "case $n timed out after ${TIMEOUTS[$n]} s"
    for f in $(find "$CASE_DIR" -name gateway.log -o -name charon.log | sort); do
      echo "----- $f (last 40 lines)"; tail -n 40 "$f"
    done
    echo "=== case $n: ${TITLES[$n]}: FAIL (rc $rc, $((SECONDS - t0)) s; logs in $CASE_DIR)"
  fi
done
echo
for f in "$OUT/throughput.txt" "$OUT/load.txt"; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done
echo "gateway namespace tests: passed: ${pass[*]:-none}; failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
