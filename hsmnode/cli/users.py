"""`hsmnode login|logout`, `hsmnode user ...`, `hsmnode role ...`: appliance users and roles."""

from __future__ import annotations

import dataclasses

import click

from hsmnode.cli._common import (
    appliance_session,
    appliance_token,
    connect,
    emit,
    emit_record,
    json_option,
    load_sessions,
    password_option,
    profile_options,
    reports_errors,
    save_sessions,
)


@click.command()
@click.argument("user")
@password_option()
@password_option(
    "--new-password", what="New password (required when the current one has expired)", required=False
)
@profile_options
@json_option
@reports_errors
def login(
    user: str,
    password: str,
    new_password: str,
    profile: str | None,
    endpoints: tuple[str, ...],
    as_json: bool,
) -> None:
    """Log in as an appliance user; the session is cached for the following commands."""
    with connect(profile, endpoints) as client:
        session = client.login(user, password, new_password=new_password)
    sessions = load_sessions(profile)
    sessions["appliance"] = {"token": session.token, "user": session.subject, "role": session.role}
    save_sessions(profile, sessions)
    emit(
        as_json,
        {"user": session.subject, "role": session.role, "expires_ms": session.expires_ms},
        lambda: click.echo(f"logged in as {session.subject} (role {session.role})"),
    )


@click.command()
@profile_options
@reports_errors
def logout(profile: str | None, endpoints: tuple[str, ...]) -> None:
    """End the cached appliance session on every member."""
    token = appliance_token(profile)
    with connect(profile, endpoints) as client:
        client.resume(token).logout()
    sessions = load_sessions(profile)
    sessions.pop("appliance", None)
    save_sessions(profile, sessions)
    click.echo("logged out")


@click.group()
def user() -> None:
    """Appliance users (admin adds, enables, disables, deletes and resets them)."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, help="admin, operator, monitor, audit or a custom role.")
@password_option(what="Initial password", env="HSMNODE_INITIAL_PASSWORD")
@profile_options
@reports_errors
def user_add(name: str, role: str, password: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Add a user; it must change the initial password at first login."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        admin.add_user(name, role=role, password=password)
    click.echo(f"user {name} added (role {role}); it must change its password at first login")


@user.command("list")
@profile_options
@json_option
@reports_errors
def user_list(profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Every appliance user."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        users = admin.list_users()

    def human() -> None:
        click.echo(f"{'USER':<20} {'ROLE':<14} {'ENABLED':<8} {'LOCKED':<7} MUST-CHANGE")
        for u in users:
            click.echo(
                f"{u.name:<20} {u.role:<14} {str(u.enabled):<8} {str(u.locked):<7} {u.must_change_password}"
            )

    emit(as_json, [dataclasses.asdict(u) for u in users], human)


@user.command("show")
@click.argument("name")
@profile_options
@json_option
@reports_errors
def user_show(name: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """One appliance user."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        u = admin.show_user(name)
    emit_record(as_json, u)


@user.command("enable")
@click.argument("name")
@profile_options
@reports_errors
def user_enable(name: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Enable a user."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        admin.set_user_enabled(name, True)
    click.echo(f"user {name} enabled")


@user.command("disable")
@click.argument("name")
@profile_options
@reports_errors
def user_disable(name: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Disable a user (its sessions end on every member)."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        admin.set_user_enabled(name, False)
    click.echo(f"user {name} disabled")


@user.command("delete")
@click.argument("name")
@profile_options
@reports_errors
def user_delete(name: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Delete a user (default accounts can only be disabled)."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        admin.delete_user(name)
    click.echo(f"user {name} deleted")


@user.command("passwd")
@click.argument("name")
@password_option(what="New password", env="HSMNODE_NEW_PASSWORD")
@profile_options
@reports_errors
def user_passwd(name: str, password: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """admin: reset NAME's password (unlocks it; NAME must change it at next login).

    To change your own password: hsmnode login USER --new-password NEW.
    """
    client, admin = appliance_session(profile, endpoints)
    with client:
        admin.set_user_password(name, password)
    click.echo(f"password of {name} reset; it must be changed at next login")


@click.group()
def role() -> None:
    """Appliance roles: the four defaults and custom allow-lists of commands."""


@role.command("add")
@click.argument("name")
@click.option("--command", "commands", multiple=True, required=True, help="An allowed command (repeat).")
@profile_options
@reports_errors
def role_add(name: str, commands: tuple[str, ...], profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Add a custom role allowing exactly the given commands (e.g. --command user.list)."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        admin.add_role(name, list(commands))
    click.echo(f"role {name} added: {', '.join(sorted(commands))}")


@role.command("list")
@profile_options
@json_option
@reports_errors
def role_list(profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Default and custom roles with their commands."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        roles = admin.list_roles()

    def human() -> None:
        for r in roles:
            click.echo(f"{r.name}{' (default)' if r.builtin else ''}: {', '.join(r.commands)}")

    emit(as_json, [dataclasses.asdict(r) for r in roles], human)


@role.command("show")
@click.argument("name")
@profile_options
@json_option
@reports_errors
def role_show(name: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """One role and its commands."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        r = admin.show_role(name)
    emit(as_json, dataclasses.asdict(r), lambda: click.echo(f"{r.name}: {', '.join(r.commands)}"))


@role.command("delete")
@click.argument("name")
@profile_options
@reports_errors
def role_delete(name: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Delete a custom role that no user holds."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        admin.delete_role(name)
    click.echo(f"role {name} deleted")
