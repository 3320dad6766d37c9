"""Replicated writes against same-run baselines, on a real local 3-member cluster.

Baseline: a gRPC read served from the answering member's local state (NodeStatus
on the leader), over the same mTLS channel. Measured: a replicated write (audit
note) through the leader and through a follower. Prints ops/s and the ratio of
each to the baseline, so the numbers mean something on any machine.

    .venv/bin/python bench/bench_replication.py [--seconds 3] [--threads 1,8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hsmnode.client import HsmClient  # noqa: E402
from hsmnode.ops.devcluster import RAFT_PORT_OFFSET, DevCluster, ports_free  # noqa: E402


def free_base(nodes: int = 3) -> int:
    while True:
        base = random.randrange(20000, 50000)
        if ports_free([base + i for i in range(nodes)] + [base + RAFT_PORT_OFFSET + i for i in range(nodes)]):
            return base


def measure(make_op: Callable[[], Callable[[], None]], threads: int, seconds: float) -> tuple[float, float]:
    """Run op in `threads` threads for `seconds`; return (ops/s, p50 ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        op = make_op()
        mine = []
        while time.monotonic() < stop:
            t = time.perf_counter()
            op()
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return len(latencies) / seconds, statistics.median(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", default="1,8")
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        cluster = DevCluster.create(Path(tmp) / "bench", base_port=free_base())
        cluster.start()
        try:
            cluster.wait_for_leader()
            demo = cluster.bootstrap_demo()
            status = cluster.wait_for_leader()
            leader = cluster.member(status.leader)
            follower = next(m for m in cluster.members if m.id != leader.id)
            tls = cluster.tls()

            def client_of(member_grpc: str) -> HsmClient:
                return HsmClient([member_grpc], tls)

            def read_op(grpc: str) -> Callable[[], Callable[[], None]]:
                return lambda: (lambda c: lambda: (c.node_status(), None)[1])(client_of(grpc))

            with client_of(leader.grpc) as client:
                token = client.login("admin", demo["users"]["admin"]).token

            def write_op(grpc: str) -> Callable[[], Callable[[], None]]:
                return lambda: (lambda s: lambda: (s.audit_note("bench"), None)[1])(
                    client_of(grpc).resume(token)
                )

            print(f"{'threads':>7}  {'operation':<32} {'ops/s':>8} {'p50 ms':>8} {'vs baseline':>12}")
            for threads in thread_counts:
                base_rate, base_p50 = measure(read_op(leader.grpc), threads, args.seconds)
                print(
                    f"{threads:>7}  {'baseline: local read (leader)':<32} {base_rate:>8.0f} {base_p50:>8.2f} {1.0:>11.2f}x"
                )
                for name, op in (
                    ("replicated write via leader", write_op(leader.grpc)),
                    ("replicated write via follower", write_op(follower.grpc)),
                ):
                    rate, p50 = measure(op, threads, args.seconds)
                    print(f"{threads:>7}  {name:<32} {rate:>8.0f} {p50:>8.2f} {rate / base_rate:>11.2f}x")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
