#!/bin/sh
# Makes the fixed ECDSA P-256 test PKI of benches/benches/handshake_cert.rs with
# OpenSSL 3.0: a CA, and an end entity for each side signed by it (ecdsa-with-SHA256),
# valid for 3650 days from the day they were made (2026-12-04). The bench verifies
# them at a fixed time inside that range. Run in this folder; it rewrites every file.
set -eu
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
key ca.key.pem
openssl req -x509 -new -key ca.key.pem -sha256 -days 3650 -set_serial 1 \
  -subj "/O=ipsec-rs bench/CN=bench CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" \
  -out ca.pem
for side in a b; do
  key "$side.key.pem"
  openssl req -new -key "$side.key.pem" -subj "/O=ipsec-rs bench/CN=$side.bench" -out "$side.csr"
  openssl x509 -req -in "$side.csr" -CA ca.pem -CAkey ca.key.pem -sha256 -days 3650 \
    -set_serial "$([ "$side" = a ] && echo 2 || echo 3)" \
    -extfile /dev/stdin -out "$side.pem" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=1.3.6.1.5.5.7.3.17
subjectAltName=DNS:$side.bench
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
EXT
  rm "$side.csr"
done
openssl verify -CAfile ca.pem a.pem b.pem
