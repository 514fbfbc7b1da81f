"""Bring the virtual cluster up, take it down, and say how it stands (with a measured link rate).

Command: distbench cluster up --nodes 2 --link 1Gbit     (as root)
         distbench cluster status
         distbench cluster down

What `up` creates, all of it named `distbench-...` so `down` finds it even without a state file:
the namespaces distbench-n0..n{N-1} and distbench-hub, the bridge and the hub's veth ends inside
distbench-hub (nothing in the root namespace, whose links and routes stay untouched), each
node's `distbench0` interface with its fixed address, /etc/netns/<node>/hosts (every node by
name and by its compose alias workerK), and under /run/distbench-vcluster/: state.json, the
hostfile for `distbench launch` (unless --hostfile names another path) and netns-rsh, the
ssh-like script through which MPICH's Hydra starts its proxies inside the nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from distbench.core.errors import DistbenchError
from distbench.system.files import write_whole
from distbench.vcluster import linktest
from distbench.vcluster.plan import hostfile_text, hosts_text, rsh_script, up_commands
from distbench.vcluster.spec import (
    DEFAULT_SUBNET,
    HUB,
    NODE_IFACE,
    NODE_NAME,
    Cluster,
    check_nodes,
    overlapping_routes,
    parse_rate,
    parse_subnet,
    plan_nodes,
)

STATE_DIR = Path("/run/distbench-vcluster")
STATE_NAME = "state.json"
HOSTFILE_NAME = "hosts"
RSH_NAME = "netns-rsh"
ETC_NETNS = Path("/etc/netns")  # where `ip netns exec` finds per-namespace /etc files
RUN_NETNS = Path("/run/netns")  # where `ip netns add` mounts the namespaces
COMMAND_TIMEOUT_S = 30.0
STOP_GRACE_S = 3.0
OUR_HOSTFILE = re.compile(r"(distbench-n\d+\n)*")


def require_root_and_tools() -> None:
    if os.geteuid() != 0:
        raise DistbenchError("the virtual cluster needs root (network namespaces, a bridge, tc); "
                             "run it with sudo")
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        raise DistbenchError(f"{' and '.join(missing)} not found: install iproute2")


def _run(cmd: list[str], check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if check and proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise DistbenchError(f"`{' '.join(cmd)}` failed: {why}")
    return proc.stdout


def _json(cmd: list[str]) -> list[dict[str, Any]]:
    """`ip -j`/`tc -j` output; they print nothing at all when there is nothing to list."""
    out = _run(cmd).strip()
    return json.loads(out) if out else []


def namespaces() -> list[str]:
    """Namespaces that carry the cluster's names, whoever left them."""
    names = [ns.get("name", "") for ns in _json(["ip", "-j", "netns", "list"])]
    return sorted(n for n in names if NODE_NAME.match(n))


def up(nodes: int, link: str, subnet: str = DEFAULT_SUBNET, hostfile: str | None = None,
       state_dir: Path = STATE_DIR) -> Cluster:
    """Build the cluster; on any failure take down what was built and raise."""
    check_nodes(nodes)
    rate = parse_rate(link)
    net = parse_subnet(subnet, nodes)
    require_root_and_tools()
    overlaps = overlapping_routes(net, _json(["ip", "-j", "-4", "route", "show", "table", "all"]))
    if overlaps:
        raise DistbenchError(f"subnet {net} overlaps this machine's route(s) {', '.join(overlaps)}"
                             "; choose another with --subnet")
    if namespaces() or (state_dir / STATE_NAME).exists():
        raise DistbenchError("a virtual cluster is already up (or was left behind); "
                             "run `distbench cluster down` first")
    hostfile_path = Path(hostfile).resolve() if hostfile else state_dir / HOSTFILE_NAME
    _check_hostfile_target(hostfile_path)
    cluster = Cluster(str(net), rate, plan_nodes(nodes, net), str(hostfile_path),
                      str(state_dir / RSH_NAME))
    try:
        for cmd in up_commands(cluster.nodes, cluster.prefixlen, rate):
            _run(cmd)
        _write_files(cluster, state_dir)  # the state file last: it means "complete"
    except BaseException:
        with contextlib.suppress(DistbenchError):  # the first error is the one to report
            down(state_dir)
        raise
    return cluster


def _check_hostfile_target(path: Path) -> None:
    """Root may overwrite anything: only a missing file or an earlier hostfile of ours."""
    if path.is_dir() or (path.exists() and not path.is_file()):
        raise DistbenchError(f"--hostfile {path} exists and is not a file")
    if path.is_file() and not OUR_HOSTFILE.fullmatch(path.read_text(errors="replace")):
        raise DistbenchError(f"--hostfile {path} exists and is not a distbench hostfile; "
                             "refusing to overwrite it")


def _write_files(cluster: Cluster, state_dir: Path) -> None:
    for node in cluster.nodes:
        folder = ETC_NETNS / node.name
        folder.mkdir(parents=True, exist_ok=True)
        write_whole(folder / "hosts", hosts_text(cluster.nodes), 0o644)
    state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_whole(Path(cluster.hostfile), hostfile_text(cluster.nodes), 0o644)
    write_whole(Path(cluster.rsh), rsh_script(cluster.nodes), 0o755)
    write_whole(state_dir / STATE_NAME, json.dumps(cluster.to_dict(), indent=1), 0o644)


def read_state(state_dir: Path = STATE_DIR) -> dict[str, Any] | None:
    """The state file's content; None when absent or unreadable (down cleans by name then)."""
    try:
        data = json.loads((state_dir / STATE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _recorded(state_dir: Path) -> Cluster | None:
    """The cluster the state file describes, None without one; a damaged file is an error."""
    data = read_state(state_dir)
    if data is None:
        return None
    try:
        return Cluster.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DistbenchError(f"{state_dir / STATE_NAME} is damaged ({exc}); run `distbench "
                             "cluster down` and bring it up again") from None


def load_cluster(state_dir: Path = STATE_DIR) -> Cluster:
    """The cluster that is up, for a launcher; a usage-level error when there is none."""
    cluster = _recorded(state_dir)
    if cluster is None:
        raise DistbenchError("no virtual cluster is up: run `distbench cluster up --nodes N "
                             "--link RATE` first (as root)")
    gone = [n.name for n in cluster.nodes if not (RUN_NETNS / n.name).exists()]
    if gone:
        raise DistbenchError(f"namespace(s) {', '.join(gone)} are gone; run `distbench cluster "
                             "down` and bring the cluster up again")
    return cluster


def down(state_dir: Path = STATE_DIR) -> list[str]:
    """Remove everything `up` made; returns the namespaces removed. Everything is found by its
    name, so a cluster whose state file is gone, or that `up` left half-built, goes too; running
    it twice, or with nothing up, is fine."""
    require_root_and_tools()
    names = namespaces()
    for ns in names:
        _stop_processes(ns)
        _run(["ip", "netns", "delete", ns], check=False)
    _remove_files(state_dir)
    left = namespaces()
    if left:
        raise DistbenchError(f"could not remove namespace(s) {', '.join(left)}")
    return names


def _stop_processes(namespace: str) -> None:
    """Processes still inside a namespace keep it (and its links) alive after `ip netns
    delete`: SIGTERM them, then SIGKILL what is left after a grace period."""
    pids = [int(p) for p in _run(["ip", "netns", "pids", namespace], check=False).split()
            if p.isdigit()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < end and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.05)


def _remove_files(state_dir: Path) -> None:
    """/etc/netns/<node>/ (and /etc/netns itself when that leaves it empty: `up` makes it, and
    nothing needs it empty), and the state folder. A hostfile written elsewhere (--hostfile)
    stays: it is the user's output."""
    if ETC_NETNS.is_dir():
        for folder in ETC_NETNS.iterdir():
            if NODE_NAME.match(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
        if not any(ETC_NETNS.iterdir()):
            ETC_NETNS.rmdir()
    for name in (STATE_NAME, HOSTFILE_NAME, RSH_NAME):
        (state_dir / name).unlink(missing_ok=True)
    if state_dir.is_dir() and not any(state_dir.iterdir()):
        state_dir.rmdir()


def status(state_dir: Path = STATE_DIR, seconds: float = 2.0,
           measure: bool = True) -> dict[str, Any]:
    """What is up: nodes with their actual addresses and tbf rates, and a measured link rate
    (node 0 to node 1, one TCP stream for `seconds`)."""
    require_root_and_tools()
    present = namespaces()
    cluster = _recorded(state_dir)
    if cluster is None:
        return {"up": False, "leftovers": present}
    nodes = [_node_status(n.name, n.alias, present) for n in cluster.nodes]
    result: dict[str, Any] = {
        "up": True, "subnet": cluster.subnet, "rate_bps": cluster.rate_bps,
        "hostfile": cluster.hostfile, "nodes": nodes,
        "leftovers": sorted(set(present) - {n.name for n in cluster.nodes} - {HUB}),
        "measured_bps": None, "measured_path": None,
    }
    if measure and len(nodes) >= 2 and nodes[0]["present"] and nodes[1]["present"]:
        src, dst = cluster.nodes[0], cluster.nodes[1]
        result["measured_bps"] = linktest.measure(src, dst, seconds)
        result["measured_path"] = f"{src.name} -> {dst.name}"
    return result


def _node_status(name: str, alias: str, present: list[str]) -> dict[str, Any]:
    """A node as the kernel has it now: its address and the rate of its tbf, if any."""
    if name not in present:
        return {"name": name, "alias": alias, "present": False, "address": None,
                "shaped_bps": None}
    links = _json(["ip", "-j", "-n", name, "-4", "addr", "show", "dev", NODE_IFACE])
    addresses = [a["local"] for link in links for a in link.get("addr_info", []) if "local" in a]
    qdiscs = _json(["tc", "-j", "-n", name, "qdisc", "show", "dev", NODE_IFACE])
    rates = [q["options"]["rate"] * 8 for q in qdiscs if q.get("kind") == "tbf"]
    return {"name": name, "alias": alias, "present": True,
            "address": addresses[0] if addresses else None,
            "shaped_bps": rates[0] if rates else None}
