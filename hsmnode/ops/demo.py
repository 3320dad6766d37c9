"""The ready-to-use demo `hsmnode dev` sets up on a new cluster, through the SDK like any user:

- admin's factory password replaced; the HSM initialized (SO password);
- the `audit` user enabled, its Auditor role initialized; `operator` and `monitor` enabled;
- partition `demo` created by the SO; a self-signed NTLS client certificate `demo-client`
  registered and assigned to it;
- over NTLS: the partition initialized (PO), the CO and CU initialized and their initial
  passwords changed;
- the cluster partition `cluster`, held by a second client `cluster-so` whose PO is the
  cluster security officer; it creates keyring `demo-ring` and assigns it to `demo-client`,
  whose KRSO changes the initial credential and sets the KRCO.

Every credential is written under the profile's `demo` key: a dev-only convenience.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from hsmnode import crypto
from hsmnode.client import HsmClient, IndexTracker, Tls

DEMO_PARTITION = "demo"
DEMO_CLIENT = "demo-client"
CLUSTER_PARTITION = "cluster"
CLUSTER_SO_CLIENT = "cluster-so"
DEMO_KEYRING = "demo-ring"


def dev_password() -> str:
    """A random password that meets the appliance rule (3 of 4 character classes)."""
    return f"Dev-{secrets.token_hex(6)}-Pw9"


def _wait_applied_everywhere(endpoints: list[str], tls: Tls, index: int, timeout: float = 10.0) -> None:
    """Registration changes the TLS trust list: wait until every member has applied it."""
    deadline = time.monotonic() + timeout
    for endpoint in endpoints:
        with HsmClient([endpoint], tls, timeout=2.0) as one:
            while one.node_status().applied_index < index:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"member {endpoint} did not apply index {index} in {timeout}s")
                time.sleep(0.05)


def bootstrap(root: Path, endpoints: list[str], admin_tls: Tls) -> dict[str, Any]:
    names = (
        "admin",
        "operator",
        "monitor",
        "audit",
        "so",
        "auditor",
        "po",
        "co",
        "cu",
        "cluster_po",
        "krso",
        "krco",
    )
    pw = {k: dev_password() for k in names}
    first = {k: dev_password() for k in ("operator", "monitor", "audit", "co", "cu", "krso")}
    client_pair = _client_certificate(root, DEMO_CLIENT)
    so_pair = _client_certificate(root, CLUSTER_SO_CLIENT)
    # one read-your-writes index for the three clients below: each reads what the others wrote
    seen = IndexTracker()

    with HsmClient(endpoints, admin_tls, index_from=seen) as hsm:
        with hsm.login("admin", "PASSWORD", new_password=pw["admin"]) as admin:
            admin.init_hsm("hsmnode-dev", pw["so"])
            for user in ("operator", "monitor", "audit"):
                admin.set_user_password(user, first[user])
                admin.set_user_enabled(user, True)
            with admin.hsm_login(pw["so"]) as so:
                so.create_partition(DEMO_PARTITION)
                so.create_partition(CLUSTER_PARTITION, cluster=True)
            admin.register_client(DEMO_CLIENT, client_pair.cert_pem.decode())
            admin.assign_client(DEMO_CLIENT, DEMO_PARTITION)
            admin.register_client(CLUSTER_SO_CLIENT, so_pair.cert_pem.decode())
            admin.assign_client(CLUSTER_SO_CLIENT, CLUSTER_PARTITION)
        for user in ("operator", "monitor"):
            hsm.change_password(user, first[user], pw[user])
        with hsm.login("audit", first["audit"], new_password=pw["audit"]) as audit:
            audit.init_auditor(pw["auditor"])
        _wait_applied_everywhere(endpoints, admin_tls, hsm.seen_index)

    client_tls = Tls(admin_tls.ca_pem, client_pair.cert_pem, client_pair.key_pem)
    with HsmClient(endpoints, client_tls, index_from=seen) as app:
        app.init_partition(
            DEMO_PARTITION, label="demo partition", cloning_domain="hsmnode-dev", po_password=pw["po"]
        )
        with app.open_session(DEMO_PARTITION, pw["po"], role="PO") as po:
            po.init_role("CO", first["co"])
        app.change_partition_password(DEMO_PARTITION, "CO", first["co"], pw["co"])
        with app.open_session(DEMO_PARTITION, pw["co"], role="CO") as co:
            co.init_role("CU", first["cu"])
        app.change_partition_password(DEMO_PARTITION, "CU", first["cu"], pw["cu"])

    cluster_so_tls = Tls(admin_tls.ca_pem, so_pair.cert_pem, so_pair.key_pem)
    with HsmClient(endpoints, cluster_so_tls, index_from=seen) as cluster_so:
        cluster_so.init_partition(
            CLUSTER_PARTITION,
            label="cluster partition",
            cloning_domain="hsmnode-dev",
            po_password=pw["cluster_po"],
        )
        with cluster_so.open_session(CLUSTER_PARTITION, pw["cluster_po"], role="PO") as po:
            po.create_keyring(DEMO_KEYRING, first["krso"])
            po.assign_keyring(DEMO_KEYRING, DEMO_CLIENT)
    with HsmClient(endpoints, client_tls, index_from=seen) as app:
        app.change_partition_password(DEMO_KEYRING, "KRSO", first["krso"], pw["krso"])
        with app.open_session(DEMO_KEYRING, pw["krso"], role="KRSO") as krso:
            krso.set_krco(pw["krco"])

    return {
        "note": "dev-only demo credentials written by `hsmnode dev`; never use a dev directory for real keys",
        "users": {k: pw[k] for k in ("admin", "operator", "monitor", "audit")},
        "hsm": {"label": "hsmnode-dev", "so_password": pw["so"], "auditor_password": pw["auditor"]},
        "partition": {
            "name": DEMO_PARTITION,
            "po_password": pw["po"],
            "co_password": pw["co"],
            "cu_password": pw["cu"],
        },
        "client": DEMO_CLIENT,
        "cluster_partition": {
            "name": CLUSTER_PARTITION,
            "po_password": pw["cluster_po"],
            "client": CLUSTER_SO_CLIENT,
        },
        "keyring": {"label": DEMO_KEYRING, "krso_password": pw["krso"], "krco_password": pw["krco"]},
    }


def _client_certificate(root: Path, name: str) -> crypto.PemPair:
    pair = crypto.self_signed_client_certificate(name)
    (root / f"{name}.pem").write_bytes(pair.cert_pem)
    key_path = root / f"{name}.key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(pair.key_pem)
    return pair
