"""Every write RPC answers a repeated request id with its first result and changes state once (DESIGN.md §3.5).

The write RPCs are read from the proto descriptors of every hsmnode.pb module: a method whose
request carries `request_id`, unless it is marked `idempotency_level = NO_SIDE_EFFECTS` (a read
sharing a request message). The Console service is sent through the first member's local console
socket (ConsoleClient), everything else through the HA SDK over TLS.
Each has a scenario (set-up, then the call); a write RPC without one fails the test. Each is sent
twice with one request id, and again (with a fresh one) through a FaultInjector that loses the
first answer after the member executed it, so the SDK retries: the answers are equal, and the
audit log (one record per applied command) shows the request's commands once.
"""

from __future__ import annotations

import importlib
import itertools
import os
import pkgutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from google.protobuf import descriptor_pb2

import hsmnode.pb
from hsmnode import crypto
from hsmnode.client import (
    ConsoleClient,
    FaultInjector,
    HsmClient,
    HsmError,
    HsmRoleSession,
    IndexTracker,
    Tls,
)
from hsmnode.crypto.cards import load_card, new_set
from hsmnode.ops.demo import dev_password
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import (
    admin_pb2,
    audit_pb2,
    auth_pb2,
    authorization_pb2,
    cluster_pb2,
    console_pb2,
    debug_pb2,
    keyrings_pb2,
    keys_pb2,
    ntls_pb2,
    partition_backup_pb2,
)
from tests.common.cluster import IN_PROCESS, start_cluster

pytestmark = pytest.mark.cluster

# every *_pb2 module of hsmnode.pb: an RPC added to any proto is covered without editing this list
PB_MODULES = tuple(
    importlib.import_module(f"hsmnode.pb.{info.name}")
    for info in pkgutil.iter_modules(hsmnode.pb.__path__)
    if info.name.endswith("_pb2")
)
STUBS = {
    service.name: getattr(importlib.import_module(module.__name__ + "_grpc"), f"{service.name}Stub")
    for module in PB_MODULES
    for service in module.DESCRIPTOR.services_by_name.values()
}
# services served on the member's local console socket, not on its TLS port
CONSOLE_SERVICES = {"Console"}


def write_rpcs() -> list[str]:
    """ "Service.Method" of every write RPC, from the descriptors."""
    found = []
    for module in PB_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                reads = method.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
                if "request_id" in method.input_type.fields_by_name and not reads:
                    found.append(f"{service.name}.{method.name}")
    return sorted(found)


@dataclass
class Call:
    """One write: who sends it (an identity of the world), the request (request_id set by the test)."""

    identity: str
    request: Any
    token: str = ""
    # undo what would hurt later scenarios (a dead member added: two more would cost the quorum)
    cleanup: Callable[[], object] | None = None


@dataclass
class World:
    """The demo cluster's identities, their sessions, and names that stay unique."""

    cluster: DevCluster
    demo: dict[str, Any]
    tracker: IndexTracker = field(default_factory=IndexTracker)
    clients: dict[str, HsmClient] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=itertools.count)
    tokens: dict[str, str] = field(default_factory=dict)
    cu_password: str = ""

    def tls(self, identity: str) -> Tls:
        root = self.cluster.root
        if identity == "admin":
            return self.cluster.tls()
        cert = {"app": "demo-client", "cluster-so": "cluster-so"}[identity]
        return Tls.from_files(root / "ca.pem", root / f"{cert}.pem", root / f"{cert}.key")

    def client(self, identity: str, interceptors: list[Any] | None = None) -> HsmClient:
        endpoints = [m.grpc for m in self.cluster.members]
        if interceptors:
            return HsmClient(
                endpoints, self.tls(identity), interceptors=interceptors, index_from=self.tracker
            )
        if identity not in self.clients:
            self.clients[identity] = HsmClient(endpoints, self.tls(identity), index_from=self.tracker)
        return self.clients[identity]

    def console(self, interceptors: list[Any] | None = None) -> ConsoleClient:
        """The first member's local console (its unix socket: this test runs as the member's user)."""
        return ConsoleClient(
            self.cluster.members[0].data_dir / "console.sock", interceptors=interceptors or ()
        )

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    # sessions
    def admin(self) -> Any:
        session = self.client("admin").resume(self.token("admin"))
        session.keep = True
        return session

    def so(self) -> Any:
        session = HsmRoleSession(self.client("admin"), self.token("so"), "admin", "admin", 0)
        session.keep = True
        return session

    def token(self, who: str) -> str:
        if who not in self.tokens:
            admin = self.client("admin")
            app = self.client("app")
            if who == "admin":
                session = admin.login("admin", self.demo["users"]["admin"])
            elif who == "so":
                session = admin.resume(self.token("admin")).hsm_login(self.demo["hsm"]["so_password"])
            elif who == "auditor":
                session = admin.login("audit", self.demo["users"]["audit"]).hsm_login(
                    self.demo["hsm"]["auditor_password"], role="AU"
                )
            elif who == "co":
                session = app.open_session("demo", self.demo["partition"]["co_password"], role="CO")
            elif who == "krso":
                session = app.open_session("demo-ring", self.demo["keyring"]["krso_password"], role="KRSO")
            elif who == "cluster-po":
                session = self.client("cluster-so").open_session(
                    "cluster", self.demo["cluster_partition"]["po_password"], role="PO"
                )
            else:
                raise KeyError(who)
            self.tokens[who] = session.token
        return self.tokens[who]

    def co(self) -> Any:
        session = self.client("app").resume_partition(self.token("co"), "demo", "CO")
        session.keep = True
        return session

    def cluster_po(self) -> Any:
        session = self.client("cluster-so").resume_partition(self.token("cluster-po"), "cluster", "PO")
        session.keep = True
        return session

    # set-ups
    def assign_app(self, partition: str) -> None:
        """Assign a partition to demo-client: its sessions end (the client's registration epoch moves)."""
        self.admin().assign_client("demo-client", partition)
        self.forget_app_sessions()

    def forget_app_sessions(self) -> None:
        for who in ("co", "krso"):
            self.tokens.pop(who, None)

    def role(self) -> str:
        name = self.name("role")
        self.admin().add_role(name, ["user.list"])
        return name

    def new_partition(self) -> str:
        name = self.name("p")
        self.so().create_partition(name)
        return name

    def assigned_keyring(self) -> str:
        label = self.keyring()
        self.cluster_po().assign_keyring(label, "demo-client")
        self.forget_app_sessions()
        return label

    def user(self, password: str) -> str:
        name = self.name("idem")
        self.admin().add_user(name, role="monitor", password=password)
        return name

    def partition(self) -> tuple[str, str]:
        """A new partition assigned to demo-client, initialized, its CO set and changed: (name, CO password)."""
        name = self.name("p")
        po, first_co, co = dev_password(), dev_password(), dev_password()
        self.so().create_partition(name)
        self.assign_app(name)
        app = self.client("app")
        app.init_partition(name, label=name, cloning_domain="d", po_password=po)
        with app.open_session(name, po, role="PO") as po_session:
            po_session.init_role("CO", first_co)
        app.change_partition_password(name, "CO", first_co, co)
        self.tokens[f"po:{name}"] = app.open_session(name, po, role="PO").token
        return name, co

    def keyring(self) -> str:
        label = self.name("kr")
        self.cluster_po().create_keyring(label, dev_password())
        return label

    def key(self, key_type: str = "EC", size: str = "P-256", usage: tuple[str, ...] = ("sign",)) -> str:
        return self.co().generate_key(self.name("k"), key_type, size, usage=list(usage)).id

    def vault(self) -> tuple[str, str, Any]:
        """An M-of-N partition with online authorization and a 2-of-3 card set: (name, CO password, cards)."""
        name, co = self.partition_requiring_authorization()
        cards_dir = self.cluster.root / f"cards-{name}"
        card_set = new_set(3, 2, name, cards_dir)
        cards = [load_card(cards_dir / f"{label}.card") for label, _ in card_set.cards]
        return name, co, (card_set, cards)

    def partition_requiring_authorization(self) -> tuple[str, str]:
        name = self.name("v")
        po, first_co, co = dev_password(), dev_password(), dev_password()
        self.so().create_partition(name, requires_authorization=True)
        self.assign_app(name)
        app = self.client("app")
        app.init_partition(name, label=name, cloning_domain="d", po_password=po)
        with app.open_session(name, po, role="PO") as po_session:
            po_session.init_role("CO", first_co)
            po_session.set_policy("online_authorization", 1)
        app.change_partition_password(name, "CO", first_co, co)
        return name, co


def free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def _change_request(w: World, associated: bool) -> tuple[Any, str]:
    """A vault, optionally associated already, and a CO session on it."""
    name, co, (card_set, cards) = w.vault()
    app = w.client("app")
    session = app.open_session(name, co, role="CO")
    session.keep = True
    if associated:
        challenge = session.auth_challenge("associate")
        session.auth_change(
            "ASSOCIATED",
            challenge,
            [(c.label, c.sign(challenge.data)) for c in cards[:2]],
            co,
            card_set=(card_set.set_id, card_set.threshold, card_set.cards),
        )
    return (name, co, card_set, cards), session.token


def _signed(challenge: Any, cards: list[Any]) -> list[authorization_pb2.CardSignature]:
    return [authorization_pb2.CardSignature(label=c.label, signature=c.sign(challenge.data)) for c in cards]


def _associate(challenge: Any, cards: list[Any], password: str, card_set: Any) -> dict[str, Any]:
    """The fields of a change to ASSOCIATED binding `card_set`, signed by two of its cards."""
    return dict(
        target="ASSOCIATED",
        challenge=challenge.data,
        mac=challenge.mac,
        signatures=_signed(challenge, cards[:2]),
        password=password,
        card_set=authorization_pb2.CardSet(
            set_id=card_set.set_id,
            threshold=card_set.threshold,
            cards=[authorization_pb2.Card(label=label, public_key=key) for label, key in card_set.cards],
        ),
    )


def scenario_change(w: World) -> Call:
    (name, co, card_set, cards), token = _change_request(w, associated=False)
    session = w.client("app").resume_partition(token, name, "CO")
    challenge = session.auth_challenge("associate")
    request = authorization_pb2.ChangeAuthorizationRequest(**_associate(challenge, cards, co, card_set))
    return Call("app", request, token)


def scenario_set_permissions(w: World) -> Call:
    (name, co, _card_set, cards), token = _change_request(w, associated=True)
    session = w.client("app").resume_partition(token, name, "CO")
    challenge = session.auth_challenge("permissions")
    request = authorization_pb2.SetAuthPermissionsRequest(
        permissions=["key_destroy"],
        challenge=challenge.data,
        mac=challenge.mac,
        signatures=_signed(challenge, cards[:2]),
        password=co,
    )
    return Call("app", request, token)


def scenario_unwrap(w: World) -> Call:
    wrapping_material = os.urandom(32)
    wrapping = w.co().import_key(w.name("w"), "AES", wrapping_material, usage=["wrap", "unwrap"]).id
    wrapped = aes_key_wrap_with_padding(wrapping_material, os.urandom(32))
    request = keys_pb2.UnwrapKeyRequest(
        wrapping_key=wrapping, wrapped=wrapped, label=w.name("u"), key_type="AES", usage=["encrypt"]
    )
    return Call("app", request, w.token("co"))


def scenario_ntls_change_password(w: World) -> Call:
    new = dev_password()
    request = ntls_pb2.PartitionPasswordRequest(
        partition="demo", role="CU", old_password=w.cu_password, new_password=new
    )
    w.cu_password = new
    return Call("app", request)


def scenario_login_with_new_password(w: World) -> Call:
    first = dev_password()
    name = w.user(first)
    return Call("admin", auth_pb2.LoginRequest(user=name, password=first, new_password=dev_password()))


def scenario_remove_member(w: World) -> Call:
    member = w.name("ghost")
    w.admin().add_member(member, raft_address=free_address(), address=free_address())
    return Call("admin", cluster_pb2.RemoveMemberRequest(id=member), w.token("admin"))


def scenario_restore(w: World) -> Call:
    """A backup of a partition with a key, restored into a new partition of the same cloning domain."""
    source, source_co = w.partition()
    target, target_co = w.partition()
    app = w.client("app")
    with app.open_session(source, source_co, role="CO") as co:
        co.generate_key(w.name("k"), "AES", "256", usage=["encrypt"])
        backup = co.backup()
    token = app.open_session(target, target_co, role="CO").token
    return Call("app", partition_backup_pb2.PartitionRestoreRequest(backup=backup), token)


def scenario_console_change(w: World) -> Call:
    """An M-of-N partition associated at the first member's local console."""
    name, co, (card_set, cards) = w.vault()
    with w.console() as console:
        challenge = console.challenge(name, "associate")
    request = console_pb2.ConsoleChangeRequest(partition=name, **_associate(challenge, cards, co, card_set))
    return Call("console", request)


def scenario_public_key() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


# Scenarios for every write RPC; InitAuditor and InitHsm run last (they reset the Auditor's and the
# SO's credentials, and InitHsm zeroizes the partitions).
SCENARIOS: dict[str, Callable[[World], Call]] = {
    "Admin.AddUser": lambda w: Call(
        "admin",
        admin_pb2.AddUserRequest(name=w.name("idem"), role="monitor", password=dev_password()),
        w.token("admin"),
    ),
    "Admin.DeleteUser": lambda w: Call(
        "admin", admin_pb2.NameRequest(name=w.user(dev_password())), w.token("admin")
    ),
    "Admin.SetUserEnabled": lambda w: Call(
        "admin", admin_pb2.SetUserEnabledRequest(name=w.user(dev_password()), enabled=True), w.token("admin")
    ),
    "Admin.SetUserPassword": lambda w: Call(
        "admin",
        admin_pb2.SetUserPasswordRequest(name=w.user(dev_password()), password=dev_password()),
        w.token("admin"),
    ),
    "Admin.AddRole": lambda w: Call(
        "admin", admin_pb2.AddRoleRequest(name=w.name("role"), commands=["user.list"]), w.token("admin")
    ),
    "Admin.DeleteRole": lambda w: Call(
        "admin",
        admin_pb2.NameRequest(name=w.role()),
        w.token("admin"),
    ),
    "Admin.RegisterClient": lambda w: Call(
        "admin",
        admin_pb2.RegisterClientRequest(
            name=w.name("c"), cert_pem=crypto.self_signed_client_certificate("c").cert_pem.decode()
        ),
        w.token("admin"),
    ),
    "Admin.AssignClient": lambda w: Call(
        "admin", admin_pb2.ClientPartitionRequest(name=_client(w), partition="demo"), w.token("admin")
    ),
    "Admin.RevokeClient": lambda w: Call(
        "admin",
        admin_pb2.ClientPartitionRequest(name=_client(w, assign="demo"), partition="demo"),
        w.token("admin"),
    ),
    "Admin.SetHsmPolicy": lambda w: Call(
        "admin",
        admin_pb2.SetHsmPolicyRequest(name="po_can_reset_co", value=bool(next(w.counter) % 2)),
        w.token("so"),
    ),
    "Admin.CreatePartition": lambda w: Call(
        "admin", admin_pb2.CreatePartitionRequest(name=w.name("p")), w.token("so")
    ),
    "Admin.DeletePartition": lambda w: Call(
        "admin",
        admin_pb2.NameRequest(name=w.new_partition()),
        w.token("so"),
    ),
    "Audit.Note": lambda w: Call("admin", audit_pb2.AuditNoteRequest(text=w.name("note ")), w.token("admin")),
    "Audit.SetConfig": lambda w: Call(
        "admin",
        audit_pb2.SetAuditConfigRequest(category="key_usage", level="all"),
        w.token("auditor"),
    ),
    "Console.Change": scenario_console_change,
    "PartitionBackup.Restore": scenario_restore,
    "Auth.Login": scenario_login_with_new_password,
    "Auth.Logout": lambda w: Call(
        "admin",
        auth_pb2.LogoutRequest(),
        w.client("admin").login("monitor", w.demo["users"]["monitor"]).token,
    ),
    "Auth.ChangePassword": lambda w: Call(
        "admin",
        (
            lambda old: auth_pb2.ChangePasswordRequest(
                user=w.user(old), old_password=old, new_password=dev_password()
            )
        )(dev_password()),
    ),
    "Auth.HsmLogin": lambda w: Call(
        "admin", auth_pb2.HsmLoginRequest(role="SO", password=w.demo["hsm"]["so_password"]), w.token("admin")
    ),
    "Auth.HsmLogout": lambda w: Call(
        "admin",
        auth_pb2.LogoutRequest(),
        w.client("admin")
        .login("admin", w.demo["users"]["admin"])
        .hsm_login(w.demo["hsm"]["so_password"])
        .token,
    ),
    "Authorization.Change": scenario_change,
    "Authorization.SetPermissions": scenario_set_permissions,
    "Authorization.SetGrant": lambda w: Call(
        "app",
        authorization_pb2.SetGrantRequest(grantee=w.partition()[0], permissions=["read"]),
        w.token("co"),
    ),
    "Cluster.AddMember": lambda w: (
        lambda member: Call(
            "admin",
            cluster_pb2.AddMemberRequest(id=member, raft_address=free_address(), address=free_address()),
            w.token("admin"),
            cleanup=lambda: w.admin().remove_member(member),
        )
    )(w.name("ghost")),
    "Cluster.RemoveMember": scenario_remove_member,
    "Cluster.Backup": lambda w: Call("admin", cluster_pb2.BackupRequest(), w.token("admin")),
    "Debug.FailApply": lambda w: Call("admin", debug_pb2.FailApplyRequest(reason="idempotency test")),
    "Keyrings.Create": lambda w: Call(
        "cluster-so",
        keyrings_pb2.CreateKeyringRequest(label=w.name("kr"), krso_password=dev_password()),
        w.token("cluster-po"),
    ),
    "Keyrings.Delete": lambda w: Call(
        "cluster-so", keyrings_pb2.KeyringRequest(label=w.keyring()), w.token("cluster-po")
    ),
    "Keyrings.Assign": lambda w: Call(
        "cluster-so",
        keyrings_pb2.AssignKeyringRequest(label=w.keyring(), client="demo-client"),
        w.token("cluster-po"),
    ),
    "Keyrings.Unassign": lambda w: Call(
        "cluster-so",
        keyrings_pb2.AssignKeyringRequest(
            label=w.assigned_keyring(),
            client="demo-client",
        ),
        w.token("cluster-po"),
    ),
    "Keyrings.Unlock": lambda w: Call(
        "cluster-so", keyrings_pb2.KeyringRequest(label=w.keyring()), w.token("cluster-po")
    ),
    "Keyrings.SetKrco": lambda w: Call(
        "app", keyrings_pb2.SetKrcoRequest(password=dev_password()), w.token("krso")
    ),
    "Keys.Generate": lambda w: Call(
        "app",
        keys_pb2.GenerateKeyRequest(label=w.name("k"), key_type="EC", size="P-256", usage=["sign"]),
        w.token("co"),
    ),
    "Keys.ImportPublic": lambda w: Call(
        "app",
        keys_pb2.ImportPublicKeyRequest(label=w.name("pub"), pem=scenario_public_key(), usage=["verify"]),
        w.token("co"),
    ),
    "Keys.Import": lambda w: Call(
        "app",
        keys_pb2.ImportKeyRequest(
            label=w.name("aes"), key_type="AES", material=os.urandom(32), usage=["encrypt"]
        ),
        w.token("co"),
    ),
    "Keys.Unwrap": scenario_unwrap,
    "Keys.Destroy": lambda w: Call("app", keys_pb2.KeyRef(key=w.key()), w.token("co")),
    "Keys.Block": lambda w: Call("app", keys_pb2.BlockKeyRequest(key=w.key(), blocked=True), w.token("co")),
    "Ntls.OpenSession": lambda w: Call(
        "app", ntls_pb2.OpenSessionRequest(partition="demo", role="CU", password=w.cu_password)
    ),
    "Ntls.CloseSession": lambda w: Call(
        "app",
        ntls_pb2.CloseSessionRequest(),
        w.client("app").open_session("demo", w.cu_password, role="CU").token,
    ),
    "Ntls.ChangePassword": scenario_ntls_change_password,
    "Ntls.InitPartition": lambda w: Call(
        "app",
        ntls_pb2.InitPartitionRequest(
            partition=_assigned_partition(w), label="x", cloning_domain="d", po_password=dev_password()
        ),
    ),
    "Ntls.InitRole": lambda w: Call(
        "app",
        ntls_pb2.InitRoleRequest(role="CO", password=dev_password()),
        w.tokens[f"po:{w.partition()[0]}"],
    ),
    "Ntls.SetPolicy": lambda w: Call(
        "app",
        ntls_pb2.SetPolicyRequest(policy="auto_activation", value=1),
        w.tokens[f"po:{w.partition()[0]}"],
    ),
    "Ntls.Activate": lambda w: Call(
        "app",
        (lambda p: ntls_pb2.ActivateRequest(partition=p[0], co_password=p[1], active=True))(w.partition()),
    ),
    "Admin.InitAuditor": lambda w: Call(
        "admin",
        admin_pb2.InitAuditorRequest(password=dev_password()),
        w.client("admin").login("audit", w.demo["users"]["audit"]).token,
    ),
    "Admin.InitHsm": lambda w: Call(
        "admin",
        admin_pb2.InitHsmRequest(label="reinit", so_password=w.demo["hsm"]["so_password"]),
        w.token("so"),
    ),
}


def _client(w: World, assign: str = "") -> str:
    name = w.name("c")
    w.admin().register_client(name, crypto.self_signed_client_certificate(name).cert_pem.decode())
    if assign:
        w.admin().assign_client(name, assign)
    return name


def _assigned_partition(w: World) -> str:
    name = w.name("p")
    w.so().create_partition(name)
    w.assign_app(name)
    return name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    cluster = start_cluster(
        Path(tmp_path_factory.mktemp("idempotency")) / "cluster", fault_injection=True, kind=IN_PROCESS
    )
    try:
        demo = cluster.demo()
        assert demo is not None
        w = World(cluster, demo, cu_password=demo["partition"]["cu_password"])
        yield w
        for client in w.clients.values():
            client.close()
    finally:
        cluster.stop()


def test_every_write_rpc_has_a_scenario() -> None:
    writes = write_rpcs()
    assert len(writes) >= 40, writes
    missing = sorted(set(writes) - set(SCENARIOS))
    assert not missing, f"write RPCs without an idempotency scenario: {missing}"
    assert not sorted(set(SCENARIOS) - set(writes)), "scenarios for RPCs that are not writes"


# server-streaming writes: the answer compared is what the stream says, not its bytes (a backup is
# sealed afresh each time, with the time and member that took it)
STREAMING = {"Cluster.Backup"}


def _send(w: World, rpc: str, call: Call, request_id: str, interceptors: list[Any] | None = None) -> Any:
    """The answer (a response message, or the error as (type, message)) of one call with failover."""
    service, method = rpc.split(".")
    call.request.request_id = request_id
    if service in CONSOLE_SERVICES:
        with w.console(interceptors) as console:
            try:
                return console.call(method, call.request, write=True)
            except HsmError as exc:
                return (type(exc).__name__, exc.message)
    client = w.client(call.identity, interceptors)
    try:
        if rpc in STREAMING:
            header = next(
                iter(client.call_stream(STUBS[service], method, call.request, token=call.token))
            ).header
            header.ClearField("taken_at_ms")
            header.ClearField("taken_by")
            return header
        return client.call(STUBS[service], method, call.request, write=True, token=call.token)
    except HsmError as exc:
        return (type(exc).__name__, exc.message)
    finally:
        if interceptors:
            client.close()
        _forget_ended_sessions(w, rpc, call)


def _forget_ended_sessions(w: World, rpc: str, call: Call) -> None:
    """Sessions the call ended cluster-wide (their credential's epoch moved): log in again when needed."""
    if rpc in ("Auth.HsmLogout", "Admin.InitHsm"):
        w.tokens.pop("so", None)
    if rpc in ("Keyrings.Assign", "Keyrings.Unassign"):
        w.forget_app_sessions()
    if rpc == "Admin.InitAuditor":
        w.demo["hsm"]["auditor_password"] = call.request.password
        w.tokens.pop("auditor", None)


def _commands(w: World, request_id: str, after: int) -> list[str]:
    """The audit records (applied commands) of a request since audit position `after`."""
    auditor = HsmRoleSession(w.client("admin"), w.token("auditor"), "audit", "audit", 0)
    found, seq = [], after
    while True:
        records = auditor.audit_list(after_seq=seq, limit=1000).records
        if not records:
            return found
        found += [
            r.command
            for r in records
            if r.request_id == request_id or r.request_id.startswith(request_id + "/")
        ]
        seq = records[-1].seq


def _audit_length(w: World) -> int:
    auditor = HsmRoleSession(w.client("admin"), w.token("auditor"), "audit", "audit", 0)
    return auditor.audit_list(after_seq=0, limit=1).total


@pytest.mark.parametrize("rpc", list(SCENARIOS))
def test_a_repeated_request_id_gets_the_first_answer_and_changes_state_once(world: World, rpc: str) -> None:
    w = world
    # sent twice with one request id
    call = SCENARIOS[rpc](w)
    start = _audit_length(w)
    first = _send(w, rpc, call, f"idem-{rpc}-twice")
    applied = _commands(w, f"idem-{rpc}-twice", start)
    assert applied, f"{rpc}: the first call applied nothing: {first!r}"
    assert isinstance(first, tuple) == (rpc == "Debug.FailApply"), f"{rpc}: {first!r}"
    again = _send(w, rpc, call, f"idem-{rpc}-twice")
    assert again == first, f"{rpc}: a repeat answered differently"
    assert _commands(w, f"idem-{rpc}-twice", start) == applied, f"{rpc}: a repeat changed state again"
    if call.cleanup:
        call.cleanup()

    # the first answer lost after the member executed it: the SDK retries with the same request id
    call = SCENARIOS[rpc](w)
    start = _audit_length(w)
    lose = FaultInjector(unknown_ratio=1.0, methods=(f"/{rpc.split('.')[1]}",), limit=1)
    retried = _send(w, rpc, call, f"idem-{rpc}-lost", [lose])
    assert lose.lost == 1, f"{rpc}: {retried!r}"
    assert not isinstance(retried, tuple) or isinstance(first, tuple), f"{rpc}: {retried!r}"
    assert _commands(w, f"idem-{rpc}-lost", start) == applied, f"{rpc}: applied other than once"
    assert _send(w, rpc, call, f"idem-{rpc}-lost") == retried
    if call.cleanup:
        call.cleanup()
