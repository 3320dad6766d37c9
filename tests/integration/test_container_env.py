"""`hsmnode serve --config-from-env` as a container runs it, without a container engine: one member in
a private mount namespace whose /etc/hosts names it (as a Service's DNS would), secrets from
`hsmnode deploy-secrets`, and `hsmnode health --from-env` (the image's health check) until SERVING."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hsmnode.client import HsmClient, Tls
from tests.integration.conftest import free_base_port

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None,
        reason="needs root and unshare (mount namespace)",
    ),
]

HSMNODE = [sys.executable, "-m", "hsmnode"]


def test_a_member_configured_from_its_environment_starts_and_reports_serving(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    made = subprocess.run(
        [*HSMNODE, "deploy-secrets", "--out", str(secrets), "--replicas", "1"], capture_output=True
    )
    assert made.returncode == 0, made.stderr
    port = free_base_port(1)
    env = dict(
        os.environ,
        HSMNODE_CLUSTER_ID="c-env-test",
        HSMNODE_REPLICAS="1",
        HSMNODE_POD_NAME="hsmnode-0",
        HSMNODE_GRPC_PORT=str(port),
        HSMNODE_RAFT_PORT=str(port + 100),
        HSMNODE_DATA_DIR=str(tmp_path / "volume" / "data"),
        HSMNODE_SECRETS_DIR=str(secrets),
        HSMNODE_REFLECTION="true",
        GRPC_ENABLE_FORK_SUPPORT="false",
    )
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 hsmnode-0\n")
    command = f"mount --bind {hosts} /etc/hosts && exec {sys.executable} -m hsmnode serve --config-from-env"
    log = (tmp_path / "member.log").open("wb")
    member = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", command], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run(
                [*HSMNODE, "health", "--from-env"], env=env, capture_output=True, text=True
            )
            if probe.returncode == 0:
                break
            assert member.poll() is None, (tmp_path / "member.log").read_text()
            assert time.monotonic() < deadline, probe.stdout + probe.stderr
            time.sleep(0.2)
        assert probe.stdout.strip() == f"127.0.0.1:{port}: SERVING"
        tls = Tls.from_files(secrets / "ca.pem", secrets / "admin.pem", secrets / "admin.key")
        with HsmClient([f"127.0.0.1:{port}"], tls, discover=False) as client:
            status = client.node_status()
        assert (status.id, status.cluster_id, status.address) == (
            "hsmnode-0",
            "c-env-test",
            f"hsmnode-0:{port}",
        )
        assert (tmp_path / "volume" / "data" / "cluster_id").read_text().strip() == "c-env-test"
    finally:
        member.send_signal(signal.SIGTERM)
        try:
            member.wait(15)
        except subprocess.TimeoutExpired:
            member.kill()
            member.wait(5)
        log.close()
    assert member.returncode == 0
