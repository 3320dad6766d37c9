"""M-of-N partition authorization through real member processes (DOMAIN.md §5), per session: the
action table (state and permission per action) holds over the API; a session that went back to
associated cannot use keys with its earlier token (the cluster-wide state: test_authorization.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hsmnode.client import (
    FailedPrecondition,
    PermissionDenied,
)
from hsmnode.ops.devcluster import DevCluster
from tests.integration.authorization_support import (
    DATA,
    PARTITION,
    change,
    changes_audited,
    remove_vault,
    set_permissions,
    set_up_vault,
    signed,
    verify_ec,
)
from tests.integration.helpers import as_admin

pytestmark = pytest.mark.cluster

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
