"""C_Sign per second through PKCS#11: the hsmnode bridge (3-member cluster) vs SoftHSMv2, same run.

Both are driven by the same python-pkcs11 worker (one process per token, since a process
loads one PKCS#11 module): ECDSA P-256 over a SHA-256 digest (CKM_ECDSA, what OpenSSL sends)
and RSA-2048 SHA256-RSA-PKCS over 1 KiB, for `--seconds` each, by 1 and by N concurrent signers
(`--threads 1 4`): one application with N threads, each with its own session, through the bridge;
N single-thread processes on SoftHSMv2 (see main). SoftHSMv2 signs in the worker's process; the
bridge path adds p11-kit's unix socket, the bridge, and mTLS gRPC to a member.

    .venv/bin/python bench/pkcs11_sign.py [--seconds 3] [--threads 1 4]

Needs softhsm2, p11-kit-modules (make system-packages installs them) and python-pkcs11.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import free_base  # noqa: E402
from hsmnode.ops.devcluster import DevCluster  # noqa: E402

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
P11KIT_CLIENT = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"

WORKER = textwrap.dedent(
    """
    import hashlib, json, os, sys, threading, time
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.util.ec import encode_named_curve_parameters
    module, label, pin, seconds, threads, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    token = pkcs11.lib(module).get_token(token_label=label)
    digest, data = hashlib.sha256(b"bench").digest(), os.urandom(1024)
    with token.open(user_pin=pin, rw=True) as s:
        ec = s.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        _, ec_priv = ec.generate_keypair(store=True, label=f"bench-ec-{os.getpid()}")
        _, rsa_priv = s.generate_keypair(KeyType.RSA, 2048, store=True, label=f"bench-rsa-{os.getpid()}")
        ec_id, rsa_id = ec_priv.label, rsa_priv.label
    keeper = token.open(user_pin=pin)  # the login belongs to the application: every session below shares it
    rows = (("ECDSA P-256", ec_id, Mechanism.ECDSA, digest), ("RSA-2048 SHA256-RSA-PKCS", rsa_id, Mechanism.SHA256_RSA_PKCS, data))
    counts = {name: [0] * threads for name, *_ in rows}
    errors = []
    def work(i):
        try:
            with token.open() as s:
                keys = []
                with setup:  # SoftHSMv2 fails concurrent searches (CKR_GENERAL_ERROR): set up one at a time
                    for name, key_id, mech, payload in rows:
                        keys.append(s.get_key(label=key_id, object_class=pkcs11.ObjectClass.PRIVATE_KEY))
                        keys[-1].sign(payload, mechanism=mech)
                for row, ((name, _, mech, payload), key) in enumerate(zip(rows, keys)):
                    begin = start_at + row * (seconds + 1.0)  # every worker process signs in the same window
                    if time.time() > begin:
                        raise RuntimeError(f"{name}: set-up ran past the common start; raise the margin")
                    time.sleep(begin - time.time())
                    stop, n = time.monotonic() + seconds, 0
                    while time.monotonic() < stop:
                        key.sign(payload, mechanism=mech)
                        n += 1
                    counts[name][i] = n
        except BaseException as exc:
            errors.append(repr(exc))
    setup = threading.Lock()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers: w.start()
    for w in workers: w.join()
    if errors:
        raise SystemExit(f"a worker thread failed: {errors[0]}")
    result = {name: sum(n) / seconds for name, n in counts.items()}
    keeper.close()
    print(json.dumps(result))
    """
)


def setup_margin(procs: int) -> float:
    """Seconds for every worker process to generate its keys (RSA-2048 included) before the common start."""
    return 8.0 + 4.0 * procs


def run_workers(
    module: str, label: str, pin: str, seconds: float, procs: int, threads: int, env: dict[str, str]
) -> dict[str, float]:
    """C_Sign/s per operation, summed over `procs` worker processes of `threads` threads each, all
    signing in the same time window."""
    start_at = time.time() + setup_margin(procs)
    args = [module, label, pin, str(seconds), str(threads), str(start_at)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(procs)
    ]
    total: dict[str, float] = {}
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        if worker.returncode != 0:
            raise SystemExit(f"worker for {module} failed:\n{err}")
        for name, rate in json.loads(out).items():
            total[name] = total.get(name, 0.0) + rate
    return total


def softhsm_env(root: Path) -> dict[str, str]:
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--so-pin",
            "so-pin-1234",
            "--pin",
            "user-pin-1234",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    # N concurrent signers per row: the bridge serves one application with N threads, each with its own
    # session (p11-kit multiplexes them on one socket); SoftHSMv2 runs as N single-thread processes,
    # since python-pkcs11 initializes it without OS locking and its concurrent C_SignInit then fails
    # (CKR_GENERAL_ERROR)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    for needed in (SOFTHSM, P11KIT_CLIENT):
        if not Path(needed).exists():
            raise SystemExit(f"{needed} is missing: run make system-packages (softhsm2, p11-kit-modules)")
    with tempfile.TemporaryDirectory(prefix="p11bench-") as tmp:
        root = Path(tmp)
        soft_env = softhsm_env(root / "softhsm")
        cluster = DevCluster.create(root / "cluster", base_port=free_base())
        cluster.start()
        bridge = None
        try:
            cluster.wait_for_leader()
            demo = cluster.bootstrap_demo()
            sock = root / "bridge.sock"
            bridge = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hsmnode",
                    "pkcs11",
                    "serve",
                    "--profile",
                    str(cluster.profile_path),
                    "--socket",
                    str(sock),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert bridge.stdout is not None
            address = bridge.stdout.readline().strip().split("=", 1)[1]
            bridge_env = dict(os.environ, P11_KIT_SERVER_ADDRESS=address)
            print(
                f"C_Sign/s, {args.seconds:g}s per row; bridge: p11-kit-client.so -> unix socket -> bridge -> mTLS gRPC -> 3 members on 127.0.0.1"
            )
            print(
                "signers: SoftHSMv2 as that many single-thread processes, the bridge as one application"
                " with that many threads (one session each)"
            )
            print(
                f"{'operation':<26} {'signers':>7} {'SoftHSMv2':>10} {'hsmnode bridge':>15} {'bridge/SoftHSM':>15}"
            )
            for n in args.threads:
                soft = run_workers(SOFTHSM, "bench", "user-pin-1234", args.seconds, n, 1, soft_env)
                pin = demo["partition"]["co_password"]
                ours = run_workers(P11KIT_CLIENT, "demo", pin, args.seconds, 1, n, bridge_env)
                for name in soft:
                    print(
                        f"{name:<26} {n:>7} {soft[name]:>10.0f} {ours[name]:>15.0f} {ours[name] / soft[name]:>14.3f}x"
                    )
        finally:
            if bridge is not None:
                bridge.terminate()
                bridge.wait(10)
                if bridge.stdout is not None:
                    bridge.stdout.close()
            cluster.stop()


if __name__ == "__main__":
    main()
