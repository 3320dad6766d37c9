"""Servicers for keys, crypto operations and keyrings: protobuf in, one service call, protobuf out."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from hsmnode.pb import keyrings_pb2, keyrings_pb2_grpc, keys_pb2, keys_pb2_grpc
from hsmnode.replication import Replicator
from hsmnode.server.rpc import Servicer, caller_of, remaining, rpc, token_of
from hsmnode.service.keyrings import KeyringService, KeyringView
from hsmnode.service.keys import KeyService, KeyView

Ctx: TypeAlias = grpc.ServicerContext


def _key(k: KeyView) -> keys_pb2.KeyInfo:
    return keys_pb2.KeyInfo(
        id=k.id,
        label=k.label,
        key_type=k.key_type,
        size=k.size,
        object_class=k.object_class,
        exportable=k.exportable,
        usage=list(k.usage),
        public_der=k.public_der,
        origin=k.origin,
        created_at_ms=k.created_at,
        container=k.container,
        blocked=k.blocked,
    )


def _keyring(v: KeyringView) -> keyrings_pb2.KeyringInfo:
    return keyrings_pb2.KeyringInfo(
        label=v.label,
        id=v.id,
        krso_initialized=v.krso_initialized,
        krco_set=v.krco_set,
        locked=v.locked,
        objects=v.objects,
        clients=list(v.clients),
    )


class KeysServicer(Servicer, keys_pb2_grpc.KeysServicer):
    def __init__(self, replicator: Replicator, service: KeyService) -> None:
        super().__init__(replicator)
        self._s = service

    @rpc
    def Generate(self, r: keys_pb2.GenerateKeyRequest, context: Ctx) -> keys_pb2.KeyInfo:  # noqa: N802
        return _key(
            self._s.generate(
                caller_of(context),
                token_of(context),
                r.label,
                r.key_type,
                r.size,
                r.exportable,
                list(r.usage),
                r.request_id,
                remaining(context),
            )
        )

    @rpc
    def ImportPublic(self, r: keys_pb2.ImportPublicKeyRequest, context: Ctx) -> keys_pb2.KeyInfo:  # noqa: N802
        return _key(
            self._s.import_public(
                caller_of(context),
                token_of(context),
                r.label,
                r.pem,
                list(r.usage),
                r.request_id,
                remaining(context),
            )
        )

    @rpc
    def Import(self, r: keys_pb2.ImportKeyRequest, context: Ctx) -> keys_pb2.KeyInfo:  # noqa: N802
        return _key(
            self._s.import_key(
                caller_of(context),
                token_of(context),
                r.label,
                r.key_type,
                r.material,
                list(r.usage),
                r.exportable,
                r.request_id,
                remaining(context),
            )
        )

    @rpc
    def Unwrap(self, r: keys_pb2.UnwrapKeyRequest, context: Ctx) -> keys_pb2.KeyInfo:  # noqa: N802
        return _key(
            self._s.unwrap(
                caller_of(context),
                token_of(context),
                r.wrapping_key,
                r.wrapped,
                r.label,
                r.key_type,
                list(r.usage),
                r.exportable,
                r.request_id,
                remaining(context),
            )
        )

    @rpc
    def Destroy(self, r: keys_pb2.KeyRef, context: Ctx) -> keys_pb2.DestroyKeyResponse:  # noqa: N802
        self._s.destroy(caller_of(context), token_of(context), r.key, r.request_id, remaining(context))
        return keys_pb2.DestroyKeyResponse()

    @rpc
    def List(self, r: keys_pb2.ListKeysRequest, context: Ctx) -> keys_pb2.KeyList:  # noqa: N802
        found = self._s.list(caller_of(context), token_of(context), r.label, r.key_type, r.id)
        return keys_pb2.KeyList(keys=[_key(k) for k in found])

    @rpc
    def Show(self, r: keys_pb2.KeyRef, context: Ctx) -> keys_pb2.KeyInfo:  # noqa: N802
        return _key(self._s.show(caller_of(context), token_of(context), r.key))

    @rpc
    def Sign(self, r: keys_pb2.SignRequest, context: Ctx) -> keys_pb2.SignResponse:  # noqa: N802
        return keys_pb2.SignResponse(
            signature=self._s.sign(caller_of(context), token_of(context), r.key, r.mechanism, r.data)
        )

    @rpc
    def Verify(self, r: keys_pb2.VerifyRequest, context: Ctx) -> keys_pb2.VerifyResponse:  # noqa: N802
        valid = self._s.verify(caller_of(context), token_of(context), r.key, r.mechanism, r.data, r.signature)
        return keys_pb2.VerifyResponse(valid=valid)

    @rpc
    def Encrypt(self, r: keys_pb2.EncryptRequest, context: Ctx) -> keys_pb2.EncryptResponse:  # noqa: N802
        ciphertext, iv = self._s.encrypt(
            caller_of(context), token_of(context), r.key, r.mechanism, r.data, r.aad
        )
        return keys_pb2.EncryptResponse(ciphertext=ciphertext, iv=iv)

    @rpc
    def Decrypt(self, r: keys_pb2.DecryptRequest, context: Ctx) -> keys_pb2.DecryptResponse:  # noqa: N802
        plaintext = self._s.decrypt(
            caller_of(context), token_of(context), r.key, r.mechanism, r.ciphertext, r.iv, r.aad
        )
        return keys_pb2.DecryptResponse(plaintext=plaintext)

    @rpc
    def Wrap(self, r: keys_pb2.WrapKeyRequest, context: Ctx) -> keys_pb2.WrapKeyResponse:  # noqa: N802
        wrapped = self._s.wrap(caller_of(context), token_of(context), r.wrapping_key, r.key)
        return keys_pb2.WrapKeyResponse(wrapped=wrapped, mechanism="AES-KWP")

    @rpc
    def ExportPublic(self, r: keys_pb2.KeyRef, context: Ctx) -> keys_pb2.ExportPublicResponse:  # noqa: N802
        return keys_pb2.ExportPublicResponse(
            pem=self._s.export_public(caller_of(context), token_of(context), r.key)
        )

    @rpc
    def Digest(self, r: keys_pb2.DigestRequest, context: Ctx) -> keys_pb2.DigestResponse:  # noqa: N802
        return keys_pb2.DigestResponse(
            digest=self._s.digest(caller_of(context), token_of(context), r.mechanism, r.data)
        )

    @rpc
    def Random(self, r: keys_pb2.RandomRequest, context: Ctx) -> keys_pb2.RandomResponse:  # noqa: N802
        return keys_pb2.RandomResponse(data=self._s.random(caller_of(context), token_of(context), r.length))


class KeyringsServicer(Servicer, keyrings_pb2_grpc.KeyringsServicer):
    def __init__(self, replicator: Replicator, service: KeyringService) -> None:
        super().__init__(replicator)
        self._s = service

    @rpc
    def Create(
        self, r: keyrings_pb2.CreateKeyringRequest, context: Ctx
    ) -> keyrings_pb2.CreateKeyringResponse:  # noqa: N802
        kid = self._s.create(
            caller_of(context), token_of(context), r.label, r.krso_password, r.request_id, remaining(context)
        )
        return keyrings_pb2.CreateKeyringResponse(id=kid)

    @rpc
    def Delete(self, r: keyrings_pb2.KeyringRequest, context: Ctx) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.delete(caller_of(context), token_of(context), r.label, r.request_id, remaining(context))
        return keyrings_pb2.KeyringAck()

    @rpc
    def Assign(self, r: keyrings_pb2.AssignKeyringRequest, context: Ctx) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.assign(
            caller_of(context), token_of(context), r.label, r.client, True, r.request_id, remaining(context)
        )
        return keyrings_pb2.KeyringAck()

    @rpc
    def Unassign(self, r: keyrings_pb2.AssignKeyringRequest, context: Ctx) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.assign(
            caller_of(context), token_of(context), r.label, r.client, False, r.request_id, remaining(context)
        )
        return keyrings_pb2.KeyringAck()

    @rpc
    def Unlock(self, r: keyrings_pb2.KeyringRequest, context: Ctx) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.unlock(caller_of(context), token_of(context), r.label, r.request_id, remaining(context))
        return keyrings_pb2.KeyringAck()

    @rpc
    def SetKrco(self, r: keyrings_pb2.SetKrcoRequest, context: Ctx) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.set_krco(caller_of(context), token_of(context), r.password, r.request_id, remaining(context))
        return keyrings_pb2.KeyringAck()

    @rpc
    def List(self, r: keyrings_pb2.ListKeyringsRequest, context: Ctx) -> keyrings_pb2.KeyringList:  # noqa: N802
        return keyrings_pb2.KeyringList(
            keyrings=[_keyring(v) for v in self._s.list(caller_of(context), token_of(context))]
        )

    @rpc
    def Show(self, r: keyrings_pb2.KeyringRequest, context: Ctx) -> keyrings_pb2.KeyringInfo:  # noqa: N802
        return _keyring(self._s.show(caller_of(context), token_of(context), r.label))
