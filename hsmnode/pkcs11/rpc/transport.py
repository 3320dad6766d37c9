"""Framing on the unix socket (p11-kit `rpc-transport.c`).

    connect     client sends 1 byte: the protocol version it wants; the server answers
                1 byte: the version it will speak (the lower of the two)
    frame       u32 code | u32 options length | u32 body length | options | body
                (big-endian). The client numbers its calls with `code`; the answer
                carries the same code, so answers may come back in any order. Options
                carry the client's module name and are otherwise unused.

`read_frame` refuses a frame larger than `max_frame` before reading its body: the
connection cannot be resynchronized after that, so the caller answers and closes it.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

HEADER = struct.Struct(">III")
DEFAULT_MAX_FRAME = 4 * 1024 * 1024


class FrameTooLarge(Exception):
    """A frame header announced more bytes than the server accepts."""

    def __init__(self, code: int, size: int, limit: int) -> None:
        super().__init__(f"frame {code} announces {size} bytes; the limit is {limit}")
        self.code = code


@dataclass(frozen=True)
class Frame:
    code: int
    options: bytes
    body: bytes


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    """n bytes, or None when the peer closed the connection first."""
    chunks: list[bytes] = []
    left = n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket, max_frame: int = DEFAULT_MAX_FRAME) -> Frame | None:
    """The next frame, or None at end of stream (also mid-frame: a truncated frame ends the stream)."""
    header = _read_exact(sock, HEADER.size)
    if header is None:
        return None
    code, olen, blen = HEADER.unpack(header)
    if olen + blen > max_frame:
        raise FrameTooLarge(code, olen + blen, max_frame)
    options = _read_exact(sock, olen) if olen else b""
    body = _read_exact(sock, blen) if blen else b""
    if options is None or body is None:
        return None
    return Frame(code, options, body)


def encode_frame(code: int, body: bytes, options: bytes = b"") -> bytes:
    return HEADER.pack(code, len(options), len(body)) + options + body


def server_handshake(sock: socket.socket, version: int) -> int | None:
    """Read the client's version byte and answer min(its version, ours); None if it hung up."""
    wanted = _read_exact(sock, 1)
    if wanted is None:
        return None
    agreed = min(wanted[0], version)
    sock.sendall(bytes([agreed]))
    return agreed
