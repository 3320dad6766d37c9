"""Failover gaps over repeated leader kills, on a real local 3-member cluster.

Runs the drill (hsmnode.ops.drill) N times, each killing the current leader with SIGKILL
and restarting it, and prints per run and in summary the longest time the
application went without a successful write and without a successful sign, with
the same-run baseline: the gaps of a drill with no kill at all.

    .venv/bin/python bench/failover.py [--kills 10] [--duration 5]

In `make bench` (run(ctx)): ctx.kills kills on the run's shared cluster; rows for the write gap
median (goal ≤ 0.5 s), the sign gap median (goal ≤ 0.2 s), their maxima, and failed operations
(goal 0), each against the no-kill drill's gaps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BenchContext, Row, free_base  # noqa: E402
from hsmnode.ops.devcluster import DevCluster  # noqa: E402
from hsmnode.ops.drill import Drill, DrillOptions  # noqa: E402


def run_drill(profile: Path, kill: str | None, duration: float) -> dict:  # type: ignore[type-arg]
    drill = Drill(
        DrillOptions(profile=profile, duration=duration, rate=20, kill=kill, at=1.5, restart_after=1.5)
    )
    try:
        return drill.run()
    finally:
        drill.close()


GROUP = "leader-kill failover"


def run(ctx: BenchContext) -> list[Row]:
    cluster = ctx.shared_cluster()
    duration = 3.5 if ctx.quick else 5.0
    baseline = run_drill(cluster.profile_path, None, duration)
    writes, signs, failed, unverified = [], [], 0, 0
    for _ in range(ctx.kills):
        cluster.wait_for_leader(timeout=30.0)
        report = run_drill(cluster.profile_path, "leader", duration)
        writes.append(report["write_gap_s"])
        signs.append(report["sign_gap_s"])
        failed += report["operations"]["failed"]
        unverified += 0 if report["verification"]["ok"] else 1
    base_w, base_s = baseline["write_gap_s"], baseline["sign_gap_s"]
    write_median, sign_median = statistics.median(writes), statistics.median(signs)
    note = f"{ctx.kills} SIGKILLs of the leader, drill at 20 ops/s, gaps as the application saw them"
    return [
        Row(
            GROUP,
            "write gap, median",
            round(write_median, 3),
            "s",
            "no-kill drill",
            round(base_w, 3),
            round(write_median / max(base_w, 1e-3), 1),
            "≤ 0.5 s",
            write_median <= 0.5,
            note,
        ),
        Row(
            GROUP,
            "write gap, max",
            round(max(writes), 3),
            "s",
            "no-kill drill",
            round(base_w, 3),
            round(max(writes) / max(base_w, 1e-3), 1),
        ),
        Row(
            GROUP,
            "sign gap, median",
            round(sign_median, 3),
            "s",
            "no-kill drill",
            round(base_s, 3),
            round(sign_median / max(base_s, 1e-3), 1),
            "≤ 0.2 s",
            sign_median <= 0.2,
        ),
        Row(
            GROUP,
            "sign gap, max",
            round(max(signs), 3),
            "s",
            "no-kill drill",
            round(base_s, 3),
            round(max(signs) / max(base_s, 1e-3), 1),
        ),
        Row(
            GROUP,
            "failed operations",
            failed,
            "ops",
            goal="0",
            met=failed == 0 and unverified == 0,
            note=f"{unverified} drill(s) whose final verification failed",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = DevCluster.create(Path(tmp) / "bench", base_port=free_base())
        cluster.start()
        try:
            cluster.wait_for_leader()
            cluster.bootstrap_demo()
            baseline = run_drill(cluster.profile_path, None, args.duration)
            print(
                f"baseline (no kill): write gap {baseline['write_gap_s']}s, sign gap {baseline['sign_gap_s']}s"
            )
            writes, signs, failed = [], [], 0
            for i in range(args.kills):
                cluster.wait_for_leader(timeout=30.0)
                report = run_drill(cluster.profile_path, "leader", args.duration)
                writes.append(report["write_gap_s"])
                signs.append(report["sign_gap_s"])
                failed += report["operations"]["failed"]
                ok = report["verification"]["ok"]
                print(
                    f"kill {i + 1:2d} ({report['killed']}): write gap {report['write_gap_s']:.3f}s  "
                    f"sign gap {report['sign_gap_s']:.3f}s  failed {report['operations']['failed']}  verified {ok}"
                )
            base_w, base_s = max(baseline["write_gap_s"], 1e-3), max(baseline["sign_gap_s"], 1e-3)
            print(
                f"write gap: median {statistics.median(writes):.3f}s max {max(writes):.3f}s "
                f"({statistics.median(writes) / base_w:.1f}x / {max(writes) / base_w:.1f}x the no-kill baseline)"
            )
            print(
                f"sign gap:  median {statistics.median(signs):.3f}s max {max(signs):.3f}s "
                f"({statistics.median(signs) / base_s:.1f}x / {max(signs) / base_s:.1f}x the no-kill baseline)"
            )
            print(f"operations failed as seen by the application: {failed}")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
