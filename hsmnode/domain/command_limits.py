"""The longest value each name a client puts into a command may have, checked before the command is
built (NodeContext.stamped) so that an oversize name is refused by its own rule, not by the size of
the command it would make (MAX_COMMAND_BYTES), and never reaches the Raft log or the audit chain.

Only the upper bound is checked here: a name that references an existing object (a user to delete,
a login target) is otherwise judged by apply, which answers NOT_FOUND or applies the whole rule
(rules.py) when it creates one. Fields the proposing member mints (ids, hashes, key material) and
fields with their own early check (key labels, audit notes) are not listed.

    command field            kind          longest   rule quoted in the refusal
    user names               user          32        rules.USER_NAME_RULE
    role / partition /       role, ...     64        rules.OBJECT_NAME_RULE
      client / keyring / member names
    labels (HSM, partition)  label         64        printable characters
    cloning domain           cloning domain 128      printable characters
    policy, audit category   policy, ...   64        at most 64 characters (apply names the known ones)
      and level, command, permission, partition role, authorization state and card label
    card set id, grant id    ...           128       at most 128 characters
    member addresses         address       255       host:port
    login targets            "user:<name>", "partition:<name>:<role>", "keyring:<label>:<role>", "hsm:SO|AU"
"""

from __future__ import annotations

from hsmnode.domain import rules
from hsmnode.domain.command_codec import Command
from hsmnode.domain.errors import DomainError, ErrorCode

_NAMED = rules.OBJECT_NAME_MAX
# kind -> (longest, the rule a refusal quotes)
LIMITS: dict[str, tuple[int, str]] = {
    "user name": (rules.USER_NAME_MAX, rules.USER_NAME_RULE),
    "role name": (_NAMED, rules.OBJECT_NAME_RULE),
    "partition name": (_NAMED, rules.OBJECT_NAME_RULE),
    "client name": (_NAMED, rules.OBJECT_NAME_RULE),
    "keyring label": (_NAMED, rules.OBJECT_NAME_RULE),
    "member id": (_NAMED, rules.OBJECT_NAME_RULE),
    "label": (64, "1-64 printable characters"),
    "cloning domain": (128, "1-128 printable characters"),
    "policy name": (64, "at most 64 characters"),
    "audit category": (64, "at most 64 characters"),
    "audit level": (64, "at most 64 characters"),
    "role command": (64, "at most 64 characters"),
    "permission": (64, "at most 64 characters"),
    "authorization state": (64, "at most 64 characters"),
    "card label": (64, "at most 64 characters"),
    "card set id": (128, "at most 128 characters"),
    "grant id": (128, "at most 128 characters"),
    "address": (255, "host:port, at most 255 characters"),
    "partition role": (64, "at most 64 characters"),
}

# command wire name -> {field: kind}; a tuple field's every element is checked
FIELDS: dict[str, dict[str, str]] = {
    "user.add": {"name": "user name", "role": "role name"},
    "user.delete": {"name": "user name"},
    "user.set_enabled": {"name": "user name"},
    "user.set_password": {"name": "user name"},
    "role.add": {"name": "role name", "commands": "role command"},
    "role.delete": {"name": "role name"},
    "client.register": {"name": "client name"},
    "client.assign": {"name": "client name", "partition": "partition name"},
    "client.revoke": {"name": "client name", "partition": "partition name"},
    "hsm.init": {"label": "label"},
    "hsm.policy": {"name": "policy name"},
    "partition.create": {"name": "partition name"},
    "partition.delete": {"name": "partition name"},
    "partition.init": {"name": "partition name", "label": "label", "cloning_domain": "cloning domain"},
    "partition.role_init": {"name": "partition name", "role": "partition role"},
    "partition.policy": {"name": "partition name", "policy": "policy name"},
    "partition.activate": {"name": "partition name"},
    "keyring.create": {"label": "keyring label"},
    "keyring.delete": {"label": "keyring label"},
    "keyring.assign": {"label": "keyring label", "client": "client name"},
    "keyring.unlock": {"label": "keyring label"},
    "keyring.set_krco": {"label": "keyring label"},
    "grant.set": {"owner": "partition name", "grantee": "partition name", "permissions": "permission"},
    "auth.change": {
        "partition": "partition name",
        "target": "authorization state",
        "card_labels": "card label",
        "set_id": "card set id",
        "set_labels": "card label",
    },
    "auth.permissions": {
        "partition": "partition name",
        "permissions": "permission",
        "card_labels": "card label",
    },
    "auth.session_revoke": {"partition": "partition name", "grant_id": "grant id"},
    "audit.config": {"category": "audit category", "level": "audit level"},
    "member.add": {"member_id": "member id", "raft": "address", "grpc": "address"},
    "member.remove": {"member_id": "member id"},
}
# commands whose `target` field is a login target
TARGETS = frozenset({"login.record", "login.change_password", "login.logout"})


def check_length(kind: str, value: str) -> None:
    """Raise DomainError(INVALID_ARGUMENT) when `value`, a `kind` (a LIMITS key), is longer than its rule allows."""
    longest, rule = LIMITS[kind]
    if len(value) > longest:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"{kind} {rules.shown(value)} is too long: a {kind} is {rule}",
        )


def check_target(target: str) -> None:
    """A login target's name (user, partition or keyring) within its rule's length; raises
    DomainError(INVALID_ARGUMENT) otherwise."""
    kind, _, rest = target.partition(":")
    if kind == "user":
        check_length("user name", rest)
    elif kind in ("partition", "keyring"):
        name, _, role = rest.rpartition(":")
        check_length("partition name" if kind == "partition" else "keyring label", name or rest)
        check_length("role name", role)


def check_command(cls: type[Command], fields: dict[str, object]) -> None:
    """The names among `fields` (a `cls` command's fields, before it is built) within their rules'
    lengths (FIELDS, TARGETS); raises DomainError(INVALID_ARGUMENT) naming the first that is not."""
    if cls.TYPE in TARGETS and isinstance(fields.get("target"), str):
        check_target(str(fields["target"]))
    for field, kind in FIELDS.get(cls.TYPE, {}).items():
        value = fields.get(field)
        for one in value if isinstance(value, tuple | list) else (value,):
            if isinstance(one, str):
                check_length(kind, one)


def listed_fields() -> set[tuple[str, str]]:
    """(command type, field) for every field FIELDS and TARGETS cover (for the test that no name
    field of a command is left out)."""
    found = {(t, f) for t, fields in FIELDS.items() for f in fields}
    return found | {(t, "target") for t in TARGETS}


__all__ = ["FIELDS", "LIMITS", "TARGETS", "check_command", "check_length", "check_target", "listed_fields"]
