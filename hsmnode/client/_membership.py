"""Taking a member out of a cluster as an operator would, through any member and any profile.

A member never sees its own removal commit and a Raft leader cannot remove itself, so:
the leader, asked to remove itself, hands leadership over first; then another member
removes it. Every attempt carries one request id, so a retry after a lost answer or a
leader change answers the first outcome, and a removal that already took effect (or a
half-done one, which the member completes) answers success.
"""

from __future__ import annotations

import contextlib
import time

from hsmnode.client._appliance import ApplianceSession
from hsmnode.client._client import HsmClient
from hsmnode.client._errors import (
    FailedPrecondition,
    HsmError,
    OutcomeUnknown,
    ResourceExhausted,
    Unavailable,
)
from hsmnode.client._outcome import new_request_id
from hsmnode.client._profile import Tls

# refusal reasons of RemoveMember (hsmnode/service/membership.py)
ASK_ANOTHER_MEMBER = "ask-another-member"
TARGET_LEADS = "target-leads"
_RETRYABLE = (ResourceExhausted, OutcomeUnknown, Unavailable)


def remove_member(
    endpoints: list[str],
    tls: Tls,
    member_id: str,
    admin: tuple[str, str] | str,
    timeout: float = 30.0,
    *,
    cluster_id: str = "",
) -> list[str]:
    """Remove `member_id` (live, dead, or half-removed) through the cluster at `endpoints`; returns the
    remaining member ids. `admin`: (user, password), or the token of an admin's appliance session.

    Retries until `timeout` (seconds) while leadership moves, another membership change runs or
    no leader is elected. Raises NotFound for an unknown id, FailedPrecondition for the last
    member, OutcomeUnknown when the removal may still be completing at the deadline.
    """
    deadline = time.monotonic() + timeout
    request_id = new_request_id()
    with HsmClient(endpoints, tls, timeout=timeout, cluster_id=cluster_id) as probe:
        status = probe.cluster_status()
    # a member the status does not show may still be a removal that took effect (the members answer
    # success) or an unknown id (they answer NOT_FOUND)
    members = {m.id: m.address for m in status.members}
    others = [m.address for m in status.members if m.id != member_id and m.listed and m.address]
    if not others:
        raise FailedPrecondition(
            f"member '{member_id}' is the last member of the cluster and cannot be removed: "
            "add another member first, or stop it"
        )
    with HsmClient(others, tls, timeout=max(1.0, deadline - time.monotonic()), discover=False) as client:
        session = _session(client, admin)
        while True:
            try:
                return session.remove_member(member_id, request_id=request_id)
            except FailedPrecondition as exc:
                if exc.reason == TARGET_LEADS and members.get(member_id):
                    _hand_over(members[member_id], tls, member_id, admin)
                elif exc.reason != ASK_ANOTHER_MEMBER:
                    raise
                last: HsmError = exc
            except _RETRYABLE as exc:
                last = exc
            if time.monotonic() > deadline:
                raise last
            time.sleep(0.2)


def _session(client: HsmClient, admin: tuple[str, str] | str) -> ApplianceSession:
    session = client.resume(admin) if isinstance(admin, str) else client.login(*admin)
    session.keep = True
    return session


def _hand_over(address: str, tls: Tls, member_id: str, admin: tuple[str, str] | str) -> None:
    """Ask the leading target to remove itself: it hands leadership over and refuses (as it should).
    A target that cannot answer (dead, or already out of the directory) is left to the election or
    to the leader's reconciler, which hands over when the directory no longer lists it."""
    with (
        HsmClient([address], tls, timeout=5.0, discover=False) as itself,
        contextlib.suppress(HsmError),
    ):
        _session(itself, admin).remove_member(member_id)
