"""Scheduled backups (`[backup] interval`, `keep`, `dir`): taken by the leader, kept on its disk.

Every `interval` seconds the member that leads takes a backup the way an admin's
`hsmnode cluster backup` does (a `cluster.backup` command, audited, by `node:<id>`),
writes it to `dir` (default: data_dir/backups) as
`backup-<cluster id>-<index>-<UTC time>.hsmbackup` (mode 0600) and deletes all but
the newest `keep`. A backup is due `interval` seconds after the newest file in
`dir`, after this member became leader, and after its last attempt, whichever is
latest: a new leader does not rush to back up, and a failing backup is retried
once per interval, not in a loop. Collect the files from every member's `dir`:
leadership moves.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from hsmnode.backup.fileformat import SUFFIX
from hsmnode.config import NodeConfig
from hsmnode.replication import RaftRole, Replicator
from hsmnode.service.backup import BackupService

log = logging.getLogger(__name__)

PREFIX = "backup-"
TAKE_TIMEOUT = 10.0


class BackupScheduler:
    def __init__(self, config: NodeConfig, backups: BackupService, replicator: Replicator) -> None:
        self._interval = config.backup.interval
        self._keep = config.backup.keep
        self.dir = config.backup.dir or config.data_dir / "backups"
        self._backups = backups
        self._replicator = replicator
        self._leader_since: float | None = None
        self._last_attempt = 0.0
        self._worker: threading.Thread | None = None

    def tick(self, serving: bool) -> None:
        """Called by the member's watcher (every 100 ms): start a backup when one is due."""
        if self._interval <= 0:
            return
        if not serving or self._replicator.status().role != RaftRole.LEADER:
            self._leader_since = None
            return
        now = time.time()
        if self._leader_since is None:
            self._leader_since = now
        if self._worker is not None and self._worker.is_alive():
            return
        if now - max(self._newest(), self._leader_since, self._last_attempt) < self._interval:
            return
        self._last_attempt = now
        self._worker = threading.Thread(target=self._take, name="scheduled-backup", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.join(TAKE_TIMEOUT + 5.0)

    def files(self) -> list[Path]:
        """This member's scheduled backups, oldest first."""
        if not self.dir.is_dir():
            return []
        found = [p for p in self.dir.iterdir() if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX)]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    def _newest(self) -> float:
        files = self.files()
        return files[-1].stat().st_mtime if files else 0.0

    def _take(self) -> None:
        try:
            header, blob = self._backups.take_scheduled(TAKE_TIMEOUT)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(header.taken_at_ms / 1000))
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self.dir / f"{PREFIX}{header.cluster_id}-{header.index:012d}-{stamp}{SUFFIX}"
            tmp = path.with_name(f".{path.name}.part")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            tmp.replace(path)
            for old in self.files()[: -self._keep]:
                old.unlink(missing_ok=True)
            log.info(
                "scheduled backup %s: index %d, %d keys, %d bytes",
                path,
                header.index,
                header.key_count,
                len(blob),
            )
        except Exception as exc:  # a failed backup must not stop the member; it is retried next interval
            log.error("scheduled backup failed: %s", exc)
