"""The roles of the three levels (DOMAIN.md §1; seed 001) as StrEnums.

Their values are the strings the Raft log, snapshots, session tokens and the wire have
always carried, and a member compares equal (and hashes equal) to its string, so
replicated data keeps holding plain strings: code compares with the enum, stores `str`.
"""

from __future__ import annotations

import enum


class ApplianceRole(enum.StrEnum):
    """The built-in appliance roles (seed 001, Table 1); a custom role is a name of its own."""

    ADMIN = "admin"
    OPERATOR = "operator"
    MONITOR = "monitor"
    AUDIT = "audit"


class HsmRole(enum.StrEnum):
    """The HSM roles an appliance user takes on (seed 001, Table 2)."""

    SO = "SO"  # HSM Security Officer
    AU = "AU"  # Auditor


class PartitionRole(enum.StrEnum):
    """The roles of an application partition (seed 001, Table 3; Luna PO/CO/CU)."""

    PO = "PO"  # Partition Security Officer
    CO = "CO"  # Crypto Officer
    CU = "CU"  # Crypto User


class KeyringRole(enum.StrEnum):
    """The roles of a keyring (seed 001, "Keyring Roles")."""

    KRSO = "KRSO"  # Keyring Security Officer
    KRCO = "KRCO"  # Keyring Crypto Officer
