"""The channel table (server/channels.py) has exactly one answer for every RPC in the proto descriptors."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import hsmnode.pb
from hsmnode.server import channels


def every_method() -> list[str]:
    found = []
    for info in pkgutil.iter_modules(hsmnode.pb.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"hsmnode.pb.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            found += [f"{service.full_name}/{m.name}" for m in service.methods]
    return sorted(found)


METHODS = every_method()


@pytest.mark.parametrize("method", METHODS)
def test_every_rpc_has_a_row(method: str) -> None:
    assert channels.allowed(method)


def test_no_row_names_an_rpc_that_does_not_exist() -> None:
    services = {m.partition("/")[0] for m in METHODS}
    for row in channels.TABLE:
        assert row in services or row in METHODS, f"stale channel row {row}"


def test_administration_and_applications_never_share_a_method() -> None:
    """DOMAIN.md §3: only discovery (cluster status) is reachable by both TLS classes."""
    ca, ntls = channels.CertificateClass.CLUSTER_CA, channels.CertificateClass.NTLS_CLIENT
    shared = [m for m in METHODS if {ca, ntls} <= channels.allowed(m)]
    assert shared == ["hsmnode.pb.Cluster/NodeStatus", "hsmnode.pb.Cluster/Status"]
