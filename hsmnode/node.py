"""One member process: `hsmnode serve --config node.toml`.

Start-up refuses, with a message naming the problem, when the config is wrong, a
certificate is missing or does not match its key, a port is taken, or the data
directory belongs to another cluster. Then it joins Raft, serves gRPC over
mutual TLS, and watches its own health until SIGTERM or SIGINT.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import grpc

from hsmnode.backup.schedule import BackupScheduler
from hsmnode.backup.seed import Seed, SeedError, load_seed, propose_restore
from hsmnode.config import ConfigError, NodeConfig
from hsmnode.crypto import check_certificate_pair
from hsmnode.crypto.keys import SMK_BYTES, Smk
from hsmnode.observability.member import Observability
from hsmnode.observability.metrics import MetricsPortError
from hsmnode.replication import RaftSettings, Replicator, raft_files_present
from hsmnode.server.app import (
    PortInUseError,
    Services,
    TlsMaterial,
    create_console_server,
    create_server,
    set_serving,
)
from hsmnode.server.peers import PeerClients
from hsmnode.service.admin import AdminService
from hsmnode.service.audit import AuditService
from hsmnode.service.backup import BackupService
from hsmnode.service.cluster import ClusterService
from hsmnode.service.context import NodeContext
from hsmnode.service.keyrings import KeyringService
from hsmnode.service.keys import KeyService
from hsmnode.service.login import LoginService
from hsmnode.service.membership import MembershipReconciler
from hsmnode.service.mofn import MofnService
from hsmnode.service.ntls import NtlsService
from hsmnode.service.partition_backup import PartitionBackupService
from hsmnode.service.standing import Standing
from hsmnode.service.usage_audit import UsageLog
from hsmnode.sessions import TokenAuthority

log = logging.getLogger("hsmnode.node")

CLUSTER_ID_FILE = "cluster_id"
WATCH_PERIOD = 0.1


class StartupError(Exception):
    """The node cannot start; the message says why and what to do."""


def prepare_data_dir(config: NodeConfig) -> None:
    """Create the data dir, or check that the one there belongs to this cluster."""
    data = config.data_dir
    marker = data / CLUSTER_ID_FILE
    if marker.exists():
        stored = marker.read_text().strip()
        if stored != config.cluster_id:
            raise StartupError(
                f"data dir {data} belongs to cluster {stored}, but {config.path} says cluster {config.cluster_id}; "
                "refusing to start (point data_dir at this cluster's data, or move the other cluster's data away)"
            )
        return
    if raft_files_present(data):
        raise StartupError(
            f"data dir {data} holds Raft data but no {CLUSTER_ID_FILE} file, so its cluster is unknown; "
            "refusing to start rather than mix it into cluster " + config.cluster_id
        )
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    marker.write_text(config.cluster_id + "\n")


def load_tls(config: NodeConfig) -> TlsMaterial:
    pems = {}
    for what, path in (("tls.ca", config.tls_ca), ("tls.cert", config.tls_cert), ("tls.key", config.tls_key)):
        try:
            pems[what] = Path(path).read_bytes()
        except OSError as exc:
            raise StartupError(f"{config.path}: {what} {path}: {exc.strerror}") from None
    try:
        check_certificate_pair(pems["tls.cert"], pems["tls.key"])
    except ValueError as exc:
        raise StartupError(
            f"{config.path}: tls.cert {config.tls_cert} / tls.key {config.tls_key}: {exc}"
        ) from None
    return TlsMaterial(ca_pem=pems["tls.ca"], cert_pem=pems["tls.cert"], key_pem=pems["tls.key"])


def load_smk(config: NodeConfig) -> Smk:
    """The cluster SMK from the member's data dir: 64 hex digits, readable by the owner only."""
    path = config.smk_file
    assert path is not None
    hint = "copy the cluster's SMK file there (mode 0600); `hsmnode dev` creates it for local clusters"
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except FileNotFoundError:
        raise StartupError(f"no SMK at {path}: {hint}") from None
    except OSError as exc:
        raise StartupError(f"cannot read the SMK {path}: {exc.strerror}") from None
    if mode & config.smk_mode_mask:
        raise StartupError(
            f"the SMK {path} is readable by others (mode {oct(mode & 0o777)}): chmod 600 {path}"
        )
    try:
        return Smk(bytes.fromhex(text))
    except ValueError:
        raise StartupError(f"the SMK {path} must hold {SMK_BYTES * 2} hex digits") from None


def check_port_free(address: str, what: str, wait: float = 0.0) -> None:
    """Raise StartupError unless `address` (host:port) can be bound; while it is in use, retry for
    up to `wait` s (a member restarted after a join: a snapshot writer its earlier image forked may
    still hold the port until its dump is written)."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + wait
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # SO_REUSEADDR as gRPC and pysyncobj bind: a restarted member must not trip over
            # its own connections in TIME_WAIT, only over a listener that is really there.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, int(port)))
                return
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                    raise StartupError(f"cannot use {what} {address}: {exc.strerror}") from None
        time.sleep(0.1)


class Node:
    def __init__(self, config: NodeConfig, pid_file: Path | None = None, port_wait: float = 0.0) -> None:
        """`pid_file`: where to write this process's pid once its ports are bound (`hsmnode serve
        --config F` names `node.pid` beside F, which `hsmnode dev` and `hsmnode drill` read to find
        a member however it was started). `port_wait`: seconds to wait for its ports to be free."""
        self.config = config
        self._port_wait = port_wait
        self._pid_file = pid_file
        self._stop = threading.Event()
        self._exit_code = 0
        self._smk_check = ""
        self._seed: Seed | None = None  # a restored cluster's starting state, until it is bound
        self._compacted_after_restore = False
        self.restart_requested = False

    def _request_restart(self) -> None:
        """After a join: stop once the answer is sent, then the caller re-executes the node."""
        self.restart_requested = True
        threading.Timer(0.5, self._stop.set).start()

    def stop(self) -> None:
        """Ask `run` to shut down (as SIGTERM does); returns at once, `run` returns when it has stopped."""
        self._stop.set()

    def run(self) -> int:
        """Serve until stopped (SIGTERM/SIGINT, or `stop()`). Runs on the main thread of `hsmnode serve`,
        or on a thread that lives until `run` returns (an in-process member of the test suite):
        pysyncobj's tick thread stops when the thread that constructed it exits."""
        cfg = self.config
        if cfg.switch_interval_ms is not None:  # process-wide: every member this process runs
            sys.setswitchinterval(cfg.switch_interval_ms / 1000)
            log.info("GIL switch interval %g ms (server.switch_interval_ms)", cfg.switch_interval_ms)
        prepare_data_dir(cfg)
        tls = load_tls(cfg)
        smk = load_smk(cfg)
        try:
            password = cfg.raft_password()
            self._seed = load_seed(cfg.data_dir, smk, cfg.cluster_id)
        except (ConfigError, SeedError) as exc:
            raise StartupError(str(exc)) from None
        if self._seed is not None:
            log.info(
                "starting from the backup of cluster %s at index %d (a restored cluster)",
                self._seed.source_cluster_id,
                self._seed.header.index,
            )
        check_port_free(cfg.grpc_listen, "gRPC address", self._port_wait)
        check_port_free(cfg.raft_address, "Raft address", self._port_wait)
        observability = Observability(cfg)
        try:
            observability.listen()  # metrics: a taken port refuses start-up before Raft starts
        except MetricsPortError as exc:
            raise StartupError(str(exc)) from None
        try:
            replicator = Replicator(
                RaftSettings(
                    self_address=cfg.raft_address,
                    partner_addresses=tuple(p.raft for p in cfg.peers),
                    data_dir=cfg.data_dir,
                    password=password,
                    election_timeout_min=cfg.timings.election_timeout_min,
                    election_timeout_max=cfg.timings.election_timeout_max,
                    heartbeat_interval=cfg.timings.heartbeat_interval,
                    leader_fallback=cfg.timings.leader_fallback,
                    compaction_min_entries=cfg.compaction_min_entries,
                    lease=cfg.lease,
                    durable=cfg.durable,
                    max_frame_bytes=cfg.max_frame_bytes,
                    handshake_deadline=cfg.handshake_deadline,
                ),
                initial_state=self._seed.state if self._seed is not None else None,
            )
        except OSError as exc:  # Raft port taken, or durable mode on a filesystem without fsync
            raise StartupError(str(exc)) from None
        tokens = TokenAuthority(cfg.cluster_id, password.encode())
        ctx = NodeContext(
            config=cfg,
            replicator=replicator,
            tokens=tokens,
            ca_pem=tls.ca_pem,
            node_cert_pem=tls.cert_pem,
            node_key_pem=tls.key_pem,
            request_restart=self._request_restart,
        )
        standing = Standing(cfg, replicator, self._restore_pending)
        peers = PeerClients(tls.ca_pem, tls.cert_pem, tls.key_pem)
        cluster = ClusterService(ctx, standing, peers, smk.check_value)
        backups = BackupService(ctx, smk)
        auth = LoginService(ctx)
        usage_log = UsageLog(cfg.data_dir, cfg.node_id)
        services = Services(
            cluster,
            AuditService(ctx, usage_log),
            auth,
            AdminService(ctx),
            NtlsService(ctx, auth),
            KeyService(ctx, smk, usage_log),
            KeyringService(ctx),
            MofnService(ctx, auth),
            backups,
            PartitionBackupService(ctx, smk),
        )
        self._smk_check = smk.check_value
        observer = observability.attach(replicator, tokens)
        try:
            server, health_servicer = create_server(
                cfg.grpc_listen,
                tls,
                replicator,
                standing,
                services,
                reflection=cfg.reflection,
                interceptors=(observer,),
            )
        except PortInUseError as exc:
            replicator.close()
            raise StartupError(str(exc)) from None
        try:
            console = self._start_console(tls, replicator, standing, services.mofn, observer)
        except StartupError:
            replicator.close()
            raise
        server.start()
        if self._pid_file is not None:
            try:
                self._pid_file.write_text(f"{os.getpid()}\n")
            except OSError as exc:
                log.warning("cannot write the pid file %s: %s", self._pid_file, exc)
        log.info(
            "node %s of cluster %s: gRPC %s, Raft %s, metrics %s, data %s",
            cfg.node_id,
            cfg.cluster_id,
            cfg.grpc_listen,
            cfg.raft_address,
            cfg.metrics_listen or "off",
            cfg.data_dir,
        )
        scheduler = BackupScheduler(cfg, backups, replicator)
        watcher = threading.Thread(
            target=self._watch,
            args=(replicator, standing, cluster, health_servicer, scheduler, ctx),
            daemon=True,
        )
        watcher.start()
        reconciler = MembershipReconciler(ctx)
        reconciler.start()
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stop.set())
        while not self._stop.wait(0.5):
            pass
        log.info("node %s stopping", cfg.node_id)
        scheduler.stop()
        reconciler.stop()
        observability.stop()
        set_serving(health_servicer, False)
        try:
            standing.refresh()  # a removal applied since the last watch round
        except Exception:
            log.exception("removal check at shutdown")
        server.stop(grace=1.0).wait()
        if console is not None:
            console.stop(grace=0.5).wait()
        peers.close()
        replicator.close()
        usage_log.close()
        return self._exit_code

    def _start_console(
        self,
        tls: TlsMaterial,
        replicator: Replicator,
        standing: Standing,
        authorization: MofnService,
        observer: grpc.ServerInterceptor,
    ) -> grpc.Server | None:
        """The local console on its unix socket (DOMAIN.md §5), if configured."""
        path = self.config.console_socket
        if path is None:
            return None
        try:
            console = create_console_server(
                path, tls, replicator, standing, authorization, (observer,), cluster_id=self.config.cluster_id
            )
        except PortInUseError as exc:
            raise StartupError(f"{exc} (console.socket in {self.config.path})") from None
        console.start()
        os.chmod(path, 0o600)
        log.info("local console on %s", path)
        return console

    def _restore_pending(self, replicated_id: str | None) -> bool:
        """Does the state still carry the backup's cluster id (the leader has not bound it yet)?"""
        return self._seed is not None and replicated_id == self._seed.source_cluster_id

    def _after_restore(self, replicator: Replicator, ctx: NodeContext, replicated_id: str | None) -> None:
        """The leader binds a restored state to this cluster; then every member compacts once, so a
        member added later receives a snapshot instead of a log that assumes the backup."""
        seed = self._seed
        if seed is None:
            return
        if self._restore_pending(replicated_id):
            members = [(self.config.node_id, self.config.raft_address, self.config.grpc_advertise)]
            members += [(p.id, p.raft, p.grpc) for p in self.config.peers]
            propose_restore(ctx, seed, members)
        elif replicated_id == self.config.cluster_id and not self._compacted_after_restore:
            replicator.force_compaction()
            self._compacted_after_restore = True

    def _watch(
        self,
        replicator: Replicator,
        standing: Standing,
        cluster: ClusterService,
        health_servicer: object,
        scheduler: BackupScheduler,
        ctx: NodeContext,
    ) -> None:
        """Health follows Raft: SERVING only with a leader, a quorum and a caught-up log."""
        serving = False
        while not self._stop.is_set():
            try:
                status = replicator.status()
                now_serving = status.leader_address is not None and status.has_quorum and status.ready
                if now_serving != serving:
                    set_serving(health_servicer, now_serving)  # type: ignore[arg-type]
                    serving = now_serving
                    log.info("health: %s", "SERVING" if serving else "NOT_SERVING")
                cluster.bootstrap_if_leader()
                replicated_id, smk_check = standing.refresh()
                self._after_restore(replicator, ctx, replicated_id)
                scheduler.tick(serving)
                if smk_check and smk_check != self._smk_check:
                    log.critical(
                        "the cluster's SMK (check value %s) differs from this member's %s (%s); stopping",
                        smk_check,
                        self.config.smk_file,
                        self._smk_check,
                    )
                    self._exit_code = 3
                    self._stop.set()
                if (
                    replicated_id is not None
                    and replicated_id != self.config.cluster_id
                    and not self._restore_pending(replicated_id)
                ):
                    log.critical(
                        "replicated state belongs to cluster %s but this node is configured for %s; stopping",
                        replicated_id,
                        self.config.cluster_id,
                    )
                    self._exit_code = 3
                    self._stop.set()
            except Exception:
                log.exception("health watcher")
            self._stop.wait(WATCH_PERIOD)
