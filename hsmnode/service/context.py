"""What every use case needs from its member: the replicator, identity, clock and limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hsmnode.config import NodeConfig
from hsmnode.domain.commands import Command, validate_request_id
from hsmnode.domain.errors import DomainError
from hsmnode.domain.state import Result
from hsmnode.replication import Replicator

DEFAULT_WRITE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Caller:
    """Who is on the other end of the mutual-TLS connection."""

    common_name: str
    fingerprint: str

    @property
    def actor(self) -> str:
        return f"client:{self.common_name}"


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class NodeContext:
    config: NodeConfig
    replicator: Replicator
    clock_ms: Callable[[], int] = field(default=wall_clock_ms)

    @property
    def node_id(self) -> str:
        return self.config.node_id

    def propose(self, cmd: Command, timeout: float | None) -> Result:
        """Replicate and return the applied Result; a refusal becomes a DomainError."""
        result = self.replicator.propose(
            cmd, timeout=min(timeout or DEFAULT_WRITE_TIMEOUT, DEFAULT_WRITE_TIMEOUT)
        )
        if not result.ok:
            assert result.code is not None
            raise DomainError(result.code, result.message)
        return result

    def stamp(self, request_id: str) -> int:
        """Validate the client's request_id and return the proposal timestamp."""
        validate_request_id(request_id)
        return self.clock_ms()
