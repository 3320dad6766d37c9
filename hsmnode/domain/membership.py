"""Apply handlers for the replicated member directory (who the members are, and where).

Raft membership itself is changed by pysyncobj (one change at a time, through the
leader); this directory records each member's id and addresses so every member can
answer cluster status and clients can discover members after a change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hsmnode.domain import commands as c
from hsmnode.domain import rules
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode

if TYPE_CHECKING:
    from hsmnode.domain.state import Handler, HsmState, Result


def _ok(**value: object) -> Result:
    from hsmnode.domain.state import Result

    return Result.success(**value)


def _address(what: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"{what} must be host:port, got {value!r}")


def member_add(state: HsmState, cmd: c.MemberAdd) -> Result:
    authorize(state, cmd.actor, "cluster.member", cmd.timestamp)
    rules.check_object_name("member", cmd.member_id)
    _address("raft", cmd.raft)
    _address("grpc", cmd.grpc)
    if cmd.member_id in state.members:
        raise DomainError(ErrorCode.ALREADY_EXISTS, f"member '{cmd.member_id}' already exists")
    for other, (raft, grpc_address) in state.members.items():
        if cmd.raft == raft or cmd.grpc == grpc_address:
            raise DomainError(
                ErrorCode.ALREADY_EXISTS, f"member '{other}' already uses {cmd.raft} or {cmd.grpc}"
            )
    state.members[cmd.member_id] = (cmd.raft, cmd.grpc)
    return _ok(audit=f"member '{cmd.member_id}' added (raft {cmd.raft}, gRPC {cmd.grpc})")


def member_remove(state: HsmState, cmd: c.MemberRemove) -> Result:
    authorize(state, cmd.actor, "cluster.member", cmd.timestamp)
    if cmd.member_id not in state.members:
        raise DomainError(ErrorCode.NOT_FOUND, f"no member '{cmd.member_id}'")
    if len(state.members) == 1:
        raise DomainError(ErrorCode.FAILED_PRECONDITION, "the last member of a cluster cannot be removed")
    del state.members[cmd.member_id]
    return _ok(audit=f"member '{cmd.member_id}' removed")


HANDLERS: dict[type[c.Command], Handler] = {c.MemberAdd: member_add, c.MemberRemove: member_remove}
