"""A member's config from its container environment: `hsmnode serve --config-from-env`.

For a StatefulSet (or compose services named the same way) every member runs the
same image with the same environment; what differs is its name, `<set>-<ordinal>`,
from which the member id and its peers follow:

    variable                 meaning (default)
    HSMNODE_CLUSTER_ID       the cluster id, the same on every member (required)
    HSMNODE_REPLICAS         how many members the cluster has (required)
    HSMNODE_POD_NAME         this member's name <set>-<ordinal> (default: $HOSTNAME); its member id
    HSMNODE_SERVICE          the headless Service: members are <set>-<i>.<service>[.<namespace>.svc.cluster.local];
                             empty: members are reached by name (compose)
    HSMNODE_NAMESPACE        with HSMNODE_SERVICE: the namespace (optional)
    HSMNODE_GRPC_PORT        gRPC port (7000)
    HSMNODE_RAFT_PORT        Raft port (7100)
    HSMNODE_DATA_DIR         the member's data dir, on its own volume (/var/lib/hsmnode/data)
    HSMNODE_SECRETS_DIR      where the secrets are mounted as files (/run/secrets/hsmnode)
    HSMNODE_REFLECTION       "true" turns on gRPC reflection (false)
    HSMNODE_DURABLE          "false" turns off fsync before acknowledging a write (true: a deployment
                             survives a power loss of a majority; hsmnode/raft/durable.py)
    HSMNODE_BACKUP_INTERVAL  seconds between the leader's scheduled backups (0: none)
    HSMNODE_BACKUP_KEEP      scheduled backups kept (7)
    HSMNODE_METRICS_PORT     Prometheus /metrics on 0.0.0.0:<port> (unset or empty: no metrics)
    HSMNODE_LOG_FORMAT       text | json (text); `hsmnode serve --log-format` wins

The secrets directory holds one file per secret (SECRET_FILES): the cluster SMK,
the Raft secret, the cluster CA, and the member certificate and key (one
certificate for every member, with every member's name as a subject alternative
name: `hsmnode deploy-secrets` writes such a set). A missing variable or secret is
an EnvConfigError naming it; `hsmnode serve` refuses to start with that message.
The secret files' permissions are the orchestrator's (Kubernetes makes them
group-readable through fsGroup), so the SMK's owner-only rule of node.toml does not
apply to them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hsmnode.config import LOG_FORMATS, BackupSchedule, ConfigError, NodeConfig, Peer, RaftTimings

DEFAULT_GRPC_PORT = 7000
DEFAULT_RAFT_PORT = 7100
DEFAULT_DATA_DIR = "/var/lib/hsmnode/data"
DEFAULT_SECRETS_DIR = "/run/secrets/hsmnode"
# secret file -> what it is (the Kubernetes Secret's keys and the compose secrets' targets)
SECRET_FILES = {
    "smk.key": "the cluster SMK (64 hex digits)",
    "raft.secret": "the Raft secret shared by the members",
    "ca.pem": "the cluster CA certificate",
    "node.pem": "the member certificate (every member's name as a SAN)",
    "node.key": "the member certificate's private key",
}
ENV_VARS = (
    "HSMNODE_CLUSTER_ID",
    "HSMNODE_REPLICAS",
    "HSMNODE_POD_NAME",
    "HSMNODE_SERVICE",
    "HSMNODE_NAMESPACE",
    "HSMNODE_GRPC_PORT",
    "HSMNODE_RAFT_PORT",
    "HSMNODE_DATA_DIR",
    "HSMNODE_SECRETS_DIR",
    "HSMNODE_REFLECTION",
    "HSMNODE_BACKUP_INTERVAL",
    "HSMNODE_BACKUP_KEEP",
    "HSMNODE_DURABLE",
    "HSMNODE_METRICS_PORT",
    "HSMNODE_LOG_FORMAT",
)
_ORDINAL = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)-(\d+)$")


class EnvConfigError(ConfigError):
    pass


@dataclass(frozen=True)
class Identity:
    """Who this member is among the set, and how every member is reached."""

    set_name: str
    ordinal: int
    replicas: int
    domain: str  # "" or ".<service>[.<namespace>.svc.cluster.local]"

    def name(self, ordinal: int) -> str:
        return f"{self.set_name}-{ordinal}"

    def host(self, ordinal: int) -> str:
        return self.name(ordinal) + self.domain


def _require(env: Mapping[str, str], name: str, hint: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise EnvConfigError(f"environment variable {name} is not set: {hint}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise EnvConfigError(
            f"environment variable {name} must be a whole number from {low} to {high}, got {raw!r}"
        )
    return int(raw)


def identity(env: Mapping[str, str]) -> Identity:
    """This member's place in the set, from HSMNODE_POD_NAME (or HOSTNAME) and HSMNODE_REPLICAS."""
    name = env.get("HSMNODE_POD_NAME", "").strip() or env.get("HOSTNAME", "").strip()
    if not name:
        raise EnvConfigError(
            "environment variable HSMNODE_POD_NAME is not set (nor HOSTNAME): set it to <set>-<ordinal>, "
            "e.g. from the pod's metadata.name"
        )
    match = _ORDINAL.match(name)
    if match is None:
        raise EnvConfigError(
            f"member name {name!r} (HSMNODE_POD_NAME or HOSTNAME) must be <set>-<ordinal> like hsmnode-0, "
            "as a StatefulSet names its pods"
        )
    replicas = _int(env, "HSMNODE_REPLICAS", 0, 1, 9)
    if replicas == 0:
        raise EnvConfigError("environment variable HSMNODE_REPLICAS is not set: the number of members (1-9)")
    ordinal = int(match.group(3))
    if ordinal >= replicas:
        raise EnvConfigError(f"member {name} has ordinal {ordinal}, but HSMNODE_REPLICAS is {replicas}")
    service = env.get("HSMNODE_SERVICE", "").strip()
    namespace = env.get("HSMNODE_NAMESPACE", "").strip()
    domain = ""
    if service:
        domain = f".{service}" + (f".{namespace}.svc.cluster.local" if namespace else "")
    return Identity(match.group(1), ordinal, replicas, domain)


def secret_path(env: Mapping[str, str], name: str) -> Path:
    """The file of secret `name` (a key of SECRET_FILES); EnvConfigError naming it when it is missing."""
    directory = Path(env.get("HSMNODE_SECRETS_DIR", "").strip() or DEFAULT_SECRETS_DIR)
    path = directory / name
    if not path.is_file():
        raise EnvConfigError(
            f"secret {name} ({SECRET_FILES[name]}) is missing: expected the file {path}; mount it "
            f"(Kubernetes: key {name} of the Secret mounted at {directory}; compose: a secret with target {name})"
        )
    return path


def config_from_env(env: Mapping[str, str]) -> NodeConfig:
    """The member's NodeConfig; EnvConfigError naming the first missing or wrong variable or secret."""
    cluster_id = _require(env, "HSMNODE_CLUSTER_ID", "the cluster id, the same on every member")
    who = identity(env)
    grpc_port = _int(env, "HSMNODE_GRPC_PORT", DEFAULT_GRPC_PORT, 1, 65535)
    raft_port = _int(env, "HSMNODE_RAFT_PORT", DEFAULT_RAFT_PORT, 1, 65535)
    secrets = {name: secret_path(env, name) for name in SECRET_FILES}
    reflection = env.get("HSMNODE_REFLECTION", "false").strip().lower()
    if reflection not in ("true", "false"):
        raise EnvConfigError(
            f"environment variable HSMNODE_REFLECTION must be true or false, got {reflection!r}"
        )
    durable = env.get("HSMNODE_DURABLE", "true").strip().lower()
    if durable not in ("true", "false"):
        raise EnvConfigError(f"environment variable HSMNODE_DURABLE must be true or false, got {durable!r}")
    metrics_port = _int(env, "HSMNODE_METRICS_PORT", 0, 1, 65535)
    if metrics_port in (grpc_port, raft_port):
        raise EnvConfigError(
            f"environment variable HSMNODE_METRICS_PORT ({metrics_port}) is also the gRPC or Raft port"
        )
    log_format = env.get("HSMNODE_LOG_FORMAT", "").strip().lower() or "text"
    if log_format not in LOG_FORMATS:
        raise EnvConfigError(
            f"environment variable HSMNODE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}"
        )
    me = who.ordinal
    return NodeConfig(
        path=Path(f"(environment of {who.name(me)})"),
        node_id=who.name(me),
        cluster_id=cluster_id,
        data_dir=Path(env.get("HSMNODE_DATA_DIR", "").strip() or DEFAULT_DATA_DIR),
        grpc_listen=f"0.0.0.0:{grpc_port}",
        grpc_advertise=f"{who.host(me)}:{grpc_port}",
        raft_address=f"{who.host(me)}:{raft_port}",
        raft_password_file=secrets["raft.secret"],
        tls_ca=secrets["ca.pem"],
        tls_cert=secrets["node.pem"],
        tls_key=secrets["node.key"],
        peers=tuple(
            Peer(id=who.name(i), raft=f"{who.host(i)}:{raft_port}", grpc=f"{who.host(i)}:{grpc_port}")
            for i in range(who.replicas)
            if i != me
        ),
        timings=RaftTimings(),
        fault_injection=False,
        smk_file=secrets["smk.key"],
        reflection=reflection == "true",
        backup=BackupSchedule(
            interval=float(_int(env, "HSMNODE_BACKUP_INTERVAL", 0, 0, 10**7)),
            keep=_int(env, "HSMNODE_BACKUP_KEEP", 7, 1, 10_000),
        ),
        smk_mode_mask=0,
        durable=durable == "true",
        metrics_listen=f"0.0.0.0:{metrics_port}" if metrics_port else None,
        log_format=log_format,
    )


def member_hosts(set_name: str, replicas: int, service: str = "", namespace: str = "") -> list[str]:
    """Every name a member may be dialed by, for the shared member certificate's SANs."""
    hosts = ["localhost", "127.0.0.1"]
    for i in range(replicas):
        name = f"{set_name}-{i}"
        hosts.append(name)
        if service:
            hosts.append(f"{name}.{service}")
            if namespace:
                hosts.append(f"{name}.{service}.{namespace}.svc.cluster.local")
    return hosts
