"""A fault-injecting client interceptor, for SDK tests and drills (Vault's error injector in gRPC form).

    FaultInjector(fail_ratio=0.3)          30% of calls fail with UNAVAILABLE before they are sent
    FaultInjector(unknown_ratio=0.5)       half the calls are sent and executed, but the answer (a
                                           result or an error) is lost (DEADLINE_EXCEEDED): the outcome
                                           is unknown to the client
    FaultInjector(latency=0.05)            every call waits 50 ms first

Pass it to HsmClient(..., interceptors=[injector]). The counters say what it did.
"""

from __future__ import annotations

import contextlib
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


class FaultInjector(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
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

    def _fault(self, details: Any) -> str:
        """What this call meets: "fail" (not sent), "lose" (sent, its answer dropped), "" (passes),
        or "skip" (a method the injector leaves alone)."""
        if self.methods and not details.method.endswith(self.methods):
            return "skip"
        if self.latency:
            time.sleep(self.latency)
        roll = self._roll()
        with self._lock:
            if self.limit is not None and self.failed + self.lost >= self.limit:
                roll = 1.0
            if roll < self.fail_ratio:
                self.failed += 1
                return "fail"
            if roll < self.fail_ratio + self.unknown_ratio:
                self.lost += 1
                return "lose"
            self.passed += 1
            return ""

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        fault = self._fault(details)
        if fault == "fail":
            raise _not_sent()
        outcome = continuation(details, request)
        if fault == "lose":
            # let the member execute it; its answer (a result or an error) is what gets lost
            outcome.exception() if hasattr(outcome, "exception") else None
            raise _lost()
        return outcome

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        """The same faults for server-streaming calls: a lost answer is the whole stream, received
        and dropped."""
        fault = self._fault(details)
        if fault == "fail":
            raise _not_sent()
        stream = continuation(details, request)
        if fault == "lose":
            with contextlib.suppress(grpc.RpcError):
                for _ in stream:
                    pass
            raise _lost()
        return stream


def _not_sent() -> InjectedError:
    return InjectedError(grpc.StatusCode.UNAVAILABLE, "injected fault: the call was not sent", sent=False)


def _lost() -> InjectedError:
    return InjectedError(grpc.StatusCode.DEADLINE_EXCEEDED, "injected fault: the answer was lost", sent=True)
