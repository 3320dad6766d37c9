"""The SDK's rooms (README, SDK section): no import circle inside hsmnode/client (the façade and the
sessions both stand on the transport), and no module of it over 500 lines."""

from __future__ import annotations

from pathlib import Path

from tests.test_layering import ROOT, imports_of

CLIENT = ROOT / "client"


def client_imports() -> dict[str, set[str]]:
    """module name -> the hsmnode.client modules it imports (`from hsmnode.client import _convert`
    counts as importing hsmnode.client._convert)."""
    modules = {f"hsmnode.client.{p.stem}": p for p in CLIENT.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        text = path.read_text()
        found = {m for m in imports_of(path) if m in modules}
        found |= {m for m in modules if f"from hsmnode.client import {m.rsplit('.', 1)[1]}" in text}
        graph[name] = found - {name}
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One import circle as a path (first module repeated at the end), or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_client_modules_import_no_circle() -> None:
    graph = client_imports()
    assert "hsmnode.client._transport" in graph["hsmnode.client._session"]
    assert "hsmnode.client._client" not in graph["hsmnode.client._partition"]
    assert cycle_in(graph) == []


def test_a_circle_is_found() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) == []


def test_no_client_module_over_500_lines() -> None:
    long = {p.name: n for p in CLIENT.glob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}, f"split these SDK modules (one job each, under ~500 lines): {long}"


def test_sessions_do_not_import_the_facade() -> None:
    for module in ("_session", "_appliance", "_partition", "_keyrings", "_mofn", "_grants"):
        imported = imports_of(Path(CLIENT / f"{module}.py"))
        assert "hsmnode.client._client" not in imported, f"{module}.py imports the façade"
