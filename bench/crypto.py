"""Crypto throughput: the `cryptography` library in-process vs. a real 3-member cluster over mTLS gRPC.

For RSA-2048 sign, ECDSA P-256 sign and AES-256-GCM encrypt of 1 KiB, prints the
in-process ops/s (the baseline, measured in this run with the same thread count),
the ops/s through the cluster from N client threads (round-robin over the members),
and the ratio.

    .venv/bin/python bench/crypto.py [--seconds 3] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from bench.common import BenchContext, Row, free_base, timed  # noqa: E402
from hsmnode.ops.devcluster import DevCluster  # noqa: E402

DATA = os.urandom(1024)


def rate(make_op: Callable[[int], Callable[[], object]], threads: int, seconds: float) -> float:
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        op = make_op(i)
        n = 0
        while time.monotonic() < stop:
            op()
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / seconds


def local_ops() -> dict[str, Callable[[], object]]:
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    aes = AESGCM(AESGCM.generate_key(256))
    return {
        "RSA-2048 sign (PKCS#1 v1.5)": lambda: rsa_key.sign(DATA, padding.PKCS1v15(), hashes.SHA256()),
        "ECDSA P-256 sign": lambda: ec_key.sign(DATA, ec.ECDSA(hashes.SHA256())),
        "AES-256-GCM encrypt 1 KiB": lambda: aes.encrypt(os.urandom(12), DATA, None),
    }


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
                rows.append(
                    Row(
                        "crypto through hsmnode (unary calls)",
                        f"{name}, {threads} threads",
                        round(t.rate, 1),
                        "ops/s",
                        baseline=f"{against} {op_name}" if base else f"{against} baseline not measured",
                        baseline_value=round(base, 1) if base else None,
                        ratio=round(t.rate / base, 3) if base else None,
                        note=f"p50 {t.p50_ms:.2f} ms, {t.failed} failed{other}",
                    )
                )
        finally:
            for c in clients:
                c.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = DevCluster.create(Path(tmp) / "bench", base_port=free_base())
        cluster.start()
        try:
            cluster.wait_for_leader()
            demo = cluster.bootstrap_demo()
            co = demo["partition"]["co_password"]
            with cluster.app_client() as app, app.open_session("demo", co, role="CO") as setup:
                setup.generate_key("rsa", "RSA", 2048, usage=["sign"])
                setup.generate_key("ec", "EC", "P-256", usage=["sign"])
                setup.generate_key("aes", "AES", 256, usage=["encrypt"])
                token = setup.token
                setup.keep = True
            members = [m.id for m in cluster.members]
            clients = [cluster.app_client(members[i % len(members)]) for i in range(args.threads)]
            sessions = [c.resume_partition(token, "demo", "CO") for c in clients]
            remote: dict[str, Callable[[int], Callable[[], object]]] = {
                "RSA-2048 sign (PKCS#1 v1.5)": lambda i: (
                    lambda: sessions[i].sign("rsa", DATA, mechanism="RSA-PKCS1-SHA256")
                ),
                "ECDSA P-256 sign": lambda i: lambda: sessions[i].sign("ec", DATA, mechanism="ECDSA-SHA256"),
                "AES-256-GCM encrypt 1 KiB": lambda i: (
                    lambda: sessions[i].encrypt("aes", DATA, mechanism="AES-GCM")
                ),
            }
            local = local_ops()
            print(
                f"{args.threads} client thread(s), {args.seconds:g}s per row, 3 members on 127.0.0.1, mTLS gRPC, 1 op per call"
            )
            print(
                f"{'operation':<30} {'in-process ops/s':>17} {'cluster ops/s':>14} {'cluster/in-process':>19}"
            )
            for name, op in local.items():
                base = rate(lambda _i, op=op: op, args.threads, args.seconds)
                through = rate(remote[name], args.threads, args.seconds)
                print(f"{name:<30} {base:>17.0f} {through:>14.0f} {through / base:>18.3f}x")
            for c in clients:
                c.close()
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
