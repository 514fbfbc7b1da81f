"""What a virtual cluster is made of, as values: names, addresses, the link rate, the subnet.

Command: python -c "from distbench.vcluster.spec import parse_rate; print(parse_rate('1Gbit'))"

Everything here is pure (no `ip`, no root), so the rules that keep the cluster away from the
host's own network are tested anywhere: the subnet must be private IPv4 and overlap no route of
the root namespace, names carry one fixed prefix that `down` can find again, and every count and
rate has a bound.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import Any

from distbench.core.errors import UsageError

PREFIX = "distbench-"
HUB = f"{PREFIX}hub"  # the namespace holding the bridge, so the root namespace stays untouched
BRIDGE = f"{PREFIX}br0"
NODE_IFACE = "distbench0"  # each node's end of its veth pair: the same name in every node
NODE_NAME = re.compile(rf"^{PREFIX}(hub|n\d+)$")  # every namespace the cluster may have created
DEFAULT_SUBNET = "10.213.0.0/24"
MAX_NODES = 64
MIN_RATE_BPS = 1_000_000
MAX_RATE_BPS = 100_000_000_000

_RATE = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)bit(?:/s)?$", re.IGNORECASE)
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def node_name(index: int) -> str:
    return f"{PREFIX}n{index}"


def parse_rate(text: str) -> int:
    """Bits/s from '200Mbit', '1Gbit', '5Gbit' (also 'kbit', '/s' and decimals: '2.5Gbit/s').

    Only bits: tc reads 'mbps' as megabytes, so byte units are refused rather than guessed."""
    match = _RATE.match(text.strip())
    if not match:
        raise UsageError(f"bad link rate '{text}'; write it in bits, e.g. 200Mbit, 1Gbit, 5Gbit")
    bps = round(float(match[1]) * _SCALE[match[2].lower()])
    if not MIN_RATE_BPS <= bps <= MAX_RATE_BPS:
        raise UsageError(f"link rate '{text}' is outside {format_rate(MIN_RATE_BPS)}.."
                         f"{format_rate(MAX_RATE_BPS)}")
    return bps


def format_rate(bps: float) -> str:
    for unit, scale in (("Gbit", 10**9), ("Mbit", 10**6), ("kbit", 10**3)):
        if bps >= scale:
            return f"{bps / scale:.4g}{unit}"
    return f"{bps:.0f}bit"


def parse_subnet(text: str, nodes: int) -> ipaddress.IPv4Network:
    """A private IPv4 network with room for `nodes` addresses; anything else is a usage error."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise UsageError(f"bad subnet '{text}': {exc}; e.g. {DEFAULT_SUBNET}") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise UsageError(f"subnet '{text}' is not IPv4; e.g. {DEFAULT_SUBNET}")
    if not net.is_private or net.is_loopback or net.is_link_local or net.is_multicast:
        raise UsageError(f"subnet {net} is not a private range (10/8, 172.16/12, 192.168/16)")
    if net.num_addresses - 2 < nodes:
        raise UsageError(f"subnet {net} has room for {max(0, net.num_addresses - 2)} node(s), "
                         f"not {nodes}")
    return net


def check_nodes(nodes: int) -> None:
    if not 1 <= nodes <= MAX_NODES:
        raise UsageError(f"--nodes must be between 1 and {MAX_NODES}, got {nodes}")


def overlapping_routes(net: ipaddress.IPv4Network, routes: list[dict[str, Any]]) -> list[str]:
    """The routes (from `ip -j route show table all`) whose destination overlaps `net`.

    The default route covers every address and would refuse every subnet, so it does not count;
    the local table's entries do (127.0.0.0/8, the host's own addresses and broadcasts)."""
    found = []
    for route in routes:
        dst = route.get("dst")
        if not isinstance(dst, str) or dst == "default":
            continue
        try:
            other = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if isinstance(other, ipaddress.IPv4Network) and other.overlaps(net):
            dev = route.get("dev")
            found.append(f"{dst} dev {dev}" if isinstance(dev, str) else dst)
    return found


@dataclass(frozen=True)
class Node:
    """One node: its namespace name, address, compose-style alias and its port on the bridge."""

    name: str
    address: str
    alias: str  # workerK, the host name `distbench launch compose` gives container K
    hub_port: str  # the veth end inside the hub namespace, enslaved to the bridge


def plan_nodes(count: int, net: ipaddress.IPv4Network) -> list[Node]:
    """Node K gets the subnet's (K+1)-th address: 10.213.0.1, 10.213.0.2, ..."""
    return [Node(node_name(k), str(net.network_address + k + 1), f"worker{k}", f"dbh-n{k}")
            for k in range(count)]


@dataclass(frozen=True)
class Cluster:
    """A cluster that is up, as its state file records it."""

    subnet: str
    rate_bps: int
    nodes: list[Node]
    hostfile: str
    rsh: str  # the script that runs a command on a node, as ssh would (Hydra's launcher)

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    def node(self, host: str) -> Node:
        """The node a host name, alias or address names; anything else is a usage error."""
        for n in self.nodes:
            if host in (n.name, n.alias, n.address):
                return n
        raise UsageError(f"host '{host}' is not a node of the virtual cluster "
                         f"({', '.join(n.name for n in self.nodes)}); see `distbench cluster "
                         "status`")

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cluster:
        """Rebuilt from the state file, checking every name so an edited file cannot aim `ip`
        elsewhere."""
        nodes = [Node(**n) for n in data["nodes"]]
        for n in nodes:
            if not NODE_NAME.match(n.name) or not re.fullmatch(r"dbh-n\d+", n.hub_port):
                raise ValueError(f"unexpected node {n.name}")
            ipaddress.IPv4Address(n.address)
        return cls(str(ipaddress.ip_network(data["subnet"])), int(data["rate_bps"]), nodes,
                   str(data["hostfile"]), str(data["rsh"]))
