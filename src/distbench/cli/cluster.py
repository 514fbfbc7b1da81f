"""`distbench cluster up|down|status`: a virtual cluster of network namespaces on this machine.

Command: sudo distbench cluster up --nodes 2 --link 1Gbit
         sudo distbench cluster status
         sudo distbench launch torchrun --netns --nodes 2 \
             --hostfile /run/distbench-vcluster/hosts --strategy ddp -- --dataset mnist-5k
         sudo distbench cluster down

Links are shaped in bandwidth only (tc tbf on both ends of every veth); delay is not emulated.
"""

from __future__ import annotations

import argparse
from typing import Any

from distbench.core.errors import UsageError
from distbench.vcluster.spec import DEFAULT_SUBNET, format_rate

NOTE = "shaped both ways by tc tbf: bandwidth only, delay is not shaped"


def add_parser(subparsers: Any) -> None:
    """Register `cluster` and its actions on the top-level subparsers."""
    p = subparsers.add_parser(
        "cluster", help="a virtual cluster on this machine: namespaces on shaped links (root)",
        description=f"N network namespaces on one bridge, every link {NOTE}.")
    actions = p.add_subparsers(dest="action", required=True, parser_class=type(p))

    a = actions.add_parser("up", help="create the namespaces, bridge and shaped links")
    a.add_argument("--nodes", type=int, default=2, help="namespaces (default: %(default)s)")
    a.add_argument("--link", default="1Gbit",
                   help="rate of every link, in bits: 200Mbit, 1Gbit, 5Gbit (default: %(default)s)")
    a.add_argument("--subnet", default=DEFAULT_SUBNET,
                   help="private IPv4 subnet for the nodes, overlapping no route here "
                        "(default: %(default)s)")
    a.add_argument("--hostfile", help="where to write the hostfile for `distbench launch` "
                                      "(default: /run/distbench-vcluster/hosts)")

    actions.add_parser("down", help="remove all of it (also what an earlier run left behind)")

    a = actions.add_parser("status", help="nodes, addresses, rates, and a measured link rate")
    a.add_argument("--seconds", type=float, default=2.0,
                   help="length of the measuring transfer (default: %(default)s)")
    a.add_argument("--no-measure", action="store_true", help="do not measure the link")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from distbench.vcluster import cluster

    if args.action == "up":
        made = cluster.up(args.nodes, args.link, args.subnet, args.hostfile)
        print(f"virtual cluster up: {len(made.nodes)} node(s) on {made.subnet}, every link "
              f"{format_rate(made.rate_bps)}, {NOTE}")
        for node in made.nodes:
            print(f"  {node.name}  {node.address}  (also {node.alias})")
        print(f"hostfile {made.hostfile}:")
        print("\n".join(node.name for node in made.nodes))
        print(f"run into it: distbench launch torchrun --netns --nodes {len(made.nodes)} "
              f"--hostfile {made.hostfile} --strategy ddp -- <run flags>")
        return 0
    if args.action == "down":
        removed = cluster.down()
        print(f"removed {', '.join(removed)}" if removed else "nothing to remove")
        return 0
    if not 0.2 <= args.seconds <= 60:
        raise UsageError(f"--seconds must be between 0.2 and 60, got {args.seconds:g}")
    print_status(cluster.status(seconds=args.seconds, measure=not args.no_measure))
    return 0


def print_status(st: dict[str, Any]) -> None:
    if not st["up"]:
        left = st["leftovers"]
        print("no virtual cluster is up" + (f"; left behind: {', '.join(left)} (run `distbench "
                                            "cluster down`)" if left else ""))
        return
    print(f"virtual cluster: {len(st['nodes'])} node(s) on {st['subnet']}, configured "
          f"{format_rate(st['rate_bps'])} per link, {NOTE}; hostfile {st['hostfile']}")
    for n in st["nodes"]:
        shaped = format_rate(n["shaped_bps"]) if n["shaped_bps"] else "not shaped"
        print(f"  {n['name']}  {n['address'] or 'no address'}  ({n['alias']})  "
              f"{shaped if n['present'] else 'MISSING'}")
    if st["measured_bps"] is not None:
        print(f"measured {st['measured_path']}: {st['measured_bps'] / 1e6:.0f} Mbit/s "
              f"(one TCP stream, payload only)")
    if st["leftovers"]:
        print(f"left behind: {', '.join(st['leftovers'])}")
