"""`hsmnode dev` stops on SIGTERM/SIGINT through a lock-free flag (hsmnode/cli/dev.py StopRequest)."""

from __future__ import annotations

import os
import signal
import threading
import time

from hsmnode.cli.dev import StopRequest, _stop_on_signals


def test_sigterm_during_a_wait_requests_the_stop() -> None:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop = _stop_on_signals()
        assert stop.wait(0.01) is False
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
        started = time.monotonic()
        while not stop.wait(0.5):
            assert time.monotonic() - started < 30, "SIGTERM never requested the stop"
        assert stop.requested
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_stop_request_holds_no_lock_a_signal_handler_could_block_on() -> None:
    # threading.Event.set() takes the Event's lock; a handler running while the main thread holds it
    # (inside Event.wait) blocks for ever. StopRequest.set() takes none: set while "waiting" returns.
    stop = StopRequest()
    locks = (threading.Event, threading.Condition, type(threading.Lock()), type(threading.RLock()))
    assert not any(isinstance(v, locks) for v in vars(stop).values())
    stop.set()
    assert stop.wait(10.0) is True
