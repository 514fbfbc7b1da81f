"""The virtual cluster's pure parts, anywhere, without root: rates, subnets, the commands that
build it, the files it writes, and the commands that launch into it.

Command: python -m pytest tests/unit/test_vcluster_plan.py
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest

from distbench.core.errors import DistbenchError, UsageError
from distbench.launch import netns
from distbench.launch.compose import ComposeJob
from distbench.launch.multinode import MultiNode
from distbench.vcluster import cluster as vc
from distbench.vcluster.plan import (
    hostfile_text,
    hosts_text,
    rsh_script,
    tbf_burst,
    up_commands,
)
from distbench.vcluster.spec import (
    HUB,
    NODE_IFACE,
    Cluster,
    format_rate,
    overlapping_routes,
    parse_rate,
    parse_subnet,
    plan_nodes,
)

NET = ipaddress.IPv4Network("10.213.0.0/24")


def make_cluster(n: int = 2) -> Cluster:
    return Cluster(str(NET), 200_000_000, plan_nodes(n, NET), "/run/x/hosts", "/run/x/netns-rsh")


@pytest.mark.parametrize("text,bps", [
    ("200Mbit", 200_000_000), ("1Gbit", 10**9), ("5Gbit", 5 * 10**9), ("1gbit", 10**9),
    ("2.5Gbit/s", 2_500_000_000), ("800kbit", None), ("1500kbit", 1_500_000),
])
def test_rates(text, bps):
    if bps is None:
        with pytest.raises(UsageError, match="outside"):
            parse_rate(text)
    else:
        assert parse_rate(text) == bps


@pytest.mark.parametrize("text", ["1Gbps", "1GB", "", "-1Gbit", "0Mbit", "500Gbit", "1e9bit",
                                  "1 Gbit;rm -rf /", "Gbit"])
def test_bad_rates_are_one_line_usage_errors(text):
    with pytest.raises(UsageError) as info:
        parse_rate(text)
    assert "\n" not in str(info.value)


def test_format_rate():
    assert [format_rate(b) for b in (2e8, 1e9, 5e9, 1.5e6)] == ["200Mbit", "1Gbit", "5Gbit",
                                                                 "1.5Mbit"]


@pytest.mark.parametrize("text,why", [
    ("fd00::/64", "not IPv4"), ("8.8.8.0/24", "not a private"), ("127.0.0.0/24", "not a private"),
    ("169.254.0.0/16", "not a private"), ("10.0.0.1/24", "host bits"), ("10.0.0.0/30", "room"),
    ("nonsense", "bad subnet"),
])
def test_bad_subnets(text, why):
    with pytest.raises(UsageError, match=why):
        parse_subnet(text, 3)


def test_overlap_with_routes():
    """The default route does not count (it covers everything); every other route does."""
    routes = [
        {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
        {"dst": "192.0.2.0/24", "dev": "eth0"},
        {"dst": "10.0.0.0/8", "dev": "tun0"},
        {"type": "local", "dst": "127.0.0.0/8", "dev": "lo", "table": "local"},
        {"dst": "fd00::/64", "dev": "eth0"},
        {"dst": 12}, {"dst": "garbage"}, {},
    ]
    assert overlapping_routes(NET, routes) == ["10.0.0.0/8 dev tun0"]
    assert overlapping_routes(ipaddress.IPv4Network("192.0.2.128/25"), routes) == [
        "192.0.2.0/24 dev eth0"]
    assert overlapping_routes(ipaddress.IPv4Network("172.31.0.0/16"), routes) == []


def test_nodes_names_and_addresses():
    nodes = plan_nodes(3, NET)
    assert [(n.name, n.address, n.alias, n.hub_port) for n in nodes] == [
        ("distbench-n0", "10.213.0.1", "worker0", "dbh-n0"),
        ("distbench-n1", "10.213.0.2", "worker1", "dbh-n1"),
        ("distbench-n2", "10.213.0.3", "worker2", "dbh-n2"),
    ]
    assert all(len(n.hub_port) <= 15 for n in plan_nodes(64, ipaddress.IPv4Network("10.0.0.0/16")))


def test_up_commands_never_act_in_the_root_namespace():
    """Every command names its namespace, and each link is shaped on both ends."""
    cmds = up_commands(plan_nodes(2, NET), 24, 10**9)
    for cmd in cmds:
        assert cmd[:3] == ["ip", "netns", "add"] or cmd[1] == "-n", cmd
    tbf = [(c[2], c[6]) for c in cmds if c[0] == "tc"]
    assert tbf == [("distbench-n0", NODE_IFACE), (HUB, "dbh-n0"),
                   ("distbench-n1", NODE_IFACE), (HUB, "dbh-n1")]
    veth = next(c for c in cmds if "veth" in c)
    assert veth[:3] == ["ip", "-n", HUB] and veth[-2:] == ["netns", "distbench-n0"]
    assert ["ip", "-n", "distbench-n1", "addr", "add", "10.213.0.2/24", "dev", NODE_IFACE] in cmds


def test_tbf_burst():
    assert tbf_burst(200_000_000) == 64 * 1024
    assert tbf_burst(5 * 10**9) == 625_000  # one millisecond at 5 Gbit/s


def test_hosts_and_hostfile():
    nodes = plan_nodes(2, NET)
    assert "10.213.0.2 distbench-n1 worker1\n" in hosts_text(nodes)
    assert hostfile_text(nodes) == "distbench-n0\ndistbench-n1\n"


def test_rsh_script_enters_known_nodes_only(tmp_path):
    """The script as Hydra runs it, with a stand-in `ip` that prints its arguments."""
    script = tmp_path / "netns-rsh"
    script.write_text(rsh_script(plan_nodes(2, NET)))
    fake_ip = tmp_path / "ip"
    fake_ip.write_text('#!/bin/sh\necho "$@"\n')
    fake_ip.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, env=env)

    ok = call("-x", "worker1", '"/bin/proxy" --port 1')
    assert ok.returncode == 0
    assert ok.stdout.strip() == 'netns exec distbench-n1 sh -c "/bin/proxy" --port 1'
    assert call("10.213.0.1", "true").stdout.startswith("netns exec distbench-n0 ")
    bad = call("-x", "distbench-hub", "true")
    assert bad.returncode == 255 and "not a node" in bad.stderr


def test_cluster_lookup_and_state_roundtrip():
    c = make_cluster()
    assert c.node("worker1") == c.node("10.213.0.2") == c.node("distbench-n1")
    with pytest.raises(UsageError, match="not a node"):
        c.node("localhost")
    assert Cluster.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    bad = c.to_dict()
    bad["nodes"][0]["name"] = "eth0"
    with pytest.raises(ValueError):
        Cluster.from_dict(bad)


def test_refusals_without_root_or_tools(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(DistbenchError, match="needs root"):
        vc.require_root_and_tools()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(vc.shutil, "which", lambda tool: None)
    with pytest.raises(DistbenchError, match="ip and tc not found"):
        vc.require_root_and_tools()


def test_up_checks_its_input_before_anything(monkeypatch):
    monkeypatch.setattr(vc, "_run", lambda cmd, check=True: pytest.fail(f"ran {cmd}"))
    with pytest.raises(UsageError, match="bad link rate"):
        vc.up(2, "fast")
    with pytest.raises(UsageError, match="--nodes"):
        vc.up(65, "1Gbit")


def test_hostfile_target_is_never_a_foreign_file(tmp_path):
    foreign = tmp_path / "notes"
    foreign.write_text("important\n")
    with pytest.raises(DistbenchError, match="refusing"):
        vc._check_hostfile_target(foreign)
    ours = tmp_path / "hosts"
    ours.write_text("distbench-n0\ndistbench-n1\n")
    vc._check_hostfile_target(ours)
    vc._check_hostfile_target(tmp_path / "new")


def test_load_cluster_without_one(tmp_path):
    with pytest.raises(DistbenchError, match="no virtual cluster is up"):
        vc.load_cluster(tmp_path)
    (tmp_path / vc.STATE_NAME).write_text('{"nodes": 3}')
    with pytest.raises(DistbenchError, match="damaged"):
        vc.load_cluster(tmp_path)


def job(launcher: str, strategy: str, nproc: int = 1) -> MultiNode:
    return MultiNode(launcher, strategy, ["distbench-n0", "worker1"], nproc, ["--epochs", "1"],
                     29500, "/py", "/run/x/hosts", netns=True)


def test_torchrun_commands():
    first, second = netns.netns_commands(job("torchrun", "ddp"), make_cluster())
    assert first[:4] == ["ip", "netns", "exec", "distbench-n0"]
    assert second[:4] == ["ip", "netns", "exec", "distbench-n1"]
    assert "GLOO_SOCKET_IFNAME=distbench0" in second and "UCX_TLS=tcp,self" in second
    assert "--rdzv-endpoint=10.213.0.1:29500" in second and "--node-rank=1" in second
    assert second[-5:] == ["worker", "--strategy", "ddp", "--epochs", "1"]


def test_mpiexec_command(monkeypatch):
    monkeypatch.setattr(netns, "mpiexec_path", lambda: "/bin/mpiexec")
    (cmd,) = netns.netns_commands(job("mpiexec", "mpi", nproc=2), make_cluster())
    assert cmd[:4] == ["ip", "netns", "exec", "distbench-n0"]
    i = cmd.index("/bin/mpiexec")
    assert cmd[i:i + 13] == ["/bin/mpiexec", "-f", "/run/x/hosts", "-n", "4", "-ppn", "2",
                             "-launcher", "ssh", "-launcher-exec", "/run/x/netns-rsh",
                             "-iface", "distbench0"]
    assert cmd[cmd.index("MASTER_ADDR") + 1] == "10.213.0.1"


def test_tf_config_is_compose_s():
    """Each node gets the TF_CONFIG the compose writer gives the container of the same rank."""
    cmds = netns.netns_commands(job("torchrun", "tf-multiworker"), make_cluster())
    for rank, cmd in enumerate(cmds):
        want = ComposeJob("tf-multiworker", 2, []).environment(rank)["TF_CONFIG"]
        assert f"TF_CONFIG={want}" in cmd
        assert "torch.distributed.run" not in cmd


def test_multinode_netns_validation():
    job("torchrun", "tf-multiworker").validate()
    with pytest.raises(UsageError, match="one worker per node"):
        job("torchrun", "tf-multiworker", nproc=2).validate()
    with pytest.raises(UsageError, match="mpiexec launches"):
        job("mpiexec", "tf-multiworker").validate()
    plain = MultiNode("torchrun", "tf-multiworker", ["a", "b"], 1, [])
    with pytest.raises(UsageError, match="torchrun launches"):
        plain.validate()


def test_cli_parses_and_checks(tmp_path):
    from distbench.cli import cluster as cli
    from distbench.cli.main import Parser

    parser = Parser(prog="distbench")
    cli.add_parser(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    args = parser.parse_args(["cluster", "up", "--nodes", "3", "--link", "5Gbit",
                              "--hostfile", str(tmp_path / "h")])
    assert (args.action, args.nodes, args.link, args.func) == ("up", 3, "5Gbit", cli.run)
    with pytest.raises(UsageError, match="--seconds"):
        cli.run(parser.parse_args(["cluster", "status", "--seconds", "0"]))
    with pytest.raises(UsageError):
        parser.parse_args(["cluster", "sideways"])


def test_a_failed_up_takes_down_what_it_built(monkeypatch, tmp_path):
    """The first failing command is the error reported, and `down` runs before it is raised."""
    ran: list[list[str]] = []
    downs: list[Path] = []

    def fake_run(cmd: list[str], check: bool = True) -> str:
        ran.append(cmd)
        if cmd[0] == "tc":
            raise DistbenchError("`tc ...` failed: Unknown qdisc \"tbf\"")
        return ""

    monkeypatch.setattr(vc, "require_root_and_tools", lambda: None)
    monkeypatch.setattr(vc, "_json", lambda cmd: [])
    monkeypatch.setattr(vc, "_run", fake_run)
    monkeypatch.setattr(vc, "down", lambda state_dir: downs.append(state_dir) or [])
    with pytest.raises(DistbenchError, match="Unknown qdisc"):
        vc.up(2, "1Gbit", hostfile=str(tmp_path / "hosts"), state_dir=tmp_path / "state")
    assert downs == [tmp_path / "state"]
    assert ran[-1][0] == "tc" and not (tmp_path / "state" / vc.STATE_NAME).exists()
