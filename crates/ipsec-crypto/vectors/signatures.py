#!/usr/bin/env python3
"""Builds and checks vectors/signatures.json, the signature known answers.

    python3 signatures.py build RSA2048.pem RSA3072.pem   # writes signatures.json
    python3 signatures.py add-sha1 RSA2048.pem            # adds the SHA-1 record
    python3 signatures.py check                           # re-verifies it

Sources:
- ECDSA: RFC 6979 A.2.5 (P-256) and A.2.6 (P-384), the private keys and the
  SHA-256 / SHA-384 signatures of "sample" and "test", as transcribed in RustCrypto's
  p256 0.13.2 and p384 0.13.1 (src/ecdsa.rs, test `rfc6979`). The public keys and the
  DER encodings are derived here with pyca/cryptography.
- Ed25519: RFC 8032 section 7.1, TEST 1, 2, 3 and SHA(abc).
- RSA: keys generated once with OpenSSL 3.0 (`openssl genpkey`), signatures made with
  `openssl dgst -sign` (PSS: `-sigopt rsa_padding_mode:pss rsa_pss_saltlen:digest`).
- RSA PKCS#1 v1.5 with SHA-1 (IKEv2 AUTH method 1, verification only): the RSA-2048
  key of the other records, `openssl dgst -sha1 -sign RSA2048.pem` over "sample",
  appended to the existing file by

    openssl pkey -inform DER -in <(xxd -r -p <<< "$PKCS8_HEX") -out RSA2048.pem
    python3 signatures.py add-sha1 RSA2048.pem

  where PKCS8_HEX is the private_key of the "RSA-2048 PKCS#1 v1.5 SHA256" record
  (`build` makes the same record).
`check` verifies every valid record with pyca/cryptography and re-signs the
deterministic ones (Ed25519, RSA PKCS#1 v1.5, RFC 6979 through its own check of the
public key only).
"""
import json
import os
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "signatures.json")

P256_OID = bytes.fromhex("06082a8648ce3d030107")
P384_OID = bytes.fromhex("06052b81040022")

RFC6979 = [
    ("P-256", ec.SECP256R1(), "A.2.5", "ecdsa-p256-sha256", 32,
     "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721",
     [("sample", "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
       "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"),
      ("test", "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367",
       "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083")]),
    ("P-384", ec.SECP384R1(), "A.2.6", "ecdsa-p384-sha384", 48,
     "6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5",
     [("sample", "94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c81a648152e44acf96e36dd1e80fabe46",
       "99ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94fa329c145786e679e7b82c71a38628ac8"),
      ("test", "8203b63d3c853e8d77227fb377bcf7b7b772e97892a80f36ab775d509d7a5feb0542a7f0812998da8f1dd3ca3cf023db",
       "ddd0760448d42d8a43af45af836fce4de8be06b485e9b61b827c2f13173923e06a739f040649a667bf3b828246baa5a5")]),
]

# RFC 8032 section 7.1: (name, secret key, public key, message, signature).
ED25519 = [
    ("TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ("TEST SHA(abc)", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
]

HASHES = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    lb = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(lb)]) + lb + body


def der_sig(r, s):
    def integer(v):
        b = v.to_bytes((v.bit_length() + 8) // 8, "big")  # room for a sign bit
        b = b.lstrip(b"\0") or b"\0"
        if b[0] & 0x80:
            b = b"\0" + b
        return tlv(0x02, b)
    return tlv(0x30, integer(r) + integer(s)).hex()


def spki(pub):
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo).hex()


def build(rsa_pems):
    out = []
    for curve, curve_obj, sec, scheme, flen, x, sigs in RFC6979:
        key = ec.derive_private_key(int(x, 16), curve_obj)
        pub = key.public_key()
        sec1 = key.private_bytes(serialization.Encoding.DER,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
        pkcs8 = key.private_bytes(serialization.Encoding.DER,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
        # SEC1 without the optional publicKey (RFC 5915 section 3), built by hand.
        oid = P256_OID if curve == "P-256" else P384_OID
        bare = tlv(0x30, bytes.fromhex("020101") + tlv(0x04, bytes.fromhex(x))
                   + tlv(0xa0, oid))
        keys = [("sec1", sec1), ("pkcs8", pkcs8), ("sec1 without public key", bare)]
        for i, (msg, r, s) in enumerate(sigs):
            fmt, der = keys[i]
            for enc, sig in ((scheme, der_sig(int(r, 16), int(s, 16))),
                             (scheme + "-fixed", r + s)):
                out.append({
                    "name": f"RFC 6979 {sec} ECDSA {curve}, message \"{msg}\", {enc}",
                    "source": f"RFC 6979 Appendix {sec}",
                    "transcribed_in": [f"RustCrypto/elliptic-curves {'p256 0.13.2' if flen == 32 else 'p384 0.13.1'} src/ecdsa.rs (test rfc6979)"],
                    "scheme": enc,
                    "spki": spki(pub),
                    "private_key": der.hex(),
                    "private_key_format": fmt,
                    "message": msg.encode().hex(),
                    "signature": sig,
                    "valid": True,
                    "deterministic": False,
                    "rfc6979": True,
                })
        # The third private key form, with a signature of RFC 6979's "sample".
        msg, r, s = sigs[0]
        out.append({
            "name": f"RFC 6979 {sec} ECDSA {curve}, SEC1 private key without the public key",
            "source": f"RFC 6979 Appendix {sec}",
            "transcribed_in": [f"RustCrypto/elliptic-curves {'p256 0.13.2' if flen == 32 else 'p384 0.13.1'} src/ecdsa.rs (test rfc6979)"],
            "scheme": scheme,
            "spki": spki(pub),
            "private_key": bare.hex(),
            "private_key_format": "sec1 without public key",
            "message": msg.encode().hex(),
            "signature": der_sig(int(r, 16), int(s, 16)),
            "valid": True,
            "deterministic": False,
            "rfc6979": True,
        })

    for i, (test, sk, pk, msg, sig) in enumerate(ED25519):
        key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sk))
        if i % 2 == 0:
            fmt = "pkcs8 v1"
            der = key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        else:
            # OneAsymmetricKey v2 with the public key (RFC 5958, RFC 8410 section 10.3).
            fmt = "pkcs8 v2"
            der = tlv(0x30, bytes.fromhex("020101300506032b6570")
                      + tlv(0x04, tlv(0x04, bytes.fromhex(sk)))
                      + tlv(0x81, b"\0" + bytes.fromhex(pk)))
        out.append({
            "name": f"RFC 8032 section 7.1 Ed25519 {test}",
            "source": "RFC 8032 Section 7.1",
            "scheme": "ed25519",
            "spki": "302a300506032b6570032100" + pk,
            "private_key": der.hex(),
            "private_key_format": fmt,
            "message": msg,
            "signature": sig,
            "valid": True,
            "deterministic": True,
        })

    for bits, pem_path in rsa_pems:
        hashes_for = ["sha256", "sha384", "sha512"] if bits == 2048 else ["sha384"]
        for kind in ("pkcs1", "pss"):
            for h in hashes_for:
                out.append(rsa_record(bits, pem_path, kind, h))
    out.append(rsa_record(2048, rsa_pems[0][1], "pkcs1", "sha1"))
    for r in out:
        mark_verified(r)
    write(out)


def rsa_record(bits, pem_path, kind, h):
    """One RSA record: `openssl dgst -<h> -sign` with the key in `pem_path`."""
    with open(pem_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    pkcs8 = key.private_bytes(serialization.Encoding.DER,
                              serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    pkcs1 = key.private_bytes(serialization.Encoding.DER,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    msg = b"sample" if bits == 2048 else bytes(range(256)) * 4
    with tempfile.TemporaryDirectory() as tmp:
        mpath = os.path.join(tmp, "msg")
        with open(mpath, "wb") as f:
            f.write(msg)
        spath = os.path.join(tmp, "sig")
        cmd = ["openssl", "dgst", "-" + h, "-sign", pem_path, "-out", spath]
        if kind == "pss":
            cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt",
                    "rsa_pss_saltlen:digest", "-sigopt", f"rsa_mgf1_md:{h}"]
        subprocess.run(cmd + [mpath], check=True)
        with open(spath, "rb") as f:
            sig = f.read()
    fmt, der = (("pkcs8", pkcs8) if h != "sha384" else ("pkcs1", pkcs1))
    return {
        "name": f"RSA-{bits} {'PKCS#1 v1.5' if kind == 'pkcs1' else 'PSS'} {h.upper()}, OpenSSL",
        "source": f"generated with OpenSSL 3.0 (openssl genpkey, openssl dgst -{h} -sign{' with PSS, salt length = digest length, MGF1 of the same hash' if kind == 'pss' else ''})",
        "scheme": f"rsa-{kind}-{h}",
        "spki": spki(key.public_key()),
        "private_key": der.hex(),
        "private_key_format": fmt,
        "message": msg.hex(),
        "signature": sig.hex(),
        "valid": True,
        "deterministic": kind == "pkcs1",
    }


def mark_verified(r):
    r["verified"] = True
    r["verified_by"] = "signatures.py check: pyca/cryptography verifies the signature with the SPKI, loads the private key and finds the same public key" + (
        ", and signs the message to the same bytes" if r["deterministic"] else "")


def write(out):
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def add_sha1(pem_path):
    """Replaces (or appends) the RSA-2048 PKCS#1 v1.5 SHA-1 record, leaving the
    others as they are (the PSS records are randomized, so `build` would change
    them)."""
    with open(OUT) as f:
        recs = json.load(f)
    r = rsa_record(2048, pem_path, "pkcs1", "sha1")
    mark_verified(r)
    recs = [x for x in recs if x["scheme"] != "rsa-pkcs1-sha1"] + [r]
    write(recs)


def check():
    with open(OUT) as f:
        recs = json.load(f)
    for r in recs:
        pub = serialization.load_der_public_key(bytes.fromhex(r["spki"]))
        der = bytes.fromhex(r["private_key"])
        if r["private_key_format"] == "sec1 without public key":
            # pyca wants the public key; compare the scalar instead.
            curve = ec.SECP256R1() if r["scheme"].startswith("ecdsa-p256") else ec.SECP384R1()
            flen = 32 if curve.name == "secp256r1" else 48
            x = der[7:7 + flen]
            priv = ec.derive_private_key(int.from_bytes(x, "big"), curve)
        elif r["private_key_format"] == "pkcs8 v2":
            # pyca does not read OneAsymmetricKey v2: take the seed, and check the
            # public key it carries.
            priv = ed25519.Ed25519PrivateKey.from_private_bytes(der[16:48])
            assert der[-32:].hex() == r["spki"][-64:], r["name"]
        else:
            priv = serialization.load_der_private_key(der, None)
        assert priv.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ).hex() == r["spki"], r["name"]
        msg, sig = bytes.fromhex(r["message"]), bytes.fromhex(r["signature"])
        scheme = r["scheme"]
        if scheme.startswith("ecdsa"):
            h = HASHES["sha256" if "sha256" in scheme else "sha384"]
            if scheme.endswith("-fixed"):
                n = len(sig) // 2
                sig = utils.encode_dss_signature(int.from_bytes(sig[:n], "big"),
                                                 int.from_bytes(sig[n:], "big"))
            pub.verify(sig, msg, ec.ECDSA(h))
        elif scheme == "ed25519":
            pub.verify(sig, msg)
            assert priv.sign(msg) == sig, r["name"]
        else:
            h = HASHES[scheme.rsplit("-", 1)[1]]
            if "-pss-" in scheme:
                pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
            else:
                pad = padding.PKCS1v15()
                assert priv.sign(msg, pad, h) == sig, r["name"]
            pub.verify(sig, msg, pad, h)
    print(f"{len(recs)} records verified")


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        build([(2048, sys.argv[2]), (3072, sys.argv[3])])
        check()
    elif sys.argv[1:2] == ["add-sha1"]:
        add_sha1(sys.argv[2])
        check()
    else:
        check()
