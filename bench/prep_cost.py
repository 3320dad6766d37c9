"""What a Keys/GenerateBatch costs the leader's gRPC worker thread outside Raft, in-process (issue 16).

No cluster, no threads: the member's own `KeysServicer.GenerateBatch` behind its `rpc` wrapper and
its request observer (metrics sample and request log record, JSON-formatted to a null stream), the
request decoded from its wire bytes and the answer encoded, as a gRPC pool worker runs them. The
replicator is a stand-in that applies each proposal at once (`Local`: the real
`replication.pack` / `encode_batch`, then `ReplicatedState.apply_payload` on a state with one
partition, bench/apply_cost.py); the apply's CPU (the tick thread's work in a member) is measured
and taken out, so the figure is the worker's: the rpc wrapper's checks, claims, the dedup read, key
generation and SMK wrap, the KeyCreate built and encoded, the answer built and serialized, the
record. The queueing into pysyncobj (raft/together.py) and gRPC's own work (TLS, HTTP/2, thread
hand-offs) are not in it.

Figures: µs of thread CPU per write and per batch, for batches of `--sizes` AES-256 generations
(as the SDK's batcher sends them: a request id, a label, four usages, a timeout each), the median
of `--rounds` rounds of `--batches` batches each. `--breakdown` adds inclusive wall µs per batch by
stage (bench/apply_cost.Timers).

    .venv/bin/python -m bench.prep_cost [--sizes 1 4 12] [--rounds 5] [--batches 300] [--breakdown]
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import statistics
import time
import uuid
from types import SimpleNamespace
from typing import Any, cast

import grpc

from bench.apply_cost import FINGERPRINT, Timers, partition_state
from hsmnode.config import LOG_FORMATS
from hsmnode.crypto import keys as kc
from hsmnode.domain.batch import encode_batch, pack
from hsmnode.observability.logs import configure
from hsmnode.observability.metrics import MemberMetrics
from hsmnode.observability.requests import RequestObserver
from hsmnode.pb import keys_pb2
from hsmnode.replicated_state import ReplicatedState
from hsmnode.replication import Replicator
from hsmnode.server.channels import NTLS, ChannelGuard, Peer
from hsmnode.server.keys import KeysServicer
from hsmnode.service.context import NodeContext
from hsmnode.service.keys import KeyService
from hsmnode.sessions import Claims, TokenAuthority

METHOD = "/hsmnode.pb.Keys/GenerateBatch"
CLUSTER = "c-bench"
USAGE = ["decrypt", "encrypt", "unwrap", "wrap"]


class Local:
    """A leader's replicator as the worker thread sees it, applying each proposal at once; `apply_s`:
    the thread CPU spent applying (a member's tick thread's work, taken out of the figures)."""

    def __init__(self, state: Any) -> None:
        self.consumer = ReplicatedState(state)
        self.apply_s = 0.0

    def read(self, fn: Any) -> Any:
        with self.consumer.lock:
            return fn(self.consumer.state)

    def applied_index(self) -> int:
        return 1234

    def propose_many(self, payloads: list[bytes], timeouts: list[float]) -> list[Any]:
        groups = pack([len(p) for p in payloads]) if len(payloads) > 1 else [[0]]
        out: list[Any] = []
        for group in groups:
            entry = payloads[group[0]] if len(group) == 1 else encode_batch([payloads[i] for i in group])
            started = time.thread_time()
            applied = self.consumer.apply_payload(entry)
            self.apply_s += time.thread_time() - started
            out.extend(applied if isinstance(applied, list) else [applied])
        return out


class Context:
    """The grpc.ServicerContext a unary handler reads (metadata, deadline, trailing metadata, status)."""

    def __init__(self, token: str) -> None:
        self._metadata = (("x-hsm-session", token), ("x-hsm-cluster-id", CLUSTER))

    def invocation_metadata(self) -> Any:
        return self._metadata

    def time_remaining(self) -> float:
        return 5.0

    def set_trailing_metadata(self, pairs: Any) -> None:
        self.trailing = pairs

    def abort(self, code: Any, message: str) -> None:
        raise RuntimeError(f"aborted {code}: {message}")

    def code(self) -> Any:
        return None

    def details(self) -> str:
        return ""


class Classifier:
    """The registered NTLS client "app" on every connection (its certificate facts are cached in a member)."""

    def classify(self, context: Any) -> Peer:
        return Peer(NTLS, FINGERPRINT, "app", "app")


def member() -> tuple[Any, Local, str]:
    """(the GenerateBatch handler as gRPC calls it, the replicator, a CO session token)."""
    state, actor = partition_state()
    replicator = Local(state)
    tokens = TokenAuthority(CLUSTER, b"s" * 32)
    client = state.clients["app"]
    part = state.partitions["pay"]
    claims = Claims(
        CLUSTER,
        "partition",
        "pay",
        FINGERPRINT,
        int(time.time() * 1000) + 3_600_000,
        client.epoch,
        partition_role="CO",
        role_epoch=part.roles["CO"].epoch,
        session_epoch=client.sessions.get("pay:CO", 0),
    )
    assert claims.actor == actor, (claims.actor, actor)
    ctx = NodeContext(cast(Any, SimpleNamespace(node_id="node1")), cast(Replicator, replicator), tokens)
    servicer = KeysServicer(cast(Replicator, replicator), KeyService(ctx, kc.Smk(os.urandom(32))))
    servicer.cluster_id = CLUSTER
    servicer.channels = ChannelGuard("hsmnode.pb.Keys", cast(Any, Classifier()))
    servicer.leader_endpoint = lambda: "127.0.0.1:9500"
    observer = RequestObserver("node1", MemberMetrics(), tokens)
    plain = grpc.unary_unary_rpc_method_handler(
        servicer.GenerateBatch,
        request_deserializer=keys_pb2.GenerateKeyBatch.FromString,
        response_serializer=keys_pb2.GenerateKeyResults.SerializeToString,
    )
    handler = observer.intercept_service(lambda _: plain, SimpleNamespace(method=METHOD))
    return handler, replicator, tokens.issue(claims)


def batches(count: int, size: int) -> list[bytes]:
    """`count` GenerateKeyBatch wire forms of `size` AES-256 generations each, as the SDK sends them."""
    out = []
    for b in range(count):
        batch = keys_pb2.GenerateKeyBatch(
            requests=[
                keys_pb2.GenerateKeyRequest(
                    request_id=uuid.uuid4().hex,
                    label=f"bench-{b}-{i}-{uuid.uuid4().hex[:8]}",
                    key_type="AES",
                    size="256",
                    usage=USAGE,
                )
                for i in range(size)
            ],
            timeout_ms=[4900] * size,
        )
        out.append(batch.SerializeToString())
    return out


def run_round(size: int, count: int) -> float:
    """µs of worker thread CPU per batch of `size` (apply taken out), on a fresh state."""
    handler, replicator, token = member()
    context = Context(token)
    wire = batches(count + 5, size)
    decode, serve, encode = handler.request_deserializer, handler.unary_unary, handler.response_serializer
    for data in wire[:5]:  # warm
        encode(serve(decode(data), context))
    replicator.apply_s = 0.0
    gc.collect()
    started = time.thread_time()
    for data in wire[5:]:
        answer = serve(decode(data), context)
        encode(answer)
    spent = time.thread_time() - started - replicator.apply_s
    assert all(r.code == 0 for r in answer.results), answer.results[0]
    return spent / count * 1e6


def breakdown(size: int, count: int) -> dict[str, float]:
    """Inclusive wall µs per batch by stage (one round)."""
    from hsmnode.server import keys as server_keys
    from hsmnode.server import rpc
    from hsmnode.service import key_batch
    from hsmnode.service import keys as service_keys

    handler, replicator, token = member()
    context = Context(token)
    wire = batches(count + 5, size)
    timers = Timers()
    timers.wrap(RequestObserver, "record", "  request record (RequestObserver.record)")
    timers.wrap(rpc, "_call", "  rpc: channel check + Call (_call)")
    timers.wrap(rpc, "_trailing", "  rpc: trailing metadata")
    timers.wrap(KeyService, "generate_batch", "  generate_batch")
    timers.wrap(NodeContext, "claims", "    claims")
    timers.wrap(NodeContext, "first_results", "    dedup read (first_results)")
    timers.wrap(key_batch, "_created", "    answer KeyView (_created)")
    timers.wrap(KeyService, "generation", "    generation (closure)")
    timers.wrap(NodeContext, "first_or_prepared", "    first_or_prepared (prepare)")
    timers.wrap(kc, "generate", "      kc.generate")
    timers.wrap(service_keys, "fields", "      fields (label rule, id, SMK wrap)")
    timers.wrap(NodeContext, "stamped_payload", "    stamped_payload (KeyCreate JSON)")
    timers.wrap(NodeContext, "propose_many", "    propose_many (incl. stand-in apply)")
    timers.wrap(server_keys, "key_info", "  key_info (answer protobuf)")
    timers.wrap(server_keys, "extractable", "  extractable (request read)")
    timers.wrap(server_keys, "status_of", "  status_of")
    serve = handler.unary_unary
    decode, encode = handler.request_deserializer, handler.response_serializer
    try:
        for data in wire[:5]:
            encode(serve(decode(data), context))
        for v in timers.spent:
            timers.spent[v] = 0.0
        d = h = e = 0.0
        for data in wire[5:]:
            t0 = time.perf_counter()
            request = decode(data)
            t1 = time.perf_counter()
            answer = serve(request, context)
            t2 = time.perf_counter()
            encode(answer)
            e += time.perf_counter() - t2
            h += t2 - t1
            d += t1 - t0
    finally:
        timers.undo()
    spent = {
        "request decode": d,
        "handler (observer + rpc + GenerateBatch)": h,
        **timers.spent,
        "answer encode": e,
    }
    return {k: v / count * 1e6 for k, v in spent.items()}


def log_to_memory(log_format: str) -> None:
    """A member's logging (observability.logs.configure: INFO, `log_format`), written to memory."""
    configure("info", log_format, "node1")
    for handler in logging.getLogger().handlers:
        cast(logging.StreamHandler[Any], handler).setStream(io.StringIO())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1, 4, 12], help="keys per GenerateBatch (default 1 4 12)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size; best and median shown")
    parser.add_argument("--batches", type=int, default=300, help="batches per round (default 300)")
    parser.add_argument("--breakdown", action="store_true", help="also µs per batch by stage")
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default="text", help="the request log's format (a member's)"
    )
    args = parser.parse_args()
    log_to_memory(args.log_format)
    print(
        f"load {os.getloadavg()[0]:.2f}; µs of worker thread CPU (apply taken out), median of {args.rounds}"
    )
    for size in args.sizes:
        count = max(20, args.batches * 4 // (size + 3))
        rounds = [run_round(size, count) for _ in range(args.rounds)]
        log_to_memory(args.log_format)
        per_batch = statistics.median(rounds)
        print(
            f"batch of {size:3d}: {per_batch:8.1f} µs/batch  {per_batch / size:7.1f} µs/write"
            f"  (best {min(rounds) / size:.1f}, {count} batches a round)",
            flush=True,
        )
        if args.breakdown:
            for name, us in breakdown(size, count).items():
                print(f"    {name:52s} {us:8.1f} µs/batch {us / size:7.1f} µs/write")


if __name__ == "__main__":
    main()
