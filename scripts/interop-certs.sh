#!/usr/bin/env bash
# interop-certs.sh DIR - makes the certificates of the strongSwan interop cases with
# strongSwan's own `pki` (Debian package strongswan-pki), PEM as `pki` writes it:
#
#   root.pem      "C=CH, O=ipsec-rs interop, CN=Interop Root CA"   ECDSA P-384, self-signed
#   inter.pem     "C=CH, O=ipsec-rs interop, CN=Interop Intermediate CA"  ECDSA P-256,
#                 issued by root (CA, pathlen 0)
#   other.pem     "C=CH, O=elsewhere, CN=Other Root CA"          ECDSA P-256, self-signed
#   <name>.pem + <name>.key for end entities issued by the intermediate (or as noted):
#     a-p256   ECDSA P-256   "C=CH, O=ipsec-rs interop, CN=a.ipsec.test", SAN a.ipsec.test
#     a-p384   ECDSA P-384   same subject
#     a-ed     Ed25519       same subject
#     a-rsa    RSA 3072      same subject (signs AUTH with RSASSA-PSS in the cases)
#     b-ed     Ed25519       "C=CH, O=ipsec-rs interop, CN=b.ipsec.test", SAN b.ipsec.test
#     b-p384   ECDSA P-384   same subject
#     b-p256   ECDSA P-256   same subject
#     b-rsa    RSA 3072      same subject (charon signs AUTH with RSASSA-PSS)
#     a-expired, b-expired   ECDSA P-256, valid 2020-01-01 .. 2021-01-01
#     a-revoked, b-revoked   ECDSA P-256, revoked by inter.crl
#     a-other, b-other       ECDSA P-256, issued by the other root instead
#   inter.crl     the intermediate's CRL revoking a-revoked and b-revoked
#   <name>.chain.pem   <name>.pem followed by inter.pem (what `ipsec --cert` takes)
#
# Re-running reuses what DIR already holds (RSA key generation takes a few seconds).
set -euo pipefail
D=${1:?usage: interop-certs.sh DIR}
mkdir -p "$D"
cd "$D"
P() { pki "$@" 2>/dev/null; }   # pki prints TPM plugin warnings on stderr
O="C=CH, O=ipsec-rs interop"
key() { # name type [size]
  [ -s "$1.key" ] && return 0
  case $2 in
    rsa) P --gen --type rsa --size "$3" --outform pem >"$1.key" ;;
    ecdsa) P --gen --type ecdsa --size "$3" --outform pem >"$1.key" ;;
    ed25519) P --gen --type ed25519 --outform pem >"$1.key" ;;
  esac
}
issue() { # name cacert cakey dn san [extra pki args...]
  local n=$1 ca=$2 cak=$3 dn=$4 san=$5; shift 5
  [ -s "$n.pem" ] && return 0
  P --pub --in "$n.key" --type priv \
    | P --issue --cacert "$ca" --cakey "$cak" --dn "$dn" --san "$san" \
        --flag serverAuth --flag clientAuth --outform pem "$@" >"$n.pem"
  [ -s "$n.pem" ] || { echo "pki --issue failed for $n" >&2; exit 1; }
}

key root ecdsa 384
[ -s root.pem ] || P --self --ca --lifetime 3650 --in root.key --type ecdsa \
  --dn "$O, CN=Interop Root CA" --outform pem >root.pem
key other ecdsa 256
[ -s other.pem ] || P --self --ca --lifetime 3650 --in other.key --type ecdsa \
  --dn "C=CH, O=elsewhere, CN=Other Root CA" --outform pem >other.pem
key inter ecdsa 256
if [ ! -s inter.pem ]; then
  P --pub --in inter.key --type ecdsa | P --issue --cacert root.pem --cakey root.key \
    --dn "$O, CN=Interop Intermediate CA" --ca --pathlen 0 --flag crlSign \
    --lifetime 1825 --outform pem >inter.pem
fi

key a-p256 ecdsa 256; key a-p384 ecdsa 384; key a-ed ed25519; key a-rsa rsa 3072
key b-ed ed25519; key b-p384 ecdsa 384; key b-p256 ecdsa 256; key b-rsa rsa 3072
for s in a b; do
  key $s-expired ecdsa 256; key $s-revoked ecdsa 256; key $s-other ecdsa 256
done
for n in a-p256 a-p384 a-ed a-rsa a-revoked; do
  issue "$n" inter.pem inter.key "$O, CN=a.ipsec.test" a.ipsec.test
done
for n in b-ed b-p384 b-p256 b-rsa b-revoked; do
  issue "$n" inter.pem inter.key "$O, CN=b.ipsec.test" b.ipsec.test
done
for s in a b; do
  issue $s-expired inter.pem inter.key "$O, CN=$s.ipsec.test" $s.ipsec.test \
    --not-before "01.01.20 00:00:00" --not-after "01.01.21 00:00:00"
  issue $s-other other.pem other.key "$O, CN=$s.ipsec.test" $s.ipsec.test
done
if [ ! -s inter.crl ]; then
  P --signcrl --cacert inter.pem --cakey inter.key --lifetime 30 \
    --cert a-revoked.pem --cert b-revoked.pem --reason key-compromise --outform pem >inter.crl
  [ -s inter.crl ] || { echo "pki --signcrl failed" >&2; exit 1; }
fi
for n in a-p256 a-p384 a-ed a-rsa a-expired a-revoked b-ed b-p384 b-p256 b-rsa b-expired b-revoked; do
  cat "$n.pem" inter.pem >"$n.chain.pem"
done
cp a-other.pem a-other.chain.pem; cp b-other.pem b-other.chain.pem
chmod 600 ./*.key
