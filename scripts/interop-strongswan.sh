#!/usr/bin/env bash
# Interop with strongSwan's charon (5.9, Debian), using the rig in ../shared/interop
# (network namespaces ns-a 198.18.0.1 and ns-b 198.18.0.2; charon in ns-b does ESP in
# userspace, always in UDP on 4500). For each proposal:
#   1. our initiator (`ipsec connect` in ns-a) against charon as responder: IKE SA and
#      Child SA up, ICMP echo to charon's tunnel address 198.19.2.1 and back, a Child SA
#      rekey and an IKE SA rekey started by us and then by charon, deletes;
#   2. charon as initiator against our responder (`ipsec listen` in ns-a): charon pings
#      our tunnel address 198.19.1.1 through the tunnel, we ping 198.19.2.1, a Child SA
#      rekey and an IKE SA rekey started by charon and by us, charon deletes.
# Then the certificate cases (scripts/interop-strongswan-certs.sh): both roles with
# ECDSA P-256/P-384, Ed25519 and RSA-PSS end entities under a CA -> intermediate chain
# made with strongSwan's pki, and the refusals (wrong CA, expired, revoked, identity
# not in the certificate) checked on both sides.
# Installs strongSwan (and its pki tool) from Debian's packages when missing. Fails
# loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RIG=${RIG_SRC:-$ROOT/../shared/interop}
[ -x "$RIG/up.sh" ] || { echo "strongSwan rig not found at $RIG" >&2; exit 1; }
export RIG_DIR=${RIG_DIR:-/tmp/ipsec-interop-ci}
if [ ! -x /usr/lib/ipsec/charon ] || ! command -v swanctl >/dev/null 2>&1 || ! command -v pki >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strongswan-charon strongswan-swanctl \
        strongswan-pki libcharon-extra-plugins libstrongswan-extra-plugins \
        libstrongswan-standard-plugins iproute2 iputils-ping >/dev/null
fi
# ONLY=psk or ONLY=cert runs one group of cases (for local runs; CI runs both).
ONLY=${ONLY:-all}
case "$ONLY" in all|psk|cert) ;; *) echo "ONLY must be all, psk or cert" >&2; exit 2;; esac
cargo build --release -p ipsec-cli
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/ipsec
PSK=interop-rig-psk-0123456789abcdef
LOGS=$(mktemp -d)
cleanup() { "$RIG/down.sh" >/dev/null 2>&1 || true; }
trap cleanup EXIT
sw() { "$RIG/sw.sh" "$@"; }
pass=0; fail=0
result() { # name rc log
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "ok   $1"
    else fail=$((fail + 1)); echo "FAIL $1 (log: $3)"; tail -n 25 "$3" | sed 's/^/     /'
         echo "     --- charon:"; grep -E "IKE\]|ENC\]|CFG\]|CHD\]" "$RIG_DIR/b/charon.log" | tail -n 15 | sed 's/^/     /'; fi
}

# Each case: IKE proposal, ESP proposal (what charon is configured with too).
CASES=(
  "aes128gcm16-prfsha256-x25519|aes128gcm16"
  "aes256gcm16-prfsha384-ecp384|aes256gcm16"
  "aes256-sha384-x25519|aes256-sha384"
  "chacha20poly1305-prfsha256-x25519|chacha20poly1305"
)
[ "$ONLY" = cert ] && CASES=()
for c in "${CASES[@]}"; do
  ike=${c%%|*}; esp=${c##*|}
  # --- 1. we initiate ---------------------------------------------------------
  IKE_PROPOSALS=$ike ESP_PROPOSALS=$esp "$RIG/up.sh" responder-only >/dev/null
  log=$LOGS/connect-$ike.log
  set +e
  (
    ip netns exec ns-a "$BIN" connect --remote 198.18.0.2 --psk "$PSK" --id a.ipsec.test \
      --remote-id b.ipsec.test --ike "$ike" --esp "$esp" --local-ts 198.19.1.0/24 \
      --remote-ts 198.19.2.0/24 --ping 198.19.2.1 --count 3 --rekey-child-after 1 \
      --rekey-ike-after 2 --hold 9 --timeout 40 --json >"$log" 2>&1 &
    pid=$!
    # charon rekeys too, while we hold the SA
    for i in $(seq 1 50); do grep -q '"event":"ike_rekeyed"' "$log" 2>/dev/null && break; sleep 0.2; done
    sleep 1
    sw b --rekey --child net >/dev/null 2>&1 || echo '{"note":"charon child rekey command failed"}' >>"$log"
    sleep 1.5
    sw b --rekey --ike rig >/dev/null 2>&1 || echo '{"note":"charon IKE rekey command failed"}' >>"$log"
    wait $pid
  )
  rc=$?
  set -e
  # what we must have seen: two child rekeys and two IKE rekeys (ours and charon's)
  if [ $rc -eq 0 ]; then
    n_child=$(grep -c '"event":"child_rekeyed"' "$log" || true)
    n_ike=$(grep -c '"event":"ike_rekeyed"' "$log" || true)
    n_ping=$(grep -c '"event":"ping"' "$log" || true)
    if [ "$n_child" -lt 2 ] || [ "$n_ike" -lt 2 ] || [ "$n_ping" -lt 9 ]; then
      echo "{\"check\":\"child rekeys $n_child, IKE rekeys $n_ike, pings $n_ping\"}" >>"$log"; rc=1
    fi
  fi
  result "initiator   $ike / $esp" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true

  # --- 2. charon initiates ------------------------------------------------------
  IKE_PROPOSALS=$ike ESP_PROPOSALS=$esp "$RIG/up.sh" responder-only >/dev/null
  ip -n ns-a addr add 198.19.1.1/32 dev lo
  log=$LOGS/listen-$ike.log
  set +e
  (
    ip netns exec ns-a "$BIN" listen --local 198.18.0.1 --psk "$PSK" --id a.ipsec.test \
      --remote-id b.ipsec.test --ike "$ike" --esp "$esp" --local-ts 198.19.1.0/24 \
      --remote-ts 198.19.2.0/24 --ping 198.19.2.1 --count 3 --rekey-child-after 3 \
      --rekey-ike-after 4 --timeout 40 --json >"$log" 2>&1 &
    pid=$!
    sleep 0.5
    sw b --initiate --ike rig --child net --timeout 15 >>"$log.charon" 2>&1 || echo '{"note":"charon initiate failed"}' >>"$log"
    ip netns exec ns-b ping -c 3 -i 0.2 -W 2 -I 198.19.2.1 198.19.1.1 >>"$log.charon" 2>&1 || echo '{"note":"charon ping through the tunnel failed"}' >>"$log"
    sleep 0.5
    sw b --rekey --child net >>"$log.charon" 2>&1 || true
    sleep 1
    sw b --rekey --ike rig >>"$log.charon" 2>&1 || true
    # our own rekeys (at 3 s and 4 s) and the ping rounds after them
    for i in $(seq 1 60); do [ "$(grep -c '"event":"ike_rekeyed"' "$log")" -ge 2 ] && break; sleep 0.2; done
    sleep 3
    ip netns exec ns-b ping -c 2 -i 0.2 -W 2 -I 198.19.2.1 198.19.1.1 >>"$log.charon" 2>&1 || echo '{"note":"charon ping after rekeys failed"}' >>"$log"
    sw b --terminate --ike rig >>"$log.charon" 2>&1 || true
    wait $pid
  )
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    if grep -q '"note"' "$log"; then rc=1; fi
    n_child=$(grep -c '"event":"child_rekeyed"' "$log" || true)
    n_ike=$(grep -c '"event":"ike_rekeyed"' "$log" || true)
    n_echo=$(grep -c '"event":"echo_request"' "$log" || true)
    if [ "$n_child" -lt 2 ] || [ "$n_ike" -lt 2 ] || [ "$n_echo" -lt 5 ]; then
      echo "{\"check\":\"child rekeys $n_child, IKE rekeys $n_ike, echo requests answered $n_echo\"}" >>"$log"; rc=1
    fi
  fi
  result "responder   $ike / $esp" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true
done
[ "$ONLY" = psk ] || . "$ROOT/scripts/interop-strongswan-certs.sh"
echo "interop with strongSwan: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
