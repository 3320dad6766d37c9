"""Crypto throughput through a real 3-member cluster over mTLS gRPC (unary calls), against the same
run's baselines (bench.baselines: raw `cryptography` on one core, SoftHSMv2 in-process).

RSA-2048 PKCS#1 sign, ECDSA P-256 sign and AES-256-GCM encrypt of 1 KiB from each thread count, one
client per thread, round robin over the members; ratio against raw (RSA) or SoftHSMv2 (ECDSA, AES),
the other ratio in the note. These rows carry no goal: each call here is its own RPC, which is what a
client gets with one client per thread. Issue 16's goals are measured through the SDK's default path
(one client, many threads, calls coalesced into CryptoStream batches): bench/stream.py, RSA's
≥ 0.8x raw included.

    .venv/bin/python -m bench.crypto [--seconds 3] [--threads 8 16]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bench import baselines
from bench.common import BenchContext, Row, alone_parser, run_alone, timed
from hsmnode.ops.devcluster import DevCluster

GROUP = "crypto through hsmnode (unary calls)"
DATA = os.urandom(1024)


UNARY_NOTE = "; no goal here: issue 16's goals are on the coalesced rows (bench.stream)"

# issue 16's rows: (name, baseline name in ctx.baselines, session call); the ratio is taken against
# the baseline its acceptance names (RSA: raw cryptography on one core; ECDSA and AES: SoftHSMv2)
ROWS: tuple[tuple[str, str, str, Callable[[Any], object]], ...] = (
    (
        "RSA-2048 PKCS#1 sign",
        "RSA-2048 sign",
        "raw",
        lambda s: s.sign("rsa", DATA, mechanism="RSA-PKCS1-SHA256"),
    ),
    (
        "ECDSA P-256 sign",
        "ECDSA P-256 sign",
        "SoftHSMv2",
        lambda s: s.sign("ec", DATA, mechanism="ECDSA-SHA256"),
    ),
    (
        "AES-256-GCM 1 KiB encrypt",
        "AES-256-GCM 1 KiB",
        "SoftHSMv2",
        lambda s: s.encrypt("aes", DATA, mechanism="AES-GCM"),
    ),
)


def crypto_keys(cluster: DevCluster) -> str:
    """Create the rsa, ec and aes keys in the demo partition (once); a CO session token for them."""
    demo = cluster.bootstrap_demo()
    co = demo["partition"]["co_password"]
    with cluster.app_client() as app:
        setup = app.open_session("demo", co, role="CO")
        setup.keep = True
        labels = {k.label for k in setup.list_keys()}
        for label, key_type, size, usage in (
            ("rsa", "RSA", 2048, "sign"),
            ("ec", "EC", "P-256", "sign"),
            ("aes", "AES", 256, "encrypt"),
        ):
            if label not in labels:
                setup.generate_key(label, key_type, size, usage=[usage])
        return str(setup.token)


def run(ctx: BenchContext) -> list[Row]:
    """Each operation through the shared cluster from each thread count (one client per thread,
    round robin over the members), against ctx.baselines (bench.baselines runs first)."""
    cluster = ctx.shared_cluster()
    token = crypto_keys(cluster)
    members = [m.id for m in cluster.members]
    rows = []
    for threads in ctx.threads:
        clients = [cluster.app_client(members[i % len(members)]) for i in range(threads)]
        try:
            sessions = [c.resume_partition(token, "demo", "CO") for c in clients]
            for name, op_name, against, call in ROWS:
                t = timed(lambda i, call=call, ss=sessions: lambda: call(ss[i]), threads, ctx.seconds)
                base = ctx.baselines.get(f"{against} {op_name}")
                raw = ctx.baselines.get(f"raw {op_name}")
                other = f"; {t.rate / raw:.3f}x raw 1 core" if raw and against != "raw" else ""
                ratio = round(t.rate / base, 3) if base else None
                rows.append(
                    Row(
                        GROUP,
                        f"{name}, {threads} threads",
                        round(t.rate, 1),
                        "ops/s",
                        baseline=f"{against} {op_name}" if base else f"{against} baseline not measured",
                        baseline_value=round(base, 1) if base else None,
                        ratio=ratio,
                        note=f"p50 {t.p50_ms:.2f} ms, {t.failed} failed{other}{UNARY_NOTE}",
                    )
                )
        finally:
            for c in clients:
                c.close()
    return rows


def main() -> None:
    parser = alone_parser(__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=[8, 16])
    args = parser.parse_args()
    run_alone(lambda ctx: baselines.run(ctx) + run(ctx), args.seconds, tuple(args.threads))


if __name__ == "__main__":
    main()
