"""Line up a traced bench.status run's slowest NodeStatus calls with the leader's stages and events.

    .venv/bin/python -m bench.status --keys 10000 --seconds 10 --trace /tmp/trace
    .venv/bin/python -m bench.status_trace /tmp/trace [--slowest 0.03] [--calls]

For each prober-process NodeStatus round (DIR/prober-PID.jsonl: each call's send and return on
time.monotonic(), and the prober's threads' run-queue wait) it matches every call with the leader's
record of it (DIR/member-PID.jsonl, sitecustomize.py: the one whose server-loop stamp falls inside
the call) and prints p50 / p99 / max, the stage means of the slowest share of calls against the rest
(ms), and the share of each kind calling overlapping one of the leader's events (collections,
ticks, applies, drains, compaction, the snapshot fork, gc freezes, the sleeper's late wake-ups).
`--calls` lists every slow call with the leader's events during it. (The cluster-status rounds
match the NodeStatus calls of the fan-out instead: on the peer that answered most of them.) bench/findings/status.md, "NodeStatus
tail (stop 23)", shows what it found on a loaded machine.
"""

from __future__ import annotations

import argparse
import bisect
import json
from pathlib import Path
from typing import Any

STAGES = (
    ("send → loop", "s", "loop"),
    ("loop → worker", "loop_end", "w0"),
    ("request message round", "w0", "msg"),
    ("message → handler", "msg", "h0"),
    ("handler", "h0", "h1"),
    ("handler end → answer to C-core", "h1", "w1"),
    ("sent → client", "w1", "e"),
)
EVENTS = ("gc", "tick", "apply", "drain", "compact", "fork", "freeze", "late")


def load(path: Path) -> list[Any]:
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def overlapping(events: list[Any], start: float, end: float) -> list[Any]:
    """The records of `events` (sorted by start) of a kind in EVENTS that overlap [start, end]."""
    last = bisect.bisect_right(events, end, key=lambda r: r[1])
    return [r for r in events[max(0, last - 2000) : last] if r[0] in EVENTS and r[2] >= start]


def report(
    calls: list[Any], stamps: list[dict[str, Any]], events: list[Any], slowest: float, every: bool
) -> None:
    """One round: `calls` the prober's (send, return, run-queue s), `stamps` the leader's NodeStatus
    records sorted by server-loop stamp, `events` its other records."""
    loops = [d["loop"] for d in stamps]
    matched: list[dict[str, Any]] = []
    j = 0
    for sent, back, queued in calls:
        while j < len(loops) and loops[j] < sent:
            j += 1
        if j < len(loops) and loops[j] <= back:
            matched.append(dict(stamps[j], s=sent, e=back, rq=queued))
    if not matched:
        print("  no call matched a leader record (was the leader traced?)")
        return
    took = sorted(d["e"] - d["s"] for d in matched)
    n = len(took)
    cut = took[min(n - 1, int(n * (1 - slowest)))]
    slow = [d for d in matched if d["e"] - d["s"] >= cut]
    rest = [d for d in matched if d["e"] - d["s"] < cut]
    print(
        f"  {len(calls)} calls, {n} matched: p50 {took[n // 2] * 1000:.2f} ms, "
        f"p99 {took[min(n - 1, int(n * 0.99))] * 1000:.2f}, max {took[-1] * 1000:.1f}"
    )
    print(f"  stage means (ms), the slowest {len(slow)} (≥ {cut * 1000:.1f} ms) / the other {len(rest)}:")

    def mean(ds: list[dict[str, Any]], a: str, b: str) -> float:
        values = [d[b] - d[a] for d in ds if a in d and b in d]
        return sum(values) / len(values) * 1000 if values else float("nan")

    for name, a, b in STAGES:
        print(f"    {name:32s} {mean(slow, a, b):8.2f} {mean(rest, a, b):8.2f}")
    for name, key in (
        ("prober's run-queue wait", "rq"),
        ("worker CPU", "wcpu"),
        ("worker run-queue wait", "wrq"),
    ):
        print(
            f"    {name:32s} {sum(d[key] for d in slow) / len(slow) * 1000:8.2f} "
            f"{sum(d[key] for d in rest) / max(1, len(rest)) * 1000:8.2f}"
        )
    print("  share of calls overlapping a leader event, slowest / all:")
    events = sorted((r for r in events if r[0] in EVENTS), key=lambda r: r[1])
    seen = [{r[0] for r in overlapping(events, d["s"], d["e"])} for d in matched]
    for kind in EVENTS:
        hits = [d for d, kinds in zip(matched, seen, strict=True) if kind in kinds]
        in_slow = sum(1 for d in hits if d["e"] - d["s"] >= cut)
        print(f"    {kind:8s} {in_slow / len(slow):.2f} / {len(hits) / n:.3f}")
    if every:
        for d in sorted(slow, key=lambda d: d["s"]):
            parts = " ".join(
                f"{name}={(d[b] - d[a]) * 1000:.1f}" for name, a, b in STAGES if a in d and b in d
            )
            print(f"\n  {(d['e'] - d['s']) * 1000:.1f} ms at {d['s']:.3f}: {parts}")
            for r in overlapping(events, d["s"] - 0.005, d["e"]):
                print("    ", [round(x, 4) if isinstance(x, float) else x for x in r])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--slowest", type=float, default=0.03, help="the share of calls called slow (0.03)")
    parser.add_argument("--calls", action="store_true", help="list every slow call with the leader's events")
    args = parser.parse_args()
    members = {p: load(p) for p in sorted(args.directory.glob("member-*.jsonl"))}
    if not members:
        raise SystemExit(f"no member-*.jsonl in {args.directory}: run bench.status with --trace there")
    for path in sorted(args.directory.glob("prober-*.jsonl"), key=lambda p: p.stat().st_mtime):
        calls = load(path)
        if not calls:
            continue
        start, end = calls[0][0], calls[-1][1]
        # the leader of this round: the member that answered its calls
        records = max(
            members.values(),
            key=lambda rs: sum(1 for r in rs if r[0] == "ns" and start <= r[1]["loop"] <= end),
        )
        stamps = sorted((r[1] for r in records if r[0] == "ns"), key=lambda d: d["loop"])
        print(f"\n{path.name} ({end - start:.1f} s):")
        report(calls, stamps, [r for r in records if r[0] != "ns"], args.slowest, args.calls)


if __name__ == "__main__":
    main()
