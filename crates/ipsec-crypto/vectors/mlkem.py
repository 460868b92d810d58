#!/usr/bin/env python3
"""Builds and checks vectors/mlkem.json, the ML-KEM (FIPS 203) known answers.

    python3 mlkem.py build KEYGEN.json ENCAPDECAP.json   # writes mlkem.json
    python3 mlkem.py check                                # re-verifies it

Source: NIST's ACVP test vectors for FIPS 203, the "internal projection" files (inputs
and expected outputs together) of the ML-KEM-keyGen-FIPS203 and
ML-KEM-encapDecap-FIPS203 directories under gen-val/json-files/ of the
usnistgov/ACVP-Server repository (vsId 42, commit 65370b8; the copies we read are
RustCrypto/KEMs ml-kem/tests/key-gen.json and encap-decap.json at aaf3426, which name
that commit). `build` takes a handful of test cases per parameter set:

- keyGen (AFT): the first two tests of each group: seeds d, z -> ek, dk
  (ML-KEM.KeyGen_internal, FIPS 203 Algorithm 16);
- encapsulation (AFT): the first two tests of each group: ek, m -> c, K
  (ML-KEM.Encaps_internal, Algorithm 17); dk of the same key pair is kept so that a
  backend can also decapsulate c;
- decapsulation (VAL): the first unmodified ciphertext and the first two modified
  ones of each group: dk, c -> K (Algorithm 18; a modified ciphertext gives the
  implicit-rejection key J(z || c)).

`check` recomputes every record with kyber-py (a pure-Python ML-KEM, independent of
the implementations under test) and, for the ML-KEM-768/1024 key generations, with
pyca/cryptography (MLKEM*PrivateKey.from_seed_bytes(d || z), which has no
ML-KEM-512).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "mlkem.json")
SOURCE = "NIST ACVP-Server gen-val/json-files/{dir}/internalProjection.json @ 65370b8, tgId {tg} tcId {tc}"
COPY = "RustCrypto/KEMs ml-kem/tests/{file} @ aaf3426 (a copy of the ACVP-Server file)"
PARAMS = {"ML-KEM-512": 512, "ML-KEM-768": 768, "ML-KEM-1024": 1024}


def lower(h):
    return h.lower()


def build(keygen_path, encdec_path):
    out = []
    keygen = json.load(open(keygen_path))
    for g in keygen["testGroups"]:
        for t in g["tests"][:2]:
            out.append({
                "name": f"ACVP {g['parameterSet']} keyGen tcId {t['tcId']}",
                "source": SOURCE.format(dir="ML-KEM-keyGen-FIPS203", tg=g["tgId"], tc=t["tcId"]),
                "transcribed_in": [COPY.format(file="key-gen.json")],
                "kind": "keygen",
                "param": PARAMS[g["parameterSet"]],
                "d": lower(t["d"]),
                "z": lower(t["z"]),
                "ek": lower(t["ek"]),
                "dk": lower(t["dk"]),
            })
    encdec = json.load(open(encdec_path))
    for g in encdec["testGroups"]:
        param = PARAMS[g["parameterSet"]]
        src = lambda t: SOURCE.format(dir="ML-KEM-encapDecap-FIPS203", tg=g["tgId"], tc=t["tcId"])
        if g["function"] == "encapsulation":
            for t in g["tests"][:2]:
                out.append({
                    "name": f"ACVP {g['parameterSet']} encapsulation tcId {t['tcId']}",
                    "source": src(t),
                    "transcribed_in": [COPY.format(file="encap-decap.json")],
                    "kind": "encaps",
                    "param": param,
                    "ek": lower(t["ek"]),
                    "dk": lower(t["dk"]),
                    "m": lower(t["m"]),
                    "c": lower(t["c"]),
                    "k": lower(t["k"]),
                })
        elif g["function"] == "decapsulation":
            plain = [t for t in g["tests"] if t["reason"] == "no modification"][:1]
            modified = [t for t in g["tests"] if t["reason"] == "modify ciphertext"][:2]
            for t in plain + modified:
                out.append({
                    "name": f"ACVP {g['parameterSet']} decapsulation tcId {t['tcId']} ({t['reason']})",
                    "source": src(t),
                    "transcribed_in": [COPY.format(file="encap-decap.json")],
                    "kind": "decaps",
                    "param": param,
                    "reason": t["reason"],
                    "ek": lower(g["ek"]),
                    "dk": lower(g["dk"]),
                    "c": lower(t["c"]),
                    "k": lower(t["k"]),
                })
    for r in out:
        r["verified"] = True
        r["verified_by"] = "mlkem.py check: kyber-py 1.2.0" + (
            " and pyca/cryptography" if r["kind"] == "keygen" and r["param"] != 512 else "")
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {len(out)} records to {OUT}")


def check():
    from kyber_py.ml_kem import ML_KEM_512, ML_KEM_768, ML_KEM_1024
    kems = {512: ML_KEM_512, 768: ML_KEM_768, 1024: ML_KEM_1024}
    try:
        from cryptography.hazmat.primitives.asymmetric import mlkem
        pyca = {768: mlkem.MLKEM768PrivateKey, 1024: mlkem.MLKEM1024PrivateKey}
    except ImportError:
        pyca = {}
    records = json.load(open(OUT))
    h = bytes.fromhex
    for r in records:
        kem = kems[r["param"]]
        if r["kind"] == "keygen":
            ek, dk = kem._keygen_internal(h(r["d"]), h(r["z"]))
            assert (ek.hex(), dk.hex()) == (r["ek"], r["dk"]), r["name"]
            if r["param"] in pyca:
                key = pyca[r["param"]].from_seed_bytes(h(r["d"]) + h(r["z"]))
                assert key.public_key().public_bytes_raw().hex() == r["ek"], r["name"]
        elif r["kind"] == "encaps":
            k, c = kem._encaps_internal(h(r["ek"]), h(r["m"]))
            assert (c.hex(), k.hex()) == (r["c"], r["k"]), r["name"]
            assert kem.decaps(h(r["dk"]), c).hex() == r["k"], r["name"]
        elif r["kind"] == "decaps":
            assert kem.decaps(h(r["dk"]), h(r["c"])).hex() == r["k"], r["name"]
        else:
            raise SystemExit(f"{r['name']}: unknown kind")
    print(f"{len(records)} records verified")


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"] and len(sys.argv) == 4:
        build(sys.argv[2], sys.argv[3])
    elif sys.argv[1:] == ["check"]:
        check()
    else:
        raise SystemExit(__doc__)
