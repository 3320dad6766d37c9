"""Apply handlers for the replicated member directory (who the members are, and where).

Raft membership itself is changed by pysyncobj (one change at a time, through the
leader); this directory records each member's id and addresses so every member can
answer cluster status and clients can discover members after a change.
"""

from __future__ import annotations

from hsmnode.domain import commands as c
from hsmnode.domain import rules
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.result import Result, ok
from hsmnode.domain.state import HsmState


def _address(what: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"{what} must be host:port, got {value!r}")


DEPARTED_CAPACITY = 100


def member_add(state: HsmState, cmd: c.MemberAdd) -> Result:
    authorize(state, cmd.actor, "cluster.member", cmd.timestamp)
    rules.check_object_name("member", cmd.member_id)
    _address("raft", cmd.raft)
    _address("grpc", cmd.grpc)
    if cmd.member_id in state.members:
        raft, grpc_address = state.members[cmd.member_id]
        raise DomainError(
            ErrorCode.ALREADY_EXISTS,
            f"member '{cmd.member_id}' already exists (raft {raft}, gRPC {grpc_address}): "
            f"to give it other addresses, remove it first (hsmnode cluster remove --member {cmd.member_id})",
        )
    for other, (raft, grpc_address) in state.members.items():
        if cmd.raft == raft or cmd.grpc == grpc_address:
            raise DomainError(
                ErrorCode.ALREADY_EXISTS,
                f"member '{other}' already uses {cmd.raft} or {cmd.grpc}: give the new member other addresses",
            )
    state.members[cmd.member_id] = (cmd.raft, cmd.grpc)
    state.departed.pop(cmd.member_id, None)
    return ok(audit=f"member '{cmd.member_id}' added (raft {cmd.raft}, gRPC {cmd.grpc})")


def member_remove(state: HsmState, cmd: c.MemberRemove) -> Result:
    authorize(state, cmd.actor, "cluster.member", cmd.timestamp)
    if cmd.member_id not in state.members:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"no member '{cmd.member_id}' (members: {', '.join(sorted(state.members)) or 'none'})",
        )
    if len(state.members) == 1:
        raise DomainError(
            ErrorCode.FAILED_PRECONDITION,
            f"member '{cmd.member_id}' is the last member of the cluster and cannot be removed: "
            "add another member first, or stop it",
        )
    raft, grpc_address = state.members.pop(cmd.member_id)
    state.departed[cmd.member_id] = (raft, grpc_address, cmd.timestamp)
    while len(state.departed) > DEPARTED_CAPACITY:
        del state.departed[min(state.departed, key=lambda k: state.departed[k][2])]
    return ok(audit=f"member '{cmd.member_id}' removed (raft {raft}, gRPC {grpc_address})")
