"""Same-run baselines: raw `cryptography` on one core, and SoftHSMv2 in-process through python-pkcs11.

Three operations, each on one thread for `seconds`: RSA-2048 PKCS#1 v1.5 SHA-256 sign of 1 KiB, ECDSA
P-256 SHA-256 sign of 1 KiB (SoftHSMv2: CKM_ECDSA over the SHA-256 digest, what OpenSSL sends), and
AES-256-GCM encryption of 1 KiB with a fresh 12-byte nonce. The figures land in `ctx.baselines`
under "raw <op>" and "SoftHSMv2 <op>" (ops/s), and "... <op> per CPU-s" (operations per CPU-second of
the measuring process: what the load hardly moves), where the crypto rows compute their ratios.

SoftHSMv2 2.6.1 (Debian's softhsm2) runs in a worker process (a process loads one PKCS#11 module)
with a scratch token. When the library is missing the bench installs it with apt-get if it runs as
root, and otherwise says that it skipped the rows.

    .venv/bin/python -m bench.baselines [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.common import BenchContext, Row, cpu_during, scratch, timed

GROUP = "same-run baselines"
OPERATIONS = ("RSA-2048 sign", "ECDSA P-256 sign", "AES-256-GCM 1 KiB")
SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
DATA = os.urandom(1024)

WORKER = textwrap.dedent(
    """
    import hashlib, json, os, sys, time
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.mechanisms import GCMParams
    from pkcs11.util.ec import encode_named_curve_parameters
    module, seconds = sys.argv[1], float(sys.argv[2])
    token = pkcs11.lib(module).get_token(token_label="bench")
    data = os.urandom(1024)
    digest = hashlib.sha256(data).digest()
    out = {}
    with token.open(user_pin="user-pin-1234", rw=True) as s:
        params = s.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        _, ec_priv = params.generate_keypair()
        _, rsa_priv = s.generate_keypair(KeyType.RSA, 2048)
        aes = s.generate_key(KeyType.AES, 256)
        ops = {
            "RSA-2048 sign": lambda: rsa_priv.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS),
            "ECDSA P-256 sign": lambda: ec_priv.sign(digest, mechanism=Mechanism.ECDSA),
            "AES-256-GCM 1 KiB": lambda: aes.encrypt(
                data, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(os.urandom(12))),
        }
        for name, op in ops.items():
            op()
            n, stop, cpu = 0, time.perf_counter() + seconds, time.process_time()
            while time.perf_counter() < stop:
                op()
                n += 1
            out[name] = n / seconds
            out[name + " per CPU-s"] = n / max(time.process_time() - cpu, 1e-9)
    print(json.dumps(out))
    """
)


def raw_operations() -> dict[str, Callable[[], object]]:
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    aes = AESGCM(AESGCM.generate_key(256))
    return {
        "RSA-2048 sign": lambda: rsa_key.sign(DATA, padding.PKCS1v15(), hashes.SHA256()),
        "ECDSA P-256 sign": lambda: ec_key.sign(DATA, ec.ECDSA(hashes.SHA256())),
        "AES-256-GCM 1 KiB": lambda: aes.encrypt(os.urandom(12), DATA, None),
    }


def ensure_softhsm() -> str | None:
    """None when SoftHSMv2 is usable (installing it as root if needed); else why the rows are skipped."""
    if SOFTHSM.exists() and shutil.which("softhsm2-util"):
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("# installing softhsm2 (apt-get) for the SoftHSMv2 baseline", file=sys.stderr, flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        done = subprocess.run(
            "apt-get update -qq && apt-get install -y -qq softhsm2", shell=True, env=env, capture_output=True
        )
        if done.returncode == 0 and SOFTHSM.exists():
            return None
        return f"apt-get install softhsm2 failed: {done.stderr.decode(errors='replace')[-200:]}"
    return f"skipped: {SOFTHSM} is missing and this is not root (sudo apt-get install softhsm2)"


def softhsm_rates(work: Path, seconds: float) -> dict[str, float]:
    """ops/s of each operation through SoftHSMv2 in a worker process, one thread, a scratch token."""
    (work / "tokens").mkdir(parents=True, exist_ok=True)
    conf = work / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {work / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "bench"]
        + ["--so-pin", "so-pin-1234", "--pin", "user-pin-1234"],
        env=env,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(SOFTHSM), str(seconds)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120 + 4 * seconds,
    )
    if done.returncode != 0:
        raise RuntimeError(f"SoftHSMv2 worker failed: {done.stderr[-500:]}")
    rates: dict[str, float] = json.loads(done.stdout)
    return rates


def run(ctx: BenchContext) -> list[Row]:
    rows = []
    for name, op in raw_operations().items():
        t, cpu = cpu_during([], lambda op=op: timed(lambda _i: op, 1, ctx.seconds))
        ctx.baselines[f"raw {name}"] = t.rate
        ctx.baselines[f"raw {name} per CPU-s"] = cpu.ops_per_cpu_s(t.ops)
        rows.append(
            Row(
                GROUP,
                f"raw cryptography, 1 core: {name}",
                round(t.rate, 1),
                "ops/s",
                note=f"{cpu.ops_per_cpu_s(t.ops):,.0f} per CPU-second",
            )
        )
    skipped = ensure_softhsm()
    if skipped is None:
        rates = softhsm_rates(ctx.work / "softhsm", ctx.seconds)
        for name in OPERATIONS:
            ctx.baselines[f"SoftHSMv2 {name}"] = rates[name]
            ctx.baselines[f"SoftHSMv2 {name} per CPU-s"] = rates[f"{name} per CPU-s"]
            raw = ctx.baselines[f"raw {name}"]
            rows.append(
                Row(
                    GROUP,
                    f"SoftHSMv2 in-process, 1 thread: {name}",
                    round(rates[name], 1),
                    "ops/s",
                    baseline="raw cryptography, 1 core",
                    baseline_value=round(raw, 1),
                    ratio=round(rates[name] / raw, 3),
                    note=f"python-pkcs11; {rates[f'{name} per CPU-s']:,.0f} per CPU-second",
                )
            )
    else:
        rows += [
            Row(GROUP, f"SoftHSMv2 in-process: {name}", None, "ops/s", note=skipped) for name in OPERATIONS
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with scratch() as work:
        for row in run(BenchContext(work, seconds=args.seconds)):
            print(json.dumps(row.to_dict(), ensure_ascii=False))


if __name__ == "__main__":
    main()
