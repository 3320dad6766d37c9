"""CPU by thread within a process: which of a member's threads a load keeps busy.

py-spy's `--gil` profile charges a thread for the time it holds the GIL, including time the
kernel has it descheduled; on a loaded machine that overweights threads that hold the GIL long
(the Raft tick thread) against those that release it (gRPC workers waiting in C). This counts
what the kernel counts instead: utime + stime of every thread (/proc/PID/task/TID/stat), each
thread named by `py-spy dump` (Python threads) or by its kernel name (gRPC core's C threads).

    groups = ThreadCpu(pid)       # names the threads now (needs root or ptrace rights, and py-spy)
    ... the load ...
    groups.spent()                # {"raft tick": s, "grpc workers": s, "native: ...": s, ...}
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

_THREAD = re.compile(r'^Thread (\d+) \((?:idle|active|gil)[^)]*\): "([^"]*)"')


def _stat(pid: int, tid: str) -> tuple[str, float]:
    """(kernel thread name, user + system CPU seconds) of one thread; ("", 0) once it is gone."""
    try:
        text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return "", 0.0
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def python_threads(pid: int) -> dict[str, str]:
    """tid -> group of each Python thread, from `py-spy dump`: "raft tick" (pysyncobj's tick
    thread), "grpc workers" (the server's pool), else the thread's name."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = subprocess.run([exe, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30).stdout
    groups: dict[str, str] = {}
    tid = ""
    for line in out.splitlines():
        m = _THREAD.match(line)
        if m:
            tid, name = m.group(1), m.group(2)
            groups[tid] = "grpc workers" if name.startswith("grpc") else name
        elif tid and "_autoTickThread" in line:
            groups[tid] = "raft tick"
    return groups


class ThreadCpu:
    """The CPU a process's threads spend from now on, summed by group."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.names = python_threads(pid)
        self.start = {tid: _stat(pid, tid)[1] for tid in os.listdir(f"/proc/{pid}/task")}

    def spent(self) -> dict[str, float]:
        """group -> CPU seconds since construction. Python threads not named at construction
        (started since) count as "python (new)"; C threads as "native: <kernel name>"."""
        groups: dict[str, float] = {}
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            kernel_name, cpu = _stat(self.pid, tid)
            group = self.names.get(tid) or f"native: {re.sub(r'[0-9]+$', '', kernel_name)}"
            groups[group] = groups.get(group, 0.0) + cpu - self.start.get(tid, 0.0)
        return groups
