"""Pure input rules: names, passwords, key attributes (DOMAIN.md §1; notes-vendor-hsms.md §2).

Each check raises `DomainError(INVALID_ARGUMENT)` with a message that says what
is allowed, so the user can fix the input without reading the source.
"""

from __future__ import annotations

import re

from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import USAGES, ObjectClass

# Luna appliance user names: 1-32 chars of [A-Za-z0-9-._], no leading dot, dash or digit.
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}")
# Custom role names: 1-64 characters (Luna), same alphabet.
_ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,63}")
# Partition and client names (our choice): the user-name alphabet, up to 64.
_OBJECT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,63}")
USER_NAME_MAX = 32
OBJECT_NAME_MAX = 64  # role, partition, client, keyring and member names
_ALPHABET = "characters from A-Z a-z 0-9 - . _, not starting with a dot, dash or digit"
USER_NAME_RULE = f"1-{USER_NAME_MAX} {_ALPHABET}"
OBJECT_NAME_RULE = f"1-{OBJECT_NAME_MAX} {_ALPHABET}"

PASSWORD_MIN = 8
PASSWORD_MAX = 255


def shown(value: str) -> str:
    """`value` as a message quotes it: whole up to 80 characters, else its start and its length (a
    refusal echoing a 1 MB name would be cut by the server anyway, at its end)."""
    return repr(value) if len(value) <= 80 else f"{value[:40]!r}... ({len(value)} characters)"


def check_user_name(name: str) -> None:
    if not _USER_NAME.fullmatch(name):
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"user name {shown(name)} is invalid: {USER_NAME_RULE}")


def check_role_name(name: str) -> None:
    if not _ROLE_NAME.fullmatch(name):
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"role name {shown(name)} is invalid: {OBJECT_NAME_RULE}"
        )


def check_object_name(kind: str, name: str) -> None:
    if not _OBJECT_NAME.fullmatch(name):
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"{kind} name {shown(name)} is invalid: {OBJECT_NAME_RULE}"
        )


KEY_LABEL_MAX = 64
GRANT_REFERENCE = "partition:"  # "partition:OWNER/KEY" names a key in another user's partition (DOMAIN.md §4)


def check_key_label(label: str) -> None:
    """A key label: 1-64 printable characters, and not a grant reference ("partition:OWNER/KEY")."""
    if not label or len(label) > KEY_LABEL_MAX or not label.isprintable():
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"key label must be 1-{KEY_LABEL_MAX} printable characters, got {shown(label)}",
        )
    if label.startswith(GRANT_REFERENCE) and "/" in label:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"key label {label!r} has the form partition:OWNER/KEY, which names a key in another partition; "
            "choose a label without it",
        )


def check_password(password: str, what: str = "password") -> None:
    """Luna's rule: 8-255 characters, at least 3 of 4 classes (lower, upper, digit, other), no leading space."""
    if not password:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"{what} must not be empty")
    if len(password) < PASSWORD_MIN or len(password) > PASSWORD_MAX:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"{what} must be {PASSWORD_MIN}-{PASSWORD_MAX} characters (got {len(password)})",
        )
    if password[0] == " ":
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"{what} must not start with a space")
    if not password.isprintable():
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"{what} must be printable characters")
    classes = sum(
        (
            any(ch.islower() for ch in password),
            any(ch.isupper() for ch in password),
            any(ch.isdigit() for ch in password),
            any(not ch.isalnum() for ch in password),
        )
    )
    if classes < 3:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"{what} must mix at least 3 of: lowercase letters, uppercase letters, digits, other characters",
        )


# key type -> (sizes, the usage flags it can carry)
KEY_TYPES: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "AES": (("128", "256"), frozenset({"encrypt", "decrypt", "wrap", "unwrap"})),
    "RSA": (("2048", "3072", "4096"), frozenset({"sign", "verify", "encrypt", "decrypt"})),
    "EC": (("P-256", "P-384"), frozenset({"sign", "verify"})),
    "Ed25519": (("255",), frozenset({"sign", "verify"})),
}
PUBLIC_USAGES = frozenset({"verify", "encrypt"})


_USAGES = frozenset(USAGES)


def check_attributes(
    key_type: str, size: str, object_class: str, usage: tuple[str, ...], has_secret: bool, has_public: bool
) -> None:
    """Raise INVALID_ARGUMENT naming the attribute that does not fit the key."""
    if key_type not in KEY_TYPES:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"unknown key type {key_type!r} (known: {', '.join(KEY_TYPES)})"
        )
    sizes, usable = KEY_TYPES[key_type]
    if size not in sizes:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT, f"{key_type} keys come in {', '.join(sizes)}, not {size!r}"
        )
    expected = (ObjectClass.SECRET,) if key_type == "AES" else (ObjectClass.PRIVATE, ObjectClass.PUBLIC)
    if object_class not in expected:
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"a {key_type} key cannot be a {object_class!r} object")
    flags = set(usage)
    unknown = sorted(flags - _USAGES) if not flags <= _USAGES else []
    if unknown:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown usage flag(s) {', '.join(unknown)} (known: {', '.join(USAGES)})",
        )
    if object_class == ObjectClass.PUBLIC:
        usable = usable & PUBLIC_USAGES
    if not usage:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"a key needs at least one usage flag; a {object_class} {key_type} key may have: {', '.join(sorted(usable))}",
        )
    wrong = sorted(flags - usable) if not flags <= usable else []
    if wrong:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"a {object_class} {key_type} key cannot carry usage {', '.join(wrong)} (possible: {', '.join(sorted(usable))})",
        )
    if has_secret != (object_class in (ObjectClass.SECRET, ObjectClass.PRIVATE)) or has_public != (
        object_class in (ObjectClass.PRIVATE, ObjectClass.PUBLIC)
    ):
        raise DomainError(ErrorCode.INVALID_ARGUMENT, f"key material does not match a {object_class} object")
