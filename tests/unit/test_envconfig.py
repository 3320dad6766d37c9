"""`hsmnode serve --config-from-env`: a member's id and peers from its pod name and the Service, and a
start-up refusal naming any missing variable or secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hsmnode.envconfig import SECRET_FILES, EnvConfigError, config_from_env


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    for name in SECRET_FILES:
        (tmp_path / name).write_text("x\n")
    return tmp_path


def env_of(secrets: Path, **extra: str) -> dict[str, str]:
    return {
        "HSMNODE_CLUSTER_ID": "c-k8s",
        "HSMNODE_REPLICAS": "3",
        "HSMNODE_POD_NAME": "hsmnode-1",
        "HSMNODE_SERVICE": "hsmnode",
        "HSMNODE_NAMESPACE": "prod",
        "HSMNODE_SECRETS_DIR": str(secrets),
        **extra,
    }


def test_member_id_and_peers_follow_from_the_pod_ordinal_and_the_headless_service(secrets: Path) -> None:
    cfg = config_from_env(env_of(secrets))
    assert cfg.node_id == "hsmnode-1" and cfg.cluster_id == "c-k8s"
    domain = ".hsmnode.prod.svc.cluster.local"
    assert cfg.grpc_listen == "0.0.0.0:7000" and cfg.grpc_advertise == f"hsmnode-1{domain}:7000"
    assert cfg.raft_address == f"hsmnode-1{domain}:7100"
    assert [(p.id, p.raft, p.grpc) for p in cfg.peers] == [
        ("hsmnode-0", f"hsmnode-0{domain}:7100", f"hsmnode-0{domain}:7000"),
        ("hsmnode-2", f"hsmnode-2{domain}:7100", f"hsmnode-2{domain}:7000"),
    ]
    assert cfg.smk_file == secrets / "smk.key" and cfg.tls_cert == secrets / "node.pem"
    assert cfg.data_dir == Path("/var/lib/hsmnode/data") and not cfg.reflection and cfg.smk_mode_mask == 0
    assert cfg.durable  # a deployment fsyncs before acknowledging unless told not to
    assert not config_from_env(env_of(secrets, HSMNODE_DURABLE="false")).durable


def test_without_a_service_members_are_reached_by_name_and_hostname_names_the_member(secrets: Path) -> None:
    env = env_of(
        secrets, HSMNODE_SERVICE="", HSMNODE_POD_NAME="", HOSTNAME="db-hsm-0", HSMNODE_GRPC_PORT="7400"
    )
    cfg = config_from_env(env)
    assert cfg.node_id == "db-hsm-0" and cfg.grpc_advertise == "db-hsm-0:7400"
    assert [p.grpc for p in cfg.peers] == ["db-hsm-1:7400", "db-hsm-2:7400"]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"HSMNODE_CLUSTER_ID": ""}, "HSMNODE_CLUSTER_ID is not set"),
        ({"HSMNODE_REPLICAS": ""}, "HSMNODE_REPLICAS is not set"),
        ({"HSMNODE_REPLICAS": "three"}, "HSMNODE_REPLICAS must be a whole number"),
        ({"HSMNODE_POD_NAME": "hsmnode"}, "must be <set>-<ordinal>"),
        ({"HSMNODE_POD_NAME": "hsmnode-3"}, "has ordinal 3, but HSMNODE_REPLICAS is 3"),
        ({"HSMNODE_GRPC_PORT": "70000"}, "HSMNODE_GRPC_PORT must be a whole number from 1 to 65535"),
        ({"HSMNODE_REFLECTION": "yes"}, "HSMNODE_REFLECTION must be true or false"),
        ({"HSMNODE_DURABLE": "on"}, "HSMNODE_DURABLE must be true or false"),
    ],
)
def test_a_wrong_or_missing_variable_is_named(secrets: Path, change: dict[str, str], words: str) -> None:
    with pytest.raises(EnvConfigError, match=words):
        config_from_env(env_of(secrets, **change))


@pytest.mark.parametrize("missing", sorted(SECRET_FILES))
def test_a_missing_secret_is_named_with_where_it_was_expected(secrets: Path, missing: str) -> None:
    (secrets / missing).unlink()
    with pytest.raises(EnvConfigError) as caught:
        config_from_env(env_of(secrets))
    assert (
        f"secret {missing} ({SECRET_FILES[missing]}) is missing: expected the file {secrets / missing}"
        in str(caught.value)
    )


def test_serve_refuses_to_start_without_a_secret_and_names_it(secrets: Path) -> None:
    (secrets / "smk.key").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "hsmnode", "serve", "--config-from-env"],
        env={**env_of(secrets), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "hsmnode serve: error: secret smk.key (the cluster SMK (64 hex digits)) is missing" in done.stderr


def test_serve_needs_exactly_one_config_source(secrets: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hsmnode", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_of(secrets),
    )
    assert done.returncode == 2 and "give exactly one of --config FILE and --config-from-env" in done.stderr


def test_deploy_secrets_writes_every_secret_and_a_member_certificate_naming_every_member(
    tmp_path: Path,
) -> None:
    from cryptography import x509

    out = tmp_path / "secrets"
    done = subprocess.run(
        [sys.executable, "-m", "hsmnode", "deploy-secrets", "--out", str(out), "--replicas", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert set(SECRET_FILES) <= {p.name for p in out.iterdir()}
    assert all(p.stat().st_mode & 0o077 == 0 for p in out.iterdir())
    cert = x509.load_pem_x509_certificate((out / "node.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert {"hsmnode-0", "hsmnode-2.hsmnode", "hsmnode-1.hsmnode.default.svc.cluster.local"} <= set(names)
    again = subprocess.run(
        [sys.executable, "-m", "hsmnode", "deploy-secrets", "--out", str(out)], capture_output=True, text=True
    )
    assert again.returncode == 2 and "is not empty" in again.stderr
