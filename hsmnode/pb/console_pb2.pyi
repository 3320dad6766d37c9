from hsmnode.pb import authorization_pb2 as _authorization_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConsoleChallengeRequest(_message.Message):
    __slots__ = ("partition", "action")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    partition: str
    action: str
    def __init__(self, partition: _Optional[str] = ..., action: _Optional[str] = ...) -> None: ...

class ConsoleChangeRequest(_message.Message):
    __slots__ = ("request_id", "partition", "target", "challenge", "mac", "signatures", "password", "card_set")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CARD_SET_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partition: str
    target: str
    challenge: bytes
    mac: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[_authorization_pb2.CardSignature]
    password: str
    card_set: _authorization_pb2.CardSet
    def __init__(self, request_id: _Optional[str] = ..., partition: _Optional[str] = ..., target: _Optional[str] = ..., challenge: _Optional[bytes] = ..., mac: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[_authorization_pb2.CardSignature, _Mapping]]] = ..., password: _Optional[str] = ..., card_set: _Optional[_Union[_authorization_pb2.CardSet, _Mapping]] = ...) -> None: ...

class ConsoleChangeResponse(_message.Message):
    __slots__ = ("state", "member")
    STATE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    state: str
    member: str
    def __init__(self, state: _Optional[str] = ..., member: _Optional[str] = ...) -> None: ...

class ConsoleShowRequest(_message.Message):
    __slots__ = ("partition",)
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    partition: str
    def __init__(self, partition: _Optional[str] = ...) -> None: ...
