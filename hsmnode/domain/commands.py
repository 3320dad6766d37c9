"""Commands: one frozen dataclass per mutation, and their canonical, versioned encoding.

A command is what the proposing member puts into the Raft log. Its bytes are
sorted-key compact JSON (UTF-8) so that every member decodes exactly the same
command and the journal never depends on Python class layout or pickle:

    {"v": 1, "type": "audit.note", "actor": "...", "request_id": "...",
     "timestamp": 1763860000000, "body": {"text": "..."}}

`bytes` fields travel as standard base64 strings. A field renamed in code keeps the name it was
logged under (`stored_as`): the bytes of a command never change with a rename. Decoding is strict: an unknown
version, type, envelope key or body field, a missing field or a wrong type is a
`CommandDecodeError` naming the problem.

This module is the one place callers take commands from (`from hsmnode.domain import commands as c`,
`c.KeyCreate`, `c.decode`); the rooms behind it:

    command_codec.py     the Command base, the registry of wire names, encode / decode, canonical_json
    cluster_commands.py  cluster.*, member.*, audit.*, debug.fail: the cluster's life and its audit log
    admin_commands.py    login.*, user.*, role.*, client.*, hsm.*, partition.*: administration
    key_commands.py      key.*, keyring.*, auth.*, grant.set: keys, keyrings, M-of-N, grants

Importing this module registers every command: decode knows a wire name once its class is imported.
"""

from __future__ import annotations

from hsmnode.domain.admin_commands import (
    AuditorInit,
    ChangePassword,
    ClientAssign,
    ClientRegister,
    ClientRevoke,
    HsmInit,
    HsmPolicySet,
    Logout,
    PartitionActivate,
    PartitionCreate,
    PartitionDelete,
    PartitionInit,
    PartitionPolicySet,
    PartitionRoleInit,
    RecordLogin,
    RoleAdd,
    RoleDelete,
    UserAdd,
    UserDelete,
    UserSetEnabled,
    UserSetPassword,
)
from hsmnode.domain.cluster_commands import (
    AuditConfigSet,
    AuditEvent,
    AuditNote,
    ClusterBackup,
    ClusterRestore,
    DebugFail,
    InitCluster,
    KeyAuditEvent,
    MemberAdd,
    MemberRemove,
)
from hsmnode.domain.command_codec import (
    ENCODING_VERSION,
    MAX_COMMAND_BYTES,
    Command,
    CommandT,
    Converter,
    canonical_json,
    command,
    command_types,
    decode,
    encode,
    encode_fields,
    logged_name,
    stored_as,
    validate_request_id,
)
from hsmnode.domain.key_commands import (
    AuthChange,
    AuthSessionRevoke,
    AuthSetPermissions,
    GrantSet,
    KeyBlock,
    KeyCreate,
    KeyDestroy,
    KeyRestore,
    KeyringAssign,
    KeyringCreate,
    KeyringDelete,
    KeyringSetKrco,
    KeyringUnlock,
)

__all__ = [
    # the codec (command_codec.py)
    "ENCODING_VERSION",
    "MAX_COMMAND_BYTES",
    "Command",
    "CommandT",
    "Converter",
    "canonical_json",
    "command",
    "command_types",
    "decode",
    "encode",
    "encode_fields",
    "logged_name",
    "stored_as",
    "validate_request_id",
    # the cluster and its audit log (cluster_commands.py)
    "InitCluster",
    "DebugFail",
    "AuditNote",
    "AuditEvent",
    "AuditConfigSet",
    "KeyAuditEvent",
    "MemberAdd",
    "MemberRemove",
    "ClusterBackup",
    "ClusterRestore",
    # administration (admin_commands.py)
    "RecordLogin",
    "ChangePassword",
    "Logout",
    "UserAdd",
    "UserDelete",
    "UserSetEnabled",
    "UserSetPassword",
    "RoleAdd",
    "RoleDelete",
    "ClientRegister",
    "ClientAssign",
    "ClientRevoke",
    "HsmInit",
    "AuditorInit",
    "HsmPolicySet",
    "PartitionCreate",
    "PartitionDelete",
    "PartitionInit",
    "PartitionRoleInit",
    "PartitionPolicySet",
    "PartitionActivate",
    # keys, keyrings, M-of-N, grants (key_commands.py)
    "KeyCreate",
    "KeyRestore",
    "KeyDestroy",
    "KeyringCreate",
    "KeyringDelete",
    "KeyringAssign",
    "KeyringUnlock",
    "KeyringSetKrco",
    "AuthChange",
    "AuthSetPermissions",
    "AuthSessionRevoke",
    "KeyBlock",
    "GrantSet",
]
