"""Batch entries: several encoded commands in ONE Raft log entry, applied in order as if each were
its own entry (issue 16: a coalesced write batch costs one entry's Raft work, not one per command).

An entry's payload is either one command (canonical JSON, `commands.py`) or a batch:

    MAGIC (b"\\x00hsm-batch\\x01")  count: u32 big-endian
    count x (length: u32 big-endian, the command's bytes exactly as its own entry would carry them)

The magic's first byte can never start a command's JSON, so the two never mix up. Each command's
bytes are decoded and applied by the same code as a plain entry's (`ReplicatedState.apply_payload`):
its own Result, its own request-id dedup, its own audit record in chain order; a command refused
or failing inside apply does not touch the others. A malformed batch frame decodes to nothing
(`CommandDecodeError`): no command of it is applied, on any member.

Members older than this format decode a batch as an undecodable command and apply none of it, so
the leader proposes batches only when every voter says it reads them (hsmnode/raft/features.py).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from hsmnode.domain.commands import MAX_COMMAND_BYTES
from hsmnode.domain.errors import CommandDecodeError

MAGIC = b"\x00hsm-batch\x01"
_COUNT = struct.Struct(">I")
# an entry this size or smaller goes to a follower in one AppendEntries (pysyncobj sends an entry of
# appendEntriesBatchSizeBytes, 64 KiB, or more as a chunked transmission: its slow path)
MAX_BATCH_BYTES = 60_000
MAX_BATCH_COMMANDS = 256  # commands per batch entry (GenerateBatch's MAX_BATCH)


def is_batch(payload: object) -> bool:
    """Does this entry payload start as a batch entry? (Anything but bytes: no.)"""
    return isinstance(payload, (bytes, bytearray)) and payload[: len(MAGIC)] == MAGIC  # noqa: UP038 (a tuple: `bytes | bytearray` builds a union per entry)


def encode_batch(payloads: Sequence[bytes]) -> bytes:
    """One batch entry holding `payloads` (encoded commands), in order."""
    parts = [MAGIC, _COUNT.pack(len(payloads))]
    for payload in payloads:
        parts += (_COUNT.pack(len(payload)), payload)
    return b"".join(parts)


def split_batch(payload: bytes) -> list[bytes]:
    """A batch entry's commands, each as the bytes of its own entry. Raises CommandDecodeError for a
    frame that is not exactly MAGIC, a count of 1..MAX_BATCH_COMMANDS and that many length-prefixed
    commands of at most MAX_COMMAND_BYTES each, with nothing after them."""
    if not is_batch(payload):
        raise CommandDecodeError("not a batch entry (its magic bytes are missing)")
    view = memoryview(payload)
    at = len(MAGIC)
    count = _read_u32(view, at, "the command count")
    if not 0 < count <= MAX_BATCH_COMMANDS:
        raise CommandDecodeError(
            f"a batch entry holds 1-{MAX_BATCH_COMMANDS} commands, this one says {count}"
        )
    at += _COUNT.size
    commands = []
    for n in range(count):
        size = _read_u32(view, at, f"command {n}'s length")
        at += _COUNT.size
        if size > MAX_COMMAND_BYTES or at + size > len(view):
            raise CommandDecodeError(
                f"batch entry command {n} says {size} bytes; {len(view) - at} are left "
                f"(a command holds at most {MAX_COMMAND_BYTES})"
            )
        commands.append(bytes(view[at : at + size]))
        at += size
    if at != len(view):
        raise CommandDecodeError(f"batch entry has {len(view) - at} bytes after its {count} commands")
    return commands


def _read_u32(view: memoryview, at: int, what: str) -> int:
    if at + _COUNT.size > len(view):
        raise CommandDecodeError(f"batch entry ends before {what}")
    (value,) = _COUNT.unpack_from(view, at)
    return int(value)


def pack(
    sizes: Sequence[int], max_bytes: int = MAX_BATCH_BYTES, max_commands: int = MAX_BATCH_COMMANDS
) -> list[list[int]]:
    """Group commands (their encoded sizes, in proposal order) into entries: consecutive runs whose
    batch frame stays within `max_bytes` and `max_commands`. Returns the command indexes of each
    entry, in order; a command too large to share an entry gets one of its own (a plain entry)."""
    groups: list[list[int]] = []
    current: list[int] = []
    used = len(MAGIC) + _COUNT.size
    for index, size in enumerate(sizes):
        framed = _COUNT.size + size
        if current and (used + framed > max_bytes or len(current) >= max_commands):
            groups.append(current)
            current, used = [], len(MAGIC) + _COUNT.size
        current.append(index)
        used += framed
    if current:
        groups.append(current)
    return groups
