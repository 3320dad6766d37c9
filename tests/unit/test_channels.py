"""The channel table (server/channels.py) has exactly one answer for every RPC in the proto descriptors."""

from __future__ import annotations

import importlib
import pkgutil
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

import hsmnode.pb
from hsmnode.pb import keys_pb2
from hsmnode.server import channels
from hsmnode.server.app import bind
from hsmnode.server.keys import KeysServicer


def every_method() -> list[str]:
    found = []
    for info in pkgutil.iter_modules(hsmnode.pb.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"hsmnode.pb.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            found += [f"{service.full_name}/{m.name}" for m in service.methods]
    return sorted(found)


METHODS = every_method()


@pytest.mark.parametrize("method", METHODS)
def test_every_rpc_has_a_row(method: str) -> None:
    assert channels.allowed(method)


def test_no_row_names_an_rpc_that_does_not_exist() -> None:
    services = {m.partition("/")[0] for m in METHODS}
    for row in channels.TABLE:
        assert row in services or row in METHODS, f"stale channel row {row}"


def test_administration_and_applications_never_share_a_method() -> None:
    """DOMAIN.md §3: only discovery (cluster status) is reachable by both TLS classes."""
    ca, ntls = channels.CertificateClass.CLUSTER_CA, channels.CertificateClass.NTLS_CLIENT
    shared = [m for m in METHODS if {ca, ntls} <= channels.allowed(m)]
    assert shared == ["hsmnode.pb.Cluster/NodeStatus", "hsmnode.pb.Cluster/Status"]


@pytest.mark.parametrize(
    "method",
    [
        "hsmnode.pb.Cluster/Backup",  # issue 15: the cluster backup holds every partition's keys
        "hsmnode.pb.Cluster/AddMember",  # issue 10: membership changes
        "hsmnode.pb.Cluster/RemoveMember",
        "hsmnode.pb.Cluster/JoinBundle",  # member to member: member certificates are cluster-CA ones
        "hsmnode.pb.Cluster/AdoptCluster",
        "hsmnode.pb.Audit/SetConfig",
        "hsmnode.pb.Debug/FailApply",
    ],
)
def test_cluster_administration_takes_a_cluster_ca_certificate_only(method: str) -> None:
    assert method in METHODS
    assert channels.allowed(method) == {channels.CertificateClass.CLUSTER_CA}


def test_the_pkcs11_bridges_rpcs_take_its_ntls_client_certificate() -> None:
    """The bridge (issue 14) reaches the cluster as a registered NTLS client: discovery, the
    handshake, keys (pre-hashed signing included) and its sessions' authorization."""
    ntls = channels.CertificateClass.NTLS_CLIENT
    for method in (
        "hsmnode.pb.Cluster/Status",
        "hsmnode.pb.Ntls/ListSlots",
        "hsmnode.pb.Ntls/OpenSession",
        "hsmnode.pb.Keys/Generate",
        "hsmnode.pb.Keys/Sign",
        "hsmnode.pb.Keys/Encrypt",
        "hsmnode.pb.Keys/Random",
    ):
        assert method in METHODS, method
        assert ntls in channels.allowed(method), method


def test_a_member_refuses_to_start_when_a_method_lacks_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """server/app.py `bind` looks every method up in the table before it serves any."""
    monkeypatch.delitem(channels.TABLE, "hsmnode.pb.Keys")
    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    keys = keys_pb2.DESCRIPTOR.services_by_name["Keys"]
    with pytest.raises(KeyError, match=r"hsmnode.pb.Keys/\w+ has no row in the channel table"):
        bind(server, KeysServicer(None, None), keys, None)  # type: ignore[arg-type]
    server.stop(None)


def test_a_streams_later_messages_see_a_revoked_registration_without_the_certificate() -> None:
    """ChannelGuard.recheck (a CryptoStream batch): the class a connection was given stands, but an
    NTLS client's registration is looked up again; a revoked one is refused as `check` refuses it."""
    registered = {"fp-ntls": "app-1"}
    classifier = channels.Classifier(b"", lambda fp: registered.get(fp))
    stream = channels.ChannelGuard("hsmnode.pb.CryptoStream", classifier)
    cluster = channels.ChannelGuard("hsmnode.pb.Cluster", classifier)
    ntls = channels.Peer(channels.NTLS, "fp-ntls", "app-host", "app-1")
    ca = channels.Peer(channels.CA, "fp-ca", "admin")
    assert stream.recheck("Batch", ntls) == ntls
    assert cluster.recheck("Status", ca) == ca  # a cluster-CA certificate has no registration
    with pytest.raises(channels.DomainError) as wrong_class:
        stream.recheck("Batch", ca)
    assert wrong_class.value.code == channels.ErrorCode.PERMISSION_DENIED
    registered.clear()  # the registration revoked since the stream opened
    with pytest.raises(channels.DomainError) as revoked:
        stream.recheck("Batch", ntls)
    assert revoked.value.code == channels.ErrorCode.UNAUTHENTICATED
    assert "its registration was revoked" in revoked.value.message
    assert cluster.recheck("Status", ca) == ca


def test_a_member_still_catching_up_answers_an_unknown_client_unavailable_not_unauthenticated() -> None:
    """A restarted member replays its log before its state lists the registered clients: until it
    has caught up (pysyncobj isReady) an unknown certificate is UNAVAILABLE, which the SDK retries
    elsewhere (a new user: Unauthenticated and CKR_USER_NOT_LOGGED_IN after a whole-cluster restart)."""
    ready = [False]
    classifier = channels.Classifier(b"", lambda fp: None, lambda: ready[0])
    guard = channels.ChannelGuard("hsmnode.pb.Keys", classifier)
    app = channels.Peer(channels.NTLS, "fp-app", "app-host", "app-1")
    with pytest.raises(channels.DomainError) as replaying:
        guard.recheck("Sign", app)
    assert replaying.value.code == channels.ErrorCode.UNAVAILABLE
    assert "catching up after a restart" in replaying.value.message
    ready[0] = True  # caught up: the state decides, and it does not list the certificate
    with pytest.raises(channels.DomainError) as refused:
        guard.recheck("Sign", app)
    assert refused.value.code == channels.ErrorCode.UNAUTHENTICATED
