"""`hsmnode keyring ...`: the cluster SO (a PO session on the cluster partition, --as-so) manages
keyrings; a KRSO session on a keyring sets its KRCO."""

from __future__ import annotations

import click

from hsmnode.cli._command import ContainerCall, container_command, list_command, show_command
from hsmnode.cli._options import password_option
from hsmnode.cli._output import Column


@click.group()
def keyring() -> None:
    """Keyrings: the cluster SO (a PO session on the cluster partition) manages them."""


def so_option() -> click.Option:
    """--as-so PARTITION: the cached cluster-SO session the command acts in."""
    return click.Option(
        ["--as-so", "so"],
        default="cluster",
        show_default=True,
        metavar="PARTITION",
        help="The cached PO session on the cluster partition (hsmnode session open cluster --role po --client cluster-so).",
    )


KEYRING_COLUMNS = [
    Column("LABEL", "label", 20),
    Column("ID", "id", sep="  "),
    Column("KRSO", lambda r: f"krso={'set' if r.krso_initialized else 'initial'}"),
    Column("KRCO", lambda r: f"krco={'set' if r.krco_set else '-'}"),
    Column("LOCKED", lambda r: f"locked={r.locked}"),
    Column("OBJECTS", lambda r: f"objects={r.objects}"),
    Column("CLIENTS", lambda r: f"clients={','.join(r.clients) or '-'}"),
]


@container_command(keyring, "create", on=so_option())
@click.argument("label")
@password_option("--krso-password", what="Initial KRSO password")
def keyring_create(call: ContainerCall, label: str, krso_password: str) -> None:
    """Create a keyring with an initial KRSO password (the KRSO must change it at first login)."""
    keyring_id = call.session.create_keyring(label, krso_password)
    call.emit(
        {"label": label, "id": keyring_id}, lambda: click.echo(f"keyring {label} created ({keyring_id})")
    )


keyring_list = list_command(
    container_command(keyring, "list", on=so_option()),
    "Every keyring: roles, lock, objects, clients.",
    lambda c: c.session.list_keyrings(),
    KEYRING_COLUMNS,
    header=False,
)
keyring_show = show_command(
    container_command(keyring, "show", on=so_option()),
    "One keyring.",
    "label",
    lambda c, label: c.session.show_keyring(label),
)


@container_command(keyring, "assign", on=so_option(), json=False)
@click.argument("label")
@click.argument("client_name")
def keyring_assign(call: ContainerCall, label: str, client_name: str) -> None:
    """Assign a keyring to a registered client."""
    call.session.assign_keyring(label, client_name)
    click.echo(f"keyring {label} assigned to {client_name}")


@container_command(keyring, "unassign", on=so_option(), json=False)
@click.argument("label")
@click.argument("client_name")
def keyring_unassign(call: ContainerCall, label: str, client_name: str) -> None:
    """Take a keyring away from a client (its sessions end)."""
    call.session.unassign_keyring(label, client_name)
    click.echo(f"keyring {label} unassigned from {client_name}")


@container_command(keyring, "unlock", on=so_option(), json=False)
@click.argument("label")
def keyring_unlock(call: ContainerCall, label: str) -> None:
    """Unlock a keyring locked by failed logins."""
    call.session.unlock_keyring(label)
    click.echo(f"keyring {label} unlocked")


@container_command(keyring, "delete", on=so_option(), json=False)
@click.argument("label")
def keyring_delete(call: ContainerCall, label: str) -> None:
    """Delete a keyring and every key in it."""
    call.session.delete_keyring(label)
    click.echo(f"keyring {label} deleted")


@container_command(keyring, "set-krco", on="label", json=False)
@click.argument("label")
@password_option("--krco-password", what="KRCO password")
def keyring_set_krco(call: ContainerCall, label: str, krco_password: str) -> None:
    """KRSO session on LABEL: set the KRCO password."""
    call.session.set_krco(krco_password)
    click.echo(f"KRCO of {label} set")
