#!/usr/bin/env bash
# Captures real IKEv2 traffic between two strongSwan charons (the rig in
# ../shared/interop beside the project) for the codec's tests: for each suite an
# IKE_SA_INIT + IKE_AUTH, a Child SA rekey started by each side, an IKE SA rekey,
# a liveness check, and the deletes. Writes <suite>.pcapng and <suite>.keys/
# (Wireshark's ikev2_decryption_table and esp_sa, extended with ChaCha20-Poly1305,
# which the rig's keys.py skips because Wireshark 4.0 cannot decrypt it).
# Needs root, strongSwan, its pki tool and tshark (see the rig's README). Re-run to
# refresh; `make_captures.sh cert` (or psk) makes one group only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RIGSRC=${RIGSRC:-$HERE/../../../shared/interop}
export RIG_DIR=${RIG_DIR:-/tmp/ipsec-capture-rig}
sw() { "$RIGSRC/sw.sh" "$@"; }

capture() { # name ike_proposal esp_proposal
  local name=$1
  echo "== $name: IKE $2, ESP $3"
  CAPTURE=1 IKE_PROPOSALS="$2" ESP_PROPOSALS="$3" A_IKE_PROPOSALS="$2" A_ESP_PROPOSALS="$3" "$RIGSRC/up.sh" pair >/dev/null
  sleep 0.5
  sw a --rekey --child net >/dev/null; sleep 1
  sw b --rekey --child net >/dev/null; sleep 1
  sw a --rekey --ike rig >/dev/null; sleep 1
  ip netns exec ns-a ping -c 1 -W 2 -I 198.19.1.1 198.19.2.1 >/dev/null
  sw a --terminate --child net >/dev/null; sleep 0.5
  sw a --terminate --ike rig >/dev/null; sleep 1
  kill "$(cat "$RIG_DIR/tshark.pid")" 2>/dev/null || true
  sleep 1
  cp "$RIG_DIR/capture.pcapng" "$HERE/$name.pcapng"
  mkdir -p "$HERE/$name.keys"
  python3 - "$RIGSRC" "$RIG_DIR/b/charon.log" "$HERE/$name.keys" <<'PY' >/dev/null
import sys
sys.path.insert(0, sys.argv[1])
import keys  # the rig's own converter; we only add the ChaCha20-Poly1305 names
keys.IKE_ENCR["CHACHA20_POLY1305"] = "ChaCha20-Poly1305 [RFC7634]"
keys.ESP_ENCR["CHACHA20_POLY1305"] = "ChaCha20 with Poly1305 [RFC7634]"
sys.argv = ["keys.py", sys.argv[2], sys.argv[3]]
keys.main()
PY
  rm -f "$HERE/$name.keys/preferences"
  "$RIGSRC/down.sh" >/dev/null 2>&1 || true
  echo "   $(ls -l "$HERE/$name.pcapng" | awk '{print $5}') bytes, $(grep -vc '^#' "$HERE/$name.keys/ikev2_decryption_table") IKE SAs, $(grep -vc '^#' "$HERE/$name.keys/esp_sa") ESP SAs"
}

# cert: certificate authentication (made with pki by scripts/interop-certs.sh): side a
# signs with ECDSA P-256, side b with Ed25519, both under root -> intermediate; the
# IKE_AUTH messages carry CERTREQ, CERT (end entity and intermediate) and AUTH method 14.
cert_dirs() { # DIR
  local pki=$1/pki s ee kd
  "$HERE/../../scripts/interop-certs.sh" "$pki" >/dev/null
  for s in a b; do
    if [ $s = a ]; then ee=a-p256; kd=ecdsa; else ee=b-ed; kd=pkcs8; fi
    mkdir -p "$1/$s/x509" "$1/$s/x509ca" "$1/$s/$kd"
    cp "$pki/$ee.pem" "$1/$s/x509/"; cp "$pki/$ee.key" "$1/$s/$kd/"
    cp "$pki/root.pem" "$pki/inter.pem" "$1/$s/x509ca/"
  done
}

case "${1:-all}" in
  all|psk)
    capture gcm "aes128gcm16-prfsha256-x25519" "aes128gcm16"
    capture cbc "aes256-sha384-ecp384" "aes256-sha384"
    capture chacha "chacha20poly1305-prfsha256-x25519" "chacha20poly1305"
    ;;
esac
case "${1:-all}" in
  all|cert)
    CERTS=$(mktemp -d)
    cert_dirs "$CERTS"
    rm -rf "$RIG_DIR/a/swanctl" "$RIG_DIR/b/swanctl"
    AUTH=pubkey CERT_DIR=$CERTS capture cert "aes128gcm16-prfsha256-x25519" "aes128gcm16"
    rm -rf "$CERTS"
    ;;
esac
