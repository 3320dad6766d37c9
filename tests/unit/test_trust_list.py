"""A member's TLS trust list across a restart (hsmnode/server/app.py TrustList)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hsmnode.server.app import TlsMaterial, TrustList

# TrustList hands PEM bytes to gRPC as they are; the test reads them back from the roots it built
CA = b"-----CA-----\n"


class Replicator:
    """The two things TrustList reads: the state's registered certificates, and readiness."""

    def __init__(self, registered: list[str], ready: bool) -> None:
        self.registered = registered
        self.ready = ready

    def read(self, fn: Any) -> Any:
        class State:
            def registered_certificates(_self) -> list[str]:  # noqa: N805
                return list(self.registered)

        return fn(State())

    def is_ready(self) -> bool:
        return self.ready


def roots(trust: TrustList, monkeypatch: Any) -> bytes:
    seen: dict[str, bytes] = {}

    def configuration(pairs: Any, root_certificates: bytes) -> str:
        seen["roots"] = root_certificates
        return "config"

    monkeypatch.setattr("grpc.ssl_server_certificate_configuration", configuration)
    trust.initial()
    return seen["roots"]


def test_until_caught_up_a_restarted_member_also_trusts_the_clients_it_last_listed(
    tmp_path: Path, monkeypatch: Any
) -> None:
    known = tmp_path / "trusted-clients.json"
    known.write_text(json.dumps(["app-cert\n"]))
    replaying = Replicator([], ready=False)  # its state does not list the client yet
    trust = TrustList(TlsMaterial(CA, b"cert", b"key"), replaying, known)  # type: ignore[arg-type]
    assert roots(trust, monkeypatch) == CA + b"app-cert\n"
    assert json.loads(known.read_text()) == ["app-cert\n"]  # not rewritten from a partial state


def test_once_caught_up_the_state_alone_decides_and_is_remembered(tmp_path: Path, monkeypatch: Any) -> None:
    known = tmp_path / "trusted-clients.json"
    known.write_text(json.dumps(["revoked-cert\n"]))
    caught_up = Replicator(["app-cert\n"], ready=True)
    trust = TrustList(TlsMaterial(CA, b"cert", b"key"), caught_up, known)  # type: ignore[arg-type]
    assert roots(trust, monkeypatch) == CA + b"app-cert\n"  # the revoked one is gone
    assert json.loads(known.read_text()) == ["app-cert\n"]
    caught_up.ready = False  # readiness lost later (a leader change): the state still decides
    caught_up.registered = []
    assert roots(trust, monkeypatch) == CA


def test_no_known_list_is_no_extra_trust(tmp_path: Path, monkeypatch: Any) -> None:
    trust = TrustList(
        TlsMaterial(CA, b"cert", b"key"),
        Replicator([], ready=False),  # type: ignore[arg-type]
        tmp_path / "missing.json",
    )
    assert roots(trust, monkeypatch) == CA
    (tmp_path / "garbled.json").write_text("{not json")
    garbled = TrustList(
        TlsMaterial(CA, b"cert", b"key"), Replicator([], ready=False), tmp_path / "garbled.json"
    )  # type: ignore[arg-type]
    assert roots(garbled, monkeypatch) == CA
