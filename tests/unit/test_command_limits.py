"""Every name a client puts into a command is refused by its own rule when too long, before the
command is built (command_limits; a 1 MB user name was told "the login.record command would be
1048826 bytes")."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from hsmnode.domain import command_limits, rules
from hsmnode.domain import commands as c
from hsmnode.domain.errors import DomainError, ErrorCode

# (command type, field): client-supplied text with its own early check, or minted by the member
NOT_NAMES = {
    ("audit.event", "event"),  # the member's refusal events; detail cut to 1000 where built
    ("audit.event", "detail"),
    ("audit.note", "text"),  # 1-1000 characters, checked by the audit service
    ("auth.change", "session_grant"),
    ("client.register", "cert_pem"),  # parsed as a certificate before the command is built
    ("client.register", "fingerprint"),
    ("cluster.init", "cluster_id"),
    ("cluster.init", "default_password_hashes"),
    ("cluster.init", "smk_check"),
    ("cluster.init", "members"),
    ("cluster.restore", "cluster_id"),
    ("cluster.restore", "source_cluster_id"),
    ("cluster.restore", "members"),
    ("debug.fail", "reason"),  # fault injection, off in production
    ("hsm.auditor_init", "password_hash"),
    ("hsm.init", "so_password_hash"),
    ("key.create", "label"),  # rules.check_key_label, before the command (key_fields)
    ("key.restore", "source"),
    ("key.restore", "cloning_domain"),
    ("key.restore", "objects"),
    ("keyring.create", "keyring_id"),
    ("keyring.create", "krso_password_hash"),
    ("keyring.set_krco", "password_hash"),
    ("login.change_password", "password_hash"),
    ("partition.init", "po_password_hash"),
    ("partition.role_init", "password_hash"),
    ("user.add", "password_hash"),
    ("user.set_password", "password_hash"),
}
# fields a member mints, whatever the command
MINTED = {
    "actor",
    "request_id",
    "container",
    "object_id",
    "key_type",
    "size",
    "object_class",
    "usage",
    "origin",
}


def _text_fields() -> set[tuple[str, str]]:
    found = set()
    for wire, cls in c.command_types().items():
        if not cls.__module__.startswith("hsmnode."):  # a test's own command
            continue
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in MINTED or wire == "audit.key":  # audit.key: cut where it is built
                continue
            if hints[f.name] in (str, tuple[str, ...]):
                found.add((wire, f.name))
    return found


def test_every_text_field_of_every_command_is_limited_or_named_exempt() -> None:
    unlisted = _text_fields() - command_limits.listed_fields() - NOT_NAMES
    assert not unlisted, (
        f"give these command fields a limit (command_limits.FIELDS) or exempt them: {unlisted}"
    )
    assert command_limits.listed_fields() <= _text_fields(), "FIELDS names a field no command has"


@pytest.mark.parametrize(
    ("wire", "field"), sorted(command_limits.listed_fields() - {("login.record", "target")})
)
def test_a_name_one_over_its_limit_is_refused_by_its_rule(wire: str, field: str) -> None:
    cls = c.command_types()[wire]
    kind = command_limits.FIELDS.get(wire, {}).get(field, "user name")
    longest, rule = command_limits.LIMITS[kind]
    at_limit, over = "n" * longest, "n" * (longest + 1)
    if wire in command_limits.TARGETS:
        at_limit, over = f"user:{at_limit}", f"user:{over}"
    tuple_field = typing.get_type_hints(cls)[field] == tuple[str, ...]
    command_limits.check_command(cls, {field: (at_limit,) if tuple_field else at_limit})
    with pytest.raises(DomainError) as refused:
        command_limits.check_command(cls, {field: (over,) if tuple_field else over})
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT
    assert refused.value.message.endswith(f"is too long: a {kind} is {rule}")


def test_a_megabyte_user_name_in_a_login_is_refused_by_the_user_name_rule_and_shown_cut() -> None:
    huge = "u" * (1 << 20)
    with pytest.raises(DomainError) as refused:
        command_limits.check_command(c.RecordLogin, {"target": f"user:{huge}", "success": False})
    message = refused.value.message
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT
    assert f"({len(huge)} characters) is too long: a user name is {rules.USER_NAME_RULE}" in message
    assert len(message) < 300


@pytest.mark.parametrize(
    "target", ["partition:" + "p" * 65 + ":CO", "keyring:" + "k" * 65 + ":KRSO", "partition:pay:" + "R" * 65]
)
def test_partition_and_keyring_login_targets_are_limited(target: str) -> None:
    with pytest.raises(DomainError, match="is too long"):
        command_limits.check_target(target)


@pytest.mark.parametrize(
    "target", ["hsm:SO", "hsm:AU", "partition:pay:CO", "keyring:ring:KRSO", "user:admin"]
)
def test_ordinary_login_targets_pass(target: str) -> None:
    command_limits.check_target(target)
