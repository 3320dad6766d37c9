"""Key creation's latency against the rate offered (issue 16): where a write's time goes as the
rate rises, and what the SDK's write batching (client/_write_batch.py) does with it.

One 3-member cluster, one client shared by `--threads` threads (the SDK coalesces their
`generate_key` calls): the lone key creation (1 thread, its own client), then AES-256 key creation
offered open loop at each of `--rates` (`bench.writes.paced`: latency from each call's scheduled
time), then closed loop. Per row: served ops/s, p50/p99, writes per batch, batches sent beside
another in flight, CPU ms per write of each member and this client (idle subtracted), Raft
entries per AppendEntries round. `--pipe-below N` sets the batcher's light band
(`WriteBatcher.pipe_below`; 0, the default, is the SDK's default: one batch in flight).

    .venv/bin/python -m bench.write_curve [--seconds 1.5] [--threads 16]
        [--rates 250,500,750,1000,1250] [--pipe-below 0]

Prints one JSON row per line (bench.common.Row). A partition holds at most 10,000 objects: the
rates times the seconds, plus the closed-loop row, must stay under it (ValueError before starting).
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.common import Row, Timing, free_base, load_text, scratch, timed
from bench.writes import GROUP, WriteLoad, _cpu_of_batched, paced
from hsmnode.ops.devcluster import DevCluster

OBJECTS = 8000  # key creations a run may make (the partition's 10,000, less the warm-up and margin)
CLOSED_PER_S = 1300  # a generous closed-loop rate, to count its keys before starting


def _row(name: str, t: Timing, how: str, cpu: str) -> Row:
    cpu = cpu.replace("CPU ms/write (idle subtracted): ", "CPU ms/write ")
    note = f"p50 {t.p50_ms:.2f} ms, p99 {t.p99_ms:.2f} ms, {t.ops} ops, {t.failed} failed; {how}; {cpu}"
    return Row(GROUP, name, round(t.rate, 1), "ops/s", note=note, load=float(load_text().split()[0]))


def runs(
    cluster: DevCluster,
    seconds: float,
    threads: int,
    rates: list[float],
    pipe_below: int,
    closed_loop: bool = True,
) -> list[tuple[str, Timing, str, str]]:
    """The measured runs of `curve` on `cluster`, each (row name, Timing, how the writes travelled,
    CPU note); without `closed_loop`, the lone write and the offered rates only."""
    load = WriteLoad(cluster)
    try:
        load.warm(threads, [None])
        load.shared_client().transport.writes.batcher.pipe_below = pipe_below
        one = timed(load.key_create, 1, seconds)
        found = [("AES-256 key create, 1 thread", one, "unary", "")]
        for rate in rates:
            (t, how), cpu = _cpu_of_batched(
                cluster, load, lambda r=rate: paced(load.shared_key_create, threads, r, seconds)
            )
            found.append((f"AES-256 key create at {rate:,.0f}/s offered from {threads} threads", t, how, cpu))
        if closed_loop:
            (t, how), cpu = _cpu_of_batched(
                cluster, load, lambda: timed(load.shared_key_create, threads, seconds)
            )
            found.append((f"AES-256 key create, {threads} threads, one client (closed loop)", t, how, cpu))
        return found
    finally:
        load.close()


def curve(
    cluster: DevCluster, seconds: float, threads: int, rates: list[float], pipe_below: int
) -> list[Row]:
    """The rows (module docstring) on `cluster`."""
    return [_row(*run) for run in runs(cluster, seconds, threads, rates, pipe_below)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rates", default="250,500,750,1000,1250", help="offered writes/s, comma-separated")
    parser.add_argument("--pipe-below", type=int, default=0, help="the batcher's light band (0: off)")
    parser.add_argument("--base-port", type=int, default=0, help="the cluster's base port (0: a free one)")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    planned = (sum(rates) + CLOSED_PER_S) * args.seconds
    if planned > OBJECTS:
        raise ValueError(
            f"--rates and --seconds plan ~{planned:,.0f} key creations; a run may make {OBJECTS:,} "
            "(a partition holds 10,000 objects): fewer rates or seconds"
        )
    with scratch() as work:
        cluster = DevCluster.create(work / "curve", base_port=args.base_port or free_base(), metrics=True)
        try:
            cluster.start()
            cluster.wait_for_leader(timeout=30.0)
            rows = curve(cluster, args.seconds, args.threads, rates, args.pipe_below)
        finally:
            cluster.stop()
    for row in rows:
        json.dump(row.to_dict(), sys.stdout, ensure_ascii=False)
        print()


if __name__ == "__main__":
    main()
