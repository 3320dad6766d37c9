"""`make bench`: every row of issue 16's table in one run, with same-run baselines, as a table and JSON.

    .venv/bin/python -m bench [--seconds 3] [--threads 8 16] [--kills 6] [--only writes failover]
                              [--json PATH] [--quick]

The runner calls each module of MODULES in order; a module exposes

    run(ctx: bench.common.BenchContext) -> list[bench.common.Row]

Modules share one 3-member dev cluster (`ctx.shared_cluster()`, started on first use, stopped at the
end) and the baselines measured first (`ctx.baselines`: raw `cryptography` on one core, SoftHSMv2
in-process). A listed module that does not exist yet prints one "not built yet" row; a module that
fails prints its error as a row and the run exits 1 after printing everything else. The table
goes to stdout; the JSON (rows, load averages, settings, machine) to bench/results/<UTC time>.json
or --json PATH, whose path is printed last. Ports: see bench.common.free_base.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BenchContext, Row, load_average, scratch

# (module, group): the order rows print in. Later modules may read what earlier ones measured
# (ctx.baselines); failover kills leaders, so it runs last.
MODULES: tuple[tuple[str, str], ...] = (
    ("bench.baselines", "same-run baselines"),
    ("bench.crypto", "crypto through hsmnode (unary calls)"),
    ("bench.stream", "crypto through the coalescing stream (sign_many, encrypt_many, coalesced sign)"),
    ("bench.request_path", "the unary request path (CPU per call)"),
    ("bench.status", "NodeStatus at 10,000 keys while writes run"),
    ("bench.raft_baseline", "replicated writes"),
    ("bench.write_floor", "replicated writes"),
    ("bench.writes", "replicated writes"),
    ("bench.failover", "leader-kill failover"),
)
RESULTS = Path(__file__).resolve().parent / "results"


def run_modules(ctx: BenchContext, modules: Sequence[tuple[str, str]]) -> tuple[list[Row], bool]:
    """Run each module; returns every row (placeholders for absent modules) and whether all ran."""
    rows: list[Row] = []
    ok = True
    for name, group in modules:
        started = time.monotonic()
        print(f"# {group} ({name}) ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            if isinstance(exc, ModuleNotFoundError) and exc.name == name:
                rows.append(Row(group, "not built yet", None, "", note=f"{name} is not in this tree"))
            else:  # a module that does not import fails like one that raises
                ok = False
                traceback.print_exc()
                rows.append(Row(group, "FAILED", None, "", note=f"{type(exc).__name__}: {exc}"[:300]))
            continue
        run = getattr(module, "run", None)
        if run is None:
            rows.append(Row(group, "not built yet", None, "", note=f"{name} has no run(ctx)"))
            continue
        try:
            produced = list(run(ctx))
        except Exception as exc:
            ok = False
            traceback.print_exc()
            produced = [Row(group, "FAILED", None, "", note=f"{type(exc).__name__}: {exc}"[:300])]
        load = load_average()[0]
        for row in produced:
            row.load = row.load if row.load is not None else round(load, 2)
        rows.extend(produced)
        print(f"# {name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return rows, ok


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def render(rows: Sequence[Row]) -> str:
    """The table: one line per row, grouped, with the baseline, the ratio, the goal and the load."""
    lines = []
    width = max([58, *(len(row.name) for row in rows)])
    header = f"{'row':<{width}} {'value':>12} {'unit':<9} {'baseline':>10} {'ratio':>7} {'goal':<22} {'load':>5}  note"
    group = None
    for row in rows:
        if row.group != group:
            group = row.group
            lines += ["", f"== {group}", header]
        goal = row.goal + (" ok" if row.met else " MISSED" if row.met is False else "")
        lines.append(
            f"{row.name:<{width}} {_fmt(row.value):>12} {row.unit:<9} {_fmt(row.baseline_value):>10} "
            f"{(f'{row.ratio:.2f}x' if row.ratio is not None else '-'):>7} {goal:<22} "
            f"{(f'{row.load:.1f}' if row.load is not None else '-'):>5}  {row.note}"
        )
    return "\n".join(lines)


def document(rows: Sequence[Row], ctx: BenchContext, load_before: Sequence[float]) -> dict[str, Any]:
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "seconds": ctx.seconds,
            "threads": list(ctx.threads),
            "kills": ctx.kills,
            "quick": ctx.quick,
        },
        "load_average": {"before": list(load_before), "after": list(load_average())},
        "rows": [row.to_dict() for row in rows],
    }


def main(argv: Sequence[str] | None = None, modules: Sequence[tuple[str, str]] = MODULES) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measured row (default 3)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[8, 16], help="client threads (default 8 16)"
    )
    parser.add_argument("--kills", type=int, default=6, help="leader kills in the failover rows (default 6)")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="run these modules only (e.g. writes failover)"
    )
    parser.add_argument(
        "--json", type=Path, help="write the results here (default bench/results/<time>.json)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny counts, figures meaningless")
    args = parser.parse_args(argv)
    chosen = [
        (name, group)
        for name, group in modules
        if not args.only or name.rsplit(".", 1)[-1] in args.only or name in args.only
    ]
    load_before = load_average()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)} ({os.cpu_count()} CPUs)")
    with scratch() as work:
        ctx = BenchContext(
            work, seconds=args.seconds, threads=tuple(args.threads), kills=args.kills, quick=args.quick
        )
        try:
            rows, ok = run_modules(ctx, chosen)
        finally:
            ctx.close()
    print(render(rows))
    out = args.json or RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document(rows, ctx, load_before), indent=2, ensure_ascii=False) + "\n")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in load_average())}")
    print(f"results: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
