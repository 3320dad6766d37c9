"""The container deployment as shipped: Dockerfile, deploy/compose.yaml and the Kubernetes manifests,
parsed and cross-checked against the code that derives a member's config from its environment
(hsmnode/envconfig.py). No Docker engine or Kubernetes runs here; this test is what checks them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from hsmnode.envconfig import (
    DEFAULT_DATA_DIR,
    ENV_VARS,
    SECRET_FILES,
    config_from_env,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
K8S = {
    doc["kind"]: doc
    for doc in yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "hsmnode.yaml").read_text())
}
HEALTH = ["hsmnode", "health", "--from-env"]


def fake_secrets(tmp_path: Path) -> Path:
    for name in SECRET_FILES:
        (tmp_path / name).write_text("x\n")
    return tmp_path


def dockerfile() -> dict[str, list[str]]:
    """Instruction -> its arguments (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.setdefault(word.upper(), []).append(rest.strip())
    return found


def test_dockerfile_slim_python_non_root_serve_entrypoint_and_grpc_health_check() -> None:
    d = dockerfile()
    assert re.fullmatch(r"python:3\.1[1-9]-slim", d["FROM"][0])
    assert d["USER"][-1].split(":")[0] == "10001"
    assert json.loads(d["ENTRYPOINT"][0]) == ["hsmnode", "serve"]
    assert json.loads(d["CMD"][-1]) == ["--config-from-env"]
    assert json.loads(d["HEALTHCHECK"][0].split(" CMD ", 1)[1]) == HEALTH
    exposed = {int(p) for p in d["EXPOSE"][0].split()}
    assert exposed == {7000, 7100, 9464}  # gRPC, Raft, metrics (the manifests' HSMNODE_METRICS_PORT)
    assert Path(DEFAULT_DATA_DIR).parent.as_posix() in d["VOLUME"][0]


def test_compose_members_derive_each_other_as_peers_with_every_secret(tmp_path: Path) -> None:
    services: dict[str, Any] = COMPOSE["services"]
    secrets_defined = COMPOSE["secrets"]
    assert len(services) == 3
    derived = {}
    for name, service in services.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert set(env) <= set(ENV_VARS), f"{name}: unknown variables {set(env) - set(ENV_VARS)}"
        assert service["hostname"] == env["HSMNODE_POD_NAME"] == name
        targets = {s["target"]: s["source"] for s in service["secrets"]}
        assert set(targets) == set(SECRET_FILES)
        for source in targets.values():
            assert (ROOT / "deploy" / secrets_defined[source]["file"]).parent == ROOT / "deploy" / "secrets"
        cfg = config_from_env({**env, "HSMNODE_SECRETS_DIR": str(fake_secrets(tmp_path))})
        derived[name] = cfg
        assert env["HSMNODE_SECRETS_DIR"] == "/run/secrets"  # compose mounts each target there
        volume_target = service["volumes"][0].split(":")[1]
        assert Path(env["HSMNODE_DATA_DIR"]).parent == Path(volume_target)
        assert service["volumes"][0].split(":")[0] in COMPOSE["volumes"]
        published = [p.split(":")[1] for p in service["ports"]]
        assert cfg.metrics_listen is not None and cfg.log_format == "json"
        assert published == [cfg.grpc_listen.rpartition(":")[2], cfg.metrics_listen.rpartition(":")[2]]
    for name, cfg in derived.items():
        others = {other: c for other, c in derived.items() if other != name}
        assert {(p.id, p.grpc, p.raft) for p in cfg.peers} == {
            (c.node_id, c.grpc_advertise, c.raft_address) for c in others.values()
        }
    assert len({c.cluster_id for c in derived.values()}) == 1


def pod_env(container: dict[str, Any], pod: str, namespace: str) -> dict[str, str]:
    env = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        else:
            field = entry["valueFrom"]["fieldRef"]["fieldPath"]
            env[entry["name"]] = {"metadata.name": pod, "metadata.namespace": namespace}[field]
    return env


def test_statefulset_service_secret_and_probe_agree_with_the_env_config(tmp_path: Path) -> None:
    service, sts = K8S["Service"], K8S["StatefulSet"]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert spec["serviceName"] == service["metadata"]["name"]
    assert (
        service["spec"]["selector"]
        == spec["selector"]["matchLabels"]
        == spec["template"]["metadata"]["labels"]
    )
    env_names = [e["name"] for e in container["env"]]
    assert set(env_names) <= set(ENV_VARS)
    env0 = pod_env(container, f"{sts['metadata']['name']}-0", "prod")
    assert env0["HSMNODE_SERVICE"] == service["metadata"]["name"]
    assert int(env0["HSMNODE_REPLICAS"]) == spec["replicas"]
    # ports: the container's, the Service's and the config's agree by name and number
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "grpc": int(env0["HSMNODE_GRPC_PORT"]),
        "raft": int(env0["HSMNODE_RAFT_PORT"]),
        "metrics": int(env0["HSMNODE_METRICS_PORT"]),
    }
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == ports
    # Prometheus finds every pod by its annotations, on the port the member serves metrics on
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]
    # secrets: every key the code reads, mounted where the code looks
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    secret = volumes["secrets"]["secret"]
    assert {i["key"] for i in secret["items"]} == {i["path"] for i in secret["items"]} == set(SECRET_FILES)
    assert mounts["secrets"] == env0["HSMNODE_SECRETS_DIR"]
    assert secret["defaultMode"] & 0o007 == 0  # never world-readable
    # one PVC per member, holding the data dir
    (claim,) = spec["volumeClaimTemplates"]
    assert Path(env0["HSMNODE_DATA_DIR"]).parent == Path(mounts[claim["metadata"]["name"]])
    # readiness through grpc health; non-root as in the image
    assert container["readinessProbe"]["exec"]["command"] == HEALTH
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
    assert container["args"] == ["--config-from-env"]
    # every pod derives the others as peers, reachable through the headless Service
    secrets_dir = fake_secrets(tmp_path)
    configs = [
        config_from_env(
            {**pod_env(container, f"hsmnode-{i}", "prod"), "HSMNODE_SECRETS_DIR": str(secrets_dir)}
        )
        for i in range(spec["replicas"])
    ]
    hosts = {c.node_id: c.raft_address for c in configs}
    assert {c.metrics_listen for c in configs} == {f"0.0.0.0:{ports['metrics']}"}
    assert hosts["hsmnode-2"] == "hsmnode-2.hsmnode.prod.svc.cluster.local:7100"
    for cfg in configs:
        assert {p.id: p.raft for p in cfg.peers} == {k: v for k, v in hosts.items() if k != cfg.node_id}


def test_the_kubernetes_header_creates_the_secret_with_every_key() -> None:
    text = (ROOT / "deploy" / "kubernetes" / "hsmnode.yaml").read_text()
    command = re.search(r"kubectl create secret generic (\S+)((?:.|\n)*?)\n(?!#\s+--)", text)
    assert command is not None
    assert (
        command.group(1)
        == K8S["StatefulSet"]["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
    )
    assert set(re.findall(r"--from-file=secrets/(\S+)", command.group(2))) == set(SECRET_FILES)


def test_the_commands_the_manifests_run_exist() -> None:
    import click

    from hsmnode.cli.main import cli

    ctx = click.Context(cli)
    assert {"serve", "health", "deploy-secrets"} <= set(cli.list_commands(ctx))
    serve, health = cli.get_command(ctx, "serve"), cli.get_command(ctx, "health")
    assert serve is not None and health is not None
    assert "--config-from-env" in {o for p in serve.params for o in p.opts}
    assert "--from-env" in {o for p in health.params for o in p.opts}
