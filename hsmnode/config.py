"""Node configuration: `node.toml`, strictly validated.

    [node]
    id = "node1"
    cluster_id = "c-3f2a..."
    data_dir = "data"                # relative paths are relative to this file
    smk_file = "data/smk.key"        # optional; the cluster SMK (hex, mode 0600); default data_dir/smk.key

    [grpc]
    listen = "127.0.0.1:7001"
    advertise = "127.0.0.1:7001"     # optional; what other members and clients dial

    [raft]
    address = "127.0.0.1:7101"       # bind address and identity in the Raft group
    password_file = "raft.secret"    # shared by all members; encrypts Raft traffic
    election_timeout_min = 0.5       # optional timings, seconds (what each trades: README, Architecture)
    election_timeout_max = 1.0
    heartbeat_interval = 0.1
    compaction_min_entries = 5000    # optional: log entries between snapshots
    lease = 2.0                      # optional: a member serves crypto at most this long after its
                                     # last proof of a leader with a quorum (>= 2 x election_timeout_max)
    durable = false                  # optional: fsync the journal before acknowledging (group commit)
    max_frame_bytes = 16777216       # optional: largest Raft frame accepted from a peer
    handshake_deadline = 3.0         # optional: seconds for a new Raft connection to identify itself

    [tls]
    ca = "ca.pem"
    cert = "node1.pem"
    key = "node1.key"

    [server]
    reflection = false               # gRPC server reflection (grpcurl); `hsmnode dev` turns it on
    switch_interval_ms = 5.0         # optional; how long a busy thread keeps the GIL while another
                                     # waits (sys.setswitchinterval; default Python's, 5 ms)

    [metrics]
    listen = "127.0.0.1:9464"        # optional; Prometheus /metrics of this member (default: off)

    [log]
    format = "text"                  # optional; text | json (one JSON object per line); --log-format wins

    [backup]
    interval = 0                     # seconds between backups the leader takes; 0 = none
    keep = 7                         # newest scheduled backups kept in dir
    dir = "data/backups"             # optional; default data_dir/backups
    [console]
    socket = "data/console.sock"     # optional; the local console's unix socket (default data_dir/console.sock)
    enabled = true                   # optional; false: no local console

    [debug]
    fault_injection = false          # enables the Debug service (tests only)

    [[peers]]
    id = "node2"
    raft = "127.0.0.1:7102"
    grpc = "127.0.0.1:7002"

Every problem is a `ConfigError` naming the file, the key and what is expected.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Peer:
    id: str
    raft: str
    grpc: str


@dataclass(frozen=True)
class RaftTimings:
    election_timeout_min: float = 0.5
    election_timeout_max: float = 1.0
    heartbeat_interval: float = 0.1
    leader_fallback: float = 2.0


@dataclass(frozen=True)
class BackupSchedule:
    """Scheduled cluster backups, taken by the leader (hsmnode/backup/schedule.py)."""

    interval: float = 0.0  # seconds; 0 = no scheduled backups
    keep: int = 7
    dir: Path | None = None  # default: data_dir/backups


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    node_id: str
    cluster_id: str
    data_dir: Path
    grpc_listen: str
    grpc_advertise: str
    raft_address: str
    raft_password_file: Path
    tls_ca: Path
    tls_cert: Path
    tls_key: Path
    peers: tuple[Peer, ...]
    timings: RaftTimings
    fault_injection: bool
    compaction_min_entries: int = 5000
    smk_file: Path | None = None
    lease: float = 2.0
    raft_password_override: str | None = None  # set by a join (membership.json in the data dir)
    reflection: bool = False
    backup: BackupSchedule = BackupSchedule()
    # permission bits of the SMK file that make a member refuse it; 0 for an orchestrator's secret
    # mount (see hsmnode/envconfig.py), whose permissions the orchestrator controls
    smk_mode_mask: int = 0o077
    durable: bool = False
    max_frame_bytes: int = 16 * 1024 * 1024
    handshake_deadline: float = 3.0
    console_socket: Path | None = None  # the local console's unix socket; None: no console
    metrics_listen: str | None = None  # host:port of the Prometheus listener; None: no metrics
    log_format: str = "text"  # text | json (hsmnode/observability/logs.py)
    # the member process's GIL switch interval in ms (sys.setswitchinterval); None: Python's (5 ms)
    switch_interval_ms: float | None = None

    def raft_password(self) -> str:
        if self.raft_password_override is not None:
            return self.raft_password_override
        try:
            secret = self.raft_password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: raft.password_file {self.raft_password_file}: {exc.strerror}"
            ) from None
        if len(secret) < 16:
            raise ConfigError(
                f"{self.path}: raft.password_file {self.raft_password_file} must hold at least 16 characters"
            )
        return secret


_SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "node": {"id": (str, True), "cluster_id": (str, True), "data_dir": (str, True), "smk_file": (str, False)},
    "grpc": {"listen": (str, True), "advertise": (str, False)},
    "raft": {
        "address": (str, True),
        "password_file": (str, True),
        "election_timeout_min": ((int, float), False),
        "election_timeout_max": ((int, float), False),
        "heartbeat_interval": ((int, float), False),
        "leader_fallback": ((int, float), False),
        "compaction_min_entries": (int, False),
        "lease": ((int, float), False),
        "durable": (bool, False),
        "max_frame_bytes": (int, False),
        "handshake_deadline": ((int, float), False),
    },
    "tls": {"ca": (str, True), "cert": (str, True), "key": (str, True)},
    "server": {"reflection": (bool, False), "switch_interval_ms": ((int, float), False)},
    "backup": {"interval": ((int, float), False), "keep": (int, False), "dir": (str, False)},
    "debug": {"fault_injection": (bool, False)},
    "console": {"socket": (str, False), "enabled": (bool, False)},
    "metrics": {"listen": (str, False)},
    "log": {"format": (str, False)},
}
LOG_FORMATS = ("text", "json")
SWITCH_INTERVAL_MS = (0.1, 100.0)  # server.switch_interval_ms's range
_PEER_KEYS = {"id", "raft", "grpc"}
UNIX_SOCKET_PATH_MAX = 107


def _check_address(where: str, key: str, value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: {key} must be host:port, got {value!r}")
    return value


def load_config(path: str | Path) -> NodeConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> NodeConfig:
    where = str(path)
    unknown = sorted(set(raw) - set(_SCHEMA) - {"peers"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(unknown)} (known: {', '.join(sorted(_SCHEMA))}, peers)"
        )
    values: dict[str, dict[str, Any]] = {}
    for section, keys in _SCHEMA.items():
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        extra = sorted(set(table) - set(keys))
        if extra:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(f'{section}.{k}' for k in extra)} "
                f"(known in [{section}]: {', '.join(sorted(keys))})"
            )
        for key, (kind, required) in keys.items():
            if key not in table:
                if required:
                    raise ConfigError(f"{where}: missing required key {section}.{key}")
                continue
            value = table[key]
            if isinstance(value, bool) and kind is not bool:
                raise ConfigError(f"{where}: {section}.{key} must not be a boolean")
            if not isinstance(value, kind):
                expected = kind.__name__ if isinstance(kind, type) else "a number"
                raise ConfigError(f"{where}: {section}.{key} must be {expected}, got {value!r}")
            if isinstance(value, str) and not value:
                raise ConfigError(f"{where}: {section}.{key} must not be empty")
        values[section] = table

    base = path.parent

    def resolve(p: str) -> Path:
        candidate = Path(p).expanduser()
        return candidate if candidate.is_absolute() else (base / candidate).resolve()

    peers_raw = raw.get("peers", [])
    if not isinstance(peers_raw, list):
        raise ConfigError(f"{where}: peers must be an array of tables ([[peers]])")
    peers = []
    for i, peer in enumerate(peers_raw):
        if not isinstance(peer, dict):
            raise ConfigError(f"{where}: peers[{i}] must be a table")
        if set(peer) != _PEER_KEYS:
            raise ConfigError(
                f"{where}: peers[{i}] must have exactly the keys id, raft, grpc (got {', '.join(sorted(peer))})"
            )
        for key in _PEER_KEYS:
            if not isinstance(peer[key], str) or not peer[key]:
                raise ConfigError(f"{where}: peers[{i}].{key} must be a non-empty string")
        peers.append(
            Peer(
                id=peer["id"],
                raft=_check_address(where, f"peers[{i}].raft", peer["raft"]),
                grpc=_check_address(where, f"peers[{i}].grpc", peer["grpc"]),
            )
        )

    node, grpc_t, raft, tls = values["node"], values["grpc"], values["raft"], values["tls"]
    ids = [node["id"]] + [p.id for p in peers]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: member ids must be unique, got {', '.join(ids)}")
    raft_addrs = [raft["address"]] + [p.raft for p in peers]
    if len(set(raft_addrs)) != len(raft_addrs):
        raise ConfigError(f"{where}: raft addresses must be unique, got {', '.join(raft_addrs)}")

    defaults = RaftTimings()
    timings = RaftTimings(
        election_timeout_min=float(raft.get("election_timeout_min", defaults.election_timeout_min)),
        election_timeout_max=float(raft.get("election_timeout_max", defaults.election_timeout_max)),
        heartbeat_interval=float(raft.get("heartbeat_interval", defaults.heartbeat_interval)),
        leader_fallback=float(raft.get("leader_fallback", defaults.leader_fallback)),
    )
    if timings.heartbeat_interval <= 0:
        raise ConfigError(f"{where}: raft.heartbeat_interval must be > 0")
    if timings.election_timeout_min <= 3 * timings.heartbeat_interval:
        raise ConfigError(
            f"{where}: raft.election_timeout_min ({timings.election_timeout_min}) must exceed "
            f"3 x raft.heartbeat_interval ({timings.heartbeat_interval})"
        )
    if timings.election_timeout_max <= timings.election_timeout_min:
        raise ConfigError(f"{where}: raft.election_timeout_max must exceed raft.election_timeout_min")
    if timings.leader_fallback <= timings.heartbeat_interval:
        raise ConfigError(f"{where}: raft.leader_fallback must exceed raft.heartbeat_interval")

    lease = float(raft.get("lease", 2.0))
    check_lease(where, lease, timings)
    max_frame = int(raft.get("max_frame_bytes", 16 * 1024 * 1024))
    if max_frame < MIN_FRAME_BYTES:
        raise ConfigError(
            f"{where}: raft.max_frame_bytes ({max_frame}) must be at least {MIN_FRAME_BYTES}: pysyncobj sends "
            "64 KiB batches and snapshot chunks, so a smaller limit would cut members off"
        )
    switch = values["server"].get("switch_interval_ms")
    if switch is not None and not SWITCH_INTERVAL_MS[0] <= switch <= SWITCH_INTERVAL_MS[1]:
        raise ConfigError(
            f"{where}: server.switch_interval_ms must be {SWITCH_INTERVAL_MS[0]:g}-{SWITCH_INTERVAL_MS[1]:g} ms, "
            f"got {switch!r}"
        )
    handshake = float(raft.get("handshake_deadline", 3.0))
    if handshake <= 0:
        raise ConfigError(f"{where}: raft.handshake_deadline must be > 0 seconds")
    compaction = int(raft.get("compaction_min_entries", 5000))
    if compaction < 2:
        raise ConfigError(f"{where}: raft.compaction_min_entries must be at least 2")
    listen = _check_address(where, "grpc.listen", grpc_t["listen"])
    backup_t = values["backup"]
    schedule = BackupSchedule(
        interval=float(backup_t.get("interval", 0)),
        keep=int(backup_t.get("keep", 7)),
        dir=resolve(backup_t["dir"]) if "dir" in backup_t else None,
    )
    if schedule.interval < 0:
        raise ConfigError(f"{where}: backup.interval must be >= 0 seconds (0 = no scheduled backups)")
    if schedule.keep < 1:
        raise ConfigError(f"{where}: backup.keep must be at least 1")
    console = values["console"]
    console_socket = None
    if console.get("enabled", True):
        console_socket = (
            resolve(console["socket"]) if "socket" in console else resolve(node["data_dir"]) / "console.sock"
        )
        if len(str(console_socket).encode()) > UNIX_SOCKET_PATH_MAX:
            raise ConfigError(
                f"{where}: the console socket path {console_socket} is longer than {UNIX_SOCKET_PATH_MAX} bytes "
                "(the unix socket limit): set console.socket to a shorter path, or console.enabled = false"
            )
    metrics_t = values["metrics"]
    metrics_listen = (
        _check_address(where, "metrics.listen", metrics_t["listen"]) if "listen" in metrics_t else None
    )
    if metrics_listen is not None and metrics_listen in (listen, raft["address"]):
        raise ConfigError(f"{where}: metrics.listen {metrics_listen} is also the gRPC or Raft address")
    log_format = values["log"].get("format", "text")
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"{where}: log.format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    return NodeConfig(
        path=path,
        node_id=node["id"],
        cluster_id=node["cluster_id"],
        data_dir=resolve(node["data_dir"]),
        grpc_listen=listen,
        grpc_advertise=_check_address(where, "grpc.advertise", grpc_t.get("advertise", listen)),
        raft_address=_check_address(where, "raft.address", raft["address"]),
        raft_password_file=resolve(raft["password_file"]),
        tls_ca=resolve(tls["ca"]),
        tls_cert=resolve(tls["cert"]),
        tls_key=resolve(tls["key"]),
        peers=tuple(peers),
        timings=timings,
        fault_injection=bool(values["debug"].get("fault_injection", False)),
        compaction_min_entries=compaction,
        smk_file=resolve(node["smk_file"]) if "smk_file" in node else resolve(node["data_dir"]) / "smk.key",
        lease=lease,
        reflection=bool(values["server"].get("reflection", False)),
        switch_interval_ms=float(switch) if switch is not None else None,
        backup=schedule,
        durable=bool(raft.get("durable", False)),
        max_frame_bytes=max_frame,
        handshake_deadline=handshake,
        console_socket=console_socket,
        metrics_listen=metrics_listen,
        log_format=log_format,
    )


MIN_FRAME_BYTES = 1024 * 1024


def check_lease(where: str, lease: float, timings: RaftTimings) -> None:
    """Refuse a lease that cannot hold, naming the numbers.

    lease >= 2 x election_timeout_max: after a leader dies the survivors need up to one election
    timeout to notice and about one more to pre-vote and elect; a shorter lease lapses on every
    member before a new leader exists, and every failover becomes an outage. (It also keeps the
    lease far above the heartbeat that renews it: election_timeout_min > 3 x heartbeat_interval.)
    """
    if lease <= 0:
        raise ConfigError(f"{where}: raft.lease must be > 0 seconds")
    floor_election = 2 * timings.election_timeout_max
    if lease < floor_election:
        raise ConfigError(
            f"{where}: raft.lease ({lease:g}s) cannot hold: it must be at least 2 x raft.election_timeout_max "
            f"= {floor_election:g}s, or every member stops serving before a new leader is elected"
        )
