"""hsmnode.client: the SDK. Imports only hsmnode.pb, grpc and the standard library.

from hsmnode.client import HsmClient

with HsmClient.from_profile("hsmnode-dev/profile.json") as hsm:      # admin certificate
    with hsm.login("admin", password) as admin:                      # appliance session
        admin.add_user("bob", role="operator", password="Bob-pass-1")
        with admin.hsm_login(so_password) as so:                     # + HSM SO role
            so.create_partition("pay")

with HsmClient.from_profile(path, identity="client") as app:         # registered NTLS client
    name, slots = app.list_slots()                                   # only assigned partitions
    with app.open_session("pay", co_password, role="CO") as session:
        print(session.info())
"""

from hsmnode.client._appliance import ApplianceSession, HsmRoleSession
from hsmnode.client._client import HsmClient
from hsmnode.client._console import ConsoleClient
from hsmnode.client._errors import (
    AlreadyExists,
    BatchError,
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
from hsmnode.client._faults import FaultInjector
from hsmnode.client._hints import IndexTracker
from hsmnode.client._membership import remove_member
from hsmnode.client._outcome import new_request_id
from hsmnode.client._partition import PartitionSession
from hsmnode.client._profile import (
    PROFILE_ENV,
    Profile,
    ProfileError,
    Tls,
    default_profile_path,
    load_profile,
)
from hsmnode.client._types import (
    AuditNote,
    AuditPage,
    AuditRecord,
    AuthChallenge,
    AuthInfo,
    BackupInfo,
    ChainCheck,
    ClientInfo,
    ClusterStatus,
    Encrypted,
    Grant,
    HsmInfo,
    KeyInfo,
    KeyringInfo,
    MemberStatus,
    NodeStatus,
    PartitionInfo,
    PartitionRole,
    Role,
    SessionInfo,
    Slot,
    Slots,
    User,
)

__all__ = [
    "PROFILE_ENV",
    "AlreadyExists",
    "ApplianceSession",
    "AuditNote",
    "AuditPage",
    "AuditRecord",
    "AuthChallenge",
    "AuthInfo",
    "BackupInfo",
    "BatchError",
    "ChainCheck",
    "ClientInfo",
    "ClusterStatus",
    "ConsoleClient",
    "Encrypted",
    "FailedPrecondition",
    "FaultInjector",
    "Grant",
    "HsmClient",
    "HsmError",
    "HsmInfo",
    "HsmRoleSession",
    "IndexTracker",
    "KeyInfo",
    "KeyringInfo",
    "Internal",
    "InvalidArgument",
    "MemberStatus",
    "NodeStatus",
    "NotFound",
    "OutcomeUnknown",
    "PartitionInfo",
    "PartitionRole",
    "PartitionSession",
    "PermissionDenied",
    "Profile",
    "ProfileError",
    "ResourceExhausted",
    "Role",
    "SessionInfo",
    "Slot",
    "Slots",
    "Tls",
    "Unauthenticated",
    "Unavailable",
    "User",
    "default_profile_path",
    "load_profile",
    "new_request_id",
    "remove_member",
]
