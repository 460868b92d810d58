#!/usr/bin/env bash
# Runs the README's main command (`ipsec demo`) with --pcap and --keys for several
# suites and both modes, and checks with tshark (Wireshark's decoder, an
# implementation we did not write) that every ESP frame decrypts with the exported
# keys, passes Wireshark's ICV check, and that nothing is reported malformed.
# Installs tshark from Debian's packages when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v tshark >/dev/null 2>&1; then
    apt-get update -qq
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null
fi
cargo build --release -p ipsec-cli
bin=target/release/ipsec
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count=100
fail=0
# Wireshark 4.0 cannot decrypt ChaCha20-Poly1305 or GMAC, so those are checked by
# our own tests and `ipsec decode` only.
for suite in aes128gcm16 aes256gcm16 aes128-sha256 aes256-sha512 aes128-sha1 aes256-sha384 null-sha256; do
  for mode in tunnel transport tunnel-manual; do
    pcap="$work/$suite-$mode.pcap"; keys="$work/$suite-$mode.esp_sa"
    # keys negotiated with IKEv2 (the default), or set by hand (--manual)
    extra=(--mode "${mode%-manual}"); [ "$mode" = tunnel-manual ] && extra+=(--manual)
    "$bin" demo --suite "$suite" "${extra[@]}" --count "$count" --no-faults --pcap "$pcap" --keys "$keys" >"$work/out.txt"
    opts=(-o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE)
    while IFS= read -r l; do [[ -z "$l" || "$l" == \#* ]] && continue; opts+=(-o "uat:esp_sa:$l"); done <"$keys"
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
