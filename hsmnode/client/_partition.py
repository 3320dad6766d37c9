"""Partition sessions (the NTLS handshake's result): a session on one partition (PO, CO, CU) or
keyring (KRSO, KRCO) that administers it, holds its keys and runs crypto operations.
Crypto operations go through the transport's `crypto` door (round robin over healthy members)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hsmnode.client import _convert as convert
from hsmnode.client._crypto_wire import bodies
from hsmnode.client._errors import BatchError, HsmError, InvalidArgument
from hsmnode.client._grants import PartitionGrants
from hsmnode.client._keyrings import KeyringAdministration
from hsmnode.client._mofn import MofnAuthorization
from hsmnode.client._outcome import request_id_or_new
from hsmnode.client._types import Encrypted, KeyInfo, SessionInfo
from hsmnode.pb import (
    keys_pb2,
    keys_pb2_grpc,
    ntls_pb2,
    ntls_pb2_grpc,
    partition_backup_pb2,
    partition_backup_pb2_grpc,
)

T = TypeVar("T")

# key types with a single size, which generate_key may leave out (domain/rules.py KEY_TYPES)
ONLY_SIZE = {"Ed25519": "255"}


def key_size(key_type: str, size: str | int | None) -> str:
    """`size` as the member reads it; None is the type's only size (Ed25519: "255"). Raises
    ValueError naming the sizes when None is given for a type with several."""
    if size is not None:
        return str(size)
    if key_type in ONLY_SIZE:
        return ONLY_SIZE[key_type]
    if key_type not in ("AES", "RSA", "EC"):
        return ""  # the member names the key types it knows
    raise ValueError(
        f"{key_type} keys need a size: AES 128/256, RSA 2048/3072/4096, EC P-256/P-384 "
        "(only Ed25519 may leave it out)"
    )


class PartitionSession(KeyringAdministration, MofnAuthorization, PartitionGrants):
    """A session on one partition (PO, CO, CU) or keyring (KRSO, KRCO): keys and crypto operations,
    and the keyring (`_keyrings.py`), M-of-N (`_mofn.py`) and grant (`_grants.py`) calls."""

    def logout(self, *, request_id: str | None = None) -> None:
        """End this session, and with it every session this client certificate holds in the same
        role on this partition or keyring, on every member (the role's session epoch moves, as
        PKCS#11 `C_Logout` logs out all of an application's sessions: v2.40 §5.6). A write: a
        repeated `request_id` answers its first result. Raises Unauthenticated when the members no
        longer accept this session's token (expired, already ended by a password change)."""
        self._call(
            ntls_pb2_grpc.NtlsStub,
            "CloseSession",
            ntls_pb2.CloseSessionRequest(request_id=request_id_or_new(request_id)),
            write=True,
        )

    close = logout

    def info(self) -> SessionInfo:
        r = self._call(ntls_pb2_grpc.NtlsStub, "SessionInfo", ntls_pb2.SessionInfoRequest())
        return SessionInfo(r.partition, r.role, r.expires_ms)

    # partition administration
    def init_role(self, role: str, password: str, *, request_id: str | None = None) -> None:
        """PO: initialize or reset the CO. CO: initialize or reset the CU."""
        req = ntls_pb2.InitRoleRequest(request_id=request_id_or_new(request_id), role=role, password=password)
        self._call(ntls_pb2_grpc.NtlsStub, "InitRole", req, write=True)

    def set_policy(self, policy: str, value: int | bool, *, request_id: str | None = None) -> None:
        req = ntls_pb2.SetPolicyRequest(
            request_id=request_id_or_new(request_id), policy=policy, value=int(value)
        )
        self._call(ntls_pb2_grpc.NtlsStub, "SetPolicy", req, write=True)

    # keys
    def generate_key(
        self,
        label: str,
        key_type: str,
        size: str | int | None = None,
        *,
        usage: list[str] | str,
        extractable: bool | None = None,
        partition: str = "",
        request_id: str | None = None,
        exportable: bool | None = None,
    ) -> KeyInfo:
        """Generate a key here, or in `partition` when its owner granted this partition `create`.
        `size`: AES 128/256, RSA 2048/3072/4096, EC P-256/P-384; may be left out for Ed25519 (255,
        its only size); ValueError when left out for another type.
        `usage`: the flags, e.g. ["sign", "verify"]; one flag may be given as a string.
        `extractable` (CKA_EXTRACTABLE, default False): the key may be wrapped off the HSM;
        `exportable` is its deprecated name (DeprecationWarning; ValueError if both differ).
        Called from many threads on one client, the calls are coalesced into batched calls to the
        leader (Keys/GenerateBatch) unless the client was made with `coalesce=False`; each call
        keeps its own request id, answer, error and deadline."""
        allowed = convert.extractable(extractable, exportable)
        req = keys_pb2.GenerateKeyRequest(
            request_id=request_id_or_new(request_id),
            label=label,
            key_type=key_type,
            size=key_size(key_type, size),
            extractable=allowed,
            exportable=allowed,  # for members before issue 13's rename (one release)
            usage=[usage] if isinstance(usage, str) else usage,
            partition=partition,
        )
        return convert.key(self.transport.writes.generate(req, self.token))

    def import_public_key(
        self,
        label: str,
        pem: bytes,
        *,
        usage: list[str],
        key_type: str = "",
        request_id: str | None = None,
    ) -> KeyInfo:
        """Import a public key (SubjectPublicKeyInfo PEM); with `key_type` (AES, RSA, EC, Ed25519),
        a PEM holding another type is refused (INVALID_ARGUMENT) instead of stored as what it is."""
        req = keys_pb2.ImportPublicKeyRequest(
            request_id=request_id_or_new(request_id), label=label, pem=pem, usage=usage, key_type=key_type
        )
        return convert.key(self._call(keys_pb2_grpc.KeysStub, "ImportPublic", req, write=True))

    def import_key(
        self,
        label: str,
        key_type: str,
        material: bytes,
        *,
        usage: list[str],
        extractable: bool | None = None,
        request_id: str | None = None,
        exportable: bool | None = None,
    ) -> KeyInfo:
        """Import plaintext material: an AES value, or a private key as PKCS#8 DER or PEM.
        `extractable` and its deprecated name `exportable` as in `generate_key`."""
        allowed = convert.extractable(extractable, exportable)
        req = keys_pb2.ImportKeyRequest(
            request_id=request_id_or_new(request_id),
            label=label,
            key_type=key_type,
            material=material,
            usage=usage,
            extractable=allowed,
            exportable=allowed,  # for members before issue 13's rename (one release)
        )
        return convert.key(self._call(keys_pb2_grpc.KeysStub, "Import", req, write=True))

    def unwrap_key(
        self,
        wrapping_key: str,
        wrapped: bytes,
        *,
        label: str,
        key_type: str,
        usage: list[str],
        extractable: bool | None = None,
        request_id: str | None = None,
        mechanism: str = "AES-KWP",
        iv: bytes = b"",
        aad: bytes = b"",
        exportable: bool | None = None,
    ) -> KeyInfo:
        """Import key material wrapped by `mechanism` (AES-KWP, or AES-GCM with the IV and AAD it was
        wrapped with) under `wrapping_key`; the member unwraps it. `extractable` and its deprecated
        name `exportable` as in `generate_key`."""
        allowed = convert.extractable(extractable, exportable)
        req = keys_pb2.UnwrapKeyRequest(
            request_id=request_id_or_new(request_id),
            wrapping_key=wrapping_key,
            wrapped=wrapped,
            label=label,
            key_type=key_type,
            usage=usage,
            extractable=allowed,
            exportable=allowed,  # for members before issue 13's rename (one release)
            mechanism=mechanism,
            iv=iv,
            aad=aad,
        )
        return convert.key(self._call(keys_pb2_grpc.KeysStub, "Unwrap", req, write=True))

    # Partition backup and restore (the CO: every object; the CU: public objects)
    def backup(self) -> bytes:
        """A backup of this session's partition, encrypted for the cluster (write it to a file as is)."""
        r = self._call(
            partition_backup_pb2_grpc.PartitionBackupStub,
            "Create",
            partition_backup_pb2.PartitionBackupRequest(),
        )
        return bytes(r.backup)

    def restore(self, backup: bytes, *, request_id: str | None = None) -> list[KeyInfo]:
        """Restore a backup into this session's partition (same cloning domain): every object, or none."""
        req = partition_backup_pb2.PartitionRestoreRequest(
            request_id=request_id_or_new(request_id), backup=backup
        )
        r = self._call(partition_backup_pb2_grpc.PartitionBackupStub, "Restore", req, write=True)
        return [convert.key(k) for k in r.keys]

    def destroy_key(self, key: str, *, request_id: str | None = None) -> None:
        self._call(
            keys_pb2_grpc.KeysStub,
            "Destroy",
            keys_pb2.KeyRef(request_id=request_id_or_new(request_id), key=key),
            write=True,
        )

    def list_keys(
        self, *, label: str = "", key_type: str = "", key_id: str = "", partition: str = ""
    ) -> list[KeyInfo]:
        """Keys here, or in `partition` when its owner granted this partition `read`."""
        r = self._call(
            keys_pb2_grpc.KeysStub,
            "List",
            keys_pb2.ListKeysRequest(label=label, key_type=key_type, id=key_id, partition=partition),
        )
        return [convert.key(k) for k in r.keys]

    def show_key(self, key: str) -> KeyInfo:
        return convert.key(self._call(keys_pb2_grpc.KeysStub, "Show", keys_pb2.KeyRef(key=key)))

    def sign(self, key: str, data: bytes, *, mechanism: str) -> bytes:
        r = self._crypto(
            keys_pb2_grpc.KeysStub, "Sign", keys_pb2.SignRequest(key=key, mechanism=mechanism, data=data)
        )
        return bytes(r.signature)

    def verify(self, key: str, data: bytes, signature: bytes, *, mechanism: str) -> bool:
        req = keys_pb2.VerifyRequest(key=key, mechanism=mechanism, data=data, signature=signature)
        return bool(self._crypto(keys_pb2_grpc.KeysStub, "Verify", req).valid)

    def encrypt(
        self, key: str, data: bytes, *, mechanism: str, aad: bytes = b"", iv: bytes = b""
    ) -> Encrypted:
        """The ciphertext and its IV: AES-GCM uses `iv` (12 bytes) when given, else returns the IV the HSM
        drew; RSA-OAEP returns an empty one."""
        r = self._crypto(
            keys_pb2_grpc.KeysStub,
            "Encrypt",
            keys_pb2.EncryptRequest(key=key, mechanism=mechanism, data=data, aad=aad, iv=iv),
        )
        return Encrypted(bytes(r.ciphertext), bytes(r.iv))

    def decrypt(
        self, key: str, ciphertext: bytes, *, mechanism: str, iv: bytes = b"", aad: bytes = b""
    ) -> bytes:
        req = keys_pb2.DecryptRequest(key=key, mechanism=mechanism, ciphertext=ciphertext, iv=iv, aad=aad)
        return bytes(self._crypto(keys_pb2_grpc.KeysStub, "Decrypt", req).plaintext)

    # bulk: many operations per message (CryptoStream), one key per call; each request is written
    # once as its wire form (_crypto_wire.bodies), not built as a message and copied into a batch
    def sign_many(self, key: str, data: Sequence[bytes], *, mechanism: str) -> list[bytes]:
        """The signature of each item of `data`, in order, with `key`. Raises BatchError when any
        item failed (`.results`: per item its signature or its HsmError; `.errors` by index)."""
        requests = bodies(keys_pb2.SignRequest(key=key, mechanism=mechanism), data=data)
        return self._many("Sign", requests, _signature)

    def verify_many(self, key: str, items: Sequence[tuple[bytes, bytes]], *, mechanism: str) -> list[bool]:
        """Per (data, signature) item, in order: whether the signature is valid. Raises BatchError
        as `sign_many` does."""
        requests = bodies(
            keys_pb2.VerifyRequest(key=key, mechanism=mechanism),
            data=[d for d, _ in items],
            signature=[s for _, s in items],
        )
        return self._many("Verify", requests, _valid)

    def encrypt_many(
        self, key: str, data: Sequence[bytes], *, mechanism: str, aad: bytes = b""
    ) -> list[Encrypted]:
        """Each item of `data` encrypted with `key` (AES-GCM: an IV the HSM draws per item), in
        order. Raises BatchError as `sign_many` does."""
        requests = bodies(keys_pb2.EncryptRequest(key=key, mechanism=mechanism, aad=aad), data=data)
        return self._many("Encrypt", requests, _encrypted)

    def decrypt_many(
        self, key: str, items: Sequence[Encrypted], *, mechanism: str, aad: bytes = b""
    ) -> list[bytes]:
        """The plaintext of each Encrypted item, in order. Raises BatchError as `sign_many` does."""
        requests = bodies(
            keys_pb2.DecryptRequest(key=key, mechanism=mechanism, aad=aad),
            ciphertext=[e.ciphertext for e in items],
            iv=[e.iv for e in items],
        )
        return self._many("Decrypt", requests, _plaintext)

    def _many(self, method: str, requests: list[bytes], result: Callable[[Any], T]) -> list[T]:
        """Each request's result; BatchError (results and errors by item) when any failed."""
        answers = self.transport.crypto_many(method, requests, token=self.token)
        failed = False
        for i, a in enumerate(answers):
            if isinstance(a, HsmError):
                failed = True
            else:
                answers[i] = result(a)
        if failed:
            raise BatchError(answers)
        return answers

    def wrap_key(
        self, wrapping_key: str, key: str, *, mechanism: str = "AES-KWP", iv: bytes = b"", aad: bytes = b""
    ) -> bytes:
        """Export `key` wrapped under `wrapping_key` (an AES key) by the member: AES-KWP (RFC 5649), or
        AES-GCM with the caller's 12-byte `iv` and optional `aad` (ciphertext || 16-byte tag)."""
        req = keys_pb2.WrapKeyRequest(wrapping_key=wrapping_key, key=key, mechanism=mechanism, iv=iv, aad=aad)
        r = self._call(keys_pb2_grpc.KeysStub, "Wrap", req)
        return bytes(r.wrapped)

    def export_public_key(self, key: str) -> bytes:
        return bytes(self._call(keys_pb2_grpc.KeysStub, "ExportPublic", keys_pb2.KeyRef(key=key)).pem)

    def digest(self, data: bytes, *, mechanism: str = "SHA256") -> bytes:
        return bytes(
            self._crypto(
                keys_pb2_grpc.KeysStub, "Digest", keys_pb2.DigestRequest(mechanism=mechanism, data=data)
            ).digest
        )

    def random(self, length: int) -> bytes:
        """`length` random bytes from the HSM's generator (1 up to the member's maximum; it answers
        InvalidArgument outside that). A negative length, which the request cannot carry, raises
        InvalidArgument here, before sending."""
        if length < 0:
            raise InvalidArgument(f"random length must be at least 1 byte, got {length}")
        return bytes(
            self._crypto(keys_pb2_grpc.KeysStub, "Random", keys_pb2.RandomRequest(length=length)).data
        )

    def block_key(self, key: str, *, blocked: bool = True, request_id: str | None = None) -> None:
        req = keys_pb2.BlockKeyRequest(request_id=request_id_or_new(request_id), key=key, blocked=blocked)
        self._call(keys_pb2_grpc.KeysStub, "Block", req, write=True)


def _signature(r: Any) -> bytes:
    return bytes(r.signature)


def _valid(r: Any) -> bool:
    return bool(r.valid)


def _encrypted(r: Any) -> Encrypted:
    return Encrypted(bytes(r.ciphertext), bytes(r.iv))


def _plaintext(r: Any) -> bytes:
    return bytes(r.plaintext)
