"""What every bench module shares: the Row it reports, the run's settings, ports, timing loops,
and the local 3-member cluster most rows run against.

A bench module (listed in bench/run.py) exposes

    run(ctx: BenchContext) -> list[Row]

and is measured against baselines taken in the same run: a Row carries its own baseline value
and the ratio, so a figure means something on a loaded or slower machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hsmnode.ops.devcluster import METRICS_PORT_OFFSET, RAFT_PORT_OFFSET, DevCluster, DevTimings, ports_free

# Bench clusters take base ports from this range, first free block first: below the range the tests
# draw from at random (20000-60000) and the kernel's ephemeral ports (32768+), above the hand-run
# base ports of `hsmnode dev` (7400) and the ones the team's sessions use (9100-10100).
# HSMNODE_BENCH_BASE_PORT moves the range (e.g. to keep concurrent bench runs apart).
BENCH_PORT_FIRST = int(os.environ.get("HSMNODE_BENCH_BASE_PORT", "15000"))
BENCH_PORT_LAST = BENCH_PORT_FIRST + 4700
BENCH_PORT_STEP = 300  # a block: gRPC base+i, Raft base+100+i, metrics base+200+i


@dataclass
class Row:
    """One line of the bench table.

    `value` in `unit` (e.g. "ops/s", "ms", "s"); `baseline`/`baseline_value` name and give the
    same-run figure it is compared with, `ratio` = value / baseline_value; `goal` states the
    acceptance figure when there is one ("≥ 1000", "≤ 5 ms"); `met` whether this run meets it;
    `note` anything a reader needs (threads, p99, skipped because ...)."""

    group: str
    name: str
    value: float | None
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""
    load: float | None = None  # the 1-minute load average when the row was measured

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchContext:
    """The run's settings and shared resources. `seconds`: per measured row; `quick`: a smoke run
    (tiny counts, no timing claims); `work`: a scratch directory for clusters and tokens."""

    work: Path
    seconds: float = 3.0
    threads: tuple[int, ...] = (8, 16)
    kills: int = 6
    quick: bool = False
    # figures later modules compare with, by name: "raw RSA-2048 sign", "SoftHSMv2 ECDSA P-256 sign", ...
    baselines: dict[str, float] = field(default_factory=dict)
    _cluster: DevCluster | None = field(default=None, repr=False)
    _clusters: list[DevCluster] = field(default_factory=list, repr=False)

    def shared_cluster(self) -> DevCluster:
        """The run's 3-member dev cluster, started (and demo bootstrapped) on first use."""
        if self._cluster is None:
            self._cluster = self.new_cluster("shared")
        return self._cluster

    def new_cluster(self, name: str, timings: DevTimings | None = None) -> DevCluster:
        """A fresh, started 3-member cluster with the demo set up; stopped by close()."""
        cluster = DevCluster.create(
            self.work / name, base_port=free_base(), timings=timings or DevTimings(), metrics=True
        )
        self._clusters.append(cluster)
        cluster.start()
        cluster.wait_for_leader(timeout=30.0)
        cluster.bootstrap_demo()
        return cluster

    def drop_cluster(self, cluster: DevCluster) -> None:
        cluster.stop()
        if cluster in self._clusters:
            self._clusters.remove(cluster)
        if cluster is self._cluster:
            self._cluster = None

    def close(self) -> None:
        for cluster in self._clusters:
            cluster.stop()
        self._clusters.clear()
        self._cluster = None


def free_base(nodes: int = 3, first: int = BENCH_PORT_FIRST) -> int:
    """The first base port from `first` whose gRPC, Raft and metrics ports are all free (deterministic:
    the same on every run of an idle machine). Raises RuntimeError when the whole range is taken."""
    for base in range(first, BENCH_PORT_LAST + 1, BENCH_PORT_STEP):
        offsets = (0, RAFT_PORT_OFFSET, METRICS_PORT_OFFSET)
        if ports_free([base + off + i for off in offsets for i in range(nodes)]):
            return base
    raise RuntimeError(f"no free port block in {BENCH_PORT_FIRST}-{BENCH_PORT_LAST} on 127.0.0.1")


@dataclass(frozen=True)
class Timing:
    """ops/s over the window and latency percentiles in ms; `failed` calls that raised."""

    rate: float
    p50_ms: float
    p99_ms: float
    ops: int
    failed: int


def timed(make_op: Callable[[int], Callable[[], object]], threads: int, seconds: float) -> Timing:
    """Run `make_op(i)()` in a loop on `threads` threads for `seconds`; every call timed.

    `make_op` runs on its thread before the clock starts (channels, sessions). A call that raises is
    counted in `failed` and not timed."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures = [0] * threads
    ready = threading.Barrier(threads + 1)
    window: list[float] = []

    def worker(i: int) -> None:
        op = make_op(i)
        ready.wait()
        stop = window[0] + seconds
        mine = latencies[i]
        while True:
            t = time.perf_counter()
            if t >= stop:
                break
            try:
                op()
            except Exception:
                failures[i] += 1
                continue
            mine.append(time.perf_counter() - t)

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    window.append(time.perf_counter())
    ready.wait()
    for w in workers:
        w.join()
    return timing(latencies, failures, max(time.perf_counter() - window[0], seconds))


def timing(latencies: list[list[float]], failures: list[int], elapsed: float) -> Timing:
    """The Timing of per-thread latencies (s) and failure counts over `elapsed` s."""
    flat = sorted(x for mine in latencies for x in mine)
    if not flat:
        return Timing(0.0, float("nan"), float("nan"), 0, sum(failures))
    return Timing(
        len(flat) / elapsed,
        statistics.median(flat) * 1000,
        flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000,
        len(flat),
        sum(failures),
    )


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def load_text() -> str:
    """The 1, 5 and 15-minute load averages, e.g. "10.71 15.70 20.97"."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process used so far, all its threads (/proc/PID/stat fields 14
    and 15, proc(5)); 0 when `pid` is None or the process is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def member_pids(cluster: DevCluster) -> list[int]:
    """The process ids of the cluster's running members."""
    return [pid for pid in (cluster.pid_of(m.id) for m in cluster.members) if pid is not None]


def idle_cpu(pids: list[int], seconds: float = 1.0) -> float:
    """CPU seconds per second the processes `pids` use together while nothing is asked of them
    (Raft heartbeats, watchers): what a per-operation CPU figure subtracts. Sleeps `seconds`."""
    before, started = sum(cpu_seconds(p) for p in pids), time.monotonic()
    time.sleep(seconds)
    return (sum(cpu_seconds(p) for p in pids) - before) / (time.monotonic() - started)


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds spent during a measured run: by the member processes (their idle CPU over the
    run subtracted) and by this (client) process."""

    members: float
    client: float

    @property
    def total(self) -> float:
        return self.members + self.client

    def per_op_us(self, ops: int) -> tuple[float, float]:
        """(members, client) CPU µs per operation."""
        return self.members * 1e6 / max(ops, 1), self.client * 1e6 / max(ops, 1)

    def ops_per_cpu_s(self, ops: int) -> float:
        """Operations per CPU-second of members and client together: unlike ops/s it hardly moves
        with what else loads the machine."""
        return ops / max(self.total, 1e-9)


def cpu_during(pids: list[int], measure: Callable[[], Timing], idle: float = 0.0) -> tuple[Timing, CpuUse]:
    """Run `measure` (e.g. a `timed` call) and return its Timing with the CPU the processes `pids`
    and this process spent meanwhile; `idle` (CPU s/s, from `idle_cpu`) is subtracted from the members'."""
    members, client, started = sum(cpu_seconds(p) for p in pids), time.process_time(), time.monotonic()
    t = measure()
    elapsed = time.monotonic() - started
    used = sum(cpu_seconds(p) for p in pids) - members - idle * elapsed
    return t, CpuUse(max(0.0, used), time.process_time() - client)


def print_rows(rows: list[Row]) -> None:
    """What a module run alone prints: the runner's table, then the load average."""
    from bench.run import render  # bench.run imports the modules; import it late

    print(render(rows))
    print(f"\nload average after: {load_text()}")


def alone_parser(doc: str | None, seconds: float = 3.0) -> argparse.ArgumentParser:
    """The argument parser of a module run alone: its docstring as help, and --seconds."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--seconds", type=float, default=seconds, help=f"per measured row (default {seconds:g})"
    )
    return parser


def run_alone(
    measure: Callable[[BenchContext], list[Row]], seconds: float, threads: tuple[int, ...] = (8, 16)
) -> list[Row]:
    """Run `measure` on a BenchContext of its own (scratch directory, clusters stopped at the end)
    and print its rows as the runner's table; returns them."""
    with scratch() as work:
        ctx = BenchContext(work, seconds=seconds, threads=threads)
        try:
            rows = measure(ctx)
        finally:
            ctx.close()
    print_rows(rows)
    return rows


@contextmanager
def scratch(root: Path | None = None) -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hsmnode-bench-", dir=root) as tmp:
        yield Path(tmp)
