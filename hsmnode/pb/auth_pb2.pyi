from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class LoginRequest(_message.Message):
    __slots__ = ("request_id", "user", "password", "new_password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user: str
    password: str
    new_password: str
    def __init__(self, request_id: _Optional[str] = ..., user: _Optional[str] = ..., password: _Optional[str] = ..., new_password: _Optional[str] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("token", "expires_ms", "subject", "role")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_ms: int
    subject: str
    role: str
    def __init__(self, token: _Optional[str] = ..., expires_ms: _Optional[int] = ..., subject: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChangePasswordRequest(_message.Message):
    __slots__ = ("request_id", "user", "old_password", "new_password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    OLD_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user: str
    old_password: str
    new_password: str
    def __init__(self, request_id: _Optional[str] = ..., user: _Optional[str] = ..., old_password: _Optional[str] = ..., new_password: _Optional[str] = ...) -> None: ...

class ChangePasswordResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HsmLoginRequest(_message.Message):
    __slots__ = ("request_id", "role", "password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    role: str
    password: str
    def __init__(self, request_id: _Optional[str] = ..., role: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...
