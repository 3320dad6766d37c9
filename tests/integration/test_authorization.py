"""M-of-N partition authorization through real member processes (DOMAIN.md §5): state changes need M cards of
the associated set and the partition password, replicate to every member, survive a full restart and are
audited with the cards used; the action table (state and permission per action) holds over the API; a
refused change leaves the state as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hsmnode.client import (
    AuditRecord,
    AuthChallenge,
    AuthInfo,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
)
from hsmnode.crypto.cards import load_card, new_set
from hsmnode.ops.demo import dev_password
from hsmnode.ops.devcluster import DevCluster
from tests.integration.authorization_support import (
    DATA,
    PARTITION,
    change,
    changes_audited,
    set_permissions,
    set_up_vault,
    signed,
    verify_ec,
)
from tests.integration.helpers import audit_records, eventually

pytestmark = pytest.mark.cluster

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
