"""`hsmnode partition ...`: the SO creates and deletes partitions (appliance session); over NTLS the
PO initializes them and its sessions set roles, policies, backups."""

from __future__ import annotations

import os
from pathlib import Path

import click

from hsmnode.cli._command import (
    ApplianceCall,
    ClientCall,
    ContainerCall,
    appliance_command,
    client_command,
    container_command,
    list_command,
    show_command,
)
from hsmnode.cli._options import OUT_FILE_NO_DASH, password_option
from hsmnode.cli._output import Column


@click.group()
def partition() -> None:
    """Partitions: the SO creates and deletes them; over NTLS the PO initializes them."""


@appliance_command(partition, "create", json=False)
@click.argument("name")
@click.option(
    "--cluster",
    "cluster",
    is_flag=True,
    help="The cluster partition: its PO is the cluster security officer.",
)
@click.option(
    "--requires-authorization", is_flag=True, help="M-of-N: keys usable only when authorized by cards."
)
def partition_create(call: ApplianceCall, name: str, cluster: bool, requires_authorization: bool) -> None:
    """SO: create a partition."""
    call.session.create_partition(name, cluster=cluster, requires_authorization=requires_authorization)
    click.echo(
        f"partition {name} created; assign it to a client, which initializes it (hsmnode partition init)"
    )


@appliance_command(partition, "delete", json=False)
@click.argument("name")
def partition_delete(call: ApplianceCall, name: str) -> None:
    """SO: delete a partition and everything in it."""
    call.session.delete_partition(name)
    click.echo(f"partition {name} deleted")


PARTITION_COLUMNS = [
    Column("PARTITION", "name", 20),
    Column("LABEL", "label", 24),
    Column("INIT", "initialized", 6),
    Column("ACTIVATED", "activated", 9),
    Column("ROLES", lambda p: ",".join(r.role for r in p.roles)),
]


partition_list = list_command(
    appliance_command(partition, "list"),
    "Every partition (appliance view).",
    lambda c: c.session.list_partitions(),
    PARTITION_COLUMNS,
)
partition_show = show_command(
    appliance_command(partition, "show"),
    "One partition: roles, policies, activation.",
    "name",
    lambda c, name: c.session.show_partition(name),
)


@client_command(partition, "init", identity="client", json=False)
@click.argument("name")
@click.option("--label", required=True)
@click.option("--cloning-domain", required=True)
@password_option("--po-password", what="PO password")
def partition_init(call: ClientCall, name: str, label: str, cloning_domain: str, po_password: str) -> None:
    """NTLS client: initialize an assigned partition and set its PO password."""
    call.client.init_partition(name, label=label, cloning_domain=cloning_domain, po_password=po_password)
    click.echo(f"partition {name} initialized")


@container_command(partition, "role-init", on="name", json=False)
@click.argument("name")
@click.option("--role", type=click.Choice(["co", "cu"], case_sensitive=False), required=True)
@password_option(what="Initial password", env="HSMNODE_INITIAL_PASSWORD")
def partition_role_init(call: ContainerCall, name: str, role: str, password: str) -> None:
    """PO session: initialize/reset the CO. CO session: initialize/reset the CU."""
    call.session.init_role(role.upper(), password)
    click.echo(
        f"{role.upper()} of {name} initialized; unless the partition policy must_change_initial_password "
        f"is 0, it sets a new password before its first session (hsmnode session passwd {name} --role {role.lower()})"
    )


@container_command(partition, "policy", on="name", json=False)
@click.argument("name")
@click.argument("policy")
@click.argument("value", type=int)
def partition_policy(call: ContainerCall, name: str, policy: str, value: int) -> None:
    """PO session: set a partition policy (max_failed_logins, must_change_initial_password,
    activation_required, auto_activation, private_key_cloning, private_key_wrapping,
    online_authorization); VALUE is a number, 0 or 1 for the on/off ones."""
    call.session.set_policy(policy, value)
    click.echo(f"partition {name}: {policy} = {value}")


@client_command(partition, "activate", identity="client", json=False)
@click.argument("name")
@password_option("--co-password", what="CO password")
@click.option("--deactivate", is_flag=True, help="Deactivate instead.")
def partition_activate(call: ClientCall, name: str, co_password: str, deactivate: bool) -> None:
    """NTLS client, with the CO password: activate (or deactivate) a partition."""
    call.client.activate_partition(name, co_password, active=not deactivate)
    click.echo(f"partition {name} {'deactivated' if deactivate else 'activated'}")


@container_command(partition, "backup", on="name")
@click.argument("name")
@click.option("--out", "out", required=True, type=OUT_FILE_NO_DASH, help="Where to write the backup.")
def partition_backup(call: ContainerCall, name: str, out: str) -> None:
    """CO session: back up every object of partition NAME (CU session: its public objects) into a file
    encrypted for this cluster; it restores only into a partition of the same cloning domain."""
    data = call.session.backup()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    call.emit(
        {"partition": name, "file": out, "bytes": len(data)},
        lambda: click.echo(f"backup of partition {name} written to {out} ({len(data)} bytes)"),
    )


@container_command(partition, "restore", on="name")
@click.argument("name")
@click.option(
    "--in", "source", required=True, type=click.Path(exists=True, dir_okay=False), help="A backup file."
)
def partition_restore(call: ContainerCall, name: str, source: str) -> None:
    """CO session (CU: a backup of public objects): restore a backup into partition NAME: every object,
    or none. The partition must be in the backup's cloning domain."""
    keys = call.session.restore(Path(source).read_bytes())
    call.emit(
        {"partition": name, "restored": [{"id": k.id, "label": k.label} for k in keys]},
        lambda: click.echo(f"restored {len(keys)} object(s) into {name}: {', '.join(k.label for k in keys)}"),
    )
