"""Sealed Raft frames: the negotiation mark, the keys and the nonces (used by hsmnode/raft/transport.py).

pysyncobj's key exchange under the Raft password is kept (one Fernet frame each way: each end sends a
random key, and prefixes every later frame with the peer's), with each end's key prefixed by
SEALS_MARK ("this end reads sealed frames"). When both keys carry it, every frame after the
exchange, both ways, is sealed instead of a Fernet token:

    native 4-byte length | 0x01 | AES-256-GCM(key of the direction, nonce = frame number, aad 0x01)
                                   over pickle protocol 4 of the message (no zlib, no key prefix)

- key of a direction: HKDF-SHA256 over the random key its receiver chose, then its sender's
  (`frame_key`): each direction of each connection has its own key, new at every (re)connect;
- nonce: the frame's number in its direction (0, 1, ...), not sent: TCP delivers in order, so a
  replayed, reordered, dropped, reflected or foreign frame fails authentication and the connection is
  dropped (Fernet's replay check only refused tokens stamped in an earlier second);
- a Fernet frame on a sealed connection is refused (no downgrade mid-connection). The keys travel
  only inside Fernet frames under the Raft password, so frames stay as secret as before, and the
  mark cannot be stripped from the exchange without the password.

A peer that does not mark its key (a member of an older version, plain pysyncobj, `syncobj_admin`)
only echoes the key it received, whatever its length, and keeps Fernet frames both ways.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALS_MARK = b"hsmnode-seals-1:"  # prefix of a random key whose sender reads (and sends) sealed frames
SEALED = b"\x01"  # first byte of a sealed frame, and its associated data (a Fernet token's is b"g")
NONCE = struct.Struct("<4xQ")  # 96-bit AES-GCM nonce: the frame's number in its direction
_KDF_INFO = b"hsmnode raft sealed frames v1"


def marked(key: Any) -> bool:
    """Does this exchanged random key say its sender reads sealed frames?"""
    return isinstance(key, bytes) and key.startswith(SEALS_MARK)


def new_random_key() -> bytes:
    """A connection's random key for pysyncobj's exchange: SEALS_MARK, then 32 random bytes (as
    pysyncobj's own keys)."""
    return SEALS_MARK + os.urandom(32)


def frame_key(receiver_chose: bytes, sender_chose: bytes) -> bytes:
    """The AES-256-GCM key (32 bytes) of one direction of a connection: HKDF-SHA256 over the random
    key the frames' receiver chose in the exchange (their sender's `sendRandKey`), then the one their
    sender chose. Each direction of each connection has its own key."""
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO)
    return kdf.derive(receiver_chose + sender_chose)


def frame_cipher(key: bytes) -> AESGCM:
    """The AEAD one direction of one connection seals (or opens) its frames with: AES-256-GCM under
    `key` (32 bytes, `frame_key`), kept for the connection's life. Its `decrypt` raises
    cryptography.exceptions.InvalidTag for a frame altered, replayed, reordered or of another
    connection or direction."""
    return AESGCM(key)
