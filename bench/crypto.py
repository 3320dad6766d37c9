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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from bench.bench_replication import free_base  # noqa: E402
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
