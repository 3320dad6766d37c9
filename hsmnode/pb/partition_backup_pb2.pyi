from hsmnode.pb import keys_pb2 as _keys_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PartitionBackupRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PartitionBackupResponse(_message.Message):
    __slots__ = ("backup", "objects", "cloning_domain")
    BACKUP_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    CLONING_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    backup: bytes
    objects: int
    cloning_domain: str
    def __init__(self, backup: _Optional[bytes] = ..., objects: _Optional[int] = ..., cloning_domain: _Optional[str] = ...) -> None: ...

class PartitionRestoreRequest(_message.Message):
    __slots__ = ("request_id", "backup")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BACKUP_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    backup: bytes
    def __init__(self, request_id: _Optional[str] = ..., backup: _Optional[bytes] = ...) -> None: ...

class PartitionRestoreResponse(_message.Message):
    __slots__ = ("keys", "source_partition")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTITION_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[_keys_pb2.KeyInfo]
    source_partition: str
    def __init__(self, keys: _Optional[_Iterable[_Union[_keys_pb2.KeyInfo, _Mapping]]] = ..., source_partition: _Optional[str] = ...) -> None: ...
