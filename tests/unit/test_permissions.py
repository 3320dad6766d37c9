"""The permission tables drawn in domain/permissions.py's docstring are exactly what the code enforces:
every role × every operation is checked against the drawing."""

from __future__ import annotations

import re

import pytest

from hsmnode.domain import permissions as perm

DOC = perm.__doc__ or ""


def drawn_table(header: str) -> dict[str, dict[str, bool]]:
    """Parse the comment table whose header line contains `header`: op -> {role: allowed}."""
    lines = DOC.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("operation") and header in line)
    roles = lines[start].split()[1:]
    table: dict[str, dict[str, bool]] = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        if not cells or not re.fullmatch(r"[a-z.]+", cells[0]) or len(cells) < 1 + len(roles):
            break
        table[cells[0]] = {
            role: mark == "x" for role, mark in zip(roles, cells[1 : 1 + len(roles)], strict=True)
        }
    return table


APPLIANCE = drawn_table("admin operator monitor audit")
HSM = drawn_table("SO   AU   admin operator monitor audit")
PARTITION = drawn_table("PO   CO   CU")
KEYRING = drawn_table("KRSO KRCO")
GRANT = drawn_table("create remove read update_log")


def test_drawn_tables_cover_every_operation_in_code() -> None:
    assert set(APPLIANCE) == set(perm.APPLIANCE)
    assert set(HSM) == set(perm.HSM)
    assert set(PARTITION) == set(perm.PARTITION)
    assert set(KEYRING) == set(perm.KEYRING)
    assert set(GRANT) == set(perm.GRANT)


@pytest.mark.parametrize("operation", sorted(perm.APPLIANCE))
@pytest.mark.parametrize("role", perm.APPLIANCE_ROLES)
def test_appliance_role_may_exactly_what_the_table_shows(role: str, operation: str) -> None:
    assert perm.appliance_allows(role, None, operation) is APPLIANCE[operation][role]


@pytest.mark.parametrize("operation", sorted(perm.HSM))
@pytest.mark.parametrize("hsm_role", ["SO", "AU"])
def test_hsm_role_performs_exactly_what_the_table_shows(hsm_role: str, operation: str) -> None:
    assert perm.hsm_allows(hsm_role, operation) is HSM[operation][hsm_role]


@pytest.mark.parametrize("operation", sorted(perm.HSM))
@pytest.mark.parametrize("role", perm.APPLIANCE_ROLES)
def test_hsm_operations_need_the_named_appliance_role(role: str, operation: str) -> None:
    # SO operations: admin, and operator for the basic subset (DOMAIN.md §1); Auditor: the audit user.
    assert perm.appliance_allows(role, None, operation) is HSM[operation][role]


def test_operator_with_the_so_credential_does_only_basic_hsm_administration() -> None:
    """DOMAIN.md §1: operator + SO creates and deletes partitions, nothing else at the HSM level."""
    basic = {op for op in perm.HSM if perm.appliance_allows("operator", None, op)}
    assert basic == {"partition.create", "partition.delete"}


@pytest.mark.parametrize("operation", sorted(perm.PARTITION))
@pytest.mark.parametrize("role", ["PO", "CO", "CU"])
def test_partition_role_may_exactly_what_the_table_shows(role: str, operation: str) -> None:
    assert perm.partition_allows(role, operation) is PARTITION[operation][role]


@pytest.mark.parametrize("operation", sorted(perm.PARTITION))
@pytest.mark.parametrize("role", [*perm.APPLIANCE_ROLES, "SO", "AU"])
def test_hsm_and_appliance_roles_perform_no_partition_operations(role: str, operation: str) -> None:
    """DOMAIN §1: HSM-level roles never perform cryptographic operations on partitions."""
    assert not perm.appliance_allows(role, None, operation)
    assert not perm.hsm_allows(role, operation)


def test_monitor_is_read_only() -> None:
    """DOMAIN §1: monitor reads status and lists, changes nothing."""
    allowed = {op for op in perm.APPLIANCE if perm.appliance_allows("monitor", None, op)}
    assert allowed and all(op.endswith((".list", ".show")) for op in allowed)


def test_custom_role_allows_exactly_its_list() -> None:
    commands = frozenset({"user.list", "partition.create"})
    every = set(perm.APPLIANCE) | set(perm.HSM)
    assert {op for op in every if perm.appliance_allows("helpdesk", commands, op)} == commands


def test_custom_roles_may_list_only_what_admin_may_do() -> None:
    """DOMAIN §1: custom roles are a subset of what admin may do."""
    assert all(perm.appliance_allows("admin", None, op) for op in perm.CUSTOM_ROLE_COMMANDS)
    assert "auditor.init" not in perm.CUSTOM_ROLE_COMMANDS and "audit.list" not in perm.CUSTOM_ROLE_COMMANDS


@pytest.mark.parametrize("operation", sorted(perm.KEYRING))
@pytest.mark.parametrize("role", ["KRSO", "KRCO"])
def test_keyring_role_may_exactly_what_the_table_shows(role: str, operation: str) -> None:
    assert perm.keyring_allows(role, operation) is KEYRING[operation][role]


def test_krso_may_do_everything_the_krco_does() -> None:
    """DOMAIN §1 keyring level: KRSO/KRCO separation is not enforced."""
    assert all(perm.keyring_allows("KRSO", op) for op in perm.KEYRING if perm.keyring_allows("KRCO", op))


@pytest.mark.parametrize("role", ["PO", "CO", "CU", *perm.APPLIANCE_ROLES, "SO", "AU"])
def test_no_other_role_holds_a_keyring_permission(role: str) -> None:
    """DOMAIN §1 keyring level: the cluster SO (a PO) and every other role hold no keyring role."""
    assert not any(perm.keyring_allows(role, op) for op in perm.KEYRING)


@pytest.mark.parametrize("operation", sorted(perm.GRANT))
def test_operation_on_another_partition_needs_exactly_the_drawn_grant(operation: str) -> None:
    drawn = [grant for grant, needed in GRANT[operation].items() if needed]
    assert drawn == [perm.GRANT[operation]]
    assert perm.GRANT[operation] in perm.GRANT_PERMISSIONS


def test_grant_table_columns_are_the_grantable_permissions() -> None:
    assert tuple(next(iter(GRANT.values()))) == perm.GRANT_PERMISSIONS
