"""Call dispatch: decode a request by its call's signature, run the module's function, encode the answer.

A module is any object with methods named after the PKCS#11 functions
(`C_Sign(self, conn, session, data, room) -> tuple`): arguments arrive decoded in the
order of the request signature, after the per-connection `conn`; the method returns
the response values in signature order, or raises `CkError(rv)`.

    request part   argument                        response part  value returned
    u, y           int                             u, y           int
    z              bytes                           v              (major, minor)
    ay             bytes, or None (NULL)           s              str (padded to the field)
    aA             list[Attribute]                 ay, au         bytes / list[int], or an int:
    fy, fu         int: room the caller has                           "only the length" (the
                   (0: it asks for the length)                         caller's buffer was NULL
    fA             list[(type, room)]                                  or too small)
    M              Mechanism                       aA             list[Attribute]

Every failure becomes an ERROR answer carrying a CKR code, never a dropped connection:
an unknown call number CKR_FUNCTION_NOT_SUPPORTED; a wrong signature, a truncated or
malformed body CKR_DEVICE_ERROR (p11-kit's own PARSE_ERROR); a bug in the module
CKR_DEVICE_ERROR with the traceback logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hsmnode.pkcs11.rpc.calls import CALLS, ERROR, Call
from hsmnode.pkcs11.rpc.constants import CKR, name_of
from hsmnode.pkcs11.rpc.wire import Attribute, Reader, WireError, Writer

log = logging.getLogger("hsmnode.pkcs11")

# widths of the blank-padded fields ("s") of each answer, in order (PKCS#11 CK_*_INFO)
SPACE_WIDTHS: dict[str, tuple[int, ...]] = {
    "C_GetInfo": (32, 32),
    "C_GetSlotInfo": (64, 32),
    "C_GetTokenInfo": (32, 32, 16, 16, 16),
}


class CkError(Exception):
    """A PKCS#11 failure: `rv` is the CKR code the caller gets; the message goes to the log."""

    def __init__(self, rv: int, message: str = "") -> None:
        super().__init__(message or name_of(CKR, rv))
        self.rv = int(rv)


def error_body(rv: int) -> bytes:
    w = Writer()
    w.u32(ERROR.id)
    w.byte_array(ERROR.response.encode())
    w.u64(rv)
    return w.getvalue()


def decode_request(body: bytes) -> tuple[Call, list[Any]]:
    """(the call, its decoded arguments); CkError for an unknown call or a malformed body."""
    r = Reader(body)
    try:
        call_id = r.u32()
    except WireError as exc:
        raise CkError(CKR.DEVICE_ERROR, f"message too short for a call id: {exc}") from None
    if call_id == ERROR.id or call_id >= len(CALLS):
        raise CkError(CKR.FUNCTION_NOT_SUPPORTED, f"unknown call number {call_id}")
    call = CALLS[call_id]
    try:
        signature = r.byte_array()
        if signature != call.request.encode():
            raise CkError(
                CKR.DEVICE_ERROR,
                f"{call.name}: signature {signature!r} does not match {call.request!r}",
            )
        args = [_read_part(r, part) for part in call.request_parts]
    except WireError as exc:
        raise CkError(CKR.DEVICE_ERROR, f"{call.name}: {exc}") from None
    if not r.at_end():
        raise CkError(CKR.DEVICE_ERROR, f"{call.name}: {len(body) - r.offset} unexpected trailing bytes")
    return call, args


def _read_part(r: Reader, part: str) -> Any:
    if part == "u":
        return r.u64()
    if part == "y":
        return r.byte()
    if part == "z":
        return r.byte_array() or b""
    if part == "ay":
        if not r.byte():
            r.u32()  # the length of a NULL array (p11-kit writes it; 0.24.1's server forgot to read it)
            return None
        return r.byte_array()
    if part == "au":
        present = r.byte()
        n = r.count("ulong array")
        return [r.u64() for _ in range(n)] if present else None
    if part == "aA":
        return [r.attribute() for _ in range(r.count("template"))]
    if part in ("fy", "fu"):
        return r.u32()
    if part == "fA":
        return [(r.u32(), r.u32()) for _ in range(r.count("attribute list"))]
    if part == "M":
        return r.mechanism()
    raise WireError(f"signature part {part!r} cannot appear in a request")


def encode_response(call: Call, values: tuple[Any, ...]) -> bytes:
    parts = call.response_parts
    if len(values) != len(parts):
        raise TypeError(f"{call.name} returned {len(values)} values for {call.response!r}")
    w = Writer()
    w.u32(call.id)
    w.byte_array(call.response.encode())
    widths = iter(SPACE_WIDTHS.get(call.name, ()))
    for part, value in zip(parts, values, strict=True):
        if part in ("u", "y"):
            (w.u64 if part == "u" else w.byte)(int(value))
        elif part == "v":
            w.byte(value[0])
            w.byte(value[1])
        elif part == "s":
            w.space_string(str(value), next(widths))
        elif part == "ay":
            if isinstance(value, int):  # only the length: NULL or too small a buffer
                w.byte(0)
                w.u32(value)
            else:
                w.byte(1)
                w.byte_array(bytes(value))
        elif part == "au":
            if isinstance(value, int):
                w.byte(0)
                w.u32(value)
            else:
                w.byte(1)
                w.u32(len(value))
                for item in value:
                    w.u64(item)
        elif part == "aA":
            w.u32(len(value))
            for attr in value:
                w.attribute(attr)
        else:
            raise TypeError(f"signature part {part!r} cannot appear in an answer")
    return w.getvalue()


def deliver(data: bytes, room: int) -> bytes | int:
    """What an "ay" answer carries for a caller with `room` bytes: the data, or only its length
    (room 0 means a NULL buffer: the caller asks for the length; less than needed: too small)."""
    return data if room >= len(data) and room else len(data)


def handle(module: object, conn: object, body: bytes) -> bytes:
    """One request body in, one answer body out; never raises."""
    name = "?"
    try:
        call, args = decode_request(body)
        name = call.name
        fn: Callable[..., tuple[Any, ...]] | None = getattr(module, call.name, None)
        if fn is None:
            raise CkError(CKR.FUNCTION_NOT_SUPPORTED, f"{call.name} is not supported by this token")
        return encode_response(call, fn(conn, *args))
    except CkError as exc:
        if exc.rv in (CKR.DEVICE_ERROR, CKR.FUNCTION_NOT_SUPPORTED, CKR.GENERAL_ERROR):
            log.warning("%s: %s (%s)", name, name_of(CKR, exc.rv), exc)
        else:
            log.debug("%s: %s (%s)", name, name_of(CKR, exc.rv), exc)
        return error_body(exc.rv)
    except Exception:
        log.exception("%s: unexpected failure, answered CKR_DEVICE_ERROR", name)
        return error_body(CKR.DEVICE_ERROR)


__all__ = ["Attribute", "CkError", "decode_request", "deliver", "encode_response", "error_body", "handle"]
