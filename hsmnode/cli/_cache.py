"""Connections and the session cache: the CLI keeps session tokens between commands in a file
beside the profile (mode 0600), so `login` and `session open` need a password once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hsmnode.client import HsmClient, Profile, ProfileError, default_profile_path, load_profile


def load_profile_for(profile: str | None) -> Profile:
    """The profile named by --profile / $HSMNODE_PROFILE / the default path."""
    return load_profile(profile or default_profile_path())


def connect(
    profile: str | None, endpoints: tuple[str, ...], identity: str = "admin", timeout: float = 5.0
) -> HsmClient:
    """A client of the profile's cluster: "admin" presents the admin certificate, "client" the default
    NTLS client certificate, any other name the profile's NTLS client of that name."""
    loaded = load_profile_for(profile)
    tls = loaded.tls if identity == "admin" else loaded.client_tls(None if identity == "client" else identity)
    # the profile's cluster id makes a member of another cluster refuse (an explicit --endpoint is
    # the operator's choice, e.g. a standalone node before it joins)
    return HsmClient(
        list(endpoints) or list(loaded.endpoints),
        tls,
        timeout=timeout,
        cluster_id="" if endpoints else loaded.cluster_id,
    )


def session_file(profile: str | None) -> Path:
    """Where the CLI caches session tokens between commands: beside the profile, mode 0600."""
    path = Path(profile) if profile else default_profile_path()
    return path.with_name(path.stem + ".sessions.json")


def load_sessions(profile: str | None) -> dict[str, Any]:
    """The cache: {"appliance": {token, user, role}, "partitions": {NAME: {token, role, client}}}."""
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
    """The cached appliance session's token; ProfileError (naming `hsmnode login`) without one."""
    token = load_sessions(profile).get("appliance", {}).get("token", "")
    if not token:
        raise ProfileError("no appliance session: log in first (hsmnode login USER)")
    return str(token)


def set_appliance_token(profile: str | None, token: str) -> None:
    """After `hsm login`/`hsm logout`: the same appliance session under its new token."""
    sessions = load_sessions(profile)
    sessions.setdefault("appliance", {})["token"] = token
    save_sessions(profile, sessions)


def cached_container(profile: str | None, name: str) -> dict[str, Any]:
    """The cached session on partition or keyring NAME: {token, role, client}; ProfileError without one."""
    cached: dict[str, Any] = load_sessions(profile).get("partitions", {}).get(name, {})
    if not cached.get("token", ""):
        raise ProfileError(f"no session on '{name}': open one first (hsmnode session open {name} --role ...)")
    return cached
