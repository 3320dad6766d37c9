"""Taking a member out of a cluster as an operator would: a leader hands leadership over first,
then another member removes it (a member never sees its own removal commit)."""

from __future__ import annotations

import contextlib
import time

from hsmnode.client._client import HsmClient
from hsmnode.client._errors import FailedPrecondition, NotFound, ResourceExhausted
from hsmnode.client._profile import Tls


def remove_member(
    endpoints: list[str], tls: Tls, member_id: str, admin: tuple[str, str], timeout: float = 30.0
) -> list[str]:
    """Remove `member_id` (live or dead) through the cluster at `endpoints`; returns the remaining
    member ids. Retries while leadership moves or another membership change is in progress."""
    with HsmClient(endpoints, tls, timeout=timeout) as probe:
        status = probe.cluster_status()
    members = {m.id: m.address for m in status.members}
    if member_id not in members:
        raise NotFound(f"no member '{member_id}' (members: {', '.join(sorted(members))})")
    if status.leader == member_id:
        # asked of the leader itself, the removal hands leadership over and says so
        with (
            HsmClient([members[member_id]], tls, timeout=timeout, discover=False) as itself,
            contextlib.suppress(FailedPrecondition),
        ):
            itself.login(*admin).remove_member(member_id)
    others = [address for mid, address in members.items() if mid != member_id]
    deadline = time.monotonic() + timeout
    with HsmClient(others, tls, timeout=timeout, discover=False) as client:
        session = client.login(*admin)
        while True:
            try:
                return session.remove_member(member_id)
            except (FailedPrecondition, ResourceExhausted):
                # leadership still moving, or a membership change in progress
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
