"""`hsmnode completion bash|zsh|fish`: the shell completion script, from click's own completion support."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

PROG = "hsmnode"
COMPLETE_VAR = "_HSMNODE_COMPLETE"  # click's convention: _<PROG>_COMPLETE


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(hsmnode completion bash)"          (in ~/.bashrc; bash 4.4+)
    zsh:   eval "$(hsmnode completion zsh)"           (in ~/.zshrc)
    fish:  hsmnode completion fish > ~/.config/fish/completions/hsmnode.fish
    """
    root = click.get_current_context().find_root().command
    cls = get_completion_class(shell)
    assert cls is not None  # the Choice admits only shells click supports
    click.echo(cls(root, {}, PROG, COMPLETE_VAR).source())
