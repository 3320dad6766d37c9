"""node.toml: valid configs load; every wrong key, type or value is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsmnode.config import ConfigError, load_config

VALID = """
[node]
id = "node1"
cluster_id = "c-1"
data_dir = "data"

[grpc]
listen = "127.0.0.1:7001"

[raft]
address = "127.0.0.1:7101"
password_file = "raft.secret"

[tls]
ca = "ca.pem"
cert = "node.pem"
key = "node.key"

[[peers]]
id = "node2"
raft = "127.0.0.1:7102"
grpc = "127.0.0.1:7002"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_valid_config_loads_with_defaults_and_resolved_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID))
    assert cfg.node_id == "node1" and cfg.cluster_id == "c-1"
    assert cfg.data_dir == (tmp_path / "data").resolve()
    assert cfg.grpc_advertise == "127.0.0.1:7001"
    assert [p.id for p in cfg.peers] == ["node2"]
    assert cfg.timings.election_timeout_min == 0.5 and not cfg.fault_injection


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('id = "node1"', 'id = "node1"\ncolour = "red"', "unknown key(s) node.colour"),
        ("[tls]", "[tsl]\n[tls]", "unknown section(s) tsl"),
        ('cluster_id = "c-1"\n', "", "missing required key node.cluster_id"),
        ('listen = "127.0.0.1:7001"', "listen = 7001", "grpc.listen must be str"),
        ('listen = "127.0.0.1:7001"', 'listen = "localhost"', "grpc.listen must be host:port"),
        ('listen = "127.0.0.1:7001"', 'listen = ""', "grpc.listen must not be empty"),
        (
            'password_file = "raft.secret"',
            'password_file = "raft.secret"\nelection_timeout_min = 0.1',
            "must exceed 3 x",
        ),
        (
            'password_file = "raft.secret"',
            'password_file = "raft.secret"\nelection_timeout_max = 0.1',
            "election_timeout_max must exceed",
        ),
        (
            'password_file = "raft.secret"',
            'password_file = "raft.secret"\nheartbeat_interval = true',
            "must not be a boolean",
        ),
        ('id = "node2"', 'id = "node1"', "member ids must be unique"),
        ('raft = "127.0.0.1:7102"', 'raft = "127.0.0.1:7101"', "raft addresses must be unique"),
        (
            'grpc = "127.0.0.1:7002"',
            'grpc = "127.0.0.1:7002"\nweight = 3',
            "peers[0] must have exactly the keys",
        ),
        ("[node]", "node = 1\n[nodes]", "unknown section"),
    ],
)
def test_wrong_config_is_refused_naming_the_problem(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in VALID
    with pytest.raises(ConfigError, match=None) as info:
        load_config(write(tmp_path, VALID.replace(old, new, 1)))
    assert message in str(info.value)
    assert str(tmp_path / "node.toml") in str(info.value)


def test_missing_file_and_bad_toml_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[node\n"))


def test_short_or_missing_raft_password_is_refused(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID))
    with pytest.raises(ConfigError, match="raft.password_file .*No such file"):
        cfg.raft_password()
    (tmp_path / "raft.secret").write_text("short")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        cfg.raft_password()


def test_reflection_and_scheduled_backups_are_off_unless_configured(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID))
    assert cfg.reflection is False
    assert cfg.backup.interval == 0 and cfg.backup.dir is None
    on = load_config(
        write(
            tmp_path,
            VALID + '\n[server]\nreflection = true\n\n[backup]\ninterval = 3600\nkeep = 3\ndir = "bk"\n',
        )
    )
    assert on.reflection is True and on.switch_interval_ms is None
    assert (
        load_config(write(tmp_path, VALID + "\n[server]\nswitch_interval_ms = 1\n")).switch_interval_ms == 1.0
    )
    assert (on.backup.interval, on.backup.keep, on.backup.dir) == (3600.0, 3, (tmp_path / "bk").resolve())


@pytest.mark.parametrize(
    "extra, message",
    [
        ("[server]\nreflection = 1\n", "server.reflection must be bool"),
        ("[server]\nswitch_interval_ms = 0\n", "server.switch_interval_ms must be 0.1-100 ms, got 0"),
        ('[server]\nswitch_interval_ms = "1"\n', "server.switch_interval_ms must be a number"),
        ("[backup]\ninterval = -5\n", "backup.interval must be >= 0 seconds"),
        ("[backup]\nkeep = 0\n", "backup.keep must be at least 1"),
        ("[backup]\nevery = 5\n", "unknown key(s) backup.every"),
    ],
)
def test_bad_server_and_backup_settings_are_named(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, VALID + "\n" + extra))


RAFT = 'password_file = "raft.secret"'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "lease = 1.5",
            r"raft.lease \(1.5s\) cannot hold: it must be at least 2 x raft.election_timeout_max = 2s",
        ),
        (
            "heartbeat_interval = 0.4\nelection_timeout_min = 1.5\nelection_timeout_max = 1.6\nlease = 3.1",
            r"raft.lease \(3.1s\) cannot hold: it must be at least 2 x raft.election_timeout_max = 3.2s",
        ),
        ("heartbeat_interval = 1.0\nelection_timeout_min = 3.1\nelection_timeout_max = 1.0", "must exceed"),
        ("lease = 0", "raft.lease must be > 0"),
        ("max_frame_bytes = 1000", r"raft.max_frame_bytes \(1000\) must be at least 1048576"),
        ("handshake_deadline = 0", "raft.handshake_deadline must be > 0"),
        ('durable = "yes"', "raft.durable must be bool"),
    ],
)
def test_timings_that_cannot_keep_the_lease_are_refused_naming_the_numbers(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, VALID.replace(RAFT, RAFT + "\n" + extra)))


def test_durable_and_transport_limits_load(tmp_path: Path) -> None:
    extra = "durable = true\nmax_frame_bytes = 4194304\nhandshake_deadline = 1.5\nlease = 2.5"
    cfg = load_config(write(tmp_path, VALID.replace(RAFT, RAFT + "\n" + extra)))
    assert (
        cfg.durable and cfg.max_frame_bytes == 4194304 and cfg.handshake_deadline == 1.5 and cfg.lease == 2.5
    )


def test_a_dev_cluster_writes_the_switch_interval_only_when_set(tmp_path: Path) -> None:
    from hsmnode.ops.devfiles import DevMember, DevTimings, node_toml

    member = DevMember("node1", "127.0.0.1:7001", "127.0.0.1:7101", tmp_path)
    peer = DevMember("node2", "127.0.0.1:7002", "127.0.0.1:7102", tmp_path / "n2")
    for timings, expected in ((DevTimings(), None), (DevTimings(switch_interval_ms=0.5), 0.5)):
        cfg = load_config(write(tmp_path, node_toml(member, "c-1", [peer], timings, fault=False)))
        assert cfg.switch_interval_ms == expected
