"""Stage stamps and events of a member serving NodeStatus (`bench.status --trace DIR`; bench/findings/status.md,
"NodeStatus tail (stop 23)"). Not part of hsmnode: Python imports this file at start-up in every
process whose PYTHONPATH holds bench/status_trace, and it acts only in member processes (`hsmnode
serve`) with HSMNODE_STATUS_TRACE naming a directory.

It writes DIR/member-PID.jsonl, one JSON list per line, every time in seconds of time.monotonic()
(CLOCK_MONOTONIC: one clock for every process of the host, so the prober's stamps line up):

- ["ns", {...}]: one NodeStatus call: `loop` / `loop_end` the server loop taking it, `w0` / `w1` the
  pool worker's start and end (the answer handed to C-core), `msg` the request message's arrival on
  the server loop, `h0` / `h1` the handler (interceptors included), `wcpu` / `wrq` the worker's CPU and
  run-queue wait (s);
- ["h", method, h0, h1, w0, w1, wcpu]: any other unary call;
- ["gc", start, end, generation, collected, thread]: a collection over 1 ms, or any of generation 2;
- ["tick", start, end, cpu, run_queue, applies, apply_s, longest_apply_s, messages, message_s,
  time_to_wait]: a Raft tick over 2 ms of CPU or 20 ms of wall time beyond its poll wait;
- ["apply", start, end, payload_bytes] over 5 ms; ["drain", start, end, cpu] over 3 ms;
  ["compact", start, end] over 2 ms; ["fork", start, end, started]; ["freeze", start, end];
- ["read", start, end, lock_wait, held, thread]: `Replicator.read`, the state lock;
- ["late", start, end, lateness, run_queue]: a thread sleeping 2 ms woke over 3 ms late (lateness
  minus run-queue wait: its wait for the GIL).

It wraps grpcio 1.85's `grpc._server` internals and hsmnode's private Raft hooks: a bench tool for
one version, not for production members.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

_DIR = os.environ.get("HSMNODE_STATUS_TRACE")
_mono = time.monotonic
_cpu = time.thread_time


class _Out:
    """Records appended in memory, written by a daemon thread every 0.5 s (the member is killed)."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"member-{os.getpid()}.jsonl")
        self.buf: list[Any] = []
        threading.Thread(target=self._flush, daemon=True, name="status-trace-flush").start()

    def put(self, *record: Any) -> None:
        self.buf.append(record)

    def _flush(self) -> None:
        while True:
            time.sleep(0.5)
            buf, self.buf = self.buf, []
            if buf:
                with open(self.path, "a") as f:
                    f.writelines(json.dumps(r) + "\n" for r in buf)


def _run_queue_s() -> float:
    """This thread's time runnable but not running so far (s; schedstat field 2)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _trace_grpc(out: _Out) -> None:
    import grpc._server as gs

    handle_call, receive_message = gs._handle_call, gs._receive_message
    call_behavior, in_pool = gs._call_behavior, gs._unary_response_in_pool

    def _handle_call(rpc_event: Any, method_with_handler: Any, *args: Any, **kwargs: Any) -> Any:
        started = _mono()
        state, future = handle_call(rpc_event, method_with_handler, *args, **kwargs)
        if state is not None:
            method = rpc_event.call_details.method or (method_with_handler.name() or "").encode()
            state.status_trace = {"m": method.decode(errors="replace"), "loop": started, "loop_end": _mono()}
        return state, future

    def _receive_message(state: Any, call: Any, deserializer: Any) -> Any:
        callback = receive_message(state, call, deserializer)

        def stamped(event: Any) -> Any:
            stamps = getattr(state, "status_trace", None)
            if stamps is not None:
                stamps["msg"] = _mono()
            return callback(event)

        return stamped

    def _call_behavior(rpc_event: Any, state: Any, *args: Any, **kwargs: Any) -> Any:
        stamps = getattr(state, "status_trace", None)
        if stamps is not None:
            stamps["h0"] = _mono()
        try:
            return call_behavior(rpc_event, state, *args, **kwargs)
        finally:
            if stamps is not None:
                stamps["h1"] = _mono()

    def _unary_response_in_pool(rpc_event: Any, state: Any, *args: Any, **kwargs: Any) -> Any:
        stamps = getattr(state, "status_trace", None)
        if stamps is None:
            return in_pool(rpc_event, state, *args, **kwargs)
        stamps["w0"], cpu, queued = _mono(), _cpu(), _run_queue_s()
        try:
            return in_pool(rpc_event, state, *args, **kwargs)
        finally:
            stamps.update(w1=_mono(), wcpu=_cpu() - cpu, wrq=_run_queue_s() - queued)
            if stamps["m"].endswith("/NodeStatus"):
                out.put("ns", stamps)
            else:
                method = stamps["m"].rsplit("/", 1)[-1]
                out.put(
                    "h",
                    method,
                    stamps.get("h0"),
                    stamps.get("h1"),
                    stamps["w0"],
                    stamps["w1"],
                    stamps["wcpu"],
                )

    gs._handle_call, gs._receive_message = _handle_call, _receive_message
    gs._call_behavior, gs._unary_response_in_pool = _call_behavior, _unary_response_in_pool


def _timed(out: _Out, kind: str, fn: Any, over: float, extra: Any = None) -> Any:
    """`fn` wrapped: a ("kind", start, end[, extra(result)]) record when it took over `over` s."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = _mono()
        result = fn(*args, **kwargs)
        ended = _mono()
        if ended - started > over:
            out.put(kind, started, ended, *(() if extra is None else (extra(result),)))
        return result

    return wrapper


def _trace_raft(out: _Out) -> None:
    import hsmnode.raft.engine as engine
    import hsmnode.raft.snapshots as snapshots
    import hsmnode.replication as replication
    from hsmnode.raft.group_commit import GroupCommit

    tick: dict[str, float] = {}
    on_tick, on_message = engine.HsmSyncObj._onTick, engine.HsmSyncObj.__dict__["_SyncObj__onMessageReceived"]
    apply_payload, drain = replication.ReplicatedState.apply_payload, GroupCommit._checkCommandsToApply

    def _on_tick(self: Any, timeToWait: float = 0.0) -> None:  # noqa: N803 - pysyncobj's name
        tick.update(applies=0, apply_s=0.0, longest=0.0, messages=0, message_s=0.0)
        started, cpu, queued = _mono(), _cpu(), _run_queue_s()
        try:
            on_tick(self, timeToWait)
        finally:
            ended, used = _mono(), _cpu() - cpu
            if used > 0.002 or ended - started > 0.02 + timeToWait:
                out.put(
                    "tick", started, ended, used, _run_queue_s() - queued, tick["applies"], tick["apply_s"],
                    tick["longest"], tick["messages"], tick["message_s"], timeToWait,
                )  # fmt: skip

    def _on_message(self: Any, node: Any, message: Any) -> None:
        started = _mono()
        try:
            on_message(self, node, message)
        finally:
            tick["messages"] = tick.get("messages", 0) + 1
            tick["message_s"] = tick.get("message_s", 0.0) + _mono() - started

    def _apply_payload(self: Any, payload: bytes) -> Any:
        started = _mono()
        try:
            return apply_payload(self, payload)
        finally:
            took = _mono() - started
            tick["applies"] = tick.get("applies", 0) + 1
            tick["apply_s"] = tick.get("apply_s", 0.0) + took
            tick["longest"] = max(tick.get("longest", 0.0), took)
            if took > 0.005:
                out.put("apply", started, started + took, len(payload))

    def _drain(self: Any) -> None:
        started, cpu = _mono(), _cpu()
        drain(self)
        if _mono() - started > 0.003:
            out.put("drain", started, _mono(), _cpu() - cpu)

    def _read(self: Any, fn: Any) -> Any:
        started = _mono()
        with self.consumer.lock:
            got = _mono()
            try:
                return fn(self.consumer.state)
            finally:
                ended = _mono()
                out.put("read", started, ended, got - started, ended - got, threading.current_thread().name)

    engine.HsmSyncObj._onTick = _on_tick
    engine.HsmSyncObj._SyncObj__onMessageReceived = _on_message
    replication.ReplicatedState.apply_payload = _apply_payload
    replication.Replicator.read = _read
    GroupCommit._checkCommandsToApply = _drain
    compaction = snapshots.CompactionHold.__dict__["_SyncObj__tryLogCompaction"]
    snapshots.CompactionHold._SyncObj__tryLogCompaction = _timed(out, "compact", compaction, 0.002)
    snapshots.dump_in_child = _timed(out, "fork", snapshots.dump_in_child, 0.0, bool)
    freeze = _timed(out, "freeze", snapshots.freeze_long_lived, 0.0)
    snapshots.freeze_long_lived = engine.freeze_long_lived = replication.freeze_long_lived = freeze


def _trace_gc(out: _Out) -> None:
    import gc

    started: dict[int, float] = {}

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[threading.get_ident()] = _mono()
            return
        began = started.pop(threading.get_ident(), None)
        if began is not None and (_mono() - began > 0.001 or info.get("generation") == 2):
            thread = threading.current_thread().name
            out.put("gc", began, _mono(), info.get("generation"), info.get("collected"), thread)

    gc.callbacks.append(callback)


def _sleeper(out: _Out) -> None:
    while True:
        queued, started = _run_queue_s(), _mono()
        time.sleep(0.002)
        ended = _mono()
        if ended - started - 0.002 > 0.003:
            out.put("late", started, ended, ended - started - 0.002, _run_queue_s() - queued)


def _is_member() -> bool:
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return b"serve" in f.read().split(b"\0")
    except OSError:
        return False


if _DIR and _is_member():
    _out = _Out(_DIR)
    _trace_gc(_out)
    _trace_grpc(_out)
    _trace_raft(_out)
    threading.Thread(target=_sleeper, args=(_out,), daemon=True, name="status-trace-sleeper").start()
