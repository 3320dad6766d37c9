"""Members in network namespaces, with a Raft network that can be cut and a client network that stays.

    root namespace (the test, the SDK)          10.78.K.254 ──┐
                                                               │ client bridge (in the hub namespace)
    member i's namespace:  gRPC on 10.78.K.i ─────────────────┤
                           Raft on 10.77.K.i ───── Raft bridge (in the hub namespace)

`cut(member)` takes the member's port on the Raft bridge down: it loses every other member
(a real partition, no RST: its TCP connections just stop) while the test still reaches its
gRPC port and sees what it serves. `heal(member)` brings it back. Everything is made with
`ip` and removed on exit, also when the test fails. K is drawn from this pytest-xdist worker's share
of 10-249 (every n-th value) among those no address of the root namespace uses, so neither two workers
of a run nor (mostly) two runs collide; the names carry K.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.common.cluster import xdist_worker


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def netns_unavailable() -> str | None:
    """Why namespace tests cannot run here, or None."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"hsmprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` failed: {exc.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@dataclass
class Topology:
    tag: str
    subnet: int
    members: int
    hub: str = ""
    names: list[str] = field(default_factory=list)

    def ns(self, i: int) -> str:
        return f"{self.tag}m{i}"

    def grpc_host(self, i: int) -> str:
        return f"10.78.{self.subnet}.{i}"

    def raft_host(self, i: int) -> str:
        return f"10.77.{self.subnet}.{i}"

    def hosts(self) -> list[tuple[str, str]]:
        return [(self.grpc_host(i), self.raft_host(i)) for i in range(1, self.members + 1)]

    def namespaces(self) -> list[str]:
        return [self.ns(i) for i in range(1, self.members + 1)]

    def cut(self, i: int) -> None:
        """Partition member i (1-based) from every other member; its client network stays."""
        _ip("-n", self.hub, "link", "set", f"{self.tag}rb{i}", "down")

    def heal(self, i: int) -> None:
        _ip("-n", self.hub, "link", "set", f"{self.tag}rb{i}", "up")


def _free_subnet() -> int:
    """A K of this worker's share whose 10.77.K.0/24 and 10.78.K.0/24 no root-namespace address uses."""
    index, count = xdist_worker()
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show"], check=True, capture_output=True, text=True)
    used = {int(word.split(".")[2]) for word in shown.stdout.split() if word.startswith(("10.77.", "10.78."))}
    free = [k for k in range(10 + index, 250, count) if k not in used]
    if not free:
        raise RuntimeError(f"no free 10.77.K/10.78.K subnet for pytest-xdist worker {index} of {count}")
    return random.choice(free)


@contextmanager
def topology(members: int) -> Iterator[Topology]:
    subnet = _free_subnet()
    tag = f"h{subnet:02x}{random.randrange(16**2):02x}"  # interface names: 15 characters at most
    topo = Topology(tag=tag, subnet=subnet, members=members, hub=f"{tag}hub")
    root_veth = f"{tag}c0"
    made_root_veth = False  # another run's interface of the same name is not ours to delete
    try:
        _ip("netns", "add", topo.hub)
        topo.names.append(topo.hub)
        _ip("-n", topo.hub, "link", "set", "lo", "up")
        for bridge in ("brr", "brc"):
            _ip("-n", topo.hub, "link", "add", bridge, "type", "bridge")
            _ip("-n", topo.hub, "link", "set", bridge, "up")
        # the root namespace on the client bridge
        _ip("link", "add", root_veth, "type", "veth", "peer", "name", f"{tag}cb0", "netns", topo.hub)
        made_root_veth = True
        _ip("addr", "add", f"10.78.{topo.subnet}.254/24", "dev", root_veth)
        _ip("link", "set", root_veth, "up")
        _ip("-n", topo.hub, "link", "set", f"{tag}cb0", "master", "brc", "up")
        for i in range(1, members + 1):
            ns = topo.ns(i)
            _ip("netns", "add", ns)
            topo.names.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            for net, bridge, host in (("r", "brr", topo.raft_host(i)), ("c", "brc", topo.grpc_host(i))):
                inner, outer = f"{tag}{net}{i}", f"{tag}{net}b{i}"
                _ip("-n", ns, "link", "add", inner, "type", "veth", "peer", "name", outer, "netns", topo.hub)
                _ip("-n", ns, "addr", "add", f"{host}/24", "dev", inner)
                _ip("-n", ns, "link", "set", inner, "up")
                _ip("-n", topo.hub, "link", "set", outer, "master", bridge, "up")
        yield topo
    finally:
        if made_root_veth:
            subprocess.run(["ip", "link", "del", root_veth], capture_output=True)
        for ns in reversed(topo.names):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
