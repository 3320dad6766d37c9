"""The options many commands share: where to connect (--profile, --endpoint), --json, --client,
and passwords from four sources (never needing a command line)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from hsmnode.client import PROFILE_ENV

F = TypeVar("F", bound=Callable[..., Any])


def check_endpoint(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """The callback of every HOST:PORT option (one value, several, or none): anything else is a
    usage error naming the form (click.BadParameter, exit status 2)."""
    for text in value if isinstance(value, tuple) else () if value is None else (value,):
        host, _, port = str(text).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise click.BadParameter(
                f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:7400 or node1.example:50051)", ctx, param
            )
    return value


class OutFile(click.Path):
    """A file to write: "-" for stdout (when `allow_dash`), or a path that is not a directory, in a
    directory that exists, so a wrong --out fails before any work is done."""

    def __init__(self, allow_dash: bool = True) -> None:
        super().__init__(dir_okay=False, allow_dash=allow_dash)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        if path != "-":
            parent = Path(os.fsdecode(path)).parent
            if not parent.is_dir():
                self.fail(f"{value}: directory {parent} does not exist (create it first)", param, ctx)
        return path


# every option that names a file to read (--in, --signature, --card ...) or to write (--out):
# "-" is stdin/stdout where the command supports it
IN_FILE = click.Path(exists=True, dir_okay=False, allow_dash=True)
IN_FILE_NO_DASH = click.Path(exists=True, dir_okay=False)
OUT_FILE = OutFile()
OUT_FILE_NO_DASH = OutFile(allow_dash=False)


def profile_params() -> list[click.Parameter]:
    """--profile FILE and --endpoint HOST:PORT (repeatable), in that order."""
    return [
        click.Option(
            ["--profile"],
            envvar=PROFILE_ENV,
            type=click.Path(dir_okay=False),
            default=None,
            help=f"Connection profile (default: ${PROFILE_ENV} or ./hsmnode-dev/profile.json).",
        ),
        click.Option(
            ["--endpoint", "endpoints"],
            multiple=True,
            callback=check_endpoint,
            metavar="HOST:PORT",
            help="Talk to this member only (repeat for several); default: every member in the profile.",
        ),
    ]


def json_param() -> click.Option:
    return click.Option(["--json", "as_json"], is_flag=True, help="Print machine-readable JSON.")


def client_param() -> click.Option:
    return click.Option(
        ["--client", "client_name"],
        default=None,
        metavar="NAME",
        help="The profile's NTLS client to present (default: its `client`; e.g. cluster-so).",
    )


def json_option(fn: F) -> F:
    """--json on a command that opens no session (card, console, cluster join/leave/restore)."""
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(fn)


def password_option(
    name: str = "--password",
    what: str = "Password",
    confirm: bool = False,
    *,
    env: str | None = None,
    required: bool = True,
) -> Callable[[F], F]:
    """A password from one of four sources, so it need not appear on a command line (visible in `ps`):

        --password P            on the command line (discouraged outside tests)
        --password-file FILE    the first line of FILE
        --password-stdin        one line from standard input
        $HSMNODE_PASSWORD       an environment variable (`env`; default from the option name)

    Given none, it is prompted for (hidden), or read as a line from stdin when piped; an optional
    one (`required=False`) is "" instead. More than one of the first three is a usage error.
    The body receives the resolved password as one keyword argument (the option's name).
    """
    dest = name.lstrip("-").replace("-", "_")
    envvar = env or f"HSMNODE_{dest.upper()}"

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def resolved(*args: Any, **kwargs: Any) -> Any:
            value, path, stdin = kwargs.pop(dest), kwargs.pop(f"{dest}_file"), kwargs.pop(f"{dest}_stdin")
            kwargs[dest] = _password(name, what, value, path, stdin, envvar, confirm, required)
            return fn(*args, **kwargs)

        wrapped = click.option(
            f"{name}-stdin", f"{dest}_stdin", is_flag=True, help=f"Read {name} from stdin (one line)."
        )(resolved)
        wrapped = click.option(
            f"{name}-file",
            f"{dest}_file",
            default=None,
            metavar="FILE",
            help=f"Read {name} from the first line of FILE.",
        )(wrapped)
        wrapped = click.option(
            name,
            dest,
            default=None,
            help=f"{what}; prefer {name}-file, {name}-stdin or ${envvar} (a command line shows in ps). "
            + ("Prompted for when none is given." if required else "Optional."),
        )(wrapped)
        return cast(F, wrapped)

    return decorate


def _password(
    name: str,
    what: str,
    value: str | None,
    path: str | None,
    stdin: bool,
    envvar: str,
    confirm: bool,
    required: bool,
) -> str:
    given = [
        flag
        for flag, used in ((name, value is not None), (f"{name}-file", path), (f"{name}-stdin", stdin))
        if used
    ]
    if len(given) > 1:
        raise click.UsageError(f"give only one of {', '.join(given)}")
    if value is not None:
        return value
    if path is not None:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise click.BadParameter(f"{path}: {exc.strerror}", param_hint=f"{name}-file") from None
        if not lines or not lines[0]:
            raise click.BadParameter(f"{path}: the first line is empty", param_hint=f"{name}-file")
        return lines[0]
    if stdin:
        line = sys.stdin.readline()
        if not line.strip("\r\n"):
            raise click.BadParameter("standard input gave no line", param_hint=f"{name}-stdin")
        return line.rstrip("\r\n")
    if envvar in os.environ:
        return os.environ[envvar]
    if not required:
        return ""
    return str(click.prompt(what, hide_input=True, confirmation_prompt=confirm))


def profile_options(fn: F) -> F:
    """--profile and --endpoint on a command that opens its own connection (pkcs11 serve)."""
    for made in reversed(profile_params()):
        fn = param(made)(fn)
    return fn


def param(made: click.Parameter) -> Callable[[F], F]:
    """Attach a ready-made parameter (one a module shares between commands) as a decorator."""

    def decorate(fn: F) -> F:
        fn.__dict__.setdefault("__click_params__", []).append(made)
        return fn

    return decorate
