"""The `remove-readd` drill scenario: members leave and come back while the workload runs.

Each cycle removes one member through the SDK (`remove_member`: any member, the
leader handing over first) while its process keeps running, checks that every
remaining member's directory and Raft configuration name the same members, then
brings it back with `cluster join` (archive, fresh Raft state) and checks the
agreement again, the returning member included. A watcher counts leader changes
and elections (term increments) seen meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hsmnode.client import HsmClient, HsmError, Tls, remove_member
from hsmnode.ops.joining import join

AGREEMENT_TIMEOUT = 15.0


@dataclass
class Cycle:
    member: str
    role: str  # what it was when removed: leader | follower
    removed_in_s: float = 0.0
    agreed_after_removal_s: float | None = None
    rejoined_in_s: float = 0.0
    agreed_after_rejoin_s: float | None = None
    error: str = ""

    def ok(self) -> bool:
        return not self.error and None not in (self.agreed_after_removal_s, self.agreed_after_rejoin_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "role": self.role,
            "removed_in_s": round(self.removed_in_s, 2),
            "agreed_after_removal_s": _round(self.agreed_after_removal_s),
            "rejoined_in_s": round(self.rejoined_in_s, 2),
            "agreed_after_rejoin_s": _round(self.agreed_after_rejoin_s),
            "error": self.error,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass
class LeaderWatch:
    """Samples who leads (and the term) every `period` seconds, as a member with a leader sees it
    (cluster status: never a removed member's own view)."""

    client: HsmClient
    period: float = 0.5
    leaders: list[str] = field(default_factory=list)
    terms: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._loop, name="leader-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                status = self.client.cluster_status()
            except HsmError:
                continue
            if status.leader and status.leader not in self.leaders[-1:]:
                self.leaders.append(status.leader)
            self.terms.append(status.term)

    def summary(self) -> dict[str, int]:
        return {
            "leader_changes": max(0, len(self.leaders) - 1),
            "elections": (max(self.terms) - min(self.terms)) if self.terms else 0,
        }


class MembershipCycles:
    """Remove and re-add members of the cluster at `endpoints` (admin credentials `admin`)."""

    def __init__(
        self, endpoints: list[str], tls: Tls, admin: tuple[str, str], progress: Callable[[str], None]
    ) -> None:
        self.endpoints = endpoints
        self.tls = tls
        self.admin = admin
        self.progress = progress
        self.cycles: list[Cycle] = []

    def run(self, follower_cycles: int, leader_cycles: int) -> list[Cycle]:
        plan = ["follower"] * follower_cycles + ["leader"] * leader_cycles
        for n, role in enumerate(plan):
            self.cycles.append(self._cycle(role, n))
        return self.cycles

    def _status(self) -> Any:
        with HsmClient(self.endpoints, self.tls, timeout=15.0) as client:
            return client.cluster_status()

    def _cycle(self, role: str, n: int) -> Cycle:
        status = self._status()
        listed = [m for m in status.members if m.listed]
        if role == "leader":
            target = next(m for m in listed if m.id == status.leader)
        else:
            followers = [m for m in listed if m.id != status.leader]
            target = followers[n % len(followers)]
        cycle = Cycle(target.id, role)
        others = [m for m in listed if m.id != target.id]
        try:
            started = time.monotonic()
            remove_member(self.endpoints, self.tls, target.id, self.admin, timeout=60.0)
            cycle.removed_in_s = time.monotonic() - started
            self.progress(f"cycle {n + 1}: removed {target.id} ({role}) in {cycle.removed_in_s:.2f}s")
            cycle.agreed_after_removal_s = self._agreement(
                [m.address for m in others], {m.raft_address for m in others}
            )
            started = time.monotonic()
            join(
                target.address,
                others[0].address,
                self.tls,
                node_admin=None,
                cluster_admin=self.admin,
                timeout=60.0,
            )
            cycle.rejoined_in_s = time.monotonic() - started
            self.progress(f"cycle {n + 1}: {target.id} joined again in {cycle.rejoined_in_s:.2f}s")
            cycle.agreed_after_rejoin_s = self._agreement(
                [m.address for m in listed], {m.raft_address for m in listed}
            )
        except HsmError as exc:
            cycle.error = str(exc)
            self.progress(f"cycle {n + 1}: {target.id}: {exc}")
        return cycle

    def _agreement(self, addresses: list[str], rafts: set[str]) -> float | None:
        """Seconds until each member's directory and Raft configuration are exactly `rafts`; None if not
        within AGREEMENT_TIMEOUT."""
        started = time.monotonic()
        while time.monotonic() - started < AGREEMENT_TIMEOUT:
            if all(self._agrees(address, rafts) for address in addresses):
                return time.monotonic() - started
            time.sleep(0.1)
        return None

    def _agrees(self, address: str, rafts: set[str]) -> bool:
        try:
            with HsmClient([address], self.tls, discover=False, timeout=2.0) as one:
                status = one.node_status()
        except HsmError:
            return False
        return set(status.directory) == rafts and set(status.raft_configuration) == rafts

    def summary(self) -> dict[str, Any]:
        return {
            "cycles": [c.to_json() for c in self.cycles],
            "completed": sum(1 for c in self.cycles if c.ok()),
            "directory_and_raft_agree": bool(self.cycles) and all(c.ok() for c in self.cycles),
        }
