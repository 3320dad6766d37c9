"""Members out of a client's rotation, and the background probe that brings them back.

    down = DownMembers(probe, interval=1.0)   probe(endpoint) -> True when the member may serve again
    down.mark(endpoint)                       failed: out of the rotation until a probe says otherwise
    down.clear(endpoint)                      answered a real call: back at once
    down.healthy(endpoints)                   the listed members not out, in the given order

A member that fails a call (UNAVAILABLE, a deadline) leaves the rotation, and a thread of the
client's own asks it every `interval` seconds whether it serves again (the transport's probe: the
standard gRPC health check, answered SERVING only by a member with a leader, a quorum and a caught-up
log). Only a SERVING answer brings it back; calls meanwhile go to the other members. This is how
HA clients of network HSMs treat a failed member (Luna HA: a member dropped from the HA group is
retried in the background at the recovery interval; calls never wait for it).

Before, the member came back by itself after `interval` and a real call was the probe: with a hung
(SIGSTOPped) member, one call in every ~3.5 s waited half its timeout before failing over (a new
user: 9 of 2,877 signs took 2.5 s at the default 5-s timeout). When every member is out, the
transport still tries them all (`healthy` + the rest), so a client never refuses to call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import grpc

log = logging.getLogger(__name__)


class DownMembers:
    """Endpoints out of the rotation; one daemon thread probes them while any is out.

    `probe(endpoint)` returns True when the member serves again; it must return within a bounded
    time (its RPC deadline) and may raise (counted as not serving). `interval`: seconds between a
    member's probes. Thread-safe. `probes` counts probes made per endpoint (tests, diagnostics).
    """

    def __init__(self, probe: Callable[[str], bool], interval: float) -> None:
        self._probe = probe
        self.interval = interval
        # endpoint out of the rotation -> time.monotonic() of its next probe
        self._next_probe: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._prober: threading.Thread | None = None
        self._closed = False
        self.probes: dict[str, int] = {}

    def __contains__(self, endpoint: object) -> bool:
        return endpoint in self._next_probe

    def healthy(self, endpoints: Iterable[str]) -> list[str]:
        """The `endpoints` not out of the rotation, in order."""
        out = self._next_probe
        return [e for e in endpoints if e not in out]

    def mark(self, endpoint: str) -> None:
        """`endpoint` failed a call: out of the rotation, probed after `interval`."""
        with self._lock:
            if self._closed:
                return
            if endpoint not in self._next_probe:
                self._next_probe[endpoint] = time.monotonic() + self.interval
            if self._prober is None:
                self._prober = threading.Thread(target=self._run, name="hsm-probe", daemon=True)
                self._prober.start()
            self._wake.notify()

    def clear(self, endpoint: str) -> None:
        """`endpoint` answered: back in the rotation (no-op when it was not out)."""
        if endpoint in self._next_probe:  # the common case (every answer) without the lock
            with self._lock:
                self._next_probe.pop(endpoint, None)

    def forget(self, keep: Iterable[str]) -> None:
        """Stop probing endpoints not in `keep` (members dropped from the client's list)."""
        kept = set(keep)
        with self._lock:
            for endpoint in [e for e in self._next_probe if e not in kept]:
                del self._next_probe[endpoint]

    def close(self) -> None:
        """Stop the prober (it exits within one probe's deadline)."""
        with self._lock:
            self._closed = True
            self._next_probe.clear()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while True:
                    if self._closed or not self._next_probe:
                        self._prober = None
                        return
                    now = time.monotonic()
                    due = [e for e, at in self._next_probe.items() if at <= now]
                    if due:
                        break
                    self._wake.wait(min(self._next_probe.values()) - now)
            for endpoint in due:
                self.probes[endpoint] = self.probes.get(endpoint, 0) + 1
                try:
                    serving = self._probe(endpoint)
                except Exception:  # noqa: BLE001 - a probe that fails in any way: still out
                    log.debug("probe of %s failed", endpoint, exc_info=True)
                    serving = False
                with self._lock:
                    if endpoint not in self._next_probe:
                        continue  # a real call's answer cleared it meanwhile, or it was dropped
                    if serving:
                        del self._next_probe[endpoint]
                        log.info("member %s serves again: back in the rotation", endpoint)
                    else:
                        self._next_probe[endpoint] = time.monotonic() + self.interval


# grpc.health.v1.Health/Check as bytes: the SDK imports no more than hsmnode.pb, grpc and the stdlib
# (tests/test_layering.py), and the two messages are fixed. HealthCheckRequest{service: ""} is the
# empty message; HealthCheckResponse{status: SERVING} is field 1, varint 1.
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SERVING_REPLY = b"\x08\x01"


def serving(channel: grpc.Channel, timeout: float) -> bool:
    """Whether the member at the other end of `channel` answers the standard gRPC health check
    (grpc.health.v1, the whole server) SERVING within `timeout` s: a member does only with a leader,
    a quorum and a caught-up log (node.py). Raises grpc.RpcError (unreachable, hung, a deadline)."""
    check: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(HEALTH_CHECK)  # bytes both ways
    return bool(check(b"", timeout=timeout) == SERVING_REPLY)
