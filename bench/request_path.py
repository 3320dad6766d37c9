"""The unary request path's CPU per call: ECDSA P-256 and RSA-2048 sign through a 3-member cluster,
and where the time goes (issue 16).

On the run's shared cluster (ctx.shared_cluster(): member processes, mTLS gRPC), with bench.crypto's
EC P-256 and RSA-2048 keys in the demo partition, for each thread count signs 1 KiB through ordinary
`session.sign` (one call per operation, one client per thread, clients spread over the members) and
reports operations per CPU-second of the three members and the client together (the members' idle
CPU, Raft heartbeats and watchers, measured first and subtracted) against raw `cryptography`'s per
CPU-second on one core (bench.baselines, same run): the ratio an idle machine would show, which the
ops/s ratio (bench.crypto's rows) is not when other processes load the cores. The note gives the
members' and the client's CPU µs per call and the ops/s.

`--profile DIR` (run alone) samples every member and this (client) process with py-spy (needs root
or ptrace rights; `pip install py-spy`) during one extra ECDSA run, writes the collapsed stacks to
DIR, and prints the top costs in microseconds of CPU per call: see bench/README.md, "Profiling the
request path".

    .venv/bin/python -m bench.request_path [--threads 8 16] [--seconds 5]
        [--profile /tmp/prof] [--profile-threads 16]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import baselines
from bench.common import (
    BenchContext,
    Row,
    alone_parser,
    cpu_during,
    idle_cpu,
    load_text,
    member_pids,
    run_alone,
    timed,
)
from bench.crypto import crypto_keys
from hsmnode.client import HsmClient, PartitionSession
from hsmnode.ops.devcluster import DevCluster

GROUP = "the unary request path (CPU per call)"
DATA = os.urandom(1024)
PROFILE_RATE = 250  # py-spy samples per second
# (row name, bench.baselines' operation, key label, mechanism)
OPERATIONS = (
    ("ECDSA P-256 sign", "ECDSA P-256 sign", "ec", "ECDSA-SHA256"),
    ("RSA-2048 PKCS#1 sign", "RSA-2048 sign", "rsa", "RSA-PKCS1-SHA256"),
)


def signers(cluster: DevCluster, token: str, threads: int) -> tuple[list[HsmClient], list[PartitionSession]]:
    """(clients, sessions): one client per thread, round robin over the members, each resumed
    into the demo partition with `token`."""
    members = [m.id for m in cluster.members]
    clients = [cluster.app_client(members[i % len(members)]) for i in range(threads)]
    return clients, [c.resume_partition(token, "demo", "CO") for c in clients]


def run(ctx: BenchContext) -> list[Row]:
    """A row per operation and thread count: ops per CPU-second of members + client against raw."""
    cluster = ctx.shared_cluster()
    token = crypto_keys(cluster)
    pids = member_pids(cluster)
    idle = idle_cpu(pids, 0.5 if ctx.quick else 2.0)
    rows = []
    clients, sessions = signers(cluster, token, max(ctx.threads))
    try:
        for s in sessions:  # warm every channel
            s.sign("ec", DATA, mechanism="ECDSA-SHA256")
        for name, op, label, mechanism in OPERATIONS:
            for threads in ctx.threads:

                def make(i: int, label: str = label, mechanism: str = mechanism) -> Callable[[], object]:
                    s = sessions[i]
                    return lambda: s.sign(label, DATA, mechanism=mechanism)

                t, cpu = cpu_during(pids, lambda make=make, n=threads: timed(make, n, ctx.seconds), idle)
                member_us, client_us = cpu.per_op_us(t.ops)
                per_cpu = cpu.ops_per_cpu_s(t.ops)
                raw_cpu = ctx.baselines.get(f"raw {op} per CPU-s")
                raw = ctx.baselines.get(f"raw {op}")
                rows.append(
                    Row(
                        GROUP,
                        f"{name}, {threads} threads, per CPU-second",
                        round(per_cpu, 1),
                        "ops/CPU-s",
                        baseline=f"raw {op} per CPU-s" if raw_cpu else "raw not measured (bench.baselines)",
                        baseline_value=round(raw_cpu, 1) if raw_cpu else None,
                        ratio=round(per_cpu / raw_cpu, 3) if raw_cpu else None,
                        note=f"CPU µs per call: members {member_us:.0f} + client {client_us:.0f}"
                        f" (members' idle {idle * 100:.0f}% of a core subtracted); {t.rate:,.0f} ops/s"
                        + (f" = {t.rate / raw:.3f}x raw 1 core" if raw else "")
                        + f", {t.failed} failed",
                    )
                )
    finally:
        for c in clients:
            c.close()
    return rows


# --- profile -------------------------------------------------------------------------------------


def spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--rate", str(PROFILE_RATE), "--duration", str(int(seconds))]
        + ["--gil", "--format", "raw", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _frame_name(frame: str) -> str:
    """'sign (hsmnode/service/keys.py:321)' -> 'hsmnode/service/keys.py:sign'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/hsmnode/", "/bench/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker != "site-packages/":
                path = marker.strip("/") + "/" + path
            break
    return f"{path}:{name}"


def summarize(files: list[Path], calls: int, top: int, title: str) -> None:
    """Self and inclusive CPU per call (µs) of the busiest functions in py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for f in files:
        if not f.exists():
            print(f"  ({f.name}: no samples; is py-spy allowed to trace? run as root)")
            continue
        for line in f.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack:
                continue
            n = int(count_text)
            frames = [_frame_name(fr) for fr in stack.split(";") if fr and not fr.startswith("process ")]
            frames = [fr for fr in frames if not fr.startswith("thread ")]
            if not frames:
                continue
            total += n
            own[frames[-1]] += n
            for fr in set(frames):
                inclusive[fr] += n
    per_call = 1e6 / PROFILE_RATE / max(calls, 1)
    print(f"{title}: {total * per_call:.0f} µs of sampled CPU per call ({calls} calls)")
    print(f"  {'self µs':>8} {'incl µs':>8}  function")
    for name, n in own.most_common(top):
        print(f"  {n * per_call:>8.1f} {inclusive[name] * per_call:>8.1f}  {name}")
    print("  inclusive, hsmnode frames:")
    mine = [(name, n) for name, n in inclusive.most_common() if name.startswith("hsmnode/")]
    for name, n in mine[:top]:
        print(f"  {'':>8} {n * per_call:>8.1f}  {name}")


def profile(cluster: DevCluster, op: Callable[[int], Callable[[], object]], args: argparse.Namespace) -> None:
    out: Path = args.profile
    out.mkdir(parents=True, exist_ok=True)
    seconds = max(args.seconds, 5.0)
    files = {m.id: out / f"member-{m.id}.txt" for m in cluster.members}
    files["client"] = out / "client.txt"
    pids = {m.id: cluster.pid_of(m.id) for m in cluster.members}
    pids["client"] = os.getpid()
    spies = [spy(pid, files[name], seconds + 1) for name, pid in pids.items() if pid]
    time.sleep(0.5)  # py-spy attaches
    t = timed(op, args.profile_threads, seconds)
    ops_s, calls = t.rate, t.ops
    for s in spies:
        s.wait(60)
    print(
        f"\nprofile: ECDSA P-256 sign, {args.profile_threads} threads, {ops_s:.0f} ops/s, load {load_text()}"
    )
    summarize([files[m.id] for m in cluster.members], calls, args.top, "members (all three)")
    summarize([files["client"]], calls, args.top, "client (this process)")


# --- run alone ---------------------------------------------------------------------------------


def main() -> None:
    parser = alone_parser(__doc__, seconds=5.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--profile", type=Path, default=None, help="write py-spy stacks here and summarize")
    parser.add_argument("--profile-threads", type=int, default=16)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    def measure(ctx: BenchContext) -> list[Row]:
        rows = baselines.run(ctx) + run(ctx)
        if args.profile is not None:
            cluster = ctx.shared_cluster()
            clients, sessions = signers(cluster, crypto_keys(cluster), args.profile_threads)
            try:
                profile(
                    cluster, lambda i: lambda: sessions[i].sign("ec", DATA, mechanism="ECDSA-SHA256"), args
                )
            finally:
                for c in clients:
                    c.close()
        return rows

    run_alone(measure, args.seconds, tuple(args.threads))


if __name__ == "__main__":
    main()
