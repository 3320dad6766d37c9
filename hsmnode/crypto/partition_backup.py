"""The partition backup file: a readable header, the objects encrypted for the cluster (its SMK).

    HSMNODE-BACKUP-1\\n
    <4-byte big-endian header length> <header: canonical JSON>
    <12-byte nonce> <AES-256-GCM ciphertext of the payload under the SMK, tag at the end>

The associated data is the magic line plus the header, so neither can be changed, and
a truncated or corrupted file fails authentication as a whole: nothing of it is
restored. Only a member holding this cluster's SMK can read the objects. The
header says what the file is without the SMK (cluster, partition, cloning domain,
counts), so a wrong restore can be refused with a message that names the mismatch.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from hsmnode.crypto.keys import KeyMaterialError, Smk

MAGIC = b"HSMNODE-BACKUP-1\n"
MAX_HEADER = 64 * 1024


class BackupFormatError(KeyMaterialError):
    """A file that is not a backup, or a damaged one; the message says which."""


def _json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def seal(smk: Smk, header: dict[str, Any], objects: list[dict[str, Any]]) -> bytes:
    """The backup file for `objects` (each a dict whose bytes values are already base64 text)."""
    head = _json(header)
    aad = MAGIC + head
    return MAGIC + struct.pack(">I", len(head)) + head + smk.wrap(aad, _json({"objects": objects}))


def read_header(blob: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """(header, its bytes, the encrypted rest); BackupFormatError when the file is not a backup."""
    if not blob.startswith(MAGIC):
        raise BackupFormatError(
            "this is not an hsmnode partition backup (it does not start with HSMNODE-BACKUP-1)"
        )
    rest = blob[len(MAGIC) :]
    if len(rest) < 4:
        raise BackupFormatError("the backup is truncated (its header is missing)")
    (length,) = struct.unpack(">I", rest[:4])
    if length > MAX_HEADER or len(rest) < 4 + length:
        raise BackupFormatError("the backup is truncated or corrupted (its header is cut short)")
    head = rest[4 : 4 + length]
    try:
        header = json.loads(head)
    except ValueError:
        raise BackupFormatError("the backup's header is corrupted (not JSON)") from None
    if not isinstance(header, dict) or header.get("v") != 1:
        raise BackupFormatError("the backup's header is not a version-1 hsmnode backup header")
    return header, head, rest[4 + length :]


def open_backup(smk: Smk, blob: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, objects) of a backup made under this SMK.

    Raises BackupFormatError: not a backup, truncated, corrupted, or encrypted for another cluster."""
    header, head, sealed = read_header(blob)
    try:
        payload = smk.unwrap(MAGIC + head, sealed)
    except KeyMaterialError:
        raise BackupFormatError(
            "the backup failed its integrity check: it is truncated or corrupted, or it was encrypted "
            "for another cluster's SMK; nothing was restored"
        ) from None
    objects = json.loads(payload)["objects"]
    if not isinstance(objects, list) or len(objects) != header.get("objects"):
        raise BackupFormatError("the backup's objects do not match its header")
    return header, objects


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
