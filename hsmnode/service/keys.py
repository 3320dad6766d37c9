"""Keys and cryptographic operations in partitions and keyrings.

Writes (generate, import, unwrap, destroy) go through Raft with the key material
already wrapped under the SMK. Operations (sign, verify, encrypt, decrypt, wrap,
export, digest, random) are served by the contacted member from its local
replicated state — no Raft round trip — after the session is authorized against
that state, and only while the member is within its leader lease (an isolated
member must not keep honouring sessions the majority may have revoked).

Key use (sign, verify, encrypt, decrypt), one operation or a CryptoStream batch, runs in
key_use.py; the lookup and authorization of a key in key_access.py.

Audit (DOMAIN.md §6): key use, allowed or refused, goes to this member's key-usage chain
(usage_audit.py: a record per unary use, a record per key and outcome of a batch with the
count of uses it stands for); exports (wrapped or public)
and refused exports and unwraps go to the cluster chain as `audit.key` events, and
an export whose record cannot be written is not served.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

from hsmnode.crypto import keys as kc
from hsmnode.crypto import operations as ops
from hsmnode.domain import commands as c
from hsmnode.domain import mofn, rules
from hsmnode.domain.access import authorize
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import KeyOrigin, ObjectClass
from hsmnode.domain.result import Result
from hsmnode.domain.rules import check_attributes
from hsmnode.domain.state import HsmState
from hsmnode.service.call import Call
from hsmnode.service.context import KEY_SESSIONS, NodeContext
from hsmnode.service.key_access import KeyAccess
from hsmnode.service.key_audit import KeyAudit
from hsmnode.service.key_audit import target as _target
from hsmnode.service.key_batch import Answer, Generation, generate_batch
from hsmnode.service.key_fields import (
    check_data,
    check_key_type,
    fields,
    invalid,
    secret_fields,
)
from hsmnode.service.key_use import (
    DECRYPT,
    ENCRYPT,
    SIGN,
    VERIFY,
    BatchAnswers,
    BatchOp,
    DecryptInput,
    EncryptInput,
    KeyUses,
    SignInput,
    VerifyInput,
)
from hsmnode.service.key_views import KeyView, LocatedKey, described_view
from hsmnode.service.usage_audit import UsageLog
from hsmnode.sessions import Claims, SessionKind

MAX_RANDOM = 64 * 1024
# the enum values a key generation writes, read once (an enum member's .value is a descriptor call)
_SECRET, _PRIVATE = ObjectClass.SECRET.value, ObjectClass.PRIVATE.value
_GENERATED = KeyOrigin.GENERATED.value


@functools.lru_cache(maxsize=256)
def _generable(key_type: str, size: str, object_class: str, usage: tuple[str, ...]) -> None:
    """`check_attributes` for a key to generate, remembered for the combinations that pass (a batch of
    key generations repeats one). A refusal is raised anew on every call (lru_cache keeps no
    exception); apply checks again, as the authority."""
    check_attributes(key_type, size, object_class, usage, True, object_class == ObjectClass.PRIVATE)


def _created(ctx: NodeContext, result: Result) -> KeyView:
    """The key a KeyCreate result describes (as created, also when it is gone since)."""
    return described_view(str(result.value["object_id"]), result.value.get("key"))


class KeyService:
    def __init__(self, ctx: NodeContext, smk: kc.Smk, usage_log: UsageLog | None = None) -> None:
        self._ctx = ctx
        self._smk = smk
        self._audit = KeyAudit(ctx, usage_log)
        self._access = KeyAccess(ctx, smk)
        self._uses = KeyUses(ctx, self._access, self._audit)

    # --- writes -----------------------------------------------------------
    #
    # Every write runs through ctx.once: a repeated request id is answered with its first result
    # before any check reads local state (a destroyed key is gone, a blocked one blocked), and the
    # answer is built from the replicated result alone (DESIGN.md §3.5).

    def _create(self, claims: Claims, call: Call, prepare: Callable[[], dict[str, Any]]) -> KeyView:
        result = self._ctx.once(c.KeyCreate, claims.actor, call.request_id, call.timeout, prepare)
        return _created(self._ctx, result)

    def generate(
        self,
        call: Call,
        label: str,
        key_type: str,
        size: str,
        extractable: bool,
        usage: list[str],
        owner: str = "",
    ) -> KeyView:
        """Generate a key in the session's container, or (owner) in a partition that granted create;
        a label "partition:OWNER/LABEL" names that partition too (DOMAIN.md §4)."""
        claims = self._ctx.claims(call, *KEY_SESSIONS)
        return self._create(
            claims, call, self.generation(claims, label, key_type, size, extractable, usage, owner)
        )

    def generation(
        self,
        claims: Claims,
        label: str,
        key_type: str,
        size: str,
        extractable: bool,
        usage: list[str],
        owner: str = "",
    ) -> Callable[[], dict[str, Any]]:
        """`generate`'s `prepare` for `ctx.once`: the checks against the request, then a new key
        wrapped under the SMK, as KeyCreate fields (also GenerateBatch's, key_batch.py)."""
        if not owner and label.startswith(rules.GRANT_REFERENCE) and "/" in label:
            owner, _, label = label[len(rules.GRANT_REFERENCE) :].partition("/")
        container = f"partition:{owner}" if owner else claims.container

        def prepare() -> dict[str, Any]:
            object_class = _SECRET if key_type == "AES" else _PRIVATE
            _generable(key_type, size, object_class, tuple(usage))
            generated = kc.generate(key_type, size)
            secret, public = generated.secret, generated.public_der
            return fields(
                self._smk,
                container,
                label,
                key_type,
                size,
                object_class,
                extractable,
                usage,
                secret,
                public,
                _GENERATED,
            )

        return prepare

    def generate_batch(self, call: Call, requests: Sequence[Generation | Exception]) -> list[Answer]:
        """GenerateBatch: per request its KeyView or the error `generate` raises for it (key_batch.py)."""
        return generate_batch(self._ctx, self.generation, call, requests)

    def import_public(
        self,
        call: Call,
        label: str,
        pem: bytes,
        usage: list[str],
        expected_type: str = "",
    ) -> KeyView:
        """Store the public key of `pem` (SubjectPublicKeyInfo PEM); with `expected_type`, a PEM
        holding another key type is INVALID_ARGUMENT naming both (what `--type` promised)."""
        claims = self._ctx.claims(call, *KEY_SESSIONS)
        check_key_type(expected_type)

        def prepare() -> dict[str, Any]:
            try:
                key_type, size, der = kc.public_from_pem(pem)
            except kc.KeyMaterialError as exc:
                raise invalid(str(exc)) from None
            if expected_type and key_type != expected_type:
                raise invalid(f"the PEM holds an {key_type} public key, not {expected_type}")
            return fields(
                self._smk,
                claims.container,
                label,
                key_type,
                size,
                ObjectClass.PUBLIC.value,
                False,
                usage,
                b"",
                der,
                KeyOrigin.IMPORTED.value,
            )

        return self._create(claims, call, prepare)

    def import_key(
        self,
        call: Call,
        label: str,
        key_type: str,
        material: bytes,
        usage: list[str],
        extractable: bool,
    ) -> KeyView:
        """Import plaintext material (AES value, PKCS#8 DER or PEM private key); wrapped under the SMK at once."""
        claims = self._ctx.claims(call, *KEY_SESSIONS)

        def prepare() -> dict[str, Any]:
            check_data(material, "key material")
            return secret_fields(
                self._smk,
                claims.container,
                material,
                label,
                key_type,
                usage,
                extractable,
                KeyOrigin.IMPORTED.value,
            )

        return self._create(claims, call, prepare)

    def unwrap(
        self,
        call: Call,
        wrapping_ref: str,
        wrapped: bytes,
        label: str,
        key_type: str,
        usage: list[str],
        extractable: bool,
        mechanism: str = "",
        iv: bytes = b"",
        aad: bytes = b"",
    ) -> KeyView:
        """Import key material wrapped under a key of this container: AES-KWP (the default, `mechanism`
        empty) or AES-GCM with the IV and AAD it was wrapped with (kc.WRAP_MECHANISMS); the member
        unwraps it and stores it under the SMK, as a created key."""
        claims = self._ctx.claims(call, *KEY_SESSIONS)

        def prepare() -> dict[str, Any]:
            try:
                check_data(wrapped, "wrapped key")
                wrapping = self._access.usable(claims, wrapping_ref, "unwrap")
                try:
                    secret = kc.unwrap_secret(
                        mechanism or kc.WRAP_MECHANISM, self._access.material(wrapping), wrapped, iv, aad
                    )
                except kc.KeyMaterialError as exc:
                    raise invalid(f"wrapped key: {exc}") from None
            except DomainError as exc:  # an unwrap that goes through is audited as its key.create
                container, ref = _target(claims, wrapping_ref)
                self._ctx.audit_key_event(
                    claims.actor,
                    "key.unwrap",
                    container,
                    ref,
                    label[:64],
                    str(exc.code),
                    exc.message,
                    required=False,
                )
                raise
            return secret_fields(
                self._smk,
                claims.container,
                secret,
                label,
                key_type,
                usage,
                extractable,
                KeyOrigin.UNWRAPPED.value,
            )

        return self._create(claims, call, prepare)

    def destroy(self, call: Call, key_ref: str) -> None:
        claims = self._ctx.claims(call, *KEY_SESSIONS)

        def prepare() -> dict[str, Any]:
            key = self._access.locate(claims, key_ref, "object.destroy")
            return dict(container=key.container, object_id=key.id)

        self._ctx.once(c.KeyDestroy, claims.actor, call.request_id, call.timeout, prepare)

    def block(self, call: Call, key_ref: str, blocked: bool) -> None:
        """Block (or unblock) a key: a blocked key is unusable even when the partition is authorized."""
        claims = self._ctx.claims(call, *KEY_SESSIONS)

        def prepare() -> dict[str, Any]:
            key = self._access.locate(claims, key_ref, "object.list")
            return dict(container=key.container, object_id=key.id, blocked=blocked)

        self._ctx.once(c.KeyBlock, claims.actor, call.request_id, call.timeout, prepare)

    # --- reads ------------------------------------------------------------

    def list(
        self,
        call: Call,
        label: str = "",
        key_type: str = "",
        object_id: str = "",
        owner: str = "",
    ) -> list[KeyView]:
        """Keys of the session's container, or (owner) of a partition that granted this one read."""
        claims = self._ctx.claims(call, *KEY_SESSIONS)
        check_key_type(key_type)
        now = self._ctx.clock_ms()
        container = f"partition:{owner}" if owner else claims.container

        def keys(s: HsmState) -> list[KeyView]:
            authorize(s, claims.actor, "object.list", now, container)
            holder = s.container(container)
            if holder is None:
                return []
            candidates = holder.objects.by_label(label) if label else holder.objects.values()
            return [
                KeyView.of(k, container)
                for k in candidates
                if (not label or k.label == label)
                and (not key_type or k.key_type == key_type)
                and (not object_id or k.id == object_id)
            ]

        return sorted(self._ctx.read(keys), key=lambda k: (k.label, k.id))

    def show(self, call: Call, key_ref: str) -> KeyView:
        claims = self._ctx.claims(call, *KEY_SESSIONS)
        key = self._access.locate(claims, key_ref, "object.list")
        return KeyView.of(key.key, key.container)

    # --- operations -------------------------------------------------------

    def sign(self, call: Call, key_ref: str, mechanism: str, data: bytes) -> bytes:
        return self._uses.one(call, SIGN, key_ref, mechanism, SignInput(data))  # type: ignore[no-any-return]

    def verify(self, call: Call, key_ref: str, mechanism: str, data: bytes, signature: bytes) -> bool:
        return self._uses.one(call, VERIFY, key_ref, mechanism, VerifyInput(data, signature))  # type: ignore[no-any-return]

    def encrypt(
        self,
        call: Call,
        key_ref: str,
        mechanism: str,
        data: bytes,
        aad: bytes,
        iv: bytes = b"",
    ) -> tuple[bytes, bytes]:
        """(ciphertext, iv): AES-GCM uses the caller's 12-byte IV, or draws one when `iv` is empty."""
        return self._uses.one(call, ENCRYPT, key_ref, mechanism, EncryptInput(data, aad, iv))  # type: ignore[no-any-return]

    def decrypt(self, call: Call, key_ref: str, mechanism: str, data: bytes, iv: bytes, aad: bytes) -> bytes:
        return self._uses.one(call, DECRYPT, key_ref, mechanism, DecryptInput(data, iv, aad))  # type: ignore[no-any-return]

    def run_batch(self, call: Call, batch: Sequence[BatchOp]) -> BatchAnswers:
        """A CryptoStream batch: each operation answered as its unary RPC would answer it, the checks
        per key run once per key (key_use.py). Raises ReplicationError when its key-usage records
        cannot be written (then none of its answers may be given)."""
        return self._uses.batch(call, batch)

    def wrap(
        self,
        call: Call,
        wrapping_ref: str,
        target_ref: str,
        mechanism: str = "",
        iv: bytes = b"",
        aad: bytes = b"",
    ) -> bytes:
        """Export `target` wrapped under `wrapping` in this member: only extractable keys, private ones by
        policy. `mechanism`: AES-KWP (empty: the default) or AES-GCM with the caller's 12-byte IV and
        optional AAD (ciphertext || 16-byte tag); INVALID_ARGUMENT for another or a bad IV."""
        claims = self._ctx.claims(call, *KEY_SESSIONS)
        mechanism = mechanism or kc.WRAP_MECHANISM

        def run() -> tuple[LocatedKey, bytes]:
            if mechanism not in kc.WRAP_MECHANISMS:
                raise invalid(
                    f"wrap mechanism {mechanism!r} is not supported (use {' or '.join(kc.WRAP_MECHANISMS)})"
                )
            wrapping = self._access.usable(claims, wrapping_ref, "wrap")
            if wrapping.key_type != "AES":
                raise invalid(
                    f"key '{wrapping.label}' is {wrapping.key_type}; {mechanism} wrapping needs an AES key"
                )
            target = self._access.locate(claims, target_ref, "crypto.use")
            if target.object_class == ObjectClass.PUBLIC:
                raise invalid(f"key '{target.label}' is a public key: export it as PEM instead")
            self._ctx.read(lambda s: mofn.gate(s, target.container, "export"))
            if not target.extractable:
                raise DomainError(
                    ErrorCode.PERMISSION_DENIED,
                    f"key '{target.label}' is not extractable (attribute extractable=false, CKA_EXTRACTABLE)",
                )
            if target.object_class == ObjectClass.PRIVATE and claims.kind == SessionKind.PARTITION:
                allowed = self._ctx.read(lambda s: s.partitions[claims.subject].policy.private_key_wrapping)
                if not allowed:
                    raise DomainError(
                        ErrorCode.FAILED_PRECONDITION,
                        f"partition '{claims.subject}': policy private_key_wrapping is off, so private keys cannot be wrapped off the HSM",
                    )
            try:
                wrapped = kc.wrap_secret(
                    mechanism, self._access.material(wrapping), self._access.material(target), iv, aad
                )
            except kc.KeyMaterialError as exc:
                raise invalid(f"key '{target.label}': {exc}") from None
            return target, wrapped

        return self._audit.exported(claims, "key.wrap", target_ref, run)

    def export_public(self, call: Call, key_ref: str) -> bytes:
        claims = self._ctx.claims(call, *KEY_SESSIONS)

        def run() -> tuple[LocatedKey, bytes]:
            key = self._access.locate(claims, key_ref, "object.list")
            if not key.public_der:
                raise invalid(
                    f"key '{key.label}' is a secret key: it has no public part (wrap it to export it)"
                )
            return key, kc.public_pem(key.public_der)

        return self._audit.exported(claims, "key.export", key_ref, run)

    def digest(self, call: Call, mechanism: str, data: bytes) -> bytes:
        claims = self._ctx.claims(call, *KEY_SESSIONS)
        self._access.within_lease()
        self._ctx.read(
            lambda s: authorize(s, claims.actor, "crypto.use", self._ctx.clock_ms(), claims.container)
        )
        if mechanism not in ops.DIGEST_MECHANISMS:
            raise invalid(f"unknown digest {mechanism!r} (known: {', '.join(ops.DIGEST_MECHANISMS)})")
        check_data(data)
        return ops.digest(mechanism, data)

    def random(self, call: Call, length: int) -> bytes:
        claims = self._ctx.claims(call, *KEY_SESSIONS)
        self._access.within_lease()
        self._ctx.read(
            lambda s: authorize(s, claims.actor, "crypto.use", self._ctx.clock_ms(), claims.container)
        )
        if not 1 <= length <= MAX_RANDOM:
            raise invalid(f"random length must be 1-{MAX_RANDOM} bytes, got {length}")
        return os.urandom(length)
