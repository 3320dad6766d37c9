"""Commands as data: one decorator per kind of command, carrying its options and its session.

    @appliance_command(user, "add", json=False)     the cached appliance session (hsmnode login)
    @click.argument("name")
    def user_add(call: ApplianceCall, name: str) -> None:
        call.session.add_user(name, ...)

    @container_command(key, "show", on=on_option())  the cached session on a partition or keyring
    @client_command(session, "open", ...)            a connection with an identity, no cached session

    user_list = list_command(appliance_command(user, "list"), DOC, fetch, USER_COLUMNS)
    user_show = show_command(appliance_command(user, "show"), DOC, "name", fetch)

Each adds, after the command's own parameters, --profile and --endpoint (and --json unless
`json=False`), turns SDK and profile errors into the one-line error contract (exit status 1), and
gives the body a call object whose client connects on first use and is closed when the body ends.
The session is opened lazily on purpose: a body resolves its password or reads its input first,
as the commands always have. The body gets the command's own parameters as keyword arguments.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from functools import cached_property
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import click

from hsmnode.cli._cache import appliance_token, cached_container, connect
from hsmnode.cli._options import client_param, json_param, profile_params
from hsmnode.cli._output import Column, emit, emit_record, emit_table, fail
from hsmnode.client import HsmClient, HsmError, HsmRoleSession, PartitionSession, ProfileError

P = ParamSpec("P")
C = TypeVar("C", bound="Call")


class Call:
    """What a command body gets besides its own parameters: where to connect and how to print."""

    def __init__(self, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
        self.profile = profile
        self.endpoints = endpoints
        self.as_json = as_json
        self._opened: list[HsmClient] = []

    def connect(self, identity: str = "admin", timeout: float = 5.0) -> HsmClient:
        """A client of the profile's cluster presenting `identity` (see `_cache.connect`), closed
        when the command ends."""
        client = connect(self.profile, self.endpoints, identity=identity, timeout=timeout)
        self._opened.append(client)
        return client

    def close(self) -> None:
        for client in self._opened:
            client.close()

    def emit(self, data: Any, human: Callable[[], object]) -> None:
        emit(self.as_json, data, human)

    def emit_record(self, record: Any) -> None:
        emit_record(self.as_json, record)

    def table(self, rows: list[Any], columns: list[Column], *, header: bool = True, data: Any = None) -> None:
        emit_table(self.as_json, rows, columns, header=header, data=data)


class ClientCall(Call):
    """A connection presenting `identity`: "admin", "client" or a named NTLS client of the profile."""

    def __init__(self, profile: str | None, endpoints: tuple[str, ...], as_json: bool, identity: str) -> None:
        super().__init__(profile, endpoints, as_json)
        self.identity = identity

    @cached_property
    def client(self) -> HsmClient:
        return self.connect(self.identity)


class ApplianceCall(Call):
    """The cached appliance session; its type also carries the HSM-role methods (they answer
    PERMISSION_DENIED unless `hsm login` elevated the session)."""

    def __init__(
        self, profile: str | None, endpoints: tuple[str, ...], as_json: bool, timeout: float
    ) -> None:
        super().__init__(profile, endpoints, as_json)
        self.timeout = timeout

    @cached_property
    def client(self) -> HsmClient:
        return self.connect(timeout=self.timeout)

    @cached_property
    def token(self) -> str:
        return appliance_token(self.profile)

    @cached_property
    def session(self) -> HsmRoleSession:
        client = self.client  # the profile first: its errors come before "log in first"
        session = HsmRoleSession(client, self.token, "", "", 0)
        session.keep = True
        return session


class ContainerCall(Call):
    """The cached session on partition or keyring `name`, presenting the NTLS identity it was
    opened with (tokens are bound to the client certificate)."""

    def __init__(self, profile: str | None, endpoints: tuple[str, ...], as_json: bool, name: str) -> None:
        super().__init__(profile, endpoints, as_json)
        self.name = name

    @cached_property
    def session(self) -> PartitionSession:
        cached = cached_container(self.profile, self.name)
        client = self.connect(cached.get("client") or "client")
        session = client.resume_partition(cached["token"], self.name, cached.get("role", ""))
        session.keep = True
        return session


def on_option(text: str = "The partition or keyring of a cached session.") -> click.Option:
    """--on NAME: the container of a key, crypto, auth or grant command."""
    return click.Option(["--on", "on"], required=True, metavar="NAME", help=text)


Body = Callable[Concatenate[C, P], None]


def _command(
    group: click.Group | None,
    name: str,
    json: bool,
    extra: list[click.Parameter],
    make: Callable[[dict[str, Any], bool], C],
) -> Callable[[Body[C, P]], click.Command]:
    def decorate(fn: Body[C, P]) -> click.Command:
        own: list[click.Parameter] = list(reversed(fn.__dict__.pop("__click_params__", [])))

        body: Callable[..., None] = fn

        def callback(**kwargs: Any) -> None:
            as_json = bool(kwargs.pop("as_json", False))
            call = make(kwargs, as_json)
            try:
                body(call, **kwargs)
            except HsmError as exc:
                fail(as_json, exc.code.name, exc.message)
            except ProfileError as exc:
                fail(as_json, "PROFILE", str(exc))
            finally:
                call.close()

        params = [*own, *extra, *profile_params(), *([json_param()] if json else [])]
        if group is None:
            return click.command(name, params=params, help=fn.__doc__)(callback)
        return group.command(name, params=params, help=fn.__doc__)(callback)

    return decorate


def _where(kwargs: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    return kwargs.pop("profile"), tuple(kwargs.pop("endpoints"))


def appliance_command(
    group: click.Group | None, name: str, *, json: bool = True, timeout: float = 5.0
) -> Callable[[Body[ApplianceCall, P]], click.Command]:
    """A command in the cached appliance session (`call.session`, an HsmRoleSession); `timeout`
    is each call's deadline in seconds (membership changes and backups wait longer)."""

    def make(kwargs: dict[str, Any], as_json: bool) -> ApplianceCall:
        return ApplianceCall(*_where(kwargs), as_json, timeout)

    return _command(group, name, json, [], make)


def container_command(
    group: click.Group | None, name: str, *, on: click.Option | str, json: bool = True
) -> Callable[[Body[ContainerCall, P]], click.Command]:
    """A command in the cached session on a partition or keyring (`call.session`, `call.name`):
    named by the option `on` (--on NAME, --as-so NAME; the body does not get it), or by the
    command's own argument called `on` (the body gets it too)."""
    extra: list[click.Parameter] = [on] if isinstance(on, click.Option) else []

    def make(kwargs: dict[str, Any], as_json: bool) -> ContainerCall:
        container = kwargs.pop(str(on.name)) if isinstance(on, click.Option) else kwargs[on]
        return ContainerCall(*_where(kwargs), as_json, str(container))

    return _command(group, name, json, extra, make)


def client_command(
    group: click.Group | None,
    name: str,
    *,
    identity: str = "admin",
    client_option: bool = False,
    json: bool = True,
) -> Callable[[Body[ClientCall, P]], click.Command]:
    """A command that connects presenting `identity` and needs no cached session (`call.client`);
    with `client_option`, --client NAME picks the profile's NTLS client instead."""
    extra: list[click.Parameter] = [client_param()] if client_option else []

    def make(kwargs: dict[str, Any], as_json: bool) -> ClientCall:
        chosen = kwargs.pop("client_name", None) if client_option else None
        return ClientCall(*_where(kwargs), as_json, chosen or identity)

    return _command(group, name, json, extra, make)


F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(fn: F) -> F:
    """For a command without a call object: SDK and profile errors become the one-line error
    contract (exit status 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HsmError as exc:
            fail(kwargs.get("as_json", False), exc.code.name, exc.message)
        except ProfileError as exc:
            fail(kwargs.get("as_json", False), "PROFILE", str(exc))

    return cast(F, wrapper)


def list_command(
    command: Callable[[Callable[[C], None]], click.Command],
    doc: str,
    fetch: Callable[[C], list[Any]],
    columns: list[Column],
    *,
    header: bool = True,
) -> click.Command:
    """A listing as data: `command` (e.g. `appliance_command(user, "list")`) whose body prints
    `fetch(call)` as a table of `columns`, or with --json each row as a dict."""

    def body(call: C) -> None:
        call.table(fetch(call), columns, header=header)

    body.__doc__ = doc
    return command(body)


def show_command(
    command: Callable[[Callable[[C, str], None]], click.Command],
    doc: str,
    argument: str,
    fetch: Callable[[C, str], Any],
    line: Callable[[Any], str] | None = None,
) -> click.Command:
    """One record as data: `command` whose body takes ARGUMENT and prints the dataclass
    `fetch(call, argument)` as `field: value` lines (or as the one `line` given), or with --json
    as a dict."""

    def body(call: C, value: str) -> None:
        record = fetch(call, value)
        if line is None:
            call.emit_record(record)
        else:
            call.emit(dataclasses.asdict(record), lambda: click.echo(line(record)))

    body.__doc__ = doc
    return command(click.argument(argument)(_rename(body, argument)))


def _rename(body: Callable[[C, str], None], argument: str) -> Callable[..., None]:
    """`body` taking its second parameter under the name click gives ARGUMENT."""

    def renamed(call: C, **kwargs: str) -> None:
        body(call, kwargs[argument])

    renamed.__doc__ = body.__doc__
    return renamed
