"""A local cluster on 127.0.0.1: generate its files once (devfiles.py), start and stop its member
processes, add and remove members, set up the demo.

`hsmnode dev` and the cluster tests both use this launcher, so tests exercise
the same processes, configs and certificates a user runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hsmnode import crypto
from hsmnode.client import ClusterStatus, HsmClient, HsmError, Tls, remove_member
from hsmnode.crypto.keys import new_smk
from hsmnode.ops.devfiles import (
    DEFAULT_BASE_PORT,
    MANIFEST,
    METRICS_PORT_OFFSET,
    PROFILE,
    RAFT_PORT_OFFSET,
    DevClusterError,
    DevMember,
    DevTimings,
    manifest_entry,
    node_toml,
    ports_free,
    write_cluster,
    write_secret,
)

__all__ = [  # the files' names too: `from hsmnode.ops.devcluster import ...` predates devfiles.py
    "DEFAULT_BASE_PORT",
    "MANIFEST",
    "METRICS_PORT_OFFSET",
    "PROFILE",
    "RAFT_PORT_OFFSET",
    "DevCluster",
    "DevClusterError",
    "DevMember",
    "DevTimings",
    "ports_free",
]


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


class DevCluster:
    def __init__(self, root: Path, cluster_id: str, members: list[DevMember]) -> None:
        self.root = root
        self.cluster_id = cluster_id
        self.members = members
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.netns: dict[str, str] = {}  # member id -> network namespace its process runs in
        self.timings = DevTimings()  # what add_member writes; create() keeps the cluster's

    # --- files ------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        nodes: int = 3,
        base_port: int = DEFAULT_BASE_PORT,
        timings: DevTimings | None = None,
        fault_injection: bool = False,
        smk: bytes | None = None,
        hosts: list[tuple[str, str]] | None = None,
        netns: list[str] | None = None,
        metrics: bool = False,
    ) -> DevCluster:
        """Write a new cluster's CA, certificates, configs and profile into `root`; a fresh SMK unless
        `smk` is given (a restore keeps the backed-up cluster's SMK: its keys are wrapped under it).

        `hosts` gives each member its (gRPC host, Raft host) instead of 127.0.0.1 and `netns` the
        network namespace its process runs in (`ip netns exec`): the fault suite's partitions.
        `metrics`: member i serves Prometheus /metrics on 127.0.0.1:base_port+METRICS_PORT_OFFSET+i."""
        timings = timings or DevTimings()
        root = root.resolve()
        cluster_id, members = write_cluster(
            root,
            nodes=nodes,
            base_port=base_port,
            timings=timings,
            fault_injection=fault_injection,
            smk=smk,
            hosts=hosts,
            metrics=metrics,
        )
        cluster = cls(root, cluster_id, members)
        cluster.timings = timings
        cluster.netns = dict(zip([m.id for m in members], netns or [], strict=False))
        return cluster

    @classmethod
    def open(cls, root: Path) -> DevCluster:
        root = root.resolve()
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except FileNotFoundError:
            raise DevClusterError(f"{root} holds no cluster ({MANIFEST} is missing)") from None
        members = [
            DevMember(m["id"], m["grpc"], m["raft"], root / m["id"], m.get("metrics"))
            for m in manifest["members"]
        ]
        return cls(root, manifest["cluster_id"], members)

    @property
    def profile_path(self) -> Path:
        return self.root / PROFILE

    def member(self, member_id: str) -> DevMember:
        for m in self.members:
            if m.id == member_id:
                return m
        raise DevClusterError(f"no member {member_id!r} (members: {', '.join(m.id for m in self.members)})")

    def tls(self) -> Tls:
        return Tls.from_files(self.root / "ca.pem", self.root / "admin.pem", self.root / "admin.key")

    def client(self, member_id: str | None = None, *, timeout: float = 5.0) -> HsmClient:
        """A client of the whole cluster, or of one member only."""
        endpoints = [self.member(member_id).grpc] if member_id else [m.grpc for m in self.members]
        return HsmClient(endpoints, self.tls(), timeout=timeout)

    # --- processes ----------------------------------------------------------

    def start(self, member_id: str | None = None) -> None:
        for m in [self.member(member_id)] if member_id else self.members:
            self._start_one(m)

    def _start_one(self, m: DevMember) -> None:
        proc = self._procs.get(m.id)
        if proc is not None and proc.poll() is None:
            return
        env = dict(os.environ, GRPC_ENABLE_FORK_SUPPORT="false", PYTHONUNBUFFERED="1")
        log = open(m.log_path, "ab")  # noqa: SIM115 - the child owns it
        prefix = ["ip", "netns", "exec", self.netns[m.id]] if m.id in self.netns else []
        self._procs[m.id] = subprocess.Popen(
            [*prefix, *self.serve_argv(m)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        # another process (a drill) can find, kill and see the member through this file
        (m.dir / "node.pid").write_text(f"{self._procs[m.id].pid}\n")

    def serve_argv(self, m: DevMember) -> list[str]:
        """The command line that runs member `m` (`hsmnode serve --config ...`); the test suite's
        launcher (tests/common/cluster.py) runs the same command with a lighter password hash."""
        return [sys.executable, "-m", "hsmnode", "serve", "--config", str(m.config_path)]

    def stop_process(self, member: DevMember) -> None:
        """Stop a node that is not (or no longer) in `members`, e.g. one made by make_standalone."""
        proc = self._procs.pop(member.id, None)
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            return
        with contextlib.suppress(OSError, ValueError):
            _terminate(int((member.dir / "node.pid").read_text()), 10.0)

    def pid_of(self, member_id: str) -> int | None:
        """The live process of a member, started by this launcher or another (from node.pid)."""
        member = self.member(member_id)
        try:
            pid = int((member.dir / "node.pid").read_text())
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except (OSError, ValueError):
            return None
        configs = [b for a, b in zip(args, args[1:], strict=False) if a == "--config"]
        configs += [a.removeprefix("--config=") for a in args if a.startswith("--config=")]
        # a member started by hand may name its config relative to its own working directory
        wanted = member.config_path.resolve()
        return pid if any((cwd / c).resolve() == wanted for c in configs) else None

    def running(self, member_id: str) -> bool:
        proc = self._procs.get(member_id)
        return proc is not None and proc.poll() is None

    def exit_code(self, member_id: str) -> int | None:
        proc = self._procs.get(member_id)
        return None if proc is None else proc.poll()

    def kill(self, member_id: str) -> None:
        """SIGKILL: the member dies without any chance to clean up."""
        proc = self._procs.get(member_id)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def stop(self, member_id: str | None = None, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL for a member that does not exit within `timeout`. Members another
        process restarted (a drill) are found through their pid files."""
        ids = [member_id] if member_id else [m.id for m in self.members]
        for mid in ids:
            pid = self.pid_of(mid)
            own = self._procs.get(mid)
            if pid is not None and (own is None or own.pid != pid):
                _terminate(pid, timeout)
        procs = [(i, self._procs[i]) for i in ids if i in self._procs]
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def wait_for_leader(self, timeout: float = 20.0, members: list[str] | None = None) -> ClusterStatus:
        """Wait until the given (default: all) members report one leader and are reachable."""
        wanted = set(members or [m.id for m in self.members])
        deadline = time.monotonic() + timeout
        last: str = "no answer yet"
        with self.client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                for mid in wanted:
                    code = self.exit_code(mid)
                    if code is not None and self.pid_of(mid) is None:  # not restarted by another process
                        raise DevClusterError(
                            f"member {mid} exited with code {code}; see {self.member(mid).log_path}"
                        )
                try:
                    status = client.cluster_status()
                    roles = {m.id: m.role for m in status.members}
                    leaders = [i for i, r in roles.items() if r == "leader"]
                    if (
                        status.leader
                        and len(leaders) == 1
                        and all(roles.get(i) in ("leader", "follower") for i in wanted)
                        and all(self._bootstrapped(i) for i in wanted)
                    ):
                        return status
                    last = f"roles {roles}"
                except HsmError as exc:
                    last = str(exc)
                time.sleep(0.1)
        raise DevClusterError(f"no leader within {timeout}s: {last}")

    def add_member(self, timeout: float = 30.0) -> DevMember:
        """A new member: certificate, config (every member as a peer), process, then Raft and the directory."""
        ca = crypto.PemPair((self.root / "ca.pem").read_bytes(), (self.root / "ca.key").read_bytes())
        numbers = [int(m.id.removeprefix("node")) for m in self.members if m.id.startswith("node")]
        n = max(numbers, default=0) + 1
        base = int(self.members[0].grpc.rpartition(":")[2]) - (
            int(self.members[0].id.removeprefix("node")) - 1
        )
        member = DevMember(
            id=f"node{n}",
            grpc=f"127.0.0.1:{base + n - 1}",
            raft=f"127.0.0.1:{base + RAFT_PORT_OFFSET + n - 1}",
            dir=self.root / f"node{n}",
        )
        metrics_port = base + METRICS_PORT_OFFSET + n - 1
        if self.members[0].metrics and ports_free([metrics_port]):
            # a taken metrics port leaves the new member without metrics rather than fail the addition
            member = dataclasses.replace(member, metrics=f"127.0.0.1:{metrics_port}")
        busy = [p for p in (member.grpc, member.raft) if not ports_free([int(p.rpartition(":")[2])])]
        if busy:
            raise DevClusterError(f"address(es) {', '.join(busy)} are in use")
        member.dir.mkdir(exist_ok=True)
        member.data_dir.mkdir(mode=0o700, exist_ok=True)
        smk = (self.members[0].data_dir / "smk.key").read_bytes()
        write_secret(member.data_dir / "smk.key", smk)
        pair = crypto.issue_certificate(ca, member.id, hosts=["127.0.0.1", "localhost"], server=True)
        (member.dir / "node.pem").write_bytes(pair.cert_pem)
        write_secret(member.dir / "node.key", pair.key_pem)
        member.config_path.write_text(node_toml(member, self.cluster_id, self.members, self.timings, False))
        demo = self.demo()
        assert demo is not None, "the demo's admin password is needed"
        with self.client(timeout=timeout) as client:
            admin = client.login("admin", demo["users"]["admin"])
            # no logout: it would end every session of admin (logout bumps the user's epoch)
            admin.add_member(member.id, raft_address=member.raft, address=member.grpc)
        self.members.append(member)
        self._save_manifest()
        self.start(member.id)
        return member

    def make_standalone(self, member_id: str, grpc_port: int, raft_port: int) -> DevMember:
        """A separate one-member cluster (own cluster id, Raft secret and SMK) whose node certificate
        this cluster's CA issued, started and bootstrapped (admin still has the factory password):
        a node ready to join. It is not one of this cluster's members; stop it with stop_process()."""
        ca = crypto.PemPair((self.root / "ca.pem").read_bytes(), (self.root / "ca.key").read_bytes())
        member = DevMember(
            member_id, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{raft_port}", self.root / member_id
        )
        member.dir.mkdir()
        member.data_dir.mkdir(mode=0o700)
        write_secret(member.data_dir / "smk.key", (new_smk().hex() + "\n").encode())
        write_secret(member.dir / "raft.secret", crypto.random_secret().encode() + b"\n")
        pair = crypto.issue_certificate(ca, member.id, hosts=["127.0.0.1", "localhost"], server=True)
        (member.dir / "node.pem").write_bytes(pair.cert_pem)
        write_secret(member.dir / "node.key", pair.key_pem)
        text = node_toml(member, crypto.random_id("c"), [], DevTimings(), False)
        member.config_path.write_text(
            text.replace('password_file = "../raft.secret"', 'password_file = "raft.secret"')
        )
        self._start_one(member)
        deadline = time.monotonic() + 30.0
        with HsmClient([member.grpc], self.tls(), timeout=5.0, discover=False) as client:
            while True:
                try:
                    status = client.node_status()
                    if status.replicated_cluster_id and status.ready:
                        return member
                except HsmError:
                    pass
                if time.monotonic() > deadline:
                    raise DevClusterError(f"standalone {member_id} did not start; see {member.log_path}")
                time.sleep(0.1)

    def remove_member(self, member_id: str, timeout: float = 30.0) -> None:
        """Take a member out of Raft and the directory (through another member), then stop it."""
        leaving = self.member(member_id)
        demo = self.demo()
        assert demo is not None, "the demo's admin password is needed"
        remove_member(
            [m.grpc for m in self.members], self.tls(), member_id, ("admin", demo["users"]["admin"]), timeout
        )
        self.stop(member_id)
        self.members.remove(leaving)
        self._save_manifest()

    def _save_manifest(self) -> None:
        manifest = {"cluster_id": self.cluster_id, "members": [manifest_entry(m) for m in self.members]}
        (self.root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        profile = self.profile()
        profile["endpoints"] = [m.grpc for m in self.members]
        write_secret(self.profile_path, (json.dumps(profile, indent=2) + "\n").encode())

    def profile(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.profile_path.read_text())
        return data

    def restored_from(self) -> dict[str, Any] | None:
        """The backup a restored cluster started from (hsmnode cluster restore), else None."""
        restored = self.profile().get("restored_from")
        return restored if isinstance(restored, dict) else None

    def demo(self) -> dict[str, Any] | None:
        """The demo credentials, once `bootstrap_demo` ran."""
        demo = self.profile().get("demo")
        return demo if isinstance(demo, dict) else None

    def bootstrap_demo(self) -> dict[str, Any]:
        """Set up the demo (see hsmnode.ops.demo) once; later calls return what the profile holds."""
        existing = self.demo()
        if existing is not None:
            return existing
        from hsmnode.ops.demo import CLUSTER_SO_CLIENT, DEMO_CLIENT, bootstrap

        demo = bootstrap(self.root, [m.grpc for m in self.members], self.tls())
        profile = self.profile()
        profile["client"] = {"name": DEMO_CLIENT, "cert": f"{DEMO_CLIENT}.pem", "key": f"{DEMO_CLIENT}.key"}
        profile["clients"] = {
            name: {"cert": f"{name}.pem", "key": f"{name}.key"} for name in (DEMO_CLIENT, CLUSTER_SO_CLIENT)
        }
        profile["demo"] = demo
        tmp = self.profile_path.with_suffix(".tmp")
        write_secret(tmp, (json.dumps(profile, indent=2) + "\n").encode())
        tmp.replace(self.profile_path)
        return demo

    def client_tls(self) -> Tls:
        return Tls.from_files(
            self.root / "ca.pem", self.root / "demo-client.pem", self.root / "demo-client.key"
        )

    def app_client(
        self, member_id: str | None = None, *, timeout: float = 5.0, index_from: HsmClient | None = None
    ) -> HsmClient:
        """A client presenting the demo NTLS client certificate (`index_from`: read that client's writes)."""
        endpoints = [self.member(member_id).grpc] if member_id else [m.grpc for m in self.members]
        return HsmClient(endpoints, self.client_tls(), timeout=timeout, index_from=index_from)

    def _bootstrapped(self, member_id: str) -> bool:
        """Is the member ready and has it applied the cluster's bootstrap (default accounts exist)?"""
        with self.client(member_id, timeout=2.0) as one:
            status = one.node_status()
            return status.ready and status.replicated_cluster_id == self.cluster_id

    def describe(self, status: ClusterStatus | None = None) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "dir": str(self.root),
            "profile": str(self.profile_path),
            "members": [{**manifest_entry(m), "log": str(m.log_path)} for m in self.members],
            "status": status.to_dict() if status else None,
        }
