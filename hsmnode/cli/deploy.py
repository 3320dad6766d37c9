"""`hsmnode health` (a container's health check) and `hsmnode deploy-secrets` (the files the
container deployments in deploy/ mount as secrets)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from hsmnode.cli._options import check_endpoint
from hsmnode.envconfig import DEFAULT_GRPC_PORT, SECRET_FILES, EnvConfigError, config_from_env, member_hosts


@click.command()
@click.option(
    "--endpoint",
    callback=check_endpoint,
    metavar="HOST:PORT",
    help="The member to ask (with --ca, --cert, --key).",
)
@click.option("--ca", type=click.Path(exists=True, dir_okay=False))
@click.option("--cert", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--from-env",
    "from_env",
    is_flag=True,
    help="Ask this container's member, as `serve --config-from-env` runs it.",
)
@click.option("--timeout", default=3.0, show_default=True, help="Seconds.")
def health(
    endpoint: str | None, ca: str | None, cert: str | None, key: str | None, from_env: bool, timeout: float
) -> None:
    """Exit 0 when the member's grpc.health.v1 status is SERVING (it sees a leader with a quorum),
    1 otherwise. The Dockerfile's HEALTHCHECK and the StatefulSet's readiness probe run it."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    options: list[tuple[str, str]] = []
    if from_env:
        try:
            config = config_from_env(os.environ)
        except EnvConfigError as exc:
            click.echo(f"hsmnode health: error: {exc}", err=True)
            sys.exit(1)
        port = config.grpc_listen.rpartition(":")[2]
        endpoint = f"127.0.0.1:{port}"
        ca, cert, key = str(config.tls_ca), str(config.tls_cert), str(config.tls_key)
        # the member certificate names the member, not 127.0.0.1's other names
        options.append(("grpc.ssl_target_name_override", config.grpc_advertise.rpartition(":")[0]))
    if not (endpoint and ca and cert and key):
        click.echo(
            "hsmnode health: error: give --from-env, or --endpoint with --ca, --cert and --key", err=True
        )
        sys.exit(2)
    creds = grpc.ssl_channel_credentials(
        Path(ca).read_bytes(), Path(key).read_bytes(), Path(cert).read_bytes()
    )
    with grpc.secure_channel(endpoint, creds, options=options) as channel:
        try:
            # types-grpcio-health-checking declares the stub without its methods
            stub: Any = health_pb2_grpc.HealthStub(channel)
            answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        except grpc.RpcError as exc:
            status = f"unreachable ({exc.code().name}: {exc.details()})"
    click.echo(f"{endpoint}: {status}")
    sys.exit(0 if status == "SERVING" else 1)


@click.command("deploy-secrets")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="A new directory.")
@click.option("--replicas", default=3, show_default=True, type=click.IntRange(1, 9))
@click.option(
    "--name", "set_name", default="hsmnode", show_default=True, help="The StatefulSet / compose prefix."
)
@click.option("--service", default="hsmnode", show_default=True, help="The headless Service.")
@click.option("--namespace", default="default", show_default=True)
@click.option("--grpc-port", default=DEFAULT_GRPC_PORT, show_default=True, help="For the admin profile.")
def deploy_secrets(
    out: str, replicas: int, set_name: str, service: str, namespace: str, grpc_port: int
) -> None:
    """Write a new cluster's secret files for deploy/ (compose and Kubernetes): the SMK, the Raft
    secret, a CA, one member certificate naming every member, an admin certificate and profile."""
    from hsmnode import crypto
    from hsmnode.crypto.keys import new_smk

    root = Path(out)
    if root.exists() and any(root.iterdir()):
        click.echo(f"hsmnode deploy-secrets: error: {root} is not empty: name a new directory", err=True)
        sys.exit(2)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    cluster_ca = crypto.create_ca(f"hsmnode {set_name} CA")
    member = crypto.issue_certificate(
        cluster_ca, set_name, hosts=member_hosts(set_name, replicas, service, namespace), server=True
    )
    admin = crypto.issue_certificate(cluster_ca, "admin")
    files = {
        "smk.key": (new_smk().hex() + "\n").encode(),
        "raft.secret": (crypto.random_secret() + "\n").encode(),
        "ca.pem": cluster_ca.cert_pem,
        "node.pem": member.cert_pem,
        "node.key": member.key_pem,
        "ca.key": cluster_ca.key_pem,
        "admin.pem": admin.cert_pem,
        "admin.key": admin.key_pem,
    }
    assert set(SECRET_FILES) <= set(files)
    files["profile.json"] = (
        json.dumps(
            {
                "endpoints": [f"127.0.0.1:{grpc_port + i}" for i in range(replicas)],
                "ca": "ca.pem",
                "cert": "admin.pem",
                "key": "admin.key",
            },
            indent=2,
        )
        + "\n"
    ).encode()
    for name, data in files.items():
        fd = os.open(root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    click.echo(f"wrote {', '.join(sorted(files))} to {root}")
    click.echo(f"mounted as secrets: {', '.join(SECRET_FILES)} (keep ca.key and admin.key off the cluster)")
