"""A scenario for every write RPC of test_idempotency.py: SCENARIOS maps "Service.Method" to a
function that sets up what the write needs in the demo cluster (idempotency_support.World) and
returns the write as a `Call` (its request_id left for the test to set)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from hsmnode import crypto
from hsmnode.ops.demo import dev_password
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
from tests.integration.idempotency_support import Call, World, free_address


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
