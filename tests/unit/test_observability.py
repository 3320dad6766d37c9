"""Metrics, logs and the Grafana dashboard without a cluster: config and env keys, the collector's
families from a replicator's view, the JSON log line, the listener's refusal of a taken port, and
every metric the dashboard names exists (issue 15)."""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hsmnode.config import ConfigError, load_config
from hsmnode.domain.errors import ErrorCode
from hsmnode.domain.state import HsmState, Result
from hsmnode.envconfig import EnvConfigError, config_from_env
from hsmnode.observability.logs import JsonFormatter, TextFormatter, fields
from hsmnode.observability.metrics import (
    MemberCollector,
    MemberMetrics,
    MetricsPortError,
    _login_outcome,
    start_listener,
)
from hsmnode.replication import RaftStatus
from tests.unit.test_config import VALID, write
from tests.unit.test_envconfig import env_of

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "hsmnode-dashboard.json"


def test_metrics_and_log_format_are_off_and_text_unless_configured(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID))
    assert cfg.metrics_listen is None and cfg.log_format == "text"
    on = load_config(
        write(tmp_path, VALID + '\n[metrics]\nlisten = "127.0.0.1:9464"\n\n[log]\nformat = "json"\n')
    )
    assert on.metrics_listen == "127.0.0.1:9464" and on.log_format == "json"


@pytest.mark.parametrize(
    "extra, message",
    [
        ('[metrics]\nlisten = "9464"\n', "metrics.listen must be host:port"),
        (
            '[metrics]\nlisten = "127.0.0.1:7001"\n',
            "metrics.listen 127.0.0.1:7001 is also the gRPC or Raft address",
        ),
        ('[log]\nformat = "xml"\n', "log.format must be one of text, json"),
        ("[metrics]\nport = 9464\n", r"unknown key\(s\) metrics.port"),
    ],
)
def test_bad_metrics_and_log_settings_are_named(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, VALID + "\n" + extra))


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    from hsmnode.envconfig import SECRET_FILES

    for name in SECRET_FILES:
        (tmp_path / name).write_text("x\n")
    return tmp_path


def test_container_env_turns_metrics_on_by_port_and_picks_the_log_format(secrets: Path) -> None:
    assert config_from_env(env_of(secrets)).metrics_listen is None
    cfg = config_from_env(env_of(secrets, HSMNODE_METRICS_PORT="9464", HSMNODE_LOG_FORMAT="json"))
    assert cfg.metrics_listen == "0.0.0.0:9464" and cfg.log_format == "json"
    for extra, message in (
        ({"HSMNODE_METRICS_PORT": "http"}, "HSMNODE_METRICS_PORT must be a whole number"),
        ({"HSMNODE_METRICS_PORT": "7000"}, "HSMNODE_METRICS_PORT \\(7000\\) is also the gRPC or Raft port"),
        ({"HSMNODE_LOG_FORMAT": "xml"}, "HSMNODE_LOG_FORMAT must be one of text, json"),
    ):
        with pytest.raises(EnvConfigError, match=message):
            config_from_env(env_of(secrets, **extra))


class ReplicatorView:
    """What MemberCollector reads of a Replicator (status, counters, lease, state): fixed values."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.state = HsmState()

    def status(self) -> RaftStatus:
        return RaftStatus(
            self.role, 7, "127.0.0.1:1", commit_index=40, applied_index=38, has_quorum=True, ready=True
        )

    def metrics_view(self) -> dict[str, int]:
        return {"leader_commit_index": 42, "members": 3}

    def raft_counters(self) -> dict[str, int]:
        return {"elections": 2, "prevote_rounds": 5}

    def within_lease(self) -> bool:
        return True

    def read(self, fn: Any) -> Any:
        return fn(self.state)


def exposition(metrics: MemberMetrics) -> dict[str, float]:
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    return {
        s.name + json.dumps(s.labels, sort_keys=True): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_collector_reads_raft_and_state_at_scrape_time(tmp_path: Path) -> None:
    metrics = MemberMetrics()
    view = ReplicatorView("leader")
    metrics.registry.register(MemberCollector(view, tmp_path))  # type: ignore[arg-type]
    (tmp_path / "raft.dump").write_bytes(b"x" * 123)
    samples = exposition(metrics)
    assert samples["hsmnode_raft_term{}"] == 7 and samples["hsmnode_raft_leader{}"] == 1
    assert samples["hsmnode_raft_commit_index{}"] == 40 and samples["hsmnode_raft_applied_index{}"] == 38
    assert samples["hsmnode_raft_lag_entries{}"] == 4  # the leader's 42 - 38 applied here
    assert samples["hsmnode_raft_elections_total{}"] == 2
    assert samples['hsmnode_raft_engine_events_total{"event": "prevote_rounds"}'] == 5
    assert samples["hsmnode_raft_snapshot_size_bytes{}"] == 123
    assert samples["hsmnode_keys{}"] == 0 and samples["hsmnode_users{}"] == 0
    view.role = "follower"
    assert exposition(metrics)["hsmnode_raft_leader{}"] == 0  # read again at the next scrape


@pytest.mark.parametrize(
    "success, result, outcome",
    [
        (True, Result.success(), "success"),
        (False, Result.error(ErrorCode.UNAUTHENTICATED, "wrong"), "wrong_password"),
        (False, Result.error(ErrorCode.RESOURCE_EXHAUSTED, "locked"), "locked"),
        (True, Result.error(ErrorCode.RESOURCE_EXHAUSTED, "locked"), "locked"),
        (True, Result.error(ErrorCode.FAILED_PRECONDITION, "initial password expired"), "refused"),
        (False, Result.error(ErrorCode.UNAVAILABLE, "credential changed"), "refused"),
    ],
)
def test_login_verdicts_are_sorted_into_outcomes(success: bool, result: Result, outcome: str) -> None:
    assert _login_outcome(success, result) == outcome


def test_json_log_line_carries_the_record_fields_and_the_member() -> None:
    record = logging.LogRecord("hsmnode.request", logging.INFO, __file__, 1, "Keys/Sign %s", ("OK",), None)
    record.fields = fields(method="hsmnode.pb.Keys/Sign", code="OK", duration_ms=1.5)["fields"]
    line = json.loads(JsonFormatter("node1").format(record))
    assert line["member"] == "node1" and line["message"] == "Keys/Sign OK" and line["level"] == "info"
    assert (line["method"], line["code"], line["duration_ms"]) == ("hsmnode.pb.Keys/Sign", "OK", 1.5)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter("node1").format(failed))["exception"]


def test_json_log_line_is_json_dumps_text() -> None:
    """The formatter's encoder, built once, writes what json.dumps(default=str) wrote: non-ASCII
    escaped, floats and NaN as json writes them, anything else by its str()."""

    class Odd:
        def __str__(self) -> str:
            return "odd \u00e9"

    record = logging.LogRecord(
        "hsmnode.request", logging.INFO, __file__, 1, "sign \u00e9 %s", ("\u2028",), None
    )
    values = {"f": 0.1 + 0.2, "nan": float("nan"), "nested": [1, {"z": None, "b": True}], "odd": Odd()}
    record.fields = fields(actor="user:j\u00fcrgen", data=b"\x00", **values)["fields"]
    line = JsonFormatter("node\u00e9").format(record)
    data = json.loads(line)
    head = {"time": data["time"], "level": "info", "logger": "hsmnode.request", "member": "node\u00e9"}
    expected = head | {"message": "sign \u00e9 \u2028"} | record.fields
    assert line == json.dumps(expected, default=str, separators=(",", ":"))
    assert line.isascii() and data["actor"] == "user:j\u00fcrgen" and data["odd"] == "odd \u00e9"


@pytest.mark.parametrize(
    "created", [1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.0005, 1_600_000_000.25]
)
def test_log_times_formatted_once_per_second_read_as_before(created: float) -> None:
    """The text line's asctime and the JSON `time` (each second formatted once) are what
    logging.Formatter and the per-record strftime wrote, whichever second came before."""
    fmt = "%(asctime)s m1 %(levelname)s %(name)s: %(message)s"
    text, plain, js = TextFormatter(fmt), logging.Formatter(fmt), JsonFormatter("m1")
    for first in (created - 1, created, created + 3600):  # the cache holding another second, or this one
        for when in (first, created):
            record = logging.LogRecord("hsmnode.request", logging.INFO, __file__, 1, "hi %s", ("x",), None)
            record.created, record.msecs = when, (when - int(when)) * 1000
            assert text.format(record) == plain.format(record)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(record.msecs):03d}Z"
            assert json.loads(js.format(record))["time"] == stamp


def test_listener_serves_metrics_and_refuses_a_taken_port_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(MetricsPortError, match=f"cannot listen for metrics on {address}"):
            start_listener(MemberMetrics(), address)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    metrics = MemberMetrics()
    metrics.observe_request("hsmnode.pb.Keys", "Sign", "OK", 0.002)
    stop = start_listener(metrics, address)
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        assert 'hsmnode_grpc_requests_total{code="OK",method="Sign",service="hsmnode.pb.Keys"} 1.0' in text
    finally:
        stop()


def exposed_names() -> set[str]:
    """Every sample name a member exposes (families with no sample yet included by their suffixes)."""
    from prometheus_client import generate_latest

    metrics = MemberMetrics()
    metrics.registry.register(MemberCollector(ReplicatorView("leader"), Path("/nonexistent")))  # type: ignore[arg-type]
    metrics.observe_request("hsmnode.pb.Keys", "Sign", "OK", 0.001)
    metrics.logins.labels("user", "success").inc()
    metrics.snapshot_seconds.observe(0.1)
    text = generate_latest(metrics.registry).decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_grafana_dashboard_names_only_metrics_a_member_exposes() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    named = {name for expr in exprs for name in re.findall(r"\bhsmnode_[a-z0-9_]+", expr)}
    assert named and named <= exposed_names(), sorted(named - exposed_names())
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for wanted in ("requests/s", "p50", "p99", "term", "leader", "lag", "apply duration", "keys"):
        assert wanted in titles, wanted
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_shipped_member_configs_keep_metrics_off_and_log_json() -> None:
    configs = sorted((DASHBOARD.parents[1]).glob("node*.toml"))
    assert len(configs) == 3
    for path in configs:
        cfg = load_config(path)
        assert cfg.metrics_listen is None and cfg.log_format == "json", path


class RaftView:
    """What RaftEventLog reads of a Replicator: a status and a configuration the test moves."""

    def __init__(self) -> None:
        self.term, self.leader, self.role = 1, "a:1", "follower"
        self.members = frozenset({"a:1", "b:1", "c:1"})

    def status(self) -> RaftStatus:
        return RaftStatus(self.role, self.term, self.leader, 10, 10, True, True)

    def raft_configuration(self) -> frozenset[str]:
        return self.members

    def watch_snapshots(self, done: Any) -> None:
        self.snapshot_done = done


def test_raft_events_are_logged_once_each_with_their_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hsmnode.observability.raft_events import RaftEventLog

    view, metrics = RaftView(), MemberMetrics()
    events = RaftEventLog(view, tmp_path, metrics)  # type: ignore[arg-type]
    events.start()
    events.stop()  # the test looks itself
    caplog.set_level(logging.INFO, logger="hsmnode.raft.events")
    events.look()  # the first look names the leader
    view.term, view.leader, view.role = 2, "b:1", "leader"
    events.look()
    events.look()  # nothing changed: nothing logged
    view.members = frozenset({"a:1", "b:1", "d:1"})
    events.look()
    (tmp_path / "raft.dump").write_bytes(b"y" * 50)
    view.snapshot_done(0.25)
    logged = [r.fields for r in caplog.records]  # type: ignore[attr-defined]
    assert [f["event"] for f in logged] == [
        "leader_change",
        "term_change",
        "leader_change",
        "membership",
        "snapshot",
    ]
    assert logged[1] == {"event": "term_change", "term": 2, "previous_term": 1}
    assert logged[2] == {"event": "leader_change", "term": 2, "leader": "b:1", "role": "leader"}
    assert logged[3]["added"] == ["d:1"] and logged[3]["removed"] == ["c:1"]
    assert logged[4] == {"event": "snapshot", "duration_ms": 250.0, "bytes": 50}
    samples = exposition(metrics)
    assert samples["hsmnode_raft_leader_changes_total{}"] == 2
    assert samples["hsmnode_raft_snapshot_duration_seconds_count{}"] == 1
