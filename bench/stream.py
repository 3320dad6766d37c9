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
import resource
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


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, s) used so far by this process and the processes `pids`."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (proc(5) fields 14, 15)
    return total


def measured(op: Callable[[int], int], threads: int, seconds: float, pids: list[int]) -> dict[str, float]:
    """{"ops_s": operations per second, "ops_cpu_s": operations per CPU-second of this process and
    `pids` (it hardly depends on what else loads the machine), "client_cpu_share": this process's
    part of that CPU time}."""
    cpu, own = cpu_seconds(pids), cpu_seconds([])
    begun = time.monotonic()
    ops_s = rate(op, threads, seconds)
    ops = ops_s * (time.monotonic() - begun)
    used, used_here = cpu_seconds(pids) - cpu, cpu_seconds([]) - own
    return {
        "ops_s": ops_s,
        "ops_cpu_s": ops / max(1e-9, used),
        "client_cpu_share": used_here / max(1e-9, used),
    }


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


def softhsm_rates(seconds: float) -> dict[str, dict[str, float]] | str:
    """SoftHSMv2 in this process, one thread: {row: `measured`}, or why it was skipped."""
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

        return {ECDSA: measured(ecdsa, 1, seconds, []), AES: measured(gcm, 1, seconds, [])}


def run(
    cluster: DevCluster, *, seconds: float = 3.0, threads: int = 16, batch: int = 256, bulk_threads: int = 2
) -> dict[str, Any]:
    """Rows through `cluster` (started, with the dev demo, members as processes): {"rows": {name:
    {"ops_s", "ops_cpu_s"}}, ...}; CPU-seconds count this process and the member processes."""
    demo = cluster.bootstrap_demo()
    endpoints = [m.grpc for m in cluster.members]
    pids = [pid for pid in (cluster.pid_of(m.id) for m in cluster.members) if pid is not None]
    rows: dict[str, dict[str, float]] = {}
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
                rows[name] = measured(sign, threads, seconds, pids)
        with HsmClient(endpoints, cluster.client_tls()) as app:
            session = app.resume_partition(token, "demo", "CO")
            items = [DATA] * batch

            def sign_many(_i: int) -> int:
                return len(session.sign_many("stream-ec", items, mechanism="ECDSA-SHA256"))

            def encrypt_many(_i: int) -> int:
                return len(session.encrypt_many("stream-aes", items, mechanism="AES-GCM"))

            sign_many(0)
            rows[f"{ECDSA}, sign_many x{batch}, {bulk_threads} threads"] = measured(
                sign_many, bulk_threads, seconds, pids
            )
            rows[f"{AES}, encrypt_many x{batch}, {bulk_threads} threads"] = measured(
                encrypt_many, bulk_threads, seconds, pids
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
            + ", ".join(
                f"{k} {v['ops_s']:.0f}/s ({v['ops_cpu_s']:.0f} per CPU-s)" for k, v in baseline.items()
            )
        )
    # ops/CPU-s: operations per CPU-second of the client and the 3 members together (SoftHSM: of
    # its one thread); unlike ops/s it hardly depends on what else loads the machine
    print(f"{'row':<66} {'ops/s':>7} {'/SoftHSM':>8} {'ops/CPU-s':>9} {'/SoftHSM':>8} {'client CPU':>10}")
    ratios: dict[str, dict[str, float]] = {}
    for name, value in result["rows"].items():
        base = None if isinstance(baseline, str) else baseline[ECDSA if name.startswith(ECDSA) else AES]
        if base:
            ratios[name] = {k: round(value[k] / base[k], 3) for k in ("ops_s", "ops_cpu_s")}
        shown = ratios.get(name, {})
        print(
            f"{name:<66} {value['ops_s']:>7.0f} {shown.get('ops_s', 0):>7.2f}x "
            f"{value['ops_cpu_s']:>9.0f} {shown.get('ops_cpu_s', 0):>7.2f}x {value['client_cpu_share']:>10.0%}"
        )
    result["ratios"] = ratios
    print(f"after: {result['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
