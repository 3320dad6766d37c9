"""The cost of durable mode: replicated writes per second and latency, fsync on and off, same run.

Two local 3-member clusters, one with `[raft] durable = false` (the dev default) and one with
`durable = true` (the deploy default: the journal is fsynced before a write is acknowledged,
fsyncs of concurrent writes batched). The same write (an audit note through the leader) at 1
and 8 threads; prints ops/s, p50 latency and the durable/non-durable ratio.

    .venv/bin/python bench/durable.py [--seconds 3] [--threads 1,8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_replication import free_base, measure  # noqa: E402
from hsmnode.client import HsmClient  # noqa: E402
from hsmnode.ops.devcluster import DevCluster, DevTimings  # noqa: E402


def run(root: Path, durable: bool, threads: list[int], seconds: float) -> dict[int, tuple[float, float]]:
    cluster = DevCluster.create(root, base_port=free_base(), timings=DevTimings(durable=durable))
    cluster.start()
    try:
        cluster.wait_for_leader()
        demo = cluster.bootstrap_demo()
        leader = cluster.member(cluster.wait_for_leader().leader)
        tls = cluster.tls()
        with HsmClient([leader.grpc], tls) as client:
            token = client.login("admin", demo["users"]["admin"]).token

        def write_op() -> Callable[[], None]:
            admin = HsmClient([leader.grpc], tls).resume(token)
            return lambda: (admin.audit_note("bench"), None)[1]

        measure(write_op, 1, 0.5)  # warm-up: channels, first compactions
        return {t: measure(write_op, t, seconds) for t in threads}
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", default="1,8")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        plain = run(Path(tmp) / "plain", False, threads, args.seconds)
        durable = run(Path(tmp) / "durable", True, threads, args.seconds)
    print(f"{'threads':>7}  {'mode':<22} {'writes/s':>9} {'p50 ms':>8} {'vs not durable':>15}")
    for t in threads:
        rate, p50 = plain[t]
        d_rate, d_p50 = durable[t]
        print(f"{t:>7}  {'durable = false':<22} {rate:>9.0f} {p50:>8.2f} {1.0:>14.2f}x")
        print(f"{t:>7}  {'durable = true (fsync)':<22} {d_rate:>9.0f} {d_p50:>8.2f} {d_rate / rate:>14.2f}x")


if __name__ == "__main__":
    main()
