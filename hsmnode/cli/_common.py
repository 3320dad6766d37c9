"""Shared CLI plumbing: profile option, JSON/human output, error reporting."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hsmnode.client import PROFILE_ENV, HsmClient, HsmError, ProfileError, default_profile_path, load_profile

F = TypeVar("F", bound=Callable[..., Any])


def profile_options(fn: F) -> F:
    fn = click.option(
        "--endpoint",
        "endpoints",
        multiple=True,
        metavar="HOST:PORT",
        help="Talk to this member only (repeat for several); default: every member in the profile.",
    )(fn)
    fn = click.option(
        "--profile",
        envvar=PROFILE_ENV,
        type=click.Path(dir_okay=False),
        default=None,
        help=f"Connection profile (default: ${PROFILE_ENV} or ./hsmnode-dev/profile.json).",
    )(fn)
    return fn


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(fn)


def connect(
    profile: str | None, endpoints: tuple[str, ...], identity: str = "admin", timeout: float = 5.0
) -> HsmClient:
    """A client of the profile's cluster: "admin" presents the admin certificate, "client" the default
    NTLS client certificate, any other name the profile's NTLS client of that name."""
    loaded = load_profile(profile or default_profile_path())
    tls = loaded.tls if identity == "admin" else loaded.client_tls(None if identity == "client" else identity)
    # the profile's cluster id makes a member of another cluster refuse (an explicit --endpoint is
    # the operator's choice, e.g. a standalone node before it joins)
    return HsmClient(
        list(endpoints) or list(loaded.endpoints),
        tls,
        timeout=timeout,
        cluster_id="" if endpoints else loaded.cluster_id,
    )


def load_profile_for(profile: str | None) -> Any:
    """The profile named by --profile / $HSMNODE_PROFILE / the default path."""
    return load_profile(profile or default_profile_path())


def session_file(profile: str | None) -> Path:
    """Where the CLI caches session tokens between commands: beside the profile, mode 0600."""
    path = Path(profile) if profile else default_profile_path()
    return path.with_name(path.stem + ".sessions.json")


def load_sessions(profile: str | None) -> dict[str, Any]:
    try:
        data = json.loads(session_file(profile).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_sessions(profile: str | None, data: dict[str, Any]) -> None:
    path = session_file(profile)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)


def appliance_token(profile: str | None) -> str:
    token = load_sessions(profile).get("appliance", {}).get("token", "")
    if not token:
        raise ProfileError("no appliance session: log in first (hsmnode login USER)")
    return str(token)


def partition_token(profile: str | None, partition: str) -> str:
    token = load_sessions(profile).get("partitions", {}).get(partition, {}).get("token", "")
    if not token:
        raise ProfileError(
            f"no session on partition '{partition}': open one first (hsmnode session open {partition})"
        )
    return str(token)


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
    """
    dest = name.lstrip("-").replace("-", "_")
    envvar = env or f"HSMNODE_{dest.upper()}"

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def resolved(*args: Any, **kwargs: Any) -> Any:
            value, path, stdin = kwargs.pop(dest), kwargs.pop(f"{dest}_file"), kwargs.pop(f"{dest}_stdin")
            kwargs[dest] = _password(name, what, value, path, stdin, envvar, confirm, required)
            return fn(*args, **kwargs)

        wrapped: Any = resolved
        wrapped = click.option(
            f"{name}-stdin",
            f"{dest}_stdin",
            is_flag=True,
            help=f"Read {name} from stdin (one line).",
        )(wrapped)
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
        return wrapped  # type: ignore[no-any-return]

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


def emit(as_json: bool, data: Any, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        human()


def emit_record(as_json: bool, record: Any) -> None:
    """One dataclass: as JSON, or one `field: value` line per field."""
    data = dataclasses.asdict(record)
    emit(as_json, data, lambda: [click.echo(f"{k}: {v}") for k, v in data.items()])


def reports_errors(fn: F) -> F:
    """Turn SDK and profile errors into one line on stderr (or JSON) and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HsmError as exc:
            _fail(kwargs.get("as_json", False), exc.code.name, exc.message)
        except ProfileError as exc:
            _fail(kwargs.get("as_json", False), "PROFILE", str(exc))

    return wrapper  # type: ignore[return-value]


def _fail(as_json: bool, code: str, message: str) -> None:
    if as_json:
        click.echo(json.dumps({"error": {"code": code, "message": message}}, indent=2))
    else:
        click.echo(f"error: {code}: {message}", err=True)
    sys.exit(1)


def container_session(profile: str | None, endpoints: tuple[str, ...], name: str):  # type: ignore[no-untyped-def]
    """(client, session) for the cached session on partition or keyring NAME, presenting the
    NTLS identity it was opened with (tokens are bound to the client certificate)."""
    cached = load_sessions(profile).get("partitions", {}).get(name, {})
    token = cached.get("token", "")
    if not token:
        raise ProfileError(f"no session on '{name}': open one first (hsmnode session open {name} --role ...)")
    client = connect(profile, endpoints, identity=cached.get("client") or "client")
    session = client.resume_partition(token, name, cached.get("role", ""))
    session.keep = True
    return client, session


def client_option(fn: F) -> F:
    return click.option(
        "--client",
        "client_name",
        default=None,
        metavar="NAME",
        help="The profile's NTLS client to present (default: its `client`; e.g. cluster-so).",
    )(fn)


def appliance_session(profile: str | None, endpoints: tuple[str, ...], timeout: float = 5.0):  # type: ignore[no-untyped-def]
    """(client, session) for the cached appliance session; the session type also carries the
    HSM-role methods (they answer PERMISSION_DENIED unless `hsm login` elevated the session)."""
    from hsmnode.client import HsmRoleSession

    client = connect(profile, endpoints, timeout=timeout)
    session = HsmRoleSession(client, appliance_token(profile), "", "", 0)
    session.keep = True
    return client, session
