"""`hsmnode drill`: a failover drill against a cluster (see hsmnode.ops.drill)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hsmnode.cli._options import OUT_FILE_NO_DASH
from hsmnode.client import PROFILE_ENV, HsmError, ProfileError, default_profile_path


@click.command()
@click.option(
    "--profile",
    envvar=PROFILE_ENV,
    type=click.Path(dir_okay=False),
    default=None,
    help="Default: $HSMNODE_PROFILE or ./hsmnode-dev/profile.json.",
)
@click.option(
    "--duration", default=20.0, show_default=True, type=click.FloatRange(min=1.0), help="Seconds of workload."
)
@click.option(
    "--rate",
    default=20.0,
    type=click.FloatRange(min=0.0, min_open=True),
    show_default=True,
    help="Writes (keys, users) per second; signing runs beside them.",
)
@click.option(
    "--scenario",
    type=click.Choice(["kill", "remove-readd"]),
    default="kill",
    show_default=True,
    help="kill: SIGKILL members and restart them; remove-readd: remove members (processes running) and "
    "join them again, checking directory/Raft agreement.",
)
@click.option(
    "--kill",
    "kill",
    default="leader",
    show_default=True,
    help="leader, follower, a member id, several joined by + (leader+follower), or none.",
)
@click.option(
    "--cycles",
    default=2,
    show_default=True,
    type=click.IntRange(min=0),
    help="remove-readd: cycles of a follower.",
)
@click.option(
    "--leader-cycles",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="remove-readd: cycles of the leader.",
)
@click.option(
    "--at",
    "at",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Seconds into the run to kill the member.",
)
@click.option(
    "--restart-after",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Seconds after the kill to restart it.",
)
@click.option(
    "--fault-ratio",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Share of calls a client-side injector fails with UNAVAILABLE.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (with the latency timeline).")
@click.option(
    "--plot",
    "plot_path",
    default=None,
    type=OUT_FILE_NO_DASH,
    help="Draw latency and throughput to a PNG (needs matplotlib).",
)
def drill(
    profile: str | None,
    duration: float,
    rate: float,
    scenario: str,
    kill: str,
    cycles: int,
    leader_cycles: int,
    at: float,
    restart_after: float,
    fault_ratio: float,
    as_json: bool,
    plot_path: str | None,
) -> None:
    """Run a mixed workload through the SDK while a member dies; report what the application saw
    and verify every acknowledged write is on every member exactly once."""
    from hsmnode.ops.drill import Drill, DrillError, DrillOptions, plot, print_report

    options = DrillOptions(
        profile=Path(profile) if profile else default_profile_path(),
        duration=duration,
        rate=rate,
        kill=None if kill == "none" else kill,
        at=at,
        restart_after=restart_after,
        fault_ratio=fault_ratio,
        progress=lambda line: click.echo(line, err=True),
        scenario=scenario,
        cycles=cycles,
        leader_cycles=leader_cycles,
    )
    try:
        runner = Drill(options)
        try:
            report = runner.run()
        finally:
            runner.close()
        if plot_path:
            plot(report, Path(plot_path))
    except (DrillError, HsmError, ProfileError) as exc:
        click.echo(f"hsmnode drill: error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        print_report(report)
    membership = report["membership"]
    ok = (
        report["operations"]["failed"] == 0
        and report["verification"]["ok"]
        and (membership is None or membership["directory_and_raft_agree"])
    )
    sys.exit(0 if ok else 1)
