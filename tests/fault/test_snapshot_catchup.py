"""A 3-member cluster with 10,000 keys snapshots, and a new member catches up from that snapshot,
with the Raft frame limit at its minimum (1 MiB): snapshots pass the transport hardening
(issue 11 item 4). Long: `make chaos`."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hsmnode.ops.devcluster import DevCluster, DevTimings
from hsmnode.replication import DUMP_FILE
from tests.integration.conftest import free_base_port
from tests.integration.helpers import converged, eventually, node_status

pytestmark = [pytest.mark.cluster, pytest.mark.chaos, pytest.mark.timeout(1200)]
KEYS = 10_000


def test_ten_thousand_keys_snapshot_and_a_new_member_catches_up(tmp_path: Path) -> None:
    cluster = DevCluster.create(
        tmp_path / "big",
        nodes=3,
        base_port=free_base_port(4),
        timings=DevTimings(compaction_min_entries=2000, max_frame_bytes=1024 * 1024),
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout=60)
        demo = cluster.bootstrap_demo()
        with cluster.app_client(timeout=30.0) as app:
            session = app.open_session(demo["partition"]["name"], demo["partition"]["co_password"], role="CO")
            started = time.monotonic()
            labels = [f"bulk-{i}" for i in range(KEYS)]
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        lambda label: session.generate_key(
                            label, "EC", "P-256", usage=["sign"], request_id=label
                        ),
                        labels,
                    )
                )
            created = time.monotonic() - started
            token = session.token
        ids = [m.id for m in cluster.members]
        converged(cluster, ids, timeout=120.0)
        for m in cluster.members:
            assert (m.data_dir / DUMP_FILE).exists(), f"{m.id} has not snapshotted"
        dump = max((m.data_dir / DUMP_FILE).stat().st_size for m in cluster.members)
        started = time.monotonic()
        joined = cluster.add_member(timeout=60.0)
        eventually(lambda: node_status(cluster, joined.id).ready, 180.0, f"{joined.id} caught up")
        converged(cluster, [m.id for m in cluster.members], timeout=180.0)
        caught_up = time.monotonic() - started
        # the joiner received the snapshot (it has not written one of its own: too few entries)
        assert (joined.data_dir / DUMP_FILE).exists()
        with cluster.app_client(joined.id, timeout=30.0) as one:
            keys = [k for k in one.resume_partition(token).list_keys() if k.label.startswith("bulk-")]
        assert len(keys) == KEYS
        print(
            f"{KEYS} keys created in {created:.1f}s; dump {dump / 2**20:.1f} MiB; new member caught up "
            f"from the snapshot in {caught_up:.1f}s with max_frame_bytes = 1 MiB"
        )
    finally:
        cluster.stop()
