"""The PKCS#11 bridge's pure parts: p11-kit wire encoding, call dispatch, the CKR table, DER, mechanisms."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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
from hsmnode.pkcs11 import der, mechanisms
from hsmnode.pkcs11.errors import TABLE, ckr_for
from hsmnode.pkcs11.rpc import dispatch
from hsmnode.pkcs11.rpc.calls import BY_NAME, CALLS
from hsmnode.pkcs11.rpc.constants import CKA, CKF_UNWRAP, CKF_WRAP, CKG, CKM, CKR
from hsmnode.pkcs11.rpc.wire import Attribute, Mechanism, Reader, WireError, Writer


def test_call_table_matches_p11kit_0_24_1_numbering() -> None:
    assert len(CALLS) == 66
    assert BY_NAME["C_Initialize"].id == 1 and BY_NAME["C_Sign"].id == 43
    assert BY_NAME["C_WaitForSlotEvent"].id == 65
    assert BY_NAME["C_GetAttributeValue"].request_parts == ("u", "u", "fA")


@pytest.mark.parametrize(
    "attr",
    [
        Attribute(CKA.SIGN, 1, 1),
        Attribute(CKA.CLASS, 3, 8),
        Attribute(CKA.LABEL, b"key", 3),
        Attribute(CKA.START_DATE, b"20260101", 8),
        Attribute(CKA.ALLOWED_MECHANISMS, (CKM.ECDSA, CKM.SHA256), 16),
        Attribute(CKA.WRAP_TEMPLATE, (Attribute(CKA.SIGN, 1, 1),), 24),
        Attribute(CKA.VALUE, None),
    ],
    ids=lambda a: f"{a.type:#x}",
)
def test_attributes_round_trip_by_kind(attr: Attribute) -> None:
    w = Writer()
    w.attribute(attr)
    r = Reader(w.getvalue())
    back = r.attribute()
    assert r.at_end() and back.type == attr.type and back.value == attr.value


@pytest.mark.parametrize(
    "mech",
    [
        Mechanism(CKM.ECDSA, None),
        Mechanism(CKM.RSA_PKCS_PSS, (CKM.SHA256, CKG.MGF1_SHA256, 32)),
        Mechanism(CKM.RSA_PKCS_OAEP, (CKM.SHA256, CKG.MGF1_SHA256, 1, None)),
        Mechanism(CKM.AES_GCM, (b"\x00" * 12, 96, b"aad", 128)),
        Mechanism(0x8000_0001, b"vendor parameter"),
    ],
    ids=lambda m: f"{m.type:#x}",
)
def test_mechanisms_round_trip(mech: Mechanism) -> None:
    w = Writer()
    w.mechanism(mech)
    r = Reader(w.getvalue())
    assert r.mechanism() == mech and r.at_end()


def test_truncated_and_absurd_lengths_raise_wire_errors() -> None:
    with pytest.raises(WireError, match="truncated"):
        Reader(b"\x00\x00\x00\x05ab").byte_array()
    with pytest.raises(WireError, match="out of range"):
        Reader(b"\x7f\xff\xff\xff").byte_array()
    with pytest.raises(WireError, match="more than"):
        Reader(b"\x00\x10\x00\x00").count("template")
    assert Reader(b"\xff\xff\xff\xff").byte_array() is None  # NULL


class _Module:
    def C_GetInfo(self, conn: object) -> tuple[object, ...]:
        return ((2, 40), "m", 0, "d", (0, 1))

    def C_GetSlotList(self, conn: object, present: int, room: int) -> tuple[object]:
        return ([1, 2] if room >= 2 else 2,)

    def C_Finalize(self, conn: object) -> tuple[()]:
        raise RuntimeError("a bug")

    def C_Logout(self, conn: object, session: int) -> tuple[()]:
        raise dispatch.CkError(CKR.USER_NOT_LOGGED_IN)


def _request(name: str, *parts: bytes) -> bytes:
    w = Writer()
    w.u32(BY_NAME[name].id)
    w.byte_array(BY_NAME[name].request.encode())
    return w.getvalue() + b"".join(parts)


def _error_code(reply: bytes) -> int:
    r = Reader(reply)
    assert r.u32() == 0 and r.byte_array() == b"u"
    return r.u64()


def test_dispatch_answers_every_failure_with_a_ckr_code() -> None:
    m = _Module()
    assert _error_code(dispatch.handle(m, None, b"\x00\x00\x00\x63")) == CKR.FUNCTION_NOT_SUPPORTED
    assert _error_code(dispatch.handle(m, None, b"\x00\x00\x00\x00")) == CKR.FUNCTION_NOT_SUPPORTED
    assert _error_code(dispatch.handle(m, None, b"\x00")) == CKR.DEVICE_ERROR
    assert _error_code(dispatch.handle(m, None, _request("C_GetSlotList", b"\x01"))) == CKR.DEVICE_ERROR
    assert _error_code(dispatch.handle(m, None, _request("C_GetInfo", b"x"))) == CKR.DEVICE_ERROR
    assert _error_code(dispatch.handle(m, None, _request("C_Finalize"))) == CKR.DEVICE_ERROR  # logged
    logout = _request("C_Logout", (7).to_bytes(8, "big"))
    assert _error_code(dispatch.handle(m, None, logout)) == CKR.USER_NOT_LOGGED_IN
    assert (
        _error_code(dispatch.handle(m, None, _request("C_Sign", b"\x00" * 17))) == CKR.FUNCTION_NOT_SUPPORTED
    )


def test_dispatch_encodes_length_only_and_full_arrays() -> None:
    m = _Module()
    slot_list = lambda room: _request("C_GetSlotList", b"\x01", room.to_bytes(4, "big"))  # noqa: E731
    r = Reader(dispatch.handle(m, None, slot_list(0)))
    assert r.u32() == BY_NAME["C_GetSlotList"].id and r.byte_array() == b"au"
    assert (r.byte(), r.u32()) == (0, 2)  # only the length
    r = Reader(dispatch.handle(m, None, slot_list(8)))
    r.u32(), r.byte_array()
    assert (r.byte(), r.u32(), r.u64(), r.u64()) == (1, 2, 1, 2)
    r = Reader(dispatch.handle(m, None, _request("C_GetInfo")))
    r.u32(), r.byte_array()
    assert (r.byte(), r.byte()) == (2, 40) and r.byte_array() == b"m" + b" " * 31
    assert (
        dispatch.deliver(b"abc", 0) == 3
        and dispatch.deliver(b"abc", 2) == 3
        and dispatch.deliver(b"abc", 3) == b"abc"
    )


_SAMPLES: dict[type[HsmError], str] = {
    Unauthenticated: "wrong password for CO of partition 'demo' (3 attempts left before lockout)",
    ResourceExhausted: "CO of partition 'demo' is locked after 10 failed logins",
    FailedPrecondition: "the initial password of CO has expired",
    NotFound: "no partition 'x' is assigned to this client",
    InvalidArgument: "password must not be empty",
    PermissionDenied: "role CU may not do object.create",
    AlreadyExists: "partition demo already holds a key labelled 'k'",
    Unavailable: "no member answered Sign",
    OutcomeUnknown: "the commit timed out",
    Internal: "a bug",
}


def _reachable(row) -> bool:  # type: ignore[no-untyped-def]
    """A row no earlier catch-all row of its class and context hides."""
    earlier = TABLE[: TABLE.index(row)]
    return not any(
        r.error is row.error and r.context in (row.context, "*") and not r.fragment for r in earlier
    )


@pytest.mark.parametrize(
    "row",
    [r for r in TABLE if _reachable(r)],
    ids=lambda r: f"{r.context}-{r.error.__name__}-{r.fragment or 'any'}",
)
def test_every_row_of_the_ckr_table(row) -> None:  # type: ignore[no-untyped-def]
    message = f"... {row.fragment} ..." if row.fragment else _SAMPLES[row.error]
    if row.context == "*" and row.error is ResourceExhausted and not row.fragment:
        message = (
            "partition 'demo' holds 10000 objects, the most a partition may hold: destroy keys it no longer "
            "needs (hsmnode key destroy), or create 'k' in another partition"
        )
    assert ckr_for(row.error(message), row.context) == row.rv


def test_no_row_of_the_ckr_table_is_dead() -> None:
    hidden = [r for r in TABLE if not _reachable(r) and r.context == "*"]
    assert not hidden, hidden


def test_ckr_table_contexts_and_fallback() -> None:
    wrong = Unauthenticated("wrong password for CO of partition 'demo' (9 attempts left before lockout)")
    assert ckr_for(wrong, "login") == CKR.PIN_INCORRECT
    assert ckr_for(wrong) == CKR.USER_NOT_LOGGED_IN  # outside a login: the session ended
    assert (
        ckr_for(FailedPrecondition("partition 'p' requires activation: ..."), "login") == CKR.FUNCTION_FAILED
    )
    assert ckr_for(HsmError("something new")) == CKR.DEVICE_ERROR


def test_spki_attributes_and_private_keys_round_trip_through_der() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public = der.parse_spki(spki)
    assert public.ec_params == bytes.fromhex("06082a8648ce3d030107") and len(public.ec_point) == 67
    assert (
        serialization.load_pem_public_key(der.spki_pem(public)).public_numbers()
        == key.public_key().public_numbers()
    )  # type: ignore[union-attr]
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    loaded = serialization.load_der_private_key(der.ec_private("P-256", scalar), None)
    assert loaded.private_numbers().private_value == key.private_numbers().private_value  # type: ignore[union-attr]
    r = rsa.generate_private_key(65537, 2048)
    n = r.private_numbers()
    b = lambda v: v.to_bytes((v.bit_length() + 7) // 8, "big")  # noqa: E731
    parts = {
        "modulus": b(n.public_numbers.n),
        "public_exponent": b(n.public_numbers.e),
        "private_exponent": b(n.d),
        "prime_1": b(n.p),
        "prime_2": b(n.q),
        "exponent_1": b(n.dmp1),
        "exponent_2": b(n.dmq1),
        "coefficient": b(n.iqmp),
    }
    assert serialization.load_der_private_key(der.rsa_private(parts), None).private_numbers() == n  # type: ignore[union-attr]
    signature = key.sign(b"m", ec.ECDSA(hashes.SHA256()))
    raw = der.ecdsa_raw(signature, 32)
    assert len(raw) == 64 and der.ecdsa_der(raw) == signature
    assert der.curve_of(bytes.fromhex("06052b81040022")) == "P-384"
    with pytest.raises(der.DerError, match="not supported"):
        der.curve_of(bytes.fromhex("06082a8648ce3d030101"))


def test_pss_parameters_must_fit_what_the_cluster_signs() -> None:
    ok = Mechanism(CKM.RSA_PKCS_PSS, (CKM.SHA256, CKG.MGF1_SHA256, 32))
    assert mechanisms.sign_mechanism(ok).one_shot == "RSA-PSS-SHA256-DIGEST"
    for bad in ((CKM.SHA256, CKG.MGF1_SHA384, 32), (CKM.SHA256, CKG.MGF1_SHA256, 20), (0x123, 1, 1)):
        with pytest.raises(dispatch.CkError) as exc:
            mechanisms.sign_mechanism(Mechanism(CKM.RSA_PKCS_PSS, bad))
        assert exc.value.rv == CKR.MECHANISM_PARAM_INVALID
    with pytest.raises(dispatch.CkError) as exc:
        mechanisms.sign_mechanism(Mechanism(CKM.ECDSA, b"unexpected"))
    assert exc.value.rv == CKR.MECHANISM_PARAM_INVALID
    spec = mechanisms.SIGN[CKM.SHA256_RSA_PKCS]
    assert (
        mechanisms.digest_for_signature(spec, b"abc")
        == mechanisms.DIGEST_INFO_PREFIX["SHA256"] + hashlib.sha256(b"abc").digest()
    )


def test_wrap_mechanisms_are_aes_gcm_with_its_parameter_and_kwp_without_one() -> None:
    iv = bytes(range(12))
    gcm = Mechanism(CKM.AES_GCM, (iv, 96, b"aad", 128))
    assert mechanisms.wrap_mechanism(gcm) == ("AES-GCM", iv, b"aad")
    assert mechanisms.wrap_mechanism(Mechanism(CKM.AES_GCM, (iv, 96, None, 128))) == ("AES-GCM", iv, b"")
    assert mechanisms.wrap_mechanism(Mechanism(CKM.AES_KEY_WRAP_KWP, None)) == ("AES-KWP", b"", b"")
    for mech, rv in (
        (Mechanism(CKM.AES_GCM, (iv[:8], 64, b"", 128)), CKR.MECHANISM_PARAM_INVALID),
        (Mechanism(CKM.AES_GCM, (iv, 96, b"", 96)), CKR.MECHANISM_PARAM_INVALID),
        (Mechanism(CKM.AES_GCM, b"raw bytes"), CKR.MECHANISM_PARAM_INVALID),
        (Mechanism(CKM.AES_KEY_WRAP_KWP, b"\xa6" * 4), CKR.MECHANISM_PARAM_INVALID),
        (Mechanism(CKM.RSA_PKCS_OAEP, None), CKR.MECHANISM_INVALID),
    ):
        with pytest.raises(dispatch.CkError) as exc:
            mechanisms.wrap_mechanism(mech)
        assert exc.value.rv == rv, mech
    flags = mechanisms.INFO[CKM.AES_GCM][2]
    assert flags & CKF_WRAP and flags & CKF_UNWRAP
