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


# --- the import graph, for cycles ------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """The hsmnode modules `path` imports anywhere (top level, in functions, under TYPE_CHECKING):
    `from a.b import c` counts as a.b.c when c is a module, else as a.b; relative imports resolved."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(
                    package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                )
            else:
                base = node.module or ""
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def package_of(module: str) -> str:
    """The first-level package a module belongs to ("domain", "service", ...); "hsmnode" for top-level modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (ROOT / parts[1]).is_dir()) else "hsmnode"


def cycles_in(package: str) -> list[list[str]]:
    """Each import cycle among the modules of `package`, one per strongly connected component
    (Tarjan), named as a path that closes on its first module."""
    graph = {
        m: sorted(t for t in imported_modules(p) if package_of(t) == package)
        for m, p in MODULES.items()
        if package_of(m) == package
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return [_cycle_through(graph, component) for component in components]


def _cycle_through(graph: dict[str, list[str]], component: set[str]) -> list[str]:
    """One closed path inside a strongly connected component, from its smallest module."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first: the shortest way back to start
        nxt = []
        for v in frontier:
            for w in graph[v]:
                if w == start:
                    return [*paths[v], start]
                if w in component and w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


# Packages with an import cycle today, each for the helper who empties it; a package leaves this
# list when its cycle is gone (the check is strict: an entry whose package has no cycle fails).
CYCLES_ALLOWED: dict[str, str] = {}  # none left (pkcs11's token <-> operations went with issue 13)
PACKAGES = sorted({package_of(m) for m in MODULES})


@pytest.mark.parametrize("path", files("domain"), ids=lambda p: str(p.relative_to(ROOT / "domain")))
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
    """pysyncobj stays behind hsmnode/replication.py (with its state machine, replicated_state.py) and our
    layer over it, hsmnode/raft/."""
    users = sorted(
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.py")
        if any(n.split(".")[0] == "pysyncobj" for n in imports_of(p))
    )
    assert users == [
        "raft/durable.py",
        "raft/engine.py",
        "raft/snapshots.py",
        "raft/transport.py",
        "replicated_state.py",
        "replication.py",
    ]


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


@pytest.mark.parametrize(
    "package",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=CYCLES_ALLOWED[p]))
        if p in CYCLES_ALLOWED
        else p
        for p in PACKAGES
    ],
)
def test_no_import_cycle_inside_a_package(package: str) -> None:
    """No module of a package imports, directly or round about, itself (imports in functions and
    under TYPE_CHECKING count: a lazy import that hides a circle is still a circle)."""
    found = cycles_in(package)
    assert not found, f"import cycle(s) in {package}/: " + "; ".join(" -> ".join(c) for c in found)


def test_cycle_finder_names_a_cycle() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": []}
    assert _cycle_through(graph, {"a", "b", "c"}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("path", files("domain/apply"), ids=lambda p: p.name)
def test_apply_handler_modules_import_no_other_handler(path: Path) -> None:
    """domain/apply/__init__.py dispatches to the handler modules; a handler module shares rules
    through the domain's rules modules, never by importing another handler module."""
    if path.name == "__init__.py":
        return
    handlers = {m for m in imported_modules(path) if m.startswith("hsmnode.domain.apply")}
    assert not handlers, f"{path.name} imports {', '.join(sorted(handlers))}"


def test_state_imports_no_rules_or_handlers() -> None:
    """state.py is data: it imports the model, the audit log, commands and Result, nothing that decides."""
    allowed = {
        "hsmnode.domain.audit",
        "hsmnode.domain.canonical_forms",  # encodes, decides nothing
        "hsmnode.domain.commands",
        "hsmnode.domain.model",
        "hsmnode.domain.result",
    }
    assert imported_modules(ROOT / "domain" / "state.py") <= allowed
