"""The `hsmnode` command table (hsmnode/cli/main.py): every listed name loads its command, and a member
process's `hsmnode serve` loads no other command group."""

from __future__ import annotations

import subprocess
import sys

import click

from hsmnode.cli.main import COMMANDS, cli


def test_every_command_of_the_table_loads_under_its_name() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name, name
    assert cli.get_command(ctx, "no-such-command") is None


def test_serve_loads_no_other_command_group_and_not_the_sdk() -> None:
    probe = (
        "import sys, click\n"
        "from hsmnode.cli.main import cli\n"
        "cli.get_command(click.Context(cli), 'serve')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('hsmnode.cli.', 'hsmnode.client')))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert loaded.stdout.split() == ["hsmnode.cli.main", "hsmnode.cli.serve"]
