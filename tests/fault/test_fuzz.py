"""Every RPC of the proto descriptors, with malformed fields drawn by hypothesis (≥ 200 per RPC):
only documented status codes come back, never INTERNAL or UNKNOWN, and the member stays up.

Requests are built from the descriptors (strings empty, huge, odd; bytes; integers at their
type's edges; unknown enum values; nested and repeated fields) and sent with no session, a
garbage session, an administrator's session or a partition session, over the administrator's
and the application's certificate; the local console's RPCs over the member's console socket.
The membership RPCs (add/remove/join/adopt) are sent without a valid session only: with one
they would reconfigure the cluster at addresses the fuzzer drew.
The Debug service (tests only, off here) is left out. A batched write (Keys/GenerateBatch) must
answer each of its requests with a documented status too. A bidirectional RPC (CryptoStream/Batch)
gets its drawn request as a one-message stream; the status of its answer and of each operation
in it must be documented too (an operation may also answer DEADLINE_EXCEEDED: its own drawn
`timeout_ms` passed before it ran).
"""

from __future__ import annotations

import importlib
import pkgutil
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import hsmnode.pb
from hsmnode.ops.devcluster import DevCluster
from hsmnode.server.channels import CertificateClass
from hsmnode.server.channels import allowed as channel_table
from hsmnode.server.rpc import MIN_INDEX_KEY, SESSION_KEY
from tests.integration.conftest import start_cluster
from tests.integration.helpers import eventually, node_status, token

pytestmark = pytest.mark.cluster

EXAMPLES = 200
BATCH = 10
# every *_pb2 module of hsmnode.pb but the tests-only Debug service: a new RPC is fuzzed unasked
MODULES = [
    importlib.import_module(f"hsmnode.pb.{info.name}")
    for info in pkgutil.iter_modules(hsmnode.pb.__path__)
    if info.name.endswith("_pb2") and info.name != "debug_pb2"
]
# services served on the member's local console socket (gRPC local credentials), not its TLS port
CONSOLE_SERVICES = {"hsmnode.pb.Console"}
MEMBERSHIP = {"AddMember", "RemoveMember", "JoinBundle", "AdoptCluster"}
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.ABORTED,
}
ODD_STRINGS = [
    "",
    " ",
    "a" * 5000,
    "\x00",
    "../../etc/passwd",
    "名前",
    "partition:x/y",
    "x" * 129,
    "-1",
    "NaN",
]
INT_RANGES = {
    d.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    d.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    d.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    d.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def methods() -> list[d.MethodDescriptor]:
    found = []
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            found.extend(service.methods)
    return found


def scalar(field: d.FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == d.FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=40))
    if t == d.FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"\x00" * 4096, b"\xff" * 65]))
    if t == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        return st.floats(
            allow_nan=True, allow_infinity=True, width=32 if t == d.FieldDescriptor.TYPE_FLOAT else 64
        )
    if t == d.FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-3, 1000))
    lo, hi = INT_RANGES[t]
    return st.one_of(st.sampled_from([lo, hi, 0, -1 if lo < 0 else 1]), st.integers(lo, hi))


def message(desc: d.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    cls = GetMessageClass(desc)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        if field.type == d.FieldDescriptor.TYPE_MESSAGE:
            if depth >= 2:
                continue
            if field.message_type.GetOptions().map_entry:
                key = scalar(field.message_type.fields_by_name["key"])
                value_field = field.message_type.fields_by_name["value"]
                value = (
                    message(value_field.message_type, depth + 1)
                    if value_field.type == d.FieldDescriptor.TYPE_MESSAGE
                    else scalar(value_field)
                )
                fields[field.name] = st.dictionaries(key, value, max_size=3)
                continue
            inner = message(field.message_type, depth + 1)
        else:
            inner = scalar(field)
        is_repeated = field.is_repeated
        fields[field.name] = st.lists(inner, max_size=4) if is_repeated else inner
    return st.fixed_dictionaries({}, optional=fields).map(lambda kw: cls(**kw))


def requests(method: d.MethodDescriptor, sessions: list[str]) -> list[tuple[Message, str, str]]:
    """EXAMPLES (request, session, min_index) drawn by hypothesis for one RPC."""
    drawn: list[tuple[Message, str, str]] = []
    # metadata values are printable ASCII on the wire (the gRPC client refuses anything else)
    printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
    garbage = st.one_of(st.just(""), printable, st.sampled_from(["v1.x.y", "a" * 4000]))
    session = garbage if method.name in MEMBERSHIP else st.one_of(garbage, st.sampled_from(sessions))
    min_index = st.one_of(st.just(""), st.sampled_from(["abc", "-5", "0", "1"]))

    # ten requests per hypothesis example: the engine's per-example cost, not drawing, dominated
    @settings(
        max_examples=EXAMPLES // BATCH,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.lists(st.tuples(message(method.input_type), session, min_index), min_size=BATCH, max_size=BATCH)
    )
    def collect(batch: list[tuple[Message, str, str]]) -> None:
        drawn.extend(batch)

    collect()
    return drawn


@pytest.fixture(scope="module")
def lone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    c = start_cluster(tmp_path_factory.mktemp("fuzz"), nodes=1, fault_injection=False)
    try:
        yield c
    finally:
        c.stop()


def call(
    channel: grpc.Channel, method: d.MethodDescriptor, request: Message, session: str, index: str
) -> Any:
    stub = channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=GetMessageClass(method.output_type).FromString,
    )
    metadata = []
    if session:
        metadata.append((SESSION_KEY, session))
    if index:
        metadata.append((MIN_INDEX_KEY, index))
    if method.client_streaming:
        return call_stream(channel, method, request, metadata)
    try:
        answer = stub(request, metadata=metadata, timeout=15)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    return per_request(answer)


def per_request(answer: Message) -> Any:
    """A batched write's answer (Keys/GenerateBatch: a status per request): the first undocumented
    status among its requests', else OK."""
    by_value = {s.value[0]: s for s in grpc.StatusCode}
    for result in getattr(answer, "results", ()):
        if isinstance(result, Message) and hasattr(result, "code"):
            status = by_value.get(result.code, grpc.StatusCode.UNKNOWN)
            if status not in DOCUMENTED:
                return status, result.message
    return grpc.StatusCode.OK, ""


def call_stream(
    channel: grpc.Channel, method: d.MethodDescriptor, request: Message, metadata: list[tuple[str, str]]
) -> Any:
    """A bidirectional RPC with the request as its one message: the first undocumented status among
    the call's, its answers' and their operations' (an operation may answer DEADLINE_EXCEEDED)."""
    stub = channel.stream_stream(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=GetMessageClass(method.output_type).FromString,
    )
    try:
        answers = list(stub(iter([request]), metadata=metadata, timeout=15))
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    by_value = {s.value[0]: s for s in grpc.StatusCode}
    allowed = DOCUMENTED | {grpc.StatusCode.DEADLINE_EXCEEDED}
    for answer in answers:
        for value, details in [(answer.code, answer.message), *((r.code, r.message) for r in answer.results)]:
            status = by_value.get(value, grpc.StatusCode.UNKNOWN)
            if status not in allowed:
                return status, details
    return grpc.StatusCode.OK, ""


def secure_channel(cluster: DevCluster, app: bool) -> grpc.Channel:
    tls = cluster.client_tls() if app else cluster.tls()
    creds = grpc.ssl_channel_credentials(tls.ca_pem, tls.key_pem, tls.cert_pem)
    return grpc.secure_channel(cluster.members[0].grpc, creds)


@pytest.mark.timeout(300)
def test_every_rpc_answers_malformed_requests_with_documented_codes(lone: DevCluster) -> None:
    demo = lone.demo()
    assert demo is not None
    with lone.app_client() as app:
        partition = app.open_session(demo["partition"]["name"], demo["partition"]["co_password"], role="CO")
    sessions = [token(lone, "admin"), token(lone, "auditor"), partition.token]
    admin, app = secure_channel(lone, app=False), secure_channel(lone, app=True)
    console = grpc.secure_channel(
        f"unix:{lone.members[0].data_dir / 'console.sock'}",
        grpc.local_channel_credentials(grpc.LocalConnectionType.UDS),
    )
    by_class = {CertificateClass.CLUSTER_CA: admin, CertificateClass.NTLS_CLIENT: app}
    rng = random.Random(12)

    def channel_for(method: d.MethodDescriptor) -> grpc.Channel:
        """Mostly a channel the channel table lets through (the request reaches the service);
        one in five over either TLS channel (the wrong one is refused by class)."""
        if method.containing_service.full_name in CONSOLE_SERVICES:
            return console
        full = f"{method.containing_service.full_name}/{method.name}"
        allowed = [by_class[c] for c in channel_table(full) if c in by_class]
        return rng.choice([admin, app] if rng.random() < 0.2 or not allowed else allowed)

    per_method: dict[str, int] = {}

    def work() -> Iterator[tuple[d.MethodDescriptor, Message, str, str, grpc.Channel]]:
        """Each RPC's requests as soon as they are drawn: the member answers the first RPCs while
        hypothesis draws the next (drawing is about half of the test's CPU)."""
        for method in methods():
            for request, session, index in requests(method, sessions):
                per_method[method.full_name] = per_method.get(method.full_name, 0) + 1
                yield method, request, session, index, channel_for(method)

    try:
        with ThreadPoolExecutor(8) as pool:
            # map() submits each item as the generator yields it
            answers = list(pool.map(lambda w: (w, call(w[4], w[0], w[1], w[2], w[3])), work()))
    finally:
        for channel in (admin, app, console):
            channel.close()
    assert len(per_method) == len(methods())
    assert min(per_method.values()) >= EXAMPLES, sorted(per_method.items(), key=lambda kv: kv[1])[:3]
    bad = [
        (w[0].full_name, str(w[1])[:200], code, details)
        for w, (code, details) in answers
        if code not in DOCUMENTED
    ]
    assert not bad, f"{len(bad)} undocumented answers, first: {bad[:3]}"
    codes: dict[str, int] = {}
    for _, (code, _) in answers:
        codes[code.name] = codes.get(code.name, 0) + 1
    print(f"fuzz: {len(answers)} requests over {len(per_method)} RPCs, answers {codes}")
    assert lone.running(lone.members[0].id)
    eventually(lambda: node_status(lone, lone.members[0].id).ready, 10.0, "the member still up")
