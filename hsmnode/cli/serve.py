"""`hsmnode serve`: run one cluster member in the foreground."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

RESTART_PORT_WAIT = 30.0  # s the member restarted after a join waits for its ports


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The member's node.toml.")
@click.option(
    "--config-from-env",
    "from_env",
    is_flag=True,
    help="Derive the config from HSMNODE_* variables and mounted secrets (containers; see hsmnode/envconfig.py).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option(
    "--log-format",
    default=None,
    type=click.Choice(["text", "json"]),
    help="text lines or one JSON object per line (default: the config's [log] format, else text).",
)
@click.option(
    "--port-wait",
    default=0.0,
    type=float,
    hidden=True,  # the restart after a join passes it: a forked snapshot writer may hold the ports a while
    help="Seconds to wait for the gRPC and Raft ports to be free before giving up.",
)
def serve(
    config_path: str | None, from_env: bool, log_level: str, log_format: str | None, port_wait: float
) -> None:
    """Run one cluster member until SIGTERM or SIGINT."""
    from hsmnode.config import ConfigError, load_config
    from hsmnode.envconfig import config_from_env
    from hsmnode.node import Node, StartupError

    if (config_path is None) == (not from_env):
        click.echo("hsmnode serve: error: give exactly one of --config FILE and --config-from-env", err=True)
        sys.exit(2)
    try:
        config = config_from_env(os.environ) if from_env else load_config(str(config_path))
    except ConfigError as exc:
        click.echo(f"hsmnode serve: error: {exc}", err=True)
        sys.exit(2)
    from hsmnode.observability.logs import configure

    configure(log_level, log_format or config.log_format, config.node_id)
    from hsmnode.membership import apply_override

    config = apply_override(config)  # a join leaves the cluster's identity in the data dir
    # beside its config: how `hsmnode dev` and `hsmnode drill` find a member started by hand
    node = Node(
        config, pid_file=None if from_env else Path(str(config_path)).parent / "node.pid", port_wait=port_wait
    )
    try:
        code = node.run()
    except StartupError as exc:
        click.echo(f"hsmnode serve: error: {exc}", err=True)
        sys.exit(2)
    if node.restart_requested:
        # joined a cluster: start afresh as its member, in the same process (same pid)
        source = ["--config-from-env"] if from_env else ["--config", str(config_path)]
        os.execv(
            sys.executable,
            [
                *(sys.executable, "-m", "hsmnode", "serve", *source, "--log-level", log_level),
                *(("--log-format", log_format) if log_format else ()),
                # the ports this process held may stay taken a moment: by a snapshot writer it forked
                # (it inherits every socket, and finishes its dump), so the new image waits for them
                *("--port-wait", str(RESTART_PORT_WAIT)),
            ],
        )
    sys.exit(code)
