"""M-of-N partition authorization through real member processes (DOMAIN.md §5): state changes need M cards of
the associated set and the partition password, replicate to every member, survive a full restart and are
audited with the cards used; the action table (state and permission per action) holds over the API; a
refused change leaves the state as it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hsmnode.client import (
    AuditRecord,
    AuthChallenge,
    AuthInfo,
    FailedPrecondition,
    InvalidArgument,
    PartitionSession,
    PermissionDenied,
    Unauthenticated,
)
from hsmnode.crypto.cards import CardFile, CardSetFile, load_card, new_set
from hsmnode.ops.demo import dev_password
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import as_admin, audit_records, eventually

pytestmark = pytest.mark.cluster

PARTITION = "vault"
DATA = b"release payment batch 7"
CardSpec = tuple[str, int, list[tuple[str, bytes]]]


@dataclass(frozen=True)
class Vault:
    """An M-of-N partition ("vault", online authorization on) and its 2-of-3 card set."""

    co_password: str
    card_set: CardSetFile
    cards: list[CardFile]

    def spec(self, threshold: int | None = None) -> CardSpec:
        """The card set as `associate` binds it (optionally with another threshold M)."""
        return (
            self.card_set.set_id,
            self.card_set.threshold if threshold is None else threshold,
            self.card_set.cards,
        )


def set_up_vault(cluster: DevCluster, cards_dir: Path) -> Vault:
    demo: dict[str, Any] | None = cluster.demo()
    assert demo is not None
    po_password, initial_co, co_password = dev_password(), dev_password(), dev_password()
    admin = as_admin(cluster)
    with admin.client:
        with admin.hsm_login(demo["hsm"]["so_password"]) as so:
            so.create_partition(PARTITION, requires_authorization=True)
        admin.assign_client("demo-client", PARTITION)
    with cluster.app_client() as app:
        app.init_partition(PARTITION, label="vault", cloning_domain="d", po_password=po_password)
        with app.open_session(PARTITION, po_password, role="PO") as po:
            po.init_role("CO", initial_co)
            po.set_policy("online_authorization", 1)
        app.change_partition_password(PARTITION, "CO", initial_co, co_password)
    card_set = new_set(3, 2, "vc", cards_dir)
    cards = [load_card(cards_dir / f"{label}.card") for label, _ in card_set.cards]
    return Vault(co_password, card_set, cards)


def signed(challenge: AuthChallenge, *cards: CardFile) -> list[tuple[str, bytes]]:
    """Present `cards`: each signs the member-issued challenge."""
    return [(card.label, card.sign(challenge.data)) for card in cards]


def change(session: PartitionSession, vault: Vault, target: str, action: str, *cards: CardFile) -> str:
    challenge = session.auth_challenge(action)
    card_set = vault.spec() if action == "associate" else None
    return session.auth_change(
        target, challenge, signed(challenge, *cards), vault.co_password, card_set=card_set
    )


def set_permissions(
    session: PartitionSession, vault: Vault, permissions: list[str], *cards: CardFile
) -> list[str]:
    challenge = session.auth_challenge("permissions")
    return session.auth_set_permissions(permissions, challenge, signed(challenge, *cards), vault.co_password)


def remove_vault(cluster: DevCluster) -> None:
    """The SO removes the partition with all its keys."""
    demo: dict[str, Any] | None = cluster.demo()
    assert demo is not None
    admin = as_admin(cluster)
    with admin.client, admin.hsm_login(demo["hsm"]["so_password"]) as so:
        so.delete_partition(PARTITION)


def changes_audited(cluster: DevCluster, member_id: str, count: int) -> list[str]:
    """The details of the successful `auth.change` records, once the member holds `count` of them."""

    def details() -> list[str] | None:
        found = [
            r.detail
            for r in audit_records(cluster, member_id)
            if r.command == "auth.change" and r.outcome == "ok"
        ]
        return found if len(found) == count else None

    return eventually(details, 10.0, f"{count} auth.change records on {member_id}")


def verify_ec(public_der: bytes, signature: bytes) -> None:
    """Check the signature with `cryptography`, outside hsmnode."""
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, DATA, ec.ECDSA(hashes.SHA256()))


# --- one cluster-wide state: any member sees it, a full restart keeps it, the audit log names the cards ---


@pytest.mark.processes
def test_authorization_state_replicates_to_every_member_survives_a_full_restart_and_audits_the_cards(
    cluster: DevCluster, tmp_path: Path
) -> None:
    vault = set_up_vault(cluster, tmp_path / "cards")
    vc1, vc2, vc3 = vault.cards
    with (
        cluster.app_client("node1") as first,
        cluster.app_client("node3") as third,
        first.open_session(PARTITION, vault.co_password, role="CO") as on1,
        third.open_session(PARTITION, vault.co_password, role="CO") as on3,
    ):
        assert on3.auth_show().state == "INITIAL"
        assert change(on1, vault, "ASSOCIATED", "associate", vc1, vc2) == "ASSOCIATED"
        associated = eventually(
            lambda: (info := on3.auth_show()).state == "ASSOCIATED" and info, 10.0, "ASSOCIATED on node3"
        )
        assert associated == AuthInfo(
            PARTITION,
            True,
            "ASSOCIATED",
            vault.card_set.set_id,
            2,
            ("vc-1", "vc-2", "vc-3"),
            (),
            True,
            False,
        )
        signer = on1.generate_key("signer", "EC", "P-256", usage=["sign", "verify"])  # allowed in ASSOCIATED
        with pytest.raises(FailedPrecondition, match="key use requires state") as info:
            on3.sign("signer", DATA, mechanism="ECDSA-SHA256")
        assert "(now ASSOCIATED)" in info.value.message

        assert set_permissions(on1, vault, ["key_export", "key_block"], vc2, vc3) == [
            "key_block",
            "key_export",
        ]
        authorize = on1.auth_challenge("authorize")
        assert (
            on1.auth_change("AUTHORIZED", authorize, signed(authorize, vc1, vc3), vault.co_password)
            == "AUTHORIZED"
        )
        authorized = eventually(
            lambda: (info := on3.auth_show()).state == "AUTHORIZED" and info, 10.0, "AUTHORIZED on node3"
        )
        assert (authorized.set_id, authorized.card_labels, authorized.permissions) == (
            vault.card_set.set_id,
            ("vc-1", "vc-2", "vc-3"),
            ("key_block", "key_export"),
        )
        verify_ec(signer.public_der, on3.sign("signer", DATA, mechanism="ECDSA-SHA256"))  # use: AUTHORIZED
        with pytest.raises(FailedPrecondition, match="key generation requires state") as info:
            on3.generate_key("late", "EC", "P-256", usage=["sign"])
        assert "(now AUTHORIZED)" in info.value.message
        with pytest.raises(FailedPrecondition, match=r"now AUTHORIZED"):
            change(on3, vault, "AUTHORIZED", "authorize", vc1, vc2)  # not in the diagram
        assert {k.label for k in on3.list_keys()} == {"signer"}

    for member in cluster.members:
        cluster.kill(member.id)
    cluster.start()
    cluster.wait_for_leader(timeout=30.0)

    with cluster.app_client() as app, app.open_session(PARTITION, vault.co_password, role="CO") as co:
        assert co.auth_show() == authorized
        signature = eventually(
            lambda: co.sign("signer", DATA, mechanism="ECDSA-SHA256"), 15.0, "signing after the restart"
        )
        verify_ec(signer.public_der, signature)

    def audited() -> list[AuditRecord] | None:
        records = [r for r in audit_records(cluster, "node2") if r.outcome == "ok"]
        return records if len([r for r in records if r.command.startswith("auth.")]) == 3 else None

    records = eventually(audited, 10.0, "the three authorization records on node2")
    changes = [r.detail for r in records if r.command == "auth.change"]
    assert len(changes) == 2, changes
    assert "INITIAL -> ASSOCIATED (associate) with cards vc-1, vc-2" in changes[0]
    assert "ASSOCIATED -> AUTHORIZED (authorize) with cards vc-1, vc-3" in changes[1]
    permissions = [r.detail for r in records if r.command == "auth.permissions"]
    assert len(permissions) == 1 and "Key Block, Key Export with cards vc-2, vc-3" in permissions[0], (
        permissions
    )
    assert all(f"'{PARTITION}'" in detail for detail in changes + permissions)

    # the used challenges survived the restart too: the authorize challenge still cannot be replayed
    with cluster.app_client("node2") as app, app.open_session(PARTITION, vault.co_password, role="CO") as co:
        assert change(co, vault, "ASSOCIATED", "deauthorize", vc2, vc3) == "ASSOCIATED"
        with pytest.raises(FailedPrecondition, match="already used"):
            co.auth_change("AUTHORIZED", authorize, signed(authorize, vc1, vc3), vault.co_password)
        assert co.auth_show().state == "ASSOCIATED"


# --- refusals: the transitions outside the diagram, wrong cards, challenges and input ----------------------


def test_refused_authorization_changes_leave_the_state_unchanged(cluster: DevCluster, tmp_path: Path) -> None:
    vault = set_up_vault(cluster, tmp_path / "cards")
    vc1, vc2, vc3 = vault.cards
    other_set = new_set(2, 1, "other", tmp_path / "other")
    other = load_card(tmp_path / "other" / f"{other_set.cards[0][0]}.card")
    impostor_set = new_set(2, 1, "vc", tmp_path / "impostor")  # same labels, other keys
    impostor = load_card(tmp_path / "impostor" / f"{impostor_set.cards[1][0]}.card")
    assert impostor.label == vc2.label and impostor.public_key != vc2.public_key

    with cluster.app_client() as app, app.open_session(PARTITION, vault.co_password, role="CO") as co:
        initial = co.auth_show()
        assert (initial.state, initial.set_id, initial.card_labels) == ("INITIAL", "", ())

        # from INITIAL only `associate` leads anywhere
        for target, action in (
            ("AUTHORIZED", "authorize"),
            ("INITIAL", "reset"),
            ("SESSION_AUTHORIZED", "session-authorize"),
        ):
            with pytest.raises(FailedPrecondition, match=r"now INITIAL") as info:
                change(co, vault, target, action, vc1, vc2)
            assert f"cannot go from INITIAL to {target}" in info.value.message
        with pytest.raises(FailedPrecondition, match=r"now INITIAL"):
            set_permissions(co, vault, ["key_block"], vc1, vc2)
        # bad input: unknown action, state and permission; no cards; a malformed card set
        with pytest.raises(InvalidArgument, match="unknown authorization action 'bless'"):
            co.auth_challenge("bless")
        with pytest.raises(InvalidArgument, match="unknown authorization state 'BLESSED'"):
            change(co, vault, "BLESSED", "authorize", vc1, vc2)
        challenge = co.auth_challenge("associate")
        with pytest.raises(InvalidArgument, match="present 1-16 card signatures"):
            co.auth_change("ASSOCIATED", challenge, [], vault.co_password, card_set=vault.spec())
        short_key = (
            vault.card_set.set_id,
            2,
            [(vault.card_set.cards[0][0], b"k" * 31), *vault.card_set.cards[1:]],
        )
        with pytest.raises(InvalidArgument, match="32-byte Ed25519 keys"):
            co.auth_change(
                "ASSOCIATED", challenge, signed(challenge, vc1, vc2), vault.co_password, card_set=short_key
            )
        # bad card sets: M > N, and fewer than M cards of the set being bound
        challenge = co.auth_challenge("associate")
        with pytest.raises(InvalidArgument, match=r"threshold M must be 1-3 \(N = 3\), got 4"):
            co.auth_change(
                "ASSOCIATED",
                challenge,
                signed(challenge, vc1, vc2, vc3),
                vault.co_password,
                card_set=vault.spec(4),
            )
        challenge = co.auth_challenge("associate")
        with pytest.raises(PermissionDenied, match="needs 2 cards of its set; 1 presented"):
            co.auth_change(
                "ASSOCIATED", challenge, signed(challenge, vc1), vault.co_password, card_set=vault.spec()
            )
        assert co.auth_show() == initial

        assert change(co, vault, "ASSOCIATED", "associate", vc1, vc2) == "ASSOCIATED"
        associated = co.auth_show()
        assert (associated.state, associated.set_id) == ("ASSOCIATED", vault.card_set.set_id)
        with pytest.raises(FailedPrecondition, match=r"now ASSOCIATED") as info:
            change(co, vault, "ASSOCIATED", "associate", vc1, vc2)
        assert "cannot go from ASSOCIATED to ASSOCIATED" in info.value.message
        assert co.auth_show() == associated

        def refused_authorize(
            error: type[Exception],
            message: str,
            signatures: list[tuple[str, bytes]] | None = None,
            *,
            challenge: AuthChallenge | None = None,
            password: str | None = None,
        ) -> None:
            challenge = challenge or co.auth_challenge("authorize")
            presented = signed(challenge, vc1, vc2) if signatures is None else signatures
            with pytest.raises(error, match=message):
                co.auth_change("AUTHORIZED", challenge, presented, password or vault.co_password)
            assert co.auth_show() == associated, f"the state changed after a refusal ({message})"

        fresh = co.auth_challenge("authorize")
        refused_authorize(
            PermissionDenied, "needs 2 cards of its set; 1 presented", signed(fresh, vc3), challenge=fresh
        )
        fresh = co.auth_challenge("authorize")
        refused_authorize(
            PermissionDenied,
            "card 'other-1' is not in the card set",
            signed(fresh, vc1, other),
            challenge=fresh,
        )
        fresh = co.auth_challenge("authorize")
        refused_authorize(
            Unauthenticated,
            "card 'vc-2' did not sign this challenge",
            signed(fresh, vc1, impostor),
            challenge=fresh,
        )
        fresh = co.auth_challenge("authorize")
        refused_authorize(
            InvalidArgument, "card 'vc-1' was presented twice", signed(fresh, vc1, vc1), challenge=fresh
        )
        fresh = co.auth_challenge("authorize")
        refused_authorize(
            InvalidArgument,
            "an Ed25519 signature is 64 bytes, not 10",
            [(vc1.label, vc1.sign(fresh.data)), (vc2.label, b"\x01" * 10)],
            challenge=fresh,
        )
        unrelated = co.auth_challenge("authorize")
        fresh = co.auth_challenge("authorize")
        refused_authorize(
            Unauthenticated,
            "card 'vc-2' did not sign this challenge",
            [(vc1.label, vc1.sign(fresh.data)), (vc2.label, vc2.sign(unrelated.data))],
            challenge=fresh,
        )
        refused_authorize(
            Unauthenticated, "wrong password for the CO of partition .vault.", password=dev_password()
        )
        good = co.auth_challenge("authorize")
        tampered = AuthChallenge(good.data, bytes([good.mac[0] ^ 1]) + good.mac[1:], good.expires_ms)
        refused_authorize(Unauthenticated, r"not issued by this cluster \(bad MAC\)", challenge=tampered)
        forged = AuthChallenge(
            good.data.replace(b'"a":"authorize"', b'"a":"reset"'), good.mac, good.expires_ms
        )
        assert forged.data != good.data
        refused_authorize(Unauthenticated, "bad MAC", signed(forged, vc1, vc2), challenge=forged)
        refused_authorize(
            InvalidArgument,
            "issued for reset on 'vault', not authorize",
            challenge=co.auth_challenge("reset"),
        )

        # a challenge works once: authorize, deauthorize, then the same authorize challenge again
        used = co.auth_challenge("authorize")
        assert co.auth_change("AUTHORIZED", used, signed(used, vc2, vc3), vault.co_password) == "AUTHORIZED"
        assert change(co, vault, "ASSOCIATED", "deauthorize", vc1, vc3) == "ASSOCIATED"
        assert co.auth_show() == associated
        refused_authorize(FailedPrecondition, "already used", signed(used, vc2, vc3), challenge=used)
        with pytest.raises(InvalidArgument, match="unknown permission.*key_fly"):
            set_permissions(co, vault, ["key_block", "key_fly"], vc1, vc2)
        assert co.auth_show() == associated

        # reset forgets the set: another set can be bound, and the old cards count no more
        assert change(co, vault, "INITIAL", "reset", vc1, vc3) == "INITIAL"
        assert co.auth_show() == initial
        challenge = co.auth_challenge("associate")
        state = co.auth_change(
            "ASSOCIATED",
            challenge,
            signed(challenge, other),
            vault.co_password,
            card_set=(other_set.set_id, 1, other_set.cards),
        )
        assert state == "ASSOCIATED"
        assert (co.auth_show().set_id, co.auth_show().card_labels) == (
            other_set.set_id,
            ("other-1", "other-2"),
        )
        with pytest.raises(PermissionDenied, match="card 'vc-1' is not in the card set"):
            change(co, vault, "AUTHORIZED", "authorize", vc1, vc2)
        assert change(co, vault, "AUTHORIZED", "authorize", other) == "AUTHORIZED"
    changes = changes_audited(cluster, "node1", 6)
    assert [detail.rsplit(" with cards ", 1)[-1] for detail in changes] == [
        "vc-1, vc-2",  # associate
        "vc-2, vc-3",  # authorize
        "vc-1, vc-3",  # deauthorize
        "vc-1, vc-3",  # reset
        "other-1",  # associate the other set
        "other-1",  # authorize
    ]

    # a partition created without --requires-authorization has no M-of-N state to change
    demo: dict[str, Any] | None = cluster.demo()
    assert demo is not None
    with (
        cluster.app_client() as app,
        app.open_session("demo", demo["partition"]["co_password"], role="CO") as co,
    ):
        assert (co.auth_show().requires_authorization, co.auth_show().state) == (False, "")
        challenge = co.auth_challenge("associate")
        with pytest.raises(FailedPrecondition, match="'demo' was not created to require authorization"):
            co.auth_change(
                "ASSOCIATED",
                challenge,
                signed(challenge, vc1, vc2),
                demo["partition"]["co_password"],
                card_set=vault.spec(),
            )


# --- SESSION_AUTHORIZED and the action table -----------------------------------------------------------------


def test_session_authorization_and_permissions_gate_each_action_as_the_table_says(
    cluster: DevCluster, tmp_path: Path
) -> None:
    vault = set_up_vault(cluster, tmp_path / "cards")
    vc1, vc2, vc3 = vault.cards
    with (
        cluster.app_client() as app,
        app.open_session(PARTITION, vault.co_password, role="CO") as a,
        app.open_session(PARTITION, vault.co_password, role="CO") as b,
    ):
        assert change(a, vault, "ASSOCIATED", "associate", vc1, vc2) == "ASSOCIATED"
        signer = a.generate_key("signer", "EC", "P-256", usage=["sign", "verify"])
        a.generate_key("wrapper", "AES", 256, usage=["wrap", "unwrap"], extractable=True)
        a.generate_key("secret", "AES", 256, usage=["encrypt", "decrypt"], extractable=True)
        a.generate_key("doomed", "AES", 128, usage=["encrypt"])
        a.generate_key("locked", "EC", "P-256", usage=["sign"])
        for session in (a, b):
            with pytest.raises(FailedPrecondition, match=r"key use requires state .*\(now ASSOCIATED\)"):
                session.sign("signer", DATA, mechanism="ECDSA-SHA256")

        # SESSION_AUTHORIZED belongs to session A alone; the partition stays ASSOCIATED
        challenge = a.auth_challenge("session-authorize")
        before = a.token
        state = a.auth_change("SESSION_AUTHORIZED", challenge, signed(challenge, vc2, vc3), vault.co_password)
        assert state == "ASSOCIATED" and a.token != before
        verify_ec(signer.public_der, a.sign("signer", DATA, mechanism="ECDSA-SHA256"))
        with pytest.raises(FailedPrecondition, match=r"\(now ASSOCIATED\)"):
            b.sign("signer", DATA, mechanism="ECDSA-SHA256")
        shown_a, shown_b = a.auth_show(), b.auth_show()
        assert (shown_a.state, shown_a.session_authorized) == ("ASSOCIATED", True)
        assert (shown_b.state, shown_b.session_authorized) == ("ASSOCIATED", False)
        with pytest.raises(
            FailedPrecondition, match=r"key export requires state AUTHORIZED \(now ASSOCIATED\)"
        ):
            a.wrap_key("wrapper", "secret")  # session authorization covers use, not export
        assert a.auth_change("ASSOCIATED", None, [], vault.co_password) == "ASSOCIATED"
        with pytest.raises(FailedPrecondition, match=r"\(now ASSOCIATED\)"):
            a.sign("signer", DATA, mechanism="ECDSA-SHA256")
        assert a.auth_show().session_authorized is False
        session_changes = changes_audited(cluster, "node1", 2)
        assert "session authorized (session-authorize) with cards vc-2, vc-3" in session_changes[-1]

        # ASSOCIATED without permissions: destroy, block and partition removal are refused; export too
        with pytest.raises(PermissionDenied, match="requires the permission Key Destroy"):
            a.destroy_key("doomed")
        with pytest.raises(PermissionDenied, match="requires the permission Key Block"):
            a.block_key("locked")
        with pytest.raises(PermissionDenied, match="requires the permission Partition Remove"):
            remove_vault(cluster)
        with pytest.raises(FailedPrecondition, match=r"requires state AUTHORIZED"):
            a.wrap_key("wrapper", "secret")

        assert set_permissions(a, vault, ["key_block", "partition_remove"], vc1, vc3) == [
            "key_block",
            "partition_remove",
        ]
        assert b.auth_show().permissions == ("key_block", "partition_remove")
        a.destroy_key("doomed")  # Partition Remove implies Key Destroy
        a.block_key("locked")
        assert b.show_key("locked").blocked is True
        assert {k.label for k in b.list_keys()} == {"signer", "wrapper", "secret", "locked"}

        # AUTHORIZED: use yes (not of a blocked key), export only with Key Export, no creation or removal
        assert change(b, vault, "AUTHORIZED", "authorize", vc2, vc3) == "AUTHORIZED"
        verify_ec(signer.public_der, a.sign("signer", DATA, mechanism="ECDSA-SHA256"))
        with pytest.raises(FailedPrecondition, match="'locked' is blocked"):
            a.sign("locked", DATA, mechanism="ECDSA-SHA256")
        with pytest.raises(PermissionDenied, match="requires the permission Key Export"):
            a.wrap_key("wrapper", "secret")
        refusals: list[Callable[[], object]] = [
            lambda: a.destroy_key("signer"),
            lambda: a.block_key("signer"),
            lambda: a.block_key("locked", blocked=False),
            lambda: a.import_key("imported", "AES", bytes(32), usage=["encrypt"]),
        ]
        for refused in refusals:
            with pytest.raises(FailedPrecondition, match=r"requires state .*\(now AUTHORIZED\)"):
                refused()
        with pytest.raises(FailedPrecondition, match=r"partition removal requires state ASSOCIATED"):
            remove_vault(cluster)
        assert set_permissions(a, vault, ["key_export", "key_block", "partition_remove"], vc1, vc2) == [
            "key_block",
            "key_export",
            "partition_remove",
        ]
        assert a.wrap_key("wrapper", "secret")
        with pytest.raises(FailedPrecondition, match="key generation requires state"):
            a.unwrap_key(
                "wrapper", a.wrap_key("wrapper", "secret"), label="back", key_type="AES", usage=["decrypt"]
            )
        assert {k.label for k in b.list_keys()} == {"signer", "wrapper", "secret", "locked"}

        # back to ASSOCIATED: Partition Remove lets the SO remove the partition with all its keys
        assert change(a, vault, "ASSOCIATED", "deauthorize", vc1, vc3) == "ASSOCIATED"
        remove_vault(cluster)
        admin = as_admin(cluster)
        with admin.client:
            assert PARTITION not in {p.name for p in admin.list_partitions()}
        a.keep = b.keep = True  # their partition is gone


# --- a session that gives SESSION_AUTHORIZED back, and a partition change not mistaken for one ---


def test_a_session_that_went_back_to_associated_cannot_use_keys_with_its_earlier_token(
    cluster: DevCluster, tmp_path: Path
) -> None:
    vault = set_up_vault(cluster, tmp_path / "cards")
    vc1, vc2, vc3 = vault.cards
    with cluster.app_client() as app, app.open_session(PARTITION, vault.co_password, role="CO") as a:
        assert change(a, vault, "ASSOCIATED", "associate", vc1, vc2) == "ASSOCIATED"
        a.generate_key("signer", "EC", "P-256", usage=["sign", "verify"])
        assert change(a, vault, "SESSION_AUTHORIZED", "session-authorize", vc2, vc3) == "ASSOCIATED"
        elevated = app.resume_partition(a.token)
        elevated.keep = True  # the same session, holding the token it was given when session-authorized
        assert elevated.sign("signer", DATA, mechanism="ECDSA-SHA256")
        assert a.auth_change("ASSOCIATED", None, [], vault.co_password) == "ASSOCIATED"
        with pytest.raises(FailedPrecondition, match=r"\(now ASSOCIATED\)"):
            a.sign("signer", DATA, mechanism="ECDSA-SHA256")
        assert elevated.auth_show().session_authorized is False
        with pytest.raises(FailedPrecondition, match=r"\(now ASSOCIATED\)"):
            elevated.sign("signer", DATA, mechanism="ECDSA-SHA256")


def test_deauthorize_from_a_session_whose_session_authorization_lapsed_deauthorizes_the_partition(
    cluster: DevCluster, tmp_path: Path
) -> None:
    vault = set_up_vault(cluster, tmp_path / "cards")
    vc1, vc2, vc3 = vault.cards
    with (
        cluster.app_client() as app,
        app.open_session(PARTITION, vault.co_password, role="CO") as a,
        app.open_session(PARTITION, vault.co_password, role="CO") as b,
    ):
        assert change(a, vault, "ASSOCIATED", "associate", vc1, vc2) == "ASSOCIATED"
        assert change(a, vault, "SESSION_AUTHORIZED", "session-authorize", vc2, vc3) == "ASSOCIATED"
        assert change(b, vault, "AUTHORIZED", "authorize", vc1, vc2) == "AUTHORIZED"
        assert a.auth_show().session_authorized is False  # the partition's change ended it
        state = change(a, vault, "ASSOCIATED", "deauthorize", vc1, vc3)
        assert (state, b.auth_show().state) == ("ASSOCIATED", "ASSOCIATED")
