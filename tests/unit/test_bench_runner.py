"""The bench runner's contract (bench/run.py): every listed module prints rows, an absent one says
"not built yet", a failing one is reported and fails the run, and the JSON holds every row. Shape
only: performance is measured by `make bench`, never timed here."""

from __future__ import annotations

import importlib
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import (
    BENCH_PORT_FIRST,
    BENCH_PORT_LAST,
    BenchContext,
    CpuUse,
    Row,
    cpu_during,
    free_base,
    timed,
)
from bench.run import MODULES, main

GROUP_OK, GROUP_ABSENT, GROUP_BROKEN = "measured", "absent", "broken"


@pytest.fixture
def fake_modules() -> Iterator[list[tuple[str, str]]]:
    good = types.ModuleType("bench_fake_good")

    def run_good(ctx: BenchContext) -> list[Row]:
        t = timed(lambda _i: lambda: None, 2, 0.01)
        ctx.baselines["fake"] = t.rate
        return [Row(GROUP_OK, "no-op", t.rate, "ops/s", "itself", t.rate, 1.0, "≥ 1", True, "2 threads")]

    good.run = run_good  # type: ignore[attr-defined]
    broken = types.ModuleType("bench_fake_broken")

    def run_broken(ctx: BenchContext) -> list[Row]:
        raise RuntimeError(f"needs the baseline measured first, have {sorted(ctx.baselines)}")

    broken.run = run_broken  # type: ignore[attr-defined]
    sys.modules.update(bench_fake_good=good, bench_fake_broken=broken)
    yield [
        ("bench_fake_good", GROUP_OK),
        ("bench.not_written_yet", GROUP_ABSENT),
        ("bench_fake_broken", GROUP_BROKEN),
    ]
    for name in ("bench_fake_good", "bench_fake_broken"):
        sys.modules.pop(name, None)


def test_runner_prints_every_row_and_writes_json(
    fake_modules: list[tuple[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.json"
    code = main(["--seconds", "0.01", "--json", str(out)], modules=fake_modules)
    printed = capsys.readouterr().out
    assert code == 1  # the broken module fails the run, after everything printed
    assert "not built yet" in printed and "bench.not_written_yet" in printed
    assert "FAILED" in printed and "needs the baseline measured first, have ['fake']" in printed
    assert "load average before:" in printed and f"results: {out}" in printed
    document = json.loads(out.read_text())
    assert [(r["group"], r["name"]) for r in document["rows"]] == [
        (GROUP_OK, "no-op"),
        (GROUP_ABSENT, "not built yet"),
        (GROUP_BROKEN, "FAILED"),
    ]
    measured = document["rows"][0]
    assert measured["value"] > 0 and measured["met"] is True and measured["load"] is not None
    assert len(document["load_average"]["before"]) == 3 and document["settings"]["seconds"] == 0.01


def test_only_selects_modules_by_short_name(
    fake_modules: list[tuple[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    assert main(["--only", "bench_fake_good", "--json", str(out)], modules=fake_modules) == 0
    assert [r["group"] for r in json.loads(out.read_text())["rows"]] == [GROUP_OK]
    capsys.readouterr()


def test_bench_ports_come_from_their_own_block() -> None:
    base = free_base()
    assert BENCH_PORT_FIRST <= base <= BENCH_PORT_LAST
    assert free_base() == base  # deterministic on an unchanged machine


def test_every_listed_module_exposes_run() -> None:
    """`make bench` prints no "not built yet": each module of MODULES imports and has run(ctx)."""
    for name, _group in MODULES:
        module = importlib.import_module(name)
        assert callable(getattr(module, "run", None)), f"{name} has no run(ctx)"


def test_cpu_use_per_operation() -> None:
    use = CpuUse(members=0.3, client=0.1)
    assert use.per_op_us(200) == pytest.approx((1500.0, 500.0))
    assert use.ops_per_cpu_s(200) == pytest.approx(500.0)
    t, measured = cpu_during([], lambda: timed(lambda _i: lambda: sum(range(1000)), 1, 0.02))
    assert t.ops > 0 and measured.members == 0.0 and measured.client > 0
