"""NodeStatus latency on a member holding many keys while writes run (issue 16: p99 ≤ 20 ms at 10,000).

On a cluster of its own (ctx.new_cluster("status"), dropped at the end) it creates `keys` AES-256
keys in the demo partition (from FILL_THREADS threads; a partition holds at most 10,000; with
ctx.quick only QUICK_KEYS), then, in five rounds of ctx.seconds each, runs writer threads creating
and destroying keys while the leader (the busiest member) is asked back to back for its NodeStatus,
state digest included, or for cluster status (Cluster/Status: this member's digest and the others',
in parallel). The writes run flat out (WRITERS threads, each writing again as soon as it is
answered: the 2 cores saturate) or, in one NodeStatus round, paced at half the rate the flat-out
NodeStatus round answered (or `--paced-rate`; PACED_WRITERS threads, open loop: what a monitored
appliance sees, whose clients do not share its CPUs). Each status is asked

- from a prober process of its own (`python -m bench.status --probe ...`): what a monitoring client
  (`hsmnode cluster status`, a metrics poller) sees. The paced row carries the goal (≤ 20 ms): on 2
  cores shared by 3 members, the writers and the prober, the flat-out row measures how long the
  scheduler keeps a mostly sleeping process from a CPU (bench/findings/status.md, "NodeStatus tail");
- from a thread of the bench process, beside the writer threads: it waits for that process's GIL too.

Each row's note: p50, max, the calls, the writes per second answered meanwhile, the member's own p99
(its request log: handler only), for the prober process its threads' wait for a CPU per call, and
where the machine's CPU went, in cores (members, leader, writers' process, prober, the rest). The
prober-process NodeStatus rows carry a same-run baseline: the same prober just before, with no
writes. One more row: the state digest alone, in this process, after one more key (incremental)
against the whole-snapshot digest it replaced (`full_digest`).

    .venv/bin/python -m bench.status [--keys 10000] [--seconds 10] [--writers 4] [--switch-interval-ms 1]
                                     [--paced-rate R] [--trace DIR]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.common import BenchContext, Row, alone_parser, cpu_seconds, member_pids, run_alone
from hsmnode.client import HsmError, OutcomeUnknown, PartitionSession, Unavailable
from hsmnode.ops.devcluster import DevCluster
from hsmnode.ops.devfiles import DevTimings

GROUP = "NodeStatus at 10,000 keys while writes run"
KEYS, QUICK_KEYS = 10_000, 200
FILL_THREADS, WRITERS = 8, 4
# the paced row: writes offered at a steady rate within the cluster's capacity (a monitored appliance
# whose clients do not share its CPUs): PACED_SHARE of the flat-out NodeStatus round's answered rate
PACED_SHARE, PACED_WRITERS = 0.5, 8
TRACE_ENV = "HSMNODE_STATUS_TRACE"  # bench/status_trace/sitecustomize.py: the members' stamps go there
GOAL_P99_MS = 20.0  # issue 16: NodeStatus p99 ≤ 20 ms on a member holding 10,000 keys while writes run


def create(session: PartitionSession, label: str) -> None:
    """One AES-256 key; an unknown outcome (an election under load) is asked again with the same request id."""
    request_id = uuid.uuid4().hex
    for attempt in range(6):
        try:
            session.generate_key(label, "AES", 256, usage=["encrypt"], request_id=request_id)
            return
        except (OutcomeUnknown, Unavailable):
            if attempt == 5:
                raise


def fill(cluster: DevCluster, token: str, keys: int, threads: int, prefix: str) -> float:
    """Create `keys` AES-256 keys from `threads` threads; the keys per second."""
    counter = iter(range(keys))
    lock = threading.Lock()

    def worker() -> None:
        with cluster.app_client() as app:
            session = app.resume_partition(token, "demo", "CO")
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                create(session, f"{prefix}{n}")

    started = time.monotonic()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return keys / (time.monotonic() - started)


def probe(ask: Callable[[], object], seconds: float, stop: threading.Event | None = None) -> list[float]:
    """Call `ask` back to back for `seconds`: each call's latency in ms."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        started = time.perf_counter()
        ask()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def probe_traced(ask: Callable[[], object], seconds: float, directory: Path) -> list[float]:
    """`probe` that also writes each call's (sent, returned, this process's run-queue wait) in seconds
    of time.monotonic() to DIRECTORY/prober-PID.jsonl, for `python -m bench.status_trace`."""
    latencies: list[float] = []
    stamps: list[tuple[float, float, float]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        queued = run_queue_seconds()
        started = time.monotonic()
        ask()
        ended = time.monotonic()
        stamps.append((started, ended, run_queue_seconds() - queued))
        latencies.append((ended - started) * 1000)
    with (directory / f"prober-{os.getpid()}.jsonl").open("w") as f:
        f.writelines(json.dumps(s) + "\n" for s in stamps)
    return latencies


def run_queue_seconds() -> float:
    """How long this process's threads, all together, have waited for a CPU while runnable (the
    kernel's schedstat, /proc/self/task/*/schedstat field 2, ns); 0.0 where the kernel has none."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        try:
            total += int(Path(f"/proc/self/task/{task}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def machine_busy_seconds() -> float:
    """CPU seconds the machine's CPUs spent busy so far, all together (/proc/stat's first line: user,
    nice, system, irq and softirq time; idle, iowait and steal left out, proc(5)); 0.0 where there is
    none."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, _steal = fields
    except (OSError, ValueError):
        return 0.0
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class CoresUsed:
    """Where the machine's CPU went during one measured window, in cores (CPU seconds per second):
    the members (the leader among them), this process (the writer threads and their gRPC threads,
    and the in-process prober), the prober process, and the rest of the machine (every other
    process: on a shared machine, other users). `start` at the window's start, `stop` at its end
    with the prober process's CPU seconds (0 for the in-process prober)."""

    def __init__(self, cluster: DevCluster, leader: str) -> None:
        self._leader = cluster.pid_of(leader)
        self._pids = member_pids(cluster)
        self._started = self._members = self._leader_cpu = self._bench = self._machine = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._members = sum(cpu_seconds(p) for p in self._pids)
        self._leader_cpu = cpu_seconds(self._leader)
        self._bench = time.process_time()
        self._machine = machine_busy_seconds()

    def stop(self, prober_cpu_s: float) -> str:
        """The window's figures as a note: "cores meanwhile: members 1.10 (leader 0.70), ..."."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        members = (sum(cpu_seconds(p) for p in self._pids) - self._members) / elapsed
        leader = (cpu_seconds(self._leader) - self._leader_cpu) / elapsed
        bench = (time.process_time() - self._bench) / elapsed
        prober = prober_cpu_s / elapsed
        machine = (machine_busy_seconds() - self._machine) / elapsed
        rest = max(0.0, machine - members - bench - prober)
        return (
            f"cores meanwhile: members {members:.2f} (leader {leader:.2f}), writers' process {bench:.2f}, "
            f"prober process {prober:.2f}, rest of the machine {rest:.2f}, of {os.cpu_count()}"
        )


def probe_main(root: Path, member: str, which: str, seconds: float) -> None:
    """The separate prober (`python -m bench.status --probe ROOT MEMBER node|cluster SECONDS`): one
    warm-up call, "ready" on a line, then `which` status of `member` back to back for `seconds`; on
    the last line one JSON object: `latencies` (ms), `cpu_wait_ms`, the time its threads waited
    for a CPU meanwhile (what the machine's load adds on the prober's side), and `cpu_s`, the CPU
    seconds it used meanwhile."""
    cluster = DevCluster.open(root)
    with cluster.client(member, timeout=10.0) as one:
        ask = one.node_status if which == "node" else one.cluster_status
        ask()
        print("ready", flush=True)
        waited, used = run_queue_seconds(), time.process_time()
        trace = os.environ.get(TRACE_ENV)
        latencies = probe(ask, seconds) if not trace else probe_traced(ask, seconds, Path(trace))
        waited, used = run_queue_seconds() - waited, time.process_time() - used
        print(json.dumps({"latencies": latencies, "cpu_wait_ms": waited * 1000, "cpu_s": used}), flush=True)


def probe_in_own_process(
    cluster: DevCluster, member: str, which: str, seconds: float, ready: Callable[[], None]
) -> tuple[list[float], float, float]:
    """`probe_main` in a child process (its own interpreter and GIL, like `hsmnode cluster status` or a
    metrics poller); `ready` is called once the child measures. (latencies in ms, the child's wait
    for a CPU in ms, the child's CPU seconds while it measured)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.status", "--probe", str(cluster.root), member, which, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],  # where `bench` is a package
    )
    assert child.stdout is not None
    try:
        line = child.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the status prober did not start: {line!r}")
        ready()
        answer = json.loads(child.stdout.readline())
    finally:
        child.wait(timeout=seconds + 30)
    return answer["latencies"], answer["cpu_wait_ms"], answer["cpu_s"]


def writes_during(
    cluster: DevCluster,
    token: str,
    writers: int,
    stop: threading.Event,
    prefix: str,
    rate: float | None = None,
) -> list[int]:
    """Start `writers` threads (a client each) creating and destroying keys until `stop`: flat out
    (`rate` None: each thread's next write as soon as its last is answered), or paced at `rate`
    writes per second offered in all (open loop: write n is due at start + n / rate, whoever is
    free takes the next one; a cluster that falls behind serves fewer, and the caller reports the
    rate served). Returns the list the threads count their answered writes in (one slot each)."""
    done = [0] * writers
    due = iter(range(1 << 62))  # the paced schedule's next write
    lock = threading.Lock()
    started = [0.0]  # the schedule starts once every writer has its session (no burst to catch up)
    ready = threading.Barrier(writers, action=lambda: started.__setitem__(0, time.monotonic()))

    def wait_turn() -> None:
        if rate is None:
            return
        with lock:
            n = next(due)
        delay = started[0] + n / rate - time.monotonic()
        if delay > 0:
            stop.wait(delay)

    def writer(i: int) -> None:
        with cluster.app_client() as app:
            session = app.resume_partition(token, "demo", "CO")
            try:
                ready.wait(timeout=60.0)
            except threading.BrokenBarrierError:
                print(f"writer {i}: the other writers did not start", file=sys.stderr)
                return
            n = 0
            while not stop.is_set():
                label = f"{prefix}{i}-{n}"
                try:  # create and destroy: the partition stays at its size (at most MAX_OBJECTS keys)
                    wait_turn()
                    create(session, label)
                    done[i] += 1
                    wait_turn()
                    session.destroy_key(label, request_id=uuid.uuid4().hex)
                    done[i] += 1
                except HsmError as exc:
                    if not stop.is_set():  # else the cluster stopping under it
                        print(f"writer {i}: {exc}", file=sys.stderr)
                    return
                n += 1

    for i in range(writers):
        threading.Thread(target=writer, args=(i,), daemon=True).start()
    return done


def served_ms(log: Path, method: str, offset: int) -> list[float]:
    """The member's own time for each `method` answer logged after byte `offset` of its log (the
    request log's duration: handler only, without gRPC's queueing or the network)."""
    pattern = re.compile(rf"hsmnode\.pb\.{method} OK ([0-9.]+) ms")
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return [float(m.group(1)) for m in pattern.finditer(text)]


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """(p50, p99, max) of `latencies` (any unit; NaN when empty)."""
    if not latencies:
        return float("nan"), float("nan"), float("nan")
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return ordered[len(ordered) // 2], p99, ordered[-1]


def digest_in_process(keys: int) -> tuple[float, float]:
    """The state digest alone, in this process: a state with `keys` keys, one more key applied, then
    the digest (DIGEST_VERSION 2) against the first definition (`full_digest`, the whole snapshot):
    (incremental ms, whole-snapshot ms)."""
    from hsmnode.domain.model import KeyObject, Partition
    from hsmnode.domain.state import HsmState

    state = HsmState()
    part = state.partitions["demo"] = Partition("demo", 1)

    def key(n: int) -> KeyObject:
        return KeyObject(
            f"{n:032x}",
            f"k{n}",
            "AES",
            "256",
            "secret",
            False,
            ("encrypt",),
            os.urandom(40),
            b"",
            "generated",
            1,
            "a",
        )

    for n in range(keys):
        part.objects[f"{n:032x}"] = key(n)
    state.digest()
    part.objects[f"{keys:032x}"] = key(keys)
    state._digest = (-1, "")  # what an applied command's audit record does
    started = time.perf_counter()
    state.digest()
    incremental = time.perf_counter() - started
    started = time.perf_counter()
    state.full_digest()
    full = time.perf_counter() - started
    return incremental * 1000, full * 1000


def run(
    ctx: BenchContext,
    keys: int | None = None,
    writers: int = WRITERS,
    fill_threads: int = FILL_THREADS,
    switch_interval_ms: float | None = None,
    paced_rate: float | None = None,
) -> list[Row]:
    """The rows above; `keys` defaults to 10,000 (QUICK_KEYS with ctx.quick); `switch_interval_ms`:
    the members' GIL switch interval (server.switch_interval_ms; None: Python's 5 ms); `paced_rate`:
    the writes per second offered in the paced row (None: PACED_SHARE of the flat-out round's)."""
    keys = keys or (QUICK_KEYS if ctx.quick else KEYS)
    incremental, full = digest_in_process(keys)
    rows = [
        Row(
            GROUP,
            f"state digest after one more key, {keys:,} keys (in-process)",
            round(incremental, 3),
            "ms",
            baseline="whole-snapshot digest (before)",
            baseline_value=round(full, 1),
            ratio=round(incremental / full, 4) if full else None,
            note=f"{full / incremental:,.0f}x faster than the whole-snapshot digest" if incremental else "",
        )
    ]
    cluster = ctx.new_cluster("status", DevTimings(switch_interval_ms=switch_interval_ms))
    try:
        demo = cluster.bootstrap_demo()
        with cluster.app_client() as app:
            setup = app.open_session("demo", demo["partition"]["co_password"], role="CO")
            setup.keep = True
            token = str(setup.token)
        # each writer holds at most one key of its own at a time: the partition stays within `keys`
        fill_rate = fill(cluster, token, keys - max(writers, PACED_WRITERS), fill_threads, "k")
        leader = cluster.wait_for_leader().leader
        assert leader is not None  # wait_for_leader raises when there is none
        # the same-run baseline of the prober-process rows: NodeStatus with no writes (the floor this
        # machine gives now: its other users, the prober, gRPC and TLS, the handler)
        cores = CoresUsed(cluster, leader)
        floor, floor_wait, floor_cpu = probe_in_own_process(cluster, leader, "node", ctx.seconds, cores.start)
        floor_note = cores.stop(floor_cpu)
        floor_p50, floor_p99, _ = percentiles(floor)
        with cluster.client(leader, timeout=10.0) as one:
            # (row, method, which, own process, goal, paced: False flat out); the flat-out round first,
            # its answered rate sets the paced round's
            rounds: tuple[tuple[str, str, str, bool, float | None, bool], ...] = (
                ("NodeStatus", "Cluster/NodeStatus", "node", True, None, False),
                ("NodeStatus", "Cluster/NodeStatus", "node", True, GOAL_P99_MS, True),
                ("NodeStatus", "Cluster/NodeStatus", "node", False, None, False),
                ("cluster status", "Cluster/Status", "cluster", True, None, False),
                ("cluster status", "Cluster/Status", "cluster", False, None, False),
            )
            flat_out_rate, share = 0.0, "" if paced_rate else f", {PACED_SHARE:g}x the flat-out rate"
            for round_no, (name, method, which, own_process, goal, paced) in enumerate(rounds):
                rate = (paced_rate or max(1.0, round(PACED_SHARE * flat_out_rate))) if paced else None
                stop = threading.Event()
                threads = writers if rate is None else PACED_WRITERS
                done = writes_during(cluster, token, threads, stop, f"w{round_no}-", rate)
                time.sleep(0.5)  # writes under way
                log = cluster.member(leader).log_path
                offset = log.stat().st_size
                window: list[float] = []

                def begin(window: list[float] = window, done: list[int] = done) -> None:
                    window[:] = [sum(done), time.monotonic()]
                    cores.start()

                cpu_wait = ""
                if own_process:
                    latencies, waited, prober_cpu = probe_in_own_process(
                        cluster, leader, which, ctx.seconds, begin
                    )
                    cpu_wait = (
                        f"; the prober waited {waited / max(1, len(latencies)):.1f} ms per call for a CPU"
                    )
                else:
                    begin()
                    ask = one.node_status if which == "node" else one.cluster_status
                    latencies, prober_cpu = probe(ask, ctx.seconds, stop), 0.0
                writes = (sum(done) - window[0]) / (time.monotonic() - window[1])
                flat_out_rate = flat_out_rate or writes
                used = cores.stop(prober_cpu)
                stop.set()
                p50, p99, most = percentiles(latencies)
                served = percentiles(served_ms(log, method, offset))[1]
                where = "a prober process of its own" if own_process else "a thread of the writers' process"
                meanwhile = (
                    f"{writers} writer threads flat out"
                    if rate is None
                    else f"writes paced at {rate:g}/s offered ({threads} threads{share})"
                )
                baseline = own_process and which == "node"
                rows.append(
                    Row(
                        GROUP,
                        f"{name} p99 from {where}, leader holding {keys:,} keys, {meanwhile}",
                        round(p99, 2),
                        "ms",
                        baseline="the same with no writes (this cluster, just before)" if baseline else "",
                        baseline_value=round(floor_p99, 2) if baseline else None,
                        ratio=round(p99 / floor_p99, 2) if baseline and floor_p99 else None,
                        goal=f"≤ {goal:g} ms" if goal is not None else "",
                        met=(p99 <= goal) if goal is not None else None,
                        note=f"p50 {p50:.2f} ms, max {most:.1f} ms, {len(latencies)} calls, "
                        f"{writes:.0f} writes/s answered meanwhile; served in {leader} p99 {served:.2f} ms; "
                        f"keys created at {fill_rate:.0f}/s{cpu_wait}; {used}"
                        + (
                            f"; with no writes p50 {floor_p50:.2f} ms, the prober waited "
                            f"{floor_wait / max(1, len(floor)):.1f} ms per call for a CPU, {floor_note}"
                            if goal is not None
                            else ""
                        ),
                    )
                )
                time.sleep(0.5)
    finally:
        ctx.drop_cluster(cluster)
    return rows


def main() -> None:
    if sys.argv[1:2] == ["--probe"]:  # the separate prober (probe_in_own_process)
        root, member, which, seconds = sys.argv[2:6]
        probe_main(Path(root), member, which, float(seconds))
        return
    parser = alone_parser(__doc__, seconds=10.0)
    parser.add_argument("--keys", type=int, default=KEYS)
    parser.add_argument("--fill-threads", type=int, default=FILL_THREADS)
    parser.add_argument("--writers", type=int, default=WRITERS)
    parser.add_argument(
        "--switch-interval-ms",
        type=float,
        help="the members' GIL switch interval (server.switch_interval_ms; default Python's 5 ms)",
    )
    parser.add_argument(
        "--trace",
        type=Path,
        metavar="DIR",
        help="stamp each NodeStatus call's stages in the members and the prober, with the members' events, "
        "into DIR (then: python -m bench.status_trace DIR)",
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        help=f"writes per second offered in the paced row (default {PACED_SHARE:g}x the flat-out row's)",
    )
    args = parser.parse_args()
    if args.trace is not None:  # the members and the prober inherit the environment
        args.trace.mkdir(parents=True, exist_ok=True)
        os.environ[TRACE_ENV] = str(args.trace.resolve())
        tracer = str(Path(__file__).resolve().parent / "status_trace")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [tracer, os.environ.get("PYTHONPATH")]))
    run_alone(
        lambda ctx: run(
            ctx, args.keys, args.writers, args.fill_threads, args.switch_interval_ms, args.paced_rate
        ),
        args.seconds,
    )


if __name__ == "__main__":
    main()
