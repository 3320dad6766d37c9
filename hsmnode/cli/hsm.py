"""`hsmnode hsm ...`: the HSM, its SO and Auditor roles, its policies (in the appliance session)."""

from __future__ import annotations

import click

from hsmnode.cli._cache import set_appliance_token
from hsmnode.cli._command import ApplianceCall, appliance_command
from hsmnode.cli._options import password_option


@click.group()
def hsm() -> None:
    """The HSM: initialization, its SO and Auditor roles, policies."""


@appliance_command(hsm, "init")
@click.option("--label", required=True)
@password_option("--so-password", what="SO password")
def hsm_init(call: ApplianceCall, label: str, so_password: str) -> None:
    """admin: initialize the HSM and set the SO password (on an initialized HSM, log in as SO first: it zeroizes)."""
    destroyed = call.session.init_hsm(label, so_password)
    call.emit(
        {"label": label, "destroyed_partitions": destroyed},
        lambda: click.echo(
            f"HSM '{label}' initialized" + (f"; {destroyed} partition(s) destroyed" if destroyed else "")
        ),
    )


@appliance_command(hsm, "show")
def hsm_show(call: ApplianceCall) -> None:
    """HSM state and policies."""
    call.emit_record(call.session.show_hsm())


@appliance_command(hsm, "login", json=False)
@click.option(
    "--auditor", is_flag=True, help="Take on the Auditor role (as the audit user) instead of the SO."
)
@password_option(what="HSM role password", env="HSMNODE_HSM_PASSWORD")
def hsm_login(call: ApplianceCall, auditor: bool, password: str) -> None:
    """Take on the HSM SO (or Auditor) role in the cached appliance session."""
    elevated = call.session.hsm_login(password, role="AU" if auditor else "SO")
    set_appliance_token(call.profile, elevated.token)
    click.echo(f"logged in to the HSM {'Auditor' if auditor else 'SO'} role")


@appliance_command(hsm, "logout", json=False)
def hsm_logout(call: ApplianceCall) -> None:
    """Give up the HSM role; the appliance session goes on."""
    set_appliance_token(call.profile, call.session.leave_role().token)
    click.echo("left the HSM role")


@appliance_command(hsm, "auditor-init", json=False)
@password_option(what="Auditor password", env="HSMNODE_AUDITOR_PASSWORD")
def hsm_auditor_init(call: ApplianceCall, password: str) -> None:
    """audit user: initialize the HSM Auditor role."""
    call.session.init_auditor(password)
    click.echo("Auditor initialized")


@appliance_command(hsm, "policy", json=False)
@click.argument("name")
@click.argument("value", type=click.Choice(["on", "off"]))
def hsm_policy(call: ApplianceCall, name: str, value: str) -> None:
    """SO: set an HSM policy (po_can_reset_co)."""
    call.session.set_hsm_policy(name, value == "on")
    click.echo(f"HSM policy {name} = {value}")
