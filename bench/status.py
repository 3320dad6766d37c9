"""NodeStatus latency on a member holding many keys while writes run (issue 16: p99 <= 20 ms at 10,000).

Starts a 3-member `hsmnode dev` cluster on `--base-port`, creates `--keys` AES-256 keys in the
demo partition (from `--fill-threads` threads; a partition holds at most 10,000), then for
`--seconds` runs `--writers` threads creating and destroying keys while one thread asks one member (the leader, the busiest) for its
NodeStatus, state digest included, back to back. Prints the NodeStatus latency p50/p99/max
(ms), the writes per second meanwhile, how many NodeStatus calls ran, and the load average;
the same for cluster status (Cluster/Status: this member's digest and the others', in parallel).

    .venv/bin/python bench/status.py [--base-port 9700] [--keys 10000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hsmnode.client import HsmError, OutcomeUnknown, PartitionSession, Unavailable  # noqa: E402
from hsmnode.ops.devcluster import DevCluster  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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


def probe(ask: Callable[[], object], seconds: float, stop: threading.Event) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        started = time.perf_counter()
        ask()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def writes_during(
    cluster: DevCluster, token: str, writers: int, stop: threading.Event, prefix: str
) -> list[int]:
    done = [0] * writers

    def writer(i: int) -> None:
        with cluster.app_client() as app:
            session = app.resume_partition(token, "demo", "CO")
            n = 0
            while not stop.is_set():
                try:  # create and destroy: the partition stays at its size (at most MAX_OBJECTS keys)
                    create(session, f"{prefix}{i}-{n}")
                    session.destroy_key(f"{prefix}{i}-{n}", request_id=uuid.uuid4().hex)
                except HsmError as exc:
                    if not stop.is_set():  # else the cluster stopping under it
                        print(f"writer {i}: {exc}", file=sys.stderr)
                    return
                n += 1
                done[i] = 2 * n  # writes

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


def report(name: str, latencies: list[float], writes: int, seconds: float) -> None:
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"{name:<22} {len(latencies):>6} {statistics.median(latencies):>8.1f} {p99:>8.1f} {latencies[-1]:>8.1f}"
        f" {writes / seconds:>9.0f}  {load()}"
    )


def digest_in_process(keys: int) -> None:
    """The state digest alone, in this process: a state with `keys` keys, one more key applied, then
    the digest (DIGEST_VERSION 2) against the first definition (`full_digest`, the whole snapshot)."""
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
    print(
        f"in-process, {keys} keys: digest after one more key {incremental * 1000:.2f} ms; "
        f"the whole-snapshot digest (before) {full * 1000:.0f} ms; load {load()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-port", type=int, default=9700)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--fill-threads", type=int, default=8)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    digest_in_process(args.keys)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = DevCluster.create(Path(tmp) / "bench", base_port=args.base_port)
        cluster.start()
        try:
            status = cluster.wait_for_leader()
            demo = cluster.bootstrap_demo()
            co = demo["partition"]["co_password"]
            with cluster.app_client() as app, app.open_session("demo", co, role="CO") as setup:
                token = setup.token
                setup.keep = True
            rate = fill(cluster, token, args.keys - args.writers, args.fill_threads, "k")
            print(f"created {args.keys} AES-256 keys at {rate:.0f}/s, load {load()}")
            leader = cluster.wait_for_leader().leader or status.leader
            print(f"NodeStatus and cluster status of {leader} (the leader), {args.writers} writer thread(s)")
            print(
                f"{'call':<22} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'writes/s':>9}  load"
            )
            with cluster.client(leader, timeout=10.0) as one:
                calls = (
                    ("NodeStatus", "Cluster/NodeStatus", one.node_status),
                    ("cluster status", "Cluster/Status", one.cluster_status),
                )
                for round_no, (name, method, ask) in enumerate(calls):
                    stop = threading.Event()
                    done = writes_during(cluster, token, args.writers, stop, f"w{round_no}-")
                    time.sleep(0.5)  # writes under way
                    log = cluster.member(leader).log_path
                    offset = log.stat().st_size
                    before = sum(done)
                    started = time.monotonic()
                    latencies = probe(ask, args.seconds, stop)
                    elapsed = time.monotonic() - started
                    writes = sum(done) - before
                    stop.set()
                    report(name, latencies, writes, elapsed)
                    served = served_ms(log, method, offset)
                    if served:
                        report(f"  served in {leader}", served, writes, elapsed)
                    time.sleep(0.5)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
