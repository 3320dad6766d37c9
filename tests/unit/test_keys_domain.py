"""Key objects and keyrings inside apply: who may create what, coherent attributes, separation rules."""

from __future__ import annotations

import pytest

from hsmnode.domain import commands as c
from hsmnode.domain.access import authorize
from hsmnode.domain.apply.keys import MAX_OBJECTS
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.rules import check_attributes
from tests.unit.world import FP_OTHER, PEM, World, with_partition

OID = "0" * 31


def key_fields(n: int = 1, **overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "container": "partition:pay",
        "object_id": f"{OID}{n}",
        "label": f"k{n}",
        "key_type": "EC",
        "size": "P-256",
        "object_class": "private",
        "extractable": False,
        "usage": ("sign",),
        "wrapped": b"wrapped-under-smk",
        "public_der": b"spki",
        "origin": "generated",
    }
    fields.update(overrides)
    return fields


def test_co_creates_keys_and_the_state_holds_only_what_the_command_carried() -> None:
    w = with_partition()
    w.ok(c.KeyCreate, w.partition_session("pay", "CO"), **key_fields())
    key = w.state.partitions["pay"].objects[f"{OID}1"]
    assert key.wrapped == b"wrapped-under-smk" and key.created_by.endswith(":CO#2#0")


def test_cu_creates_public_objects_only() -> None:
    w = with_partition()
    cu = w.partition_session("pay", "CU")
    refused = w.apply(c.KeyCreate, cu, **key_fields())
    assert (
        refused.code is ErrorCode.PERMISSION_DENIED
        and "CU" in refused.message
        and "object.create" in refused.message
    )
    public = key_fields(2, object_class="public", wrapped=b"", usage=("verify",), origin="imported")
    assert w.apply(c.KeyCreate, cu, **public).ok


def test_po_and_appliance_users_create_no_keys() -> None:
    w = with_partition()
    assert (
        w.apply(c.KeyCreate, w.partition_session("pay", "PO"), **key_fields()).code
        is ErrorCode.PERMISSION_DENIED
    )
    assert w.apply(c.KeyCreate, w.user("admin"), **key_fields()).code is ErrorCode.PERMISSION_DENIED


def test_a_session_on_one_container_cannot_create_in_another() -> None:
    w = with_partition()
    result = w.apply(c.KeyCreate, w.partition_session("pay", "CO"), **key_fields(container="partition:other"))
    assert result.code is ErrorCode.PERMISSION_DENIED and "has not granted 'pay'" in result.message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"key_type": "DES"}, "unknown key type 'DES'"),
        ({"size": "P-521"}, "EC keys come in P-256, P-384"),
        ({"usage": ("encrypt",)}, "cannot carry usage encrypt"),
        ({"usage": ("fly",)}, "unknown usage flag(s) fly"),
        ({"object_class": "secret"}, "cannot be a 'secret' object"),
        ({"public_der": b""}, "key material does not match"),
        ({"label": ""}, "key label must be 1-64"),
        ({"object_id": "nope"}, "malformed or taken"),
        ({"origin": "stolen"}, "unknown key origin"),
    ],
)
def test_incoherent_key_attributes_are_refused_naming_the_attribute(
    overrides: dict[str, object], message: str
) -> None:
    w = with_partition()
    result = w.apply(c.KeyCreate, w.partition_session("pay", "CO"), **key_fields(**overrides))
    assert result.code is ErrorCode.INVALID_ARGUMENT and message in result.message
    assert not w.state.partitions["pay"].objects


def test_labels_are_unique_within_a_container_and_destroy_removes() -> None:
    w = with_partition()
    co = w.partition_session("pay", "CO")
    w.ok(c.KeyCreate, co, **key_fields())
    assert w.apply(c.KeyCreate, co, **key_fields(2, label="k1")).code is ErrorCode.ALREADY_EXISTS
    assert (
        w.apply(
            c.KeyDestroy, w.partition_session("pay", "CU"), container="partition:pay", object_id=f"{OID}1"
        ).code
        is ErrorCode.PERMISSION_DENIED
    )
    w.ok(c.KeyDestroy, co, container="partition:pay", object_id=f"{OID}1")
    assert (
        w.apply(c.KeyDestroy, co, container="partition:pay", object_id=f"{OID}1").code is ErrorCode.NOT_FOUND
    )


def test_public_objects_carry_verify_or_encrypt_only() -> None:
    with pytest.raises(DomainError, match="cannot carry usage sign"):
        check_attributes("EC", "P-256", "public", ("sign",), False, True)


def test_a_key_without_usage_flags_is_refused() -> None:
    w = with_partition()
    refused = w.apply(c.KeyCreate, w.partition_session("pay", "CO"), **key_fields(usage=()))
    assert refused.code is ErrorCode.INVALID_ARGUMENT and "at least one usage flag" in refused.message
    assert "sign, verify" in refused.message


@pytest.mark.parametrize("label", ["", "x" * 65, "tab\there", "partition:other/key"])
def test_key_labels_follow_the_label_rule(label: str) -> None:
    w = with_partition()
    refused = w.apply(c.KeyCreate, w.partition_session("pay", "CO"), **key_fields(label=label))
    assert refused.code is ErrorCode.INVALID_ARGUMENT and "label" in refused.message
    assert not w.state.partitions["pay"].objects


def test_private_key_wrapping_and_cloning_cannot_both_be_on() -> None:
    w = with_partition()
    po = w.partition_session("pay", "PO")
    refused = w.apply(c.PartitionPolicySet, po, name="pay", policy="private_key_wrapping", value=1)
    assert refused.code is ErrorCode.FAILED_PRECONDITION and "cannot both be on" in refused.message
    w.ok(c.PartitionPolicySet, po, name="pay", policy="private_key_cloning", value=0)
    w.ok(c.PartitionPolicySet, po, name="pay", policy="private_key_wrapping", value=1)


# --- keyrings (DOMAIN.md §1 keyring level) ---------------------------------------------------


def with_keyring() -> World:
    """`pay` is the app partition (client app); `cluster` the cluster partition (client so)."""
    w = with_partition()
    so_role = w.hsm_role("admin", "SO")
    w.ok(c.PartitionCreate, so_role, name="cluster", cluster=True)
    w.ok(c.ClientRegister, w.user("admin"), name="so", cert_pem=PEM, fingerprint=FP_OTHER)
    w.ok(c.ClientAssign, w.user("admin"), name="so", partition="cluster")
    w.ok(
        c.PartitionInit,
        w.client(FP_OTHER),
        name="cluster",
        label="c",
        cloning_domain="d",
        po_password_hash="hash:cpo",
    )
    cluster_so = w.partition_session("cluster", "PO", FP_OTHER)
    w.ok(c.KeyringCreate, cluster_so, label="ring", keyring_id="f" * 32, krso_password_hash="hash:krso0")
    w.ok(c.KeyringAssign, cluster_so, label="ring", client="app", assigned=True)
    return w


def keyring_session(w: World, role: str) -> str:
    client = w.state.clients["app"]
    cred = w.state.keyrings["ring"].roles[role]
    return f"{w.client()}/keyring:ring:{role}#{cred.epoch}#{client.sessions.get(f'keyring:ring:{role}', 0)}"


def test_only_the_cluster_so_manages_keyrings() -> None:
    w = with_keyring()
    other_po = w.partition_session("pay", "PO")
    result = w.apply(c.KeyringCreate, other_po, label="r2", keyring_id="e" * 32, krso_password_hash="h")
    assert result.code is ErrorCode.PERMISSION_DENIED and "cluster security officer" in result.message
    assert (
        w.apply(
            c.KeyringCreate, w.user("admin"), label="r2", keyring_id="e" * 32, krso_password_hash="h"
        ).code
        is ErrorCode.PERMISSION_DENIED
    )


def test_initial_krso_credential_works_only_to_change_itself() -> None:
    w = with_keyring()
    epoch = w.state.keyrings["ring"].roles["KRSO"].epoch
    login = w.apply(c.RecordLogin, w.client(), target="keyring:ring:KRSO", success=True, verified_epoch=epoch)
    assert login.code is ErrorCode.FAILED_PRECONDITION and "initial password" in login.message
    w.set_own_password(w.client(), "keyring:ring:KRSO")
    epoch = w.state.keyrings["ring"].roles["KRSO"].epoch
    assert w.apply(
        c.RecordLogin, w.client(), target="keyring:ring:KRSO", success=True, verified_epoch=epoch
    ).ok


def test_krso_sets_krco_and_both_use_keyring_keys_but_only_krso_sets_krco() -> None:
    w = with_keyring()
    w.set_own_password(w.client(), "keyring:ring:KRSO")
    krso = keyring_session(w, "KRSO")
    w.ok(c.KeyringSetKrco, krso, label="ring", password_hash="hash:krco")
    krco = keyring_session(w, "KRCO")
    w.ok(c.KeyCreate, krco, **key_fields(container="keyring:ring"))
    authorize(w.state, krso, "crypto.use", w.now, "keyring:ring")
    assert (
        w.apply(c.KeyringSetKrco, krco, label="ring", password_hash="h").code is ErrorCode.PERMISSION_DENIED
    )


def test_cluster_so_cannot_use_keyring_objects_or_hold_a_keyring() -> None:
    w = with_keyring()
    cluster_so = w.partition_session("cluster", "PO", FP_OTHER)
    with pytest.raises(DomainError, match="not keyring ring"):
        authorize(w.state, cluster_so, "crypto.use", w.now, "keyring:ring")
    refused = w.apply(c.KeyringAssign, cluster_so, label="ring", client="so", assigned=True)
    assert (
        refused.code is ErrorCode.FAILED_PRECONDITION
        and "apart from the cluster security officer" in refused.message
    )
    # nor can a keyring holder be given the cluster partition
    refused = w.apply(c.ClientAssign, w.user("admin"), name="app", partition="cluster")
    assert refused.code is ErrorCode.FAILED_PRECONDITION and "keyring" in refused.message


def test_cluster_so_deletes_only_an_empty_keyring() -> None:
    """DOMAIN.md §1: while a keyring holds objects its deletion is refused; its KRSO must empty it first."""
    w = with_keyring()
    w.set_own_password(w.client(), "keyring:ring:KRSO")
    krso = keyring_session(w, "KRSO")
    w.ok(c.KeyCreate, krso, **key_fields(container="keyring:ring"))
    cluster_so = w.partition_session("cluster", "PO", FP_OTHER)
    refused = w.apply(c.KeyringDelete, cluster_so, label="ring")
    assert refused.code is ErrorCode.FAILED_PRECONDITION and "its KRSO must empty it first" in refused.message
    assert f"{OID}1" in w.state.keyrings["ring"].objects
    w.ok(c.KeyDestroy, krso, container="keyring:ring", object_id=f"{OID}1")
    w.ok(c.KeyringDelete, cluster_so, label="ring")
    assert "ring" not in w.state.keyrings


def test_keyring_roles_perform_no_cluster_or_partition_administration() -> None:
    w = with_keyring()
    w.set_own_password(w.client(), "keyring:ring:KRSO")
    krso = keyring_session(w, "KRSO")
    assert w.apply(c.PartitionCreate, krso, name="x").code is ErrorCode.PERMISSION_DENIED
    assert (
        w.apply(c.UserAdd, krso, name="x", role="admin", password_hash="h").code
        is ErrorCode.PERMISSION_DENIED
    )
    assert (
        w.apply(c.PartitionRoleInit, krso, name="pay", role="CO", password_hash="h").code
        is ErrorCode.PERMISSION_DENIED
    )
    assert (
        w.apply(c.KeyringCreate, krso, label="r2", keyring_id="e" * 32, krso_password_hash="h").code
        is ErrorCode.PERMISSION_DENIED
    )


def test_keyring_locks_after_10_failed_logins_and_the_cluster_so_unlocks_it() -> None:
    w = with_keyring()
    w.set_own_password(w.client(), "keyring:ring:KRSO")
    krso = keyring_session(w, "KRSO")
    w.ok(c.KeyringSetKrco, krso, label="ring", password_hash="hash:krco")
    codes = []
    for _ in range(10):
        epoch = w.state.keyrings["ring"].roles["KRCO"].epoch
        codes.append(
            w.apply(
                c.RecordLogin, w.client(), target="keyring:ring:KRCO", success=False, verified_epoch=epoch
            ).code
        )
    assert codes == [ErrorCode.UNAUTHENTICATED] * 9 + [ErrorCode.RESOURCE_EXHAUSTED]
    ring = w.state.keyrings["ring"]
    assert ring.roles["KRSO"].locked and ring.roles["KRCO"].locked
    w.ok(c.KeyringUnlock, w.partition_session("cluster", "PO", FP_OTHER), label="ring")
    assert not ring.roles["KRSO"].locked and not ring.roles["KRCO"].locked


def _full(w: World, co: str) -> None:
    """Fill partition pay to MAX_OBJECTS through apply (as a CO's generate commands would)."""
    for n in range(MAX_OBJECTS):
        w.ok(c.KeyCreate, co, **key_fields(n, object_id=f"{n:032x}", label=f"bulk-{n}"))


def test_a_full_partition_refuses_a_new_key_resource_exhausted_saying_what_to_do() -> None:
    """A partition holds at most 10,000 objects (README, Access control): the next key is refused
    RESOURCE_EXHAUSTED naming the maximum and the way out; a destroyed key makes room again."""
    assert MAX_OBJECTS == 10_000
    w = with_partition()
    co = w.partition_session("pay", "CO")
    _full(w, co)
    refused = w.apply(c.KeyCreate, co, **key_fields(1, object_id="f" * 32, label="one-more"))
    assert refused.code is ErrorCode.RESOURCE_EXHAUSTED
    assert refused.message == (
        "partition 'pay' holds 10000 objects, the most a partition may hold: destroy keys it no longer "
        "needs (hsmnode key destroy), or create 'one-more' in another partition"
    )
    w.ok(c.KeyDestroy, co, container="partition:pay", object_id=f"{0:032x}")
    w.ok(c.KeyCreate, co, **key_fields(1, object_id="f" * 32, label="one-more"))
