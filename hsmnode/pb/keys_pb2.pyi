from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyInfo(_message.Message):
    __slots__ = ("id", "label", "key_type", "size", "object_class", "exportable", "usage", "public_der", "origin", "created_at_ms", "container", "blocked", "extractable")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_CLASS_FIELD_NUMBER: _ClassVar[int]
    EXPORTABLE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_DER_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    EXTRACTABLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    key_type: str
    size: str
    object_class: str
    exportable: bool
    usage: _containers.RepeatedScalarFieldContainer[str]
    public_der: bytes
    origin: str
    created_at_ms: int
    container: str
    blocked: bool
    extractable: bool
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., key_type: _Optional[str] = ..., size: _Optional[str] = ..., object_class: _Optional[str] = ..., exportable: _Optional[bool] = ..., usage: _Optional[_Iterable[str]] = ..., public_der: _Optional[bytes] = ..., origin: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., container: _Optional[str] = ..., blocked: _Optional[bool] = ..., extractable: _Optional[bool] = ...) -> None: ...

class GenerateKeyRequest(_message.Message):
    __slots__ = ("request_id", "label", "key_type", "size", "exportable", "usage", "partition", "extractable")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    EXPORTABLE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    EXTRACTABLE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    label: str
    key_type: str
    size: str
    exportable: bool
    usage: _containers.RepeatedScalarFieldContainer[str]
    partition: str
    extractable: bool
    def __init__(self, request_id: _Optional[str] = ..., label: _Optional[str] = ..., key_type: _Optional[str] = ..., size: _Optional[str] = ..., exportable: _Optional[bool] = ..., usage: _Optional[_Iterable[str]] = ..., partition: _Optional[str] = ..., extractable: _Optional[bool] = ...) -> None: ...

class GenerateKeyBatch(_message.Message):
    __slots__ = ("requests", "timeout_ms")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[GenerateKeyRequest]
    timeout_ms: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, requests: _Optional[_Iterable[_Union[GenerateKeyRequest, _Mapping]]] = ..., timeout_ms: _Optional[_Iterable[int]] = ...) -> None: ...

class GenerateKeyResult(_message.Message):
    __slots__ = ("request_id", "code", "message", "refusal", "key")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    code: int
    message: str
    refusal: str
    key: KeyInfo
    def __init__(self, request_id: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., refusal: _Optional[str] = ..., key: _Optional[_Union[KeyInfo, _Mapping]] = ...) -> None: ...

class GenerateKeyResults(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GenerateKeyResult]
    def __init__(self, results: _Optional[_Iterable[_Union[GenerateKeyResult, _Mapping]]] = ...) -> None: ...

class ImportPublicKeyRequest(_message.Message):
    __slots__ = ("request_id", "label", "pem", "usage", "key_type")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PEM_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    label: str
    pem: bytes
    usage: _containers.RepeatedScalarFieldContainer[str]
    key_type: str
    def __init__(self, request_id: _Optional[str] = ..., label: _Optional[str] = ..., pem: _Optional[bytes] = ..., usage: _Optional[_Iterable[str]] = ..., key_type: _Optional[str] = ...) -> None: ...

class ImportKeyRequest(_message.Message):
    __slots__ = ("request_id", "label", "key_type", "material", "usage", "exportable", "extractable")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    MATERIAL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    EXPORTABLE_FIELD_NUMBER: _ClassVar[int]
    EXTRACTABLE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    label: str
    key_type: str
    material: bytes
    usage: _containers.RepeatedScalarFieldContainer[str]
    exportable: bool
    extractable: bool
    def __init__(self, request_id: _Optional[str] = ..., label: _Optional[str] = ..., key_type: _Optional[str] = ..., material: _Optional[bytes] = ..., usage: _Optional[_Iterable[str]] = ..., exportable: _Optional[bool] = ..., extractable: _Optional[bool] = ...) -> None: ...

class UnwrapKeyRequest(_message.Message):
    __slots__ = ("request_id", "wrapping_key", "wrapped", "label", "key_type", "usage", "exportable", "mechanism", "iv", "aad", "extractable")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WRAPPING_KEY_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    EXPORTABLE_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    IV_FIELD_NUMBER: _ClassVar[int]
    AAD_FIELD_NUMBER: _ClassVar[int]
    EXTRACTABLE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    wrapping_key: str
    wrapped: bytes
    label: str
    key_type: str
    usage: _containers.RepeatedScalarFieldContainer[str]
    exportable: bool
    mechanism: str
    iv: bytes
    aad: bytes
    extractable: bool
    def __init__(self, request_id: _Optional[str] = ..., wrapping_key: _Optional[str] = ..., wrapped: _Optional[bytes] = ..., label: _Optional[str] = ..., key_type: _Optional[str] = ..., usage: _Optional[_Iterable[str]] = ..., exportable: _Optional[bool] = ..., mechanism: _Optional[str] = ..., iv: _Optional[bytes] = ..., aad: _Optional[bytes] = ..., extractable: _Optional[bool] = ...) -> None: ...

class KeyRef(_message.Message):
    __slots__ = ("request_id", "key")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key: str
    def __init__(self, request_id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class DestroyKeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BlockKeyRequest(_message.Message):
    __slots__ = ("request_id", "key", "blocked")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key: str
    blocked: bool
    def __init__(self, request_id: _Optional[str] = ..., key: _Optional[str] = ..., blocked: _Optional[bool] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("label", "key_type", "id", "partition")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    label: str
    key_type: str
    id: str
    partition: str
    def __init__(self, label: _Optional[str] = ..., key_type: _Optional[str] = ..., id: _Optional[str] = ..., partition: _Optional[str] = ...) -> None: ...

class KeyList(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyInfo]
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyInfo, _Mapping]]] = ...) -> None: ...

class SignRequest(_message.Message):
    __slots__ = ("key", "mechanism", "data")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    key: str
    mechanism: str
    data: bytes
    def __init__(self, key: _Optional[str] = ..., mechanism: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class SignResponse(_message.Message):
    __slots__ = ("signature",)
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    def __init__(self, signature: _Optional[bytes] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("key", "mechanism", "data", "signature")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    key: str
    mechanism: str
    data: bytes
    signature: bytes
    def __init__(self, key: _Optional[str] = ..., mechanism: _Optional[str] = ..., data: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("valid",)
    VALID_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    def __init__(self, valid: _Optional[bool] = ...) -> None: ...

class EncryptRequest(_message.Message):
    __slots__ = ("key", "mechanism", "data", "aad", "iv")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    AAD_FIELD_NUMBER: _ClassVar[int]
    IV_FIELD_NUMBER: _ClassVar[int]
    key: str
    mechanism: str
    data: bytes
    aad: bytes
    iv: bytes
    def __init__(self, key: _Optional[str] = ..., mechanism: _Optional[str] = ..., data: _Optional[bytes] = ..., aad: _Optional[bytes] = ..., iv: _Optional[bytes] = ...) -> None: ...

class EncryptResponse(_message.Message):
    __slots__ = ("ciphertext", "iv")
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    IV_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    iv: bytes
    def __init__(self, ciphertext: _Optional[bytes] = ..., iv: _Optional[bytes] = ...) -> None: ...

class DecryptRequest(_message.Message):
    __slots__ = ("key", "mechanism", "ciphertext", "iv", "aad")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    IV_FIELD_NUMBER: _ClassVar[int]
    AAD_FIELD_NUMBER: _ClassVar[int]
    key: str
    mechanism: str
    ciphertext: bytes
    iv: bytes
    aad: bytes
    def __init__(self, key: _Optional[str] = ..., mechanism: _Optional[str] = ..., ciphertext: _Optional[bytes] = ..., iv: _Optional[bytes] = ..., aad: _Optional[bytes] = ...) -> None: ...

class DecryptResponse(_message.Message):
    __slots__ = ("plaintext",)
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    def __init__(self, plaintext: _Optional[bytes] = ...) -> None: ...

class WrapKeyRequest(_message.Message):
    __slots__ = ("wrapping_key", "key", "mechanism", "iv", "aad")
    WRAPPING_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    IV_FIELD_NUMBER: _ClassVar[int]
    AAD_FIELD_NUMBER: _ClassVar[int]
    wrapping_key: str
    key: str
    mechanism: str
    iv: bytes
    aad: bytes
    def __init__(self, wrapping_key: _Optional[str] = ..., key: _Optional[str] = ..., mechanism: _Optional[str] = ..., iv: _Optional[bytes] = ..., aad: _Optional[bytes] = ...) -> None: ...

class WrapKeyResponse(_message.Message):
    __slots__ = ("wrapped", "mechanism")
    WRAPPED_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    wrapped: bytes
    mechanism: str
    def __init__(self, wrapped: _Optional[bytes] = ..., mechanism: _Optional[str] = ...) -> None: ...

class ExportPublicResponse(_message.Message):
    __slots__ = ("pem",)
    PEM_FIELD_NUMBER: _ClassVar[int]
    pem: bytes
    def __init__(self, pem: _Optional[bytes] = ...) -> None: ...

class DigestRequest(_message.Message):
    __slots__ = ("mechanism", "data")
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    mechanism: str
    data: bytes
    def __init__(self, mechanism: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class DigestResponse(_message.Message):
    __slots__ = ("digest",)
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    digest: bytes
    def __init__(self, digest: _Optional[bytes] = ...) -> None: ...

class RandomRequest(_message.Message):
    __slots__ = ("length",)
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    length: int
    def __init__(self, length: _Optional[int] = ...) -> None: ...

class RandomResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...
