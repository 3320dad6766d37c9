"""Entry point of the `hsmnode` command."""

from __future__ import annotations

import os

# gRPC's fork handlers only log noise when pysyncobj forks to write its dump.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import click  # noqa: E402

from hsmnode import __version__  # noqa: E402
from hsmnode.cli.audit import audit  # noqa: E402
from hsmnode.cli.authz import auth, card, console, grant  # noqa: E402
from hsmnode.cli.cert import cert  # noqa: E402
from hsmnode.cli.cluster import cluster  # noqa: E402
from hsmnode.cli.completion import completion  # noqa: E402
from hsmnode.cli.deploy import deploy_secrets, health  # noqa: E402
from hsmnode.cli.drill import drill  # noqa: E402
from hsmnode.cli.hsm import client_group, hsm, partition  # noqa: E402
from hsmnode.cli.keys import crypto, key, keyring  # noqa: E402
from hsmnode.cli.node import dev, serve  # noqa: E402
from hsmnode.cli.pkcs11 import pkcs11  # noqa: E402
from hsmnode.cli.session import session  # noqa: E402
from hsmnode.cli.users import login, logout, role, user  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hsmnode")
def cli() -> None:
    """hsmnode: a clustered network-HSM emulator.

    Start a local 3-member cluster with `hsmnode dev`, then point the other
    commands at it with --profile or HSMNODE_PROFILE.
    """


cli.add_command(serve)
cli.add_command(dev)
cli.add_command(cluster)
cli.add_command(audit)
cli.add_command(login)
cli.add_command(logout)
cli.add_command(user)
cli.add_command(role)
cli.add_command(hsm)
cli.add_command(partition)
cli.add_command(client_group)
cli.add_command(session)
cli.add_command(key)
cli.add_command(keyring)
cli.add_command(crypto)
cli.add_command(card)
cli.add_command(auth)
cli.add_command(grant)
cli.add_command(console)
cli.add_command(drill)
cli.add_command(completion)
cli.add_command(health)
cli.add_command(deploy_secrets)
cli.add_command(cert)
cli.add_command(pkcs11)


def main() -> None:
    cli()
