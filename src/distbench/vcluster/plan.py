"""The `ip` and `tc` commands that build a virtual cluster, and the files it writes, as values.

Command: python -c "from distbench.vcluster.plan import *; from distbench.vcluster.spec import *;
                    import ipaddress; print(up_commands(plan_nodes(2,
                    ipaddress.ip_network(DEFAULT_SUBNET)), 24, 10**9))"

Every command names the namespace it acts in (`ip -n`, `tc -n`): the bridge lives in a hub
namespace and each veth pair is created there with its other end born inside the node's
namespace, so no interface, address or route ever appears in the root namespace, not even for a
moment. Each link is shaped on both of its ends' egress with a token bucket (tbf), which limits
bandwidth only: there is no delay emulation (the kernel here has no netem).
"""

from __future__ import annotations

import shlex

from distbench.vcluster.spec import BRIDGE, HUB, NODE_IFACE, Node

TBF_LATENCY = "50ms"  # the most a packet may wait in the bucket's queue before being dropped
MIN_BURST = 64 * 1024


def tbf_burst(rate_bps: int) -> int:
    """One millisecond of traffic, at least 64 KiB: veth hands tbf whole 64 KiB GSO segments,
    and a bucket smaller than one would split them and hold the rate below its setting."""
    return max(MIN_BURST, rate_bps // 8 // 1000)


def shape(namespace: str, device: str, rate_bps: int) -> list[str]:
    return ["tc", "-n", namespace, "qdisc", "replace", "dev", device, "root", "tbf",
            "rate", f"{rate_bps}bit", "burst", str(tbf_burst(rate_bps)),
            "latency", TBF_LATENCY]


def up_commands(nodes: list[Node], prefixlen: int, rate_bps: int) -> list[list[str]]:
    """The hub with its bridge, then every node; run in order, they build the whole cluster."""
    hub = ["ip", "-n", HUB]
    cmds = [["ip", "netns", "add", HUB],
            [*hub, "link", "add", BRIDGE, "type", "bridge"],
            [*hub, "link", "set", BRIDGE, "up"]]
    for node in nodes:
        cmds += node_commands(node, prefixlen, rate_bps)
    return cmds


def node_commands(node: Node, prefixlen: int, rate_bps: int) -> list[list[str]]:
    hub = ["ip", "-n", HUB]
    here = ["ip", "-n", node.name]
    return [
        ["ip", "netns", "add", node.name],
        [*hub, "link", "add", node.hub_port, "type", "veth",
         "peer", "name", NODE_IFACE, "netns", node.name],
        [*hub, "link", "set", node.hub_port, "master", BRIDGE, "up"],
        [*here, "addr", "add", f"{node.address}/{prefixlen}", "dev", NODE_IFACE],
        [*here, "link", "set", NODE_IFACE, "up"],
        [*here, "link", "set", "lo", "up"],
        shape(node.name, NODE_IFACE, rate_bps),
        shape(HUB, node.hub_port, rate_bps),
    ]


def hosts_text(nodes: list[Node]) -> str:
    """/etc/hosts as every node sees it (`ip netns exec` bind-mounts /etc/netns/<name>/hosts):
    each node by its name and by the alias `distbench launch compose` gives its container."""
    lines = ["127.0.0.1 localhost", "::1 localhost"]
    lines += [f"{n.address} {n.name} {n.alias}" for n in nodes]
    return "\n".join(lines) + "\n"


def hostfile_text(nodes: list[Node]) -> str:
    """The hostfile for `distbench launch`: one node name per line, node 0 first."""
    return "".join(f"{n.name}\n" for n in nodes)


def rsh_script(nodes: list[Node]) -> str:
    """A shell script used the way ssh is: `netns-rsh [-x] HOST COMMAND...` runs COMMAND in
    HOST's namespace. Hydra's ssh launcher calls it (`-launcher-exec`) with `-x`, the host and
    the proxy command as one shell line, which `sh -c` runs as a remote shell would. HOST may be
    a node's name, alias or address; anything else is refused."""
    cases = "\n".join(
        f"  {'|'.join(shlex.quote(h) for h in (n.name, n.alias, n.address))}) "
        f"ns={shlex.quote(n.name)} ;;"
        for n in nodes
    )
    return f"""#!/bin/sh
# Run a command on a node of the distbench virtual cluster, as ssh would on a real node.
[ "$1" = "-x" ] && shift
case "$1" in
{cases}
  *) echo "netns-rsh: '$1' is not a node of the virtual cluster" >&2; exit 255 ;;
esac
shift
exec ip netns exec "$ns" sh -c "$*"
"""
