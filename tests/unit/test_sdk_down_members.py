"""The SDK's members out of the rotation and their background probe (hsmnode/client/_down.py)."""

from __future__ import annotations

import threading
import time

from hsmnode.client._down import DownMembers


def _until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


class Probe:
    """A probe whose answer the test sets; counts its calls."""

    def __init__(self) -> None:
        self.serving = False
        self.calls = 0
        self.fail = False

    def __call__(self, endpoint: str) -> bool:
        self.calls += 1
        if self.fail:
            raise RuntimeError("unreachable")
        return self.serving


def test_a_failed_member_stays_out_until_a_probe_finds_it_serving() -> None:
    probe = Probe()
    down = DownMembers(probe, interval=0.01)
    try:
        down.mark("a:1")
        assert down.healthy(["a:1", "b:2"]) == ["b:2"]
        _until(lambda: probe.calls >= 5)  # several probe rounds, still out
        assert "a:1" in down
        probe.serving = True
        _until(lambda: "a:1" not in down)
        assert down.healthy(["a:1", "b:2"]) == ["a:1", "b:2"]
    finally:
        down.close()


def test_a_probe_that_raises_counts_as_not_serving() -> None:
    probe = Probe()
    probe.fail = True
    down = DownMembers(probe, interval=0.01)
    try:
        down.mark("a:1")
        _until(lambda: probe.calls >= 3)
        assert "a:1" in down
    finally:
        down.close()


def test_an_answer_brings_a_member_back_at_once_and_dropped_members_are_not_probed() -> None:
    probe = Probe()
    down = DownMembers(probe, interval=3600.0)  # no probe within the test
    try:
        down.mark("a:1")
        down.mark("b:2")
        down.clear("a:1")
        assert "a:1" not in down and "b:2" in down
        down.forget(["a:1"])
        assert "b:2" not in down
        assert probe.calls == 0
    finally:
        down.close()


def test_the_prober_thread_ends_when_nothing_is_out_and_on_close() -> None:
    probe = Probe()
    probe.serving = True
    down = DownMembers(probe, interval=0.01)
    down.mark("a:1")
    _until(lambda: "a:1" not in down)
    _until(lambda: not any(t.name == "hsm-probe" and t.is_alive() for t in threading.enumerate()))
    probe.serving = False
    down.mark("a:1")
    down.close()
    assert "a:1" not in down
    _until(lambda: not any(t.name == "hsm-probe" and t.is_alive() for t in threading.enumerate()))
    down.mark("b:2")  # closed: ignored
    assert "b:2" not in down
