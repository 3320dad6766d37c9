"""The SDK's rooms (README, SDK section): the sessions stand on the transport, never on the façade
(tests/test_layering.py finds any import circle inside hsmnode/client), and no module of it is over
500 lines."""

from __future__ import annotations

from tests.test_layering import ROOT, imports_of

CLIENT = ROOT / "client"
SESSION_MODULES = ("_session", "_appliance", "_partition", "_keyrings", "_mofn", "_grants")


def test_sessions_hold_the_transport_and_never_import_the_facade() -> None:
    assert "hsmnode.client._transport" in imports_of(CLIENT / "_session.py")
    for module in SESSION_MODULES:
        imported = imports_of(CLIENT / f"{module}.py")
        assert "hsmnode.client._client" not in imported, f"{module}.py imports the façade (_client.py)"


def test_no_client_module_over_500_lines() -> None:
    long = {p.name: n for p in CLIENT.glob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}, f"split these SDK modules (one job each, under ~500 lines): {long}"
