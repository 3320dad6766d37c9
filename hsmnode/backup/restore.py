"""`hsmnode cluster restore`: a new local cluster (new id, CA, certificates, Raft secret) from a backup.

Everything is checked before anything is written: the target directory must be
empty or absent, and the backup must open under the given SMK with every check of
`fileformat.open_backup` passing (format, length, SMK, authentication, content,
audit chain, counts). Then it writes a `hsmnode dev` directory whose members start
from the backup (hsmnode/backup/seed.py) and keep the backed-up cluster's SMK,
under which the key material in the backup is wrapped. `hsmnode dev --dir DIR`
starts it; the leader binds the state to the new cluster id on its first command.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hsmnode.backup.fileformat import BackupError, BackupHeader, open_backup
from hsmnode.backup.seed import write_seed
from hsmnode.crypto.keys import SMK_BYTES, Smk
from hsmnode.ops.devcluster import DEFAULT_BASE_PORT, DevCluster, DevClusterError


class RestoreError(Exception):
    """A restore refused before anything was written; `reason` names the check (see BackupError)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def read_smk(path: Path) -> Smk:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise RestoreError("smk", f"cannot read the SMK {path}: {exc.strerror}") from None
    try:
        return Smk(bytes.fromhex(text))
    except ValueError:
        raise RestoreError("smk", f"the SMK {path} must hold {SMK_BYTES * 2} hex digits") from None


def check_target(root: Path) -> None:
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise RestoreError(
            "target_not_empty",
            f"{root} is not an empty directory: a restore builds a new cluster and never writes over files; "
            "name a new directory",
        )


def restore_cluster(
    backup: Path,
    smk_path: Path,
    root: Path,
    *,
    nodes: int | None = None,
    base_port: int = DEFAULT_BASE_PORT,
    progress: Callable[[str], None] | None = None,
) -> tuple[DevCluster, BackupHeader]:
    """Verify `backup` under the SMK in `smk_path`, then build a cluster of `nodes` members (default:
    as many as the backup's) in `root`. RestoreError, naming the reason, before anything is written."""
    say = progress or (lambda _step: None)
    check_target(root)
    smk = read_smk(smk_path)
    try:
        blob = backup.read_bytes()
    except OSError as exc:
        raise RestoreError("unreadable", f"cannot read the backup {backup}: {exc.strerror}") from None
    say(f"checking {backup} ({len(blob)} bytes)")
    try:
        header, _state = open_backup(blob, smk, str(backup), say)
    except BackupError as exc:
        raise RestoreError(exc.reason, exc.message) from None
    members = nodes if nodes is not None else max(1, min(header.member_count, 9))
    say(f"writing a {members}-member cluster into {root}")
    try:
        cluster = DevCluster.create(root, nodes=members, base_port=base_port, smk=smk_bytes(smk_path))
    except DevClusterError as exc:
        raise RestoreError("target", str(exc)) from None
    for i, member in enumerate(cluster.members, start=1):
        say(f"member {member.id} ({i} of {len(cluster.members)}): starts from the backup")
        write_seed(member.data_dir, blob, header)
    profile: dict[str, Any] = cluster.profile()
    profile["restored_from"] = {
        "backup": str(backup.resolve()),
        "cluster_id": header.cluster_id,
        "index": header.index,
        "taken_at_ms": header.taken_at_ms,
    }
    tmp = cluster.profile_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(profile, indent=2) + "\n")
    tmp.replace(cluster.profile_path)
    return cluster, header


def smk_bytes(path: Path) -> bytes:
    return bytes.fromhex(path.read_text().strip())
