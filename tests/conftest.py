"""Settings of the test process itself, read before any test module imports grpc; the suite's two phases.

`make test` runs the suite in two phases (scripts/test-suite.sh):

- `--suite-phase=parallel` under pytest-xdist (`-n N --dist loadgroup`): every test not marked `serial`.
  The tests mostly wait (elections, heartbeats, process start-up), so several run at once on 2 cores.
  Tests that share a cluster (a module- or package-scoped fixture they ask for) run on one worker, in
  their module's order; the others are spread one by one.
- `--suite-phase=serial` without xdist: the tests marked `serial`, alone on the machine. They observe
  timing (no leader change or term change across restarts, a lease running out within its length,
  a handshake deadline), which the load of the other workers would disturb.

Without `--suite-phase` (`pytest`, `make unit`, `make chaos`) every selected test runs, as before; under
a bare `pytest -n N` the `serial` tests at least stay on one worker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The test process hosts in-process cluster members, whose pysyncobj forks a child to write its dump
# (log compaction) while gRPC connections are open. Member processes disable gRPC's fork handlers
# (hsmnode/cli/main.py); the test process must too: with them on, a forked child's gRPC fork handling
# once corrupted a live TLS stream of the parent (a client saw "Unwrap failed (TSI_DATA_CORRUPTED)").
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

PHASES = ("all", "parallel", "serial")
SHARED_SCOPES = ("class", "module", "package", "session")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--suite-phase",
        choices=PHASES,
        default="all",
        help="parallel: the tests not marked serial (run them under pytest-xdist); serial: only those "
        "marked serial; all (default): both",
    )


def _shared_fixture_group(item: pytest.Item) -> str | None:
    """The scope a test shares set-up with (its module, class or package), if it asks for a fixture of
    wider than function scope (directly or through its fixtures); autouse fixtures do not count."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    asked = [*info.argnames, *(n for m in item.iter_markers("usefixtures") for n in m.args)]
    seen: set[str] = set()
    widest: tuple[int, str] | None = None
    while asked:
        name = asked.pop()
        if name in seen or name not in info.name2fixturedefs:
            continue
        seen.add(name)
        fixturedef = info.name2fixturedefs[name][-1]
        asked.extend(fixturedef.argnames)
        scope = fixturedef.scope
        if scope not in SHARED_SCOPES:
            continue
        rank = SHARED_SCOPES.index(scope)
        if scope == "class":
            group = item.nodeid.rsplit("::", 1)[0]
        elif scope == "module":
            group = item.nodeid.split("::", 1)[0]
        else:  # a package's or the session's fixture: one instance for every test under where it is defined
            group = fixturedef.baseid or "session"
        if widest is None or rank > widest[0]:
            widest = (rank, group)
    return None if widest is None else widest[1]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The serial phase does not import a test module whose text never names the `serial` mark (most
    of them: collecting the whole suite costs seconds of CPU)."""
    if config.getoption("--suite-phase") != "serial" or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix != ".py" or not collection_path.is_file():
        return None
    return "mark.serial" not in collection_path.read_text(encoding="utf-8") or None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    phase = config.getoption("--suite-phase")
    if phase != "all":
        keep = [i for i in items if (i.get_closest_marker("serial") is not None) == (phase == "serial")]
        kept = set(keep)
        dropped = [i for i in items if i not in kept]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for item in items:
            group = "serial" if item.get_closest_marker("serial") else _shared_fixture_group(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Under scripts/test-suite.sh: add this phase's counts to its file (it prints both phases' sum)."""
    path = os.environ.get("HSMNODE_SUITE_COUNTS")
    if not path or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    counts = {k: len(terminalreporter.stats.get(k, [])) for k in ("passed", "failed", "error", "skipped")}
    with open(path, "a") as f:
        f.write(" ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
