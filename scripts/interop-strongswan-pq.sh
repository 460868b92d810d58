#!/usr/bin/env bash
# Post-quantum interop with strongSwan 6.1 (ML-KEM through OpenSSL 3.5), which Debian
# ships only in its unstable suite: the rig in ../shared/interop builds a root directory
# with it (sid-root.sh, mmdebstrap, ~1 min) and runs charon chrooted there (SW_ROOT). The
# version is pinned (SW_VERSION) and checked.
#
# Cases, each in both roles (our `ipsec connect` against charon as responder, then charon
# initiating to our `ipsec listen`), each with ICMP through the tunnel both ways, and a
# Child SA rekey and an IKE SA rekey started by us and then by charon, whose additional
# key exchanges run in IKE_FOLLOWUP_KE (RFC 9370 §2.2.4; the ESP proposal has the same
# key exchanges as PFS):
#   - x25519 + ke1_mlkem768 (RFC 9370 additional key exchange in IKE_INTERMEDIATE,
#     RFC 9242);
#   - ecp384 + ke1_mlkem1024, with IKE fragmentation (RFC 7383) checked on the
#     IKE_INTERMEDIATE request, whose ML-KEM-1024 key alone is 1568 bytes;
#   - mlkem768 as the only key exchange (in IKE_SA_INIT itself);
#   - x25519 + ke1_mlkem768 + ke2_ecp256: two additional exchanges in a row;
#   - x25519 + ke1_mlkem768 with a required post-quantum preshared key (RFC 8784) on
#     both sides (charon: `ppk_id`, `ppk_required`, a `ppk-` secret); charon's log must
#     show that it used the PPK.
# Fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RIG=${RIG_SRC:-$ROOT/../shared/interop}
[ -x "$RIG/sid-root.sh" ] || { echo "strongSwan rig (with sid-root.sh) not found at $RIG" >&2; exit 1; }
SW_VERSION=${SW_VERSION:-6.1.0-2}
export SW_ROOT=${SW_ROOT:-/var/cache/sw-sid}
# the rig's state must live inside the root charon is chrooted to
export RIG_DIR=$SW_ROOT/rig-pq
command -v ip >/dev/null && command -v ping >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iputils-ping >/dev/null
}
WANT_VERSION=$SW_VERSION bash "$RIG/sid-root.sh" "$SW_ROOT"
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
         echo "     --- charon:"; grep -E "IKE\]|ENC\]|CFG\]|CHD\]" "$RIG_DIR/b/charon.log" | tail -n 20 | sed 's/^/     /'; fi
}
# what charon's log must show for a case: the IKE_INTERMEDIATE exchanges it parsed
check_charon() { # ike log
    local n_int
    # whole messages only: charon also logs each fragment (`[ EF(1/2) ]`) it parsed
    n_int=$(grep "parsed IKE_INTERMEDIATE \(request\|response\)" "$RIG_DIR/b/charon.log" | grep -vc "EF(" || true)
    case "$1" in
      *ke2_*) want=2 ;;
      *ke1_*) want=1 ;;
      *) want=0 ;;
    esac
    if [ "$n_int" -ne "$want" ]; then
        echo "{\"check\":\"charon parsed $n_int IKE_INTERMEDIATE messages, want $want\"}" >>"$2"; return 1
    fi
    if [[ "$1" == *mlkem1024* ]] && ! grep -q "IKE_INTERMEDIATE request 1 \[ EF(" "$RIG_DIR/b/charon.log"; then
        echo '{"check":"the ML-KEM-1024 IKE_INTERMEDIATE request was not fragmented"}' >>"$2"; return 1
    fi
    # the selected proposal names the additional key exchange
    if [[ "$1" == *mlkem* ]] && ! grep -q "selected proposal: IKE:.*ML_KEM" "$RIG_DIR/b/charon.log"; then
        echo '{"check":"charon did not select an ML-KEM proposal"}' >>"$2"; return 1
    fi
}

# IKE proposal | ESP proposal (charon is configured with the same)
CASES=(
  "aes256gcm16-prfsha384-x25519-ke1_mlkem768|aes256gcm16-x25519-ke1_mlkem768"
  "aes256gcm16-prfsha384-ecp384-ke1_mlkem1024|aes256gcm16-ecp384-ke1_mlkem1024"
  "aes256gcm16-prfsha384-mlkem768|aes256gcm16-mlkem768"
  "aes128gcm16-prfsha256-x25519-ke1_mlkem768-ke2_ecp256|aes128gcm16-x25519-ke1_mlkem768-ke2_ecp256"
  "aes256gcm16-prfsha384-x25519-ke1_mlkem768|aes256gcm16-x25519-ke1_mlkem768|ppk"
)
PPK_ID=ppk-rig
PPK_FILE=$(mktemp)
printf 'post-quantum-ppk-0123456789abcdef\n' >"$PPK_FILE"
chmod 600 "$PPK_FILE"
# charon with a required PPK: its swanctl.conf from up.sh, plus ppk_id, ppk_required and
# the key, reloaded
charon_ppk() {
    local f=$RIG_DIR/b/swanctl/swanctl.conf
    python3 - "$f" "$PPK_ID" "$(head -n1 "$PPK_FILE")" <<'PY'
import sys
path, ppk_id, key = sys.argv[1:]
s = open(path).read()
s = s.replace("    version = 2\n", f"    version = 2\n    ppk_id = {ppk_id}\n    ppk_required = yes\n", 1)
s = s.replace("secrets {\n", f'secrets {{\n  ppk-rig {{\n    secret = "{key}"\n    id = {ppk_id}\n  }}\n', 1)
open(path, "w").write(s)
PY
    sw b --load-all >/dev/null
}
ppk_used() { # log
    if ! grep -q "PPK => " "$RIG_DIR/b/charon.log"; then
        echo '{"check":"charon did not use the PPK"}' >>"$1"; return 1
    fi
}
[ -n "${PQ_CASES:-}" ] && read -r -a CASES <<<"$PQ_CASES"
# the rekeys each side starts, and what both must have seen of them
rekeys_ok() { # log
    local n_child n_ike n_fu
    n_child=$(grep -c '"event":"child_rekeyed"' "$1" || true)
    n_ike=$(grep -c '"event":"ike_rekeyed"' "$1" || true)
    n_fu=$(grep -c "IKE_FOLLOWUP_KE \(request\|response\)" "$RIG_DIR/b/charon.log" || true)
    if [ "$n_child" -lt 2 ] || [ "$n_ike" -lt 2 ]; then
        echo "{\"check\":\"child rekeys $n_child, IKE rekeys $n_ike\"}" >>"$1"; return 1
    fi
    # with additional key exchanges, each of the four rekeys runs IKE_FOLLOWUP_KE
    if [[ "$ike" == *ke1_* ]] && [ "$n_fu" -lt 8 ]; then
        echo "{\"check\":\"charon logged $n_fu IKE_FOLLOWUP_KE messages, want 8 or more\"}" >>"$1"; return 1
    fi
}
for c in "${CASES[@]}"; do
  IFS='|' read -r ike esp ppk <<<"$c"
  ppk_args=()
  [ "${ppk:-}" = ppk ] && ppk_args=(--ppk-id "$PPK_ID" --ppk-file "$PPK_FILE" --ppk-required)
  name="$ike${ppk:+ + PPK}"
  # --- 1. we initiate ---------------------------------------------------------
  IKE_PROPOSALS=$ike ESP_PROPOSALS=$esp "$RIG/up.sh" responder-only >/dev/null
  [ "${ppk:-}" = ppk ] && charon_ppk
  log=$LOGS/connect-$ike$ppk.log
  set +e
  (
    ip netns exec ns-a "$BIN" connect --remote 198.18.0.2 --psk "$PSK" --id a.ipsec.test \
      --remote-id b.ipsec.test --ike "$ike" --esp "$esp" --local-ts 198.19.1.0/24 \
      --remote-ts 198.19.2.0/24 --ping 198.19.2.1 --count 3 --rekey-child-after 1 \
      --rekey-ike-after 2 --hold 9 --timeout 40 --json "${ppk_args[@]}" >"$log" 2>&1 &
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
  if [ $rc -eq 0 ]; then
    n_ping=$(grep -c '"event":"ping"' "$log" || true)
    suite=$(grep -o '"suite":"[^"]*"' "$log" | head -1)
    if grep -q '"note"' "$log"; then rc=1; fi
    if [ "$n_ping" -lt 9 ]; then echo "{\"check\":\"pings $n_ping\"}" >>"$log"; rc=1; fi
    rekeys_ok "$log" || rc=1
    if [ "$suite" != "\"suite\":\"$ike\"" ]; then echo "{\"check\":\"suite $suite\"}" >>"$log"; rc=1; fi
    check_charon "$ike" "$log" || rc=1
    [ "${ppk:-}" = ppk ] && { ppk_used "$log" || rc=1; }
  fi
  result "initiator   $name" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true

  # --- 2. charon initiates ------------------------------------------------------
  IKE_PROPOSALS=$ike ESP_PROPOSALS=$esp "$RIG/up.sh" responder-only >/dev/null
  [ "${ppk:-}" = ppk ] && charon_ppk
  ip -n ns-a addr add 198.19.1.1/32 dev lo
  log=$LOGS/listen-$ike$ppk.log
  set +e
  (
    ip netns exec ns-a "$BIN" listen --local 198.18.0.1 --psk "$PSK" --id a.ipsec.test \
      --remote-id b.ipsec.test --ike "$ike" --esp "$esp" --local-ts 198.19.1.0/24 \
      --remote-ts 198.19.2.0/24 --ping 198.19.2.1 --count 3 --rekey-child-after 3 \
      --rekey-ike-after 4 --timeout 40 --json "${ppk_args[@]}" >"$log" 2>&1 &
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
    n_echo=$(grep -c '"event":"echo_request"' "$log" || true)
    n_ping=$(grep -c '"event":"ping"' "$log" || true)
    if [ "$n_echo" -lt 5 ] || [ "$n_ping" -lt 3 ]; then
      echo "{\"check\":\"echo requests answered $n_echo, pings $n_ping\"}" >>"$log"; rc=1
    fi
    rekeys_ok "$log" || rc=1
    check_charon "$ike" "$log" || rc=1
    [ "${ppk:-}" = ppk ] && { ppk_used "$log" || rc=1; }
  fi
  result "responder   $name" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true
done
echo "post-quantum interop with strongSwan $SW_VERSION: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
