"""Apply handlers for cluster backup and restore (the file format and the I/O live in hsmnode/backup/).

- `cluster.backup`: an admin (operation `cluster.backup`), or a member node taking a
  scheduled backup as leader, records that a backup is taken. The state itself is
  copied by the member after this command is applied; the audit record says who.
- `cluster.restore`: every member of a restored cluster starts from the same backup's
  state (still bound to the old cluster id); this first command rebinds it to the
  new cluster id and member directory, once, so every member holds the same state.
"""

from __future__ import annotations

from hsmnode.domain import commands as c
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.principals import PrincipalKind, parse
from hsmnode.domain.result import Result, ok
from hsmnode.domain.state import HsmState


def cluster_backup(state: HsmState, cmd: c.ClusterBackup) -> Result:
    principal = parse(cmd.actor)
    if principal.kind == PrincipalKind.NODE:
        if not cmd.scheduled:
            raise DomainError(ErrorCode.PERMISSION_DENIED, "a member node takes scheduled backups only")
    else:
        authorize(state, cmd.actor, "cluster.backup", cmd.timestamp)
    if state.cluster_id is None:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION, "the cluster is not bootstrapped yet: nothing to back up"
        )
    what = "scheduled backup" if cmd.scheduled else "backup"
    return ok(audit=f"{what} of cluster {state.cluster_id} taken by {principal}")


def cluster_restore(state: HsmState, cmd: c.ClusterRestore) -> Result:
    if parse(cmd.actor).kind != PrincipalKind.NODE:
        raise DomainError(ErrorCode.PERMISSION_DENIED, "only a member node binds a restored cluster")
    if not cmd.cluster_id or cmd.cluster_id == cmd.source_cluster_id:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, "a restored cluster needs a new cluster id, not the backup's own"
        )
    if state.cluster_id == cmd.cluster_id:
        return ok(audit="already restored")
    if state.cluster_id != cmd.source_cluster_id:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"this member's state belongs to cluster {state.cluster_id or '(none)'}, not to the backup of "
            f"{cmd.source_cluster_id}: start every member of the restored cluster from the same backup",
        )
    members: dict[str, tuple[str, str]] = {}
    for entry in cmd.members:
        member_id, _, rest = entry.partition("|")
        raft, _, grpc_address = rest.partition("|")
        if not (member_id and raft and grpc_address):
            raise DomainError(ErrorCode.INVALID_ARGUMENT, f"member entry {entry!r} is not id|raft|grpc")
        members[member_id] = (raft, grpc_address)
    if not members:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, "a restored cluster needs at least one member")
    state.cluster_id = cmd.cluster_id
    state.members = members
    return ok(
        audit=f"cluster {cmd.cluster_id} restored from a backup of cluster {cmd.source_cluster_id} "
        f"at index {cmd.source_index}; members {', '.join(sorted(members))}"
    )
