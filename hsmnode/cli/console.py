"""`hsmnode console ...`: the member's local console (DOMAIN.md §5): authorization changes with the
cards on the member's own host, as its user, through its unix socket."""

from __future__ import annotations

import click

from hsmnode.cli._command import reports_errors
from hsmnode.cli._options import json_option, param, password_option
from hsmnode.cli._output import emit_record
from hsmnode.cli.card import card_set, cards_option, set_option, signatures
from hsmnode.client import ConsoleClient


@click.group()
def console() -> None:
    """The member's local console (DOMAIN.md §5): authorization changes with the cards on the member's
    own host, as its user, through its unix socket; AUTHORIZED needs no online_authorization here."""


def socket_option() -> click.Option:
    return click.Option(
        ["--socket", "socket_path"],
        required=True,
        envvar="HSMNODE_CONSOLE_SOCKET",
        type=click.Path(dir_okay=False),
        help="The member's console socket: console.sock in its data dir ($HSMNODE_CONSOLE_SOCKET).",
    )


@console.command("show")
@click.argument("partition")
@param(socket_option())
@json_option
@reports_errors
def console_show(partition: str, socket_path: str, as_json: bool) -> None:
    """The partition's authorization state, as this member holds it."""
    with ConsoleClient(socket_path) as local:
        info = local.show(partition)
    emit_record(as_json, info)


def _change(
    partition: str,
    target: str,
    action: str,
    cards: tuple[str, ...],
    password: str,
    socket_path: str,
    set_file: str | None,
) -> None:
    new_set = card_set(set_file) if set_file is not None else None
    with ConsoleClient(socket_path) as local:
        challenge = local.challenge(partition, action)
        state = local.change(
            partition, target, challenge, signatures(cards, challenge.data), password, card_set=new_set
        )
    click.echo(f"partition {partition}: {state} (at the console of {socket_path})")


# (command, target state, challenge action, help, takes --set)
CHANGES = [
    ("associate", "ASSOCIATED", "associate", "INITIAL -> ASSOCIATED: bind a card set.", True),
    (
        "authorize",
        "AUTHORIZED",
        "authorize",
        "ASSOCIATED -> AUTHORIZED, with or without online_authorization.",
        False,
    ),
    ("deauthorize", "ASSOCIATED", "deauthorize", "AUTHORIZED -> ASSOCIATED.", False),
    ("reset", "INITIAL", "reset", "Back to INITIAL: unbinds the card set and its permissions.", False),
]


def _console_change(name: str, target: str, action: str, doc: str, with_set: bool) -> click.Command:
    def command(
        partition: str, cards: tuple[str, ...], password: str, socket_path: str, set_file: str | None = None
    ) -> None:
        _change(partition, target, action, cards, password, socket_path, set_file)

    decorated = reports_errors(command)
    decorated = param(socket_option())(decorated)
    decorated = password_option(what="Partition password", env="HSMNODE_PARTITION_PASSWORD")(decorated)
    decorated = param(cards_option())(decorated)
    if with_set:
        decorated = param(set_option())(decorated)
    decorated = click.argument("partition")(decorated)
    return console.command(name, help=doc)(decorated)


for _name, _target, _action, _doc, _with_set in CHANGES:
    _console_change(_name, _target, _action, _doc, _with_set)
