"""The import rules of DESIGN.md §2, checked on the source (no imports executed)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "hsmnode"
STDLIB = set(sys.stdlib_module_names)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.add("<relative>")
    return found


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", files("domain"), ids=lambda p: p.name)
def test_domain_imports_only_stdlib_and_itself(path: Path) -> None:
    forbidden = {"time", "random", "secrets", "uuid", "datetime", "os", "socket", "threading", "logging"}
    for name in imports_of(path):
        top = name.split(".")[0]
        assert name.startswith("hsmnode.domain") or (top in STDLIB and top != "hsmnode"), (
            f"{path.name} imports {name}: domain/ may import only the stdlib and itself"
        )
        assert top not in forbidden, (
            f"{path.name} imports {top}: apply must not read clocks, randomness or I/O"
        )


@pytest.mark.parametrize("path", files("client"), ids=lambda p: p.name)
def test_client_imports_only_pb_grpc_and_stdlib(path: Path) -> None:
    for name in imports_of(path):
        top = name.split(".")[0]
        allowed = (
            name.startswith(("hsmnode.pb", "hsmnode.client"))
            or top == "grpc"
            or (top in STDLIB and top != "hsmnode")
        )
        assert allowed, f"{path.name} imports {name}: the SDK may import only hsmnode.pb, grpc and the stdlib"


@pytest.mark.parametrize("path", files("service"), ids=lambda p: p.name)
def test_service_has_no_grpc(path: Path) -> None:
    for name in imports_of(path):
        assert not name.startswith(("grpc", "hsmnode.server", "hsmnode.pb")), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", files("server"), ids=lambda p: p.name)
def test_server_never_imports_the_domain(path: Path) -> None:
    """Servicers map protobuf to service calls and service views to protobuf (issue 13)."""
    for name in imports_of(path):
        assert not name.startswith("hsmnode.domain"), (
            f"{path.name} imports {name}: server/ sees the domain only through service/ (views, Call, errors)"
        )


@pytest.mark.parametrize(
    "path", [p for p in ROOT.rglob("*.py") if "pb" not in p.parts], ids=lambda p: str(p.relative_to(ROOT))
)
def test_only_the_crypto_package_uses_cryptography(path: Path) -> None:
    if "crypto" in path.relative_to(ROOT).parts:
        return
    assert not any(n.split(".")[0] == "cryptography" for n in imports_of(path)), (
        f"{path} imports cryptography"
    )


def test_only_replication_and_the_raft_layer_use_pysyncobj() -> None:
    """pysyncobj stays behind hsmnode/replication.py and our layer over it, hsmnode/raft/."""
    users = sorted(
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.py")
        if any(n.split(".")[0] == "pysyncobj" for n in imports_of(p))
    )
    assert users == ["raft/durable.py", "raft/engine.py", "raft/transport.py", "replication.py"]


@pytest.mark.parametrize("path", files("pkcs11/rpc"), ids=lambda p: p.name)
def test_pkcs11_protocol_code_stands_alone(path: Path) -> None:
    """The p11-kit protocol package (framing, serialization, dispatch, constants) knows no SDK."""
    for name in imports_of(path):
        top = name.split(".")[0]
        assert name.startswith("hsmnode.pkcs11.rpc") or (top in STDLIB and top != "hsmnode"), (
            f"{path.name} imports {name}: pkcs11/rpc may import only the stdlib and itself"
        )


@pytest.mark.parametrize("path", files("pkcs11"), ids=lambda p: p.name)
def test_pkcs11_bridge_uses_only_the_public_sdk(path: Path) -> None:
    """The bridge is an SDK application: `hsmnode.client` as exported, never its private modules."""
    for name in imports_of(path):
        top = name.split(".")[0]
        allowed = (
            name.startswith("hsmnode.pkcs11")
            or name == "hsmnode.client"
            or (top in STDLIB and top != "hsmnode")
        )
        assert allowed, (
            f"{path.name} imports {name}: the bridge may import hsmnode.client, itself and the stdlib"
        )
