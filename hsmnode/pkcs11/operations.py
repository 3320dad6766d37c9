"""The token's cryptographic functions: key creation, sign/verify, encrypt/decrypt, digest, wrap.

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
import secrets
from typing import TYPE_CHECKING, Any

from hsmnode.pkcs11 import der, mechanisms
from hsmnode.pkcs11.objects import EXTRACTABLE_FIELD, KEY_TYPES, P11Object, Template
from hsmnode.pkcs11.rpc.constants import CKA, CKK, CKM, CKO, CKR
from hsmnode.pkcs11.rpc.dispatch import CkError, deliver
from hsmnode.pkcs11.rpc.wire import Attribute, Mechanism
from hsmnode.pkcs11.state import Operation, Session

if TYPE_CHECKING:
    from hsmnode.client import KeyInfo, PartitionSession
    from hsmnode.pkcs11.state import Connection

MAX_BUFFERED = 64 * 1024
# Usage flags a template may set that cluster keys of the type cannot carry (e.g. CKA_WRAP on RSA,
# which python-pkcs11 sets by default) are dropped, not refused: the key then reads CKA_WRAP false,
# as a token that ignores an unsupported capability shows it.
USABLE = {
    "AES": {"encrypt", "decrypt", "wrap", "unwrap"},
    "RSA": {"sign", "verify", "encrypt", "decrypt"},
    "EC": {"sign", "verify"},
    "Ed25519": {"sign", "verify"},
}
_NAMES = {v: k for k, v in KEY_TYPES.items()}


def _sdk(call: Any, context: str = "*") -> Any:
    from hsmnode.pkcs11.token import sdk

    return sdk(call, context)


class Operations:
    """Mixed into Token; uses its session(), obj(), logged_in(), remember() and handles."""

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
            return _signature(key, _sdk(lambda: cluster.sign(key.id, message, mechanism=mechanism)))

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
            return _signature(key, _sdk(lambda: cluster.sign(key.id, message, mechanism=mechanism)))

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
        if not _sdk(lambda: cluster.verify(key_id, message, signature, mechanism=mechanism)):
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
                encrypted = _sdk(
                    lambda: cluster.encrypt(key_id, data, mechanism=op.sdk_mechanism, aad=op.aad, iv=op.iv)
                )
                return bytes(encrypted.ciphertext)
            return bytes(
                _sdk(lambda: cluster.decrypt(key_id, data, mechanism=op.sdk_mechanism, iv=op.iv, aad=op.aad))
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

    # --- key creation --------------------------------------------------------------------

    def _writable(self, session: Session, temporary: bool) -> PartitionSession:
        if not session.rw and not temporary:
            raise CkError(CKR.SESSION_READ_ONLY, "creating a token object needs a R/W session")
        return self.logged_in(session)

    @staticmethod
    def _label(*templates: Template) -> str:
        for t in templates:
            if t.label():
                return t.label()
        return f"p11-{secrets.token_hex(6)}"

    @staticmethod
    def _no_id(*templates: Template) -> None:
        for t in templates:
            if t.items.get(CKA.ID):
                raise CkError(
                    CKR.ATTRIBUTE_READ_ONLY, "CKA_ID is the cluster's object id and cannot be chosen"
                )

    def C_GenerateKeyPair(
        self,
        conn: Connection,
        handle: int,
        mech: Mechanism,
        public: list[Attribute],
        private: list[Attribute],
    ) -> tuple[int, int]:
        session = self.session(conn, handle)
        pub, priv = Template.of(public), Template.of(private)
        pub.check_class(CKO.PUBLIC_KEY)
        priv.check_class(CKO.PRIVATE_KEY)
        self._no_id(pub, priv)
        if mech.type == CKM.RSA_PKCS_KEY_PAIR_GEN:
            pub.check_key_type(CKK.RSA)
            bits = pub.items.get(CKA.MODULUS_BITS)
            if bits is None:
                raise CkError(CKR.TEMPLATE_INCOMPLETE, "CKA_MODULUS_BITS is missing")
            exponent = pub.items.get(CKA.PUBLIC_EXPONENT)
            if exponent and int.from_bytes(exponent, "big") != 65537:
                raise CkError(
                    CKR.ATTRIBUTE_VALUE_INVALID, "the cluster generates RSA keys with exponent 65537"
                )
            key_type, size = "RSA", str(bits)
            default = ["sign", "verify"]
        elif mech.type in (CKM.EC_KEY_PAIR_GEN, CKM.EC_EDWARDS_KEY_PAIR_GEN):
            params = pub.items.get(CKA.EC_PARAMS) or priv.items.get(CKA.EC_PARAMS)
            if params is None and mech.type == CKM.EC_KEY_PAIR_GEN:
                raise CkError(CKR.TEMPLATE_INCOMPLETE, "CKA_EC_PARAMS is missing")
            try:
                curve = der.curve_of(params) if params else "Ed25519"
            except der.DerError as exc:
                raise CkError(CKR.CURVE_NOT_SUPPORTED, str(exc)) from None
            if (curve == "Ed25519") != (mech.type == CKM.EC_EDWARDS_KEY_PAIR_GEN):
                raise CkError(
                    CKR.TEMPLATE_INCONSISTENT, f"curve {curve} does not fit mechanism {mech.type:#x}"
                )
            key_type, size = ("Ed25519", "255") if curve == "Ed25519" else ("EC", curve)
            default = ["sign", "verify"]
        else:
            raise CkError(CKR.MECHANISM_INVALID, f"mechanism {mech.type:#x} generates no key pair here")
        usage = [
            u for u in priv.usage((CKO.PRIVATE_KEY,)) + pub.usage((CKO.PUBLIC_KEY,)) if u in USABLE[key_type]
        ]
        temporary = not (pub.flag(CKA.TOKEN) or priv.flag(CKA.TOKEN))
        cluster = self._writable(session, temporary)
        label = self._label(priv, pub)
        key = _sdk(
            lambda: cluster.generate_key(
                label,
                key_type,
                size,
                usage=usage or default,
                **{EXTRACTABLE_FIELD: priv.flag(CKA.EXTRACTABLE)},
            )
        )
        private_handle, public_handle = self.remember(session, key, temporary)
        return public_handle, private_handle

    def C_GenerateKey(
        self, conn: Connection, handle: int, mech: Mechanism, template: list[Attribute]
    ) -> tuple[int]:
        session = self.session(conn, handle)
        if mech.type != CKM.AES_KEY_GEN:
            raise CkError(CKR.MECHANISM_INVALID, f"mechanism {mech.type:#x} generates no secret key here")
        t = Template.of(template)
        t.check_class(CKO.SECRET_KEY)
        t.check_key_type(CKK.AES)
        self._no_id(t)
        length = t.items.get(CKA.VALUE_LEN)
        if length not in (16, 32):
            raise CkError(
                CKR.TEMPLATE_INCONSISTENT if length else CKR.TEMPLATE_INCOMPLETE,
                "AES keys are 16 or 32 bytes",
            )
        temporary = not t.flag(CKA.TOKEN)
        cluster = self._writable(session, temporary)
        label = self._label(t)
        usage = t.usage((CKO.SECRET_KEY,)) or ["encrypt", "decrypt"]
        key = _sdk(
            lambda: cluster.generate_key(
                label, "AES", str(length * 8), usage=usage, **{EXTRACTABLE_FIELD: t.flag(CKA.EXTRACTABLE)}
            )
        )
        return (self.remember(session, key, temporary)[0],)

    def C_CreateObject(self, conn: Connection, handle: int, template: list[Attribute]) -> tuple[int]:
        session = self.session(conn, handle)
        t = Template.of(template)
        self._no_id(t)
        cls, kind = t.items.get(CKA.CLASS), t.items.get(CKA.KEY_TYPE)
        if cls is None or kind is None:
            raise CkError(CKR.TEMPLATE_INCOMPLETE, "CKA_CLASS and CKA_KEY_TYPE are needed")
        if kind not in _NAMES:
            raise CkError(CKR.ATTRIBUTE_VALUE_INVALID, f"key type {kind:#x} is not supported")
        temporary = not t.flag(CKA.TOKEN)
        cluster = self._writable(session, temporary)
        label, key_type = self._label(t), _NAMES[kind]
        try:
            if cls == CKO.PUBLIC_KEY:
                pem = der.spki_pem(_public_key(t, key_type))
                key = _sdk(lambda: cluster.import_public_key(label, pem, usage=t.usage((CKO.PUBLIC_KEY,))))
            elif cls in (CKO.PRIVATE_KEY, CKO.SECRET_KEY):
                material = _secret(t, key_type, cls)
                classes = (int(cls),)
                key = _sdk(
                    lambda: cluster.import_key(
                        label,
                        key_type,
                        material,
                        usage=t.usage(classes),
                        **{EXTRACTABLE_FIELD: t.flag(CKA.EXTRACTABLE)},
                    )
                )
            else:
                raise CkError(CKR.ATTRIBUTE_VALUE_INVALID, f"objects of class {cls:#x} are not supported")
        except der.DerError as exc:
            raise CkError(CKR.ATTRIBUTE_VALUE_INVALID, str(exc)) from None
        handles = self.remember(session, key, temporary)
        return (handles[0] if cls != CKO.PUBLIC_KEY else handles[-1],)

    # --- wrap and unwrap --------------------------------------------------------------------

    def C_WrapKey(
        self, conn: Connection, handle: int, mech: Mechanism, wrapping: int, key: int, room: int
    ) -> tuple[Any]:
        """C_WrapKey is one call (no Init): a length query keeps the wrapped bytes for the call that
        follows with the same arguments, so the member wraps once."""
        session = self.session(conn, handle)
        sdk_mechanism, iv, aad = mechanisms.wrap_mechanism(mech)
        wrapper = self._key(session, wrapping, (CKO.SECRET_KEY,), CKA.WRAP, CKR.WRAPPING_KEY_HANDLE_INVALID)
        target = self.obj(session, key)
        cluster = self.logged_in(session)
        session.ops.setdefault("wrap", Operation("wrap", target.key))  # _finish keys the answer by `asked`

        def compute() -> bytes:
            return bytes(
                _sdk(
                    lambda: cluster.wrap_key(
                        wrapper.key.id, target.key.id, mechanism=sdk_mechanism, iv=iv, aad=aad
                    )
                )
            )

        asked = f"{wrapper.key.id}/{target.key.id}/{sdk_mechanism}".encode() + iv + aad
        return (self._finish(session, "wrap", compute, asked, room),)

    def C_UnwrapKey(
        self,
        conn: Connection,
        handle: int,
        mech: Mechanism,
        unwrapping: int,
        wrapped: bytes | None,
        template: list[Attribute],
    ) -> tuple[int]:
        session = self.session(conn, handle)
        sdk_mechanism, iv, aad = mechanisms.wrap_mechanism(mech)
        unwrapper = self._key(
            session, unwrapping, (CKO.SECRET_KEY,), CKA.UNWRAP, CKR.UNWRAPPING_KEY_HANDLE_INVALID
        )
        t = Template.of(template)
        self._no_id(t)
        kind = t.items.get(CKA.KEY_TYPE)
        cls = t.items.get(CKA.CLASS)
        if kind not in _NAMES or cls not in (CKO.SECRET_KEY, CKO.PRIVATE_KEY):
            raise CkError(
                CKR.TEMPLATE_INCOMPLETE, "CKA_CLASS (secret or private) and CKA_KEY_TYPE are needed"
            )
        temporary = not t.flag(CKA.TOKEN)
        cluster = self._writable(session, temporary)
        label, classes = self._label(t), (int(cls),)
        key = _sdk(
            lambda: cluster.unwrap_key(
                unwrapper.key.id,
                wrapped or b"",
                label=label,
                key_type=_NAMES[kind],
                usage=t.usage(classes),
                mechanism=sdk_mechanism,
                iv=iv,
                aad=aad,
                **{EXTRACTABLE_FIELD: t.flag(CKA.EXTRACTABLE)},
            )
        )
        return (self.remember(session, key, temporary)[0],)


def _signature(key: KeyInfo, signature: bytes) -> bytes:
    """PKCS#11's form of a cluster signature: ECDSA as r || s (the cluster answers DER)."""
    return der.ecdsa_raw(signature, der.CURVE_BYTES[key.size]) if key.key_type == "EC" else signature


def _public_key(t: Template, key_type: str) -> der.PublicKey:
    if key_type == "RSA":
        return der.PublicKey(
            "RSA",
            modulus=t.bytes_of(CKA.MODULUS, "CKA_MODULUS"),
            exponent=t.bytes_of(CKA.PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT"),
        )
    curve = der.curve_of(t.bytes_of(CKA.EC_PARAMS, "CKA_EC_PARAMS"))
    point = der.point_of(t.bytes_of(CKA.EC_POINT, "CKA_EC_POINT"))
    if curve == "Ed25519":
        return der.PublicKey("Ed25519", point=point)
    return der.PublicKey("EC", curve_oid=der.CURVE_OIDS[curve], point=point)


def _secret(t: Template, key_type: str, cls: int) -> bytes:
    if cls == CKO.SECRET_KEY:
        if key_type != "AES":
            raise CkError(CKR.TEMPLATE_INCONSISTENT, "secret keys are AES keys here")
        return t.bytes_of(CKA.VALUE, "CKA_VALUE")
    if key_type == "RSA":
        names = {
            "modulus": CKA.MODULUS,
            "public_exponent": CKA.PUBLIC_EXPONENT,
            "private_exponent": CKA.PRIVATE_EXPONENT,
            "prime_1": CKA.PRIME_1,
            "prime_2": CKA.PRIME_2,
            "exponent_1": CKA.EXPONENT_1,
            "exponent_2": CKA.EXPONENT_2,
            "coefficient": CKA.COEFFICIENT,
        }
        return der.rsa_private({n: t.bytes_of(a, f"CKA_{n.upper()}") for n, a in names.items()})
    curve = der.curve_of(t.bytes_of(CKA.EC_PARAMS, "CKA_EC_PARAMS"))
    return der.ec_private(curve, t.bytes_of(CKA.VALUE, "CKA_VALUE"))
