"""Entry point of the `hsmnode` command: one module per command group (hsmnode/cli/<group>.py)."""

from __future__ import annotations

import os

# gRPC's fork handlers only log noise when pysyncobj forks to write its dump.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import importlib  # noqa: E402

import click  # noqa: E402

from hsmnode import __version__  # noqa: E402

# command name -> "module:attribute" under hsmnode/cli. A command's module is imported when the command
# line names it: `hsmnode serve` (every member process) then loads no client-side group and a client
# command none of the others (each invocation saved a quarter of a second of CPU); `--help` and shell
# completion load what they list.
COMMANDS = {
    "serve": "serve:serve",
    "dev": "dev:dev",
    "cluster": "cluster:cluster",
    "audit": "audit:audit",
    "login": "login:login",
    "logout": "login:logout",
    "user": "user:user",
    "role": "role:role",
    "hsm": "hsm:hsm",
    "partition": "partition:partition",
    "client": "client:client_group",
    "session": "session:session",
    "key": "key:key",
    "keyring": "keyring:keyring",
    "crypto": "crypto:crypto",
    "card": "card:card",
    "auth": "auth:auth",
    "grant": "grant:grant",
    "console": "console:console",
    "drill": "drill:drill",
    "completion": "completion:completion",
    "health": "deploy:health",
    "deploy-secrets": "deploy:deploy_secrets",
    "cert": "cert:cert",
    "pkcs11": "pkcs11:pkcs11",
}


class CommandTable(click.Group):
    """The top-level group: its commands come from COMMANDS, each module imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(f"hsmnode.cli.{module}"), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=CommandTable, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hsmnode")
def cli() -> None:
    """hsmnode: a clustered network-HSM emulator.

    Start a local 3-member cluster with `hsmnode dev`, then point the other
    commands at it with --profile or HSMNODE_PROFILE.
    """


def main() -> None:
    cli()
