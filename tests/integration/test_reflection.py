"""gRPC server reflection (`[server] reflection = true`, on in `hsmnode dev`): every service of proto/
is listed and described to a grpcurl-style client (grpcio-reflection's own client)."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from hsmnode.ops.devcluster import DevCluster

pytestmark = pytest.mark.cluster

PROTO = Path(__file__).resolve().parents[2] / "proto" / "hsmnode" / "pb"
# served on the member's unix socket only (the local console, DOMAIN.md §5), never on the TLS port
LOCAL_ONLY = {"hsmnode.pb.Console"}


def proto_services() -> dict[str, set[str]]:
    """service full name -> its rpc names, read from the .proto files themselves."""
    found: dict[str, set[str]] = {}
    for path in sorted(PROTO.glob("*.proto")):
        text = path.read_text()
        package = re.search(r"^package\s+([\w.]+);", text, re.M)
        assert package, f"{path} has no package"
        for match in re.finditer(r"^service\s+(\w+)\s*\{(.*?)^\}", text, re.M | re.S):
            found[f"{package.group(1)}.{match.group(1)}"] = set(
                re.findall(r"^\s*rpc\s+(\w+)", match.group(2), re.M)
            )
    return found


def test_reflection_lists_and_describes_every_service_of_proto(single: DevCluster) -> None:
    expected = {name: rpcs for name, rpcs in proto_services().items() if name not in LOCAL_ONLY}
    assert len(expected) >= 9  # the parse found the services
    tls = single.tls()
    creds = grpc.ssl_channel_credentials(tls.ca_pem, tls.key_pem, tls.cert_pem)
    with grpc.secure_channel(single.members[0].grpc, creds) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        listed = set(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        described = {name: {m.name for m in pool.FindServiceByName(name).methods} for name in expected}
    assert set(expected) <= listed, f"not listed: {sorted(set(expected) - listed)}"
    assert not LOCAL_ONLY & listed
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= listed
    assert described == expected
