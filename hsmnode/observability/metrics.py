"""One member's Prometheus metrics and the HTTP listener that serves them (`[metrics] listen`).

Names and units follow the Prometheus conventions (base units: seconds, bytes; `_total` for
counters). Two kinds of source:

- on the path of the event, cheap: requests and their latency (requests.py, one gRPC server
  interceptor; a CryptoStream batch is one request, its operations counted by name and outcome
  once per batch), apply duration and login outcomes (the replicated state's apply observer, once
  per committed entry),
  snapshot duration (the Raft engine's serializer);
- read at scrape time by `MemberCollector`, never updated on a request path: Raft term, leader
  flag, commit and applied index, lag, lease, quorum, the engine's decision counters, the
  snapshot's size, and the counts of keys, partitions, keyrings, users, clients and locked
  credentials from the replicated state.

    family                                       type       labels
    hsmnode_grpc_requests_total                  counter    service, method, code
    hsmnode_grpc_request_duration_seconds        histogram  service, method
    hsmnode_crypto_operations_total              counter    operation, outcome (ok | error)
    hsmnode_raft_apply_duration_seconds          histogram  -
    hsmnode_raft_snapshot_duration_seconds       histogram  -
    hsmnode_raft_snapshot_size_bytes             gauge      -
    hsmnode_logins_total                         counter    target, outcome
    hsmnode_raft_term                            gauge      -
    hsmnode_raft_leader                          gauge      - (1 on the leader, else 0)
    hsmnode_raft_has_leader, _has_quorum,        gauge      -
      _lease_valid, _ready
    hsmnode_raft_commit_index, _applied_index    gauge      -
    hsmnode_raft_lag_entries                     gauge      - (leader's commit index - applied here)
    hsmnode_raft_members                         gauge      - (voters in this member's configuration)
    hsmnode_raft_leader_changes_total            counter    - (leader changes this member saw)
    hsmnode_raft_elections_total                 counter    - (elections this member started)
    hsmnode_raft_engine_events_total             counter    event (pre-votes, refusals, fsyncs...)
    hsmnode_keys, hsmnode_partitions, hsmnode_keyrings, hsmnode_users, hsmnode_clients   gauge
    hsmnode_locked_credentials                   gauge      - (users and roles locked out now)

`hsmnode_logins_total` counts applied login verdicts (the `login.record` command): every member
applies every login, so every member reports the same cluster-wide figures. Its `outcome` is
success, wrong_password (a failed login), locked (refused because the credential is locked,
the attempt that locks it included, and a wrong password while it is locked: a lockout) or
refused (disabled user, expired initial password, a credential that changed meanwhile). The
answer to an appliance user's wrong password hides a lockout behind "wrong user name or
password"; the metric counts by the refusal's own code (Result.hidden_code), as the audit log
records the real reason. Sessions are tokens that any member verifies
and no member stores (DESIGN.md §3.8): the opened sessions are the successful logins.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hsmnode.domain.access import is_locked
from hsmnode.domain.errors import ErrorCode
from hsmnode.domain.result import Result
from hsmnode.domain.state import HsmState
from hsmnode.replication import DUMP_FILE, RaftRole, Replicator

log = logging.getLogger(__name__)

# request latency: 0.5 ms (a cached read) to 10 s (a write that waits out an election)
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
APPLY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
SNAPSHOT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class MetricsPortError(OSError):
    """The metrics listener cannot bind its address."""


def _login_target(target: str) -> str:
    kind = target.partition(":")[0]
    return kind if kind in ("user", "hsm", "partition", "keyring") else "other"


def _login_outcome(success: bool, result: Result) -> str:
    """The `outcome` label of one applied login verdict, from the refusal's own code (a lockout the
    answer hides behind "wrong user name or password": Result.hidden_code)."""
    if result.ok:
        return "success"
    code = result.hidden_code or result.code
    if code is ErrorCode.RESOURCE_EXHAUSTED:
        return "locked"
    if not success and code is ErrorCode.UNAUTHENTICATED:
        return "wrong_password"
    return "refused"


class MemberMetrics:
    """The metric families of one member, in a registry of its own (several members may share a
    process in tests). `collector(...)` adds the scrape-time families once the member's Raft
    replicator exists."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # (service, method, code) -> the labelled request counter and duration histogram
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._operation_children: dict[tuple[str, str], Any] = {}
        self.requests = Counter(
            "hsmnode_grpc_requests",
            "gRPC requests answered by this member, by service, method and status code",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "hsmnode_grpc_request_duration_seconds",
            "Time from receiving a gRPC request to answering it, in seconds",
            ["service", "method"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.crypto_operations = Counter(
            "hsmnode_crypto_operations",
            "Operations of CryptoStream batches this member ran, by operation and outcome (ok, error)",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.apply_seconds = Histogram(
            "hsmnode_raft_apply_duration_seconds",
            "Time to apply one committed Raft entry to the replicated state, in seconds",
            buckets=APPLY_BUCKETS,
            registry=self.registry,
        )
        self.snapshot_seconds = Histogram(
            "hsmnode_raft_snapshot_duration_seconds",
            "Time to write one Raft snapshot (log compaction, in a forked child), in seconds",
            buckets=SNAPSHOT_BUCKETS,
            registry=self.registry,
        )
        self.logins = Counter(
            "hsmnode_logins",
            "Login verdicts applied (cluster-wide, the same on every member), by credential kind and outcome",
            ["target", "outcome"],
            registry=self.registry,
        )
        self.leader_changes = Counter(
            "hsmnode_raft_leader_changes",
            "Leader changes (a new leader, or none) this member has seen",
            registry=self.registry,
        )

    def observe_request(self, service: str, method: str, code: str, seconds: float) -> None:
        key = (service, method, code)
        children = self._request_children.get(key)
        if children is None:  # prometheus_client's labels() takes a lock and builds the key each call
            children = (self.requests.labels(*key), self.request_seconds.labels(service, method))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_operations(self, by_operation: dict[str, int], failed: dict[str, int]) -> None:
        """A CryptoStream batch's operations (by name: sign, verify, encrypt, decrypt) and failures."""
        for operation, count in by_operation.items():
            errors = failed.get(operation, 0)
            if count > errors:
                self._operations(operation, "ok").inc(count - errors)
            if errors:
                self._operations(operation, "error").inc(errors)

    def _operations(self, operation: str, outcome: str) -> Any:
        """crypto_operations' child for these labels (cached: labels() locks and builds a key each call)."""
        child = self._operation_children.get((operation, outcome))
        if child is None:
            child = self._operation_children[(operation, outcome)] = self.crypto_operations.labels(
                operation, outcome
            )
        return child

    def observe_apply(self, applied: Sequence[tuple[Any, Result]], seconds: float) -> None:
        """The replicated state's apply observer (tick thread), once per committed entry: its duration
        (one observation, however many commands a batch entry holds) and each login verdict in it."""
        self.apply_seconds.observe(seconds)
        for command, result in applied:
            if getattr(command, "TYPE", "") == "login.record":
                self.logins.labels(
                    _login_target(command.target), _login_outcome(command.success, result)
                ).inc()

    def collect_member(self, replicator: Replicator, data_dir: Path) -> None:
        """Register the scrape-time families of this member."""
        self.registry.register(MemberCollector(replicator, data_dir))


def _counts(state: HsmState, now_ms: int) -> dict[str, int]:
    """Object counts of the replicated state (under the state lock: keep it a few dict walks)."""
    credentials = [u.credential for u in state.users.values()]
    credentials += [c for c in (state.hsm.so, state.hsm.auditor) if c is not None]
    for partition in state.partitions.values():
        credentials += partition.roles.values()
    for keyring in state.keyrings.values():
        credentials += keyring.roles.values()
    return {
        "keys": sum(len(p.objects) for p in state.partitions.values())
        + sum(len(k.objects) for k in state.keyrings.values()),
        "partitions": len(state.partitions),
        "keyrings": len(state.keyrings),
        "users": len(state.users),
        "clients": len(state.clients),
        "locked_credentials": sum(1 for c in credentials if is_locked(c, now_ms)),
    }


_COUNT_HELP = {
    "keys": "Key objects in every partition and keyring (replicated state)",
    "partitions": "Partitions (replicated state)",
    "keyrings": "Keyrings (replicated state)",
    "users": "Appliance users (replicated state)",
    "clients": "Registered NTLS clients (replicated state)",
    "locked_credentials": "Credentials (users, HSM and partition/keyring roles) locked out now",
}


class MemberCollector(Collector):
    """Raft and state gauges, read when Prometheus scrapes (nothing on the request path)."""

    def __init__(self, replicator: Replicator, data_dir: Path) -> None:
        self._replicator = replicator
        self._dump = data_dir / DUMP_FILE

    def describe(self) -> list[Any]:
        return []  # families are created at collect time; no duplicate check needed

    def collect(self) -> Iterator[Any]:
        r = self._replicator
        status = r.status()
        view = r.metrics_view()

        def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, help_text, value=value)

        yield gauge("hsmnode_raft_term", "This member's current Raft term", status.term)
        yield gauge(
            "hsmnode_raft_leader",
            "1 if this member is the Raft leader, else 0",
            status.role == RaftRole.LEADER,
        )
        yield gauge(
            "hsmnode_raft_has_leader",
            "1 if this member knows a leader, else 0",
            status.leader_address is not None,
        )
        yield gauge(
            "hsmnode_raft_has_quorum", "1 if this member is connected to a quorum, else 0", status.has_quorum
        )
        yield gauge(
            "hsmnode_raft_ready", "1 once this member has caught up with the log, else 0", status.ready
        )
        yield gauge(
            "hsmnode_raft_lease_valid",
            "1 while this member's lease lets it serve crypto and current reads",
            r.within_lease(),
        )
        yield gauge(
            "hsmnode_raft_commit_index", "Highest Raft index this member knows committed", status.commit_index
        )
        yield gauge(
            "hsmnode_raft_applied_index",
            "Highest Raft index applied to this member's state",
            status.applied_index,
        )
        lag = max(view["leader_commit_index"], status.commit_index) - status.applied_index
        yield gauge(
            "hsmnode_raft_lag_entries",
            "Entries the leader has committed that this member has not applied",
            max(lag, 0),
        )
        yield gauge(
            "hsmnode_raft_members", "Voting members in this member's Raft configuration", view["members"]
        )
        counters = r.raft_counters()
        elections = CounterMetricFamily(
            "hsmnode_raft_elections", "Elections this member started (after a won pre-vote)"
        )
        elections.add_metric([], counters.get("elections", 0))
        yield elections
        events = CounterMetricFamily(
            "hsmnode_raft_engine_events",
            "Decisions of the Raft layer (hsmnode/raft) since start",
            labels=["event"],
        )
        for event, count in sorted(counters.items()):
            if event != "elections":
                events.add_metric([event], count)
        yield events
        try:
            size = os.stat(self._dump).st_size
        except OSError:
            size = 0
        yield gauge(
            "hsmnode_raft_snapshot_size_bytes", "Size of this member's latest Raft snapshot file", size
        )
        counts = r.read(lambda s: _counts(s, int(time.time() * 1000)))
        for name, value in counts.items():
            yield gauge(f"hsmnode_{name}", _COUNT_HELP[name], value)


def start_listener(metrics: MemberMetrics, listen: str) -> Callable[[], None]:
    """Serve `/metrics` on `listen` (host:port) from a daemon thread; returns the stop function.
    MetricsPortError naming the address when it cannot bind (port in use, address not local)."""
    host, _, port = listen.rpartition(":")
    try:
        server, thread = start_http_server(int(port), addr=host, registry=metrics.registry)
    except OSError as exc:
        raise MetricsPortError(
            f"cannot listen for metrics on {listen}: {exc.strerror or exc} "
            "(set [metrics] listen to a free port, or remove it to turn metrics off)"
        ) from None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2.0)

    return stop
