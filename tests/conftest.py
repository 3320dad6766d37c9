"""Settings of the test process itself, read before any test module imports grpc; the suite's two phases.

`make test` runs the suite in two phases (scripts/test-suite.sh):

- `--suite-phase=parallel` under pytest-xdist (`-n N --dist loadfile`): every test not marked `serial`.
  The tests mostly wait (elections, heartbeats, process start-up), so several run at once on 2 cores.
  A module runs whole on one worker, in its order (its tests may share a cluster and build on each
  other's state), the longest modules first (LONGEST_FIRST).
- `--suite-phase=serial` without xdist: the tests marked `serial`, alone on the machine. They observe
  timing (no leader change or term change across restarts, a lease running out within its length,
  a handshake deadline), which the load of the other workers would disturb.

Without `--suite-phase` (`pytest`, `make unit`, `make chaos`) every selected test runs, as before.
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

# The modules that take longest (a quiet 2-core machine: about 30 s and more each): the parallel phase
# starts them first, so that no worker is left with one long module once the others have finished
# (pytest-xdist's loadfile hands out whole modules in the order the workers collected them). Only the
# order depends on this list.
LONGEST_FIRST = (
    "tests/integration/test_cli.py",
    "tests/integration/test_membership_changes.py",
    "tests/integration/test_join.py",
    "tests/integration/test_membership_load.py",
    "tests/integration/test_ha.py",
    "tests/fault/test_fuzz.py",
    "tests/integration/test_observability.py",
    "tests/integration/test_replication.py",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--suite-phase",
        choices=PHASES,
        default="all",
        help="parallel: the tests not marked serial (run them under pytest-xdist); serial: only those "
        "marked serial; all (default): both",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The serial phase does not import a test module whose text never names the `serial` mark (most
    of them: collecting the whole suite costs seconds of CPU)."""
    if config.getoption("--suite-phase") != "serial" or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix != ".py" or not collection_path.is_file():
        return None
    return "mark.serial" not in collection_path.read_text(encoding="utf-8") or None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    phase = config.getoption("--suite-phase")
    if phase != "all":
        keep = [i for i in items if (i.get_closest_marker("serial") is not None) == (phase == "serial")]
        kept = set(keep)
        dropped = [i for i in items if i not in kept]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
    if phase == "parallel":
        first = {module: rank for rank, module in enumerate(LONGEST_FIRST)}
        items.sort(
            key=lambda i: first.get(i.nodeid.split("::", 1)[0], len(first))
        )  # stable: module order kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Under scripts/test-suite.sh: add this phase's counts to its file (it prints both phases' sum)."""
    path = os.environ.get("HSMNODE_SUITE_COUNTS")
    if not path or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    counts = {k: len(terminalreporter.stats.get(k, [])) for k in ("passed", "failed", "error", "skipped")}
    with open(path, "a") as f:
        f.write(" ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
