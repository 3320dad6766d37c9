"""Shared CLI plumbing: profile option, JSON/human output, error reporting."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
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


def connect(profile: str | None, endpoints: tuple[str, ...]) -> HsmClient:
    loaded = load_profile(profile or default_profile_path())
    return HsmClient(list(endpoints) or list(loaded.endpoints), loaded.tls)


def emit(as_json: bool, data: Any, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        human()


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
