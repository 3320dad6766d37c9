"""What key-usage auditing costs signing (DOMAIN.md §6; issue 11: at most 10%).

One real 3-member cluster over mTLS gRPC; ECDSA P-256 signs of 1 KiB from N client threads
(round robin over the members). The same run alternates rounds with the Auditor's `key_usage`
category set to `none` (the baseline) and `all` (every sign appended to the serving member's
hash-chained usage-audit.log), and prints the median ops/s of each and the cost.

    .venv/bin/python bench/audit_cost.py [--seconds 3] [--threads 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import free_base, timed  # noqa: E402
from hsmnode.client import HsmRoleSession  # noqa: E402
from hsmnode.ops.devcluster import DevCluster  # noqa: E402

DATA = os.urandom(1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = DevCluster.create(Path(tmp) / "bench", base_port=free_base())
        cluster.start()
        try:
            cluster.wait_for_leader()
            demo = cluster.bootstrap_demo()
            with cluster.client() as admin_client:
                auditor: HsmRoleSession = admin_client.login("audit", demo["users"]["audit"]).hsm_login(
                    demo["hsm"]["auditor_password"], role="AU"
                )
                auditor.keep = True
                co = demo["partition"]["co_password"]
                with cluster.app_client() as app, app.open_session("demo", co, role="CO") as setup:
                    setup.generate_key("ec", "EC", "P-256", usage=["sign"])
                    token = setup.token
                    setup.keep = True
                members = [m.id for m in cluster.members]
                clients = [cluster.app_client(members[i % len(members)]) for i in range(args.threads)]
                sessions = [c.resume_partition(token, "demo", "CO") for c in clients]

                def sign(i: int):  # type: ignore[no-untyped-def]
                    return lambda: sessions[i].sign("ec", DATA, mechanism="ECDSA-SHA256")

                results: dict[str, list[float]] = {"none": [], "all": []}
                timed(sign, args.threads, 1.0)  # warm up channels and key caches
                for _ in range(args.rounds):
                    for level in ("none", "all"):
                        auditor.set_audit_config("key_usage", level)
                        results[level].append(timed(sign, args.threads, args.seconds).rate)
                for c in clients:
                    c.close()
            records = sum(
                len((m.data_dir / "usage-audit.log").read_bytes().splitlines()) for m in cluster.members
            )
        finally:
            cluster.stop()
    base, audited = statistics.median(results["none"]), statistics.median(results["all"])
    print(
        f"ECDSA P-256 sign, {args.threads} client thread(s), {args.rounds} x {args.seconds:g}s rounds per setting, "
        "3 members on 127.0.0.1, mTLS gRPC"
    )
    print(f"{'key_usage audit':<18} {'median ops/s':>13}   rounds")
    print(f"{'none (baseline)':<18} {base:>13.0f}   {', '.join(f'{r:.0f}' for r in results['none'])}")
    print(f"{'all':<18} {audited:>13.0f}   {', '.join(f'{r:.0f}' for r in results['all'])}")
    print(f"cost of key-usage auditing: {100 * (1 - audited / base):.1f}% ({records} records written)")


if __name__ == "__main__":
    main()
