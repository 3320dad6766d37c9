"""Commands of administration: logins and credentials, appliance users, roles and clients, the
HSM and its partitions (creation, initialization, roles, policies, activation).

Wire names and encoding: commands.py (the envelope) and command_codec.py.
"""

from __future__ import annotations

import dataclasses

from hsmnode.domain.command_codec import Command, command

# --- logins and credentials ----------------------------------------------------
#
# A credential target names one login credential:
#   "user:<name>" | "hsm:SO" | "hsm:AU" | "partition:<name>:<PO|CO|CU>"
# The proposing member verifies the password against the hash in its replicated
# state and proposes the outcome with the credential epoch it verified against;
# apply refuses if the credential changed meanwhile, counts failures cluster-wide
# and locks at the threshold.


@command("login.record")
@dataclasses.dataclass(frozen=True, kw_only=True)
class RecordLogin(Command):
    target: str
    success: bool
    verified_epoch: int


@command("login.change_password")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ChangePassword(Command):
    """Self-service password change: the proposer verified the old password."""

    target: str
    password_hash: str
    verified_epoch: int


@command("login.logout")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Logout(Command):
    """End the actor's sessions: an appliance user's, an HSM role's, or one client's partition sessions."""

    target: str


# --- appliance users, roles, clients ---------------------------------------------


@command("user.add")
@dataclasses.dataclass(frozen=True, kw_only=True)
class UserAdd(Command):
    name: str
    role: str
    password_hash: str


@command("user.delete")
@dataclasses.dataclass(frozen=True, kw_only=True)
class UserDelete(Command):
    name: str


@command("user.set_enabled")
@dataclasses.dataclass(frozen=True, kw_only=True)
class UserSetEnabled(Command):
    name: str
    enabled: bool


@command("user.set_password")
@dataclasses.dataclass(frozen=True, kw_only=True)
class UserSetPassword(Command):
    """admin sets another user's password: it must be changed at next login; unlocks the user."""

    name: str
    password_hash: str


@command("role.add")
@dataclasses.dataclass(frozen=True, kw_only=True)
class RoleAdd(Command):
    name: str
    commands: tuple[str, ...]


@command("role.delete")
@dataclasses.dataclass(frozen=True, kw_only=True)
class RoleDelete(Command):
    name: str


@command("client.register")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientRegister(Command):
    name: str
    cert_pem: str
    fingerprint: str


@command("client.assign")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientAssign(Command):
    name: str
    partition: str


@command("client.revoke")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientRevoke(Command):
    """Revoke one partition assignment, or (partition "") the whole registration."""

    name: str
    partition: str


# --- the HSM and its partitions ---------------------------------------------------------


@command("hsm.init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class HsmInit(Command):
    """Initialize the HSM (creates the SO credential); on an initialized HSM it zeroizes it first."""

    label: str
    so_password_hash: str


@command("hsm.auditor_init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditorInit(Command):
    password_hash: str


@command("hsm.policy")
@dataclasses.dataclass(frozen=True, kw_only=True)
class HsmPolicySet(Command):
    name: str
    value: bool


@command("partition.create")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionCreate(Command):
    name: str
    # the cluster partition: its PO is the cluster security officer (keyrings)
    cluster: bool = False
    # M-of-N: the partition's keys are usable only when authorized by cards (DOMAIN.md §5)
    requires_authorization: bool = False


@command("partition.delete")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionDelete(Command):
    name: str


@command("partition.init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionInit(Command):
    """Initialize a created partition over NTLS: label, cloning domain, the PO credential."""

    name: str
    label: str
    cloning_domain: str
    po_password_hash: str


@command("partition.role_init")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionRoleInit(Command):
    """PO initializes or resets the CO; CO initializes or resets the CU (unlocks it)."""

    name: str
    role: str
    password_hash: str


@command("partition.policy")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionPolicySet(Command):
    name: str
    policy: str
    value: int


@command("partition.activate")
@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionActivate(Command):
    """The CO activates (or deactivates) a partition; the proposer verified the CO password."""

    name: str
    active: bool
    verified_epoch: int
