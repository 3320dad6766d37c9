"""`hsmnode dev` and the CLI driven as a user drives them, for test_cli.py: `Dev` (one `hsmnode dev`
in the background), `SharedDev` (the module's cluster, stopped and started again by its tests),
`stop_leftovers` (every process of a cluster directory killed, whatever a test left running) and
`run` (one CLI command with a profile)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

HSMNODE = [sys.executable, "-m", "hsmnode"]
# (its --dir, process): every `hsmnode dev` this test process started, for stop_leftovers
STARTED: list[tuple[Path, subprocess.Popen[str]]] = []


class Dev:
    """`hsmnode dev --dir ROOT ARGS --json` running in the background; reads the description it prints
    when ready. Its stderr goes to a file, readable while it runs."""

    def __init__(self, root: Path, *args: str) -> None:
        root.parent.mkdir(parents=True, exist_ok=True)
        self.err_path = root.parent / f"{root.name}.dev-{len(STARTED)}.err"
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [*HSMNODE, "dev", "--dir", str(root), *args, "--json"],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        STARTED.append((root, self.proc))

    def ready(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        lines: list[str] = []
        for line in self.proc.stdout:
            lines.append(line)
            if line.rstrip() == "}":
                return json.loads("".join(lines))  # type: ignore[no-any-return]
        raise AssertionError(f"hsmnode dev exited before it was ready: {self.stop()}")

    def stderr(self) -> str:
        return self.err_path.read_text()

    def stop(self) -> str:
        """SIGTERM, as Ctrl-C would; what it said on stderr. A dev that does not stop within 30 s fails
        the test (after a SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError(
                f"hsmnode dev did not stop within 30 s of SIGTERM: {self.stderr()}"
            ) from None
        return self.stderr()


def stop_leftovers(root: Path) -> None:
    """SIGKILL every process of the cluster in `root` still running: members (and standalone nodes)
    through their pid files, if the process's command line names `root`; every `hsmnode dev` of
    STARTED on `root` that is still running."""
    for pid_file in root.glob("*/node.pid"):
        try:
            pid = int(pid_file.read_text())
            if str(root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):  # gone already, or a stale pid file
            continue
    for where, proc in STARTED:
        if where == root and proc.poll() is None:
            proc.kill()
            proc.communicate()


class SharedDev:
    """A test module's `hsmnode dev` cluster in ROOT (named `hsmnode-dev`, as the README's examples expect),
    its gRPC ports from `base` (four free: one test grows it to four members)."""

    def __init__(self, root: Path, base: int) -> None:
        self.root, self.base = root, base
        self.profile = root / "profile.json"
        self.running: Dev | None = None
        self.described: dict[str, object] = {}

    def start(self, *args: str) -> dict[str, object]:
        """Start `hsmnode dev ARGS` on ROOT (new or existing), wait until it is ready: its description."""
        assert self.running is None, "the module's dev cluster is running already"
        self.running = Dev(self.root, *args)
        self.described = self.running.ready()
        return self.described

    def stop(self) -> tuple[str, int | None]:
        """Stop the running `hsmnode dev`: (its stderr, its exit status)."""
        assert self.running is not None
        dev, self.running = self.running, None
        return dev.stop(), dev.proc.returncode

    def ensure(self) -> dict[str, object]:
        """Running (started again on its base port if a test stopped it): the last description."""
        if self.running is None or self.running.proc.poll() is not None:
            self.running = None
            self.start("--base-port", str(self.base))
        return self.described

    @property
    def demo(self) -> dict[str, dict[str, str]]:
        demo = self.described["demo"]
        assert isinstance(demo, dict)
        return demo


def run(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HSMNODE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, HSMNODE_PROFILE=str(profile)),
    )
