from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditNoteRequest(_message.Message):
    __slots__ = ("request_id", "text")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class AuditNoteResponse(_message.Message):
    __slots__ = ("seq", "hash")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    hash: str
    def __init__(self, seq: _Optional[int] = ..., hash: _Optional[str] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("seq", "timestamp_ms", "actor", "request_id", "command", "outcome", "detail", "prev_hash", "hash", "category", "container", "key", "member", "chain", "count")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    timestamp_ms: int
    actor: str
    request_id: str
    command: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str
    category: str
    container: str
    key: str
    member: str
    chain: str
    count: int
    def __init__(self, seq: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., actor: _Optional[str] = ..., request_id: _Optional[str] = ..., command: _Optional[str] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ..., category: _Optional[str] = ..., container: _Optional[str] = ..., key: _Optional[str] = ..., member: _Optional[str] = ..., chain: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class AuditListRequest(_message.Message):
    __slots__ = ("after_seq", "limit", "chain")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    limit: int
    chain: str
    def __init__(self, after_seq: _Optional[int] = ..., limit: _Optional[int] = ..., chain: _Optional[str] = ...) -> None: ...

class AuditListResponse(_message.Message):
    __slots__ = ("records", "total", "member")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    total: int
    member: str
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ..., total: _Optional[int] = ..., member: _Optional[str] = ...) -> None: ...

class AuditVerifyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditVerifyResponse(_message.Message):
    __slots__ = ("ok", "length", "head_hash", "problem", "member", "member_ok", "member_length", "member_head_hash", "member_problem")
    OK_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_OK_FIELD_NUMBER: _ClassVar[int]
    MEMBER_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MEMBER_HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    MEMBER_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    length: int
    head_hash: str
    problem: str
    member: str
    member_ok: bool
    member_length: int
    member_head_hash: str
    member_problem: str
    def __init__(self, ok: _Optional[bool] = ..., length: _Optional[int] = ..., head_hash: _Optional[str] = ..., problem: _Optional[str] = ..., member: _Optional[str] = ..., member_ok: _Optional[bool] = ..., member_length: _Optional[int] = ..., member_head_hash: _Optional[str] = ..., member_problem: _Optional[str] = ...) -> None: ...

class SetAuditConfigRequest(_message.Message):
    __slots__ = ("request_id", "category", "level")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    category: str
    level: str
    def __init__(self, request_id: _Optional[str] = ..., category: _Optional[str] = ..., level: _Optional[str] = ...) -> None: ...

class ShowAuditConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditConfig(_message.Message):
    __slots__ = ("levels",)
    class LevelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    levels: _containers.ScalarMap[str, str]
    def __init__(self, levels: _Optional[_Mapping[str, str]] = ...) -> None: ...
