"""The one table from SDK errors to the CKR codes a real token returns.

The SDK raises one exception class per gRPC status family (`hsmnode.client` HsmError tree);
the member's message tells cases of one family apart. Rows are tried in order; the first
whose context, class and message fragment match gives the code. Anything unmatched is
CKR_DEVICE_ERROR, logged with its cause (never a dropped connection).

    context  SDK error            message contains          CKR                          why
    login    Unauthenticated      wrong password            PIN_INCORRECT                PKCS#11 C_Login
    login    ResourceExhausted    (any)                     PIN_LOCKED                   lockout (Luna: policy 20)
    login    FailedPrecondition   has expired               PIN_EXPIRED                  Luna: initial password must change
    login    FailedPrecondition   requires activation       FUNCTION_FAILED (our choice) see ACTIVATION_MISSING
    login    NotFound             (any)                     TOKEN_NOT_PRESENT            assignment revoked meanwhile
    login    InvalidArgument      (any)                     PIN_LEN_RANGE                empty or over-long PIN
    setpin   Unauthenticated      (any)                     PIN_INCORRECT                old PIN wrong
    setpin   InvalidArgument      (any)                     PIN_INVALID                  new PIN breaks the password rule
    setpin   ResourceExhausted    (any)                     PIN_LOCKED
    *        Unauthenticated      (any)                     USER_NOT_LOGGED_IN           session ended: logout elsewhere,
                                                                                         expiry, revocation, lockout
    *        PermissionDenied     usage flag                KEY_FUNCTION_NOT_PERMITTED   CKA_SIGN etc. false
    *        PermissionDenied     not extractable           KEY_UNEXTRACTABLE            CKA_EXTRACTABLE false
    *        PermissionDenied     not exportable            KEY_UNEXTRACTABLE            the same, from a member that
                                                                                         predates the rename (one release)
    *        PermissionDenied     (any)                     USER_NOT_LOGGED_IN           role or grant missing (e.g. CU
                                                                                         creating a private key)
    *        FailedPrecondition   is blocked                KEY_FUNCTION_NOT_PERMITTED   M-of-N blocked key
    *        FailedPrecondition   private_key_wrapping      KEY_NOT_WRAPPABLE            partition policy
    *        FailedPrecondition   (any)                     FUNCTION_FAILED              wrong authorization state...
    *        ResourceExhausted    locked                    PIN_LOCKED
    *        ResourceExhausted    (any)                     DEVICE_MEMORY                container full
    *        NotFound             (any)                     OBJECT_HANDLE_INVALID        destroyed by another application
    *        AlreadyExists        (any)                     ATTRIBUTE_VALUE_INVALID      CKA_LABEL taken in the container
    *        InvalidArgument      authentication check      ENCRYPTED_DATA_INVALID       AES-GCM tag mismatch
    *        InvalidArgument      decryption failed         ENCRYPTED_DATA_INVALID       RSA-OAEP
    *        InvalidArgument      does not unwrap           WRAPPED_KEY_INVALID
    *        InvalidArgument      digest / DigestInfo       DATA_LEN_RANGE               pre-hashed input of wrong size
    *        InvalidArgument      the limit is              DATA_LEN_RANGE               over 64 KiB
    *        InvalidArgument      cannot encrypt this much  DATA_LEN_RANGE               RSA-OAEP input too long
    *        InvalidArgument      cannot carry usage        TEMPLATE_INCONSISTENT        usage the key type lacks
    *        InvalidArgument      (any)                     ARGUMENTS_BAD
    *        Unavailable          (any)                     DEVICE_ERROR                 no member answered (after failover)
    *        OutcomeUnknown       (any)                     DEVICE_ERROR
    *        Internal             (any)                     DEVICE_ERROR
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hsmnode.client import (
    AlreadyExists,
    FailedPrecondition,
    HsmError,
    Internal,
    InvalidArgument,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from hsmnode.pkcs11.rpc.constants import CKR
from hsmnode.pkcs11.rpc.dispatch import CkError

log = logging.getLogger("hsmnode.pkcs11")
T = TypeVar("T")

# Luna's exact code for a login on a partition that needs activation is not in its public
# documentation; the bridge answers CKR_FUNCTION_FAILED and logs the member's message, which
# names the fix (hsmnode partition activate).
ACTIVATION_MISSING = CKR.FUNCTION_FAILED


@dataclass(frozen=True)
class Row:
    context: str  # "login", "setpin" or "*"
    error: type[HsmError]
    fragment: str  # "" matches any message
    rv: CKR


TABLE: tuple[Row, ...] = (
    Row("login", Unauthenticated, "wrong password", CKR.PIN_INCORRECT),
    Row("login", ResourceExhausted, "", CKR.PIN_LOCKED),
    Row("login", FailedPrecondition, "has expired", CKR.PIN_EXPIRED),
    Row("login", FailedPrecondition, "requires activation", ACTIVATION_MISSING),
    Row("login", NotFound, "", CKR.TOKEN_NOT_PRESENT),
    Row("login", InvalidArgument, "", CKR.PIN_LEN_RANGE),
    Row("setpin", Unauthenticated, "", CKR.PIN_INCORRECT),
    Row("setpin", InvalidArgument, "", CKR.PIN_INVALID),
    Row("setpin", ResourceExhausted, "", CKR.PIN_LOCKED),
    Row("*", Unauthenticated, "", CKR.USER_NOT_LOGGED_IN),
    Row("*", PermissionDenied, "usage flag", CKR.KEY_FUNCTION_NOT_PERMITTED),
    Row("*", PermissionDenied, "not extractable", CKR.KEY_UNEXTRACTABLE),
    Row("*", PermissionDenied, "not exportable", CKR.KEY_UNEXTRACTABLE),  # a member before issue 13's rename
    Row("*", PermissionDenied, "", CKR.USER_NOT_LOGGED_IN),
    Row("*", FailedPrecondition, "is blocked", CKR.KEY_FUNCTION_NOT_PERMITTED),
    Row("*", FailedPrecondition, "private_key_wrapping", CKR.KEY_NOT_WRAPPABLE),
    Row("*", FailedPrecondition, "", CKR.FUNCTION_FAILED),
    Row("*", ResourceExhausted, "locked", CKR.PIN_LOCKED),
    Row("*", ResourceExhausted, "", CKR.DEVICE_MEMORY),
    Row("*", NotFound, "", CKR.OBJECT_HANDLE_INVALID),
    Row("*", AlreadyExists, "", CKR.ATTRIBUTE_VALUE_INVALID),
    Row("*", InvalidArgument, "authentication check", CKR.ENCRYPTED_DATA_INVALID),
    Row("*", InvalidArgument, "decryption failed", CKR.ENCRYPTED_DATA_INVALID),
    Row("*", InvalidArgument, "does not unwrap", CKR.WRAPPED_KEY_INVALID),
    Row("*", InvalidArgument, "digest", CKR.DATA_LEN_RANGE),
    Row("*", InvalidArgument, "DigestInfo", CKR.DATA_LEN_RANGE),
    Row("*", InvalidArgument, "the limit is", CKR.DATA_LEN_RANGE),
    Row("*", InvalidArgument, "cannot encrypt this much", CKR.DATA_LEN_RANGE),
    Row("*", InvalidArgument, "cannot carry usage", CKR.TEMPLATE_INCONSISTENT),
    Row("*", InvalidArgument, "", CKR.ARGUMENTS_BAD),
    Row("*", Unavailable, "", CKR.DEVICE_ERROR),
    Row("*", OutcomeUnknown, "", CKR.DEVICE_ERROR),
    Row("*", Internal, "", CKR.DEVICE_ERROR),
)


def ckr_for(error: HsmError, context: str = "*") -> CKR:
    """The CKR code for an SDK error raised while doing `context` ("login", "setpin" or "*")."""
    for row in TABLE:
        if row.context not in (context, "*"):
            continue
        if isinstance(error, row.error) and row.fragment in error.message:
            return row.rv
    return CKR.DEVICE_ERROR


def sdk(call: Callable[[], T], context: str = "*") -> T:
    """Run an SDK call; its error becomes the CKR code a real token returns (the table above).

    Raises CkError with that code and the member's message; CKR_DEVICE_ERROR is logged."""
    try:
        return call()
    except HsmError as exc:
        rv = ckr_for(exc, context)
        if rv == CKR.DEVICE_ERROR:
            log.warning("cluster error answered CKR_DEVICE_ERROR: %s", exc)
        raise CkError(rv, str(exc)) from None
