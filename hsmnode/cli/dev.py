"""`hsmnode dev`: a local cluster in the foreground (hsmnode.ops.devcluster), or a standalone node."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from hsmnode.cli._output import Column, table
from hsmnode.client import ClusterStatus
from hsmnode.ops.devcluster import DEFAULT_BASE_PORT, DevCluster, DevClusterError, DevTimings, ports_free


def _fail(exc: Exception, code: int) -> NoReturn:
    """`hsmnode dev: error: ...` on stderr and exit `code` (2: bad arguments or directory; 1: the
    cluster did not come up)."""
    click.echo(f"hsmnode dev: error: {exc}", err=True)
    sys.exit(code)


class StopRequest:
    """Set by SIGINT (Ctrl-C) or SIGTERM: the foreground loop's signal to stop.

    A plain flag, no lock: a `threading.Event` set from a signal handler deadlocks when the signal is
    handled while the main thread holds the Event's own lock (inside `Event.wait`, right after a timed
    wait ran out), which a busy machine makes likely: `hsmnode dev` then hung on SIGTERM with one
    thread in a futex wait and its members left running."""

    def __init__(self) -> None:
        self.requested = False

    def set(self) -> None:
        self.requested = True

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, in 50 ms steps that end once a stop is requested; whether one was."""
        deadline = time.monotonic() + seconds
        while not self.requested and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.requested


def _stop_on_signals() -> StopRequest:
    """A stop request that SIGINT (Ctrl-C) or SIGTERM sets."""
    stop = StopRequest()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@click.command()
@click.option("--dir", "root", default="hsmnode-dev", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--nodes",
    default=None,
    type=click.IntRange(1, 9),
    help="Members of a new cluster (default 3); on an existing DIR, grow or shrink it to N (one membership change at a time).",
)
@click.option(
    "--base-port",
    default=None,
    type=int,
    help=f"First gRPC port of a new cluster (default {DEFAULT_BASE_PORT}).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the cluster description as JSON once it is ready."
)
@click.option(
    "--log-format",
    "log_format",
    default=None,
    type=click.Choice(["text", "json"]),
    help="Members' log lines in DIR/<member>/node.log: text (default) or one JSON object per line. "
    "New clusters only ([log] format in each node.toml).",
)
@click.option(
    "--standalone",
    metavar="NAME",
    default=None,
    help="Instead: start a standalone node NAME (its own cluster of one, certificate from DIR's CA, "
    "gRPC on --base-port, Raft on --base-port+100), ready for `hsmnode cluster join`.",
)
def dev(
    root: str,
    nodes: int | None,
    base_port: int | None,
    as_json: bool,
    log_format: str | None,
    standalone: str | None,
) -> None:
    """Create (or reuse) a local cluster in DIR, start its members and stay in the foreground.

    Ctrl-C or SIGTERM stops every member (also one restarted by hand with `hsmnode serve
    --config DIR/<member>/node.toml`). Running it again on the same DIR brings the same
    cluster back with its state; while its members still run, it is refused (exit 2).
    """
    path = Path(root)
    if standalone is not None:
        _standalone(path, standalone, base_port, as_json)
        return
    try:
        if (path / "cluster.json").exists():
            cluster = DevCluster.open(path)
            if nodes is not None and not 1 <= nodes <= 9:
                raise DevClusterError("--nodes must be between 1 and 9")
            if base_port is not None and cluster.members[0].grpc != f"127.0.0.1:{base_port}":
                raise DevClusterError(
                    f"{cluster.root} holds a cluster on {cluster.members[0].grpc}; --base-port applies to new clusters only"
                )
            running = {m.id: pid for m in cluster.members if (pid := cluster.pid_of(m.id)) is not None}
            if running:
                raise DevClusterError(
                    f"{cluster.root} is already running: "
                    + ", ".join(f"{mid} (pid {pid})" for mid, pid in running.items())
                    + "; use it as it is, or stop it first (Ctrl-C where it runs, or kill those pids)"
                )
            click.echo(f"reusing cluster {cluster.cluster_id} in {cluster.root}", err=True)
        else:
            cluster = DevCluster.create(
                path,
                nodes=nodes or 3,
                base_port=base_port or DEFAULT_BASE_PORT,
                timings=DevTimings(log_format=log_format or "text"),
                metrics=True,
            )
            click.echo(f"created cluster {cluster.cluster_id} in {cluster.root}", err=True)
    except DevClusterError as exc:
        _fail(exc, 2)

    stop = _stop_on_signals()
    cluster.start()
    try:
        try:
            status = cluster.wait_for_leader(timeout=30.0)
        except DevClusterError as exc:
            _fail(exc, 1)
        if nodes is not None and cluster.demo() is not None and nodes != len(cluster.members):
            # an existing cluster grows or shrinks to --nodes, one membership change at a time
            while len(cluster.members) < nodes:
                added = cluster.add_member()
                metrics = (
                    f"metrics http://{added.metrics}/metrics" if added.metrics else "metrics off: port taken"
                )
                click.echo(f"added member {added.id} ({added.grpc}, {metrics})", err=True)
            while len(cluster.members) > nodes:
                leaving = cluster.members[-1].id
                cluster.remove_member(leaving)
                click.echo(f"removed member {leaving}", err=True)
            status = cluster.wait_for_leader(timeout=30.0)
        restored = cluster.restored_from()
        if restored is not None and cluster.demo() is None:
            # a restored cluster has its users and keys already: no demo, print how to reach it
            if as_json:
                click.echo(json.dumps({**cluster.describe(status), "restored_from": restored}, indent=2))
            else:
                _print_restored(cluster, status, restored)
        else:
            if cluster.demo() is None:
                click.echo("setting up the demo (HSM, partition 'demo', demo client)...", err=True)
            try:
                demo = cluster.bootstrap_demo()
            except Exception as exc:  # any SDK or I/O failure: say what to do
                click.echo(
                    f"hsmnode dev: error: the demo set-up failed ({exc}); stop, delete {cluster.root} and run again",
                    err=True,
                )
                sys.exit(1)
            if as_json:
                click.echo(json.dumps({**cluster.describe(status), "demo": demo}, indent=2))
            else:
                _print_ready(cluster, status, demo)
        exited: set[str] = set()
        while not stop.wait(0.5):
            for m in cluster.members:
                code = cluster.exit_code(m.id)
                if code is not None and m.id not in exited:
                    exited.add(m.id)
                    click.echo(f"member {m.id} exited with code {code} (log: {m.log_path})", err=True)
    finally:
        click.echo("stopping members...", err=True)
        cluster.stop()
        click.echo("stopped.", err=True)


def _print_ready(cluster: DevCluster, status: ClusterStatus, demo: dict[str, Any]) -> None:
    click.echo(f"cluster {status.cluster_id} is ready: leader {status.leader}, term {status.term}")
    roles = {m.id: m.role for m in status.members}
    table(
        cluster.members,
        [
            Column("MEMBER", "id", 8),
            Column("GRPC", "grpc", 18),
            Column("ROLE", lambda m: roles.get(m.id, "?"), 10),
            Column("METRICS", lambda m: f"http://{m.metrics}/metrics" if m.metrics else "off", 34),
            Column("LOG", "log_path"),
        ],
    )
    users, hsm, part = demo["users"], demo["hsm"], demo["partition"]
    cpart, ring = demo["cluster_partition"], demo["keyring"]
    lines = [
        "",
        f'Demo credentials (dev only; also under "demo" in {cluster.profile_path}):',
        f"  appliance users  admin {users['admin']}   operator {users['operator']}",
        f"                   monitor {users['monitor']}   audit {users['audit']}",
        f"  HSM SO           {hsm['so_password']}      Auditor {hsm['auditor_password']}",
        f"  partition {part['name']}   PO {part['po_password']}   CO {part['co_password']}   CU {part['cu_password']}",
        f"  NTLS client      {demo['client']} ({cluster.root / 'demo-client.pem'}), assigned to {part['name']}",
        f"  cluster SO       PO of partition {cpart['name']}: {cpart['po_password']} (NTLS client {cpart['client']})",
        f"  keyring {ring['label']}  KRSO {ring['krso_password']}   KRCO {ring['krco_password']} (assigned to {demo['client']})",
        "",
        "Use it from another terminal:",
        f"  export HSMNODE_PROFILE={cluster.profile_path}",
        "  .venv/bin/hsmnode cluster status",
        "  .venv/bin/hsmnode login admin            (asks for the password; or --password-file FILE, --password-stdin)",
        "  .venv/bin/hsmnode user list",
        f"  .venv/bin/hsmnode session open {part['name']} --role co   (asks for the CO password)",
        f"  .venv/bin/hsmnode key generate sig1 --type EC --size P-256 --usage sign --usage verify --on {part['name']}",
        f"  echo hello | .venv/bin/hsmnode crypto sign sig1 --on {part['name']} --out sig.bin",
        "PKCS#11 applications (pkcs11-tool, python-pkcs11, OpenSSL...): start the bridge in a third terminal,",
        f"  .venv/bin/hsmnode pkcs11 serve --profile {cluster.profile_path}",
        "  then export the P11_KIT_SERVER_ADDRESS it prints and load /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
        f"  (token {part['name']}, user PIN = the CO password; see README, PKCS#11)",
        "Ctrl-C stops every member; `make run` again brings the same cluster back.",
    ]
    for line in lines:
        click.echo(line)


def _print_restored(cluster: DevCluster, status: ClusterStatus, restored: dict[str, Any]) -> None:
    click.echo(
        f"cluster {status.cluster_id} is ready: leader {status.leader}, term {status.term}; restored from "
        f"cluster {restored['cluster_id']} at index {restored['index']} ({restored['backup']})"
    )
    table(
        cluster.members,
        [Column("MEMBER", "id", 8), Column("GRPC", "grpc", 18), Column("LOG", "log_path")],
        header=False,
        indent="  ",
    )
    click.echo("Users log in with their passwords as before; the admin certificate is new:")
    click.echo(f"  export HSMNODE_PROFILE={cluster.profile_path}")
    click.echo("  .venv/bin/hsmnode login admin")
    click.echo("Ctrl-C stops every member.")


def _standalone(path: Path, name: str, base_port: int | None, as_json: bool) -> None:
    """A node of its own (admin's factory password: PASSWORD) for a join rehearsal; foreground."""
    try:
        if not (path / "cluster.json").exists():
            raise DevClusterError(f"{path} holds no dev cluster: run `hsmnode dev --dir {path}` first")
        if base_port is None:
            raise DevClusterError("--standalone needs --base-port (its gRPC port; Raft on port+100)")
        cluster = DevCluster.open(path)
        if (cluster.root / name).exists():
            raise DevClusterError(f"{cluster.root / name} exists: pick another NAME or delete it")
        if not ports_free([base_port, base_port + 100]):
            raise DevClusterError(f"port {base_port} or {base_port + 100} is in use")
    except DevClusterError as exc:
        _fail(exc, 2)
    stop = _stop_on_signals()
    try:
        node = cluster.make_standalone(name, base_port, base_port + 100)
    except DevClusterError as exc:
        _fail(exc, 1)
    try:
        described = {
            "id": node.id,
            "address": node.grpc,
            "raft_address": node.raft,
            "data_dir": str(node.data_dir),
            "log": str(node.log_path),
            "admin_password": "PASSWORD (factory; change it at first login)",
        }
        if as_json:
            click.echo(json.dumps(described, indent=2))
        else:
            click.echo(
                f"standalone node {node.id} ready on {node.grpc} (Raft {node.raft}); log {node.log_path}"
            )
            click.echo(
                "admin's factory password is PASSWORD: hsmnode login admin --endpoint ... --new-password ..."
            )
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        click.echo("stopping the node...", err=True)
        cluster.stop_process(node)
