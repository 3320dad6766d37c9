"""The encryption of a cluster backup file: AES-256-GCM under a key derived from the cluster SMK.

key   = HKDF-SHA256(SMK, salt = 16 random bytes of the file, info = "hsmnode cluster backup v1|<cluster id>")
body  = 12-byte nonce || AES-256-GCM(key, nonce, plaintext, associated data = the file's header bytes)

Only a holder of the SMK reads or forges a backup; the header (cluster id, index,
counts) is authenticated with the body, so it cannot be altered unnoticed. The key
material inside stays wrapped under the SMK as in the replicated state.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hsmnode.crypto.keys import Smk

SALT_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
_INFO = b"hsmnode cluster backup v1|"


class BackupAuthenticationError(ValueError):
    """The body or the header failed authentication: altered, or sealed under another key."""


def backup_key(smk: Smk, salt: bytes, cluster_id: str) -> bytes:
    return smk.derive(salt, _INFO + cluster_id.encode("utf-8"))


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def seal(key: bytes, header: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, header)


def open_sealed(key: bytes, header: bytes, body: bytes) -> bytes:
    """The plaintext; BackupAuthenticationError when the tag does not verify."""
    if len(body) < NONCE_BYTES + TAG_BYTES:
        raise BackupAuthenticationError("the encrypted body is shorter than a nonce and a tag")
    try:
        return AESGCM(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], header)
    except InvalidTag:
        raise BackupAuthenticationError("the encrypted body or the header failed authentication") from None
