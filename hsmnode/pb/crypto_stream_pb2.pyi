from hsmnode.pb import keys_pb2 as _keys_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CryptoOp(_message.Message):
    __slots__ = ("id", "sign", "verify", "encrypt", "decrypt", "timeout_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    SIGN_FIELD_NUMBER: _ClassVar[int]
    VERIFY_FIELD_NUMBER: _ClassVar[int]
    ENCRYPT_FIELD_NUMBER: _ClassVar[int]
    DECRYPT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    sign: _keys_pb2.SignRequest
    verify: _keys_pb2.VerifyRequest
    encrypt: _keys_pb2.EncryptRequest
    decrypt: _keys_pb2.DecryptRequest
    timeout_ms: int
    def __init__(self, id: _Optional[int] = ..., sign: _Optional[_Union[_keys_pb2.SignRequest, _Mapping]] = ..., verify: _Optional[_Union[_keys_pb2.VerifyRequest, _Mapping]] = ..., encrypt: _Optional[_Union[_keys_pb2.EncryptRequest, _Mapping]] = ..., decrypt: _Optional[_Union[_keys_pb2.DecryptRequest, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class CryptoBatch(_message.Message):
    __slots__ = ("batch_id", "session", "ops", "min_index")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    MIN_INDEX_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    session: str
    ops: _containers.RepeatedCompositeFieldContainer[CryptoOp]
    min_index: int
    def __init__(self, batch_id: _Optional[int] = ..., session: _Optional[str] = ..., ops: _Optional[_Iterable[_Union[CryptoOp, _Mapping]]] = ..., min_index: _Optional[int] = ...) -> None: ...

class CryptoResult(_message.Message):
    __slots__ = ("id", "code", "message", "refusal", "sign", "verify", "encrypt", "decrypt")
    ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    SIGN_FIELD_NUMBER: _ClassVar[int]
    VERIFY_FIELD_NUMBER: _ClassVar[int]
    ENCRYPT_FIELD_NUMBER: _ClassVar[int]
    DECRYPT_FIELD_NUMBER: _ClassVar[int]
    id: int
    code: int
    message: str
    refusal: str
    sign: _keys_pb2.SignResponse
    verify: _keys_pb2.VerifyResponse
    encrypt: _keys_pb2.EncryptResponse
    decrypt: _keys_pb2.DecryptResponse
    def __init__(self, id: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., refusal: _Optional[str] = ..., sign: _Optional[_Union[_keys_pb2.SignResponse, _Mapping]] = ..., verify: _Optional[_Union[_keys_pb2.VerifyResponse, _Mapping]] = ..., encrypt: _Optional[_Union[_keys_pb2.EncryptResponse, _Mapping]] = ..., decrypt: _Optional[_Union[_keys_pb2.DecryptResponse, _Mapping]] = ...) -> None: ...

class CryptoResults(_message.Message):
    __slots__ = ("batch_id", "code", "message", "results", "applied_index", "refusal", "busy_us")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    BUSY_US_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    code: int
    message: str
    results: _containers.RepeatedCompositeFieldContainer[CryptoResult]
    applied_index: int
    refusal: str
    busy_us: int
    def __init__(self, batch_id: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., results: _Optional[_Iterable[_Union[CryptoResult, _Mapping]]] = ..., applied_index: _Optional[int] = ..., refusal: _Optional[str] = ..., busy_us: _Optional[int] = ...) -> None: ...
