"""Build replicated states for domain tests by applying commands, as the cluster would.

Password hashes are opaque to the domain (the proposer verifies passwords), so tests
use readable stand-ins like "hash:admin".
"""

from __future__ import annotations

import itertools
from typing import Any

from hsmnode.domain import commands as c
from hsmnode.domain.apply import apply
from hsmnode.domain.result import Result
from hsmnode.domain.state import HsmState

FP_CLIENT = "a" * 64
FP_OTHER = "b" * 64
FP_ADMIN_CERT = "c" * 64
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class World:
    """An HsmState plus helpers that apply commands with fresh request ids and a moving clock."""

    def __init__(self) -> None:
        self.state = HsmState()
        self._ids = itertools.count(1)
        self.now = 1_700_000_000_000

    def apply(self, cls: type[c.Command], actor: str, **fields: Any) -> Result:
        self.now += 1000
        self.last_request_id = f"r{next(self._ids)}"
        return apply(
            self.state, cls(actor=actor, request_id=self.last_request_id, timestamp=self.now, **fields)
        )

    def ok(self, cls: type[c.Command], actor: str, **fields: Any) -> Result:
        result = self.apply(cls, actor, **fields)
        assert result.ok, result
        return result

    # --- actors -------------------------------------------------------------

    def user(self, name: str) -> str:
        return f"user:{name}#{self.state.users[name].credential.epoch}"

    def hsm_role(self, name: str, role: str) -> str:
        cred = self.state.hsm.so if role == "SO" else self.state.hsm.auditor
        assert cred is not None
        return f"{self.user(name)}/hsm:{role}#{cred.epoch}"

    def client(self, fp: str = FP_CLIENT) -> str:
        client = self.state.client_by_fingerprint(fp)
        assert client is not None
        return f"client:{fp}#{client.epoch}"

    def partition_session(self, partition: str, role: str, fp: str = FP_CLIENT) -> str:
        client = self.state.client_by_fingerprint(fp)
        assert client is not None
        cred = self.state.partitions[partition].roles[role]
        return f"{self.client(fp)}/partition:{partition}:{role}#{cred.epoch}#{client.sessions.get(f'{partition}:{role}', 0)}"

    # --- set-up steps -------------------------------------------------------------

    def login_target_epoch(self, target: str) -> int:
        kind, _, rest = target.partition(":")
        if kind == "user":
            return self.state.users[rest].credential.epoch
        if target == "hsm:SO":
            assert self.state.hsm.so
            return self.state.hsm.so.epoch
        if target == "hsm:AU":
            assert self.state.hsm.auditor
            return self.state.hsm.auditor.epoch
        name, _, role = rest.rpartition(":")
        holder = self.state.keyrings[name] if kind == "keyring" else self.state.partitions[name]
        return holder.roles[role].epoch

    def set_own_password(self, actor: str, target: str) -> None:
        self.ok(
            c.ChangePassword,
            actor,
            target=target,
            password_hash=f"hash:{target}:new",
            verified_epoch=self.login_target_epoch(target),
        )


def booted() -> World:
    """Cluster bootstrapped; admin's factory password changed."""
    w = World()
    w.ok(
        c.InitCluster,
        "node:node1",
        cluster_id="c-test",
        default_password_hashes=("hash:admin", "hash:operator", "hash:monitor", "hash:audit"),
    )
    w.set_own_password(f"cert:{FP_ADMIN_CERT}", "user:admin")
    return w


def with_users() -> World:
    """Plus operator, monitor and audit enabled with their passwords set."""
    w = booted()
    for name in ("operator", "monitor", "audit"):
        w.ok(c.UserSetPassword, w.user("admin"), name=name, password_hash=f"hash:{name}:1")
        w.ok(c.UserSetEnabled, w.user("admin"), name=name, enabled=True)
        w.set_own_password(f"cert:{FP_ADMIN_CERT}", f"user:{name}")
    return w


def with_partition(name: str = "pay") -> World:
    """Plus an initialized HSM with an Auditor, partition `name` with PO, CO and CU, client assigned."""
    w = with_users()
    w.ok(c.HsmInit, w.user("admin"), label="hsm", so_password_hash="hash:so")
    w.ok(c.AuditorInit, w.user("audit"), password_hash="hash:au")
    w.ok(c.PartitionCreate, w.hsm_role("admin", "SO"), name=name)
    w.ok(c.ClientRegister, w.user("admin"), name="app", cert_pem=PEM, fingerprint=FP_CLIENT)
    w.ok(c.ClientAssign, w.user("admin"), name="app", partition=name)
    w.ok(c.PartitionInit, w.client(), name=name, label=name, cloning_domain="dom", po_password_hash="hash:po")
    w.ok(c.PartitionRoleInit, w.partition_session(name, "PO"), name=name, role="CO", password_hash="hash:co0")
    w.set_own_password(w.client(), f"partition:{name}:CO")
    w.ok(c.PartitionRoleInit, w.partition_session(name, "CO"), name=name, role="CU", password_hash="hash:cu0")
    w.set_own_password(w.client(), f"partition:{name}:CU")
    return w
