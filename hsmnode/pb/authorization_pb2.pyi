from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SetGrantRequest(_message.Message):
    __slots__ = ("request_id", "grantee", "permissions")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GRANTEE_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    grantee: str
    permissions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[str] = ..., grantee: _Optional[str] = ..., permissions: _Optional[_Iterable[str]] = ...) -> None: ...

class Grant(_message.Message):
    __slots__ = ("owner", "grantee", "permissions")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    GRANTEE_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    owner: str
    grantee: str
    permissions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, owner: _Optional[str] = ..., grantee: _Optional[str] = ..., permissions: _Optional[_Iterable[str]] = ...) -> None: ...

class ListGrantsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GrantList(_message.Message):
    __slots__ = ("grants",)
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    grants: _containers.RepeatedCompositeFieldContainer[Grant]
    def __init__(self, grants: _Optional[_Iterable[_Union[Grant, _Mapping]]] = ...) -> None: ...

class ChallengeRequest(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: str
    def __init__(self, action: _Optional[str] = ...) -> None: ...

class ChallengeResponse(_message.Message):
    __slots__ = ("challenge", "mac", "expires_ms")
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    challenge: bytes
    mac: bytes
    expires_ms: int
    def __init__(self, challenge: _Optional[bytes] = ..., mac: _Optional[bytes] = ..., expires_ms: _Optional[int] = ...) -> None: ...

class CardSignature(_message.Message):
    __slots__ = ("label", "signature")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    label: str
    signature: bytes
    def __init__(self, label: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Card(_message.Message):
    __slots__ = ("label", "public_key")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    label: str
    public_key: bytes
    def __init__(self, label: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class CardSet(_message.Message):
    __slots__ = ("set_id", "threshold", "cards")
    SET_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CARDS_FIELD_NUMBER: _ClassVar[int]
    set_id: str
    threshold: int
    cards: _containers.RepeatedCompositeFieldContainer[Card]
    def __init__(self, set_id: _Optional[str] = ..., threshold: _Optional[int] = ..., cards: _Optional[_Iterable[_Union[Card, _Mapping]]] = ...) -> None: ...

class ChangeAuthorizationRequest(_message.Message):
    __slots__ = ("request_id", "target", "challenge", "mac", "signatures", "password", "card_set")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CARD_SET_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    target: str
    challenge: bytes
    mac: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[CardSignature]
    password: str
    card_set: CardSet
    def __init__(self, request_id: _Optional[str] = ..., target: _Optional[str] = ..., challenge: _Optional[bytes] = ..., mac: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[CardSignature, _Mapping]]] = ..., password: _Optional[str] = ..., card_set: _Optional[_Union[CardSet, _Mapping]] = ...) -> None: ...

class ChangeAuthorizationResponse(_message.Message):
    __slots__ = ("state", "token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: str
    token: str
    def __init__(self, state: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class SetAuthPermissionsRequest(_message.Message):
    __slots__ = ("request_id", "permissions", "challenge", "mac", "signatures", "password")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    permissions: _containers.RepeatedScalarFieldContainer[str]
    challenge: bytes
    mac: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[CardSignature]
    password: str
    def __init__(self, request_id: _Optional[str] = ..., permissions: _Optional[_Iterable[str]] = ..., challenge: _Optional[bytes] = ..., mac: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[CardSignature, _Mapping]]] = ..., password: _Optional[str] = ...) -> None: ...

class SetAuthPermissionsResponse(_message.Message):
    __slots__ = ("permissions",)
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    permissions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, permissions: _Optional[_Iterable[str]] = ...) -> None: ...

class ShowAuthorizationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuthorizationInfo(_message.Message):
    __slots__ = ("partition", "requires_authorization", "state", "set_id", "threshold", "card_labels", "permissions", "online_authorization", "session_authorized")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SET_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CARD_LABELS_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    ONLINE_AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    SESSION_AUTHORIZED_FIELD_NUMBER: _ClassVar[int]
    partition: str
    requires_authorization: bool
    state: str
    set_id: str
    threshold: int
    card_labels: _containers.RepeatedScalarFieldContainer[str]
    permissions: _containers.RepeatedScalarFieldContainer[str]
    online_authorization: bool
    session_authorized: bool
    def __init__(self, partition: _Optional[str] = ..., requires_authorization: _Optional[bool] = ..., state: _Optional[str] = ..., set_id: _Optional[str] = ..., threshold: _Optional[int] = ..., card_labels: _Optional[_Iterable[str]] = ..., permissions: _Optional[_Iterable[str]] = ..., online_authorization: _Optional[bool] = ..., session_authorized: _Optional[bool] = ...) -> None: ...
