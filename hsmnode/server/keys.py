"""Keys servicer (keys.proto): keys and cryptographic operations in partitions and keyrings."""

from __future__ import annotations

import time

from hsmnode.pb import keys_pb2, keys_pb2_grpc
from hsmnode.server.errors import status_of
from hsmnode.server.rpc import Servicer, remember_batch, rpc
from hsmnode.service.call import Call
from hsmnode.service.errors import DomainError, ErrorCode
from hsmnode.service.key_batch import MAX_BATCH, Generation
from hsmnode.service.key_views import KeyView
from hsmnode.service.keys import KeyService

KeyCreateRequest = keys_pb2.GenerateKeyRequest | keys_pb2.ImportKeyRequest | keys_pb2.UnwrapKeyRequest


def key_info(k: KeyView, into: keys_pb2.KeyInfo | None = None) -> keys_pb2.KeyInfo:
    """`k` as a KeyInfo; `into`: filled in place (a GenerateBatch result's own `key`: no copy)."""
    info = keys_pb2.KeyInfo() if into is None else into
    info.id = k.id
    info.label = k.label
    info.key_type = k.key_type
    info.size = k.size
    info.object_class = k.object_class
    info.extractable = k.extractable
    info.exportable = k.extractable  # deprecated field 6: answered with the same value for one release
    info.usage.extend(k.usage)
    info.public_der = k.public_der
    info.origin = k.origin
    info.created_at_ms = k.created_at
    info.container = k.container
    info.blocked = k.blocked
    return info


def extractable(r: KeyCreateRequest) -> bool:
    """CKA_EXTRACTABLE as a request asks it: `extractable` when set, else the deprecated `exportable`
    (accepted for one release after issue 13's rename). An `exportable = true` beside an explicit
    `extractable = false` is INVALID_ARGUMENT naming both fields (the request says two things)."""
    if not r.HasField("extractable"):
        return r.exportable
    if r.exportable and not r.extractable:
        raise DomainError(
            ErrorCode.INVALID_ARGUMENT,
            f"{type(r).__name__}: extractable=false and the deprecated exportable=true disagree; "
            "send extractable only (exportable is read for one release)",
        )
    return r.extractable


class KeysServicer(Servicer[KeyService], keys_pb2_grpc.KeysServicer):
    @rpc
    def Generate(self, r: keys_pb2.GenerateKeyRequest, call: Call) -> keys_pb2.KeyInfo:  # noqa: N802
        return key_info(
            self._s.generate(call, r.label, r.key_type, r.size, extractable(r), list(r.usage), r.partition)
        )

    @rpc
    def GenerateBatch(  # noqa: N802
        self, r: keys_pb2.GenerateKeyBatch, call: Call
    ) -> keys_pb2.GenerateKeyResults:
        """Each request answered as Generate answers it (service/key_batch.py); more than MAX_BATCH
        requests are refused whole. The request log sees one record with the request count."""
        count = len(r.requests)
        if count > MAX_BATCH:
            raise DomainError(
                ErrorCode.INVALID_ARGUMENT,
                f"the batch holds {count} requests; a GenerateBatch holds at most {MAX_BATCH}: split it",
            )
        received = time.monotonic()
        timeouts = list(r.timeout_ms)
        requests: list[Generation | Exception] = []
        for index, g in enumerate(r.requests):
            ms = timeouts[index] if index < len(timeouts) else 0
            deadline = received + ms / 1000 if ms else None
            if deadline is not None and call.deadline is not None:
                deadline = min(deadline, call.deadline)
            try:
                requests.append(
                    Generation(
                        g.request_id,
                        g.label,
                        g.key_type,
                        g.size,
                        extractable(g),
                        list(g.usage),
                        g.partition,
                        deadline,
                    )
                )
            except DomainError as exc:
                requests.append(exc)
        answers = self._s.generate_batch(call, requests)
        results = keys_pb2.GenerateKeyResults()
        failed = 0
        for g, found in zip(r.requests, answers, strict=True):
            if isinstance(found, Exception):
                failed += 1
                status, message, refusal = status_of(found)
                results.results.add(
                    request_id=g.request_id, code=status.value[0], message=message, refusal=refusal
                )
            else:
                key_info(found, into=results.results.add(request_id=g.request_id).key)
        remember_batch(call, count, {"generate": count}, {"generate": failed} if failed else {})
        return results

    @rpc
    def ImportPublic(self, r: keys_pb2.ImportPublicKeyRequest, call: Call) -> keys_pb2.KeyInfo:  # noqa: N802
        return key_info(self._s.import_public(call, r.label, r.pem, list(r.usage), r.key_type))

    @rpc
    def Import(self, r: keys_pb2.ImportKeyRequest, call: Call) -> keys_pb2.KeyInfo:  # noqa: N802
        return key_info(
            self._s.import_key(call, r.label, r.key_type, r.material, list(r.usage), extractable(r))
        )

    @rpc
    def Unwrap(self, r: keys_pb2.UnwrapKeyRequest, call: Call) -> keys_pb2.KeyInfo:  # noqa: N802
        return key_info(
            self._s.unwrap(
                call,
                r.wrapping_key,
                r.wrapped,
                r.label,
                r.key_type,
                list(r.usage),
                extractable(r),
                mechanism=r.mechanism,
                iv=r.iv,
                aad=r.aad,
            )
        )

    @rpc
    def Destroy(self, r: keys_pb2.KeyRef, call: Call) -> keys_pb2.DestroyKeyResponse:  # noqa: N802
        self._s.destroy(call, r.key)
        return keys_pb2.DestroyKeyResponse()

    @rpc
    def Block(self, r: keys_pb2.BlockKeyRequest, call: Call) -> keys_pb2.DestroyKeyResponse:  # noqa: N802
        self._s.block(call, r.key, r.blocked)
        return keys_pb2.DestroyKeyResponse()

    @rpc
    def List(self, r: keys_pb2.ListKeysRequest, call: Call) -> keys_pb2.KeyList:  # noqa: N802
        found = self._s.list(call, r.label, r.key_type, r.id, r.partition)
        return keys_pb2.KeyList(keys=[key_info(k) for k in found])

    @rpc
    def Show(self, r: keys_pb2.KeyRef, call: Call) -> keys_pb2.KeyInfo:  # noqa: N802
        return key_info(self._s.show(call, r.key))

    @rpc
    def Sign(self, r: keys_pb2.SignRequest, call: Call) -> keys_pb2.SignResponse:  # noqa: N802
        return keys_pb2.SignResponse(signature=self._s.sign(call, r.key, r.mechanism, r.data))

    @rpc
    def Verify(self, r: keys_pb2.VerifyRequest, call: Call) -> keys_pb2.VerifyResponse:  # noqa: N802
        return keys_pb2.VerifyResponse(valid=self._s.verify(call, r.key, r.mechanism, r.data, r.signature))

    @rpc
    def Encrypt(self, r: keys_pb2.EncryptRequest, call: Call) -> keys_pb2.EncryptResponse:  # noqa: N802
        ciphertext, iv = self._s.encrypt(call, r.key, r.mechanism, r.data, r.aad, r.iv)
        return keys_pb2.EncryptResponse(ciphertext=ciphertext, iv=iv)

    @rpc
    def Decrypt(self, r: keys_pb2.DecryptRequest, call: Call) -> keys_pb2.DecryptResponse:  # noqa: N802
        plaintext = self._s.decrypt(call, r.key, r.mechanism, r.ciphertext, r.iv, r.aad)
        return keys_pb2.DecryptResponse(plaintext=plaintext)

    @rpc
    def Wrap(self, r: keys_pb2.WrapKeyRequest, call: Call) -> keys_pb2.WrapKeyResponse:  # noqa: N802
        wrapped = self._s.wrap(call, r.wrapping_key, r.key, r.mechanism, r.iv, r.aad)
        return keys_pb2.WrapKeyResponse(wrapped=wrapped, mechanism=r.mechanism or "AES-KWP")

    @rpc
    def ExportPublic(self, r: keys_pb2.KeyRef, call: Call) -> keys_pb2.ExportPublicResponse:  # noqa: N802
        return keys_pb2.ExportPublicResponse(pem=self._s.export_public(call, r.key))

    @rpc
    def Digest(self, r: keys_pb2.DigestRequest, call: Call) -> keys_pb2.DigestResponse:  # noqa: N802
        return keys_pb2.DigestResponse(digest=self._s.digest(call, r.mechanism, r.data))

    @rpc
    def Random(self, r: keys_pb2.RandomRequest, call: Call) -> keys_pb2.RandomResponse:  # noqa: N802
        return keys_pb2.RandomResponse(data=self._s.random(call, r.length))
