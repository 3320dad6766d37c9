from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NameRequest(_message.Message):
    __slots__ = ("request_id", "name")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class AddUserRequest(_message.Message):
    __slots__ = ("request_id", "name", "role", "password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    role: str
    password: str
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class SetUserEnabledRequest(_message.Message):
    __slots__ = ("request_id", "name", "enabled")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    enabled: bool
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class SetUserPasswordRequest(_message.Message):
    __slots__ = ("request_id", "name", "password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    password: str
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("name", "role", "enabled", "builtin", "must_change_password", "locked", "failed_logins")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    MUST_CHANGE_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    FAILED_LOGINS_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    enabled: bool
    builtin: bool
    must_change_password: bool
    locked: bool
    failed_logins: int
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., enabled: _Optional[bool] = ..., builtin: _Optional[bool] = ..., must_change_password: _Optional[bool] = ..., locked: _Optional[bool] = ..., failed_logins: _Optional[int] = ...) -> None: ...

class UserList(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ...) -> None: ...

class AddRoleRequest(_message.Message):
    __slots__ = ("request_id", "name", "commands")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    commands: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., commands: _Optional[_Iterable[str]] = ...) -> None: ...

class Role(_message.Message):
    __slots__ = ("name", "commands", "builtin")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    commands: _containers.RepeatedScalarFieldContainer[str]
    builtin: bool
    def __init__(self, name: _Optional[str] = ..., commands: _Optional[_Iterable[str]] = ..., builtin: _Optional[bool] = ...) -> None: ...

class RoleList(_message.Message):
    __slots__ = ("roles",)
    ROLES_FIELD_NUMBER: _ClassVar[int]
    roles: _containers.RepeatedCompositeFieldContainer[Role]
    def __init__(self, roles: _Optional[_Iterable[_Union[Role, _Mapping]]] = ...) -> None: ...

class RegisterClientRequest(_message.Message):
    __slots__ = ("request_id", "name", "cert_pem")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CERT_PEM_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    cert_pem: str
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., cert_pem: _Optional[str] = ...) -> None: ...

class RegisterClientResponse(_message.Message):
    __slots__ = ("fingerprint",)
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    def __init__(self, fingerprint: _Optional[str] = ...) -> None: ...

class ClientPartitionRequest(_message.Message):
    __slots__ = ("request_id", "name", "partition")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    partition: str
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., partition: _Optional[str] = ...) -> None: ...

class ClientInfo(_message.Message):
    __slots__ = ("name", "fingerprint", "partitions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    fingerprint: str
    partitions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., fingerprint: _Optional[str] = ..., partitions: _Optional[_Iterable[str]] = ...) -> None: ...

class ClientList(_message.Message):
    __slots__ = ("clients",)
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    clients: _containers.RepeatedCompositeFieldContainer[ClientInfo]
    def __init__(self, clients: _Optional[_Iterable[_Union[ClientInfo, _Mapping]]] = ...) -> None: ...

class InitHsmRequest(_message.Message):
    __slots__ = ("request_id", "label", "so_password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SO_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    label: str
    so_password: str
    def __init__(self, request_id: _Optional[str] = ..., label: _Optional[str] = ..., so_password: _Optional[str] = ...) -> None: ...

class InitHsmResponse(_message.Message):
    __slots__ = ("destroyed_partitions",)
    DESTROYED_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    destroyed_partitions: int
    def __init__(self, destroyed_partitions: _Optional[int] = ...) -> None: ...

class HsmInfo(_message.Message):
    __slots__ = ("initialized", "label", "so_locked", "auditor_initialized", "policies", "partitions", "keyring_objects")
    class PoliciesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    class KeyringObjectsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    INITIALIZED_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SO_LOCKED_FIELD_NUMBER: _ClassVar[int]
    AUDITOR_INITIALIZED_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    KEYRING_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    initialized: bool
    label: str
    so_locked: bool
    auditor_initialized: bool
    policies: _containers.ScalarMap[str, bool]
    partitions: int
    keyring_objects: _containers.ScalarMap[str, int]
    def __init__(self, initialized: _Optional[bool] = ..., label: _Optional[str] = ..., so_locked: _Optional[bool] = ..., auditor_initialized: _Optional[bool] = ..., policies: _Optional[_Mapping[str, bool]] = ..., partitions: _Optional[int] = ..., keyring_objects: _Optional[_Mapping[str, int]] = ...) -> None: ...

class InitAuditorRequest(_message.Message):
    __slots__ = ("request_id", "password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    password: str
    def __init__(self, request_id: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class SetHsmPolicyRequest(_message.Message):
    __slots__ = ("request_id", "name", "value")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    value: bool
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...

class CreatePartitionRequest(_message.Message):
    __slots__ = ("request_id", "name", "cluster", "requires_authorization")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    cluster: bool
    requires_authorization: bool
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., cluster: _Optional[bool] = ..., requires_authorization: _Optional[bool] = ...) -> None: ...

class PartitionRole(_message.Message):
    __slots__ = ("role", "locked", "must_change_password", "failed_logins")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    MUST_CHANGE_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    FAILED_LOGINS_FIELD_NUMBER: _ClassVar[int]
    role: str
    locked: bool
    must_change_password: bool
    failed_logins: int
    def __init__(self, role: _Optional[str] = ..., locked: _Optional[bool] = ..., must_change_password: _Optional[bool] = ..., failed_logins: _Optional[int] = ...) -> None: ...

class PartitionInfo(_message.Message):
    __slots__ = ("name", "label", "initialized", "cloning_domain", "roles", "policies", "activated", "cluster", "objects", "authorization_state")
    class PoliciesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    INITIALIZED_FIELD_NUMBER: _ClassVar[int]
    CLONING_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_STATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    label: str
    initialized: bool
    cloning_domain: str
    roles: _containers.RepeatedCompositeFieldContainer[PartitionRole]
    policies: _containers.ScalarMap[str, int]
    activated: bool
    cluster: bool
    objects: int
    authorization_state: str
    def __init__(self, name: _Optional[str] = ..., label: _Optional[str] = ..., initialized: _Optional[bool] = ..., cloning_domain: _Optional[str] = ..., roles: _Optional[_Iterable[_Union[PartitionRole, _Mapping]]] = ..., policies: _Optional[_Mapping[str, int]] = ..., activated: _Optional[bool] = ..., cluster: _Optional[bool] = ..., objects: _Optional[int] = ..., authorization_state: _Optional[str] = ...) -> None: ...

class PartitionList(_message.Message):
    __slots__ = ("partitions",)
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedCompositeFieldContainer[PartitionInfo]
    def __init__(self, partitions: _Optional[_Iterable[_Union[PartitionInfo, _Mapping]]] = ...) -> None: ...
