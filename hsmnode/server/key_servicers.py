"""Servicers for keys, crypto operations and keyrings: protobuf in, one service call, protobuf out."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from hsmnode.pb import (
    authorization_pb2,
    authorization_pb2_grpc,
    console_pb2,
    console_pb2_grpc,
    keyrings_pb2,
    keyrings_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    partition_backup_pb2,
    partition_backup_pb2_grpc,
)
from hsmnode.replication import Replicator
from hsmnode.server.rpc import Servicer, caller_of, remaining, rpc, token_of
from hsmnode.service.authorization import AuthorizationService, AuthView
from hsmnode.service.keyrings import KeyringService, KeyringView
from hsmnode.service.keys import KeyService, KeyView
from hsmnode.service.partition_backup import PartitionBackupService

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
                r.partition,
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
                mechanism=r.mechanism,
                iv=r.iv,
                aad=r.aad,
            )
        )

    @rpc
    def Destroy(self, r: keys_pb2.KeyRef, context: Ctx) -> keys_pb2.DestroyKeyResponse:  # noqa: N802
        self._s.destroy(caller_of(context), token_of(context), r.key, r.request_id, remaining(context))
        return keys_pb2.DestroyKeyResponse()

    @rpc
    def Block(self, r: keys_pb2.BlockKeyRequest, context: Ctx) -> keys_pb2.DestroyKeyResponse:  # noqa: N802
        self._s.block(
            caller_of(context), token_of(context), r.key, r.blocked, r.request_id, remaining(context)
        )
        return keys_pb2.DestroyKeyResponse()

    @rpc
    def List(self, r: keys_pb2.ListKeysRequest, context: Ctx) -> keys_pb2.KeyList:  # noqa: N802
        found = self._s.list(caller_of(context), token_of(context), r.label, r.key_type, r.id, r.partition)
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
            caller_of(context), token_of(context), r.key, r.mechanism, r.data, r.aad, r.iv
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
        wrapped = self._s.wrap(
            caller_of(context), token_of(context), r.wrapping_key, r.key, r.mechanism, r.iv, r.aad
        )
        return keys_pb2.WrapKeyResponse(wrapped=wrapped, mechanism=r.mechanism or "AES-KWP")

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


class AuthorizationServicer(Servicer, authorization_pb2_grpc.AuthorizationServicer):
    def __init__(self, replicator: Replicator, service: AuthorizationService) -> None:
        super().__init__(replicator)
        self._s = service

    @rpc
    def Challenge(
        self, r: authorization_pb2.ChallengeRequest, context: Ctx
    ) -> authorization_pb2.ChallengeResponse:  # noqa: N802
        ch = self._s.challenge(caller_of(context), token_of(context), r.action)
        return authorization_pb2.ChallengeResponse(challenge=ch.data, mac=ch.mac, expires_ms=ch.expires_ms)

    @rpc
    def Change(  # noqa: N802
        self, r: authorization_pb2.ChangeAuthorizationRequest, context: Ctx
    ) -> authorization_pb2.ChangeAuthorizationResponse:
        card_set = None
        if r.HasField("card_set"):
            card_set = (
                r.card_set.set_id,
                r.card_set.threshold,
                [(x.label, x.public_key) for x in r.card_set.cards],
            )
        state, token = self._s.change(
            caller_of(context),
            token_of(context),
            r.target,
            r.challenge,
            r.mac,
            [(x.label, x.signature) for x in r.signatures],
            r.password,
            card_set,
            r.request_id,
            remaining(context),
        )
        return authorization_pb2.ChangeAuthorizationResponse(state=state, token=token)

    @rpc
    def SetPermissions(  # noqa: N802
        self, r: authorization_pb2.SetAuthPermissionsRequest, context: Ctx
    ) -> authorization_pb2.SetAuthPermissionsResponse:
        granted = self._s.set_permissions(
            caller_of(context),
            token_of(context),
            list(r.permissions),
            r.challenge,
            r.mac,
            [(x.label, x.signature) for x in r.signatures],
            r.password,
            r.request_id,
            remaining(context),
        )
        return authorization_pb2.SetAuthPermissionsResponse(permissions=granted)

    @rpc
    def Show(
        self, r: authorization_pb2.ShowAuthorizationRequest, context: Ctx
    ) -> authorization_pb2.AuthorizationInfo:  # noqa: N802
        return _auth_info(self._s.show(caller_of(context), token_of(context)))

    @rpc
    def SetGrant(self, r: authorization_pb2.SetGrantRequest, context: Ctx) -> authorization_pb2.Grant:  # noqa: N802
        granted = self._s.set_grant(
            caller_of(context),
            token_of(context),
            r.grantee,
            list(r.permissions),
            r.request_id,
            remaining(context),
        )
        return authorization_pb2.Grant(grantee=r.grantee, permissions=list(granted))

    @rpc
    def ListGrants(self, r: authorization_pb2.ListGrantsRequest, context: Ctx) -> authorization_pb2.GrantList:  # noqa: N802
        found = self._s.list_grants(caller_of(context), token_of(context))
        return authorization_pb2.GrantList(
            grants=[authorization_pb2.Grant(owner=o, grantee=g, permissions=list(p)) for o, g, p in found]
        )


def _auth_info(v: AuthView) -> authorization_pb2.AuthorizationInfo:
    return authorization_pb2.AuthorizationInfo(
        partition=v.partition,
        requires_authorization=v.requires_authorization,
        state=v.state,
        set_id=v.set_id,
        threshold=v.threshold,
        card_labels=list(v.card_labels),
        permissions=list(v.permissions),
        online_authorization=v.online_authorization,
        session_authorized=v.session_authorized,
    )


def _card_set(r: console_pb2.ConsoleChangeRequest) -> tuple[str, int, list[tuple[str, bytes]]] | None:
    if not r.HasField("card_set"):
        return None
    return (r.card_set.set_id, r.card_set.threshold, [(x.label, x.public_key) for x in r.card_set.cards])


class ConsoleServicer(Servicer, console_pb2_grpc.ConsoleServicer):
    """The member's local console: served on its unix socket only (channels.py)."""

    def __init__(self, replicator: Replicator, service: AuthorizationService) -> None:
        super().__init__(replicator)
        self._s = service

    @rpc
    def Challenge(
        self, r: console_pb2.ConsoleChallengeRequest, context: Ctx
    ) -> authorization_pb2.ChallengeResponse:  # noqa: N802
        ch = self._s.console_challenge(r.partition, r.action)
        return authorization_pb2.ChallengeResponse(challenge=ch.data, mac=ch.mac, expires_ms=ch.expires_ms)

    @rpc
    def Change(self, r: console_pb2.ConsoleChangeRequest, context: Ctx) -> console_pb2.ConsoleChangeResponse:  # noqa: N802
        state = self._s.console_change(
            r.partition,
            r.target,
            r.challenge,
            r.mac,
            [(x.label, x.signature) for x in r.signatures],
            r.password,
            _card_set(r),
            r.request_id,
            remaining(context),
        )
        return console_pb2.ConsoleChangeResponse(state=state, member=self._s.console_actor.partition(":")[2])

    @rpc
    def Show(self, r: console_pb2.ConsoleShowRequest, context: Ctx) -> authorization_pb2.AuthorizationInfo:  # noqa: N802
        return _auth_info(self._s.console_show(r.partition))


class PartitionBackupServicer(Servicer, partition_backup_pb2_grpc.PartitionBackupServicer):
    def __init__(self, replicator: Replicator, service: PartitionBackupService) -> None:
        super().__init__(replicator)
        self._s = service

    @rpc
    def Create(
        self, r: partition_backup_pb2.PartitionBackupRequest, context: Ctx
    ) -> partition_backup_pb2.PartitionBackupResponse:  # noqa: N802
        made = self._s.create(caller_of(context), token_of(context))
        return partition_backup_pb2.PartitionBackupResponse(
            backup=made.data, objects=made.objects, cloning_domain=made.cloning_domain
        )

    @rpc
    def Restore(
        self, r: partition_backup_pb2.PartitionRestoreRequest, context: Ctx
    ) -> partition_backup_pb2.PartitionRestoreResponse:  # noqa: N802
        keys, source = self._s.restore(
            caller_of(context), token_of(context), r.backup, r.request_id, remaining(context)
        )
        return partition_backup_pb2.PartitionRestoreResponse(
            keys=[_key(k) for k in keys], source_partition=source
        )
