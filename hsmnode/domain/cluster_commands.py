"""Commands of the cluster's own life and its audit log: the first command (cluster.init, or
cluster.restore for a cluster restored from a backup), membership changes, backups, audit notes,
events and settings, and the fault injection that proves a failing command never stalls the cluster.

Wire names and encoding: commands.py (the envelope) and command_codec.py.
"""

from __future__ import annotations

import dataclasses

from hsmnode.domain.command_codec import Command, command

# --- the cluster ------------------------------------------------------------------------


@command("cluster.init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class InitCluster(Command):
    """Bind the replicated state to a cluster identity; the first command of every cluster.

    Creates the default appliance accounts admin, operator, monitor and audit
    (only admin enabled) with the hashes of their initial password, in that order.
    """

    cluster_id: str
    default_password_hashes: tuple[str, ...]
    # the key check value of the cluster SMK: a member holding another SMK stops
    smk_check: str = ""
    # the initial member directory, "id|raft host:port|grpc host:port" each
    members: tuple[str, ...] = ()


@command("debug.fail")
@dataclasses.dataclass(frozen=True, kw_only=True)
class DebugFail(Command):
    """Raises inside apply on every member: proves a failing command never stalls the cluster.

    Only proposed by members whose config enables fault injection; apply raises
    deterministically, so every member records the same INTERNAL outcome.
    """

    reason: str


# --- the audit log ----------------------------------------------------------------------


@command("audit.note")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditNote(Command):
    """An operator's free-text note in the audit log (e.g. "failover drill starts")."""

    text: str


@command("audit.event")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditEvent(Command):
    """A security-relevant refusal the service caught before proposing (e.g. a denied read)."""

    event: str
    detail: str


@command("audit.config")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditConfigSet(Command):
    """The Auditor sets what a category records: none | failure | success | all (DOMAIN.md §6)."""

    category: str
    level: str


@command("audit.key")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyAuditEvent(Command):
    """A key-management event a member served off the Raft path (an export, a wrap, a refused unwrap,
    a backup), put into the cluster chain; `outcome` is "ok" or the refusal's error code."""

    event: str
    container: str
    object_id: str
    label: str
    outcome: str
    detail: str
    member: str


# --- cluster membership ------------------------------------------------------------------


@command("member.add")
@dataclasses.dataclass(frozen=True, kw_only=True)
class MemberAdd(Command):
    member_id: str
    raft: str
    grpc: str


@command("member.remove")
@dataclasses.dataclass(frozen=True, kw_only=True)
class MemberRemove(Command):
    member_id: str


# --- backup and restore (hsmnode/backup/) ------------------------------------------------


@command("cluster.backup")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterBackup(Command):
    """A backup is taken: authorized (admin, or the leader for a scheduled one) and audited here;
    the member then snapshots its state at an index at or after this command's."""

    scheduled: bool = False


@command("cluster.restore")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterRestore(Command):
    """The first command of a cluster restored from a backup (every member started from the same
    backup): binds the restored state to the new cluster id and its member directory."""

    cluster_id: str
    source_cluster_id: str
    source_index: int
    # the new member directory, "id|raft host:port|grpc host:port" each (as InitCluster)
    members: tuple[str, ...]
