"""`hsmnode cluster backup` and `hsmnode cluster restore`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from hsmnode.cli._common import _fail, appliance_session, emit, json_option, profile_options, reports_errors
from hsmnode.ops.devcluster import DEFAULT_BASE_PORT

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


@click.command("backup")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The backup file to write (mode 0600); must not exist yet.",
)
@profile_options
@json_option
@reports_errors
def backup(out: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """admin: a consistent backup of the replicated state at a known Raft index.

    Users, roles, clients, partitions, keyrings and keys (still wrapped under the
    SMK), the member directory and the audit chain, encrypted and authenticated
    under a key derived from the cluster SMK. Restore it with `hsmnode cluster
    restore`, which needs that SMK.
    """
    path = Path(out)
    if path.exists():
        _fail(
            as_json,
            "INVALID_ARGUMENT",
            f"{path} exists: a backup never overwrites a file; choose another name",
        )
    part = path.with_name(f".{path.name}.part")
    client, admin = appliance_session(profile, endpoints, BACKUP_TIMEOUT)
    click.echo("taking a consistent snapshot...", err=True)
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with client, os.fdopen(fd, "wb") as f:
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

    emit(as_json, {**info.to_json(), "file": str(path)}, human)


@click.command("restore")
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
        _fail(as_json, exc.reason.upper(), exc.message)
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
