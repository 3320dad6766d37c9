"""`hsmnode drill`: a failover drill through the SDK, as an application would live it.

A mixed workload (signing with an existing key, generating keys, creating users)
runs against the cluster while one of two scenarios plays:

- `kill`: members are SIGKILLed (`leader`, `follower`, an id, or several joined by
  `+`, e.g. `leader+follower`; on a local `hsmnode dev` cluster; on a remote one
  the operator is asked to do it) and later restarted;
- `remove-readd`: members are removed (followers, then the leader: `--cycles`,
  `--leader-cycles`) while their processes keep running, and join again; after
  each step every member's directory and Raft configuration must agree.

The report says what the application saw — attempts, successes, failures, the
longest gaps without a successful write and sign, latency before, during and
after the failure, leader changes — and verifies that every acknowledged write is
present exactly once on every member and that all members hold identical state.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsmnode.client import (
    ApplianceSession,
    FaultInjector,
    HsmClient,
    HsmError,
    PartitionSession,
    load_profile,
)
from hsmnode.ops.devcluster import DevCluster, DevClusterError
from hsmnode.ops.drill_membership import LeaderWatch, MembershipCycles


class DrillError(Exception):
    pass


@dataclass
class DrillOptions:
    profile: Path
    duration: float = 20.0
    rate: float = 20.0  # writes per second; signing runs flat out beside them
    kill: str | None = "leader"  # leader | follower | member id | None
    at: float = 5.0
    restart_after: float | None = 5.0
    fault_ratio: float = 0.0  # share of calls the client-side injector fails with UNAVAILABLE
    progress: Callable[[str], None] = field(default=lambda line: None)
    scenario: str = "kill"  # kill | remove-readd
    cycles: int = 2  # remove-readd: follower cycles
    leader_cycles: int = 1  # remove-readd: cycles of the leader


@dataclass
class Sample:
    started: float  # seconds since the drill began
    latency: float
    kind: str  # sign | key | user
    ok: bool
    error: str = ""


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "operations": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "operations": len(ordered),
    }


def _longest_gap(samples: list[Sample], kinds: tuple[str, ...], end: float) -> float:
    """The longest stretch without a successful operation of these kinds (from start to end)."""
    times = sorted(s.started + s.latency for s in samples if s.ok and s.kind in kinds)
    edges = [0.0, *times, end]
    return round(max(b - a for a, b in zip(edges, edges[1:], strict=False)), 3) if times else round(end, 3)


class Drill:
    def __init__(self, options: DrillOptions) -> None:
        self.o = options
        profile = load_profile(options.profile)
        demo = profile.raw.get("demo")
        if not isinstance(demo, dict):
            raise DrillError(
                f"profile {options.profile} has no demo credentials: the drill runs against a cluster made by "
                "`hsmnode dev` (it needs its admin and partition passwords)"
            )
        self.demo = demo
        self.profile = profile
        self.injector = FaultInjector(fail_ratio=options.fault_ratio) if options.fault_ratio else None
        interceptors = [self.injector] if self.injector else []
        self.admin_client = HsmClient(profile.endpoints, profile.tls, timeout=10.0, interceptors=interceptors)
        self.app_client = HsmClient(
            profile.endpoints,
            profile.client_tls(),
            timeout=10.0,
            interceptors=interceptors,
            index_from=self.admin_client,
        )
        try:
            self.local: DevCluster | None = DevCluster.open(options.profile.parent)
        except (DevClusterError, KeyError, ValueError):
            self.local = None
        self.watch = LeaderWatch(HsmClient(profile.endpoints, profile.tls, timeout=2.0))
        self.membership = (
            MembershipCycles(
                list(profile.endpoints), profile.tls, ("admin", demo["users"]["admin"]), options.progress
            )
            if options.scenario == "remove-readd"
            else None
        )
        if options.scenario not in ("kill", "remove-readd"):
            raise DrillError(f"unknown scenario {options.scenario!r} (known: kill, remove-readd)")
        self.run_id = uuid.uuid4().hex[:6]
        self.samples: list[Sample] = []
        self.acked_users: list[str] = []
        self.acked_keys: list[str] = []
        self.events: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._t0 = 0.0

    # --- workload ---------------------------------------------------------------

    def _timed(self, kind: str, fn: Callable[[], Any]) -> bool:
        started = time.monotonic()
        try:
            fn()
            ok, error = True, ""
        except HsmError as exc:
            ok, error = False, str(exc)
        with self._lock:
            self.samples.append(Sample(started - self._t0, time.monotonic() - started, kind, ok, error))
        return ok

    def _signer(self, session: PartitionSession, key: str) -> None:
        data = os.urandom(64)
        while not self._stop.is_set():
            self._timed("sign", lambda: session.sign(key, data, mechanism="ECDSA-SHA256"))

    def _writer(self, admin: ApplianceSession, session: PartitionSession) -> None:
        """Alternate key generation and user creation, each with its own request_id, at `rate`."""
        period = 1.0 / self.o.rate if self.o.rate > 0 else 0.0
        i = 0
        while not self._stop.is_set():
            i += 1
            next_at = time.monotonic() + period
            if i % 2:
                self._write_key(session, f"drill-{self.run_id}-k{i}")
            else:
                self._write_user(admin, f"drill{self.run_id}u{i}")
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _write_key(self, session: PartitionSession, label: str) -> None:
        if self._timed(
            "key", lambda: session.generate_key(label, "EC", "P-256", usage=["sign"], request_id=label)
        ):
            self.acked_keys.append(label)

    def _write_user(self, admin: ApplianceSession, name: str) -> None:
        if self._timed(
            "user", lambda: admin.add_user(name, role="monitor", password="Drill-pass-1", request_id=name)
        ):
            self.acked_users.append(name)

    # --- the failure -----------------------------------------------------------------

    def _targets(self) -> list[str]:
        """The members `--kill` names: leader, follower (another one each time), ids; joined by '+'."""
        if self.o.kill is None or self.o.scenario != "kill":
            return []
        status = self.admin_client.cluster_status()
        followers = [m.id for m in status.members if m.id != status.leader and m.role != "unreachable"]
        targets: list[str] = []
        for kill in self.o.kill.split("+"):
            if kill == "leader":
                found = status.leader
            elif kill == "follower":
                found = next((f for f in followers if f not in targets), "")
            elif kill in {m.id for m in status.members}:
                found = kill
            else:
                raise DrillError(f"no member {kill!r} (members: {', '.join(m.id for m in status.members)})")
            if found and found not in targets:
                targets.append(found)
        return targets

    def _fail(self, target: str) -> None:
        self.events.append((time.monotonic() - self._t0, f"kill {target}"))
        pid = self.local.pid_of(target) if self.local else None
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self.o.progress(f"[{time.monotonic() - self._t0:5.1f}s] SIGKILL {target} (pid {pid})")
        elif self.local is not None:
            # never report a kill that did not happen (a member started some other way than
            # `hsmnode dev` or `hsmnode serve --config`, or already dead)
            raise DrillError(
                f"cannot kill member {target}: no live process of it found (its node.pid names none "
                f"running its node.toml); nothing was killed"
            )
        else:
            why = "not a local dev cluster"
            self.o.progress(
                f"[{time.monotonic() - self._t0:5.1f}s] kill member {target} now yourself ({why})"
            )

    def _recover(self, target: str) -> None:
        self.events.append((time.monotonic() - self._t0, f"restart {target}"))
        if self.local is not None and self.local.pid_of(target) is None:
            self.local.start(target)
            self.o.progress(f"[{time.monotonic() - self._t0:5.1f}s] restarted {target}")
        else:
            self.o.progress(f"[{time.monotonic() - self._t0:5.1f}s] restart member {target} now")

    # --- run --------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        demo = self.demo
        admin = self.admin_client.login("admin", demo["users"]["admin"])
        admin.keep = True
        session = self.app_client.open_session(
            demo["partition"]["name"], demo["partition"]["co_password"], role="CO"
        )
        session.keep = True
        signer_key = f"drill-{self.run_id}-signer"
        session.generate_key(
            signer_key, "EC", "P-256", usage=["sign"], request_id=f"drill-{self.run_id}-signer"
        )
        targets = self._targets()
        self._t0 = time.monotonic()
        workers = [
            threading.Thread(target=self._signer, args=(session, signer_key), daemon=True) for _ in range(2)
        ]
        workers.append(threading.Thread(target=self._writer, args=(admin, session), daemon=True))
        for w in workers:
            w.start()
        self.watch.start()
        killed_at = restarted_at = None
        try:
            while (now := time.monotonic() - self._t0) < self.o.duration or (
                self.membership is not None and not self.membership.cycles
            ):
                if targets and killed_at is None and now >= self.o.at:
                    for target in targets:
                        self._fail(target)
                    killed_at = now
                if (
                    targets
                    and killed_at is not None
                    and restarted_at is None
                    and self.o.restart_after is not None
                    and now >= killed_at + self.o.restart_after
                ):
                    for target in targets:
                        self._recover(target)
                    restarted_at = now
                if self.membership is not None and not self.membership.cycles and now >= self.o.at:
                    killed_at = now
                    self.events.append((now, "membership cycles"))
                    self.membership.run(self.o.cycles, self.o.leader_cycles)
                    restarted_at = time.monotonic() - self._t0
                    self.events.append((restarted_at, "membership cycles done"))
                    # the workload goes on to the end of --duration, and 2 s at least with every
                    # member back (the report's "after" phase; it used to stop 1 s after the cycles)
                    while (now := time.monotonic() - self._t0) < max(self.o.duration, restarted_at + 2.0):
                        self._progress_line(now)
                        self._stop.wait(min(1.0, max(self.o.duration, restarted_at + 2.0) - now))
                    break
                self._progress_line(now)
                self._stop.wait(1.0)
        finally:
            self._stop.set()
            self.watch.stop()
            for w in workers:
                w.join(15)
        end = time.monotonic() - self._t0
        if targets and killed_at is not None and restarted_at is None and self.o.restart_after is not None:
            for target in targets:
                self._recover(target)
            restarted_at = end
        verification = self._verify(admin, session)
        return self._report(end, "+".join(targets) or None, killed_at, restarted_at, verification)

    def _progress_line(self, now: float) -> None:
        with self._lock:
            recent = [s for s in self.samples if s.started >= now - 1.0]
            failed = sum(1 for s in self.samples if not s.ok)
        self.o.progress(f"[{now:5.1f}s] {len(recent):4d} ops/s, {failed} failed so far")

    # --- verification -------------------------------------------------------------------

    def _verify(self, admin: ApplianceSession, session: PartitionSession) -> dict[str, Any]:
        """Every acknowledged write exactly once on every member; identical state digests."""
        deadline = time.monotonic() + 60.0
        problems: list[str] = []
        digests: dict[str, str] = {}
        while True:
            problems, digests = [], {}
            for endpoint in self.profile.endpoints:
                with (
                    HsmClient([endpoint], self.profile.tls, timeout=5.0, discover=False) as one_admin,
                    HsmClient([endpoint], self.profile.client_tls(), timeout=5.0, discover=False) as one_app,
                ):
                    try:
                        status = one_admin.node_status()
                        users = [u.name for u in one_admin.resume(admin.token).list_users()]
                        keys = [k.label for k in one_app.resume_partition(session.token).list_keys()]
                    except HsmError as exc:
                        problems.append(f"{endpoint}: {exc}")
                        continue
                digests[status.id] = f"{status.applied_index}:{status.state_digest}"
                for name in self.acked_users:
                    if users.count(name) != 1:
                        problems.append(f"{status.id}: user {name} present {users.count(name)} times")
                for label in self.acked_keys:
                    if keys.count(label) != 1:
                        problems.append(f"{status.id}: key {label} present {keys.count(label)} times")
            if len(set(digests.values())) > 1:
                problems.append(f"state differs between members: {digests}")
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        return {
            "acknowledged_users": len(self.acked_users),
            "acknowledged_keys": len(self.acked_keys),
            "members_checked": sorted(digests),
            "digests_equal": len(set(digests.values())) == 1 and len(digests) == len(self.profile.endpoints),
            "every_write_exactly_once": not [p for p in problems if "present" in p],
            "ok": not problems,
            "problems": problems[:20],
        }

    def _report(
        self,
        end: float,
        target: str | None,
        killed_at: float | None,
        restarted_at: float | None,
        verification: dict[str, Any],
    ) -> dict[str, Any]:
        samples = self.samples
        during_end = (restarted_at + 1.0) if restarted_at is not None else end
        phases = {
            "before": [s.latency for s in samples if s.ok and (killed_at is None or s.started < killed_at)],
            "during": [
                s.latency
                for s in samples
                if s.ok and killed_at is not None and killed_at <= s.started < during_end
            ],
            "after": [
                s.latency for s in samples if s.ok and killed_at is not None and s.started >= during_end
            ],
        }
        failures = [s for s in samples if not s.ok]
        return {
            "duration_s": round(end, 2),
            "killed": target,
            "killed_at_s": round(killed_at, 2) if killed_at is not None else None,
            "restarted_at_s": round(restarted_at, 2) if restarted_at is not None else None,
            "operations": {
                "attempted": len(samples),
                "succeeded": len(samples) - len(failures),
                "failed": len(failures),
                "by_kind": {
                    k: sum(1 for s in samples if s.kind == k and s.ok) for k in ("sign", "key", "user")
                },
            },
            "first_failures": [f"{s.kind} at {s.started:.2f}s: {s.error}" for s in failures[:5]],
            "write_gap_s": _longest_gap(samples, ("key", "user"), end),
            "sign_gap_s": _longest_gap(samples, ("sign",), end),
            "latency": {phase: _percentiles(values) for phase, values in phases.items()},
            "injected_faults": self.injector.failed if self.injector else 0,
            "scenario": self.o.scenario,
            "leaders": self.watch.summary(),
            "membership": self.membership.summary() if self.membership else None,
            "verification": verification,
            "events": [{"at_s": round(t, 2), "event": e} for t, e in self.events],
            "timeline": [[round(s.started, 3), round(s.latency * 1000, 2), s.kind, s.ok] for s in samples],
        }

    def close(self) -> None:
        self.admin_client.close()
        self.app_client.close()
        self.watch.client.close()


def plot(report: dict[str, Any], path: Path) -> None:
    """Latency and throughput over time with the kill and restart marked (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DrillError("--plot needs matplotlib: pip install 'hsmnode[plot]'") from None
    timeline = report["timeline"]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    for kind, colour in (("sign", "tab:blue"), ("key", "tab:green"), ("user", "tab:orange")):
        xs = [t for t, _, k, ok in timeline if k == kind and ok]
        ys = [ms for t, ms, k, ok in timeline if k == kind and ok]
        top.scatter(xs, ys, s=3, label=kind, color=colour)
    top.set_yscale("log")
    top.set_ylabel("latency (ms)")
    top.legend(loc="upper right")
    seconds = int(report["duration_s"]) + 1
    per_second = [0] * seconds
    for t, _, _, ok in timeline:
        if ok and int(t) < seconds:
            per_second[int(t)] += 1
    bottom.plot(range(seconds), per_second, drawstyle="steps-post")
    bottom.set_ylabel("ops/s")
    bottom.set_xlabel("seconds")
    for event in report["events"]:
        for ax in (top, bottom):
            ax.axvline(
                event["at_s"], color="red" if event["event"].startswith("kill") else "green", linestyle="--"
            )
    fig.suptitle(f"hsmnode drill: kill {report['killed']}")
    fig.savefig(path, dpi=100)


def print_report(report: dict[str, Any], out: Any = sys.stdout) -> None:
    ops = report["operations"]
    v = report["verification"]
    membership = report.get("membership")
    what = (
        f"removed and re-added members from {report['killed_at_s']}s to {report['restarted_at_s']}s"
        if membership
        else f"killed {report['killed'] or 'nothing'} at {report['killed_at_s']}s, restarted at {report['restarted_at_s']}s"
    )
    lines = [
        what,
        f"operations: {ops['attempted']} attempted, {ops['succeeded']} succeeded, {ops['failed']} failed "
        f"(signs {ops['by_kind']['sign']}, keys {ops['by_kind']['key']}, users {ops['by_kind']['user']})",
        f"longest gap without a successful write: {report['write_gap_s']}s; without a successful sign: {report['sign_gap_s']}s",
    ]
    for phase, p in report["latency"].items():
        if not p.get("operations", 1):
            lines.append(f"latency {phase:<7} no operations in this phase")
            continue
        lines.append(f"latency {phase:<7} p50 {p['p50_ms']} ms  p99 {p['p99_ms']} ms  max {p['max_ms']} ms")
    lines.append(
        f"verification: {v['acknowledged_keys']} keys and {v['acknowledged_users']} users acknowledged; "
        f"every write exactly once on every member: {v['every_write_exactly_once']}; digests equal: {v['digests_equal']}"
    )
    lines.append(
        f"leader changes seen: {report['leaders']['leader_changes']}; elections (term increments): "
        f"{report['leaders']['elections']}"
    )
    if membership:
        lines.append(
            f"membership: {membership['completed']} of {len(membership['cycles'])} remove/re-add cycles completed; "
            f"directory and Raft agree on every member after each step: {membership['directory_and_raft_agree']}"
        )
        for cycle in membership["cycles"]:
            lines.append(
                f"  {cycle['member']} ({cycle['role']}): removed in {cycle['removed_in_s']}s, agreed after "
                f"{cycle['agreed_after_removal_s']}s; back in {cycle['rejoined_in_s']}s, agreed after "
                f"{cycle['agreed_after_rejoin_s']}s {cycle['error']}"
            )
    for problem in v["problems"]:
        lines.append(f"  problem: {problem}")
    for failure in report["first_failures"]:
        lines.append(f"  failure: {failure}")
    print("\n".join(lines), file=out)
