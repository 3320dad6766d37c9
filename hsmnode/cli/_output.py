"""How the CLI reads and prints: data files or stdin, `--json` or human lines, column tables, and one-line errors (exit status 1)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import click


def emit(as_json: bool, data: Any, human: Callable[[], object]) -> None:
    """`data` as indented JSON on stdout with --json, else whatever `human` prints."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        human()


def emit_record(as_json: bool, record: Any) -> None:
    """One dataclass: as JSON, or one `field: value` line per field."""
    emit_fields(as_json, dataclasses.asdict(record))


def emit_fields(as_json: bool, data: dict[str, Any]) -> None:
    """A dict: as JSON, or one `key: value` line per key."""

    def human() -> None:
        for k, v in data.items():
            click.echo(f"{k}: {text(v)}")

    emit(as_json, data, human)


def text(value: Any) -> str:
    """A field's value for the human view, never a Python literal:

        ("demo-client", "ops")                    demo-client, ops
        {"po_can_reset_co": True, "max": 3}       po_can_reset_co=on, max=3
        ({"role": "CO", "locked": False, "must_change_password": True, "failed_logins": 0},)
                                                  CO (must change password)
        () / {} / None                            -

    A record in a list prints as its first value (its name) with, in parentheses, the flags that
    are set and the other fields that are not zero or empty. Top-level scalars print as they are.
    """
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_scalar(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_item(v) if isinstance(v, dict) else text(v) for v in value) or "-"
    return str(value)


def _scalar(value: Any) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else text(value)


def _item(record: dict[str, Any]) -> str:
    name, *rest = record.items()
    notes = [
        k.replace("_", " ") if v is True else f"{k.replace('_', ' ')} {text(v)}"
        for k, v in rest
        if v not in (0, "", (), [], {}, None)  # False == 0: an unset flag is left out
    ]
    return f"{name[1]} ({', '.join(notes)})" if notes else str(name[1])


def fail(as_json: bool, code: str, message: str) -> NoReturn:
    """The CLI's error contract: `error: CODE: message` on stderr (or `{"error": {...}}` on stdout
    with --json), exit status 1."""
    if as_json:
        click.echo(json.dumps({"error": {"code": code, "message": message}}, indent=2))
    else:
        click.echo(f"error: {code}: {message}", err=True)
    sys.exit(1)


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a human table: `header`, the cell (an attribute name of the row, or a function
    of it), the width it is padded to (0: not padded; the last column usually), right-aligned or
    not, and what follows the cell (one space; `sep` for the `a -> b: c` shapes)."""

    header: str
    value: str | Callable[[Any], object]
    width: int = 0
    right: bool = False
    sep: str = " "

    def cell(self, row: Any) -> str:
        raw = getattr(row, self.value) if isinstance(self.value, str) else self.value(row)
        return self.pad(text(raw))

    def pad(self, text: str) -> str:
        if not self.width:
            return text
        return text.rjust(self.width) if self.right else text.ljust(self.width)


def table(rows: Iterable[Any], columns: Iterable[Column], *, header: bool = True, indent: str = "") -> None:
    """Print `rows` as aligned columns, under a header line of the columns' headers when `header`."""
    cols = list(columns)

    def line(cells: list[str]) -> str:
        out = "".join(cell + col.sep for cell, col in zip(cells[:-1], cols[:-1], strict=True))
        return indent + out + cells[-1]

    if header:
        click.echo(line([col.pad(col.header) for col in cols]))
    for row in rows:
        click.echo(line([col.cell(row) for col in cols]))


def emit_table(
    as_json: bool,
    rows: list[Any],
    columns: Iterable[Column],
    *,
    header: bool = True,
    data: Any = None,
) -> None:
    """A listing: with --json `data` (default: each row as a dict), else the rows as a table."""
    emit(
        as_json,
        [dataclasses.asdict(r) for r in rows] if data is None else data,
        lambda: table(rows, columns, header=header),
    )


def read_input(path: str) -> bytes:
    """The bytes of file `path`, or of stdin for "-"; click.FileError (exit 1, no traceback) when
    the file cannot be read."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise click.FileError(path, hint=exc.strerror) from None


def write_output(path: str | None, data: bytes) -> None:
    """`data` into file `path`, or to stdout for None or "-"."""
    if path is None or path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            Path(path).write_bytes(data)
        except OSError as exc:
            raise click.FileError(path, hint=exc.strerror) from None
