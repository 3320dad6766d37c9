"""generate_key's size: left out only for a key type with a single size (Ed25519)."""

import pytest

from hsmnode.client._partition import key_size
from hsmnode.domain.rules import KEY_TYPES


def test_a_given_size_is_sent_as_text() -> None:
    assert key_size("RSA", 2048) == "2048"
    assert key_size("EC", "P-256") == "P-256"


def test_ed25519_may_leave_its_only_size_out() -> None:
    assert key_size("Ed25519", None) == "255"
    assert KEY_TYPES["Ed25519"][0] == ("255",)  # the member's only size for it


@pytest.mark.parametrize("key_type", ["AES", "RSA", "EC"])
def test_other_types_need_a_size(key_type: str) -> None:
    with pytest.raises(ValueError, match=f"{key_type} keys need a size: AES 128/256"):
        key_size(key_type, None)


def test_an_unknown_type_is_left_to_the_member_to_name() -> None:
    assert key_size("Bogus", None) == ""  # the member answers INVALID_ARGUMENT: unknown key type
