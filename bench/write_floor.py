"""The write floor of the parts hsmnode must use (issue 16): gRPC over mutual TLS, pysyncobj, three
member processes and the client on this machine, with NO hsmnode logic, against hsmnode's own key
creation at the same offered rates in the same run.

The floor: three processes of plain pysyncobj (the pinned version; the `pysyncobj` engine's
SyncObjConf of bench/raft_baseline.py: Raft password, journal and full dump files, the dev timings),
each with one replicated no-op that takes an opaque batch (bytes) and returns its length. The leader,
once elected, serves one unary gRPC method over mutual TLS (a CA and certificates from
hsmnode.crypto, as `hsmnode dev` makes them; raw-bytes serializers): the request carries N payloads
of PAYLOAD bytes (a KeyCreate command is ~500 bytes of JSON), the handler proposes the request as ONE
Raft entry and waits for it (callback and wake-up: hsmnode/raft/together.py), and answers N results
of PAYLOAD bytes. The leader also serves the same method without TLS on the next port (`--variants
insecure`). This process is the client: one mTLS channel, 16 threads offered open loop
(bench.writes.paced) at each of `--rates`, their calls coalesced exactly as the SDK coalesces writes
(hsmnode.client._write_batch.WriteBatcher: same linger and batch size, one batch in flight, a lone
write goes alone as a unary call), and a lone writer (1 thread, closed loop).

What the floor leaves out, all of which hsmnode's key creation pays: sessions and their checks
(the token, the caller's role), the client certificate's registration check, protobuf messages
and the SDK's layers (request ids, deadlines, failover, the x-hsm-leader hint), AES key generation
and wrapping under the SMK, the command's encoding and hsmnode's Raft layer (HsmSyncObj's framing,
PreVote, lease, group commit), apply (decode, authorize, store the object, the audit hash chain)
and the answer's encoding; the member's interceptors (metrics, request log).

Rows (group "replicated writes"): the floor's p50 in ms per rate and the lone write's, the note
giving served ops/s, p99, writes per batch and CPU ms per write of each process (idle subtracted,
* the leader). Unless `--no-compare` (always on in `run(ctx)`): hsmnode's key creation at the same
rates on a fresh DevCluster (bench.write_curve.runs), one row each, its p50 against the floor's p50
(the ratio). A rate that this row or the floor served at under 95% of the rate offered gets no
ratio (the note says which: the machine was busy; run again). Ports: the first free block from
15000 up, or from HSMNODE_BENCH_BASE_PORT (bench/README.md, "Ports").
In `make bench` (`run(ctx)`) a row lasts at most RUN_SECONDS (2.5 s), to keep the module's part
≤ 40 s; run alone for longer rows.
`--variants insecure,unary,pipelined,echo` adds the floor without TLS, with one unary call per write
(no coalescing), with the batcher's light band for every load (a batch goes at once, without
lingering, while fewer than MAX_INFLIGHT are in flight), and answered by the leader without Raft
(gRPC mTLS and the batcher alone), at the same rates: what TLS, coalescing, one batch in flight and
Raft each cost.

    .venv/bin/python -m bench.write_floor [--seconds 3] [--rates 250,500,1000] [--threads 16]
        [--no-compare] [--variants insecure,unary,pipelined,echo]
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    BenchContext,
    Row,
    Timing,
    cpu_seconds,
    free_base,
    print_rows,
    scratch,
    timed,
)
from bench.raft_baseline import addresses, plain_conf, settle, start_members, stop_members
from bench.writes import GOAL_RATE, GROUP, paced

PAYLOAD = 500  # bytes per write, each way (a KeyCreate command is ~500 bytes of JSON)
TIMEOUT = 5.0  # s a write may take
METHOD = "/bench.Floor/Write"
ECHO = "/bench.Floor/Echo"  # the same answer, nothing proposed: gRPC and the batcher alone
RATES = (250.0, 500.0, 1000.0)
# coalesced over mTLS; coalesced without TLS; mTLS, no coalescing; mTLS, batches pipelined (light
# band); mTLS, coalesced, answered without Raft
VARIANTS = ("mtls", "insecure", "unary", "pipelined", "echo")
WHAT = {
    "mtls": "gRPC mTLS + pysyncobj, no hsmnode logic",
    "insecure": "gRPC without TLS + pysyncobj, no hsmnode logic",
    "unary": "gRPC mTLS + pysyncobj, one call per write (no coalescing), no hsmnode logic",
    "pipelined": "gRPC mTLS + pysyncobj, batches pipelined (WriteBatcher light band), no hsmnode logic",
    "echo": "gRPC mTLS alone (answered by the leader without Raft), coalesced",
}
RUN_SECONDS = 2.5  # a row's length at most in `make bench` (its part ≤ 40 s at 3 s per row: 44 s)
OBJECTS = 8000  # key creations the compare run may make (bench.write_curve.OBJECTS)


def _member(index: int, raft_ports: list[int], grpc_port: int, data: Path, tls: Path) -> None:
    """One member process: plain pysyncobj; the leader serves METHOD over mTLS on `grpc_port` and
    without TLS on `grpc_port + 1`, prints "serving" and serves until stdin closes."""
    import grpc
    from pysyncobj import FAIL_REASON, SyncObj, replicated

    from hsmnode.raft.together import propose_together
    from hsmnode.server.app import MAX_WORKERS, SERVER_OPTIONS

    me, partners = addresses(index, raft_ports)
    data.mkdir(parents=True, exist_ok=True)

    class Floor(SyncObj):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(me, partners, plain_conf(data))

        @replicated  # type: ignore[misc]
        def take(self, batch: bytes) -> int:
            return len(batch)

    obj = Floor()
    leads = settle(
        lambda: obj._getLeader() is not None and obj.isReady(), lambda: obj._getLeader() == obj.selfNode
    )
    server = None
    if leads:
        result = b"r" * PAYLOAD

        def write(request: bytes, context: grpc.ServicerContext) -> bytes:
            outcome = propose_together(obj.take, [request], [TIMEOUT])[0]
            if outcome is None or outcome[1] != FAIL_REASON.SUCCESS:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"entry not committed: {outcome}")
            return result * (outcome[0] // PAYLOAD)

        def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
            return result * (len(request) // PAYLOAD)

        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=MAX_WORKERS),
            options=SERVER_OPTIONS,
            maximum_concurrent_rpcs=MAX_WORKERS * 8,
        )
        handlers = {  # no serializers: raw bytes
            "Write": grpc.unary_unary_rpc_method_handler(write),
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Floor", handlers),))
        credentials = grpc.ssl_server_credentials(
            [((tls / "node.key").read_bytes(), (tls / "node.pem").read_bytes())],
            root_certificates=(tls / "ca.pem").read_bytes(),
            require_client_auth=True,
        )
        if not server.add_secure_port(f"127.0.0.1:{grpc_port}", credentials):
            raise SystemExit(f"cannot listen on {grpc_port}")
        if not server.add_insecure_port(f"127.0.0.1:{grpc_port + 1}"):
            raise SystemExit(f"cannot listen on {grpc_port + 1}")
        server.start()
        print("serving", flush=True)
    sys.stdin.read()  # the parent closes it when done
    if server is not None:
        server.stop(0)
    obj.destroy()


def make_tls(where: Path) -> None:
    """A cluster CA, a server certificate for 127.0.0.1 and a client certificate in `where`
    (hsmnode.crypto, as `hsmnode dev` makes them)."""
    from hsmnode import crypto

    where.mkdir(parents=True, exist_ok=True)
    ca = crypto.create_ca("hsmnode bench floor CA")
    node = crypto.issue_certificate(ca, "node", hosts=["127.0.0.1", "localhost"], server=True)
    client = crypto.issue_certificate(ca, "client")
    for name, data in (
        ("ca.pem", ca.cert_pem),
        ("node.pem", node.cert_pem),
        ("node.key", node.key_pem),
        ("client.pem", client.cert_pem),
        ("client.key", client.key_pem),
    ):
        (where / name).write_bytes(data)


class FloorClient:
    """This process's channel to the floor's leader (mTLS, or without TLS) and its WriteBatcher (the
    SDK's settings; `pipe_below`: its light band, 0 as in the SDK); `method`: METHOD or ECHO."""

    def __init__(self, port: int, tls: Path | None, pipe_below: int = 0, method: str = METHOD) -> None:
        import grpc

        from hsmnode.client._transport import _CHANNEL_OPTIONS
        from hsmnode.client._write_batch import WriteBatcher

        if tls is None:
            self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_CHANNEL_OPTIONS)
        else:
            credentials = grpc.ssl_channel_credentials(
                (tls / "ca.pem").read_bytes(),
                (tls / "client.key").read_bytes(),
                (tls / "client.pem").read_bytes(),
            )
            self.channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=_CHANNEL_OPTIONS)
        self.call = self.channel.unary_unary(method)  # bytes in, bytes out
        self.batcher = WriteBatcher(self._send, pipe_below=pipe_below)

    def _send(self, token: str, writes: list[Any]) -> None:
        """One batch as one call (WriteBatcher's `send`: sets every write's answer, never raises)."""
        from hsmnode.client._write_batch import Fallback

        try:
            answer = self.call(b"".join(w.request for w in writes), timeout=TIMEOUT)
        except Exception:
            answer = b""
        if len(answer) != PAYLOAD * len(writes):
            for w in writes:
                w.answer = Fallback(True)
            return
        for i, w in enumerate(writes):
            w.answer = answer[i * PAYLOAD : (i + 1) * PAYLOAD]

    def _unary(self, write: Any, maybe_applied: bool) -> bytes:
        return bytes(self.call(write.request, timeout=TIMEOUT))

    def coalesced(self, i: int) -> Callable[[], object]:
        """Thread i's write through the batcher (a lone write goes alone, unary)."""
        from hsmnode.client._write_batch import Write

        payload = os.urandom(PAYLOAD)
        return lambda: self.batcher.call(Write(payload, "floor", time.monotonic() + TIMEOUT), self._unary)

    def alone(self, i: int) -> Callable[[], object]:
        """Thread i's write as its own unary call (no coalescing)."""
        payload = os.urandom(PAYLOAD)
        return lambda: self.call(payload, timeout=TIMEOUT)

    def close(self) -> None:
        self.channel.close()


@dataclass
class Floor:
    """The three floor member processes, the leader's index and its gRPC port (mTLS; +1 without TLS)."""

    members: list[Any]
    leader: int
    port: int
    tls: Path

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.members]


def start_floor(work: Path) -> Floor:
    """Start the floor (module docstring) under `work`; returns once its leader serves. Stop with
    bench.raft_baseline.stop_members(floor.members)."""
    base = free_base()
    raft = ",".join(str(base + 100 + i) for i in range(3))
    tls = work / "tls"
    make_tls(tls)
    logs = [work / f"member{i}.log" for i in range(3)]
    members = start_members(
        lambda i: ["bench.write_floor", "--member", str(i), raft, str(base), str(work / str(i)), str(tls)],
        logs,
    )
    try:
        pipes = {p.stdout: i for i, p in enumerate(members)}
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            ready, _, _ = select.select(list(pipes), [], [], 0.2)
            for pipe in ready:
                assert pipe is not None
                if pipe.readline().strip() == "serving":
                    return Floor(members, pipes[pipe], base, tls)
            if any(p.poll() is not None for p in members):
                raise RuntimeError(f"write floor: a member exited; see {work}/member*.log")
        raise RuntimeError("write floor: no leader served within 40 s")
    except BaseException:
        stop_members(members)
        raise


def measure_floor(
    floor: Floor, variant: str, rates: list[float], threads: int, seconds: float, idle: dict[int, float]
) -> list[tuple[str, Timing, str]]:
    """(row name, Timing, note) per rate offered, then the lone write, for one variant."""
    client = FloorClient(
        floor.port + (variant == "insecure"),
        None if variant == "insecure" else floor.tls,
        pipe_below=1_000_000 if variant == "pipelined" else 0,  # every load light: up to MAX_INFLIGHT batches
        method=ECHO if variant == "echo" else METHOD,
    )
    make = client.alone if variant == "unary" else client.coalesced
    try:
        timed(make, threads, 0.3)  # warm: the channel's TLS handshake, the pools' threads
        found = []
        for rate in rates:
            t, note = _counted(floor, client, idle, lambda r=rate: paced(make, threads, r, seconds))
            found.append((f"floor: {WHAT[variant]}, {rate:,.0f}/s offered from {threads} threads", t, note))
        t, note = _counted(floor, client, idle, lambda: timed(make, 1, seconds))
        found.append((f"floor: {WHAT[variant]}, lone write (1 thread)", t, note))
        return found
    finally:
        client.close()


def idle_each(pids: list[int], seconds: float = 1.0) -> dict[int, float]:
    """CPU s/s each process of `pids` uses while nothing is asked of it (bench.common.idle_cpu, per
    process, all sampled over the same `seconds`)."""
    before, started = {pid: cpu_seconds(pid) for pid in pids}, time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {pid: (cpu_seconds(pid) - before[pid]) / elapsed for pid in pids}


def _counted(
    floor: Floor, client: FloorClient, idle: dict[int, float], run: Callable[[], Timing]
) -> tuple[Timing, str]:
    """Run `run`; its Timing and a note: p99, writes per batch, CPU ms per write per process."""
    b = client.batcher
    batches, batched, lone = b.batches, b.batched, b.lone
    before = {pid: cpu_seconds(pid) for pid in floor.pids}
    mine, started = time.process_time(), time.monotonic()
    t = run()
    elapsed = time.monotonic() - started
    spent = {pid: max(0.0, cpu_seconds(pid) - before[pid] - idle[pid] * elapsed) for pid in floor.pids}
    client_s = time.process_time() - mine
    ops = max(t.ops, 1)
    parts = [
        f"m{i}{'*' if i == floor.leader else ''} {1000 * spent[pid] / ops:.2f}"
        for i, pid in enumerate(floor.pids)
    ]
    total = 1000 * (sum(spent.values()) + client_s) / ops
    batches, batched, lone = b.batches - batches, b.batched - batched, b.lone - lone
    per = (
        f"{batched / batches:.1f} writes per batch ({batches} batches, {lone} lone)"
        if batches
        else "no batches"
    )
    return t, (
        f"{t.rate:,.0f} ops/s served, p99 {t.p99_ms:.2f} ms, {t.failed} failed; {per}; "
        f"CPU ms/write {', '.join(parts)}, client {1000 * client_s / ops:.2f}, total {total:.2f} (* leader)"
    )


def compare(work: Path, rates: list[float], threads: int, seconds: float) -> list[tuple[str, Timing, str]]:
    """hsmnode's key creation at `rates` offered and lone, on a fresh DevCluster (write_curve.runs)."""
    from bench.write_curve import runs
    from hsmnode.ops.devcluster import DevCluster

    cluster = DevCluster.create(work / "hsmnode", base_port=free_base(), metrics=True)
    try:
        cluster.start()
        cluster.wait_for_leader(timeout=30.0)
        found = runs(cluster, seconds, threads, rates, 0, closed_loop=False)
    finally:
        cluster.stop()
    offered = [(name, t, f"{how}; {cpu}") for name, t, how, cpu in found[1:]]
    return [*offered, (found[0][0], found[0][1], "unary")]


def check(rates: list[float], seconds: float, threads: int, variants: list[str], with_compare: bool) -> None:
    """Raises ValueError (its message names the option to change) for arguments the run cannot honour."""
    if not rates or any(r <= 0 for r in rates):
        raise ValueError(f"--rates {rates}: give one or more offered rates (writes/s) above 0")
    if seconds <= 0 or threads < 1:
        raise ValueError("--seconds must be above 0 and --threads at least 1")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"--variants {','.join(unknown)}: unknown; choose among {', '.join(VARIANTS[1:])}")
    # the compare cluster's keys: the offered runs, a lone writer's ≤ 400/s, the warm-up's ~600
    planned = (sum(rates) + 400) * seconds + 600
    if with_compare and planned > OBJECTS:
        raise ValueError(
            f"--rates and --seconds plan ~{planned:,.0f} key creations on the compare cluster; a run may "
            f"make {OBJECTS:,} (a partition holds 10,000 objects): fewer rates or seconds, or --no-compare"
        )


def measure(
    work: Path, rates: list[float], threads: int, seconds: float, variants: list[str], with_compare: bool
) -> list[Row]:
    """The rows (module docstring)."""
    check(rates, seconds, threads, variants, with_compare)
    floor = start_floor(work / "floor")
    try:
        idle = idle_each(floor.pids)
        measured = {v: measure_floor(floor, v, rates, threads, seconds, idle) for v in ["mtls", *variants]}
    finally:
        stop_members(floor.members)
    base = measured["mtls"]
    rows = [Row(GROUP, name, round(t.p50_ms, 2), "ms p50", note=note) for name, t, note in base]
    offered: list[float | None] = [*rates, None]  # the rows' order: each rate, then the lone write
    for v in variants:  # each variant against the mTLS coalesced floor, rate by rate
        for (name, t, note), (_, f, _), rate in zip(measured[v], base, offered, strict=True):
            ratio, short = _against(t, f, rate)
            rows.append(
                Row(
                    GROUP,
                    name,
                    round(t.p50_ms, 2),
                    "ms p50",
                    baseline="floor (mTLS, coalesced) p50",
                    baseline_value=round(f.p50_ms, 2),
                    ratio=ratio,
                    note=short + note,
                )
            )
    if with_compare:
        hsm = compare(work, rates, threads, seconds)
        for (name, t, note), (_, f, _), rate in zip(hsm, base, offered, strict=True):
            ratio, short = _against(t, f, rate)
            rows.append(
                Row(
                    GROUP,
                    f"hsmnode: {name}",
                    round(t.p50_ms, 2),
                    "ms p50",
                    baseline="floor p50, same run",
                    baseline_value=round(f.p50_ms, 2),
                    ratio=ratio,
                    note=f"{short}{t.rate:,.0f} ops/s served, p99 {t.p99_ms:.2f} ms, {t.failed} failed; {note}",
                )
            )
    return rows


SERVED_SHARE = 0.95  # a rate row served at under this share of its offered rate gets no ratio


def _against(t: Timing, floor: Timing, offered: float | None) -> tuple[float | None, str]:
    """(ratio of `t`'s p50 to the floor's, "" ) or (None, a note's opening saying why there is none):
    at an offered rate, a row that served under SERVED_SHARE of it measured a backlog, not the rate."""
    short = [
        who
        for who, timing in (("this row", t), ("the floor", floor))
        if offered and timing.rate < SERVED_SHARE * offered
    ]
    if short:
        return None, (
            f"no ratio: {' and '.join(short)} served under {SERVED_SHARE:.0%} of the {offered:,.0f}/s "
            "offered (a backlog, not the rate: the machine was busy, run again); "
        )
    return (round(t.p50_ms / floor.p50_ms, 2) if floor.p50_ms else None), ""


def run(ctx: BenchContext) -> list[Row]:
    """The floor and hsmnode at RATES from the run's most threads (make bench: compare on, no
    variants), each row at most RUN_SECONDS long."""
    seconds = min(ctx.seconds, RUN_SECONDS)
    rows = measure(ctx.work / "write-floor", list(RATES), max(ctx.threads), seconds, [], True)
    at_goal = rows[RATES.index(GOAL_RATE)].value  # the floor's rows come first, in RATES' order
    if at_goal:
        ctx.baselines["write floor p50 ms at 1,000/s"] = at_goal  # bench.writes' offered row notes it
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--member":
        index, raft, grpc_port, data, tls = sys.argv[2:7]
        _member(int(index), [int(p) for p in raft.split(",")], int(grpc_port), Path(data), Path(tls))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="per measured row (default 3)")
    parser.add_argument("--rates", default="250,500,1000", help="offered writes/s, comma-separated")
    parser.add_argument("--threads", type=int, default=16, help="writer threads (default 16)")
    parser.add_argument(
        "--no-compare", action="store_true", help="the floor only, not hsmnode's key creation"
    )
    parser.add_argument(
        "--variants",
        default="",
        help="also: insecure (no TLS), unary (no coalescing), pipelined (light band), echo (no Raft), comma-separated",
    )
    args = parser.parse_args()
    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates {args.rates!r}: comma-separated numbers, e.g. 250,500,1000")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    try:
        check(rates, args.seconds, args.threads, variants, not args.no_compare)
    except ValueError as exc:
        parser.error(str(exc))
    with scratch() as work:
        rows = measure(work, rates, args.threads, args.seconds, variants, not args.no_compare)
    print_rows(rows)


if __name__ == "__main__":
    main()
