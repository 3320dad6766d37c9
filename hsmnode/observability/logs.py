"""Log lines of a member process: `text` (one human line) or `json` (one object per line).

`--log-format json` (or `[log] format = "json"`, `HSMNODE_LOG_FORMAT=json`) writes every record
as one JSON object: `time` (UTC, ISO 8601 with ms), `level`, `logger`, `member`, `message`, and
the record's structured fields (`fields=` in `extra`), e.g. a request's `request_id`, `actor`,
`method`, `code`, `duration_ms`, or a Raft event's `event` and `term`. Exceptions come as
`exception` (the traceback text).

No secret is ever a field: requests.py logs who, what and how it ended, never a request's or an
answer's body, and never the session token (see tests/integration/test_observability.py, which
greps a walkthrough's logs for every password, PIN, token and key used).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any

from hsmnode.config import LOG_FORMATS

FIELDS = "fields"  # the `extra` key of a record's structured fields


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a structured record: log.info("...", extra=fields(event="snapshot", bytes=10))."""
    return {FIELDS: values}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self, member: str) -> None:
        super().__init__()
        self._member = member

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": f"{_utc_second(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "member": self._member,
            "message": record.getMessage(),
        }
        extra = getattr(record, FIELDS, None)
        if isinstance(extra, dict):
            out.update({k: v for k, v in extra.items() if k not in out})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return "".join(_JSON_LINE(out, 0))


def _text(value: Any) -> str:
    return str(value)


# json.dumps(out, default=str, separators=(",", ":")) without building an encoder per record (as
# domain/jsonform.py does: its set-up was half of a request record's formatting); the same text
# (tests/unit/test_observability.py), but a structure that contains itself raises RecursionError
_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # json's C accelerator (not in typeshed)
_JSON_LINE: Any = (
    _make_encoder(None, _text, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    if _make_encoder is not None
    else json.JSONEncoder(default=str, separators=(",", ":")).iterencode
)


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    """The record's second as the JSON `time` writes it (UTC), formatted once per second: a request
    record is made per call, on the request's thread."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


class TextFormatter(logging.Formatter):
    """logging.Formatter, with `asctime` (local time, the default format) formatted once per second."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        msec_format = self.default_msec_format
        if datefmt is not None or msec_format is None or self.converter is not time.localtime:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second  # one tuple, read and replaced whole: safe across threads
        if cached[0] != second:
            cached = self._second = (second, time.strftime(self.default_time_format, time.localtime(second)))
        return msec_format % (cached[1], record.msecs)


def configure(level: str, log_format: str, member: str) -> None:
    """Set up the root logger of a member process (stderr). `level`: debug|info|warning|error."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(member))
    else:
        handler.setFormatter(TextFormatter(f"%(asctime)s {member} %(levelname)s %(name)s: %(message)s"))
    # no formatter here writes a record's thread or process: not looked up for every record (about
    # half of a LogRecord's making, once per request and per CryptoStream batch)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
