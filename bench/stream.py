"""Coalesced and batched crypto (CryptoStream) vs. SoftHSMv2 in-process, same run (issue 16).

Rows, each for `seconds`, through one HsmClient (mTLS gRPC to every member of a cluster):
- ECDSA P-256 sign (ECDSA-SHA256, 1 KiB) by ordinary `session.sign` from `threads` threads,
  with coalescing off (one unary RPC per call) and on (the default: concurrent calls share
  batches on one CryptoStream per member);
- the same through `sign_many` (`batch` items per call, `bulk_threads` callers);
- AES-256-GCM encrypt of 1 KiB through `encrypt_many` (the same);
against SoftHSMv2 2.6 through python-pkcs11 in this process, one thread (CKM_ECDSA over the
1 KiB's SHA-256, hashed in Python, and CKM_AES_GCM on the same 1 KiB), measured in the same run. Prints the table, the load average
before and after, and the figures as JSON (`--json PATH` writes them).

    .venv/bin/python bench/stream.py [--seconds 3] [--threads 16] [--batch 256]

`run(cluster, ...)` measures the cluster rows on a started cluster with the dev demo (for the
unified `make bench`); `softhsm_rates(...)` the baseline. Needs softhsm2 (make system-packages)
and python-pkcs11; without them the baseline rows say "skipped".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_replication import free_base  # noqa: E402
from hsmnode.client import HsmClient  # noqa: E402
from hsmnode.ops.devcluster import DevCluster  # noqa: E402

DATA = os.urandom(1024)
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
ECDSA = "ECDSA P-256 sign"
AES = "AES-256-GCM encrypt 1 KiB"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def rate(op: Callable[[int], int], threads: int, seconds: float) -> float:
    """Operations per second: `op(i)` (thread i) returns how many operations it did."""
    counts = [0] * threads
    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def worker(i: int) -> None:
        start.wait()
        stop = time.monotonic() + seconds
        n = 0
        try:
            while time.monotonic() < stop:
                n += op(i)
        except BaseException as exc:  # a failed operation fails the row
            errors.append(exc)
        counts[i] = n

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began = time.monotonic()
    for w in workers:
        w.join()
    if errors:
        raise RuntimeError(f"an operation failed: {errors[0]!r}")
    return sum(counts) / (time.monotonic() - began)


def softhsm_rates(seconds: float) -> dict[str, float] | str:
    """SoftHSMv2 in this process, one thread: {row: ops/s}, or why it was skipped."""
    if not Path(SOFTHSM).exists():
        return f"skipped: {SOFTHSM} is missing (make system-packages installs softhsm2)"
    try:
        import pkcs11
        from pkcs11 import Attribute, KeyType, Mechanism
        from pkcs11.mechanisms import GCMParams
        from pkcs11.util.ec import encode_named_curve_parameters
    except ImportError:
        return "skipped: python-pkcs11 is not installed"
    root = Path(tempfile.mkdtemp(prefix="stream-softhsm-"))
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--so-pin",
            "so-1234",
            "--pin",
            "user-1234",
        ],
        check=True,
        capture_output=True,
    )
    token = pkcs11.lib(SOFTHSM).get_token(token_label="bench")
    with token.open(user_pin="user-1234", rw=True) as s:
        params = s.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
        )
        _, ec_key = params.generate_keypair()
        aes_key = s.generate_key(KeyType.AES, 256)

        def ecdsa(_i: int) -> int:
            ec_key.sign(
                hashlib.sha256(DATA).digest(), mechanism=Mechanism.ECDSA
            )  # 2.6 has no CKM_ECDSA_SHA256
            return 1

        def gcm(_i: int) -> int:
            aes_key.encrypt(DATA, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(os.urandom(12)))
            return 1

        return {ECDSA: rate(ecdsa, 1, seconds), AES: rate(gcm, 1, seconds)}


def run(
    cluster: DevCluster, *, seconds: float = 3.0, threads: int = 16, batch: int = 256, bulk_threads: int = 2
) -> dict[str, Any]:
    """Ops/s through `cluster` (started, with the dev demo): {"rows": {name: ops/s}, "setup": ...}."""
    demo = cluster.bootstrap_demo()
    endpoints = [m.grpc for m in cluster.members]
    rows: dict[str, float] = {}
    with (
        HsmClient(endpoints, cluster.client_tls()) as setup_client,
        setup_client.open_session("demo", demo["partition"]["co_password"], role="CO") as setup,
    ):
        setup.generate_key("stream-ec", "EC", "P-256", usage=["sign"])
        setup.generate_key("stream-aes", "AES", 256, usage=["encrypt"])
        token = setup.token
        setup.keep = True
    try:
        for coalesce in (False, True):
            with HsmClient(endpoints, cluster.client_tls(), coalesce=coalesce) as app:
                session = app.resume_partition(token, "demo", "CO")
                session.sign("stream-ec", DATA, mechanism="ECDSA-SHA256")  # channels open, members learned

                def sign(_i: int, session: Any = session) -> int:
                    session.sign("stream-ec", DATA, mechanism="ECDSA-SHA256")
                    return 1

                name = f"{ECDSA}, sign, {threads} threads, coalescing {'on' if coalesce else 'off'}"
                rows[name] = rate(sign, threads, seconds)
        with HsmClient(endpoints, cluster.client_tls()) as app:
            session = app.resume_partition(token, "demo", "CO")
            items = [DATA] * batch

            def sign_many(_i: int) -> int:
                return len(session.sign_many("stream-ec", items, mechanism="ECDSA-SHA256"))

            def encrypt_many(_i: int) -> int:
                return len(session.encrypt_many("stream-aes", items, mechanism="AES-GCM"))

            sign_many(0)
            rows[f"{ECDSA}, sign_many x{batch}, {bulk_threads} threads"] = rate(
                sign_many, bulk_threads, seconds
            )
            rows[f"{AES}, encrypt_many x{batch}, {bulk_threads} threads"] = rate(
                encrypt_many, bulk_threads, seconds
            )
    finally:
        with HsmClient(endpoints, cluster.client_tls()) as app:
            session = app.resume_partition(token, "demo", "CO")
            for key in ("stream-ec", "stream-aes"):
                session.destroy_key(key)
            session.logout()
    return {"rows": rows, "members": len(endpoints), "threads": threads, "batch": batch}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--bulk-threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    load_before = load()
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as tmp:
        cluster = DevCluster.create(Path(tmp) / "bench", base_port=free_base())
        cluster.start()
        try:
            cluster.wait_for_leader()
            cluster.bootstrap_demo()
            baseline = softhsm_rates(args.seconds)
            result = run(
                cluster,
                seconds=args.seconds,
                threads=args.threads,
                batch=args.batch,
                bulk_threads=args.bulk_threads,
            )
        finally:
            cluster.stop()
    result["softhsm"] = baseline
    result["load_before"], result["load_after"] = load_before, load()
    print(f"3 members on 127.0.0.1, mTLS gRPC, one HsmClient; {args.seconds:g}s per row; {load_before}")
    if isinstance(baseline, str):
        print(f"SoftHSMv2 baseline {baseline}")
    else:
        print(
            "SoftHSMv2 2.6 in-process (python-pkcs11, 1 thread): "
            + ", ".join(f"{k} {v:.0f}/s" for k, v in baseline.items())
        )
    print(f"{'row':<72} {'ops/s':>8} {'/SoftHSM':>9}")
    ratios: dict[str, float] = {}
    for name, value in result["rows"].items():
        base = None if isinstance(baseline, str) else baseline[ECDSA if name.startswith(ECDSA) else AES]
        ratio = f"{value / base:.2f}x" if base else "-"
        if base:
            ratios[name] = round(value / base, 3)
        print(f"{name:<72} {value:>8.0f} {ratio:>9}")
    result["ratios"] = ratios
    print(f"after: {result['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
