from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListSlotsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Slot(_message.Message):
    __slots__ = ("partition", "label", "initialized", "activation_required", "activated", "kind")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    INITIALIZED_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    partition: str
    label: str
    initialized: bool
    activation_required: bool
    activated: bool
    kind: str
    def __init__(self, partition: _Optional[str] = ..., label: _Optional[str] = ..., initialized: _Optional[bool] = ..., activation_required: _Optional[bool] = ..., activated: _Optional[bool] = ..., kind: _Optional[str] = ...) -> None: ...

class ListSlotsResponse(_message.Message):
    __slots__ = ("client", "slots")
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    client: str
    slots: _containers.RepeatedCompositeFieldContainer[Slot]
    def __init__(self, client: _Optional[str] = ..., slots: _Optional[_Iterable[_Union[Slot, _Mapping]]] = ...) -> None: ...

class OpenSessionRequest(_message.Message):
    __slots__ = ("request_id", "partition", "role", "password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partition: str
    role: str
    password: str
    def __init__(self, request_id: _Optional[str] = ..., partition: _Optional[str] = ..., role: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class OpenSessionResponse(_message.Message):
    __slots__ = ("token", "expires_ms", "partition", "role")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_ms: int
    partition: str
    role: str
    def __init__(self, token: _Optional[str] = ..., expires_ms: _Optional[int] = ..., partition: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class CloseSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SessionInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SessionInfoResponse(_message.Message):
    __slots__ = ("partition", "role", "expires_ms")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    partition: str
    role: str
    expires_ms: int
    def __init__(self, partition: _Optional[str] = ..., role: _Optional[str] = ..., expires_ms: _Optional[int] = ...) -> None: ...

class PartitionPasswordRequest(_message.Message):
    __slots__ = ("request_id", "partition", "role", "old_password", "new_password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    OLD_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partition: str
    role: str
    old_password: str
    new_password: str
    def __init__(self, request_id: _Optional[str] = ..., partition: _Optional[str] = ..., role: _Optional[str] = ..., old_password: _Optional[str] = ..., new_password: _Optional[str] = ...) -> None: ...

class PartitionPasswordResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InitPartitionRequest(_message.Message):
    __slots__ = ("request_id", "partition", "label", "cloning_domain", "po_password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CLONING_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    PO_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partition: str
    label: str
    cloning_domain: str
    po_password: str
    def __init__(self, request_id: _Optional[str] = ..., partition: _Optional[str] = ..., label: _Optional[str] = ..., cloning_domain: _Optional[str] = ..., po_password: _Optional[str] = ...) -> None: ...

class InitPartitionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InitRoleRequest(_message.Message):
    __slots__ = ("request_id", "role", "password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    role: str
    password: str
    def __init__(self, request_id: _Optional[str] = ..., role: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class InitRoleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("request_id", "policy", "value")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    policy: str
    value: int
    def __init__(self, request_id: _Optional[str] = ..., policy: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...

class SetPolicyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ActivateRequest(_message.Message):
    __slots__ = ("request_id", "partition", "co_password", "active")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    CO_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partition: str
    co_password: str
    active: bool
    def __init__(self, request_id: _Optional[str] = ..., partition: _Optional[str] = ..., co_password: _Optional[str] = ..., active: _Optional[bool] = ...) -> None: ...

class ActivateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
