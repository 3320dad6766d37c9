"""The world the idempotency test sends its write RPCs in (test_idempotency.py): the write RPCs read
from the proto descriptors of every hsmnode.pb module, one write as a `Call` (who sends it, the
request), and `World`, the demo cluster's identities, their sessions and the set-ups the scenarios
(idempotency_scenarios.py) build on."""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2

import hsmnode.pb
from hsmnode.client import ConsoleClient, HsmClient, HsmRoleSession, IndexTracker, Tls
from hsmnode.crypto.cards import load_card, new_set
from hsmnode.ops.demo import dev_password
from hsmnode.ops.devcluster import DevCluster

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
