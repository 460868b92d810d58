#!/usr/bin/env python3
"""Propagation delay of Child SAs through the store (for ../anycast-netns.sh): for every
Child SA, from its owner's "Child SA up here" log line to the "replica installed" line
of each other node. Prints JSON: the delays in ms (min, median, max) and how many.

  propagation.py OWNER_LOG OTHER_LOG...
"""
import json
import re
import sys
from datetime import datetime

TS = re.compile(r"^(\S+Z)\s")


def when(line):
    m = TS.match(line)
    if not m:
        return None
    return datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def main():
    up = {}
    for line in open(sys.argv[1]):
        m = re.search(r"Child SA up here: publishing it key=(\S+)", line)
        if m and m.group(1) not in up:
            up[m.group(1)] = when(line)
    delays = []
    for path in sys.argv[2:]:
        for line in open(path):
            m = re.search(r"replica installed spi_in=(\S+) spi_out=(\S+)", line)
            if m:
                key = f"{m.group(1)}-{m.group(2)}"
                t = when(line)
                if key in up and up[key] is not None and t is not None and t >= up[key]:
                    delays.append((t - up[key]) * 1000)
    delays.sort()
    out = {"n": len(delays)}
    if delays:
        out.update(min_ms=round(delays[0], 2), median_ms=round(delays[len(delays) // 2], 2),
                   max_ms=round(delays[-1], 2))
    print(json.dumps(out))
    return 0 if delays else 1


if __name__ == "__main__":
    sys.exit(main())
