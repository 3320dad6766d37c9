"""`hsmnode completion bash|zsh|fish` and `hsmnode --version`, run as a user runs them."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
HSMNODE = [sys.executable, "-m", "hsmnode"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HSMNODE, *args], capture_output=True, text=True, timeout=60, env=env)


def test_version_is_the_installed_package_version() -> None:
    done = run("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hsmnode, version {importlib.metadata.version('hsmnode')}"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_script_completes_commands_and_options(tmp_path: Path) -> None:
    script = run("completion", "bash")
    assert script.returncode == 0, script.stderr
    (tmp_path / "hsmnode.bash").write_text(script.stdout)

    def complete(words: str) -> set[str]:
        line = (
            f"source {tmp_path / 'hsmnode.bash'}; COMP_WORDS=({words}); "
            'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _hsmnode_completion hsmnode; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
        done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        return set(done.stdout.split())

    assert {"cluster", "completion"} <= complete("hsmnode c")
    assert {"backup", "restore", "status"} <= complete("hsmnode cluster ''")
    assert "--out" in complete("hsmnode cluster backup --o")


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_call_back_into_hsmnode(shell: str) -> None:
    done = run("completion", shell)
    assert done.returncode == 0, done.stderr
    assert f"_HSMNODE_COMPLETE={shell}_complete" in done.stdout.replace('"', "")


def test_completion_names_the_shells_it_knows() -> None:
    done = run("completion", "tcsh")
    assert done.returncode == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in done.stderr
