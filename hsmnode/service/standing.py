"""This member's own standing in its cluster: removed from it, or not (node-local, never replicated).

A member learns its removal from the replicated member directory; it then refuses client
traffic (server/rpc.py) and says so in its status, and keeps refusing after a restart (a
marker file in its data dir, hsmnode/membership.py) until a newer directory lists it again.
The node owns one Standing; the health watcher refreshes it every round, and the `rpc`
wrapper before it refuses a client or answers a status, so an addition back is seen at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hsmnode.config import NodeConfig
from hsmnode.membership import clear_removed, mark_removed, removed_marker
from hsmnode.replication import Replicator

log = logging.getLogger(__name__)


class Standing:
    """`removed_from`: the cluster this member was removed from, "" while it is a member.

    `restore_pending(replicated cluster id)`: True while the state is a backup's that the
    leader has not yet bound to this cluster (its directory is not this cluster's)."""

    def __init__(
        self,
        config: NodeConfig,
        replicator: Replicator,
        restore_pending: Callable[[str | None], bool] = lambda _: False,
    ) -> None:
        self._config = config
        self._replicator = replicator
        self._restore_pending = restore_pending
        self._lock = threading.Lock()
        self.removed_from = ""

    def refresh(self) -> tuple[str | None, str]:
        """Recompute `removed_from` from the directory and the marker file; returns (replicated
        cluster id, SMK check value), which the watcher needs from the same read."""
        replicator = self._replicator
        replicated_id, smk_check, directory = replicator.read(
            lambda s: (s.cluster_id, s.smk_check, dict(s.members))
        )
        if self._restore_pending(replicated_id):
            return replicated_id, smk_check  # the directory is still the backup's, not this cluster's
        applied = replicator.applied_index()
        config = self._config
        data = config.data_dir
        with self._lock:
            marker = removed_marker(data)
            listed = config.node_id in directory
            removed_at: int | None = None
            if directory and not listed and marker is not None:
                removed_at = marker[1]
            elif directory and not listed and replicator.status().ready:
                # caught up (a member still catching up reads a directory from before its addition)
                removed_at = applied
                mark_removed(data, replicated_id or config.cluster_id, applied)
            elif marker is not None:
                if listed and applied > marker[1]:
                    clear_removed(data)  # added back after its removal
                    marker = None
                else:
                    removed_at = marker[1]
        cluster_id = (marker[0] if marker else replicated_id) or config.cluster_id
        if removed_at is not None and not self.removed_from:
            log.warning("this member was removed from cluster %s; it refuses client traffic", cluster_id)
        self.removed_from = cluster_id if removed_at is not None else ""
        return replicated_id, smk_check
