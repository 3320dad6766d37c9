"""DevCluster.pid_of: which live process is a member (drill and `hsmnode dev` kill and restart by it)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hsmnode.ops.devcluster import DevCluster
from hsmnode.ops.devfiles import DevMember

SLEEPER = "import time; time.sleep(60)"


@pytest.fixture
def cluster(tmp_path: Path) -> DevCluster:
    member = DevMember("node1", "127.0.0.1:1", "127.0.0.1:2", tmp_path / "node1")
    member.dir.mkdir()
    member.config_path.write_text("")
    return DevCluster(tmp_path, "c", [member])


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait(10)


def _start(procs: list[subprocess.Popen[bytes]], cwd: Path, *config: str) -> int:
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, *config], cwd=cwd)
    procs.append(proc)
    deadline = time.monotonic() + 10
    while b"--config" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():  # until it has exec'd
        assert time.monotonic() < deadline, "the process never showed its arguments"
        time.sleep(0.01)
    return proc.pid


@pytest.mark.parametrize("form", ["absolute", "relative", "equals"])
def test_a_member_started_by_hand_is_found_whatever_its_config_path_looks_like(
    cluster: DevCluster, started: list[subprocess.Popen[bytes]], form: str
) -> None:
    member = cluster.member("node1")
    cwd = cluster.root
    config = {
        "absolute": ["--config", str(member.config_path)],
        "relative": ["--config", "node1/node.toml"],  # `hsmnode serve --config node1/node.toml` from the root
        "equals": ["--config=./node1/../node1/node.toml"],
    }[form]
    pid = _start(started, cwd, *config)
    (member.dir / "node.pid").write_text(str(pid))
    assert cluster.pid_of("node1") == pid


def test_a_pid_file_naming_another_process_is_no_member(
    cluster: DevCluster, started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    member = cluster.member("node1")
    other = tmp_path / "other"
    other.mkdir()
    (other / "node.toml").write_text("")
    pid = _start(started, other, "--config", "node.toml")  # another member's config, relative to its dir
    (member.dir / "node.pid").write_text(str(pid))
    assert cluster.pid_of("node1") is None
    (member.dir / "node.pid").write_text("not a pid")
    assert cluster.pid_of("node1") is None
