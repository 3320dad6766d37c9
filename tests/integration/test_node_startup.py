"""`hsmnode serve` refuses to start, naming the problem, on wrong configs, files, ports and data."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hsmnode.ops.devcluster import DevCluster
from tests.integration.conftest import free_base_port

pytestmark = pytest.mark.cluster


@pytest.fixture
def files(tmp_path: Path) -> DevCluster:
    """A 1-member cluster's files, not started."""
    return DevCluster.create(tmp_path / "c", nodes=1, base_port=free_base_port(1))


def serve(config: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hsmnode", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, GRPC_ENABLE_FORK_SUPPORT="false"),
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_node_refuses_the_data_dir_of_another_cluster(files: DevCluster) -> None:
    member = files.members[0]
    files.start()
    files.wait_for_leader()
    files.stop()
    assert (member.data_dir / "cluster_id").read_text().strip() == files.cluster_id
    edit(member.config_path, f'cluster_id = "{files.cluster_id}"', 'cluster_id = "c-someoneelse"')
    result = serve(member.config_path)
    assert result.returncode == 2
    assert f"belongs to cluster {files.cluster_id}" in result.stderr
    assert "c-someoneelse" in result.stderr


def test_node_refuses_raft_data_of_unknown_cluster(files: DevCluster) -> None:
    member = files.members[0]
    (member.data_dir / "raft.journal").write_bytes(b"\0" * 16)
    result = serve(member.config_path)
    assert result.returncode == 2
    assert "holds Raft data but no cluster_id file" in result.stderr


def test_unknown_config_key_is_named(files: DevCluster) -> None:
    member = files.members[0]
    edit(member.config_path, "[grpc]", "[grpc]\nlisten_port = 5")
    result = serve(member.config_path)
    assert result.returncode == 2
    assert "unknown key(s) grpc.listen_port" in result.stderr


def test_port_in_use_is_named(files: DevCluster) -> None:
    member = files.members[0]
    host, _, port = member.grpc.rpartition(":")
    with socket.socket() as blocker:
        blocker.bind((host, int(port)))
        blocker.listen()
        result = serve(member.config_path)
    assert result.returncode == 2
    assert f"cannot use gRPC address {member.grpc}" in result.stderr
    assert "in use" in result.stderr


def test_missing_certificate_is_named(files: DevCluster) -> None:
    member = files.members[0]
    (member.dir / "node.pem").unlink()
    result = serve(member.config_path)
    assert result.returncode == 2
    assert "tls.cert" in result.stderr and "node.pem" in result.stderr and "No such file" in result.stderr


def test_certificate_and_key_that_do_not_match_are_named(files: DevCluster) -> None:
    member = files.members[0]
    (member.dir / "node.key").write_bytes((files.root / "admin.key").read_bytes())
    result = serve(member.config_path)
    assert result.returncode == 2
    assert "the private key does not match the certificate" in result.stderr


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = serve(tmp_path / "nowhere.toml")
    assert result.returncode == 2
    assert "nowhere.toml does not exist" in result.stderr
