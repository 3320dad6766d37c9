"""`hsmnode cluster ...`: the cluster as a whole: status, membership (add, remove, join, leave),
backup and restore."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from hsmnode.cli._cache import appliance_token, load_profile_for
from hsmnode.cli._command import ApplianceCall, ClientCall, appliance_command, client_command, reports_errors
from hsmnode.cli._options import (
    OUT_FILE_NO_DASH,
    check_endpoint,
    json_option,
    password_option,
    profile_options,
)
from hsmnode.cli._output import Column, emit, fail, table
from hsmnode.client import remove_member as sdk_remove_member
from hsmnode.ops.devcluster import DEFAULT_BASE_PORT

# a membership change waits for Raft to commit it (and the leaving member to see it): give it time
MEMBERSHIP_TIMEOUT = 30.0


@click.group()
def cluster() -> None:
    """Cluster membership and Raft state, backup and restore."""


MEMBER_COLUMNS = [
    Column("MEMBER", "id", 10),
    Column("ADDRESS", "address", 22),
    Column("ROLE", "role", 12),
    Column("APPLIED", "applied_index", 8, right=True),
    Column("LAG", "lag", 5, right=True),
]


@client_command(cluster, "status")
def status(call: ClientCall) -> None:
    """Cluster id, leader, term, and each member's role and applied index."""
    st = call.client.cluster_status()

    def human() -> None:
        click.echo(f"cluster {st.cluster_id}   leader {st.leader or '(none)'}   term {st.term}")
        if st.removed_from:
            click.echo(
                f"this member was removed from cluster {st.removed_from}: its view below is stale; "
                "ask another member (--endpoint)"
            )
        table(st.members, MEMBER_COLUMNS)

    call.emit(st.to_dict(), human)


@appliance_command(cluster, "add-member", timeout=MEMBERSHIP_TIMEOUT)
@click.argument("member_id")
@click.option(
    "--raft",
    "raft",
    required=True,
    callback=check_endpoint,
    metavar="HOST:PORT",
    help="The new member's Raft address.",
)
@click.option(
    "--address",
    "address",
    required=True,
    callback=check_endpoint,
    metavar="HOST:PORT",
    help="The new member's gRPC address.",
)
def add_member(call: ApplianceCall, member_id: str, raft: str, address: str) -> None:
    """admin: add a member. Start it first with every current member as a [[peers]] entry and the
    cluster's cluster_id, CA, Raft secret and SMK; then run this."""
    members = call.session.add_member(member_id, raft_address=raft, address=address)
    call.emit(
        {"members": members},
        lambda: click.echo(f"member {member_id} added; members: {', '.join(members)}"),
    )


@cluster.command("remove-member")
@click.argument("member_id")
@profile_options
@json_option
@reports_errors
def remove_member(member_id: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """admin: remove a member, live or dead, through any member (a leader hands leadership over
    first); also completes a removal that a leader change left half done."""
    _remove(member_id, profile, endpoints, as_json)


@cluster.command("remove")
@click.option("--member", "member_id", required=True, metavar="ID", help="The member to remove.")
@profile_options
@json_option
@reports_errors
def remove(member_id: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """admin: remove a member, a dead one too (the same as `remove-member ID`)."""
    _remove(member_id, profile, endpoints, as_json)


def _remove(member_id: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Through the SDK's remove_member, as `leave`: any member, through any of the profile's members."""
    loaded = load_profile_for(profile)
    members = sdk_remove_member(
        list(endpoints) or list(loaded.endpoints),
        loaded.tls,
        member_id,
        appliance_token(profile),
        MEMBERSHIP_TIMEOUT,
        cluster_id="" if endpoints else loaded.cluster_id,
    )
    emit(
        as_json,
        {"members": members},
        lambda: click.echo(f"member {member_id} removed; members: {', '.join(members)}"),
    )


@cluster.command("join")
@click.option(
    "--node",
    "node",
    required=True,
    callback=check_endpoint,
    metavar="HOST:PORT",
    help="The joining node's gRPC endpoint.",
)
@click.option(
    "--cluster",
    "cluster_endpoint",
    required=True,
    callback=check_endpoint,
    metavar="HOST:PORT",
    help="A member of the cluster to join.",
)
@password_option(
    "--node-password",
    what="The joining node's admin password (a standalone node; a removed member needs none)",
    required=False,
)
@password_option("--cluster-password", what="The cluster's admin password")
@click.option(
    "--admin", "admin_user", default="admin", show_default=True, help="The admin user on both sides."
)
@click.option(
    "--force",
    is_flag=True,
    help="Join even though the node's keys will be discarded (they stay in its archive).",
)
@click.option("--dry-run", is_flag=True, help="Print what the join would overwrite; change nothing.")
@click.option("--profile", envvar="HSMNODE_PROFILE", type=click.Path(dir_okay=False), default=None)
@json_option
@reports_errors
def join_command(
    node: str,
    cluster_endpoint: str,
    node_password: str,
    cluster_password: str,
    admin_user: str,
    force: bool,
    dry_run: bool,
    profile: str | None,
    as_json: bool,
) -> None:
    """Join NODE to the cluster: the cluster overwrites its users, roles, partitions, keyrings and keys.

    The node's earlier data is archived in its data dir, and the report of what was
    overwritten is printed and written to the cluster's audit log. The node's
    certificate must come from the cluster's CA (the profile's CA and admin
    certificate are used for both sides). A member removed from the cluster joins it
    again the same way, without --node-password.
    """
    from hsmnode.ops.joining import join

    loaded = load_profile_for(profile)
    report = join(
        node,
        cluster_endpoint,
        loaded.tls,
        node_admin=(admin_user, node_password) if node_password else None,
        cluster_admin=(admin_user, cluster_password),
        force=force,
        dry_run=dry_run,
    )

    def human() -> None:
        click.echo(("would overwrite" if dry_run else "overwrote") + ":")
        click.echo(f"  users:      {', '.join(report.users) or '-'}")
        click.echo(f"  roles:      {', '.join(report.roles) or '-'}")
        if report.rejoin:
            click.echo(f"  nothing of its own: {report.node} was a member of {report.cluster_id} (rejoin)")
        else:
            parts = ", ".join(f"{n} ({k} key(s))" for n, k in report.partition_keys.items())
            rings = ", ".join(f"{n} ({k} key(s))" for n, k in report.keyrings.items())
            click.echo(f"  partitions: {parts or '-'}")
            click.echo(f"  keyrings:   {rings or '-'}")
            click.echo(f"  keys:       {report.keys}")
        if report.joined:
            click.echo(
                f"{report.node} joined cluster {report.cluster_id}; its earlier data is in {report.archive}"
            )

    emit(as_json, report.to_json(), human)


@cluster.command("leave")
@click.argument("member_id")
@password_option(what="The admin password")
@click.option("--admin", "admin_user", default="admin", show_default=True)
@click.option("--profile", envvar="HSMNODE_PROFILE", type=click.Path(dir_okay=False), default=None)
@json_option
@reports_errors
def leave(member_id: str, password: str, admin_user: str, profile: str | None, as_json: bool) -> None:
    """MEMBER_ID leaves cleanly: a leader hands leadership over first, then the others remove it.
    Stop its process afterwards; restarted, it serves no clients."""
    loaded = load_profile_for(profile)
    remaining_members = sdk_remove_member(
        list(loaded.endpoints), loaded.tls, member_id, (admin_user, password), MEMBERSHIP_TIMEOUT
    )
    emit(
        as_json,
        {"left": member_id, "members": remaining_members},
        lambda: click.echo(f"member {member_id} left; members: {', '.join(remaining_members)}"),
    )


BACKUP_TIMEOUT = 300.0


def _step(text: str) -> None:
    """A progress line on stderr (never mixed into --json on stdout)."""
    click.echo(f"  {text}", err=True)


class _ByteProgress:
    """`received N of M bytes (P%)` on stderr: redrawn in place on a terminal, at each quarter otherwise."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._quarter = 0

    def __call__(self, received: int, total: int) -> None:
        percent = 100 * received // max(total, 1)
        line = f"  received {received} of {total} bytes ({percent}%)"
        if self._tty:
            click.echo(f"\r{line}", err=True, nl=received >= total)
        elif percent // 25 > self._quarter or received >= total:
            self._quarter = percent // 25
            click.echo(line, err=True)


@appliance_command(cluster, "backup", timeout=BACKUP_TIMEOUT)
@click.option(
    "--out",
    required=True,
    type=OUT_FILE_NO_DASH,
    help="The backup file to write (mode 0600); must not exist yet.",
)
def backup(call: ApplianceCall, out: str) -> None:
    """admin: a consistent backup of the replicated state at a known Raft index.

    Users, roles, clients, partitions, keyrings and keys (still wrapped under the
    SMK), the member directory and the audit chain, encrypted and authenticated
    under a key derived from the cluster SMK. Restore it with `hsmnode cluster
    restore`, which needs that SMK.
    """
    path = Path(out)
    if path.exists():
        fail(
            call.as_json,
            "INVALID_ARGUMENT",
            f"{path} exists: a backup never overwrites a file; choose another name",
        )
    part = path.with_name(f".{path.name}.part")
    admin = call.session
    click.echo("taking a consistent snapshot...", err=True)
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            info = admin.backup(f, timeout=BACKUP_TIMEOUT, progress=_ByteProgress())
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)

    def human() -> None:
        click.echo(
            f"backup {path}: cluster {info.cluster_id} at index {info.index}, taken by {info.taken_by}"
        )
        click.echo(
            f"  {info.member_count} members, {info.key_count} keys, {info.user_count} users, "
            f"{info.partition_count} partitions, {info.keyring_count} keyrings, {info.audit_length} audit records"
        )
        click.echo(f"  {info.size_bytes} bytes; opens with the SMK whose check value is {info.smk_check}")

    call.emit({**info.to_dict(), "file": str(path)}, human)


@cluster.command("restore")
@click.option("--backup", "backup_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--dir", "root", required=True, type=click.Path(file_okay=False), help="A new or empty directory."
)
@click.option(
    "--smk",
    "smk_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The SMK of the cluster the backup was taken from (a member's data/smk.key).",
)
@click.option("--nodes", default=None, type=click.IntRange(1, 9), help="Members (default: as in the backup).")
@click.option("--base-port", default=DEFAULT_BASE_PORT, show_default=True, type=int, help="First gRPC port.")
@json_option
def restore(
    backup_file: str, root: str, smk_file: str, nodes: int | None, base_port: int, as_json: bool
) -> None:
    """Build a new local cluster (new id, CA, certificates, Raft secret; the same SMK) from a backup.

    Every check runs before anything is written: an empty target directory, and a
    backup that opens under the SMK (format, length, authentication, audit chain,
    counts). Start it with `hsmnode dev --dir DIR`; admin (NEW admin certificate in
    DIR/profile.json) and every user log in with their passwords as before, and
    registered NTLS client certificates are trusted as before.
    """
    from hsmnode.backup.restore import RestoreError, restore_cluster

    click.echo(f"restoring {backup_file} into {root}:", err=True)
    try:
        cluster, header = restore_cluster(
            Path(backup_file),
            Path(smk_file),
            Path(root),
            nodes=nodes,
            base_port=base_port,
            progress=_step,
        )
    except RestoreError as exc:  # nothing was written
        fail(as_json, exc.reason.upper(), exc.message)
    data = {
        "cluster_id": cluster.cluster_id,
        "dir": str(cluster.root),
        "members": [{"id": m.id, "grpc": m.grpc, "raft": m.raft} for m in cluster.members],
        "restored_from": {**header.to_json(), "file": str(Path(backup_file).resolve())},
    }

    def human() -> None:
        click.echo(
            f"cluster {cluster.cluster_id} restored in {cluster.root} from cluster {header.cluster_id} "
            f"at index {header.index} ({header.key_count} keys, {header.user_count} users)"
        )
        click.echo(f"start it: hsmnode dev --dir {cluster.root}")

    emit(as_json, data, human)
