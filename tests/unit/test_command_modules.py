"""commands.py is the one place callers take commands from: every command class of the command modules
(hsmnode/domain/*_commands.py) is exported there, so a command added to a family module and not to
commands.py fails here, not in a caller (decode knows only the classes some import registered)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from hsmnode.domain import commands as c

DOMAIN = Path(c.__file__).parent
FAMILIES = sorted(p.stem for p in DOMAIN.glob("*_commands.py"))


def test_the_command_families_are_found() -> None:
    assert FAMILIES == ["admin_commands", "cluster_commands", "key_commands"]


@pytest.mark.parametrize("family", FAMILIES)
def test_commands_exports_every_command_of(family: str) -> None:
    module = importlib.import_module(f"hsmnode.domain.{family}")
    defined = [
        cls
        for cls in vars(module).values()
        if inspect.isclass(cls) and issubclass(cls, c.Command) and cls.__module__ == module.__name__
    ]
    assert defined, f"{family}.py defines no command"
    missing = sorted(cls.__name__ for cls in defined if cls.__name__ not in c.__all__)
    assert missing == [], f"commands.py does not export {missing} of {family}.py"
    for cls in defined:
        assert getattr(c, cls.__name__) is cls
        assert c.command_types()[cls.TYPE] is cls, f"{cls.__name__} is not registered under {cls.TYPE!r}"


def test_every_exported_name_exists() -> None:
    assert len(set(c.__all__)) == len(c.__all__), "commands.__all__ names a name twice"
    assert [name for name in c.__all__ if not hasattr(c, name)] == []
