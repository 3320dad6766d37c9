"""The M-of-N vault the authorization tests share (DOMAIN.md §5): a partition with online
authorization on and a 2-of-3 card set, and the steps that change or read its state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hsmnode.client import (
    AuthChallenge,
    PartitionSession,
)
from hsmnode.crypto.cards import CardFile, CardSetFile, load_card, new_set
from hsmnode.ops.demo import dev_password
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import as_admin, audit_records, eventually

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
