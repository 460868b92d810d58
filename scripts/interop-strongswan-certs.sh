# Certificate cases of scripts/interop-strongswan.sh (sourced by it: uses its $BIN,
# $RIG, $RIG_DIR, $LOGS, sw, result and the pass/fail counters).
#
# Certificates come from strongSwan's own pki (scripts/interop-certs.sh): a root CA
# (ECDSA P-384) -> an intermediate (ECDSA P-256) -> end entities with ECDSA P-256,
# ECDSA P-384, Ed25519 and RSA 3072 keys (RSA signing AUTH with RSASSA-PSS: we with
# --rsa-pss, charon with auth = rsa/pss-sha256; plain rsa/pss leaves charon on PKCS#1
# v1.5 unless strongswan.conf sets rsa_pss). Charon in
# ns-b gets its side in swanctl's layout (x509/, x509ca/ with root and intermediate,
# x509crl/, and its key in ecdsa/, rsa/ or pkcs8/); we get --cert (chain: end entity
# then intermediate), --key, --ca root.pem, --crl inter.crl.
#
# Positive cases, each in both roles, with ESP traffic (pings both ways when charon
# initiates); the first pair also rekeys the Child SA and the IKE SA.
# Negative cases, each twice: our side holds the bad credential (charon must refuse
# it: its log shows the AUTHENTICATION_FAILED it sends, and ours names it as
# authentication_failed_rejected_by_peer), and charon holds it (we must refuse it with
# the named local reason, and charon's log shows the AUTHENTICATION_FAILED it
# received): wrong CA, expired certificate, revoked certificate, identity not in the
# certificate. The same four refused by our initiator (charon's side: its IKE_AUTH
# response with the bad certificate, then the AUTHENTICATION_FAILED we send it in an
# INFORMATIONAL).
# And `ipsec load` with certificates.

K=$LOGS/pki
"$ROOT/scripts/interop-certs.sh" "$K" >/dev/null
CERTS=$LOGS/cert-dirs

charon_creds() { # case end-entity: CERTS/case/b in swanctl's layout
  local d=$CERTS/$1/b kd
  case $2 in *rsa*) kd=rsa;; *-ed*) kd=pkcs8;; *) kd=ecdsa;; esac
  rm -rf "${CERTS:?}/$1"
  mkdir -p "$d/x509" "$d/x509ca" "$d/x509crl" "$d/$kd"
  cp "$K/$2.pem" "$d/x509/"
  cp "$K/root.pem" "$K/inter.pem" "$d/x509ca/"
  cp "$K/inter.crl" "$d/x509crl/"
  cp "$K/$2.key" "$d/$kd/"
}
ours() { # end-entity: our credential options
  echo --cert "$K/$1.chain.pem" --key "$K/$1.key" --ca "$K/root.pem" --crl "$K/inter.crl"
}
# CHARON_ID: charon's identity (default its FQDN); RID: the one we require of it.
charon_up() { # case end-entity auth [ID_B]
  charon_creds "$1" "$2"
  # up.sh copies CERT_DIR over the rig's swanctl/ directory: drop an earlier case's.
  rm -rf "${RIG_DIR:?}/b/swanctl"
  ID_B=${4:-${CHARON_ID:-b.ipsec.test}} AUTH=$3 CERT_DIR=$CERTS/$1 "$RIG/up.sh" responder-only >/dev/null
}
charon_log() { cat "$RIG_DIR/b/charon.log"; }
# The signature scheme charon names for an end entity's key (RSA ones sign with PSS).
scheme_of() {
  case $1 in *rsa*) echo RSA_EMSA_PSS;; *-ed*) echo ED25519;; *p384*) echo ECDSA_WITH_SHA384;; *) echo ECDSA_WITH_SHA256;; esac
}
# Charon's log must show that it verified our end entity's signature with the scheme
# of our key, and made its own with the scheme of its key.
charon_authenticated() { # our-end-entity charon-end-entity
  charon_log | grep -E "authentication of '[^']*a\.ipsec\.test' with $(scheme_of "$1")[A-Z0-9_]* successful" | grep -qv myself &&
    charon_log | grep -qE "authentication of .* \(myself\) with $(scheme_of "$2")[A-Z0-9_]* successful"
}
count() { grep -c "$1" "$2" || true; }

# --- positive: we initiate --------------------------------------------------------
cert_connect() { # name ours charon charon-auth rekey(yes|no) [our args...]
  local name=$1 our=$2 ch=$3 auth=$4 rekey=$5; shift 5
  local log=$LOGS/cert-connect-$name.log rc extra=()
  [ "$rekey" = yes ] && extra=(--rekey-child-after 1 --rekey-ike-after 2 --hold 3)
  charon_up "$name" "$ch" "$auth"
  set +e
  # shellcheck disable=SC2046
  ip netns exec ns-a "$BIN" connect --remote 198.18.0.2 $(ours "$our") --remote-id "${RID:-b.ipsec.test}" \
    --local-ts 198.19.1.0/24 --remote-ts 198.19.2.0/24 --ping 198.19.2.1 --count 3 \
    "${extra[@]}" "$@" --timeout 30 --json >"$log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    local want_pings=3 want_rekeys=0
    [ "$rekey" = yes ] && want_pings=9 && want_rekeys=1
    if [ "$(count '"event":"ping"' "$log")" -lt $want_pings ] \
       || [ "$(count '"event":"child_rekeyed"' "$log")" -lt $want_rekeys ] \
       || [ "$(count '"event":"ike_rekeyed"' "$log")" -lt $want_rekeys ] \
       || ! grep -q "\"peer_id\":\"${PEER_ID:-@b.ipsec.test\"}" "$log"; then
      echo '{"check":"pings, rekeys or the peer identity missing"}' >>"$log"; rc=1
    elif ! charon_authenticated "$our" "$ch"; then
      echo '{"check":"charon did not log both authentications with the expected schemes"}' >>"$log"; rc=1
    fi
  fi
  result "cert initiator $name (we $our, charon $ch auth=$auth$([ "$rekey" = yes ] && echo ', rekeys'))" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true
}

# --- positive: charon initiates ---------------------------------------------------
cert_listen() { # name ours charon charon-auth rekey(yes|no) [our args...]
  local name=$1 our=$2 ch=$3 auth=$4 rekey=$5; shift 5
  local log=$LOGS/cert-listen-$name.log rc extra=() rounds=1 pid i
  [ "$rekey" = yes ] && extra=(--rekey-child-after 2 --rekey-ike-after 3) && rounds=3
  charon_up "$name" "$ch" "$auth"
  ip -n ns-a addr add 198.19.1.1/32 dev lo
  set +e
  (
    # shellcheck disable=SC2046
    ip netns exec ns-a "$BIN" listen --local 198.18.0.1 $(ours "$our") --remote-id "${RID:-b.ipsec.test}" \
      --local-ts 198.19.1.0/24 --remote-ts 198.19.2.0/24 --ping 198.19.2.1 --count 3 \
      "${extra[@]}" "$@" --timeout 30 --json >"$log" 2>&1 &
    pid=$!
    sleep 0.5
    sw b --initiate --ike rig --child net --timeout 10 >>"$log.charon" 2>&1 || echo '{"note":"charon initiate failed"}' >>"$log"
    ip netns exec ns-b ping -c 3 -i 0.2 -W 2 -I 198.19.2.1 198.19.1.1 >>"$log.charon" 2>&1 || echo '{"note":"charon ping through the tunnel failed"}' >>"$log"
    for i in $(seq 1 50); do [ "$(count '"event":"ping"' "$log")" -ge $((3 * rounds)) ] && break; sleep 0.2; done
    if [ "$rekey" = yes ]; then
      ip netns exec ns-b ping -c 2 -i 0.2 -W 2 -I 198.19.2.1 198.19.1.1 >>"$log.charon" 2>&1 || echo '{"note":"charon ping after the rekeys failed"}' >>"$log"
    fi
    sw b --terminate --ike rig >>"$log.charon" 2>&1 || true
    wait $pid
  )
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    if grep -q '"note"' "$log"; then rc=1
    elif [ "$(count '"event":"echo_request"' "$log")" -lt 3 ] || ! grep -q "\"peer_id\":\"${PEER_ID:-@b.ipsec.test\"}" "$log"; then
      echo '{"check":"echo requests or the peer identity missing"}' >>"$log"; rc=1
    elif ! charon_authenticated "$our" "$ch"; then
      echo '{"check":"charon did not log both authentications with the expected schemes"}' >>"$log"; rc=1
    fi
  fi
  result "cert responder $name (we $our, charon $ch auth=$auth$([ "$rekey" = yes ] && echo ', rekeys'))" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true
}

# --- negative: charon must refuse our credential ------------------------------------
refused_by_charon() { # name our-end-entity charon-regex [our args...]
  local name=$1 our=$2 why=$3; shift 3
  local log=$LOGS/cert-refused-by-charon-$name.log rc
  charon_up "refused-$name" b-p256 pubkey
  set +e
  # shellcheck disable=SC2046
  ip netns exec ns-a "$BIN" connect --remote 198.18.0.2 $(ours "$our") --remote-id b.ipsec.test \
    --local-ts 198.19.1.0/24 --remote-ts 198.19.2.0/24 "$@" --timeout 8 --json >"$log" 2>&1
  rc=$?
  set -e
  sleep 0.3
  if [ $rc -eq 0 ]; then
    echo '{"check":"the IKE SA came up with a credential charon must refuse"}' >>"$log"; rc=1
  elif ! grep -q '"label":"authentication_failed_rejected_by_peer"' "$log"; then
    echo '{"check":"our log does not name authentication_failed_rejected_by_peer"}' >>"$log"; rc=1
  elif ! charon_log | grep -q 'generating IKE_AUTH response .*N(AUTH_FAILED)'; then
    echo '{"check":"charon did not send AUTHENTICATION_FAILED"}' >>"$log"; rc=1
  elif ! charon_log | grep -qE "$why"; then
    echo "{\"check\":\"charon's log does not say: $why\"}" >>"$log"; rc=1
  else
    rc=0
  fi
  result "cert refused by charon: $name" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true
}

# --- negative: we must refuse charon's credential -----------------------------------
refused_by_us() { # name charon-end-entity our-label [charon ID_B] [our args...]
  local name=$1 ch=$2 label=$3 idb=${4:-b.ipsec.test}; shift 4 || shift $#
  local log=$LOGS/cert-refused-by-us-$name.log rc pid
  charon_up "refused-us-$name" "$ch" pubkey "$idb"
  set +e
  (
    # shellcheck disable=SC2046
    ip netns exec ns-a "$BIN" listen --local 198.18.0.1 $(ours a-p256) \
      --local-ts 198.19.1.0/24 --remote-ts 198.19.2.0/24 "$@" --timeout 3 --json >"$log" 2>&1 &
    pid=$!
    sleep 0.5
    sw b --initiate --ike rig --child net --timeout 5 >>"$log.charon" 2>&1 && echo '{"note":"charon initiate succeeded"}' >>"$log"
    wait $pid
  )
  set -e
  if grep -q '"note"' "$log"; then rc=1
  elif ! grep '"event":"ike_failed"' "$log" | grep -q "\"label\":\"authentication_failed_$label\""; then
    echo "{\"check\":\"our log does not name authentication_failed_$label\"}" >>"$log"; rc=1
  elif ! charon_log | grep -q 'received AUTHENTICATION_FAILED notify error'; then
    echo '{"check":"charon did not receive AUTHENTICATION_FAILED"}' >>"$log"; rc=1
  else
    rc=0
  fi
  result "cert refused by us: $name ($label)" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true
}

# --- negative: we refuse charon's credential as initiator --------------------------
# RFC 7296 §2.21.2 lets the initiator tell the responder in an INFORMATIONAL of its
# own, which we do: charon's side is the IKE_AUTH response it sent with its (bad)
# certificate, then the AUTHENTICATION_FAILED it received, upon which it deletes the
# IKE SA it had established; ours the named reason.
refused_by_us_initiating() { # name charon-end-entity our-label [charon ID_B]
  local name=$1 ch=$2 label=$3 idb=${4:-b.ipsec.test}
  local log=$LOGS/cert-refused-by-us-initiating-$name.log rc
  charon_up "refused-init-$name" "$ch" pubkey "$idb"
  set +e
  # shellcheck disable=SC2046
  ip netns exec ns-a "$BIN" connect --remote 198.18.0.2 $(ours a-p256) \
    --local-ts 198.19.1.0/24 --remote-ts 198.19.2.0/24 --timeout 8 --json >"$log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    echo '{"check":"the IKE SA came up with a credential we must refuse"}' >>"$log"; rc=1
  elif ! grep -q "\"label\":\"authentication_failed_$label\"" "$log"; then
    echo "{\"check\":\"our log does not name authentication_failed_$label\"}" >>"$log"; rc=1
  elif ! charon_log | grep -q 'generating IKE_AUTH response .*CERT.*AUTH'; then
    echo '{"check":"charon did not answer IKE_AUTH with its certificate"}' >>"$log"; rc=1
  else
    rc=1
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      # charon parses the notification and deletes the IKE SA it had established
      if charon_log | grep -q 'parsed INFORMATIONAL request [0-9]* \[ N(AUTH_FAILED) \]' \
        && charon_log | grep -q 'IKE_SA deleted'; then rc=0; break; fi
      sleep 0.3
    done
    [ $rc -eq 0 ] || echo '{"check":"charon did not receive AUTHENTICATION_FAILED and delete its IKE SA"}' >>"$log"
  fi
  result "cert refused by us as initiator: $name ($label)" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true
}

cert_connect p256-ed a-p256 b-ed pubkey yes
cert_listen p256-ed a-p256 b-ed pubkey yes
cert_connect rsapss-p384 a-rsa b-p384 pubkey no --rsa-pss --id a.ipsec.test
cert_listen rsapss-p384 a-rsa b-p384 pubkey no --rsa-pss --id a.ipsec.test
cert_connect ed-rsapss a-ed b-rsa rsa/pss-sha256 no
cert_listen ed-rsapss a-ed b-rsa rsa/pss-sha256 no
cert_connect p384-p256 a-p384 b-p256 pubkey no --id "C=CH, O=ipsec-rs interop, CN=a.ipsec.test"
# Charon identified by its DN, required by us as a DN string.
DN_B="C=CH, O=ipsec-rs interop, CN=b.ipsec.test"
CHARON_ID=$DN_B RID=$DN_B PEER_ID="$DN_B\"" cert_listen p384-dn a-p384 b-p256 pubkey no --id a.ipsec.test

# ipsec load with certificates: 10 handshakes, 5 at a time, each signing with our
# certificate (all initiators are its subject) and verifying charon's.
cert_load() {
  local log=$LOGS/cert-load.log rc
  charon_up load b-p384 pubkey
  set +e
  # shellcheck disable=SC2046
  ip netns exec ns-a "$BIN" load --remote 198.18.0.2 $(ours a-p256) --remote-id b.ipsec.test \
    --local-ts 198.19.1.0/24 --remote-ts 198.19.2.0/24 --count 10 --concurrency 5 \
    --timeout 20 --json >"$log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ] && [ "$(charon_log | grep -cE "authentication of '[^']*a\.ipsec\.test' with ECDSA_WITH_SHA256[A-Z0-9_]* successful")" -lt 10 ]; then
    echo '{"check":"charon did not authenticate 10 initiators"}' >>"$log"; rc=1
  fi
  result "cert load: 10 handshakes, 5 at a time (we a-p256, charon b-p384)" $rc "$log"
  "$RIG/down.sh" >/dev/null 2>&1 || true
}
cert_load

refused_by_charon wrong-ca a-other 'no issuer certificate found|no trusted .* public key found'
refused_by_charon expired a-expired 'certificate .*expired|not valid|no trusted .* public key found'
refused_by_charon revoked a-revoked 'certificate was revoked|revoked'
refused_by_charon id-mismatch a-p256 "no trusted .* public key found for 'x\.ipsec\.test'" --id x.ipsec.test
refused_by_us wrong-ca b-other unknown_issuer
refused_by_us expired b-expired expired
refused_by_us revoked b-revoked revoked
refused_by_us id-mismatch b-p256 id_mismatch x.ipsec.test
refused_by_us_initiating wrong-ca b-other unknown_issuer
refused_by_us_initiating expired b-expired expired
refused_by_us_initiating revoked b-revoked revoked
refused_by_us_initiating id-mismatch b-p256 id_mismatch x.ipsec.test
