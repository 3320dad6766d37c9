"""The cluster backup file: a readable header, an encrypted and authenticated body.

    "HSMNODE-BACKUP\n"            15 bytes, the magic
    header length                 4 bytes, big-endian
    header                        canonical JSON (see BackupHeader), readable without any key
    body                          nonce || AES-256-GCM(gzip(canonical JSON of the state snapshot))
                                  under a key derived from the SMK; associated data = everything
                                  before the body (hsmnode/crypto/backup.py)

The snapshot is `HsmState.to_data()`: users (scrypt hashes), roles, clients, partitions,
keyrings and keys (material wrapped under the SMK, as replicated), the member directory,
the audit chain and the request-id table. A restore refuses a file, naming the reason,
before it writes anything: not a backup, another format, a broken header, truncated or
extended, taken under another SMK, altered (authentication fails), content that does not
load, an audit chain that does not verify, or counts that differ from the header's.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Callable
from typing import Any

from hsmnode.crypto import backup as sealing
from hsmnode.crypto.keys import Smk
from hsmnode.domain.audit import verify_chain
from hsmnode.domain.commands import canonical_json
from hsmnode.domain.state import HsmState

MAGIC = b"HSMNODE-BACKUP\n"
FORMAT = 1
SUFFIX = ".hsmbackup"
_LENGTH_BYTES = 4
MAX_HEADER_BYTES = 64 * 1024


class BackupError(Exception):
    """A backup file that cannot be used. `reason` is one of REASONS; the message says what to do."""

    REASONS = (
        "not_a_backup",
        "unsupported_format",
        "bad_header",
        "truncated",
        "trailing_data",
        "wrong_smk",
        "altered",
        "bad_content",
        "audit_chain",
        "counts_mismatch",
    )

    def __init__(self, reason: str, message: str) -> None:
        assert reason in self.REASONS, reason
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclasses.dataclass(frozen=True)
class BackupHeader:
    """What a backup holds, readable without the SMK. Times in ms since the epoch."""

    cluster_id: str
    index: int  # the Raft index of the last command in the snapshot
    taken_at_ms: int
    taken_by: str  # the member that took it
    member_count: int
    key_count: int  # key objects in partitions and keyrings
    user_count: int
    partition_count: int
    keyring_count: int
    audit_length: int
    audit_head: str  # hash of the last audit record
    smk_check: str  # the SMK's key check value: which SMK opens it
    salt: str  # hex, for the body key
    body_bytes: int
    format: int = FORMAT

    def counts(self) -> dict[str, int]:
        return {
            "member_count": self.member_count,
            "key_count": self.key_count,
            "user_count": self.user_count,
            "partition_count": self.partition_count,
            "keyring_count": self.keyring_count,
            "audit_length": self.audit_length,
        }

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def counts_of(data: dict[str, Any]) -> dict[str, int]:
    """The header's counts, from a state snapshot (`HsmState.to_data()`)."""
    keys = sum(len(p.get("objects", [])) for p in data["partitions"])
    keys += sum(len(k.get("objects", [])) for k in data.get("keyrings", []))
    return {
        "member_count": len(data.get("members", [])),
        "key_count": keys,
        "user_count": len(data["users"]),
        "partition_count": len(data["partitions"]),
        "keyring_count": len(data.get("keyrings", [])),
        "audit_length": len(data["audit"]),
    }


def _prefix(header: bytes) -> bytes:
    return MAGIC + len(header).to_bytes(_LENGTH_BYTES, "big") + header


def build(
    data: dict[str, Any], *, index: int, taken_at_ms: int, taken_by: str, smk: Smk
) -> tuple[BackupHeader, bytes]:
    """Seal a state snapshot into a backup file's bytes."""
    cluster_id = data["cluster"]["id"]
    plaintext = gzip.compress(canonical_json(data), compresslevel=6, mtime=0)
    salt = sealing.new_salt()
    body_bytes = sealing.NONCE_BYTES + len(plaintext) + sealing.TAG_BYTES
    audit = data["audit"]
    header = BackupHeader(
        cluster_id=cluster_id,
        index=index,
        taken_at_ms=taken_at_ms,
        taken_by=taken_by,
        audit_head=audit[-1]["hash"] if audit else "",
        smk_check=smk.check_value,
        salt=salt.hex(),
        body_bytes=body_bytes,
        **counts_of(data),
    )
    prefix = _prefix(canonical_json(header.to_json()))
    body = sealing.seal(sealing.backup_key(smk, salt, cluster_id), prefix, plaintext)
    assert len(body) == body_bytes
    return header, prefix + body


def read_header(blob: bytes, name: str = "the backup") -> tuple[BackupHeader, bytes, bytes]:
    """The header, the authenticated prefix and the body; checks structure and length only (no key)."""
    if not blob.startswith(MAGIC):
        raise BackupError(
            "not_a_backup", f"{name} is not an hsmnode backup (it does not start with {MAGIC!r})"
        )
    start = len(MAGIC) + _LENGTH_BYTES
    if len(blob) < start:
        raise BackupError("truncated", f"{name} is truncated inside its header: copy the whole file again")
    length = int.from_bytes(blob[len(MAGIC) : start], "big")
    if length > MAX_HEADER_BYTES:
        raise BackupError("bad_header", f"{name} declares a {length}-byte header: the file is damaged")
    if len(blob) < start + length:
        raise BackupError("truncated", f"{name} is truncated inside its header: copy the whole file again")
    raw = blob[start : start + length]
    try:
        fields = json.loads(raw)
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        if fields.get("format") != FORMAT:
            raise BackupError(
                "unsupported_format",
                f"{name} has backup format {fields.get('format')!r}; this hsmnode reads format {FORMAT}",
            )
        header = BackupHeader(**fields)
        for f in dataclasses.fields(BackupHeader):
            value = getattr(header, f.name)
            wanted = int if f.type in ("int", int) else str
            if isinstance(value, bool) or not isinstance(value, wanted):
                raise ValueError(f"{f.name} must be {wanted.__name__}")
    except BackupError:
        raise
    except (ValueError, TypeError) as exc:
        raise BackupError(
            "bad_header", f"{name} has a damaged header ({exc}): the file is not usable"
        ) from None
    body = blob[start + length :]
    if len(body) < header.body_bytes:
        raise BackupError(
            "truncated",
            f"{name} is truncated: its header declares {header.body_bytes} bytes of encrypted body, "
            f"the file holds {len(body)}; copy the whole file again",
        )
    if len(body) > header.body_bytes:
        raise BackupError(
            "trailing_data",
            f"{name} has {len(body) - header.body_bytes} bytes after its encrypted body: "
            "it was appended to or damaged; use an unmodified copy",
        )
    return header, blob[: start + length], body


def open_backup(
    blob: bytes, smk: Smk, name: str = "the backup", progress: Callable[[str], None] | None = None
) -> tuple[BackupHeader, HsmState]:
    """Every check a restore makes, in order, before anything is written; BackupError names the first
    that fails. Returns the header and the state, whose audit chain and counts match the header."""
    say = progress or (lambda _step: None)
    header, prefix, body = read_header(blob, name)
    if header.smk_check != smk.check_value:
        raise BackupError(
            "wrong_smk",
            f"{name} was taken from cluster {header.cluster_id}, whose SMK has check value {header.smk_check}; "
            f"the SMK given has check value {smk.check_value}: give cluster {header.cluster_id}'s SMK",
        )
    say(f"decrypting {header.body_bytes} bytes")
    try:
        key = sealing.backup_key(smk, bytes.fromhex(header.salt), header.cluster_id)
        plaintext = sealing.open_sealed(key, prefix, body)
    except (sealing.BackupAuthenticationError, ValueError):
        raise BackupError(
            "altered",
            f"{name} failed authentication: its header or encrypted body was altered after it was written; "
            "use an unmodified copy",
        ) from None
    say("loading the state")
    try:
        data = json.loads(gzip.decompress(plaintext))
        state = HsmState.from_data(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError("bad_content", f"{name} holds a state this hsmnode cannot load ({exc})") from None
    if state.cluster_id != header.cluster_id:
        raise BackupError(
            "bad_content",
            f"{name}: its state belongs to cluster {state.cluster_id}, its header says {header.cluster_id}",
        )
    say(f"verifying the audit chain ({len(state.audit)} records)")
    problem = verify_chain(state.audit_records())
    if problem is not None:
        raise BackupError("audit_chain", f"{name}: the audit chain does not verify: {problem}")
    found = counts_of(data)
    if found != header.counts() or (header.audit_head and state.audit.head != header.audit_head):
        differ = ", ".join(
            f"{k} {header.counts()[k]} in the header, {v} inside"
            for k, v in found.items()
            if header.counts()[k] != v
        )
        raise BackupError(
            "counts_mismatch", f"{name}: the content does not match its header ({differ or 'audit head'})"
        )
    return header, state
