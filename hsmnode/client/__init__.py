"""hsmnode.client: the SDK. Imports only hsmnode.pb and grpc.

from hsmnode.client import HsmClient
with HsmClient.from_profile("hsmnode-dev/profile.json") as hsm:
    print(hsm.cluster_status().to_json())
"""

from hsmnode.client._client import (
    AuditRecord,
    ChainCheck,
    ClusterStatus,
    HsmClient,
    MemberStatus,
    NodeStatus,
    new_request_id,
)
from hsmnode.client._errors import (
    AlreadyExists,
    FailedPrecondition,
    HsmError,
    Internal,
    InvalidArgument,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from hsmnode.client._profile import (
    PROFILE_ENV,
    Profile,
    ProfileError,
    Tls,
    default_profile_path,
    load_profile,
)

__all__ = [
    "PROFILE_ENV",
    "AlreadyExists",
    "AuditRecord",
    "ChainCheck",
    "ClusterStatus",
    "FailedPrecondition",
    "HsmClient",
    "HsmError",
    "Internal",
    "InvalidArgument",
    "MemberStatus",
    "NodeStatus",
    "NotFound",
    "OutcomeUnknown",
    "PermissionDenied",
    "Profile",
    "ProfileError",
    "ResourceExhausted",
    "Tls",
    "Unauthenticated",
    "Unavailable",
    "default_profile_path",
    "load_profile",
    "new_request_id",
]
