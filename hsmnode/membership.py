"""A member's side of joining a cluster: archive what it had, adopt the cluster's identity.

After a join the node's data dir holds `membership.json` (the cluster id, the other
members, the Raft secret) which overrides those settings of its node.toml, and the
cluster's SMK replaces its own. The node's earlier data stays in a timestamped
archive in the data dir; the join never deletes it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tarfile
import time
from pathlib import Path

from hsmnode.config import NodeConfig, Peer
from hsmnode.replication import RAFT_FILE_PREFIXES

OVERRIDE = "membership.json"
ARCHIVE_PREFIX = "archive-"


def apply_override(config: NodeConfig) -> NodeConfig:
    path = config.data_dir / OVERRIDE
    if not path.exists():
        return config
    data = json.loads(path.read_text())
    return dataclasses.replace(
        config,
        cluster_id=data["cluster_id"],
        peers=tuple(Peer(p["id"], p["raft"], p["grpc"]) for p in data["peers"] if p["id"] != config.node_id),
        raft_password_override=data["raft_password"],
    )


REMOVED = "removed.json"


def removed_marker(data_dir: Path) -> tuple[str, int] | None:
    """(cluster id, applied index) at which this member saw its own removal, if it did."""
    try:
        found = json.loads((data_dir / REMOVED).read_text())
        return str(found["cluster_id"]), int(found["index"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None


def mark_removed(data_dir: Path, cluster_id: str, index: int) -> None:
    """Remember the removal across restarts: Raft persists its commit index only once a second, so a
    member stopped right after applying its removal could otherwise come back not knowing it."""
    tmp = data_dir / (REMOVED + ".tmp")
    tmp.write_text(json.dumps({"cluster_id": cluster_id, "index": index}))
    os.replace(tmp, data_dir / REMOVED)


def clear_removed(data_dir: Path) -> None:
    (data_dir / REMOVED).unlink(missing_ok=True)


def archive(data_dir: Path, old_cluster_id: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = data_dir / f"{ARCHIVE_PREFIX}{stamp}-{old_cluster_id}.tar.gz"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(data_dir.iterdir()):
            if path.is_file() and not path.name.startswith(ARCHIVE_PREFIX):
                tar.add(path, arcname=path.name)
    return target


def adopted_by(data_dir: Path, request_id: str) -> str | None:
    """The archive of the adoption whose AdoptCluster carried `request_id`, if this data dir holds
    it (its `membership.json`): a repeated request answers it, before or after the restart."""
    if not request_id:
        return None
    try:
        data = json.loads((data_dir / OVERRIDE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if (
        isinstance(data, dict)
        and data.get("request_id") == request_id
        and isinstance(data.get("archive"), str)
    ):
        return str(data["archive"])
    return None


def adopt(
    config: NodeConfig,
    cluster_id: str,
    peers: list[dict[str, str]],
    raft_password: str,
    smk_hex: str,
    request_id: str = "",
) -> Path:
    """Archive the data dir, then make it the data dir of a fresh member of `cluster_id`; the
    archive. `membership.json` keeps `request_id` and the archive (`adopted_by`)."""
    data = config.data_dir
    saved = archive(data, config.cluster_id)
    for path in data.iterdir():
        if path.is_file() and (
            path.name.startswith(RAFT_FILE_PREFIXES)
            or path.name in ("cluster_id", OVERRIDE, REMOVED, "trusted-clients.json")
        ):
            path.unlink()
    smk_path = config.smk_file or data / "smk.key"
    _secret(smk_path, smk_hex + "\n")
    _secret(
        data / OVERRIDE,
        json.dumps(
            {
                "cluster_id": cluster_id,
                "peers": peers,
                "raft_password": raft_password,
                "request_id": request_id,
                "archive": str(saved),
            }
        ),
    )
    (data / "cluster_id").write_text(cluster_id + "\n")
    return saved


def _secret(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)
