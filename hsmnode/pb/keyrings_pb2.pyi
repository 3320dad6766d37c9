from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateKeyringRequest(_message.Message):
    __slots__ = ("request_id", "label", "krso_password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KRSO_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    label: str
    krso_password: str
    def __init__(self, request_id: _Optional[str] = ..., label: _Optional[str] = ..., krso_password: _Optional[str] = ...) -> None: ...

class CreateKeyringResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class KeyringRequest(_message.Message):
    __slots__ = ("request_id", "label")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    label: str
    def __init__(self, request_id: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class AssignKeyringRequest(_message.Message):
    __slots__ = ("request_id", "label", "client")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    label: str
    client: str
    def __init__(self, request_id: _Optional[str] = ..., label: _Optional[str] = ..., client: _Optional[str] = ...) -> None: ...

class SetKrcoRequest(_message.Message):
    __slots__ = ("request_id", "password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    password: str
    def __init__(self, request_id: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class KeyringAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListKeyringsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KeyringInfo(_message.Message):
    __slots__ = ("label", "id", "krso_initialized", "krco_set", "locked", "objects", "clients")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    KRSO_INITIALIZED_FIELD_NUMBER: _ClassVar[int]
    KRCO_SET_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    label: str
    id: str
    krso_initialized: bool
    krco_set: bool
    locked: bool
    objects: int
    clients: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, label: _Optional[str] = ..., id: _Optional[str] = ..., krso_initialized: _Optional[bool] = ..., krco_set: _Optional[bool] = ..., locked: _Optional[bool] = ..., objects: _Optional[int] = ..., clients: _Optional[_Iterable[str]] = ...) -> None: ...

class KeyringList(_message.Message):
    __slots__ = ("keyrings",)
    KEYRINGS_FIELD_NUMBER: _ClassVar[int]
    keyrings: _containers.RepeatedCompositeFieldContainer[KeyringInfo]
    def __init__(self, keyrings: _Optional[_Iterable[_Union[KeyringInfo, _Mapping]]] = ...) -> None: ...
