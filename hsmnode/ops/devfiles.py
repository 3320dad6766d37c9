"""The files of a local cluster (`hsmnode dev`, the cluster tests): its layout, ports, member
configs, manifest, profile and secrets. Starting and stopping the processes: devcluster.py.

    DIR/cluster.json      manifest: cluster id, members and their ports
    DIR/profile.json      endpoints + CA + admin client certificate (for the CLI and SDK)
    DIR/ca.pem ca.key     the cluster CA (key mode 0600)
    DIR/admin.pem .key    the admin client certificate
    DIR/raft.secret       the Raft password shared by members (mode 0600)
    DIR/<node>/node.toml  each member's config; DIR/<node>/data its data; DIR/<node>/node.log its log
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from hsmnode import crypto
from hsmnode.config import RaftTimings
from hsmnode.crypto.keys import new_smk

MANIFEST = "cluster.json"
PROFILE = "profile.json"
DEFAULT_BASE_PORT = 7400
RAFT_PORT_OFFSET = 100
METRICS_PORT_OFFSET = 200  # `hsmnode dev`: member i's Prometheus /metrics on base port + 200 + i


class DevClusterError(Exception):
    pass


@dataclass(frozen=True)
class DevTimings:
    election_timeout_min: float = RaftTimings.election_timeout_min
    election_timeout_max: float = RaftTimings.election_timeout_max
    heartbeat_interval: float = RaftTimings.heartbeat_interval
    compaction_min_entries: int = 5000
    durable: bool = False  # a dev cluster trades power-loss durability for speed; deploy/ turns it on
    max_frame_bytes: int | None = None  # the Raft frame limit; None: the member's default
    log_format: str = "text"  # every member's [log] format: text | json
    switch_interval_ms: float | None = None  # every member's [server] switch_interval_ms; None: Python's


@dataclass(frozen=True)
class DevMember:
    id: str
    grpc: str
    raft: str
    dir: Path
    metrics: str | None = None  # host:port of its Prometheus listener; None: off

    @property
    def config_path(self) -> Path:
        return self.dir / "node.toml"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        return self.dir / "node.log"


def write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def ports_free(ports: list[int], host: str = "127.0.0.1") -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def node_toml(
    member: DevMember, cluster_id: str, peers: list[DevMember], timings: DevTimings, fault: bool
) -> str:
    lines = [
        "# hsmnode member config, written by `hsmnode dev`",
        "[node]",
        f'id = "{member.id}"',
        f'cluster_id = "{cluster_id}"',
        'data_dir = "data"',
        "",
        "[grpc]",
        f'listen = "{member.grpc}"',
        "",
        "[raft]",
        f'address = "{member.raft}"',
        'password_file = "../raft.secret"',
        f"election_timeout_min = {timings.election_timeout_min}",
        f"election_timeout_max = {timings.election_timeout_max}",
        f"heartbeat_interval = {timings.heartbeat_interval}",
        f"compaction_min_entries = {timings.compaction_min_entries}",
        f"durable = {'true' if timings.durable else 'false'}",
        *([f"max_frame_bytes = {timings.max_frame_bytes}"] if timings.max_frame_bytes else []),
        "",
        "[tls]",
        'ca = "../ca.pem"',
        'cert = "node.pem"',
        'key = "node.key"',
        "",
        "[server]",
        "reflection = true",
        *([f"switch_interval_ms = {timings.switch_interval_ms:g}"] if timings.switch_interval_ms else []),
        "",
        *(["[metrics]", f'listen = "{member.metrics}"', ""] if member.metrics else []),
        "[log]",
        f'format = "{timings.log_format}"',
        "",
        "[debug]",
        f"fault_injection = {'true' if fault else 'false'}",
    ]
    for peer in peers:
        lines += ["", "[[peers]]", f'id = "{peer.id}"', f'raft = "{peer.raft}"', f'grpc = "{peer.grpc}"']
    return "\n".join(lines) + "\n"


def manifest_entry(member: DevMember) -> dict[str, str]:
    entry = {"id": member.id, "grpc": member.grpc, "raft": member.raft}
    return {**entry, "metrics": member.metrics} if member.metrics else entry


def write_cluster(
    root: Path,
    *,
    nodes: int,
    base_port: int,
    timings: DevTimings,
    fault_injection: bool,
    smk: bytes | None,
    hosts: list[tuple[str, str]] | None,
    metrics: bool,
) -> tuple[str, list[DevMember]]:
    """Write a new cluster's files into `root` (resolved): (its cluster id, its members).

    Raises DevClusterError for a member count outside 1-9, ports outside 1024-65535 or in use,
    a cluster already in `root`, or `hosts` of the wrong length. See DevCluster.create."""
    if nodes < 1 or nodes > 9:
        raise DevClusterError("--nodes must be between 1 and 9")
    if (root / MANIFEST).exists():
        raise DevClusterError(f"{root} already holds a cluster")
    offsets = (0, RAFT_PORT_OFFSET, METRICS_PORT_OFFSET) if metrics else (0, RAFT_PORT_OFFSET)
    ports = [base_port + offset + i for offset in offsets for i in range(nodes)]
    if max(ports) > 65535 or base_port < 1024:
        raise DevClusterError(
            f"--base-port {base_port}: ports {min(ports)}-{max(ports)} must lie in 1024-65535"
        )
    busy = [] if hosts else [p for p in ports if not ports_free([p])]
    if busy:
        raise DevClusterError(
            f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use; choose another --base-port"
        )
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    cluster_id = crypto.random_id("c")
    ca = crypto.create_ca(f"hsmnode cluster {cluster_id} CA")
    (root / "ca.pem").write_bytes(ca.cert_pem)
    write_secret(root / "ca.key", ca.key_pem)
    admin = crypto.issue_certificate(ca, "admin")
    (root / "admin.pem").write_bytes(admin.cert_pem)
    write_secret(root / "admin.key", admin.key_pem)
    write_secret(root / "raft.secret", crypto.random_secret().encode() + b"\n")
    if hosts is not None and len(hosts) != nodes:
        raise DevClusterError(f"{nodes} members need {nodes} (gRPC host, Raft host) pairs, got {len(hosts)}")
    where = hosts or [("127.0.0.1", "127.0.0.1")] * nodes
    members = [
        DevMember(
            id=f"node{i + 1}",
            grpc=f"{where[i][0]}:{base_port + i}",
            raft=f"{where[i][1]}:{base_port + RAFT_PORT_OFFSET + i}",
            dir=root / f"node{i + 1}",
            metrics=f"{where[i][0]}:{base_port + METRICS_PORT_OFFSET + i}" if metrics else None,
        )
        for i in range(nodes)
    ]
    smk_hex = (smk or new_smk()).hex()
    for member in members:
        member.dir.mkdir(exist_ok=True)
        # the cluster SMK, the same on every member, never in the Raft log
        member.data_dir.mkdir(mode=0o700, exist_ok=True)
        write_secret(member.data_dir / "smk.key", (smk_hex + "\n").encode())
        names = ["127.0.0.1", "localhost"] + sorted({member.grpc.rpartition(":")[0]} - {"127.0.0.1"})
        pair = crypto.issue_certificate(ca, member.id, hosts=names, server=True)
        (member.dir / "node.pem").write_bytes(pair.cert_pem)
        write_secret(member.dir / "node.key", pair.key_pem)
        peers = [m for m in members if m is not member]
        member.config_path.write_text(node_toml(member, cluster_id, peers, timings, fault_injection))
    manifest = {"cluster_id": cluster_id, "members": [manifest_entry(m) for m in members]}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    profile = {
        "cluster_id": cluster_id,
        "endpoints": [m.grpc for m in members],
        "ca": "ca.pem",
        "cert": "admin.pem",
        "key": "admin.key",
    }
    write_secret(root / PROFILE, (json.dumps(profile, indent=2) + "\n").encode())
    return cluster_id, members
