"""One log record per Raft event a member sees: a leader change (with its term), a term change
(an election), a membership change, a snapshot written. A watcher thread compares the member's
Raft status every PERIOD; snapshots are reported by the engine's serializer hook as they end.

    event            fields
    leader_change    term, leader (Raft address or null), role (this member's)
    term_change      term, previous_term
    membership       members (Raft addresses, sorted), added, removed
    snapshot         duration_ms, bytes

The watcher also counts leader changes for the metrics (hsmnode_raft_leader_changes_total).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from hsmnode.observability.logs import fields
from hsmnode.observability.metrics import MemberMetrics
from hsmnode.replication import DUMP_FILE, Replicator

log = logging.getLogger("hsmnode.raft.events")

PERIOD = 0.1  # seconds between two looks at the Raft status (as the node's health watcher)


class RaftEventLog:
    """Watches one member's Raft status and logs its events; `stop()` ends the thread."""

    def __init__(self, replicator: Replicator, data_dir: Path, metrics: MemberMetrics | None) -> None:
        self._replicator = replicator
        self._dump = data_dir / DUMP_FILE
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raft-events", daemon=True)
        self._leader: str | None = None
        self._term = 0
        self._members: frozenset[str] = frozenset()

    def start(self) -> None:
        status = self._replicator.status()
        self._term = status.term
        self._members = self._replicator.raft_configuration()
        self._replicator.watch_snapshots(self._snapshot_done)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.wait(PERIOD):
            try:
                self.look()
            except Exception:
                log.exception("Raft event watcher")

    def look(self) -> None:
        """Compare the status with the last look and log what changed."""
        status = self._replicator.status()
        if status.term != self._term:
            log.info(
                "Raft term %d (was %d): an election",
                status.term,
                self._term,
                extra=fields(event="term_change", term=status.term, previous_term=self._term),
            )
            self._term = status.term
        if status.leader_address != self._leader:
            self._leader = status.leader_address
            if self._metrics is not None:
                self._metrics.leader_changes.inc()
            log.info(
                "Raft leader %s at term %d (this member: %s)",
                status.leader_address or "none",
                status.term,
                status.role,
                extra=fields(
                    event="leader_change", term=status.term, leader=status.leader_address, role=status.role
                ),
            )
        members = self._replicator.raft_configuration()
        if members != self._members:
            added, removed = sorted(members - self._members), sorted(self._members - members)
            self._members = members
            log.info(
                "Raft membership: %s (added %s, removed %s)",
                ", ".join(sorted(members)),
                ", ".join(added) or "none",
                ", ".join(removed) or "none",
                extra=fields(event="membership", members=sorted(members), added=added, removed=removed),
            )

    def _snapshot_done(self, seconds: float) -> None:
        try:
            size = os.stat(self._dump).st_size
        except OSError:
            size = 0
        if self._metrics is not None:
            self._metrics.snapshot_seconds.observe(seconds)
        log.info(
            "Raft snapshot written: %d bytes in %.1f ms",
            size,
            seconds * 1000,
            extra=fields(event="snapshot", duration_ms=round(seconds * 1000, 3), bytes=size),
        )
