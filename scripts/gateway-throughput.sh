#!/usr/bin/env bash
# Throughput of `ipsec gateway` through a real TUN tunnel between two network
# namespaces (docs/performance.md, "Gateway throughput through TUN").
#
#   pf-a (10.99.0.1, inner 10.1.0.1 on lo) ── veth ── pf-b (10.99.0.2, inner 10.2.0.1 on lo)
#         ipsec gateway --tun pftun                        ipsec gateway --tun pftun
#
# Side a initiates one Child SA (aes128gcm16, ESP in UDP on port 4500); then a TCP
# stream of SIZE bytes from 10.1.0.1 to 10.2.0.1 (a Python sender/receiver that also
# checks the SHA-256 of what arrived), and iperf3 when it is installed.
#
# Usage (as root): scripts/gateway-throughput.sh [RUNS] [SIZE]
#   IPSEC=path/to/ipsec  (default: $CARGO_TARGET_DIR or target, release)
#   WORKERS=n            (default: the gateway's own default, one per CPU)
#   PLAIN=1              also measure plain TCP over the veth pair
#   IPERF=0              skip iperf3
#   KEEP=1               leave the namespaces and gateways running at the end
set -euo pipefail

RUNS=${1:-3}
SIZE=${2:-200000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
IPSEC=${IPSEC:-$TGT/release/ipsec}
A=pf-a
B=pf-b
DIR=$(mktemp -d /tmp/pf-gw.XXXXXX)
PIDS=()

[ -x "$IPSEC" ] || { echo "no $IPSEC: cargo build --release -p ipsec-cli" >&2; exit 1; }

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del $A 2>/dev/null || true
    ip netns del $B 2>/dev/null || true
    rm -rf "$DIR"
}
if [ "${KEEP:-0}" != 1 ]; then trap cleanup EXIT; fi

ip netns del $A 2>/dev/null || true
ip netns del $B 2>/dev/null || true
ip netns add $A
ip netns add $B
ip link add pf-va netns $A type veth peer name pf-vb netns $B
ip -n $A addr add 10.99.0.1/24 dev pf-va
ip -n $B addr add 10.99.0.2/24 dev pf-vb
for n in $A $B; do ip -n $n link set lo up; done
ip -n $A link set pf-va up
ip -n $B link set pf-vb up
ip -n $A addr add 10.1.0.1/32 dev lo
ip -n $B addr add 10.2.0.1/32 dev lo

conf() { # local remote local_ts remote_ts start_action local_id remote_id
cat <<CONF
connections {
  net {
    version = 2
    local_addrs = $1
    remote_addrs = $2
    proposals = aes128gcm16-prfsha256-x25519
    dpd_delay = 5s
    rekey_time = 30s
    local {
      auth = psk
      id = $6
    }
    remote {
      auth = psk
      id = $7
    }
    children {
      net {
        local_ts = $3
        remote_ts = $4
        esp_proposals = aes128gcm16
        start_action = $5
        rekey_time = 10s
      }
    }
  }
}
secrets {
  ike-1 {
    id-a = a.test
    id-b = b.test
    secret = "pf-secret-0123456789"
  }
}
CONF
}
conf 10.99.0.1 10.99.0.2 10.1.0.0/24 10.2.0.0/24 start a.test b.test >"$DIR/a.conf"
conf 10.99.0.2 10.99.0.1 10.2.0.0/24 10.1.0.0/24 none b.test a.test >"$DIR/b.conf"

cat >"$DIR/tcp.py" <<'PY'
import socket, sys, time, hashlib
mode = sys.argv[1]
if mode == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[2], 5001)); s.listen(1)
    c, _ = s.accept(); h = hashlib.sha256(); n = 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b); n += len(b)
    c.sendall(b"x"); print(n, h.hexdigest())
else:
    size = int(sys.argv[3]); data = bytes(range(256)) * 4096
    s = socket.create_connection((sys.argv[2], 5001)); t = time.time(); sent = 0
    while sent < size:
        s.sendall(data[: min(len(data), size - sent)]); sent += min(len(data), size - sent)
    s.shutdown(socket.SHUT_WR); s.recv(1); dt = time.time() - t
    print(f"{sent/dt/1e6:.1f}")
PY

expected_hash() {
    python3 -c "
import hashlib,sys
size=int(sys.argv[1]); data=bytes(range(256))*4096; h=hashlib.sha256(); n=0
while n<size:
    k=min(len(data),size-n); h.update(data[:k]); n+=k
print(h.hexdigest())" "$1"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

tcp_run() { # label server-ns client-ns address
    local out=() i
    for i in $(seq "$RUNS"); do
        ip netns exec "$2" python3 "$DIR/tcp.py" server "$4" >"$DIR/srv.out" &
        local sp=$!
        sleep 0.3
        local r
        r=$(ip netns exec "$3" timeout 120 python3 "$DIR/tcp.py" client "$4" "$SIZE")
        wait $sp
        local got
        got=$(awk '{print $1, $2}' "$DIR/srv.out")
        if [ "$got" != "$SIZE $WANT" ]; then
            echo "$1: run $i: received '$got', expected '$SIZE $WANT'" >&2
            exit 1
        fi
        out+=("$r")
    done
    echo "$1 tcp.py MB/s: ${out[*]} -> median $(printf '%s\n' "${out[@]}" | median)  (load $(cut -d' ' -f1-3 /proc/loadavg))"
}

iperf_run() { # label server-ns client-ns address
    command -v iperf3 >/dev/null || { echo "$1 iperf3: not installed"; return; }
    local out=() i
    ip netns exec "$2" iperf3 -s -B "$4" -D -I "$DIR/iperf.pid"
    sleep 0.3
    for i in $(seq "$RUNS"); do
        local r
        r=$(ip netns exec "$3" iperf3 -c "$4" -t 5 -J | python3 -c '
import json,sys; j=json.load(sys.stdin); print("%.1f" % (j["end"]["sum_received"]["bits_per_second"]/8e6))')
        out+=("$r")
    done
    kill "$(cat "$DIR/iperf.pid")" 2>/dev/null || true
    echo "$1 iperf3 MB/s: ${out[*]} -> median $(printf '%s\n' "${out[@]}" | median)  (load $(cut -d' ' -f1-3 /proc/loadavg))"
}

WANT=$(expected_hash "$SIZE")

if [ "${PLAIN:-0}" = 1 ]; then
    ip -n $B addr add 10.98.0.2/32 dev lo
    ip -n $A route add 10.98.0.2/32 via 10.99.0.2
    tcp_run plain $B $A 10.98.0.2
    [ "${IPERF:-1}" = 1 ] && iperf_run plain $B $A 10.98.0.2
fi

W=()
[ -n "${WORKERS:-}" ] && W=(--workers "$WORKERS")
ip netns exec $B "$IPSEC" gateway --config "$DIR/b.conf" --tun pftun --control "$DIR/b.sock" "${W[@]}" 2>"$DIR/b.log" &
PIDS+=($!)
sleep 0.3
ip netns exec $A "$IPSEC" gateway --config "$DIR/a.conf" --tun pftun --control "$DIR/a.sock" "${W[@]}" 2>"$DIR/a.log" &
PIDS+=($!)

for i in $(seq 50); do
    if ip netns exec $A ping -c1 -W1 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1; then break; fi
    sleep 0.2
done
ip netns exec $A ping -c1 -W1 -I 10.1.0.1 10.2.0.1 >/dev/null || { echo "tunnel not up" >&2; cat "$DIR/a.log" "$DIR/b.log" >&2; exit 1; }

tcp_run gateway $B $A 10.2.0.1
[ "${IPERF:-1}" = 1 ] && iperf_run gateway $B $A 10.2.0.1

if [ "${KEEP:-0}" = 1 ]; then
    echo "kept: namespaces $A $B, gateway pids ${PIDS[*]}, files in $DIR"
fi
