"""Security gaps found from outside (issue 11), each through a real cluster: channels
(DOMAIN.md §3), keyring deletion by the cluster SO (§1), the M-of-N transition table (§5), grant
references in the CLI (§4), operator + SO (§1), lockout answers, bad input and password sources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from hsmnode import crypto
from hsmnode.client import (
    FailedPrecondition,
    HsmClient,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Tls,
    Unauthenticated,
)
from hsmnode.crypto.cards import load_card, new_set
from hsmnode.ops.demo import dev_password
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import as_admin

pytestmark = pytest.mark.cluster

HSMNODE = [sys.executable, "-m", "hsmnode"]


def demo_of(cluster: DevCluster) -> dict[str, Any]:
    demo = cluster.demo()
    assert demo is not None
    return demo


def cli(
    cluster: DevCluster, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HSMNODE, *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        env=dict(os.environ, HSMNODE_PROFILE=str(cluster.profile_path), **env),
    )


# --- failure 2: an application certificate reaches administration (DOMAIN.md §3 channels) -------------


def test_an_ntls_client_certificate_cannot_log_in_to_the_appliance_or_take_the_so_role(
    single: DevCluster,
) -> None:
    demo = demo_of(single)
    with single.app_client() as app:
        with pytest.raises(PermissionDenied) as info:
            app.login("admin", demo["users"]["admin"])
        assert "registered NTLS client certificate" in info.value.message
        assert "hsmnode.pb.Auth/Login" in info.value.message
        with pytest.raises(PermissionDenied, match="registered NTLS client certificate"):
            app.resume("any-token").hsm_login(demo["hsm"]["so_password"])
        # the application's own channel still works
        found = app.list_slots()
        assert found.client == "demo-client" and "demo" in {s.partition for s in found.slots}


def test_the_admin_certificate_does_not_open_partition_sessions(single: DevCluster) -> None:
    demo = demo_of(single)
    with single.client() as admin_cert, pytest.raises(PermissionDenied) as info:
        admin_cert.open_session("demo", demo["partition"]["co_password"], role="CO")
    assert "certificate the cluster CA issued" in info.value.message
    assert "hsmnode.pb.Ntls/OpenSession" in info.value.message


# --- failure 3: the cluster SO may not destroy a keyring's contents (DOMAIN.md §1) ----------------------


def test_the_cluster_so_cannot_delete_a_keyring_that_holds_keys(single: DevCluster) -> None:
    demo = demo_of(single)
    cso = demo["cluster_partition"]
    krso_initial, krso = dev_password(), dev_password()
    tls = Tls.from_files(
        single.root / "ca.pem", single.root / f"{cso['client']}.pem", single.root / f"{cso['client']}.key"
    )
    so_client = HsmClient([m.grpc for m in single.members], tls)
    with so_client, so_client.open_session(cso["name"], cso["po_password"], role="PO") as po:
        po.create_keyring("held", krso_initial)
        po.assign_keyring("held", "demo-client")
        with single.app_client() as app:
            app.change_partition_password("held", "KRSO", krso_initial, krso)
            with app.open_session("held", krso, role="KRSO") as ring:
                key = ring.generate_key("kept", "EC", "P-256", usage=["sign"])
                with pytest.raises(FailedPrecondition) as info:
                    po.delete_keyring("held")
                assert (
                    "holds 1 object" in info.value.message
                    and "its KRSO must empty it first" in info.value.message
                )
                assert [k.label for k in ring.list_keys()] == ["kept"]
                ring.destroy_key(key.id)
        po.delete_keyring("held")  # empty now
        assert "held" not in {k.label for k in po.list_keyrings()}


# --- failure 5: M-of-N transitions exactly as the table says (DOMAIN.md §5) -----------------------------


def test_session_authorized_transitions_follow_the_table(single: DevCluster, tmp_path: Path) -> None:
    demo = demo_of(single)
    po_password, initial_co, co_password = dev_password(), dev_password(), dev_password()
    admin = as_admin(single)
    with admin.client:
        with admin.hsm_login(demo["hsm"]["so_password"]) as so:
            so.create_partition("mofn", requires_authorization=True)
        admin.assign_client("demo-client", "mofn")
    card_set = new_set(3, 2, "tc", tmp_path)
    c1, c2, c3 = (load_card(tmp_path / f"{label}.card") for label, _ in card_set.cards)
    spec = (card_set.set_id, card_set.threshold, card_set.cards)

    def change(session, target: str, action: str, *cards, with_set: bool = False) -> str:  # type: ignore[no-untyped-def]
        challenge = session.auth_challenge(action)
        signatures = [(card.label, card.sign(challenge.data)) for card in cards]
        return session.auth_change(
            target, challenge, signatures, co_password, card_set=spec if with_set else None
        )

    with single.app_client() as app:
        app.init_partition("mofn", label="mofn", cloning_domain="d", po_password=po_password)
        with app.open_session("mofn", po_password, role="PO") as po:
            po.init_role("CO", initial_co)
        app.change_partition_password("mofn", "CO", initial_co, co_password)
        with app.open_session("mofn", co_password, role="CO") as co:
            # deauthorize from INITIAL: the transition error, not a card-set error
            with pytest.raises(FailedPrecondition) as info:
                change(co, "ASSOCIATED", "deauthorize", c1, c2)
            assert "cannot deauthorize" in info.value.message and "now INITIAL" in info.value.message
            assert change(co, "ASSOCIATED", "associate", c1, c2, with_set=True) == "ASSOCIATED"
            co.generate_key("k", "EC", "P-256", usage=["sign"])
            assert change(co, "SESSION_AUTHORIZED", "session-authorize", c1, c2) == "ASSOCIATED"
            assert co.sign("k", b"m", mechanism="ECDSA-SHA256")
            # SESSION_AUTHORIZED -> SESSION_AUTHORIZED is not in the table
            with pytest.raises(FailedPrecondition) as info:
                change(co, "SESSION_AUTHORIZED", "session-authorize", c2, c3)
            assert "cannot go from SESSION_AUTHORIZED to SESSION_AUTHORIZED" in info.value.message
            # SESSION_AUTHORIZED -> ASSOCIATED with the cards is in the table
            assert change(co, "ASSOCIATED", "deauthorize", c2, c3) == "ASSOCIATED"
            assert co.auth_show().session_authorized is False
            with pytest.raises(FailedPrecondition, match=r"key use requires state .*\(now ASSOCIATED\)"):
                co.sign("k", b"m", mechanism="ECDSA-SHA256")


# --- failure 6: a grant reference in `key generate` creates the key in the granting partition -----------


def test_cli_key_generate_with_a_grant_reference_creates_the_key_in_the_owners_partition(
    single: DevCluster,
) -> None:
    demo = demo_of(single)
    admin = as_admin(single)
    with admin.client:
        with admin.hsm_login(demo["hsm"]["so_password"]) as so:
            so.create_partition("owner")
        admin.assign_client("demo-client", "owner")
    po, co0, co = dev_password(), dev_password(), dev_password()
    with single.app_client() as app:
        app.init_partition("owner", label="owner", cloning_domain="d", po_password=po)
        with app.open_session("owner", po, role="PO") as s:
            s.init_role("CO", co0)
        app.change_partition_password("owner", "CO", co0, co)
        with app.open_session("owner", co, role="CO") as owner:
            owner.grant("demo", ["create", "read"])
            opened = cli(
                single,
                "session",
                "open",
                "demo",
                "--role",
                "co",
                "--password",
                demo["partition"]["co_password"],
            )
            assert opened.returncode == 0, opened.stderr
            made = cli(
                single,
                "key",
                "generate",
                "partition:owner/granted",
                "--type",
                "EC",
                "--size",
                "P-256",
                "--usage",
                "sign",
                "--on",
                "demo",
                "--json",
            )
            assert made.returncode == 0, made.stderr
            assert '"container": "partition:owner"' in made.stdout and '"label": "granted"' in made.stdout
            assert [k.label for k in owner.list_keys(label="granted")] == ["granted"]
        with app.open_session("demo", demo["partition"]["co_password"], role="CO") as mine:
            assert not [k for k in mine.list_keys() if "owner" in k.label]


# --- failure 7: smaller gaps --------------------------------------------------------------------------


def test_operator_with_the_so_credential_does_basic_hsm_administration(single: DevCluster) -> None:
    demo = demo_of(single)
    with (
        single.client() as client,
        client.login("operator", demo["users"]["operator"]) as operator,
        operator.hsm_login(demo["hsm"]["so_password"]) as so,
    ):
        so.create_partition("ops")
        assert "ops" in {p.name for p in so.list_partitions()}
        assert so.show_hsm().initialized
        so.delete_partition("ops")
        with pytest.raises(PermissionDenied, match="may not run hsm.policy"):
            so.set_hsm_policy("po_can_reset_co", False)
        with pytest.raises(PermissionDenied, match=r"may not run hsm\.(re)?init"):
            so.init_hsm("again", dev_password())
        with pytest.raises(PermissionDenied, match="may not run client.register"):
            so.register_client("x", crypto.self_signed_client_certificate("x").cert_pem.decode())


def test_failed_logins_answer_alike_for_existing_locked_and_unknown_users(single: DevCluster) -> None:
    password = dev_password()
    admin = as_admin(single)
    with admin.client:
        admin.add_user("lockme", role="monitor", password=password)
    with single.client() as client:
        client.login("lockme", password, new_password=password + "x")
        answers = set()
        for user in ("lockme", "nobody-here"):
            for _ in range(7):
                with pytest.raises(Unauthenticated) as info:
                    client.login(user, "Wrong-pass-1")
                answers.add(info.value.message)
        assert answers == {"wrong user name or password"}
        # whoever knows the password learns about the lockout
        with pytest.raises(ResourceExhausted, match="user 'lockme' is locked"):
            client.login("lockme", password + "x")


def test_undecodable_request_is_invalid_argument_naming_the_message_type(single: DevCluster) -> None:
    with single.client() as client:
        channel = client._channel(single.members[0].grpc)
        raw = channel.unary_unary("/hsmnode.pb.Auth/Login")
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\xff\xff\xff\xff", timeout=5)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "hsmnode.pb.LoginRequest" in (info.value.details() or "")
        assert client.node_status().role == "leader"


def test_keys_without_usage_and_oversize_labels_are_refused_by_their_rules(single: DevCluster) -> None:
    demo = demo_of(single)
    with single.app_client() as app, app.open_session("demo", demo["partition"]["co_password"]) as co:
        with pytest.raises(InvalidArgument, match="at least one usage flag"):
            co.generate_key("nothing", "AES", "256", usage=[])
        with pytest.raises(InvalidArgument, match="key label must be 1-64 printable characters"):
            co.generate_key("x" * 1_000_000, "AES", "256", usage=["encrypt"])
        assert not co.list_keys(label="nothing")


def test_cli_passwords_come_from_a_file_stdin_or_the_environment(single: DevCluster, tmp_path: Path) -> None:
    demo = demo_of(single)
    secret = tmp_path / "admin.pw"
    secret.write_text(demo["users"]["admin"] + "\n")
    secret.chmod(0o600)
    assert cli(single, "login", "admin", "--password-file", str(secret)).returncode == 0
    piped = cli(single, "login", "admin", "--password-stdin", stdin=demo["users"]["admin"] + "\n")
    assert piped.returncode == 0, piped.stderr
    from_env = cli(single, "login", "admin", HSMNODE_PASSWORD=demo["users"]["admin"])
    assert from_env.returncode == 0, from_env.stderr
    both = cli(single, "login", "admin", "--password", "x", "--password-file", str(secret))
    assert both.returncode != 0 and "only one of" in both.stderr
    missing = cli(single, "login", "admin", "--password-file", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "nope" in missing.stderr


# --- channel separation for every RPC in the proto descriptors ------------------------------------------

APPLICATION_SERVICES = {
    "hsmnode.pb.Ntls",
    "hsmnode.pb.Keys",
    "hsmnode.pb.CryptoStream",
    "hsmnode.pb.Keyrings",
    "hsmnode.pb.Authorization",
    "hsmnode.pb.PartitionBackup",
}
DISCOVERY = {"hsmnode.pb.Cluster/Status", "hsmnode.pb.Cluster/NodeStatus"}


def rpcs_served_over_tls() -> list[tuple[str, Any]]:
    """Every (method path, request class) of the services a member serves on its TLS port."""
    import importlib
    import pkgutil

    from google.protobuf import message_factory

    import hsmnode.pb

    found = []
    for info in pkgutil.iter_modules(hsmnode.pb.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"hsmnode.pb.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.full_name == "hsmnode.pb.Console":  # the local console: a unix socket only
                continue
            for m in service.methods:
                found.append(
                    (f"/{service.full_name}/{m.name}", message_factory.GetMessageClass(m.input_type))
                )
    return sorted(found, key=lambda x: x[0])


def call_empty(channel: grpc.Channel, path: str, request_cls: Any) -> grpc.RpcError | None:
    stub = channel.unary_unary(path, request_serializer=request_cls.SerializeToString)
    try:
        stub(request_cls(), timeout=10)
    except grpc.RpcError as exc:
        return exc
    return None


def test_every_administration_rpc_refuses_an_ntls_client_certificate_and_every_application_rpc_the_admin_one(
    single: DevCluster,
) -> None:
    """DOMAIN.md §3 channels, for every method in the proto descriptors (empty requests: the channel is
    checked before anything else)."""
    rpcs = rpcs_served_over_tls()
    assert len(rpcs) > 60
    with single.app_client() as app, single.client() as admin:
        ntls_channel = app._channel(single.members[0].grpc)
        admin_channel = admin._channel(single.members[0].grpc)
        for path, request_cls in rpcs:
            service = path.split("/")[1]
            as_app = call_empty(ntls_channel, path, request_cls)
            as_admin = call_empty(admin_channel, path, request_cls)
            app_refused = (
                as_app is not None
                and as_app.code() is grpc.StatusCode.PERMISSION_DENIED
                and "registered NTLS client certificate" in (as_app.details() or "")
            )
            admin_refused = (
                as_admin is not None
                and as_admin.code() is grpc.StatusCode.PERMISSION_DENIED
                and "certificate the cluster CA issued" in (as_admin.details() or "")
                and "takes a registered NTLS client certificate" in (as_admin.details() or "")
            )
            if path.lstrip("/") in DISCOVERY:
                assert not app_refused and not admin_refused, path
            elif service in APPLICATION_SERVICES:
                assert admin_refused and not app_refused, (path, as_admin, as_app)
            else:
                assert app_refused and not admin_refused, (path, as_app, as_admin)
                assert path.lstrip("/") in (as_app.details() or "")  # type: ignore[union-attr]
        assert admin.node_status().role == "leader"
