"""`hsmnode cluster join`: a node joins a cluster, and the cluster overwrites it (DOMAIN.md §2).

Nothing is lost silently: the report says which of the joiner's users, custom roles,
partitions and keyrings (with the keys each holds) the cluster's state replaces; a
joiner holding keys, in a partition or a keyring, is refused unless forced; the
joiner archives its data dir before it adopts the cluster's identity; the report
goes to the cluster's audit log.

A member removed from a cluster joins it again the same way: it needs no login of
its own (it serves no client), the cluster's sealed bundle authorizes it; it
archives its data dir, drops its Raft state and comes back as a fresh member.

Order (pysyncobj's): the cluster adds the member first, then the joiner wipes its
Raft files and restarts with every member as a peer, so it never campaigns on its
own against the cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hsmnode.client import (
    ApplianceSession,
    FailedPrecondition,
    HsmClient,
    HsmError,
    InvalidArgument,
    NodeStatus,
    OutcomeUnknown,
    Tls,
    Unavailable,
    new_request_id,
)


@dataclass
class JoinReport:
    node: str
    cluster_id: str
    users: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    keys: int = 0  # keys in the joiner's partitions and keyrings
    keyrings: dict[str, int] = field(default_factory=dict)  # keyring label -> keys it holds
    partition_keys: dict[str, int] = field(default_factory=dict)  # partition name -> keys it holds
    archive: str = ""
    joined: bool = False
    rejoin: bool = False  # a member removed from this cluster joined it again

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "cluster_id": self.cluster_id,
            "overwritten": {
                "users": self.users,
                "roles": self.roles,
                "partitions": self.partitions,
                "partition_keys": self.partition_keys,
                "keyrings": self.keyrings,
                "keys": self.keys,
            },
            "archive": self.archive,
            "joined": self.joined,
            "rejoin": self.rejoin,
        }

    def holders(self) -> str:
        """The partitions and keyrings that hold keys, with their counts."""
        held = [f"partition {n} ({k})" for n, k in sorted(self.partition_keys.items()) if k]
        held += [f"keyring {n} ({k})" for n, k in sorted(self.keyrings.items()) if k]
        return ", ".join(held)

    def summary(self) -> str:
        if self.rejoin:
            return f"{self.node}, removed from {self.cluster_id}, joined it again; its data is archived"
        rings = ", ".join(f"{n} ({k} key(s))" for n, k in sorted(self.keyrings.items()))
        return (
            f"join of {self.node} into {self.cluster_id} overwrote users [{', '.join(self.users)}], "
            f"roles [{', '.join(self.roles)}], partitions [{', '.join(self.partitions)}], keyrings [{rings}] "
            f"holding {self.keys} key(s)"
        )


def _state(
    admin: ApplianceSession,
) -> tuple[dict[str, str], dict[str, tuple[str, ...]], dict[str, int], dict[str, int]]:
    users = {u.name: u.role for u in admin.list_users()}
    roles = {r.name: r.commands for r in admin.list_roles() if not r.builtin}
    partitions = {p.name: p.objects for p in admin.list_partitions()}
    return users, roles, partitions, admin.show_hsm().keyring_objects


def report_for(
    node: ApplianceSession, cluster: ApplianceSession, node_id: str, cluster_id: str
) -> JoinReport:
    """What of the joiner's state the cluster's replaces (absent there, or different)."""
    n_users, n_roles, n_parts, n_rings = _state(node)
    c_users, c_roles, _, _ = _state(cluster)
    report = JoinReport(node_id, cluster_id)
    report.users = sorted(u for u, role in n_users.items() if c_users.get(u) != role)
    report.roles = sorted(r for r, cmds in n_roles.items() if c_roles.get(r) != cmds)
    report.partitions = sorted(n_parts)
    report.partition_keys = dict(sorted(n_parts.items()))
    report.keyrings = dict(sorted(n_rings.items()))
    report.keys = sum(n_parts.values()) + sum(n_rings.values())
    return report


def join(
    node_endpoint: str,
    cluster_endpoint: str,
    tls: Tls,
    *,
    node_admin: tuple[str, str] | None,
    cluster_admin: tuple[str, str],
    force: bool = False,
    dry_run: bool = False,
    timeout: float = 60.0,
) -> JoinReport:
    """Join the node at `node_endpoint` to the cluster at `cluster_endpoint` (see the module docstring).

    `node_admin` (user, password) logs in on a standalone node; a removed member of the cluster
    needs none. Raises InvalidArgument, FailedPrecondition (already a member, keys without `force`,
    a member of another cluster), Unauthenticated (wrong credentials), Unavailable."""
    if node_endpoint == cluster_endpoint:
        raise InvalidArgument("a node cannot join itself: --node and --cluster name the same endpoint")
    with (
        HsmClient([node_endpoint], tls, discover=False, timeout=10.0) as node_client,
        HsmClient([cluster_endpoint], tls, timeout=10.0) as cluster_client,
    ):
        node_status = node_client.node_status()
        cluster_status = cluster_client.node_status()
        if node_status.cluster_id == cluster_status.cluster_id:
            if not node_status.removed_from:
                raise FailedPrecondition(
                    f"{node_endpoint} is already a member of cluster {cluster_status.cluster_id}: nothing to join"
                )
            return _rejoin(node_client, cluster_client, node_status, cluster_admin, dry_run, timeout)
        if node_admin is None:
            raise InvalidArgument(
                f"{node_endpoint} is a node of another cluster: give its admin password (--node-password) to join it"
            )
        if node_status.members > 1:
            raise FailedPrecondition(
                f"{node_endpoint} is a member of cluster {node_status.cluster_id} with {node_status.members} members: "
                "remove it there (hsmnode cluster remove-member) before it joins another"
            )
        node_admin_session = node_client.login(*node_admin)
        cluster_admin_session = cluster_client.login(*cluster_admin)
        node_admin_session.keep = cluster_admin_session.keep = True
        report = report_for(
            node_admin_session, cluster_admin_session, node_status.id, cluster_status.cluster_id
        )
        if dry_run:
            return report
        if report.keys and not force:
            raise FailedPrecondition(
                f"{node_endpoint} holds {report.keys} key(s) in {report.holders()}: the join would discard them "
                "(they stay in its archive); use --force to join anyway, --dry-run to see the report"
            )
        cluster_admin_session.join_bundle(
            node_status.node_certificate
        )  # trust check before changing anything
        cluster_admin_session.add_member(
            node_status.id, raft_address=node_status.raft_address, address=node_status.address
        )
        bundle = cluster_admin_session.join_bundle(node_status.node_certificate)  # with the new member listed
        with HsmClient([node_endpoint], tls, discover=False, timeout=timeout) as adopter:
            report.archive = _adopt(
                adopter.resume(node_admin_session.token), bundle, cluster_admin_session, node_status.id
            )
        _wait_member(node_endpoint, tls, cluster_status.cluster_id, timeout, node_status.incarnation)
        report.joined = True
        cluster_admin_session.audit_note(report.summary()[:1000])
        return report


def _rejoin(
    node_client: HsmClient,
    cluster_client: HsmClient,
    node_status: NodeStatus,
    cluster_admin: tuple[str, str],
    dry_run: bool,
    timeout: float,
) -> JoinReport:
    """A member removed from this cluster joins it again: added back, then it archives its data dir,
    drops its Raft state and restarts as a fresh member that receives the cluster's state."""
    report = JoinReport(node_status.id, node_status.cluster_id, rejoin=True)
    admin = cluster_client.login(*cluster_admin)
    admin.keep = True
    if dry_run:
        return report
    admin.join_bundle(node_status.node_certificate)  # trust check before changing anything
    admin.add_member(node_status.id, raft_address=node_status.raft_address, address=node_status.address)
    bundle = admin.join_bundle(node_status.node_certificate)  # with the member listed
    with HsmClient(node_client.endpoints, cluster_client.tls, discover=False, timeout=timeout) as adopter:
        report.archive = _adopt(adopter.resume(""), bundle, admin, node_status.id)
    _wait_member(
        node_client.endpoints[0], cluster_client.tls, node_status.cluster_id, timeout, node_status.incarnation
    )
    report.joined = True
    admin.audit_note(report.summary()[:1000])
    return report


def _adopt(node: ApplianceSession, bundle: Any, cluster_admin: ApplianceSession, member_id: str) -> str:
    """The node adopts the cluster (`bundle`): its archive. One request id for every attempt, within
    the node client's timeout, so a retry after a lost answer (archiving a data dir takes seconds
    under load, and the restart that follows cuts the connection) answers the first adoption.

    A refusal, or an attempt that provably changed nothing (Unavailable), undoes the cluster's
    addition of the member and raises. An unknown outcome is not undone: the node may have adopted
    and be on its way back as a member (removing it then would strand it); OutcomeUnknown says
    what to check and how to take it out."""
    try:
        return node.adopt_cluster(bundle, request_id=new_request_id())
    except OutcomeUnknown as exc:
        raise OutcomeUnknown(
            f"{exc}. The cluster lists {member_id} as a member and the node may have adopted it: see "
            f"`hsmnode cluster status`; if {member_id} does not come back serving, take it out with "
            f"`hsmnode cluster remove-member {member_id}` and join again",
            request_id=exc.request_id,
        ) from None
    except HsmError:
        cluster_admin.remove_member(member_id)
        raise


def _wait_member(endpoint: str, tls: Tls, cluster_id: str, timeout: float, before: str) -> None:
    """Until the node, restarted (another incarnation than `before`), serves as a member holding the
    cluster's state."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with HsmClient([endpoint], tls, discover=False, timeout=2.0) as one:
                status = one.node_status()
            if (
                status.incarnation != before
                and status.replicated_cluster_id == cluster_id
                and status.ready
                and status.leader
                and not status.removed_from
            ):
                return
            last = f"cluster {status.replicated_cluster_id or '-'}, ready {status.ready}"
        except HsmError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise Unavailable(f"{endpoint} did not come back as a member within {timeout}s ({last})")
