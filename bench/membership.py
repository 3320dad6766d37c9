"""The long membership drill of issue 10's acceptance, on a fresh local 5-member cluster.

Not a benchmark: a soak run with pass/fail figures. Under SDK write and sign load it runs
`--cycles` remove/re-add cycles of a follower and `--leader-cycles` of the leader (the drill's
remove-readd scenario: every removal must succeed, directory and Raft configuration must agree
on every member after each step), then kills two of the five members, the leader among them,
and restarts them. It prints each run's figures and exits 1 when any application call failed,
any write was lost or duplicated, or directory and Raft disagreed.

    .venv/bin/python bench/membership.py [--cycles 20] [--leader-cycles 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import free_base  # noqa: E402
from hsmnode.ops.devcluster import DevCluster  # noqa: E402
from hsmnode.ops.drill import Drill, DrillOptions, print_report  # noqa: E402


def run(options: DrillOptions) -> dict[str, Any]:
    drill = Drill(options)
    try:
        return drill.run()
    finally:
        drill.close()


def passed(report: dict[str, Any]) -> bool:
    membership = report["membership"]
    return (
        report["operations"]["failed"] == 0
        and report["verification"]["ok"]
        and (membership is None or membership["directory_and_raft_agree"])
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=20, help="remove/re-add cycles of a follower")
    parser.add_argument("--leader-cycles", type=int, default=5, help="remove/re-add cycles of the leader")
    parser.add_argument("--json", action="store_true", help="print both reports as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = DevCluster.create(Path(tmp) / "membership", nodes=5, base_port=free_base(5))
        cluster.start()
        try:
            cluster.wait_for_leader(timeout=30.0)
            cluster.bootstrap_demo()
            progress = print if not args.json else (lambda line: None)
            cycles = run(
                DrillOptions(
                    profile=cluster.profile_path,
                    scenario="remove-readd",
                    cycles=args.cycles,
                    leader_cycles=args.leader_cycles,
                    at=2.0,
                    progress=lambda line: progress(line) if line.startswith("cycle") else None,
                )
            )
            cluster.wait_for_leader(timeout=60.0)
            kill = run(
                DrillOptions(
                    profile=cluster.profile_path,
                    kill="leader+follower",
                    duration=15.0,
                    at=3.0,
                    restart_after=5.0,
                )
            )
        finally:
            cluster.stop()
    if args.json:
        print(json.dumps({"remove_readd": _brief(cycles), "kill_two": _brief(kill)}, indent=2))
    else:
        for title, report in (("remove/re-add cycles", cycles), ("kill two of five", kill)):
            print(f"\n== {title} ==")
            print_report(report)
    sys.exit(0 if passed(cycles) and passed(kill) else 1)


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "timeline"}


if __name__ == "__main__":
    main()
