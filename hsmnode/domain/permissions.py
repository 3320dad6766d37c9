"""Who may do what, level by level (DOMAIN.md §1). The tables first, then small pure checks.

Appliance level (seed 001, Table 1) — the appliance user's role; custom roles
are explicit allow-lists of these operations:

    operation         admin operator monitor audit
    status.show         x      x       x      x
    user.list           x      x       x      .
    user.show           x      x       x      .
    user.add            x      .       .      .
    user.delete         x      .       .      .
    user.enable         x      .       .      .
    user.disable        x      .       .      .
    user.passwd         x      .       .      .     (set/reset another user's password)
    role.list           x      x       x      .
    role.show           x      x       x      .
    role.add            x      .       .      .
    role.delete         x      .       .      .
    client.list         x      x       x      .
    client.show         x      x       x      .
    client.register     x      .       .      .
    client.assign       x      .       .      .
    client.revoke       x      .       .      .
    partition.list      x      x       x      .
    partition.show      x      x       x      .
    hsm.show            x      x       x      x
    hsm.init            x      .       .      .     (creates the SO credential)
    hsm.login           x      x       .      .     (take on the HSM SO role)
    auditor.init        .      .       .      x     (creates the Auditor credential)
    auditor.login       .      .       .      x     (take on the Auditor role)
    audit.note          x      x       .      .
    cluster.member      x      .       .      .     (add or remove a cluster member)
    cluster.backup      x      .       .      .     (take an encrypted backup of the replicated state)

Every user may change its own password (`my password set`): no permission needed.

HSM level (seed 001, Table 2) — needs the HSM role AND an appliance role that
may hold it for the operation. admin, with the SO credential, does all HSM
administration; operator, with the SO credential, does the "basic" subset
(seed 001): show the HSM (an appliance operation above), create and delete
partitions — not HSM initialization, HSM policies or client registration
(our choice, DOMAIN.md §1). The Auditor is held by the audit user:

    operation          SO   AU   admin operator monitor audit
    partition.create    x    .     x      x       .      .
    partition.delete    x    .     x      x       .      .
    hsm.policy          x    .     x      .       .      .
    hsm.reinit          x    .     x      .       .      .     (hsm init on an initialized HSM: zeroizes it)
    audit.list          .    x     .      .       .      x
    audit.verify        .    x     .      .       .      x
    audit.config        .    x     .      .       .      x     (the recorded audit categories, DOMAIN.md §6)

HSM roles perform no cryptographic operations on partitions.

Partition level (seed 001, Table 3; seed 000):

    operation              PO   CO   CU
    partition.policy        x    .    .
    partition.role.co       x    .    .   (initialize / reset the CO; reset needs HSM policy po_can_reset_co)
    partition.role.cu       .    x    .   (initialize / reset the CU)
    partition.activate      .    x    .
    object.list             .    x    x
    object.create           .    x    .   (private and secret objects)
    object.create.public    .    x    x
    object.modify           .    x    .
    object.destroy          .    x    .
    crypto.use              .    x    x
    backup                  .    x    .
    backup.public           .    x    x
    keyring.manage          x    .    .   (only the PO of the cluster partition: the cluster SO)
    partition.authorize     .    x    .   (M-of-N state and permissions, with cards and password)
    partition.grant         .    x    .   (the owner grants other partitions' users; DOMAIN.md §4)

Keyring level (seed 001, "Keyring Roles") — separation between KRSO and KRCO is
not enforced, so the KRSO may do everything the KRCO does; separation between
the keyring roles and the cluster SO is (keyring sessions are the only way to
keyring objects, and a client holding the cluster partition holds no keyring):

    operation              KRSO KRCO
    keyring.role.krco       x    .   (set the KRCO credential)
    object.list             x    x
    object.create           x    x
    object.create.public    x    x
    object.modify           x    x
    object.destroy          x    x
    crypto.use              x    x
    backup                  x    x
    backup.public           x    x

Grants between partitions (DOMAIN.md §4; seed 004) — a session on one partition acts on
the objects of another partition only with the permission its owner granted it (not
transitive, not symmetric; the owner always holds all four). The operation, on the
owner's partition, and the permission it needs; any other operation is refused:

    operation              create remove read update_log
    object.list              .      .     x      .
    crypto.use               .      .     x      .        (use the owner's keys)
    object.create            x      .     .      .
    object.create.public     x      .     .      .
    object.destroy           .      x     .      .
    object.modify            .      .     .      x        (update the log attributes)
"""

from __future__ import annotations

import enum

from hsmnode.domain.roles import ApplianceRole, HsmRole, KeyringRole, PartitionRole


class Level(enum.StrEnum):
    APPLIANCE = "appliance"
    HSM = "hsm"
    CONTAINER = "container"  # partition and keyring sessions


# plain strings: these names are stored in replicated state and leave the domain
APPLIANCE_ROLES = tuple(str(role) for role in ApplianceRole)
# the accounts a new cluster starts with: one per built-in role, named after it (seed 001)
DEFAULT_ACCOUNTS = APPLIANCE_ROLES

_A, _O, _M, _U = ApplianceRole.ADMIN, ApplianceRole.OPERATOR, ApplianceRole.MONITOR, ApplianceRole.AUDIT
_SO, _AU = HsmRole.SO, HsmRole.AU
_PO, _CO, _CU = PartitionRole.PO, PartitionRole.CO, PartitionRole.CU
_KRSO, _KRCO = KeyringRole.KRSO, KeyringRole.KRCO

APPLIANCE: dict[str, frozenset[str]] = {
    "status.show": frozenset({_A, _O, _M, _U}),
    "user.list": frozenset({_A, _O, _M}),
    "user.show": frozenset({_A, _O, _M}),
    "user.add": frozenset({_A}),
    "user.delete": frozenset({_A}),
    "user.enable": frozenset({_A}),
    "user.disable": frozenset({_A}),
    "user.passwd": frozenset({_A}),
    "role.list": frozenset({_A, _O, _M}),
    "role.show": frozenset({_A, _O, _M}),
    "role.add": frozenset({_A}),
    "role.delete": frozenset({_A}),
    "client.list": frozenset({_A, _O, _M}),
    "client.show": frozenset({_A, _O, _M}),
    "client.register": frozenset({_A}),
    "client.assign": frozenset({_A}),
    "client.revoke": frozenset({_A}),
    "partition.list": frozenset({_A, _O, _M}),
    "partition.show": frozenset({_A, _O, _M}),
    "hsm.show": frozenset({_A, _O, _M, _U}),
    "hsm.init": frozenset({_A}),
    "hsm.login": frozenset({_A, _O}),
    "auditor.init": frozenset({_U}),
    "auditor.login": frozenset({_U}),
    "audit.note": frozenset({_A, _O}),
    "cluster.member": frozenset({_A}),
    "cluster.backup": frozenset({_A}),
}

# HSM operations: the HSM role that performs them, and the appliance roles that may hold it for them.
HSM: dict[str, tuple[str, frozenset[str]]] = {
    "partition.create": (_SO, frozenset({_A, _O})),
    "partition.delete": (_SO, frozenset({_A, _O})),
    "hsm.policy": (_SO, frozenset({_A})),
    "hsm.reinit": (_SO, frozenset({_A})),
    "audit.list": (_AU, frozenset({_U})),
    "audit.verify": (_AU, frozenset({_U})),
    "audit.config": (_AU, frozenset({_U})),
}

PARTITION: dict[str, frozenset[str]] = {
    "partition.policy": frozenset({_PO}),
    "partition.role.co": frozenset({_PO}),
    "partition.role.cu": frozenset({_CO}),
    "partition.activate": frozenset({_CO}),
    "object.list": frozenset({_CO, _CU}),
    "object.create": frozenset({_CO}),
    "object.create.public": frozenset({_CO, _CU}),
    "object.modify": frozenset({_CO}),
    "object.destroy": frozenset({_CO}),
    "crypto.use": frozenset({_CO, _CU}),
    "backup": frozenset({_CO}),
    "backup.public": frozenset({_CO, _CU}),
    "keyring.manage": frozenset({_PO}),
    "partition.authorize": frozenset({_CO}),
    "partition.grant": frozenset({_CO}),
}

KEYRING: dict[str, frozenset[str]] = {
    "keyring.role.krco": frozenset({_KRSO}),
    "object.list": frozenset({_KRSO, _KRCO}),
    "object.create": frozenset({_KRSO, _KRCO}),
    "object.create.public": frozenset({_KRSO, _KRCO}),
    "object.modify": frozenset({_KRSO, _KRCO}),
    "object.destroy": frozenset({_KRSO, _KRCO}),
    "crypto.use": frozenset({_KRSO, _KRCO}),
    "backup": frozenset({_KRSO, _KRCO}),
    "backup.public": frozenset({_KRSO, _KRCO}),
}

GRANT_PERMISSIONS = ("create", "remove", "read", "update_log")

# operation on another partition -> the grant it needs from that partition's owner
GRANT: dict[str, str] = {
    "object.list": "read",
    "crypto.use": "read",
    "object.create": "create",
    "object.create.public": "create",
    "object.destroy": "remove",
    "object.modify": "update_log",
}

# What a custom role may list: the commands admin may run on the appliance, plus the
# HSM operations admin may perform with the SO credential.
CUSTOM_ROLE_COMMANDS = frozenset(op for op, roles in APPLIANCE.items() if _A in roles) | frozenset(
    op for op, (_, holders) in HSM.items() if _A in holders
)


def level_of(operation: str) -> Level:
    if operation in APPLIANCE:
        return Level.APPLIANCE
    if operation in HSM:
        return Level.HSM
    if operation in PARTITION or operation in KEYRING:
        return Level.CONTAINER
    raise KeyError(operation)


def appliance_allows(role: str, custom_commands: frozenset[str] | None, operation: str) -> bool:
    """May an appliance user with `role` run `operation`? `custom_commands` is the allow-list of a custom role."""
    if role in APPLIANCE_ROLES:
        if operation in APPLIANCE:
            return role in APPLIANCE[operation]
        if operation in HSM:
            return role in HSM[operation][1]
        return False
    return custom_commands is not None and operation in custom_commands


# Operations that only read what the appliance shows to every built-in role but audit: giving them
# away is not an escalation (a user administrator may create monitor users).
READ_ONLY = frozenset(op for op in APPLIANCE if op.endswith((".list", ".show")))


def role_grants(role: str, custom_commands: frozenset[str] | None) -> frozenset[str]:
    """The appliance and HSM operations beyond READ_ONLY that a holder of `role` may run: what one
    user may give another, or must hold to manage another (APPLIANCE and HSM tables above;
    `custom_commands` is the allow-list of a custom role, None for a built-in role)."""
    return frozenset(
        op for op in (*APPLIANCE, *HSM) if op not in READ_ONLY and appliance_allows(role, custom_commands, op)
    )


def hsm_allows(hsm_role: str, operation: str) -> bool:
    """Does the HSM role perform `operation`?"""
    return operation in HSM and HSM[operation][0] == hsm_role


def partition_allows(partition_role: str, operation: str) -> bool:
    return partition_role in PARTITION.get(operation, frozenset())


def keyring_allows(keyring_role: str, operation: str) -> bool:
    return keyring_role in KEYRING.get(operation, frozenset())
