"""Leader stability on a busy machine: a real local cluster, N CPU-bound busy loops, D seconds.

Samples every member's term and leader five times a second and prints the term changes and
leader changes seen while the busy loops ran, with the load average: the figure for
"a 5-member cluster keeps one leader while both cores are busy" (issue 12).

    .venv/bin/python bench/stability.py [--nodes 5] [--busy 2] [--duration 60] [--base-port 9500]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import free_base  # noqa: E402
from hsmnode.client import HsmError  # noqa: E402
from hsmnode.ops.devcluster import DevCluster  # noqa: E402

BUSY = "import time\nend = time.monotonic() + {d}\nwhile time.monotonic() < end: pass\n"


def sample(cluster: DevCluster, stop: threading.Event, seen: list[tuple[float, str, int, str]]) -> None:
    clients = {m.id: cluster.client(m.id, timeout=1.0) for m in cluster.members}
    try:
        while not stop.is_set():
            for mid, client in clients.items():
                try:
                    s = client.node_status()
                    seen.append((time.monotonic(), mid, s.term, s.leader))
                except HsmError:
                    pass
            stop.wait(0.2)
    finally:
        for client in clients.values():
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound busy loops (one per core)")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--base-port", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = DevCluster.create(
            Path(tmp) / "stability", nodes=args.nodes, base_port=args.base_port or free_base()
        )
        cluster.start()
        busy: list[subprocess.Popen[bytes]] = []
        try:
            cluster.wait_for_leader(timeout=60)
            cluster.bootstrap_demo()
            cluster.wait_for_leader(timeout=60)
            seen: list[tuple[float, str, int, str]] = []
            stop = threading.Event()
            sampler = threading.Thread(target=sample, args=(cluster, stop, seen))
            sampler.start()
            time.sleep(1.0)
            start_load = os.getloadavg()
            busy = [
                subprocess.Popen([sys.executable, "-c", BUSY.format(d=args.duration)])
                for _ in range(args.busy)
            ]
            began = time.monotonic()
            loads = []
            while time.monotonic() - began < args.duration:
                time.sleep(min(10.0, args.duration))
                loads.append(os.getloadavg()[0])
            for p in busy:
                p.wait()
            stop.set()
            sampler.join()
            window = [s for s in seen if s[0] >= began - 1.0]
            terms = sorted({s[2] for s in window})
            leaders = sorted({s[3] for s in window if s[3]})
            per_member = {m.id: sorted({s[2] for s in window if s[1] == m.id}) for m in cluster.members}
            print(
                f"{args.nodes} members, {args.busy} busy loop(s), {args.duration:g}s: "
                f"{len(window)} samples, terms seen {terms} ({len(terms) - 1} term change(s)), "
                f"leaders seen {leaders} ({max(0, len(leaders) - 1)} leader change(s))"
            )
            print(f"per member terms: {per_member}")
            print(
                f"load average before {start_load[0]:.2f}; during (1-min, every 10 s) {[round(x, 2) for x in loads]}"
            )
        finally:
            for p in busy:
                if p.poll() is None:
                    p.kill()
            cluster.stop()


if __name__ == "__main__":
    main()
