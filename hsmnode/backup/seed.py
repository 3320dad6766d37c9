"""A restored member's starting state, and the restored cluster's first command.

`hsmnode cluster restore` puts the backup file (still encrypted) into every new
member's data dir as `restore.hsmbackup`, with `restore.json` naming it. Such a
member starts its replicated state from the backup instead of an empty one, and
the Raft log of the new cluster begins on top of it: every member holds the same
starting state, so applying the same log keeps them identical. The leader's first
command, `cluster.restore`, rebinds the state to the new cluster id and members.

Once a member has written its own Raft snapshot (pysyncobj's dump) the seed is no
longer read: the dump holds the whole state. Right after the restore each member
compacts once, so a member added later receives a snapshot, not a log that
assumes the seed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from hsmnode.backup.fileformat import BackupError, BackupHeader, open_backup
from hsmnode.crypto.keys import Smk
from hsmnode.domain.commands import ClusterRestore
from hsmnode.domain.errors import DomainError
from hsmnode.domain.state import HsmState
from hsmnode.replication import DUMP_FILE, RaftRole, ReplicationError
from hsmnode.service.context import NodeContext

log = logging.getLogger(__name__)

SEED_FILE = "restore.hsmbackup"
MARKER_FILE = "restore.json"


class SeedError(Exception):
    """The member cannot start from its seed; the message says why and what to do."""


@dataclass(frozen=True)
class Seed:
    header: BackupHeader
    state: HsmState

    @property
    def source_cluster_id(self) -> str:
        return self.header.cluster_id


def write_seed(data_dir: Path, blob: bytes, header: BackupHeader) -> None:
    """Place a verified backup in a new member's data dir (mode 0600)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, content in (
        (SEED_FILE, blob),
        (
            MARKER_FILE,
            (
                json.dumps(
                    {"backup": SEED_FILE, "source_cluster_id": header.cluster_id, "index": header.index},
                    indent=2,
                )
                + "\n"
            ).encode(),
        ),
    ):
        fd = os.open(data_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)


def load_seed(data_dir: Path, smk: Smk, cluster_id: str) -> Seed | None:
    """The state this member starts from, if it belongs to a restored cluster that has not yet
    written its own snapshot; None otherwise. SeedError when the seed is missing or unusable."""
    marker = data_dir / MARKER_FILE
    if not marker.exists() or (data_dir / DUMP_FILE).exists():
        return None
    path = data_dir / SEED_FILE
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise SeedError(
            f"{marker} says this member starts from the backup {path}, which cannot be read ({exc.strerror}): "
            "put the same backup file there again (every member of the restored cluster needs it)"
        ) from None
    try:
        header, state = open_backup(blob, smk, str(path))
    except BackupError as exc:
        raise SeedError(exc.message) from None
    if header.cluster_id == cluster_id:
        raise SeedError(
            f"{path} is a backup of cluster {cluster_id}, the cluster this member is configured for: "
            "a restore builds a new cluster, with a new cluster id"
        )
    return Seed(header, state)


def propose_restore(ctx: NodeContext, seed: Seed, members: list[tuple[str, str, str]]) -> None:
    """On the leader, while the state still carries the backup's cluster id: bind it to this cluster.
    `members` are (id, raft, grpc) of the configured members."""
    if ctx.replicator.status().role != RaftRole.LEADER:
        return
    if ctx.read(lambda s: s.cluster_id) != seed.source_cluster_id:
        return
    cmd = ClusterRestore(
        actor=f"node:{ctx.node_id}",
        request_id=f"restore-{ctx.config.cluster_id}",
        timestamp=ctx.clock_ms(),
        cluster_id=ctx.config.cluster_id,
        source_cluster_id=seed.source_cluster_id,
        source_index=seed.header.index,
        members=tuple(f"{mid}|{raft}|{grpc}" for mid, raft, grpc in members),
    )
    try:
        ctx.propose(cmd, timeout=2.0)
        log.info(
            "cluster %s restored from a backup of cluster %s at index %d",
            ctx.config.cluster_id,
            seed.source_cluster_id,
            seed.header.index,
        )
    except (ReplicationError, DomainError) as exc:
        log.warning("binding the restored state did not complete yet: %s", exc)
