"""What node.py starts for an operator: the metrics listener, the request interceptor, the Raft
event log, for one member process."""

from __future__ import annotations

from collections.abc import Callable

from hsmnode.config import NodeConfig
from hsmnode.observability.metrics import MemberMetrics, start_listener
from hsmnode.observability.raft_events import RaftEventLog
from hsmnode.observability.requests import RequestObserver
from hsmnode.replication import Replicator
from hsmnode.sessions import TokenAuthority


class Observability:
    """`listen()` first (a taken metrics port refuses start-up before Raft starts: MetricsPortError),
    then `attach(...)` once the replicator exists (returns the gRPC server interceptor), `stop()` last."""

    def __init__(self, config: NodeConfig) -> None:
        self._config = config
        self.metrics = MemberMetrics() if config.metrics_listen else None
        self._stop_listener: Callable[[], None] | None = None
        self._events: RaftEventLog | None = None

    def listen(self) -> None:
        if self.metrics is not None and self._config.metrics_listen:
            self._stop_listener = start_listener(self.metrics, self._config.metrics_listen)

    def attach(self, replicator: Replicator, tokens: TokenAuthority) -> RequestObserver:
        if self.metrics is not None:
            self.metrics.collect_member(replicator, self._config.data_dir)
            replicator.consumer.observer = self.metrics.observe_apply
        self._events = RaftEventLog(replicator, self._config.data_dir, self.metrics)
        self._events.start()
        return RequestObserver(self._config.node_id, self.metrics, tokens)

    def stop(self) -> None:
        if self._events is not None:
            self._events.stop()
        if self._stop_listener is not None:
            self._stop_listener()
