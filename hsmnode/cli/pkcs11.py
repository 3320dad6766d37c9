"""`hsmnode pkcs11 serve`: the PKCS#11 bridge for unmodified applications (through p11-kit-client.so)."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import click

from hsmnode.cli._cache import connect
from hsmnode.cli._command import reports_errors
from hsmnode.cli._options import profile_options
from hsmnode.cli._output import fail

CLIENT_MODULE = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"


def default_socket() -> Path:
    """$XDG_RUNTIME_DIR/hsmnode-pkcs11.sock, or /tmp/hsmnode-UID/hsmnode-pkcs11.sock without one."""
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/hsmnode-{os.getuid()}"
    return Path(runtime) / "hsmnode-pkcs11.sock"


@click.group()
def pkcs11() -> None:
    """PKCS#11 for unmodified applications, through p11-kit's client module."""


@pkcs11.command("serve")
@profile_options
@click.option(
    "--identity",
    default="client",
    show_default=True,
    help="The profile's NTLS client identity the bridge presents: its slots are the ones assigned to it.",
)
@click.option(
    "--socket", "socket_path", type=click.Path(dir_okay=False), default=None, help="Unix socket path."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=3600.0),
    default=5.0,
    show_default=True,
    help="Seconds per cluster call (with failover).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every refused call (CKR code and cause).")
@reports_errors
def serve(
    profile: str | None,
    endpoints: tuple[str, ...],
    identity: str,
    socket_path: str | None,
    timeout: float,
    verbose: bool,
) -> None:
    """Serve the cluster as a PKCS#11 token on a unix socket (mode 0600), in the foreground.

    Applications load p11-kit-client.so (Debian: p11-kit-modules) with the printed
    P11_KIT_SERVER_ADDRESS; every call goes to the cluster through the HA SDK, so a member
    can die while they keep signing. Stop with Ctrl-C.
    """
    from hsmnode.pkcs11.bridge import Bridge, BridgeError
    from hsmnode.pkcs11.token import Token

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("hsmnode.pkcs11").setLevel(logging.DEBUG if verbose else logging.INFO)
    client = connect(profile, endpoints, identity=identity, timeout=timeout)
    path = Path(socket_path) if socket_path else default_socket()
    bridge = Bridge(Token(client), path)
    try:
        bridge.start()
    except BridgeError as exc:  # the socket is taken or cannot be made: one line, as every CLI error
        client.close()
        fail(False, "UNAVAILABLE", str(exc))
    click.echo(f"export P11_KIT_SERVER_ADDRESS={bridge.address}", nl=True)
    click.echo(
        f"# then load {CLIENT_MODULE}, e.g. pkcs11-tool --module {CLIENT_MODULE} --list-slots", err=True
    )
    signal.signal(signal.SIGTERM, lambda *_: bridge.stop())
    try:
        bridge.wait()
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()
        client.close()
