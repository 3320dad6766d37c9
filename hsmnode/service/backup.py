"""Taking a cluster backup: authorized in apply, then a consistent copy of the state at a known index.

1. a `cluster.backup` command goes through Raft: apply authorizes it (admin, or this member
   for a scheduled backup) and audits it, so the backup is on record on every member;
2. once it is applied here, the member copies its state and the Raft index of the last
   command in it, together under the state lock (Replicator.read_indexed): a consistent
   snapshot at a known index even while writes go on;
3. the copy is sealed under a key derived from the SMK (hsmnode/backup/fileformat.py);
   key material inside stays wrapped under the SMK, as in the replicated state.
"""

from __future__ import annotations

import uuid

from hsmnode.backup import fileformat
from hsmnode.crypto.keys import Smk
from hsmnode.domain.commands import ClusterBackup
from hsmnode.service.call import Call
from hsmnode.service.context import NodeContext

BARRIER_TIMEOUT = 5.0


class BackupService:
    def __init__(self, ctx: NodeContext, smk: Smk) -> None:
        self._ctx = ctx
        self._smk = smk

    def take(self, call: Call) -> tuple[fileformat.BackupHeader, bytes]:
        """An admin's backup: (header, the file's bytes). The service's check is the fast, friendly one
        (a refusal is audited); apply decides."""
        claims = self._ctx.authorize_read(call, "cluster.backup")
        return self._take(claims.actor, call.request_id, call.timeout, scheduled=False)

    def take_scheduled(self, timeout: float | None) -> tuple[fileformat.BackupHeader, bytes]:
        """A backup this member takes on its own as leader (`[backup] interval`)."""
        return self._take(f"node:{self._ctx.node_id}", f"backup-{uuid.uuid4().hex}", timeout, scheduled=True)

    def _take(
        self, actor: str, request_id: str, timeout: float | None, *, scheduled: bool
    ) -> tuple[fileformat.BackupHeader, bytes]:
        # a repeat of the request (its answer lost) is not proposed again: it gets a copy as of now
        self._ctx.once(ClusterBackup, actor, request_id, timeout, lambda: dict(scheduled=scheduled))
        replicator = self._ctx.replicator
        data, index = replicator.read_indexed(lambda s: s.to_data())
        if index == 0:  # a snapshot was installed since the command applied: the barrier names the index
            replicator.barrier(BARRIER_TIMEOUT)
            data, index = replicator.read_indexed(lambda s: s.to_data())
        return fileformat.build(
            data, index=index, taken_at_ms=self._ctx.clock_ms(), taken_by=self._ctx.node_id, smk=self._smk
        )
