"""Replicated writes on a local 3-member cluster: AES-256 key creation and audit notes.

Rows (issue 16): key creation from 16 threads (ops/s, p50, p99; goal ≥ 1,000/s, p50 ≤ 5 ms) against
the same run's 1-thread key creation (its latency is one write's floor: proposal, one Raft round
trip, apply, answer); an audit note from 16 threads; the same key creation on a durable cluster
(`[raft] durable = true`: group-committed fsync before every acknowledgement), measured separately.

Every thread has its own client of all members (as applications do), so writes arrive at the
leader and at followers, which forward them.

    .venv/bin/python -m bench.writes [--seconds 3] [--threads 16] [--durable]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import uuid
from collections.abc import Callable

from bench.common import BenchContext, Row, Timing, scratch, timed
from hsmnode.client import HsmClient
from hsmnode.ops.devcluster import DevCluster, DevTimings

GROUP = "replicated writes"
GOAL_RATE = 1000.0
GOAL_P50_MS = 5.0


class WriteLoad:
    """Sessions for key creation and audit notes on `cluster`, one client per thread."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        demo = cluster.bootstrap_demo()
        co = demo["partition"]["co_password"]
        with cluster.app_client() as app:
            setup = app.open_session("demo", co, role="CO")
            setup.keep = True
            self.partition_token = setup.token
        with cluster.client() as admin:
            self.admin_token = admin.login("admin", demo["users"]["admin"]).token
        self._clients: list[HsmClient] = []
        self._labels = itertools.count()
        self._run = uuid.uuid4().hex[:8]

    def key_create(self, _i: int) -> Callable[[], object]:
        client = self.cluster.app_client()
        self._clients.append(client)
        session = client.resume_partition(self.partition_token, "demo", "CO")
        labels, run = self._labels, self._run
        return lambda: session.generate_key(f"bench-{run}-{next(labels)}", "AES", 256, usage=["encrypt"])

    def audit_note(self, _i: int) -> Callable[[], object]:
        client = self.cluster.client()
        self._clients.append(client)
        session = client.resume(self.admin_token)
        return lambda: session.audit_note("bench")

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()


def _row(name: str, t: Timing, threads: int, base: Timing | None = None, goal: bool = False) -> Row:
    met = (t.rate >= GOAL_RATE and t.p50_ms <= GOAL_P50_MS) if goal else None
    return Row(
        GROUP,
        name,
        round(t.rate, 1),
        "ops/s",
        baseline="1-thread key create, same cluster" if base else "",
        baseline_value=round(base.rate, 1) if base else None,
        ratio=round(t.rate / base.rate, 2) if base and base.rate else None,
        goal=f"≥ {GOAL_RATE:.0f}/s, p50 ≤ {GOAL_P50_MS:g} ms" if goal else "",
        met=met,
        note=f"{threads} thread(s), p50 {t.p50_ms:.2f} ms, p99 {t.p99_ms:.2f} ms, {t.ops} ops, {t.failed} failed",
    )


def measure(cluster: DevCluster, seconds: float, threads: int, label: str) -> list[Row]:
    load = WriteLoad(cluster)
    try:
        timed(load.key_create, 1, min(0.5, seconds))  # warm-up: channels, sessions
        one = timed(load.key_create, 1, seconds)
        many = timed(load.key_create, threads, seconds)
        rows = [
            _row(f"AES-256 key create, 1 thread{label}", one, 1),
            _row(f"AES-256 key create, {threads} threads{label}", many, threads, one, goal=not label),
        ]
        if not label:
            note = timed(load.audit_note, threads, seconds)
            rows.append(_row(f"audit note, {threads} threads", note, threads, one))
        return rows
    finally:
        load.close()


def run(ctx: BenchContext) -> list[Row]:
    threads = max(ctx.threads)
    rows = measure(ctx.shared_cluster(), ctx.seconds, threads, "")
    durable = ctx.new_cluster("durable", DevTimings(durable=True))
    try:
        rows += measure(durable, ctx.seconds, threads, " (durable: fsync, group commit)")
    finally:
        ctx.drop_cluster(durable)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--durable", action="store_true", help="also measure a durable cluster")
    args = parser.parse_args()
    with scratch() as work:
        ctx = BenchContext(work, seconds=args.seconds, threads=(args.threads,))
        try:
            rows = run(ctx) if args.durable else measure(ctx.shared_cluster(), args.seconds, args.threads, "")
        finally:
            ctx.close()
    for row in rows:
        json.dump(row.to_dict(), sys.stdout, ensure_ascii=False)
        print()


if __name__ == "__main__":
    main()
