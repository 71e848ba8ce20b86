#!/usr/bin/env python3
"""Splits single-client write latency into its hops across a cluster.

Run a single-client bench with every node tracing its write path, then
point this at the nodes' logs:

    ./target/release/raft-driver bench --target raft --concurrency 1 \
        --read-ratio 0 --duration 5 --node-arg=--trace-write-path
    scripts/write-path-breakdown.py results/<bench folder>/raft/nodes

Each write starts when the leader's gRPC handler gets it
(grpc-got-write); every later mark, on any node, is timed from there until
the next write starts. Printed per step: the median offset from the start
and the median gap from the step before, over the last two thirds of the
writes (the first third is warm-up). Marks from different processes are
merged on the wall clock, which all processes on one machine share.
Python 3 standard library only.
"""

import glob
import os
import statistics
import sys


def load(folder):
    events = []
    for path in sorted(glob.glob(os.path.join(folder, "n*.log"))):
        node = os.path.basename(path)[:-4]
        with open(path, errors="replace") as f:
            for line in f:
                if not line.startswith("write-path "):
                    continue
                parts = line.split()
                if len(parts) == 3 and parts[1].isdigit():
                    events.append((int(parts[1]), node, parts[2]))
    events.sort()
    return events


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    events = load(sys.argv[1])
    starts = [e for e in events if e[2] == "grpc-got-write"]
    if not starts:
        print(f"no write-path marks in {sys.argv[1]}/n*.log: "
              "was the bench run with --node-arg=--trace-write-path?",
              file=sys.stderr)
        return 2
    leader = statistics.mode(e[1] for e in starts)
    writes, cur = [], None
    for t, node, ev in events:
        if node == leader and ev == "grpc-got-write":
            if cur:
                writes.append(cur)
            cur = [(t, node, ev)]
        elif cur is not None:
            cur.append((t, node, ev))
    writes = writes[len(writes) // 3:]
    offsets = {}
    for w in writes:
        t0, seen = w[0][0], set()
        for t, node, ev in w:
            role = "leader" if node == leader else f"follower {node}"
            key = (role, ev)
            if key in seen:
                continue  # the first of each step per write
            seen.add(key)
            offsets.setdefault(key, []).append(t - t0)
    rows = [(statistics.median(v), k, len(v)) for k, v in offsets.items()
            if len(v) >= len(writes) // 2]
    rows.sort()
    print(f"{len(writes)} writes, leader {leader}")
    print(f"{'step':42s} {'at (us)':>8s} {'gap (us)':>9s}")
    prev = 0
    for at, (role, ev), _n in rows:
        print(f"{role + ': ' + ev:42s} {at:8.0f} {at - prev:9.0f}")
        prev = at
    return 0


if __name__ == "__main__":
    sys.exit(main())
