"""M-of-N partition authorization (DOMAIN.md §5): the tables checked row by row against
testdata/ (like etcd's quorum/testdata), then the card rules through apply with real signatures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519 as ced

from hsmnode.domain import commands as c
from hsmnode.domain import ed25519, mofn
from hsmnode.domain.apply import apply
from hsmnode.domain.errors import DomainError, ErrorCode
from tests.unit.world import World, with_partition

DATA = Path(__file__).parent / "testdata"


def rows(name: str) -> list[list[str]]:
    return [
        line.split()
        for line in (DATA / name).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


@pytest.mark.parametrize(("current", "target", "outcome"), rows("authorization_transitions.txt"))
def test_transition_table(current: str, target: str, outcome: str) -> None:
    if outcome == "refused":
        with pytest.raises(DomainError) as info:
            mofn.check_transition("pay", mofn.AuthState(current), mofn.AuthState(target))
        assert info.value.code is ErrorCode.FAILED_PRECONDITION
        assert f"(now {current}" in info.value.message
    else:
        assert mofn.check_transition("pay", mofn.AuthState(current), mofn.AuthState(target)) == outcome


GRANTED = {
    "none": frozenset(),
    "all": frozenset(mofn.PERMISSIONS),
    **{p: frozenset({p}) for p in mofn.PERMISSIONS},
}


@pytest.mark.parametrize(("action", "state", "granted", "outcome"), rows("authorization_actions.txt"))
def test_action_table(action: str, state: str, granted: str, outcome: str) -> None:
    if outcome == "allowed":
        mofn.check_action("pay", action, mofn.AuthState(state), GRANTED[granted])
        return
    with pytest.raises(DomainError) as info:
        mofn.check_action("pay", action, mofn.AuthState(state), GRANTED[granted])
    if outcome == "state":
        assert info.value.code is ErrorCode.FAILED_PRECONDITION and f"(now {state})" in info.value.message
    else:
        assert (
            info.value.code is ErrorCode.PERMISSION_DENIED and "requires the permission" in info.value.message
        )


def test_pure_ed25519_agrees_with_the_cryptography_library() -> None:
    for _ in range(5):
        key = ced.Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes_raw()
        message = os.urandom(50)
        signature = key.sign(message)
        assert ed25519.verify(public, message, signature)
        assert not ed25519.verify(public, message + b"!", signature)
        assert not ed25519.verify(public, message, signature[:63] + bytes([signature[63] ^ 1]))
        assert not ed25519.verify(public, message, signature[:40])


# --- through apply --------------------------------------------------------------------------


class Cards:
    """A card set as `hsmnode card new-set` writes it, kept in memory."""

    def __init__(self, n: int, m: int, prefix: str = "card") -> None:
        self.keys = [ced.Ed25519PrivateKey.generate() for _ in range(n)]
        self.labels = [f"{prefix}-{i + 1}" for i in range(n)]
        self.m = m

    def public(self) -> tuple[bytes, ...]:
        return tuple(k.public_key().public_bytes_raw() for k in self.keys)

    def sign(self, challenge: bytes, which: list[int]) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
        return tuple(self.labels[i] for i in which), tuple(self.keys[i].sign(challenge) for i in which)


def challenge(w: World, action: str, nonce: str = "", partition: str = "vault", ttl: int = 60_000) -> bytes:
    nonce = nonce or os.urandom(8).hex()
    data = {"p": partition, "a": action, "n": nonce, "i": w.now, "x": w.now + ttl}
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def with_vault() -> World:
    w = with_partition()
    w.ok(c.PartitionCreate, w.hsm_role("admin", "SO"), name="vault", requires_authorization=True)
    w.ok(c.ClientAssign, w.user("admin"), name="app", partition="vault")
    w.ok(c.PartitionInit, w.client(), name="vault", label="v", cloning_domain="d", po_password_hash="hash:po")
    w.ok(
        c.PartitionRoleInit,
        w.partition_session("vault", "PO"),
        name="vault",
        role="CO",
        password_hash="hash:co",
    )
    w.set_own_password(w.client(), "partition:vault:CO")
    return w


def change(
    w: World,
    target: str,
    cards: Cards,
    which: list[int],
    *,
    associate: bool = False,
    ch: bytes | None = None,
    epoch: int | None = None,
) -> c.AuthChange:
    action = {
        "ASSOCIATED": "associate" if associate else "deauthorize",
        "AUTHORIZED": "authorize",
        "INITIAL": "reset",
        "SESSION_AUTHORIZED": "session-authorize",
    }[target]
    ch = ch or challenge(w, action)
    labels, signatures = cards.sign(ch, which)
    extra: dict[str, object] = {}
    if associate:
        extra = {
            "set_id": "set-1",
            "threshold": cards.m,
            "set_labels": tuple(cards.labels),
            "set_public_keys": cards.public(),
        }
    co_epoch = w.state.partitions["vault"].roles["CO"].epoch if epoch is None else epoch
    return c.AuthChange(
        actor=w.partition_session("vault", "CO"),
        request_id=os.urandom(6).hex(),
        timestamp=w.now + 1,
        partition="vault",
        target=target,
        challenge=ch,
        card_labels=labels,
        signatures=signatures,
        verified_epoch=co_epoch,
        **extra,  # type: ignore[arg-type]
    )


def auth(w: World) -> str:
    authorization = w.state.partitions["vault"].authorization
    assert authorization is not None
    return authorization.state


def test_associate_with_m_cards_of_the_new_set_and_audit_names_the_cards() -> None:
    w, cards = with_vault(), Cards(3, 2)
    result = apply(w.state, change(w, "ASSOCIATED", cards, [0, 2], associate=True))
    assert result.ok and auth(w) == "ASSOCIATED"
    assert w.state.audit_records()[-1].detail.endswith("with cards card-1, card-3")


@pytest.mark.parametrize(
    ("which", "code", "message"),
    [
        ([0], ErrorCode.PERMISSION_DENIED, "needs 2 cards of its set; 1 presented"),
        ([0, 0], ErrorCode.INVALID_ARGUMENT, "presented twice"),
    ],
)
def test_too_few_or_repeated_cards_are_refused_and_nothing_changes(
    which: list[int], code: ErrorCode, message: str
) -> None:
    w, cards = with_vault(), Cards(3, 2)
    apply(w.state, change(w, "ASSOCIATED", cards, [0, 1], associate=True))
    before = w.state.partitions["vault"].to_data()
    result = apply(w.state, change(w, "INITIAL", cards, which))
    assert result.code is code and message in result.message
    assert w.state.partitions["vault"].to_data() == before


def test_card_from_another_set_or_a_bad_signature_is_refused() -> None:
    w, cards, other = with_vault(), Cards(3, 2), Cards(3, 2, prefix="other")
    apply(w.state, change(w, "ASSOCIATED", cards, [0, 1], associate=True))
    foreign = apply(w.state, change(w, "INITIAL", other, [0, 1]))
    assert foreign.code is ErrorCode.PERMISSION_DENIED and "not in the card set" in foreign.message
    cmd = change(w, "INITIAL", cards, [0, 1])
    forged = c.AuthChange(**{**cmd.__dict__, "signatures": (cmd.signatures[0], cmd.signatures[0])})
    result = apply(w.state, forged)
    assert result.code is ErrorCode.UNAUTHENTICATED and "did not sign this challenge" in result.message
    assert auth(w) == "ASSOCIATED"


def test_replayed_and_stale_challenges_are_refused() -> None:
    w, cards = with_vault(), Cards(2, 2)
    apply(w.state, change(w, "ASSOCIATED", cards, [0, 1], associate=True))
    w.ok(
        c.PartitionPolicySet,
        w.partition_session("vault", "PO"),
        name="vault",
        policy="online_authorization",
        value=1,
    )
    ch = challenge(w, "authorize", nonce="n-1")
    assert apply(w.state, change(w, "AUTHORIZED", cards, [0, 1], ch=ch)).ok
    replay = apply(
        w.state, change(w, "ASSOCIATED", cards, [0, 1], ch=challenge(w, "deauthorize", nonce="n-1"))
    )
    assert replay.code is ErrorCode.FAILED_PRECONDITION and "already used" in replay.message
    stale = challenge(w, "deauthorize", ttl=-1)
    result = apply(w.state, change(w, "ASSOCIATED", cards, [0, 1], ch=stale))
    assert result.code is ErrorCode.FAILED_PRECONDITION and "stale" in result.message
    assert auth(w) == "AUTHORIZED"


def test_challenge_for_another_action_or_partition_is_refused() -> None:
    w, cards = with_vault(), Cards(2, 1)
    result = apply(w.state, change(w, "ASSOCIATED", cards, [0], associate=True, ch=challenge(w, "reset")))
    assert result.code is ErrorCode.FAILED_PRECONDITION and "cannot reset (now INITIAL" in result.message
    other = challenge(w, "associate", partition="pay")
    result = apply(w.state, change(w, "ASSOCIATED", cards, [0], associate=True, ch=other))
    assert result.code is ErrorCode.INVALID_ARGUMENT and "issued for associate on 'pay'" in result.message


def test_deauthorize_in_initial_is_a_transition_error_not_a_card_set_error() -> None:
    """Issue 11, failure 5: the action asked for (the challenge's) must be the transition's."""
    w, cards = with_vault(), Cards(2, 1)
    result = apply(w.state, change(w, "ASSOCIATED", cards, [0]))
    assert result.code is ErrorCode.FAILED_PRECONDITION
    assert "cannot deauthorize (now INITIAL" in result.message and "from INITIAL: associate" in result.message
    assert auth(w) == "INITIAL"


def session_change(
    w: World, target: str, cards: Cards, grant: dict[str, object], action: str = ""
) -> c.AuthChange:
    """A change proposed for a session whose token carries the SESSION_AUTHORIZED `grant`."""
    cmd = change(w, target, cards, [0], ch=challenge(w, action) if action else None)
    return c.AuthChange(**{**cmd.__dict__, **grant})


def test_a_session_authorized_session_starts_its_changes_from_session_authorized() -> None:
    """DOMAIN.md §5: SESSION_AUTHORIZED -> SESSION_AUTHORIZED is refused, -> ASSOCIATED gives the grant back."""
    w, cards = with_vault(), Cards(2, 1)
    apply(w.state, change(w, "ASSOCIATED", cards, [0], associate=True))
    elevated = apply(w.state, change(w, "SESSION_AUTHORIZED", cards, [0]))
    grant = {
        "session_grant": elevated.value["grant_id"],
        "session_auth_epoch": elevated.value["auth_epoch"],
        "session_expires": w.now + 60_000,
    }
    again = apply(w.state, session_change(w, "SESSION_AUTHORIZED", cards, grant))
    assert again.code is ErrorCode.FAILED_PRECONDITION
    assert "cannot go from SESSION_AUTHORIZED to SESSION_AUTHORIZED" in again.message
    back = apply(w.state, session_change(w, "ASSOCIATED", cards, grant))
    assert back.ok and auth(w) == "ASSOCIATED"
    auth_state = w.state.partitions["vault"].authorization
    assert auth_state is not None and grant["session_grant"] in auth_state.revoked_sessions
    assert "SESSION_AUTHORIZED -> ASSOCIATED (session-deauthorize)" in w.state.audit_records()[-1].detail
    # the grant given back, the session is ASSOCIATED again: another deauthorize has nowhere to go
    refused = apply(w.state, session_change(w, "ASSOCIATED", cards, grant))
    assert refused.code is ErrorCode.FAILED_PRECONDITION and "ASSOCIATED to ASSOCIATED" in refused.message


def test_the_one_gate_counts_a_session_grant_for_key_use_only_while_it_holds() -> None:
    """mofn.gate serves apply and the read path alike; session_authorized is the caller's own grant."""
    w, cards = with_vault(), Cards(2, 1)
    apply(w.state, change(w, "ASSOCIATED", cards, [0], associate=True))
    with pytest.raises(DomainError) as info:
        mofn.gate(w.state, "partition:vault", "use")
    assert info.value.code is ErrorCode.FAILED_PRECONDITION and "requires state" in info.value.message
    mofn.gate(w.state, "partition:vault", "use", session_authorized=True)
    with pytest.raises(DomainError):  # export needs AUTHORIZED: a session grant does not stand in for it
        mofn.gate(w.state, "partition:vault", "export", session_authorized=True)
    mofn.gate(w.state, "partition:pay", "export")  # not an M-of-N partition: the gate has nothing to say
    elevated = apply(w.state, change(w, "SESSION_AUTHORIZED", cards, [0]))
    vault = w.state.partitions["vault"].authorization
    assert vault is not None
    grant, epoch = str(elevated.value["grant_id"]), int(elevated.value["auth_epoch"])
    assert mofn.grant_holds(vault, grant, epoch)
    assert not mofn.grant_holds(vault, grant, epoch + 1) and not mofn.grant_holds(vault, "", epoch)
    given_back = session_change(
        w,
        "ASSOCIATED",
        cards,
        {"session_grant": grant, "session_auth_epoch": epoch, "session_expires": w.now + 60_000},
    )
    assert apply(w.state, given_back).ok
    assert not mofn.grant_holds(vault, grant, epoch)


def test_the_local_console_sets_authorized_without_online_authorization() -> None:
    """DOMAIN.md §5: the online path is the additional one; the member's console needs no policy."""
    w, cards = with_vault(), Cards(2, 1)
    apply(w.state, change(w, "ASSOCIATED", cards, [0], associate=True))
    online = apply(w.state, change(w, "AUTHORIZED", cards, [0]))
    assert online.code is ErrorCode.FAILED_PRECONDITION and "online_authorization" in online.message
    at_console = c.AuthChange(**{**change(w, "AUTHORIZED", cards, [0]).__dict__, "actor": "console:node1"})
    result = apply(w.state, at_console)
    assert result.ok and auth(w) == "AUTHORIZED"
    assert "at the local console of node1" in w.state.audit_records()[-1].detail
    session = c.AuthChange(
        **{**change(w, "SESSION_AUTHORIZED", cards, [0]).__dict__, "actor": "console:node1"}
    )
    refused = apply(w.state, session)
    assert refused.code is ErrorCode.FAILED_PRECONDITION and "set online only" in refused.message


def test_wrong_partition_password_epoch_is_refused() -> None:
    w, cards = with_vault(), Cards(2, 1)
    result = apply(w.state, change(w, "ASSOCIATED", cards, [0], associate=True, epoch=99))
    assert result.code is ErrorCode.UNAVAILABLE and auth(w) == "INITIAL"


def test_online_authorized_needs_the_policy() -> None:
    w, cards = with_vault(), Cards(2, 1)
    apply(w.state, change(w, "ASSOCIATED", cards, [0], associate=True))
    result = apply(w.state, change(w, "AUTHORIZED", cards, [0]))
    assert result.code is ErrorCode.FAILED_PRECONDITION and "online_authorization" in result.message


@pytest.mark.parametrize(("m", "n"), [(0, 3), (4, 3)])
def test_threshold_outside_1_to_n_is_refused(m: int, n: int) -> None:
    w, cards = with_vault(), Cards(n, max(m, 1))
    cards.m = m
    result = apply(w.state, change(w, "ASSOCIATED", cards, [0, 1, 2][: max(1, min(m, n))], associate=True))
    assert result.code is ErrorCode.INVALID_ARGUMENT and "threshold M must be 1-3" in result.message


def test_session_authorize_changes_no_replicated_state_but_consumes_the_challenge() -> None:
    w, cards = with_vault(), Cards(2, 1)
    apply(w.state, change(w, "ASSOCIATED", cards, [0], associate=True))
    epoch = w.state.partitions["vault"].authorization.epoch  # type: ignore[union-attr]
    result = apply(w.state, change(w, "SESSION_AUTHORIZED", cards, [0]))
    assert result.ok and result.value["auth_epoch"] == epoch and auth(w) == "ASSOCIATED"


def test_no_key_is_created_or_removed_while_authorized_and_permissions_gate_destroy() -> None:
    w, cards = with_vault(), Cards(2, 1)
    apply(w.state, change(w, "ASSOCIATED", cards, [0], associate=True))
    co = w.partition_session("vault", "CO")
    key = {
        "container": "partition:vault",
        "label": "k",
        "key_type": "EC",
        "size": "P-256",
        "object_class": "private",
        "extractable": False,
        "usage": ("sign",),
        "wrapped": b"w",
        "public_der": b"p",
        "origin": "generated",
    }
    w.ok(c.KeyCreate, co, object_id="a" * 32, **key)  # type: ignore[arg-type]
    refused = w.apply(c.KeyDestroy, co, container="partition:vault", object_id="a" * 32)
    assert refused.code is ErrorCode.PERMISSION_DENIED and "Key Destroy" in refused.message
    ch = challenge(w, "permissions")
    labels, sigs = cards.sign(ch, [0])
    co_epoch = w.state.partitions["vault"].roles["CO"].epoch
    w.ok(
        c.AuthSetPermissions,
        co,
        partition="vault",
        permissions=("partition_remove",),
        challenge=ch,
        card_labels=labels,
        signatures=sigs,
        verified_epoch=co_epoch,
    )
    assert w.state.audit_records()[-1].detail.startswith(
        "partition 'vault': permissions set to Partition Remove"
    )
    w.ok(
        c.PartitionPolicySet,
        w.partition_session("vault", "PO"),
        name="vault",
        policy="online_authorization",
        value=1,
    )
    apply(w.state, change(w, "AUTHORIZED", cards, [0]))
    created = w.apply(c.KeyCreate, co, object_id="b" * 32, **{**key, "label": "k2"})  # type: ignore[arg-type]
    assert (
        created.code is ErrorCode.FAILED_PRECONDITION and "key generation requires state" in created.message
    )
    destroyed = w.apply(c.KeyDestroy, co, container="partition:vault", object_id="a" * 32)
    assert destroyed.code is ErrorCode.FAILED_PRECONDITION and "(now AUTHORIZED)" in destroyed.message
