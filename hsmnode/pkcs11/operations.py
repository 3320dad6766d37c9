"""The token's cryptographic functions: sign/verify, encrypt/decrypt, digest (key creation and
wrapping: `keys.py`).

Each C_xxxInit checks the session, the key's class, type and usage flag and the mechanism's
parameter, and remembers the operation; the cluster does the work at C_xxx / C_xxxFinal.
Multi-part signing of a hashed mechanism hashes in the bridge and signs the digest with the
cluster's pre-hashed mechanism (same signature, no size limit); other multi-part input is
buffered up to the cluster's 64 KiB. A caller asking for the output length first (NULL
buffer) gets the length of a result computed once and kept for its second call, so an
operation runs once in the cluster however the caller sizes its buffer.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from hsmnode.pkcs11 import der, mechanisms
from hsmnode.pkcs11.errors import sdk
from hsmnode.pkcs11.objects import KEY_TYPES, P11Object
from hsmnode.pkcs11.rpc.constants import CKA, CKM, CKO, CKR
from hsmnode.pkcs11.rpc.dispatch import CkError, deliver
from hsmnode.pkcs11.rpc.wire import Mechanism
from hsmnode.pkcs11.state import Operation, Session

if TYPE_CHECKING:
    from hsmnode.client import KeyInfo, PartitionSession
    from hsmnode.pkcs11.state import Connection

MAX_BUFFERED = 64 * 1024 + 16  # the service's limit per operation (64 KiB), and an AES-GCM tag


class Operations:
    """Mixed into Token (through KeyFunctions, keys.py); uses its session(), obj(), logged_in(),
    remember() and handles."""

    if TYPE_CHECKING:

        def session(self, conn: Connection, handle: int) -> Session: ...
        def obj(self, session: Session, handle: int) -> P11Object: ...
        def logged_in(self, session: Session) -> PartitionSession: ...
        def remember(self, session: Session, key: KeyInfo, temporary: bool) -> list[int]: ...
        def attrs(self, obj: P11Object) -> dict[int, Any]: ...

    # --- helpers ----------------------------------------------------------------------

    def _start(self, session: Session, kind: str, op: Operation) -> None:
        if kind in session.ops:
            raise CkError(CKR.OPERATION_ACTIVE, f"a {kind} operation is already active in this session")
        session.ops[kind] = op

    def _op(self, session: Session, kind: str) -> Operation:
        op = session.ops.get(kind)
        if op is None:
            raise CkError(CKR.OPERATION_NOT_INITIALIZED, f"call C_{kind.capitalize()}Init first")
        return op

    def _finish(self, session: Session, kind: str, compute: Any, data: bytes, room: int) -> bytes | int:
        """Run `compute` once (an error ends the operation), then hand out the result or its length."""
        op = self._op(session, kind)
        if op.answer is not None and op.answer[0] == data:
            result = op.answer[1]
        else:
            try:
                result = compute()
            except CkError:
                session.ops.pop(kind, None)
                raise
            op.answer = (data, result)
        out = deliver(result, room)
        if not isinstance(out, int):
            session.ops.pop(kind, None)
        return out

    def _key(self, session: Session, handle: int, cls: tuple[int, ...], flag: int, invalid: int) -> P11Object:
        try:
            obj = self.obj(session, handle)
        except CkError as exc:
            raise CkError(invalid, str(exc)) from None
        if obj.object_class not in cls:
            raise CkError(CKR.KEY_TYPE_INCONSISTENT, f"object {handle} is the wrong class for this operation")
        if not self.attrs(obj).get(flag):
            raise CkError(
                CKR.KEY_FUNCTION_NOT_PERMITTED,
                f"key '{obj.key.label}' does not allow this ({flag:#x} is false)",
            )
        self.logged_in(session)
        return obj

    @staticmethod
    def _buffer(op: Operation, data: bytes | None) -> None:
        op.multipart = True
        if op.spec is not None and op.spec.hash_name and op.kind in ("sign", "verify"):
            op.hash_update(data or b"")
            return
        op.buffer += data or b""
        if len(op.buffer) > MAX_BUFFERED:
            raise CkError(CKR.DATA_LEN_RANGE, f"more than {MAX_BUFFERED} bytes of input for this mechanism")

    def _signed_input(self, op: Operation) -> tuple[bytes, str]:
        """(what the cluster signs, the SDK mechanism) after multi-part updates."""
        spec = op.spec
        assert spec is not None
        if spec.hash_name and op.hasher is not None:
            digest = op.hasher.digest()
            if spec.digest_info:
                digest = mechanisms.DIGEST_INFO_PREFIX[spec.hash_name] + digest
            return digest, spec.prehashed
        if spec.hash_name:  # no update arrived: an empty message
            return mechanisms.digest_for_signature(spec, b""), spec.prehashed
        return bytes(op.buffer), spec.one_shot

    # --- sign and verify ----------------------------------------------------------------

    def _sign_op(self, session: Session, mech: Mechanism, handle: int, kind: str) -> None:
        spec = mechanisms.sign_mechanism(mech)
        cls, flag = ((CKO.PRIVATE_KEY,), CKA.SIGN) if kind == "sign" else ((CKO.PUBLIC_KEY,), CKA.VERIFY)
        obj = self._key(session, handle, cls, flag, CKR.KEY_HANDLE_INVALID)
        if KEY_TYPES[obj.key.key_type] != spec.key_type:
            raise CkError(CKR.KEY_TYPE_INCONSISTENT, f"key '{obj.key.label}' is {obj.key.key_type}")
        self._start(session, kind, Operation(kind, obj.key, spec.one_shot, spec))

    def C_SignInit(self, conn: Connection, handle: int, mech: Mechanism, key: int) -> tuple[()]:
        self._sign_op(self.session(conn, handle), mech, key, "sign")
        return ()

    def C_Sign(self, conn: Connection, handle: int, data: bytes | None, room: int) -> tuple[Any]:
        session = self.session(conn, handle)
        op = self._op(session, "sign")
        if op.multipart:
            raise CkError(
                CKR.OPERATION_ACTIVE, "a multi-part signature is under way: finish it with C_SignFinal"
            )
        cluster = self.logged_in(session)
        assert op.key is not None
        key, message = op.key, data or b""
        mechanism = op.sdk_mechanism

        def compute() -> bytes:
            return _signature(key, sdk(lambda: cluster.sign(key.id, message, mechanism=mechanism)))

        return (self._finish(session, "sign", compute, message, room),)

    def C_SignUpdate(self, conn: Connection, handle: int, data: bytes | None) -> tuple[()]:
        session = self.session(conn, handle)
        op = self._op(session, "sign")
        try:
            self._buffer(op, data)
        except CkError:
            session.ops.pop("sign", None)
            raise
        return ()

    def C_SignFinal(self, conn: Connection, handle: int, room: int) -> tuple[Any]:
        session = self.session(conn, handle)
        op = self._op(session, "sign")
        cluster = self.logged_in(session)
        assert op.key is not None
        key = op.key
        message, mechanism = self._signed_input(op)

        def compute() -> bytes:
            return _signature(key, sdk(lambda: cluster.sign(key.id, message, mechanism=mechanism)))

        return (self._finish(session, "sign", compute, b"", room),)

    def C_VerifyInit(self, conn: Connection, handle: int, mech: Mechanism, key: int) -> tuple[()]:
        self._sign_op(self.session(conn, handle), mech, key, "verify")
        return ()

    def _verify(self, session: Session, message: bytes, mechanism: str, signature: bytes | None) -> tuple[()]:
        op = session.ops.pop("verify")
        cluster = self.logged_in(session)
        assert op.key is not None
        key_id = op.key.id
        if not signature:
            raise CkError(CKR.SIGNATURE_LEN_RANGE, "empty signature")
        if op.key.key_type == "EC":
            if len(signature) != 2 * der.CURVE_BYTES[op.key.size]:
                raise CkError(CKR.SIGNATURE_LEN_RANGE, f"an ECDSA {op.key.size} signature is r || s")
            signature = der.ecdsa_der(signature)
        if not sdk(lambda: cluster.verify(key_id, message, signature, mechanism=mechanism)):
            raise CkError(CKR.SIGNATURE_INVALID, "the signature does not verify")
        return ()

    def C_Verify(
        self, conn: Connection, handle: int, data: bytes | None, signature: bytes | None
    ) -> tuple[()]:
        session = self.session(conn, handle)
        op = self._op(session, "verify")
        if op.multipart:
            raise CkError(CKR.OPERATION_ACTIVE, "a multi-part verification is under way: use C_VerifyFinal")
        return self._verify(session, data or b"", op.sdk_mechanism, signature)

    def C_VerifyUpdate(self, conn: Connection, handle: int, data: bytes | None) -> tuple[()]:
        session = self.session(conn, handle)
        op = self._op(session, "verify")
        try:
            self._buffer(op, data)
        except CkError:
            session.ops.pop("verify", None)
            raise
        return ()

    def C_VerifyFinal(self, conn: Connection, handle: int, signature: bytes | None) -> tuple[()]:
        session = self.session(conn, handle)
        message, mechanism = self._signed_input(self._op(session, "verify"))
        return self._verify(session, message, mechanism, signature)

    # --- encrypt and decrypt ----------------------------------------------------------------

    def _cipher_op(self, session: Session, mech: Mechanism, handle: int, kind: str) -> None:
        flag = CKA.ENCRYPT if kind == "encrypt" else CKA.DECRYPT
        if mech.type == CKM.RSA_PKCS_OAEP:
            cls = (CKO.PUBLIC_KEY,) if kind == "encrypt" else (CKO.PRIVATE_KEY,)
            obj = self._key(session, handle, cls, flag, CKR.KEY_HANDLE_INVALID)
            if obj.key.key_type != "RSA":
                raise CkError(CKR.KEY_TYPE_INCONSISTENT, "RSA-OAEP needs an RSA key")
            self._start(session, kind, Operation(kind, obj.key, mechanisms.oaep_check(mech)))
            return
        if mech.type != CKM.AES_GCM:
            raise CkError(CKR.MECHANISM_INVALID, f"mechanism {mech.type:#x} cannot {kind} here")
        iv, aad = mechanisms.gcm_params(mech)
        obj = self._key(session, handle, (CKO.SECRET_KEY,), flag, CKR.KEY_HANDLE_INVALID)
        op = Operation(kind, obj.key, "AES-GCM", aad=aad, iv=iv)
        self._start(session, kind, op)

    def _cipher(self, session: Session, kind: str, data: bytes, room: int) -> bytes | int:
        op = self._op(session, kind)
        cluster = self.logged_in(session)
        assert op.key is not None
        key_id = op.key.id

        def compute() -> bytes:
            if kind == "encrypt":
                encrypted = sdk(
                    lambda: cluster.encrypt(key_id, data, mechanism=op.sdk_mechanism, aad=op.aad, iv=op.iv)
                )
                return bytes(encrypted.ciphertext)
            return bytes(
                sdk(lambda: cluster.decrypt(key_id, data, mechanism=op.sdk_mechanism, iv=op.iv, aad=op.aad))
            )

        return self._finish(session, kind, compute, data, room)

    def C_EncryptInit(self, conn: Connection, handle: int, mech: Mechanism, key: int) -> tuple[()]:
        self._cipher_op(self.session(conn, handle), mech, key, "encrypt")
        return ()

    def C_Encrypt(self, conn: Connection, handle: int, data: bytes | None, room: int) -> tuple[Any]:
        return (self._cipher(self.session(conn, handle), "encrypt", data or b"", room),)

    def C_EncryptUpdate(self, conn: Connection, handle: int, data: bytes | None, _room: int) -> tuple[Any]:
        session = self.session(conn, handle)
        self._buffer(self._op(session, "encrypt"), data)
        return (b"",)  # output comes with C_EncryptFinal (AES-GCM authenticates the whole message)

    def C_EncryptFinal(self, conn: Connection, handle: int, room: int) -> tuple[Any]:
        session = self.session(conn, handle)
        return (self._cipher(session, "encrypt", bytes(self._op(session, "encrypt").buffer), room),)

    def C_DecryptInit(self, conn: Connection, handle: int, mech: Mechanism, key: int) -> tuple[()]:
        self._cipher_op(self.session(conn, handle), mech, key, "decrypt")
        return ()

    def C_Decrypt(self, conn: Connection, handle: int, data: bytes | None, room: int) -> tuple[Any]:
        return (self._cipher(self.session(conn, handle), "decrypt", data or b"", room),)

    def C_DecryptUpdate(self, conn: Connection, handle: int, data: bytes | None, _room: int) -> tuple[Any]:
        session = self.session(conn, handle)
        self._buffer(self._op(session, "decrypt"), data)
        return (b"",)

    def C_DecryptFinal(self, conn: Connection, handle: int, room: int) -> tuple[Any]:
        session = self.session(conn, handle)
        return (self._cipher(session, "decrypt", bytes(self._op(session, "decrypt").buffer), room),)

    # --- digest (computed in the bridge: no key is involved) ---------------------------------

    def C_DigestInit(self, conn: Connection, handle: int, mech: Mechanism) -> tuple[()]:
        session = self.session(conn, handle)
        name = mechanisms.HASH_MECHANISMS.get(mech.type)
        if name is None:
            raise CkError(CKR.MECHANISM_INVALID, f"mechanism {mech.type:#x} is not a digest")
        self._start(session, "digest", Operation("digest", hasher=hashlib.new(name)))
        return ()

    def C_Digest(self, conn: Connection, handle: int, data: bytes | None, room: int) -> tuple[Any]:
        session = self.session(conn, handle)
        op = self._op(session, "digest")
        hasher = op.hasher.copy()
        hasher.update(data or b"")
        return (self._finish(session, "digest", hasher.digest, data or b"", room),)

    def C_DigestUpdate(self, conn: Connection, handle: int, data: bytes | None) -> tuple[()]:
        self._op(self.session(conn, handle), "digest").hasher.update(data or b"")
        return ()

    def C_DigestKey(self, conn: Connection, handle: int, _key: int) -> tuple[()]:
        self._op(self.session(conn, handle), "digest")
        raise CkError(CKR.KEY_INDIGESTIBLE, "key values never leave the cluster")

    def C_DigestFinal(self, conn: Connection, handle: int, room: int) -> tuple[Any]:
        session = self.session(conn, handle)
        hasher = self._op(session, "digest").hasher
        return (self._finish(session, "digest", hasher.copy().digest, b"", room),)


def _signature(key: KeyInfo, signature: bytes) -> bytes:
    """PKCS#11's form of a cluster signature: ECDSA as r || s (the cluster answers DER)."""
    return der.ecdsa_raw(signature, der.CURVE_BYTES[key.size]) if key.key_type == "EC" else signature
