"""The unary request path: ECDSA P-256 and RSA-2048 sign through a 3-member cluster, and where the time goes.

Starts a 3-member `hsmnode dev` cluster (member processes, mTLS gRPC) on `--base-port`,
creates an EC P-256 and an RSA-2048 signing key in the demo partition, then for each thread
count signs 1 KiB through ordinary `session.sign` (one call per operation, clients spread over
the members) and prints ops/s beside the same run's baselines:

- raw `cryptography` on one core: the same sign in a loop in this process, one thread;
- the ratio cluster / raw (issue 16's acceptance: RSA-2048 >= 0.8x raw on one core);
- CPU per operation (µs, from /proc and process_time): raw, the members' (all three), the
  client's, and raw / (members + client): the same ratio as if the machine were idle, which
  the throughput ratio is not when other processes load the cores.

`--profile DIR` samples every member and this (client) process with py-spy (needs root or
ptrace rights; `pip install py-spy`) during one extra ECDSA run, writes the collapsed stacks
to DIR, and prints the top costs in microseconds of CPU per call: see bench/README.md,
"Profiling the request path".

    .venv/bin/python bench/request_path.py [--base-port 9700] [--threads 8 16] [--seconds 5]
        [--profile /tmp/prof] [--profile-threads 16]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402

from hsmnode.ops.devcluster import DevCluster  # noqa: E402

DATA = os.urandom(1024)
PROFILE_RATE = 250  # py-spy samples per second


def rate(make_op: Callable[[int], Callable[[], object]], threads: int, seconds: float) -> tuple[float, int]:
    """(ops/s, ops) of `make_op(i)()` run in `threads` threads for `seconds`."""
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
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.monotonic() - started), sum(counts)


def raw_ops() -> dict[str, Callable[[], object]]:
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "RSA-2048 sign": lambda: rsa_key.sign(DATA, padding.PKCS1v15(), hashes.SHA256()),
        "ECDSA P-256 sign": lambda: ec_key.sign(DATA, ec.ECDSA(hashes.SHA256())),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far (/proc/PID/stat), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- profile -------------------------------------------------------------------------------------


def spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--rate", str(PROFILE_RATE), "--duration", str(int(seconds))]
        + ["--gil", "--format", "raw", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _frame_name(frame: str) -> str:
    """'sign (hsmnode/service/keys.py:321)' -> 'hsmnode/service/keys.py:sign'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/hsmnode/", "/bench/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker != "site-packages/":
                path = marker.strip("/") + "/" + path
            break
    return f"{path}:{name}"


def summarize(files: list[Path], calls: int, top: int, title: str) -> None:
    """Self and inclusive CPU per call (µs) of the busiest functions in py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for f in files:
        if not f.exists():
            print(f"  ({f.name}: no samples; is py-spy allowed to trace? run as root)")
            continue
        for line in f.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack:
                continue
            n = int(count_text)
            frames = [_frame_name(fr) for fr in stack.split(";") if fr and not fr.startswith("process ")]
            frames = [fr for fr in frames if not fr.startswith("thread ")]
            if not frames:
                continue
            total += n
            own[frames[-1]] += n
            for fr in set(frames):
                inclusive[fr] += n
    per_call = 1e6 / PROFILE_RATE / max(calls, 1)
    print(f"{title}: {total * per_call:.0f} µs of sampled CPU per call ({calls} calls)")
    print(f"  {'self µs':>8} {'incl µs':>8}  function")
    for name, n in own.most_common(top):
        print(f"  {n * per_call:>8.1f} {inclusive[name] * per_call:>8.1f}  {name}")
    print("  inclusive, hsmnode frames:")
    mine = [(name, n) for name, n in inclusive.most_common() if name.startswith("hsmnode/")]
    for name, n in mine[:top]:
        print(f"  {'':>8} {n * per_call:>8.1f}  {name}")


# --- run ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-port", type=int, default=9700)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--ops", nargs="+", default=["ECDSA P-256 sign", "RSA-2048 sign"])
    parser.add_argument("--profile", type=Path, default=None, help="write py-spy stacks here and summarize")
    parser.add_argument("--profile-threads", type=int, default=16)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    raw = raw_ops()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = DevCluster.create(Path(tmp) / "bench", base_port=args.base_port)
        cluster.start()
        try:
            cluster.wait_for_leader()
            demo = cluster.bootstrap_demo()
            co = demo["partition"]["co_password"]
            with cluster.app_client() as app, app.open_session("demo", co, role="CO") as setup:
                setup.generate_key("rsa", "RSA", 2048, usage=["sign"])
                setup.generate_key("ec", "EC", "P-256", usage=["sign"])
                token = setup.token
                setup.keep = True
            members = [m.id for m in cluster.members]
            most = max([*args.threads, args.profile_threads])
            clients = [cluster.app_client(members[i % len(members)]) for i in range(most)]
            sessions = [c.resume_partition(token, "demo", "CO") for c in clients]
            remote: dict[str, Callable[[int], Callable[[], object]]] = {
                "RSA-2048 sign": lambda i: (
                    lambda: sessions[i].sign("rsa", DATA, mechanism="RSA-PKCS1-SHA256")
                ),
                "ECDSA P-256 sign": lambda i: lambda: sessions[i].sign("ec", DATA, mechanism="ECDSA-SHA256"),
            }
            for i in range(most):  # warm every channel
                remote["ECDSA P-256 sign"](i)()
            print(f"3 members on 127.0.0.1, mTLS gRPC, 1 op per call, {args.seconds:g}s per row")
            pids = [p for p in (cluster.pid_of(m) for m in members) if p]
            idle_before, idle_started = sum(cpu_seconds(p) for p in pids), time.monotonic()
            time.sleep(3.0)
            idle = (sum(cpu_seconds(p) for p in pids) - idle_before) / (time.monotonic() - idle_started)
            print(f"members idle (Raft heartbeats, watchers): {idle * 100:.1f}% of a core, all three")
            print(
                f"{'operation':<18} {'threads':>7} {'raw 1 core/s':>13} {'cluster/s':>10} {'ratio':>7}"
                f" {'raw µs':>7} {'member µs':>10} {'client µs':>10} {'CPU ratio':>9}  load"
            )
            for name in args.ops:
                for threads in args.threads:
                    before = time.process_time()
                    base, n = rate(lambda _i, op=raw[name]: op, 1, min(args.seconds, 3.0))
                    raw_us = (time.process_time() - before) * 1e6 / n
                    members_before = sum(cpu_seconds(p) for p in pids)
                    client_before = time.process_time()
                    through, n = rate(remote[name], threads, args.seconds)
                    client_us = (time.process_time() - client_before) * 1e6 / n
                    member_us = (sum(cpu_seconds(p) for p in pids) - members_before) * 1e6 / n
                    print(
                        f"{name:<18} {threads:>7} {base:>13.0f} {through:>10.0f} {through / base:>6.3f}x"
                        f" {raw_us:>7.0f} {member_us:>10.0f} {client_us:>10.0f}"
                        f" {raw_us / (member_us + client_us):>8.3f}x  {load()}"
                    )
            if args.profile is not None:
                profile(cluster, remote["ECDSA P-256 sign"], args)
            for c in clients:
                c.close()
        finally:
            cluster.stop()


def profile(cluster: DevCluster, op: Callable[[int], Callable[[], object]], args: argparse.Namespace) -> None:
    out: Path = args.profile
    out.mkdir(parents=True, exist_ok=True)
    seconds = max(args.seconds, 5.0)
    files = {m.id: out / f"member-{m.id}.txt" for m in cluster.members}
    files["client"] = out / "client.txt"
    pids = {m.id: cluster.pid_of(m.id) for m in cluster.members}
    pids["client"] = os.getpid()
    spies = [spy(pid, files[name], seconds + 1) for name, pid in pids.items() if pid]
    time.sleep(0.5)  # py-spy attaches
    ops_s, calls = rate(op, args.profile_threads, seconds)
    for s in spies:
        s.wait(60)
    print(f"\nprofile: ECDSA P-256 sign, {args.profile_threads} threads, {ops_s:.0f} ops/s, load {load()}")
    summarize([files[m.id] for m in cluster.members], calls, args.top, "members (all three)")
    summarize([files["client"]], calls, args.top, "client (this process)")


if __name__ == "__main__":
    main()
