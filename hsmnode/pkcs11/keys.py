"""The token's key functions: C_GenerateKeyPair, C_GenerateKey, C_CreateObject (import),
C_WrapKey and C_UnwrapKey, each mapped onto one SDK call of the logged-in partition session.

CKA_ID is the cluster's object id and cannot be chosen; a missing CKA_LABEL gets a random
`p11-…` label; CKA_TOKEN false makes a session object (destroyed with its session).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from hsmnode.pkcs11 import der, mechanisms
from hsmnode.pkcs11.errors import sdk
from hsmnode.pkcs11.objects import KEY_TYPES, Template
from hsmnode.pkcs11.operations import Operations
from hsmnode.pkcs11.rpc.constants import CKA, CKK, CKM, CKO, CKR
from hsmnode.pkcs11.rpc.dispatch import CkError
from hsmnode.pkcs11.rpc.wire import Attribute, Mechanism
from hsmnode.pkcs11.state import Operation, Session

if TYPE_CHECKING:
    from hsmnode.client import PartitionSession
    from hsmnode.pkcs11.state import Connection

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


class KeyFunctions(Operations):
    """Mixed into Token, after the cryptographic functions whose helpers it shares (_key, _finish)."""

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
        key = sdk(
            lambda: cluster.generate_key(
                label,
                key_type,
                size,
                usage=usage or default,
                extractable=priv.flag(CKA.EXTRACTABLE),
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
        key = sdk(
            lambda: cluster.generate_key(
                label, "AES", str(length * 8), usage=usage, extractable=t.flag(CKA.EXTRACTABLE)
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
                key = sdk(lambda: cluster.import_public_key(label, pem, usage=t.usage((CKO.PUBLIC_KEY,))))
            elif cls in (CKO.PRIVATE_KEY, CKO.SECRET_KEY):
                material = _secret(t, key_type, cls)
                classes = (int(cls),)
                key = sdk(
                    lambda: cluster.import_key(
                        label,
                        key_type,
                        material,
                        usage=t.usage(classes),
                        extractable=t.flag(CKA.EXTRACTABLE),
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
                sdk(
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
        key = sdk(
            lambda: cluster.unwrap_key(
                unwrapper.key.id,
                wrapped or b"",
                label=label,
                key_type=_NAMES[kind],
                usage=t.usage(classes),
                mechanism=sdk_mechanism,
                iv=iv,
                aad=aad,
                extractable=t.flag(CKA.EXTRACTABLE),
            )
        )
        return (self.remember(session, key, temporary)[0],)


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
