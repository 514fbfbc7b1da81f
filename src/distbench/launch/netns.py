"""Multi-node launches into the virtual cluster: each node's part runs inside its namespace.

Command: distbench cluster up --nodes 2 --link 1Gbit      (as root, first)
         distbench launch torchrun --netns --nodes 2 --hostfile /run/distbench-vcluster/hosts \
             --strategy ddp -- --dataset mnist-5k

How each launcher enters the namespaces:
- torchrun: one `ip netns exec <node> python -m torch.distributed.run --node-rank=K ...` per
  node, static rendezvous on node 0's address.
- mpiexec (MPICH Hydra): one mpiexec, itself inside the first node's namespace, with
  `-launcher ssh -launcher-exec <the cluster's netns-rsh>`: Hydra starts each node's proxy, and
  so its ranks, through that script, which enters the node's namespace as ssh would enter the
  node; `-iface distbench0` puts Hydra's own connections on the node interface.
- TF_CONFIG strategies (one worker per node, as compose runs one per container): the worker in
  each namespace, with the TF_CONFIG `distbench launch compose` writes (worker0:2222, ...);
  `workerK` names node K in the namespaces' hosts files, so the run has compose's network layout.

Every command runs under `env` with variables that keep each library's traffic on the node
interface, so that no byte passes between "nodes" through loopback or shared memory, which
would bypass the shaped links.
"""

from __future__ import annotations

from typing import Protocol

from distbench.core.errors import UsageError
from distbench.launch.compose import ComposeJob
from distbench.launch.local import mpiexec_path
from distbench.launch.scripts import worker_args
from distbench.strategies import Launcher, strategy_info
from distbench.vcluster.cluster import load_cluster
from distbench.vcluster.spec import NODE_IFACE, Cluster, Node

# Each library's own way of choosing an interface. Left alone, gloo binds the address of the
# machine's host name (which no namespace resolves, so it falls back to loopback), and UCX (under
# MPICH's ch4:ucx) sees the peers on the same machine and talks through shared memory.
NET_ENV = {
    "GLOO_SOCKET_IFNAME": NODE_IFACE,
    "UCX_NET_DEVICES": NODE_IFACE,
    "UCX_TLS": "tcp,self",
    "FI_TCP_IFACE": NODE_IFACE,  # MPICH's ch4:ofi, libfabric's tcp provider
}


class NodeJob(Protocol):
    """What a multi-node launch knows (`launch.multinode.MultiNode` has these fields)."""

    launcher: str
    strategy: str
    hosts: list[str]
    nproc_per_node: int
    run_args: list[str]
    port: int
    python: str
    hostfile: str


def in_node(node: Node, cmd: list[str], env: dict[str, str] | None = None) -> list[str]:
    """`cmd` run inside `node`'s namespace, under the interface variables (and `env`)."""
    variables = {**NET_ENV, **(env or {})}
    return ["ip", "netns", "exec", node.name, "env",
            *(f"{k}={v}" for k, v in variables.items()), *cmd]


def check_netns(strategy: str, nproc_per_node: int) -> None:
    if strategy_info(strategy).launcher is Launcher.TF_CONFIG and nproc_per_node != 1:
        raise UsageError(f"{strategy} runs one worker per node under --netns (compose's layout: "
                         f"one per container), not --nproc-per-node {nproc_per_node}")


def netns_commands(job: NodeJob, cluster: Cluster | None = None) -> list[list[str]]:
    """The commands that run `job` across the nodes of the virtual cluster (the one up now
    unless `cluster` is given): one per node, or one mpiexec for all."""
    cluster = cluster or load_cluster()
    nodes = [cluster.node(h) for h in job.hosts]
    if strategy_info(job.strategy).launcher is Launcher.TF_CONFIG:
        return tf_config_commands(nodes, job.strategy, job.run_args, job.python)
    program = worker_args(job.strategy, job.run_args)
    if job.launcher == "mpiexec":
        return [mpiexec_command(cluster, nodes, job.nproc_per_node, job.port, job.python,
                                job.hostfile, program)]
    return torchrun_commands(nodes, job.nproc_per_node, job.port, job.python, program)


def torchrun_commands(nodes: list[Node], nproc_per_node: int, port: int, python: str,
                      program: list[str]) -> list[list[str]]:
    """One torchrun per node; `program` follows the interpreter (`-m distbench worker ...`)."""
    return [
        in_node(node, [python, "-m", "torch.distributed.run", f"--nnodes={len(nodes)}",
                       f"--node-rank={rank}", f"--nproc-per-node={nproc_per_node}",
                       "--rdzv-backend=static", f"--rdzv-endpoint={nodes[0].address}:{port}",
                       *program])
        for rank, node in enumerate(nodes)
    ]


def mpiexec_command(cluster: Cluster, nodes: list[Node], nproc_per_node: int, port: int,
                    python: str, hostfile: str, program: list[str]) -> list[str]:
    """Hydra in the first node, reaching every node (itself included) through netns-rsh."""
    return in_node(nodes[0], [
        mpiexec_path(), "-f", hostfile, "-n", str(len(nodes) * nproc_per_node),
        "-ppn", str(nproc_per_node), "-launcher", "ssh", "-launcher-exec", cluster.rsh,
        "-iface", NODE_IFACE, "-genv", "MASTER_ADDR", nodes[0].address,
        "-genv", "MASTER_PORT", str(port), python, *program,
    ])


def tf_config_commands(nodes: list[Node], strategy: str, run_args: list[str],
                       python: str) -> list[list[str]]:
    """The worker itself in each node, with the TF_CONFIG the compose writer gives container K."""
    compose = ComposeJob(strategy, len(nodes), run_args)
    return [in_node(node, [python, *worker_args(strategy, run_args)], compose.environment(rank))
            for rank, node in enumerate(nodes)]
