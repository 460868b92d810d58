#!/usr/bin/env bash
# Runs the README's main command (`ipsec demo`) with --pcap and --keys DIR/ for
# several suites and both modes, and checks with tshark (Wireshark's decoder, an
# implementation we did not write) that every ESP frame decrypts with the exported
# esp_sa table and passes Wireshark's ICV check, that every IKE message after
# IKE_SA_INIT decrypts with the exported ikev2_decryption_table and passes its
# integrity check (and IKE_AUTH shows both identities), and that nothing is reported
# malformed. Installs tshark from Debian's packages when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v tshark >/dev/null 2>&1; then
    apt-get update -qq
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null
fi
cargo build --release -p ipsec-cli
bin=${CARGO_TARGET_DIR:-target}/release/ipsec
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count=100
fail=0
# Wireshark 4.0 cannot decrypt ChaCha20-Poly1305, GMAC or ESP AES-CCM, so those are
# checked by our own tests and `ipsec decode` only (scripts/scapy-decode.sh for CCM
# frames made by Scapy). It does decrypt ESP AES-CTR (RFC 3686) and IKE with AES-CTR
# (RFC 5930) and AES-CCM (RFC 5282), checked here with ECP-521 and Curve448.
# The IKE proposal that goes with each ESP suite (IKE has no NULL encryption).
declare -A ike=(
  [aes128gcm16]=aes128gcm16-prfsha256-x25519 [aes256gcm16]=aes256gcm16-prfsha384-ecp384
  [aes128-sha256]=aes128-sha256-x25519 [aes256-sha512]=aes256-sha512-ecp384
  [aes128-sha1]=aes128-sha1-modp2048 [aes256-sha384]=aes256-sha384-ecp384
  [null-sha256]=aes256gcm16-prfsha256-x25519
  [aes128ctr-sha256]=aes256ctr-sha256-ecp521 [aes256ctr-sha512]=aes192ccm12-prfsha384-x448
)
for suite in aes128gcm16 aes256gcm16 aes128-sha256 aes256-sha512 aes128-sha1 aes256-sha384 null-sha256 \
    aes128ctr-sha256 aes256ctr-sha512; do
  for mode in tunnel transport tunnel-manual; do
    pcap="$work/$suite-$mode.pcap"; keys="$work/$suite-$mode.keys/"
    # keys negotiated with IKEv2 (the default), or set by hand (--manual)
    extra=(--mode "${mode%-manual}" --ike "${ike[$suite]}"); [ "$mode" = tunnel-manual ] && extra+=(--manual)
    # --keys DIR/ writes esp_sa and ikev2_decryption_table, as strongSwan's save-keys does
    "$bin" demo --suite "$suite" "${extra[@]}" --count "$count" --no-faults --pcap "$pcap" --keys "$keys" >"$work/out.txt"
    opts=(-o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE)
    while IFS= read -r l; do [[ -z "$l" || "$l" == \#* ]] && continue; opts+=(-o "uat:esp_sa:$l"); done <"$keys/esp_sa"
    if [ "$mode" != tunnel-manual ]; then
      ikesas=0
      while IFS= read -r l; do [[ -z "$l" || "$l" == \#* ]] && continue; opts+=(-o "uat:ikev2_decryption_table:$l"); ikesas=$((ikesas + 1)); done <"$keys/ikev2_decryption_table"
      # IKE runs on port 500 unless another demo holds it; tell tshark the ports then.
      for port in $(sed -n 's/^  IKE [0-9.]*:\([0-9]*\) <-> [0-9.]*:\([0-9]*\),.*/\1 \2/p' "$work/out.txt"); do
        [ "$port" = 500 ] || opts+=(-d "udp.port==$port,isakmp")
      done
      # Every IKE message after IKE_SA_INIT (34): decrypted, integrity checked.
      tshark -n -r "$pcap" "${opts[@]}" -Y 'isakmp && isakmp.exchangetype != 34' -T fields -E separator='|' \
          -e frame.number -e isakmp.exchangetype -e isakmp.enc.decrypted -e isakmp.ikev2.integrity_checksum \
          -e isakmp.id.data.fqdn -e _ws.malformed -e _ws.expert.severity \
          >"$work/ike.txt" 2>/dev/null
      itotal=$(wc -l <"$work/ike.txt")
      # IKE_AUTH x2, CREATE_CHILD_SA x2, Delete of the old Child SA x2, final Delete x2.
      iwant=8
      igood=$(awk -F'|' '$3 != "" && $4 == "" && $6 == "" && $7 == ""' "$work/ike.txt" | wc -l)
      ids=$(awk -F'|' '$2 == 35 {print $5}' "$work/ike.txt" | sort | paste -sd' ')
      if [ "$ikesas" -ne 1 ] || [ "$itotal" -ne "$iwant" ] || [ "$igood" -ne "$iwant" ] || [ "$ids" != "a.demo.test b.demo.test" ]; then
          echo "FAIL $suite $mode: tshark decrypted $igood of $itotal protected IKE messages (want $iwant) with $ikesas IKE SA(s) from ikev2_decryption_table, IKE_AUTH identities '$ids'" >&2
          head -10 "$work/ike.txt" >&2
          fail=1
      else
          echo "ok   $suite $mode: tshark decrypted and verified $igood/$iwant IKE messages after IKE_SA_INIT (${ike[$suite]}), IKE_AUTH identities $ids"
      fi
    fi
    tshark -n -r "$pcap" "${opts[@]}" -Y esp -T fields -E separator='|' \
        -e frame.number -e esp.spi -e esp.icv_good -e esp.protocol -e _ws.malformed -e _ws.expert.severity \
        >"$work/fields.txt" 2>/dev/null
    total=$(wc -l <"$work/fields.txt")
    good=$(awk -F'|' '$2 != "" && $3 == "1" && $4 != "" && $5 == "" && $6 == ""' "$work/fields.txt" | wc -l)
    want=$((2 * count))
    if [ "$total" -ne "$want" ] || [ "$good" -ne "$want" ]; then
        echo "FAIL $suite $mode: $good of $total frames decrypted and verified by tshark (want $want)" >&2
        awk -F'|' '!($2 != "" && $3 == "1" && $4 != "" && $5 == "" && $6 == "")' "$work/fields.txt" | head -5 >&2
        fail=1
    else
        echo "ok   $suite $mode: tshark decrypted and verified $good/$want ESP frames, none malformed"
        malformed=$(tshark -n -r "$pcap" "${opts[@]}" -Y '_ws.malformed || _ws.expert.severity >= 8388608' 2>/dev/null | wc -l)
        [ "$malformed" -eq 0 ] || { echo "FAIL $suite $mode: tshark reports $malformed malformed or erroneous frames" >&2; fail=1; }
    fi
  done
done
exit $fail
