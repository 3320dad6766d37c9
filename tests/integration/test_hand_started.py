"""A member started by hand (`hsmnode serve --config`) is found through the pid file it writes:
`hsmnode dev` refuses to start a second copy of a running cluster, and stopping the dev cluster
(what Ctrl-C of `hsmnode dev` does) stops that member too. A drill that finds no process to kill
says so and fails instead of reporting a kill that never happened."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hsmnode.ops.devcluster import DevCluster
from hsmnode.ops.drill import Drill, DrillError
from tests.integration.conftest import free_base_port

pytestmark = pytest.mark.cluster

HSMNODE = [sys.executable, "-m", "hsmnode"]


def wait_for(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_member_started_by_hand_is_found_refused_twice_and_stopped_with_the_cluster(tmp_path: Path) -> None:
    root = tmp_path / "c"  # short: the console socket path must stay under 107 bytes
    cluster = DevCluster.create(root, nodes=1, base_port=free_base_port(1))
    log = open(tmp_path / "hand.log", "ab")  # noqa: SIM115 - the child writes it
    # as a user would: from the cluster's directory, naming the config relative to it
    hand = subprocess.Popen(
        [*HSMNODE, "serve", "--config", "node1/node.toml"],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, GRPC_ENABLE_FORK_SUPPORT="false"),
        start_new_session=True,
    )
    log.close()
    try:
        assert wait_for(lambda: cluster.pid_of("node1") == hand.pid, 60), (tmp_path / "hand.log").read_text()

        second = subprocess.run(
            [*HSMNODE, "dev", "--dir", str(root)], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2, second.stderr
        assert "already running" in second.stderr and f"node1 (pid {hand.pid})" in second.stderr
        assert hand.poll() is None, "the refused second start disturbed the running member"
        assert int((root / "node1" / "node.pid").read_text()) == hand.pid

        DevCluster.open(root).stop()  # what Ctrl-C of `hsmnode dev` runs
        hand.wait(30)
    finally:
        if hand.poll() is None:
            hand.kill()
            hand.wait(10)


def test_a_drill_that_finds_no_process_to_kill_fails_saying_nothing_was_killed() -> None:
    said: list[str] = []
    drill = Drill.__new__(Drill)
    drill.events, drill._t0 = [], time.monotonic()
    drill.local = SimpleNamespace(pid_of=lambda member_id: None)
    drill.o = SimpleNamespace(progress=said.append)
    with pytest.raises(DrillError, match="cannot kill member node2: .* nothing was killed"):
        drill._fail("node2")
    assert not any("SIGKILL" in line for line in said)
