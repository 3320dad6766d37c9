from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BackupRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class BackupHeader(_message.Message):
    __slots__ = ("cluster_id", "index", "taken_at_ms", "taken_by", "member_count", "key_count", "user_count", "partition_count", "keyring_count", "audit_length", "smk_check")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TAKEN_BY_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    USER_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARTITION_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEYRING_COUNT_FIELD_NUMBER: _ClassVar[int]
    AUDIT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SMK_CHECK_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    index: int
    taken_at_ms: int
    taken_by: str
    member_count: int
    key_count: int
    user_count: int
    partition_count: int
    keyring_count: int
    audit_length: int
    smk_check: str
    def __init__(self, cluster_id: _Optional[str] = ..., index: _Optional[int] = ..., taken_at_ms: _Optional[int] = ..., taken_by: _Optional[str] = ..., member_count: _Optional[int] = ..., key_count: _Optional[int] = ..., user_count: _Optional[int] = ..., partition_count: _Optional[int] = ..., keyring_count: _Optional[int] = ..., audit_length: _Optional[int] = ..., smk_check: _Optional[str] = ...) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("data", "total_bytes", "header")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_bytes: int
    header: BackupHeader
    def __init__(self, data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ..., header: _Optional[_Union[BackupHeader, _Mapping]] = ...) -> None: ...

class JoinBundleRequest(_message.Message):
    __slots__ = ("node_certificate",)
    NODE_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    node_certificate: str
    def __init__(self, node_certificate: _Optional[str] = ...) -> None: ...

class JoinBundleResponse(_message.Message):
    __slots__ = ("cluster_id", "members", "sealed")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    members: _containers.RepeatedCompositeFieldContainer[Member]
    sealed: bytes
    def __init__(self, cluster_id: _Optional[str] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., sealed: _Optional[bytes] = ...) -> None: ...

class AdoptClusterRequest(_message.Message):
    __slots__ = ("cluster_id", "members", "sealed", "request_id")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    members: _containers.RepeatedCompositeFieldContainer[Member]
    sealed: bytes
    request_id: str
    def __init__(self, cluster_id: _Optional[str] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., sealed: _Optional[bytes] = ..., request_id: _Optional[str] = ...) -> None: ...

class AdoptClusterResponse(_message.Message):
    __slots__ = ("archive",)
    ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    archive: str
    def __init__(self, archive: _Optional[str] = ...) -> None: ...

class AddMemberRequest(_message.Message):
    __slots__ = ("request_id", "id", "raft_address", "address")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    id: str
    raft_address: str
    address: str
    def __init__(self, request_id: _Optional[str] = ..., id: _Optional[str] = ..., raft_address: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class RemoveMemberRequest(_message.Message):
    __slots__ = ("request_id", "id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    id: str
    def __init__(self, request_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class MemberChangeResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, members: _Optional[_Iterable[str]] = ...) -> None: ...

class ClusterStatusRequest(_message.Message):
    __slots__ = ("without_digest",)
    WITHOUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    without_digest: bool
    def __init__(self, without_digest: _Optional[bool] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("id", "address", "role", "applied_index", "raft_address", "state_digest", "lag", "voter", "listed")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    LISTED_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    role: str
    applied_index: int
    raft_address: str
    state_digest: str
    lag: int
    voter: bool
    listed: bool
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., role: _Optional[str] = ..., applied_index: _Optional[int] = ..., raft_address: _Optional[str] = ..., state_digest: _Optional[str] = ..., lag: _Optional[int] = ..., voter: _Optional[bool] = ..., listed: _Optional[bool] = ...) -> None: ...

class ClusterStatusResponse(_message.Message):
    __slots__ = ("cluster_id", "leader", "term", "members", "removed_from")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FROM_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    leader: str
    term: int
    members: _containers.RepeatedCompositeFieldContainer[Member]
    removed_from: str
    def __init__(self, cluster_id: _Optional[str] = ..., leader: _Optional[str] = ..., term: _Optional[int] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., removed_from: _Optional[str] = ...) -> None: ...

class NodeStatusRequest(_message.Message):
    __slots__ = ("without_digest",)
    WITHOUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    without_digest: bool
    def __init__(self, without_digest: _Optional[bool] = ...) -> None: ...

class NodeStatusResponse(_message.Message):
    __slots__ = ("id", "cluster_id", "address", "raft_address", "role", "term", "leader", "commit_index", "applied_index", "state_digest", "has_quorum", "ready", "replicated_cluster_id", "node_certificate", "members", "removed_from", "raft_configuration", "directory", "incarnation")
    ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    HAS_QUORUM_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    REPLICATED_CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FROM_FIELD_NUMBER: _ClassVar[int]
    RAFT_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    cluster_id: str
    address: str
    raft_address: str
    role: str
    term: int
    leader: str
    commit_index: int
    applied_index: int
    state_digest: str
    has_quorum: bool
    ready: bool
    replicated_cluster_id: str
    node_certificate: str
    members: int
    removed_from: str
    raft_configuration: _containers.RepeatedScalarFieldContainer[str]
    directory: _containers.RepeatedScalarFieldContainer[str]
    incarnation: str
    def __init__(self, id: _Optional[str] = ..., cluster_id: _Optional[str] = ..., address: _Optional[str] = ..., raft_address: _Optional[str] = ..., role: _Optional[str] = ..., term: _Optional[int] = ..., leader: _Optional[str] = ..., commit_index: _Optional[int] = ..., applied_index: _Optional[int] = ..., state_digest: _Optional[str] = ..., has_quorum: _Optional[bool] = ..., ready: _Optional[bool] = ..., replicated_cluster_id: _Optional[str] = ..., node_certificate: _Optional[str] = ..., members: _Optional[int] = ..., removed_from: _Optional[str] = ..., raft_configuration: _Optional[_Iterable[str]] = ..., directory: _Optional[_Iterable[str]] = ..., incarnation: _Optional[str] = ...) -> None: ...
