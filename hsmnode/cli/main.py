"""Entry point of the `hsmnode` command: one module per command group (hsmnode/cli/<group>.py)."""

from __future__ import annotations

import os

# gRPC's fork handlers only log noise when pysyncobj forks to write its dump.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import click  # noqa: E402

from hsmnode import __version__  # noqa: E402
from hsmnode.cli.audit import audit  # noqa: E402
from hsmnode.cli.auth import auth  # noqa: E402
from hsmnode.cli.card import card  # noqa: E402
from hsmnode.cli.cert import cert  # noqa: E402
from hsmnode.cli.client import client_group  # noqa: E402
from hsmnode.cli.cluster import cluster  # noqa: E402
from hsmnode.cli.completion import completion  # noqa: E402
from hsmnode.cli.console import console  # noqa: E402
from hsmnode.cli.crypto import crypto  # noqa: E402
from hsmnode.cli.deploy import deploy_secrets, health  # noqa: E402
from hsmnode.cli.dev import dev  # noqa: E402
from hsmnode.cli.drill import drill  # noqa: E402
from hsmnode.cli.grant import grant  # noqa: E402
from hsmnode.cli.hsm import hsm  # noqa: E402
from hsmnode.cli.key import key  # noqa: E402
from hsmnode.cli.keyring import keyring  # noqa: E402
from hsmnode.cli.login import login, logout  # noqa: E402
from hsmnode.cli.partition import partition  # noqa: E402
from hsmnode.cli.pkcs11 import pkcs11  # noqa: E402
from hsmnode.cli.role import role  # noqa: E402
from hsmnode.cli.serve import serve  # noqa: E402
from hsmnode.cli.session import session  # noqa: E402
from hsmnode.cli.user import user  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hsmnode")
def cli() -> None:
    """hsmnode: a clustered network-HSM emulator.

    Start a local 3-member cluster with `hsmnode dev`, then point the other
    commands at it with --profile or HSMNODE_PROFILE.
    """


for command in (
    serve,
    dev,
    cluster,
    audit,
    login,
    logout,
    user,
    role,
    hsm,
    partition,
    client_group,
    session,
    key,
    keyring,
    crypto,
    card,
    auth,
    grant,
    console,
    drill,
    completion,
    health,
    deploy_secrets,
    cert,
    pkcs11,
):
    cli.add_command(command)


def main() -> None:
    cli()
