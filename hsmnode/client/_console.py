"""ConsoleClient: a member's local console over its unix socket (DOMAIN.md §5).

Runs on the member's host as the node's own user (the socket lives in the member's
data dir, mode 0700). An authorization change made here with M cards and the partition
password needs no `online_authorization` policy; SESSION_AUTHORIZED is online only.

    with ConsoleClient("hsmnode-dev/node1/data/console.sock") as console:
        challenge = console.challenge("vault", "authorize")
        signatures = [(card.label, card.sign(challenge.data)) for card in cards]
        console.change("vault", "AUTHORIZED", challenge, signatures, co_password)

A change follows the SDK's outcome contract (client/_outcome.py): an attempt whose answer was
lost is sent again with the same request id until the client's timeout, and the member answers
a repeat with its first result; OutcomeUnknown names the request id when none came back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import grpc

from hsmnode.client._convert import auth_info
from hsmnode.client._errors import Unavailable, error_from_rpc
from hsmnode.client._mofn import CardSetSpec, card_set_message, card_signatures
from hsmnode.client._outcome import Attempts, provably_not_applied, request_id_or_new
from hsmnode.client._transport import Stub
from hsmnode.client._types import AuthChallenge, AuthInfo
from hsmnode.pb import console_pb2, console_pb2_grpc


class ConsoleClient:
    def __init__(
        self, socket_path: str | Path, *, timeout: float = 10.0, interceptors: Sequence[Any] = ()
    ) -> None:
        """Raises Unavailable when there is no console socket at `socket_path`, or this user cannot reach it.
        `interceptors`: gRPC client interceptors (e.g. a FaultInjector in tests)."""
        self.path = Path(socket_path)
        if not self.path.is_socket():
            raise Unavailable(
                f"no console socket at {self.path}: run this on the member's host, as its user "
                "(the socket is console.sock in the member's data dir while the member runs)"
            )
        if not os.access(self.path, os.R_OK | os.W_OK):
            raise Unavailable(
                f"this user may not use the console socket {self.path}: run as the member's user"
            )
        self.timeout = timeout
        self._channel = grpc.secure_channel(
            f"unix:{self.path.resolve()}", grpc.local_channel_credentials(grpc.LocalConnectionType.UDS)
        )
        if interceptors:
            self._channel = grpc.intercept_channel(self._channel, *interceptors)
        console: Stub = console_pb2_grpc.ConsoleStub
        self._stub = console(self._channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: object) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def call(self, method: str, request: Any, *, write: bool = False) -> Any:
        """One Console RPC by name; `write`: the request carries a request_id and is retried with it
        while its outcome is unknown (see `_write`). Raises the HsmError of the answer."""
        return self._write(method, request) if write else self._call(method, request)

    def _write(self, method: str, request: Any) -> Any:
        """A write, retried with its request id while its outcome is unknown or the member is
        briefly unavailable (e.g. electing a leader), until the client's timeout.
        Raises OutcomeUnknown, Unavailable or the HsmError of the member's answer."""
        deadline = time.monotonic() + self.timeout
        attempts = Attempts(method, True, request.request_id)
        pause = 0.05
        while (left := deadline - time.monotonic()) > 0:
            try:
                return getattr(self._stub, method)(request, timeout=left)
            except grpc.RpcError as exc:
                code = exc.code()
                if code not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.ABORTED,
                ):
                    raise error_from_rpc(exc) from None
                attempts.last = exc
                trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
                if not provably_not_applied(exc, trailing):
                    attempts.maybe_applied = True
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.5)
        raise attempts.failure([str(self.path)], self.timeout)

    def challenge(self, partition: str, action: str) -> AuthChallenge:
        """A fresh challenge for associate, authorize, deauthorize or reset on `partition`."""
        r = self._call("Challenge", console_pb2.ConsoleChallengeRequest(partition=partition, action=action))
        return AuthChallenge(bytes(r.challenge), bytes(r.mac), r.expires_ms)

    def change(
        self,
        partition: str,
        target: str,
        challenge: AuthChallenge,
        signatures: list[tuple[str, bytes]],
        password: str,
        *,
        card_set: CardSetSpec | None = None,
        request_id: str | None = None,
    ) -> str:
        """Move `partition` to `target` with M card signatures and the partition password; the new state."""
        req = console_pb2.ConsoleChangeRequest(
            request_id=request_id_or_new(request_id),
            partition=partition,
            target=target,
            challenge=challenge.data,
            mac=challenge.mac,
            signatures=card_signatures(signatures),
            password=password,
            card_set=card_set_message(card_set),
        )
        return str(self._write("Change", req).state)

    def show(self, partition: str) -> AuthInfo:
        return auth_info(self._call("Show", console_pb2.ConsoleShowRequest(partition=partition)))
