"""`hsmnode cert`: the cluster CA and certificates for members and clients, without openssl recipes.

    hsmnode cert ca --out /etc/hsmnode/pki                         ca.pem, ca.key (0600)
    hsmnode cert issue --ca /etc/hsmnode/pki --node node1 \\
        --ip 10.0.0.11 --dns hsm1.example.internal --out DIR         node1.pem, node1.key
    hsmnode cert issue --ca /etc/hsmnode/pki --client admin --out DIR  admin.pem, admin.key

A member certificate carries serverAuth and clientAuth (members call each other) and the
addresses clients and peers dial as subject alternative names: an IP address for --ip, a
DNS name for --dns (gRPC checks the name it dialled against them). A client certificate
carries clientAuth only. Keys are EC P-256, written mode 0600; nothing is overwritten.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click

from hsmnode import crypto


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise click.ClickException(f"{path} already exists; remove it or choose another --out") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _out_dir(out: str) -> Path:
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    return path


@click.group()
def cert() -> None:
    """Cluster CA and member/client certificates (EC P-256, X.509)."""


@cert.command("ca")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Directory for ca.pem and ca.key."
)
@click.option(
    "--cn", "common_name", default="hsmnode cluster CA", show_default=True, help="The CA's common name."
)
def ca_command(out: str, common_name: str) -> None:
    """Create a cluster CA. Keep ca.key off the members."""
    directory = _out_dir(out)
    pair = crypto.create_ca(common_name)
    _write_new(directory / "ca.pem", pair.cert_pem, 0o644)
    _write_new(directory / "ca.key", pair.key_pem, 0o600)
    click.echo(f"wrote {directory / 'ca.pem'} and {directory / 'ca.key'} (keep ca.key offline)")


@cert.command("issue")
@click.option(
    "--ca",
    "ca_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="Directory with ca.pem, ca.key.",
)
@click.option("--node", "node_id", default=None, help="Issue a member certificate for this member id.")
@click.option("--client", "client_name", default=None, help="Issue a client (clientAuth only) certificate.")
@click.option("--ip", "ips", multiple=True, help="An IP address the member is dialled at (repeat).")
@click.option("--dns", "names", multiple=True, help="A DNS name the member is dialled at (repeat).")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Directory for NAME.pem and NAME.key."
)
def issue_command(
    ca_dir: str,
    node_id: str | None,
    client_name: str | None,
    ips: tuple[str, ...],
    names: tuple[str, ...],
    out: str,
) -> None:
    """Issue a member (--node) or client (--client) certificate signed by the cluster CA."""
    if (node_id is None) == (client_name is None):
        raise click.UsageError("give exactly one of --node ID or --client NAME")
    for ip in ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise click.BadParameter(
                f"{ip!r} is not an IP address (use --dns for names)", param_hint="--ip"
            ) from None
    for name in names:
        if not name or any(c.isspace() for c in name) or "/" in name or ":" in name:
            raise click.BadParameter(f"{name!r} is not a DNS name", param_hint="--dns")
    if client_name is not None and (ips or names):
        raise click.UsageError(
            "--ip and --dns are for member certificates (--node); a client certificate has none"
        )
    if node_id is not None and not (ips or names):
        raise click.UsageError(
            f"member {node_id} needs the addresses it is dialled at: --ip ADDRESS and/or --dns NAME"
        )
    ca_path = Path(ca_dir)
    try:
        ca = crypto.PemPair((ca_path / "ca.pem").read_bytes(), (ca_path / "ca.key").read_bytes())
    except OSError as exc:
        raise click.ClickException(
            f"cannot read the CA in {ca_path}: {exc.strerror} ({exc.filename})"
        ) from None
    subject = node_id or client_name
    assert subject is not None
    try:
        pair = crypto.issue_certificate(ca, subject, hosts=[*ips, *names] or None, server=node_id is not None)
    except ValueError as exc:
        raise click.ClickException(f"cannot issue with the CA in {ca_path}: {exc}") from None
    directory = _out_dir(out)
    _write_new(directory / f"{subject}.pem", pair.cert_pem, 0o644)
    _write_new(directory / f"{subject}.key", pair.key_pem, 0o600)
    what = "member" if node_id else "client"
    sans = ", ".join([*ips, *names]) or "none"
    click.echo(
        f"wrote {what} certificate {directory / (subject + '.pem')} and key {directory / (subject + '.key')} (SANs: {sans})"
    )
