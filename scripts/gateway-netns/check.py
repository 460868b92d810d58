#!/usr/bin/env python3
"""check.py EXPR < status.json: evaluates EXPR over `ipsec status --json` (as `s`).

Exit 0 if it is true; otherwise prints the expression and a summary of the status and
exits 1. Helpers: est(s) the ESTABLISHED IKE SAs, ike(s, remote_id=..., remote=...)
the IKE SAs matching, children(s) all Child SAs, c(s, name) a counter (0 if absent),
failures(s) the sum of handshake_failures.
"""
import json
import sys


def est(s):
    return [i for i in s["ike_sas"] if i["state"] == "ESTABLISHED"]


def ike(s, remote_id=None, remote=None, connection=None):
    out = []
    for i in s["ike_sas"]:
        # identities print as strongSwan writes them (@fqdn); compare without the '@'
        if remote_id is not None and i.get("remote_id", "").lstrip("@") != remote_id.lstrip("@"):
            continue
        if remote is not None and not i.get("remote", "").split(":")[0].strip("[]") == remote:
            continue
        if connection is not None and i.get("connection") != connection:
            continue
        out.append(i)
    return out


def children(s):
    return [c for i in s["ike_sas"] for c in i.get("children", [])]


def c(s, name):
    v = s.get("counters", {}).get(name, 0)
    return sum(v.values()) if isinstance(v, dict) else v


def failures(s):
    return c(s, "handshake_failures")


def summary(s):
    lines = []
    for i in s.get("ike_sas", []):
        lines.append(f"  IKE {i.get('connection')} {i.get('state')} {i.get('local')} <-> "
                     f"{i.get('remote')} id={i.get('remote_id')} children={len(i.get('children', []))}")
        for ch in i.get("children", []):
            lines.append(f"    child {ch.get('local_ts')} <-> {ch.get('remote_ts')} "
                         f"in={ch.get('packets_in')}/{ch.get('bytes_in')} "
                         f"out={ch.get('packets_out')}/{ch.get('bytes_out')}")
    lines.append("  counters " + json.dumps(s.get("counters", {}), sort_keys=True))
    return "\n".join(lines)


def main():
    expr = sys.argv[1]
    s = json.load(sys.stdin)
    env = dict(s=s, est=est, ike=ike, children=children, c=c, failures=failures, len=len,
               all=all, any=any, sum=sum)
    if eval(expr, env):  # noqa: S307 - the test script's own expressions
        return 0
    print(f"check failed: {expr}\n{summary(s)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
