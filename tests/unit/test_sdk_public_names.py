"""The SDK's public names are the ones the README documents: `hsmnode.client.__all__` equals the
names listed under "Public names" in the README's SDK section (parsed, so the two cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

import hsmnode.client

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_names() -> list[str]:
    """The backquoted identifiers of the README's "**Public names.**" paragraph, in its SDK section.
    A name is an identifier alone in its backquotes; code such as `name, slots = ...` is not one."""
    sdk = README.read_text().split("\n## SDK\n", 1)[1].split("\n## ", 1)[0]
    paragraph = sdk.split("**Public names.**", 1)[1].split("\n\n", 1)[0]
    return [name for name in re.findall(r"`([^`]+)`", paragraph) if name.isidentifier() and name != "__all__"]


def test_readme_documents_exactly_the_names_hsmnode_client_exports() -> None:
    documented = documented_names()
    assert documented, "the README's SDK section lists no public names under **Public names.**"
    exported = hsmnode.client.__all__
    assert len(set(exported)) == len(exported), "hsmnode.client.__all__ names a name twice"
    assert set(exported) - set(documented) == set(), "exported but not in README's SDK section"
    assert set(documented) - set(exported) == set(), "in README's SDK section but not exported"


def test_every_exported_name_exists() -> None:
    missing = [name for name in hsmnode.client.__all__ if not hasattr(hsmnode.client, name)]
    assert missing == []
