"""The Raft layer alone: what one write costs without gRPC, sessions or key generation.

Three member processes on 127.0.0.1, no gRPC. The member that is leader once all are ready writes
from N threads and reports writes/s and latency (a write at a follower adds a forward and a wait for
the next commit index: compare with the SDK's "all to leader" row). Two engines, same settings as a member
(`appendEntriesUseBatch=False`, Raft password, journal and dump files, the dev timings):

- `pysyncobj`: plain pysyncobj 0.3.17, a replicated counter (the floor of this machine now);
- `hsmnode`: `hsmnode.replication.Replicator` (HsmSyncObj: PreVote, lease, group commit), proposing an
  audit event through the real apply (decode, authorize, hash-chain) — the Raft share of a key create.

Their ratio to the same run's key creation through the SDK says how much of a write is Raft.

    .venv/bin/python -m bench.raft_baseline [--seconds 3] [--threads 1 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import BenchContext, Row, free_base, scratch, timed

GROUP = "replicated writes"
PASSWORD = "bench-raft-password"


def plain_conf(data: Path) -> Any:
    """The `pysyncobj` engine's SyncObjConf (module docstring): a member's settings — Raft password,
    `appendEntriesUseBatch=False`, journal and full dump files in `data`, the dev timings
    (hsmnode.config.RaftTimings) — on plain pysyncobj."""
    from pysyncobj import SyncObjConf

    from hsmnode.config import RaftTimings

    timings = RaftTimings()
    return SyncObjConf(
        password=PASSWORD,
        appendEntriesUseBatch=False,
        raftMinTimeout=timings.election_timeout_min,
        raftMaxTimeout=timings.election_timeout_max,
        appendEntriesPeriod=timings.heartbeat_interval,
        journalFile=str(data / "journal"),
        fullDumpFile=str(data / "dump"),
        connectionTimeout=600.0,
    )


def addresses(index: int, ports: list[int]) -> tuple[str, list[str]]:
    """Member `index`'s Raft address on 127.0.0.1 and its partners', from the members' Raft ports."""
    every = [f"127.0.0.1:{p}" for p in ports]
    return every[index], [a for i, a in enumerate(every) if i != index]


def settle(ready: Callable[[], bool], leading: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Wait until `ready()` (a leader known, this member caught up), then 0.5 s more for every member
    to see the same leader; whether this member leads. Raises SystemExit after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"no leader within {timeout:g} s")
        time.sleep(0.05)
    time.sleep(0.5)
    return leading()


def start_members(argv: Callable[[int], list[str]], logs: list[Path]) -> list[subprocess.Popen[str]]:
    """One member process per log (`python -m <argv(i)>`), stdin and stdout piped (text), stderr to
    its log. A member serves until its stdin closes (stop_members)."""
    members = []
    for i, path in enumerate(logs):
        with open(path, "wb") as log:
            members.append(
                subprocess.Popen(
                    [sys.executable, "-m", *argv(i)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            )
    return members


def stop_members(members: list[subprocess.Popen[str]]) -> None:
    """Close every member's stdin, then wait for each (10 s, then kill)."""
    for p in members:
        assert p.stdin is not None
        with contextlib.suppress(OSError):
            p.stdin.close()
    for p in members:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stdout is not None:
            p.stdout.close()


def _member(
    index: int, ports: list[int], engine: str, data: Path, seconds: float, threads: list[int]
) -> None:
    """One member process; member 0 measures and prints one JSON line, the others serve until stdin closes."""
    from pysyncobj import SyncObj, replicated

    from hsmnode.config import RaftTimings
    from hsmnode.domain import commands as c
    from hsmnode.replication import RaftSettings, Replicator

    me, partners = addresses(index, ports)
    data.mkdir(parents=True, exist_ok=True)
    timings = RaftTimings()
    if engine == "pysyncobj":

        class Counter(SyncObj):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__(me, partners, plain_conf(data))
                self.value = 0

            @replicated  # type: ignore[misc]
            def add(self, n: int) -> int:
                self.value += n
                return self.value

        obj = Counter()

        def ready() -> bool:
            return bool(obj._getLeader() is not None and obj.isReady())

        def leading() -> bool:
            return bool(obj._getLeader() == obj.selfNode)

        def write() -> object:
            return obj.add(1, sync=True, timeout=5.0)

        def close() -> None:
            obj.destroy()
    else:
        replicator = Replicator(
            RaftSettings(
                self_address=me,
                partner_addresses=tuple(partners),
                data_dir=data,
                password=PASSWORD,
                election_timeout_min=timings.election_timeout_min,
                election_timeout_max=timings.election_timeout_max,
                heartbeat_interval=timings.heartbeat_interval,
            )
        )

        def ready() -> bool:
            s = replicator.status()
            return s.leader_address is not None and s.ready and replicator._obj.live_quorum()

        def leading() -> bool:
            return replicator.status().role == "leader"

        def write() -> object:
            cmd = c.AuditEvent(
                actor="bench",
                request_id=uuid.uuid4().hex,
                timestamp=int(time.time() * 1000),
                event="bench.raft",
                detail="",
            )
            return replicator.propose(cmd, timeout=5.0)

        def close() -> None:
            replicator.close()

    if not settle(ready, leading):
        sys.stdin.read()  # the parent closes it once the leader reported
        close()
        return
    timed(lambda _i: write, 1, 0.3)
    out = {}
    for n in threads:
        t = timed(lambda _i: write, n, seconds)
        out[str(n)] = [t.rate, t.p50_ms, t.p99_ms, t.failed]
    print(json.dumps(out), flush=True)
    close()


def measure(work: Path, engine: str, seconds: float, threads: list[int]) -> dict[str, list[float]]:
    base = free_base()
    ports = ",".join(str(base + 100 + i) for i in range(3))  # the Raft ports of a bench block
    args = [str(seconds), ",".join(map(str, threads))]
    (work / engine).mkdir(parents=True, exist_ok=True)
    logs = [work / engine / f"member{i}.log" for i in range(3)]
    members = start_members(
        lambda i: [
            "bench.raft_baseline",
            "--member",
            str(i),
            engine,
            ports,
            str(work / engine / str(i)),
            *args,
        ],
        logs,
    )
    found: dict[str, list[float]] | None = None
    try:
        deadline = time.monotonic() + 60 + 4 * seconds * len(threads)
        while found is None and time.monotonic() < deadline:
            for p in members:
                assert p.stdout is not None
                if p.poll() is not None:
                    line = p.stdout.read().strip()
                    if line:
                        found = json.loads(line.splitlines()[-1])
                    elif p.returncode != 0:
                        raise RuntimeError(f"raft baseline ({engine}): a member exited with {p.returncode}")
            time.sleep(0.1)
    finally:
        stop_members(members)
    if found is None:
        raise RuntimeError(f"raft baseline ({engine}): no leader reported in time")
    # pysyncobj's own append path truncates entries it already applied when appends arrive out of
    # order under load (what hsmnode.raft.rules.reconcile_append prevents): count them
    found["truncations"] = [
        sum(log.read_text(errors="replace").count("truncating already-applied") for log in logs)
    ]
    return found


def run(ctx: BenchContext) -> list[Row]:
    threads = [1, max(ctx.threads)]
    rows = []
    for engine, what in (
        ("pysyncobj", "plain pysyncobj counter"),
        ("hsmnode", "Replicator.propose (HsmSyncObj + apply)"),
    ):
        result = measure(ctx.work / "raft", engine, ctx.seconds, threads)
        one = result["1"][0]
        for n in threads:
            rate, p50, p99, failed = result[str(n)]
            ctx.baselines[f"raft {engine} {n}"] = rate
            rows.append(
                Row(
                    GROUP,
                    f"Raft only, {what}, {n} thread{'s' if n > 1 else ''}",
                    round(rate, 1),
                    "ops/s",
                    baseline="its 1-thread rate" if n > 1 else "",
                    baseline_value=round(one, 1) if n > 1 else None,
                    ratio=round(rate / one, 2) if n > 1 and one else None,
                    note=f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, {int(failed)} failed; no gRPC, at the leader"
                    + (f"; {int(result['truncations'][0])} applied entries truncated" if n > 1 else ""),
                )
            )
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--member":
        index, engine, ports, data, seconds, threads = sys.argv[2:8]
        _member(
            int(index),
            [int(p) for p in ports.split(",")],
            engine,
            Path(data),
            float(seconds),
            [int(t) for t in threads.split(",")],
        )
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[16])
    args = parser.parse_args()
    with scratch() as work:
        for row in run(BenchContext(work, seconds=args.seconds, threads=tuple(args.threads))):
            print(json.dumps(row.to_dict(), ensure_ascii=False))


if __name__ == "__main__":
    main()
