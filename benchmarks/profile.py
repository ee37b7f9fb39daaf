#!/usr/bin/env python3
"""Where a training step's time goes, ours against a peer, operator by operator.

Both sides write one step's operator calls under libtorch's profiler with `--op-trace FILE`
(`afterimage-bench inverter --op-trace ours.json`, `benchmarks/peer/inverter.py --time
--variant tuned --op-trace peer.json`). Each call has a start, a duration and a thread, so an
operator's *self* time is its duration less that of the calls nested inside it (aten::conv2d
holds aten::convolution holds aten::mkldnn_convolution). This script sums self time per
operator name on each side and prints the operators that differ most, with their call counts,
so a difference in the step's time can be traced to the operators that make it.

    benchmarks/profile.py ours.json peer.json [--top 25] [--by-shape]

The profiler adds a few microseconds to every call, so a side that makes more calls looks
slower here than it is; the call counts say where that is the case.
"""
import argparse
import collections
import json
import sys


def self_times(events):
    """Each event's duration less its direct children's, nesting found per thread from the
    intervals: an event inside another's [start, end) on the same thread is its descendant."""
    by_thread = collections.defaultdict(list)
    for index, event in enumerate(events):
        by_thread[event.get("thread", 0)].append(index)
    own = [float(event["duration_ns"]) for event in events]
    for indices in by_thread.values():
        indices.sort(key=lambda i: (events[i]["start_ns"], -events[i]["duration_ns"]))
        stack = []  # indices of the open calls, outermost first
        for i in indices:
            start = events[i]["start_ns"]
            while stack and events[stack[-1]]["start_ns"] + events[stack[-1]]["duration_ns"] <= start:
                stack.pop()
            if stack:
                own[stack[-1]] -= events[i]["duration_ns"]
            stack.append(i)
    return own


def summary(path, by_shape):
    """{key: (self milliseconds, calls)} and the trace's wall span in milliseconds."""
    with open(path) as file:
        events = json.load(file)
    if not events or "duration_ns" not in events[0]:
        sys.exit(f"profile.py: {path} has no durations: write it again with this version's --op-trace")
    totals = collections.defaultdict(lambda: [0.0, 0])
    for event, own in zip(events, self_times(events)):
        key = event["name"]
        if by_shape:
            key += " " + "x".join(str(s) for s in event["shapes"][0]) if event["shapes"] and event["shapes"][0] else ""
        totals[key][0] += own / 1e6
        totals[key][1] += 1
    span = (max(e["start_ns"] + e["duration_ns"] for e in events) - min(e["start_ns"] for e in events)) / 1e6
    return totals, span


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ours")
    parser.add_argument("peer")
    parser.add_argument("--top", type=int, default=25, help="how many operators to list (default 25)")
    parser.add_argument("--by-shape", action="store_true", help="one row per operator and first input's shape")
    args = parser.parse_args()
    ours, ours_span = summary(args.ours, args.by_shape)
    peer, peer_span = summary(args.peer, args.by_shape)
    rows = []
    for key in set(ours) | set(peer):
        o, p = ours.get(key, [0.0, 0]), peer.get(key, [0.0, 0])
        rows.append((o[0] - p[0], key, o, p))
    rows.sort(key=lambda row: -abs(row[0]))
    total_ours = sum(v[0] for v in ours.values())
    total_peer = sum(v[0] for v in peer.values())
    print(f"operator self time (ms) under the profiler: ours {total_ours:.1f} over a {ours_span:.1f} ms span, "
          f"peer {total_peer:.1f} over {peer_span:.1f} ms; calls ours {sum(v[1] for v in ours.values())}, "
          f"peer {sum(v[1] for v in peer.values())}")
    width = max([len(row[1]) for row in rows[:args.top]] + [8])
    print(f"{'operator':<{width}}  {'ours ms':>9} {'calls':>6}  {'peer ms':>9} {'calls':>6}  {'ours-peer':>9}")
    for difference, key, o, p in rows[:args.top]:
        print(f"{key:<{width}}  {o[0]:9.2f} {o[1]:6d}  {p[0]:9.2f} {p[1]:6d}  {difference:+9.2f}")


if __name__ == "__main__":
    main()
