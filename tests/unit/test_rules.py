"""Input rules: Luna user names, role names, object names, the password rule (DOMAIN.md §1)."""

from __future__ import annotations

import pytest

from hsmnode.domain import rules
from hsmnode.domain.errors import DomainError, ErrorCode


@pytest.mark.parametrize("name", ["a", "bob", "_svc", "Ops.team-1", "x" * 32])
def test_valid_user_names(name: str) -> None:
    rules.check_user_name(name)


@pytest.mark.parametrize("name", ["", ".hidden", "-dash", "9lives", "x" * 33, "white space", "ümlaut", "a/b"])
def test_user_names_follow_the_luna_rule(name: str) -> None:
    with pytest.raises(DomainError) as info:
        rules.check_user_name(name)
    assert info.value.code is ErrorCode.INVALID_ARGUMENT
    assert (
        "1-32 characters" in info.value.message
        and "not starting with a dot, dash or digit" in info.value.message
    )


def test_role_names_may_be_64_characters() -> None:
    rules.check_role_name("r" * 64)
    with pytest.raises(DomainError, match="1-64 characters"):
        rules.check_role_name("r" * 65)


@pytest.mark.parametrize("password", ["Abcdefg1", "abcdefg1!", "ABCDEFG1!", "Pass word9", "x" * 250 + "A1!"])
def test_passwords_meeting_the_rule(password: str) -> None:
    rules.check_password(password)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "must not be empty"),
        ("Ab1!", "must be 8-255 characters (got 4)"),
        ("A1!" + "x" * 253, "must be 8-255 characters"),
        ("abcdefgh", "at least 3 of"),
        ("abcdefg1", "at least 3 of"),
        (" Abcdefg1", "must not start with a space"),
        ("Abcdefg1\n", "printable"),
    ],
)
def test_passwords_breaking_the_rule_are_refused_with_the_reason(password: str, message: str) -> None:
    with pytest.raises(DomainError) as info:
        rules.check_password(password)
    assert info.value.code is ErrorCode.INVALID_ARGUMENT
    assert message in info.value.message
