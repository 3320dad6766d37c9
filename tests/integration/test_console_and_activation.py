"""The member's local console (Dinamo; DOMAIN.md §5) and Luna's activation lifetime (DOMAIN.md §3),
through a real cluster: a console change with the cards needs no online_authorization and
replicates; activation is lost on a member that restarts unless auto_activation is on, and
auto-activation still needs a first activation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from hsmnode.client import (
    ConsoleClient,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from hsmnode.crypto.cards import load_card, new_set
from hsmnode.ops.demo import dev_password
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import console_pb2
from tests.integration.helpers import as_admin, eventually, new_partition

pytestmark = pytest.mark.cluster

HSMNODE = [sys.executable, "-m", "hsmnode"]
DATA = b"release payment batch 9"


def socket_of(cluster: DevCluster, member: str) -> Path:
    return cluster.member(member).data_dir / "console.sock"


def restart(cluster: DevCluster, member: str) -> None:
    cluster.stop(member)
    cluster.start(member)
    cluster.wait_for_leader(timeout=30.0)


# --- the local console (DOMAIN.md §5) ----------------------------------------------------------------


def test_the_local_console_authorizes_without_online_authorization_and_the_change_replicates(
    trio: DevCluster, tmp_path: Path
) -> None:
    pw = new_partition(trio, "dinamo", requires_authorization=True)
    card_set = new_set(3, 2, "dc", tmp_path)
    c1, c2, c3 = (tmp_path / f"{label}.card" for label, _ in card_set.cards)
    spec = (card_set.set_id, card_set.threshold, card_set.cards)
    with trio.app_client("node2") as app, app.open_session("dinamo", pw["co"], role="CO") as co:
        challenge = co.auth_challenge("associate")
        signed = [(load_card(p).label, load_card(p).sign(challenge.data)) for p in (c1, c2)]
        assert co.auth_change("ASSOCIATED", challenge, signed, pw["co"], card_set=spec) == "ASSOCIATED"
        key = co.generate_key("dinamo-sig", "Ed25519", "255", usage=["sign"])
        challenge = co.auth_challenge("authorize")
        signed = [(load_card(p).label, load_card(p).sign(challenge.data)) for p in (c2, c3)]
        with pytest.raises(
            FailedPrecondition, match="online only with the partition policy online_authorization"
        ):
            co.auth_change("AUTHORIZED", challenge, signed, pw["co"])
    # at node1's console, with the cards and the partition password (from a file): no policy needed
    secret = tmp_path / "dinamo.pw"
    secret.write_text(pw["co"] + "\n")
    done = subprocess.run(
        [
            *HSMNODE,
            "console",
            "authorize",
            "dinamo",
            "--card",
            str(c1),
            "--card",
            str(c3),
            "--password-file",
            str(secret),
            "--socket",
            str(socket_of(trio, "node1")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "AUTHORIZED" in done.stdout
    with trio.app_client("node3") as app, app.open_session("dinamo", pw["cu"], role="CU") as cu:
        assert eventually(lambda: cu.auth_show().state == "AUTHORIZED", 5.0, "AUTHORIZED on node3")
        assert cu.sign(key.id, DATA, mechanism="Ed25519")
    with ConsoleClient(socket_of(trio, "node3")) as console:
        assert console.show("dinamo").state == "AUTHORIZED"
        challenge = console.challenge("dinamo", "deauthorize")
        signed = [(load_card(p).label, load_card(p).sign(challenge.data)) for p in (c2, c3)]
        assert console.change("dinamo", "ASSOCIATED", challenge, signed, pw["co"]) == "ASSOCIATED"
    audit_detail = "ASSOCIATED -> AUTHORIZED (authorize) at the local console of node1 with cards dc-1, dc-3"
    auditor_records = audit_details(trio)
    assert any(audit_detail in d for d in auditor_records)


def audit_details(cluster: DevCluster) -> list[str]:
    from tests.integration.helpers import audit_records

    return [r.detail for r in audit_records(cluster, "node1") if r.command == "auth.change"]


def test_bad_console_requests_are_refused_and_change_nothing(trio: DevCluster, tmp_path: Path) -> None:
    pw = new_partition(trio, "consoled", requires_authorization=True)
    plain = new_partition(trio, "plain")
    card_set = new_set(2, 2, "bc", tmp_path)
    cards = [load_card(tmp_path / f"{label}.card") for label, _ in card_set.cards]
    spec = (card_set.set_id, card_set.threshold, card_set.cards)
    with pytest.raises(Unavailable, match="no console socket"):
        ConsoleClient(tmp_path / "nowhere.sock")
    with ConsoleClient(socket_of(trio, "node2")) as console:

        def change(target: str, action: str, *signers: Any, password: str = pw["co"], **extra: Any) -> str:
            challenge = console.challenge("consoled", action)
            signed = [(card.label, card.sign(challenge.data)) for card in signers]
            return console.change("consoled", target, challenge, signed, password, **extra)

        with pytest.raises(NotFound, match="no partition 'ghost'"):
            console.challenge("ghost", "authorize")
        with pytest.raises(FailedPrecondition, match="not created to require authorization"):
            console.challenge("plain", "associate")
        with pytest.raises(InvalidArgument, match="SESSION_AUTHORIZED belongs to a session"):
            console.challenge("consoled", "session-authorize")
        with pytest.raises(FailedPrecondition, match="cannot go from INITIAL to AUTHORIZED"):
            change("AUTHORIZED", "authorize", *cards)
        with pytest.raises(Unauthenticated, match="wrong password"):
            change("ASSOCIATED", "associate", *cards, password=dev_password(), card_set=spec)
        with pytest.raises(PermissionDenied, match="needs 2 cards of its set; 1 presented"):
            change("ASSOCIATED", "associate", cards[0], card_set=spec)
        assert console.show("consoled").state == "INITIAL"
    # the wrong password counted as a failed CO login, cluster-wide
    assert next(r for r in trio_partition(trio, "consoled").roles if r.role == "CO").failed_logins == 1
    with trio.app_client() as app, app.open_session("consoled", pw["co"], role="CO") as co:
        assert co.auth_show().state == "INITIAL"
    del plain


def trio_partition(cluster: DevCluster, name: str) -> Any:
    admin = as_admin(cluster)
    with admin.client:
        return admin.show_partition(name)


def test_the_console_is_not_served_on_the_tls_port(trio: DevCluster) -> None:
    with trio.client() as admin:
        raw = admin._channel(trio.members[0].grpc).unary_unary(
            "/hsmnode.pb.Console/Show", request_serializer=console_pb2.ConsoleShowRequest.SerializeToString
        )
        with pytest.raises(grpc.RpcError) as info:
            raw(console_pb2.ConsoleShowRequest(partition="demo"), timeout=5)
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert oct(os.stat(socket_of(trio, "node1")).st_mode & 0o777) == "0o600"


# --- activation lifetime (DOMAIN.md §3, Luna) ----------------------------------------------------------


def test_activation_is_lost_on_a_member_that_restarts_unless_auto_activation_is_on(trio: DevCluster) -> None:
    pw = new_partition(trio, "ped")
    with trio.app_client() as app:
        with app.open_session("ped", pw["po"], role="PO") as po:
            po.set_policy("activation_required", 1)
            po.set_policy("auto_activation", 1)
        # auto-activation keeps an activation; it does not replace the first one
        with pytest.raises(FailedPrecondition, match="requires activation.*does not replace the first one"):
            app.open_session("ped", pw["cu"], role="CU")
        with app.open_session("ped", pw["po"], role="PO") as po:
            po.set_policy("auto_activation", 0)
        app.activate_partition("ped", pw["co"])
        with app.open_session("ped", pw["co"], role="CO") as co:
            key = co.generate_key("ped-sig", "Ed25519", "255", usage=["sign"])
    with trio.app_client("node2") as on2:
        cu = on2.open_session("ped", pw["cu"], role="CU")
        cu.keep = True
        assert cu.sign(key.id, DATA, mechanism="Ed25519")
    restart(trio, "node2")
    with trio.app_client("node2") as on2:
        with pytest.raises(FailedPrecondition, match="lost it when it restarted"):
            on2.open_session("ped", pw["cu"], role="CU")
        held = on2.resume_partition(cu.token, "ped", "CU")
        held.keep = True
        with pytest.raises(FailedPrecondition, match="lost it when it restarted"):
            held.sign(key.id, DATA, mechanism="Ed25519")
        assert not next(s for s in on2.list_slots().slots if s.partition == "ped").activated
    with trio.app_client("node1") as on1:  # a member that kept running keeps the activation
        assert on1.resume_partition(cu.token, "ped", "CU").sign(key.id, DATA, mechanism="Ed25519")
    with trio.app_client() as app:
        app.activate_partition("ped", pw["co"])  # the CO activates again: every member holds it
        with app.open_session("ped", pw["po"], role="PO") as po:
            po.set_policy("auto_activation", 1)
    restart(trio, "node3")
    with trio.app_client("node3") as on3, on3.open_session("ped", pw["cu"], role="CU") as cu3:
        assert cu3.sign(key.id, DATA, mechanism="Ed25519")  # auto_activation: kept across the restart
