"""The SDK's transport: one object per client that owns every conversation with the members.

It holds the endpoints and their channels, fails calls over between members, learns the
members from cluster status (dropping removed and foreign ones), tracks the highest applied
Raft index seen (read-your-writes), stamps metadata, and keeps the outcome contract of
`_outcome.py`. `HsmClient` (the façade) and every session hold one and call through it;
nothing above this module opens a channel or reads gRPC metadata.

    call(stub, method, request, write=..., token=...)     unary RPC with failover
    crypto(stub, method, request, token=...)              a crypto operation (round robin)
    crypto_many(method, requests, token=...)              many, batched (sign_many, ...)
    writes.generate(request, token)                       Keys/Generate, coalesced (GenerateBatch)
    call_stream(stub, method, request, token=...)         server-streaming RPC (backup)

Crypto operations all enter through `crypto`: with `coalesce` (the default), Sign, Verify,
Encrypt and Decrypt issued while others are in flight are gathered into batches on one
CryptoStream per member (`_coalesce.py`); a lone call goes unary. Key generations likewise go
in Keys/GenerateBatch calls to the leader (`writes.generate`, `_write_send.py`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import grpc

from hsmnode.client._coalesce import KINDS, Coalescer
from hsmnode.client._down import DownMembers, serving
from hsmnode.client._errors import HsmError, Unauthenticated, error_from_rpc
from hsmnode.client._hints import IndexTracker, LeaderHint
from hsmnode.client._outcome import (
    APPLIED_INDEX_KEY,
    MEMBER_REFUSALS,
    Attempts,
    attempt_timeout,
    provably_not_applied,
    refusal_of,
)
from hsmnode.client._profile import Tls, certificate_der
from hsmnode.client._stream_call import call_stream
from hsmnode.client._tls_probe import certificate_refused
from hsmnode.client._write_send import BatchedGenerate
from hsmnode.pb import cluster_pb2, cluster_pb2_grpc, keys_pb2_grpc

log = logging.getLogger(__name__)

SESSION_KEY = "x-hsm-session"
MIN_INDEX_KEY = "x-hsm-min-index"
CLUSTER_ID_KEY = "x-hsm-cluster-id"
_MAX_BACKOFF = 0.5
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 3000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
COALESCE_ENV = "HSMNODE_COALESCE"  # "0", "off", "false" or "no": ordinary crypto calls and writes stay unary


def coalesce_default() -> bool:
    """Coalescing is on unless HSMNODE_COALESCE says 0/off/false/no."""
    return os.environ.get(COALESCE_ENV, "1").strip().lower() not in ("0", "off", "false", "no")


# a generated stub class (e.g. keys_pb2_grpc.KeysStub): called with a channel
Stub = Callable[[grpc.Channel], Any]


class Carrier(Protocol):
    """What a session is opened through (an HsmClient): it hands the session its transport."""

    @property
    def transport(self) -> Transport: ...


class Transport:
    """Channels to every member in `endpoints`, presenting one TLS client certificate.

    Failover: a call goes to the member that last answered (a write to the leader the last write's
    answer named, `_hints.py`; crypto round robin over healthy members); on UNAVAILABLE, a deadline, or a member's refusal as removed or of another cluster
    (`x-hsm-refusal`) it goes to the next member, and it keeps trying with backoff (50 ms
    doubling to 500 ms) until the call's own deadline (`timeout`, seconds).

    Membership: with `discover`, the members are learned from cluster status after the first
    call and again every `refresh_interval` seconds; an answer from a removed member is never
    trusted. Every call sends the highest applied index seen (`index_tracker`).

    Coalescing (`coalesce`, default on unless HSMNODE_COALESCE=0): Sign, Verify, Encrypt and
    Decrypt called while other crypto calls are in flight travel in batches on one CryptoStream
    per member (`_coalesce.py`: same answers and errors, failover of in-flight operations, the
    same deadline); interceptors see unary calls only. So do key generations (`writes`).
    Raises ValueError for malformed endpoints or TLS material.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        tls: Tls,
        *,
        timeout: float = 5.0,
        discover: bool = True,
        interceptors: Sequence[grpc.UnaryUnaryClientInterceptor] = (),
        probe_interval: float = 1.0,
        index_tracker: IndexTracker | None = None,
        cluster_id: str = "",
        refresh_interval: float = 10.0,
        coalesce: bool | None = None,
    ) -> None:
        if not endpoints or not all(isinstance(e, str) and e.rpartition(":")[2].isdigit() for e in endpoints):
            raise ValueError(f"endpoints must be a non-empty list of host:port, got {list(endpoints)!r}")
        tls.check()
        self.endpoints = tuple(dict.fromkeys(endpoints))
        self.discover = discover and len(self.endpoints) > 1
        self._interceptors = tuple(interceptors)
        self.probe_interval = probe_interval
        self.refresh_interval = refresh_interval
        self.down = DownMembers(self._serving, probe_interval)
        self._probe_channels: dict[str, grpc.Channel] = {}  # without interceptors (only when there are some)
        self._rotation = 0
        self.answered: dict[str, int] = {}  # successful answers per member: who served this client
        self.dropped: set[str] = set()  # endpoints dropped as removed, foreign or no longer listed
        self.timeout = timeout
        self.tls = tls
        self.cluster_id = cluster_id
        self._creds = grpc.ssl_channel_credentials(
            root_certificates=tls.ca_pem, private_key=tls.key_pem, certificate_chain=tls.cert_pem
        )
        self._channels: dict[str, grpc.Channel] = {}
        # (endpoint, stub class) -> stub: a stub builds a callable per method of its service, so it
        # is built once per channel, not per call
        self._stubs: dict[tuple[str, Stub], Any] = {}
        self._lock = threading.Lock()
        self._preferred = ""
        self._next_refresh = 0.0
        self._refreshing = False
        self._listed_once: set[str] = set()  # addresses some cluster status listed as members
        self.index_tracker = index_tracker or IndexTracker()
        self.leader = LeaderHint()
        self.coalesce = coalesce_default() if coalesce is None else coalesce
        self.coalescer = Coalescer(self)
        self.writes = BatchedGenerate(self)

    def close(self) -> None:
        self.down.close()
        self.coalescer.close()
        with self._lock:
            for channel in [*self._channels.values(), *self._probe_channels.values()]:
                channel.close()
            self._channels.clear()
            self._probe_channels.clear()
            self._stubs.clear()

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the client certificate (DER), hex: how members name a registered client."""
        return hashlib.sha256(certificate_der(self.tls.cert_pem)).hexdigest()

    def channel(self, endpoint: str, intercepted: bool = True) -> grpc.Channel:
        """The channel to `endpoint` (opened on first use, with this transport's interceptors;
        `intercepted=False`: one without them, opened only when there are some)."""
        channels = self._channels if intercepted or not self._interceptors else self._probe_channels
        with self._lock:
            channel = channels.get(endpoint)
            if channel is None:
                channel = grpc.secure_channel(endpoint, self._creds, options=_CHANNEL_OPTIONS)
                if channels is self._channels and self._interceptors:
                    channel = grpc.intercept_channel(channel, *self._interceptors)
                channels[endpoint] = channel
            return channel

    def _serving(self, endpoint: str) -> bool:
        """The background probe of a member out of the rotation: `_down.serving`, within one
        attempt's time (at most 1 s), without this client's interceptors (a drill's fault injector
        fails and counts the calls it is given, not these)."""
        timeout = min(1.0, attempt_timeout(self.timeout, len(self.endpoints)))
        return serving(self.channel(endpoint, intercepted=False), timeout)

    def stub(self, endpoint: str, stub_cls: Stub) -> Any:
        """The `stub_cls` stub on the channel to `endpoint` (built on first use)."""
        found = self._stubs.get((endpoint, stub_cls))
        if found is None:
            found = stub_cls(self.channel(endpoint))
            with self._lock:
                self._stubs[(endpoint, stub_cls)] = found
        return found

    # --- members ------------------------------------------------------------------

    def _maybe_refresh(self) -> None:
        """Follow membership: when a refresh is due, learn the members from cluster status on a
        thread of its own. Not in the caller's call: a member answering Status waits for a hung
        one, so an inline refresh took a short-timeout call's whole deadline every refresh_interval."""
        if not self.discover or time.monotonic() < self._next_refresh:  # the common case, without the lock
            return
        with self._lock:
            if self._refreshing or time.monotonic() < self._next_refresh:
                return
            self._refreshing = True
            self._next_refresh = time.monotonic() + self.refresh_interval
        threading.Thread(target=self._refresh_in_background, name="hsm-refresh", daemon=True).start()

    def _refresh_in_background(self) -> None:
        try:
            self.refresh_members()
        except Exception:  # noqa: BLE001 - best effort (the client closed meanwhile, say): the endpoints stay
            log.debug("member refresh failed", exc_info=True)
        finally:
            self._refreshing = False

    def cluster_status(self, digest: bool = True) -> Any:
        """The ClusterStatusReply of a member with a leader (one without only when none has one);
        without `digest`, the members' state digests are left out (cheaper: discovery)."""
        return self.call(
            cluster_pb2_grpc.ClusterStub,
            "Status",
            cluster_pb2.ClusterStatusRequest(without_digest=not digest),
            accept=lambda answer: bool(answer.leader),
        )

    def refresh_members(self) -> None:
        """Take the members a member with a leader lists: add new ones, drop those it listed before
        and no longer lists (an endpoint never listed, e.g. another name of a member, stays).
        Best effort: without such an answer the endpoints stay as they are."""
        try:
            status = self.cluster_status(digest=False)
        except HsmError:
            return
        listed = [m.address for m in status.members if m.address and m.listed]
        if not status.leader or not listed:
            return
        if not self.cluster_id:
            self.cluster_id = status.cluster_id
        with self._lock:
            self._listed_once.update(listed)
            gone = [e for e in self.endpoints if e in self._listed_once and e not in listed]
            kept = [e for e in self.endpoints if e not in gone]
            self.dropped.update(gone)
            self.dropped.difference_update(listed)
            self.endpoints = tuple(kept + [e for e in listed if e not in kept])
        self.down.forget(self.endpoints)

    def _drop(self, endpoint: str) -> bool:
        """A member refused as removed or of another cluster: out of the endpoints. False for the last
        endpoint, which stays (its refusal is then the answer)."""
        with self._lock:
            if endpoint not in self.endpoints:
                return True
            if len(self.endpoints) == 1:
                return False
            self.endpoints = tuple(e for e in self.endpoints if e != endpoint)
            self.dropped.add(endpoint)
            self._next_refresh = 0.0  # learn who replaces it
        self.down.forget(self.endpoints)
        return True

    def healthy_endpoints(self) -> list[str]:
        return self.down.healthy(self.endpoints)

    def _order(self, balance: bool, write: bool = False) -> list[str]:
        """Members to try: round robin over healthy ones when balancing, else the last good one first
        (a `write`: the hinted leader first); members out of the rotation (`_down.py`) go last."""
        endpoints = self.endpoints
        n = len(endpoints)
        with self._lock:
            if balance:
                self._rotation = (self._rotation + 1) % n
                start = self._rotation
            else:
                start = endpoints.index(self._preferred) if self._preferred in endpoints else 0
        order = [endpoints[(start + k) % n] for k in range(n)]
        if write:
            order = self.leader.first(order)
        healthy = self.down.healthy(order)
        return healthy + [e for e in order if e not in healthy]

    def mark(self, endpoint: str, ok: bool) -> None:
        """A member answered (`ok`: preferred, counted, back in the rotation) or failed (out of the
        rotation until a background probe finds it serving, every `probe_interval` s: `_down.py`)."""
        self._mark(endpoint, ok)

    def drop(self, endpoint: str) -> bool:
        """A member refused as removed or of another cluster: `_drop`."""
        return self._drop(endpoint)

    def note_index(self, index: int) -> None:
        self.index_tracker.note(index)

    def stream_metadata(self) -> list[tuple[str, str]]:
        """What a CryptoStream carries: the cluster id (tokens and min_index travel per batch)."""
        return [(CLUSTER_ID_KEY, self.cluster_id)] if self.cluster_id else []

    def _mark(self, endpoint: str, ok: bool) -> None:
        if not ok:
            self.down.mark(endpoint)
            return
        self.down.clear(endpoint)
        with self._lock:
            self.answered[endpoint] = self.answered.get(endpoint, 0) + 1
            self._preferred = endpoint

    # --- metadata -----------------------------------------------------------------

    def _note_index(self, metadata: Any) -> None:
        """The applied index (read-your-writes) and the leader's endpoint (writes) an answer names."""
        self.leader.note(metadata, self.endpoints)
        for key, value in metadata or ():
            if key == APPLIED_INDEX_KEY:
                try:
                    self.index_tracker.note(int(value))
                except ValueError:
                    continue

    def _metadata(self, token: str) -> list[tuple[str, str]]:
        metadata = [(MIN_INDEX_KEY, str(self.index_tracker.index))]
        if token:
            metadata.append((SESSION_KEY, token))
        if self.cluster_id:
            metadata.append((CLUSTER_ID_KEY, self.cluster_id))
        return metadata

    # --- calls --------------------------------------------------------------------

    def crypto(self, stub_cls: Stub, method: str, request: Any, *, token: str) -> Any:
        """A crypto operation (sign, verify, encrypt, decrypt, digest, random): a read spread round
        robin over healthy members; with `coalesce`, batched when other calls are in flight. Raises
        as `call` does."""
        if self.coalesce and method in KINDS:
            return self.coalescer.call(method, request, token)
        return self.call(stub_cls, method, request, token=token, balance=True)

    def crypto_many(self, method: str, bodies: Sequence[bytes], *, token: str) -> list[Any]:
        """Many Sign, Verify, Encrypt or Decrypt requests, each as its wire form
        (`_crypto_wire.bodies`), in batches (coalescing on or off): per request, in order, its
        response message or its HsmError (never raised here). Every operation's deadline is
        `timeout`, counted from the call."""
        if method not in KINDS:
            raise ValueError(f"{method} is not batched; batched are {', '.join(KINDS)}")
        return self.coalescer.run(method, bodies, token)

    def write_order(self) -> list[str]:
        self._maybe_refresh()  # batched writes follow membership as `call` does
        return self._order(False, write=True)  # the members a write tries, the hinted leader first

    def answered_by(self, endpoint: str, trailing: Any) -> None:
        """A member answered an attempt made through `send`: note its metadata, prefer it."""
        self._note_index(trailing)
        self._mark(endpoint, True)

    def unary_crypto(self, method: str, request: Any, token: str, deadline: float | None = None) -> Any:
        """`method` of the Keys service as a unary RPC, balanced (the coalescer's fallback), by
        `deadline` (time.monotonic(); None: now + timeout)."""
        return self.call(
            keys_pb2_grpc.KeysStub, method, request, token=token, balance=True, deadline=deadline
        )

    def call(
        self,
        stub_cls: Stub,
        method: str,
        request: Any,
        *,
        write: bool = False,
        token: str = "",
        balance: bool = False,
        accept: Callable[[Any], bool] | None = None,
        deadline: float | None = None,
        maybe_applied: bool = False,
    ) -> Any:
        """One RPC with failover until the deadline (`timeout`; the outcome contract of
        `_outcome.py`). `write`: the request carries a request_id, so an attempt whose outcome is
        unknown is retried with it; `balance`: spread the call round robin over healthy members
        (reads and crypto); `accept`: a preferred answer (others are kept as a fallback while
        members are tried).

        A member that refuses this client's certificate at the TLS handshake is not retried; when
        every member refuses it, the call fails with Unauthenticated.
        `deadline` (time.monotonic()): the call's own, when it started earlier (a write a batch
        did not settle); `maybe_applied`: an earlier attempt may have applied it.
        Raises OutcomeUnknown, Unavailable, Unauthenticated or the HsmError of the member's answer.
        """
        self._maybe_refresh()
        deadline = time.monotonic() + self.timeout if deadline is None else deadline
        attempts = Attempts(method, write, getattr(request, "request_id", ""))
        attempts.maybe_applied = maybe_applied
        fallback: Any = None
        round_no = 0
        while True:
            for endpoint in self._order(balance and round_no == 0, write):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if endpoint in attempts.refused or endpoint not in self.endpoints:
                    continue
                try:
                    response, rpc_call = self.send(endpoint, stub_cls, method, request, token, left)
                except grpc.RpcError as exc:
                    self.judge(endpoint, exc, attempts)
                    continue
                trailing = rpc_call.trailing_metadata()
                self._note_index(trailing)
                if (
                    refusal_of(trailing) in MEMBER_REFUSALS
                    and method != "NodeStatus"
                    and self._drop(endpoint)
                ):
                    continue  # a removed member's status answer: its view is stale
                self._mark(endpoint, True)
                if accept is None or accept(response):
                    return response
                fallback = response
            if fallback is not None:
                return fallback
            if attempts.refused and len(attempts.refused) >= len(self.endpoints):
                raise self._refusal()
            round_no += 1
            now = time.monotonic()
            if now >= deadline:
                break
            time.sleep(min(0.05 * 2 ** min(round_no - 1, 4), _MAX_BACKOFF, deadline - now))
        if attempts.refused and attempts.last is None:
            raise self._refusal()
        raise attempts.failure(self.endpoints, self.timeout)

    def send(
        self, endpoint: str, stub_cls: Stub, method: str, request: Any, token: str, left: float
    ) -> tuple[Any, Any]:
        """One attempt of `method` at `endpoint` within `left` s: (response, call). Raises grpc.RpcError."""
        rpc = getattr(self.stub(endpoint, stub_cls), method)
        timeout = min(left, attempt_timeout(self.timeout, len(self.endpoints)))
        response, rpc_call = rpc.with_call(request, timeout=timeout, metadata=self._metadata(token))
        return response, rpc_call

    def judge(self, endpoint: str, exc: grpc.RpcError, attempts: Attempts) -> None:
        """Sort a failed attempt: fail over (noting whether it may have been applied), or raise."""
        trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
        self._note_index(trailing)
        code = exc.code()
        if code is grpc.StatusCode.FAILED_PRECONDITION and refusal_of(trailing) in MEMBER_REFUSALS:
            if not self._drop(endpoint):  # nothing ran there; the only member left says why
                raise error_from_rpc(exc) from None
            attempts.last = exc
            return
        socket_closed = code is grpc.StatusCode.UNAVAILABLE and "Socket closed" in (exc.details() or "")
        if socket_closed and self._refused(endpoint):
            attempts.refused.add(endpoint)
            return
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or (
            attempts.write and code is grpc.StatusCode.ABORTED
        ):
            attempts.last = exc
            if attempts.write and not provably_not_applied(exc, trailing):
                attempts.maybe_applied = True
            if code is not grpc.StatusCode.ABORTED:
                self._mark(endpoint, False)
            return
        raise error_from_rpc(exc) from None

    def call_stream(
        self, stub_cls: Stub, method: str, request: Any, *, token: str = "", timeout: float | None = None
    ) -> Iterator[Any]:
        """A server-streaming call with failover before its first message: `_stream_call.py`."""
        return call_stream(self, stub_cls, method, request, token=token, timeout=timeout)

    def _refused(self, endpoint: str) -> bool:
        return certificate_refused(endpoint, self.tls.ca_pem, self.tls.cert_pem, self.tls.key_pem)

    def _refusal(self) -> Unauthenticated:
        return Unauthenticated(
            f"the cluster refused this client certificate (sha256 fingerprint {self.fingerprint}): "
            "is it registered (hsmnode client register)?"
        )
