"""The request path's caches never let an ended session or a revoked client through (issue 16).

A member keeps each session token's verified claims (sessions.py `verified_claims`) and each
client certificate's facts (server/channels.py `Classifier`). What a token cannot know by itself
is decided against replicated state on every call: each test here uses a token on every member
first (so every member holds it verified), then ends it one way, and sees every member refuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from hsmnode import crypto
from hsmnode.client import HsmClient, Tls, Unauthenticated
from hsmnode.ops.demo import dev_password
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import as_admin, eventually
from tests.integration.test_access import refused

pytestmark = pytest.mark.cluster

NODES = ("node1", "node2", "node3")


def served_everywhere(use: Callable[[str], object]) -> None:
    """`use(member)` answers on every member: each holds the token verified now."""
    for node in NODES:
        eventually(lambda node=node: (use(node), True)[1], 5.0, f"served on {node}")


def refused_everywhere(use: Callable[[str], object], what: str) -> None:
    for node in NODES:
        eventually(partial(refused, partial(use, node)), 5.0, f"{what}: refused on {node}")


def partition_use(cluster: DevCluster, token: str) -> Callable[[str], object]:
    def use(node: str) -> object:
        with cluster.app_client(node) as app:
            return app.resume_partition(token).info()

    return use


def appliance_use(cluster: DevCluster, token: str) -> Callable[[str], object]:
    def use(node: str) -> object:
        with cluster.client(node) as client:
            return client.resume(token).list_users()

    return use


def new_user(cluster: DevCluster, name: str) -> str:
    """An admin-role user who logged in once (initial password changed); its final password."""
    initial, final = dev_password(), dev_password()
    admin = as_admin(cluster)
    with admin.client:
        admin.add_user(name, role="admin", password=initial)
    with cluster.client() as client:
        client.login(name, initial, new_password=final).keep = True
    return final


def test_a_cached_partition_token_ends_with_its_role_password_change(trio: DevCluster) -> None:
    demo = trio.demo()
    assert demo is not None
    part = demo["partition"]
    with trio.app_client() as app:
        cu = app.open_session("demo", part["cu_password"], role="CU")
        cu.keep = True
        use = partition_use(trio, cu.token)
        served_everywhere(use)
        fresh = dev_password()
        app.change_partition_password("demo", "CU", part["cu_password"], fresh)
        try:
            refused_everywhere(use, "CU password changed")
        finally:
            app.change_partition_password("demo", "CU", fresh, part["cu_password"])


def test_a_cached_partition_token_ends_at_logout(trio: DevCluster) -> None:
    demo = trio.demo()
    assert demo is not None
    with trio.app_client("node2") as app:
        co = app.open_session("demo", demo["partition"]["co_password"], role="CO")
        use = partition_use(trio, co.token)
        served_everywhere(use)
        co.logout()
    refused_everywhere(use, "logout")


def test_a_cached_appliance_token_ends_at_lockout_and_when_the_user_is_disabled(trio: DevCluster) -> None:
    password = new_user(trio, "lockee")
    with trio.client() as client:
        first = client.login("lockee", password)
        first.keep = True
        use = appliance_use(trio, first.token)
        served_everywhere(use)
        for _ in range(6):  # the appliance locks a user after 5 failures
            with pytest.raises(Unauthenticated):
                client.login("lockee", dev_password())
    refused_everywhere(use, "lockout")

    password = new_user(trio, "disablee")
    with trio.client() as client:
        second = client.login("disablee", password)
        second.keep = True
    use = appliance_use(trio, second.token)
    served_everywhere(use)
    admin = as_admin(trio)
    with admin.client:
        admin.set_user_enabled("disablee", False)
    refused_everywhere(use, "user disabled")


def test_a_revoked_client_is_refused_and_its_tokens_stay_dead_after_registering_again(
    trio: DevCluster,
) -> None:
    demo = trio.demo()
    assert demo is not None
    pair = crypto.self_signed_client_certificate("cached")
    tls = Tls((trio.root / "ca.pem").read_bytes(), pair.cert_pem, pair.key_pem)

    def own(node: str) -> HsmClient:
        return HsmClient([trio.member(node).grpc], tls, timeout=5.0)

    admin = as_admin(trio, "node1")
    with admin.client:
        admin.register_client("cached", pair.cert_pem.decode())
        admin.assign_client("cached", "demo")
        with own("node1") as client:
            session = eventually(
                lambda: client.open_session("demo", demo["partition"]["co_password"], role="CO"),
                5.0,
                "session",
            )
            session.keep = True

        def use(node: str) -> object:
            with own(node) as client:
                return client.resume_partition(session.token).info()

        served_everywhere(use)
        admin.revoke_client("cached")
        refused_everywhere(use, "client revoked")
        admin.register_client("cached", pair.cert_pem.decode())
        admin.assign_client("cached", "demo")
        with own("node3") as client:  # registered again: new sessions open ...
            eventually(
                lambda: (
                    client.open_session("demo", demo["partition"]["co_password"], role="CO").logout(),
                    True,
                )[1],
                5.0,
                "a new session after registering again",
            )
        refused_everywhere(use, "a token of the earlier registration")  # ... the old token stays dead
        admin.revoke_client("cached")
