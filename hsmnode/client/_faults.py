"""A fault-injecting client interceptor, for SDK tests and drills (Vault's error injector in gRPC form).

    FaultInjector(fail_ratio=0.3)          30% of calls fail with UNAVAILABLE before they are sent
    FaultInjector(unknown_ratio=0.5)       half the calls are sent and executed, but the answer (a
                                           result or an error) is lost (DEADLINE_EXCEEDED): the outcome
                                           is unknown to the client
    FaultInjector(latency=0.05)            every call waits 50 ms first

Pass it to HsmClient(..., interceptors=[injector]). The counters say what it did.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc


class InjectedError(grpc.RpcError):
    """`sent` says whether the call reached the member (its outcome is then unknown to the client)."""

    def __init__(self, code: grpc.StatusCode, details: str, *, sent: bool) -> None:
        super().__init__(details)
        self._code = code
        self._details = details
        self.sent = sent

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[()]:
        return ()


class FaultInjector(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        *,
        fail_ratio: float = 0.0,
        unknown_ratio: float = 0.0,
        latency: float = 0.0,
        methods: tuple[str, ...] = (),
        seed: int | None = None,
        limit: int | None = None,
    ) -> None:
        """`methods`: only calls whose method name ends with one of these; `limit`: at most this many faults."""
        if not 0 <= fail_ratio <= 1 or not 0 <= unknown_ratio <= 1 or latency < 0:
            raise ValueError("ratios are 0-1 and latency >= 0")
        self.fail_ratio = fail_ratio
        self.unknown_ratio = unknown_ratio
        self.latency = latency
        self.methods = methods  # only methods whose name ends with one of these ("" = all)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.limit = limit
        self.failed = 0
        self.lost = 0
        self.passed = 0

    def _roll(self) -> float:
        with self._lock:
            return self._random.random()

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        if self.methods and not details.method.endswith(self.methods):
            return continuation(details, request)
        if self.latency:
            time.sleep(self.latency)
        roll = self._roll()
        with self._lock:
            exhausted = self.limit is not None and self.failed + self.lost >= self.limit
        if exhausted:
            roll = 1.0
        if roll < self.fail_ratio:
            with self._lock:
                self.failed += 1
            raise InjectedError(
                grpc.StatusCode.UNAVAILABLE, "injected fault: the call was not sent", sent=False
            )
        outcome = continuation(details, request)
        if roll < self.fail_ratio + self.unknown_ratio:
            # let the member execute it; its answer (a result or an error) is what gets lost
            outcome.exception() if hasattr(outcome, "exception") else None
            with self._lock:
                self.lost += 1
            raise InjectedError(
                grpc.StatusCode.DEADLINE_EXCEEDED, "injected fault: the answer was lost", sent=True
            )
        with self._lock:
            self.passed += 1
        return outcome
