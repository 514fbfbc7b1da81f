"""The projection's bandwidth term, tested against links of known rate: `distbench cluster`.

Command (as root, on a quiet machine):
    python benchmarks/netns_projection.py [--rates 200Mbit,1Gbit,5Gbit] [--out DIR]

For each link rate:
1. `distbench cluster up --nodes 3 --link RATE` (network namespaces on a bridge, tbf-shaped);
2. allreduce timings across the namespaces (bench-comm's worker, gloo through torchrun and MPICH
   through mpiexec, 2 and 3 nodes, 256 KB to 16 MB) and α, β fitted per backend, as
   `distbench project --from-bench-comm` fits them;
3. ddp, custom and mpi on mlp-512 and cnn, at 2 and 3 nodes (one worker, one thread each),
   launched into the namespaces (`distbench launch torchrun|mpiexec --netns`);
4. predicted step = compute + t_comm(n) (or forward + max(backward, t_comm) where `project` says
   the overlapped schedule applies), with t_comm from the fitted link and the gradient bytes;
   measured step = train_s / steps. The error is printed per row, and the target (|error| <=
   15%) applies where communication is at least a third of the step.

What is predicted, and what is taken from the run: all "nodes" share this machine's 2 cores, so
compute per step at n nodes is not compute(1) / n. The compute term is therefore the run's own
measured compute (train_s - comm_s) / steps, which isolates the model's communication term, the
one the shaped link tests; the cost of sharing the cores is printed beside it as
compute(n) · n / compute(1), against the 1-node run of the same model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from distbench.comm.cost_model import Link, fit_link, format_bytes, ring_allreduce_s, step_times
from distbench.comm.project import DEFAULT_BACKWARD_FRACTION, overlaps
from distbench.launch.local import Worker, start_process, supervise
from distbench.launch.multinode import MultiNode
from distbench.launch.netns import mpiexec_command, torchrun_commands
from distbench.results.records import load_records
from distbench.system.timing import median
from distbench.vcluster import cluster as vc

MODELS = ("mlp-512", "cnn")
STRATEGIES = {"ddp": ("torchrun", "gloo"), "custom": ("torchrun", "gloo"),
              "mpi": ("mpiexec", "mpi")}
SIZES = [1 << k for k in range(18, 25)]  # 256 KB .. 16 MB
RUN = ["--dataset", "synthetic", "--synthetic-samples", "1536", "--synthetic-shape", "1x28x28",
       "--batch-size", "96", "--epochs", "1", "--threads-per-worker", "1", "--warmup-steps", "3",
       "--calibration-steps", "6", "--no-progress"]
TARGET = 0.15


def run_nodes(cmds: list[list[str]], tmp: Path, timeout: float) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs = [tmp / f"node{i}.log" for i in range(len(cmds))]
    supervise([Worker(i, start_process(cmd, env, log, show_stdout=False), log)
               for i, (cmd, log) in enumerate(zip(cmds, logs))], timeout=timeout)


def allreduce_points(cluster: vc.Cluster, backend: str, nodes: int, tmp: Path
                     ) -> list[tuple[int, float, float]]:
    """(workers, bytes, median seconds) of allreduces across `nodes` namespaces."""
    result, config = tmp / f"ar-{backend}-{nodes}.json", tmp / f"ar-{backend}-{nodes}.cfg"
    config.write_text(json.dumps({"backend": backend, "sizes": SIZES, "repeats": 5,
                                  "warmup": 2, "result": str(result)}))
    program = ["-m", "distbench.comm.bench_comm", "--worker", str(config)]
    chosen = cluster.nodes[:nodes]
    cmds = ([mpiexec_command(cluster, chosen, 1, 29511, sys.executable, cluster.hostfile,
                             program)] if backend == "mpi"
            else torchrun_commands(chosen, 1, 29511, sys.executable, program))
    run_nodes(cmds, tmp, timeout=300)
    return [(nodes, r["size_bytes"], r["latency_median_s"])
            for r in json.loads(result.read_text())]


def train(cluster: vc.Cluster, strategy: str, model: str, nodes: int, out: Path) -> dict:
    launcher, _ = STRATEGIES[strategy]
    hosts = [n.name for n in cluster.nodes[:nodes]]
    job = MultiNode(launcher, strategy, hosts, 1, [*RUN, "--model", model, "--out", str(out)],
                    29521, sys.executable, cluster.hostfile, netns=True)
    job.validate()
    job.run_here(timeout=600)
    (record,) = [r for r in load_records(out) if r["workers"] == nodes]
    return record


def one_node_compute(model: str, out: Path) -> float:
    """Compute per step of one worker on one thread, no namespace: the core-sharing reference."""
    import subprocess

    subprocess.run([sys.executable, "-m", "distbench", "run", "--strategy", "single", *RUN,
                    "--model", model, "--out", str(out)], check=True, capture_output=True,
                   timeout=600)
    (r,) = load_records(out)
    return r["train_s"] / r["steps"]


def predict(record: dict, link: Link) -> tuple[float, float, float, bool]:
    """(predicted step s, compute s, predicted comm s, overlapped) for one measured run."""
    steps, n = record["steps"], record["workers"]
    compute = (record["train_s"] - (record["comm_s"] or 0.0)) / steps
    grad = int(record["grad_bytes"])
    overlap = overlaps(record["strategy"], bool(record["config"].get("overlap")), grad,
                       float(record["config"].get("bucket_mb") or 25.0),
                       str(record["config"].get("device") or "cpu"))
    comm = ring_allreduce_s(grad, n, link)
    m = step_times(compute, comm, n, DEFAULT_BACKWARD_FRACTION)
    return (m.overlap_s if overlap else m.serial_s), compute, comm, overlap


def measure_rate(rate: str, out: Path) -> list[dict]:
    vc.down()
    cluster = vc.up(3, rate)
    rows = []
    try:
        status = vc.status(seconds=2.0)
        print(f"\n== {rate}: TCP stream between two namespaces "
              f"{status['measured_bps'] / 1e6:.0f} Mbit/s")
        with tempfile.TemporaryDirectory(prefix="distbench-netns-bench-") as tmp_name:
            tmp = Path(tmp_name)
            links = {}
            for backend in ("gloo", "mpi"):
                points = (allreduce_points(cluster, backend, 2, tmp)
                          + allreduce_points(cluster, backend, 3, tmp))
                links[backend] = fit_link(points, f"{backend} across namespaces at {rate}")
                print(f"   {links[backend].describe()}")
            for model in MODELS:
                single = one_node_compute(model, out / rate / f"single-{model}")
                for strategy, (_launcher, backend) in STRATEGIES.items():
                    for nodes in (2, 3):
                        rec = train(cluster, strategy, model, nodes,
                                    out / rate / f"{strategy}-{model}-{nodes}")
                        rows.append(row(rate, rec, links[backend], single))
    finally:
        vc.down()
    return rows


def row(rate: str, rec: dict, link: Link, single_compute: float) -> dict:
    predicted, compute, comm, overlap = predict(rec, link)
    measured = rec["train_s"] / rec["steps"]
    return {"rate": rate, "strategy": rec["strategy"], "model": rec["model"],
            "nodes": rec["workers"], "grad": format_bytes(rec["grad_bytes"]),
            "measured_ms": measured * 1e3, "predicted_ms": predicted * 1e3,
            "compute_ms": compute * 1e3, "comm_ms": comm * 1e3, "overlap": overlap,
            "comm_share": comm / predicted, "error": (predicted - measured) / measured,
            "core_sharing": compute * rec["workers"] / single_compute}


def print_rows(rows: list[dict]) -> None:
    print("\n| rate | strategy | model | nodes | measured ms | predicted ms (compute + comm) | "
          "comm share | error | core sharing |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        target = "" if r["comm_share"] < 1 / 3 else (" ✓" if abs(r["error"]) <= TARGET else " ✗")
        sched = " (overlap)" if r["overlap"] else ""
        print(f"| {r['rate']} | {r['strategy']} | {r['model']} | {r['nodes']} | "
              f"{r['measured_ms']:.1f} | {r['predicted_ms']:.1f} = {r['compute_ms']:.1f} + "
              f"{r['comm_ms']:.1f}{sched} | {r['comm_share']:.0%} | {r['error']:+.1%}{target} | "
              f"{r['core_sharing']:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="200Mbit,1Gbit,5Gbit")
    parser.add_argument("--out", default="results/netns-projection")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("netns_projection.py: needs root (network namespaces, tc)")
    out = Path(args.out)
    rows = [r for rate in args.rates.split(",") for r in measure_rate(rate, out)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "projection_vs_measured.json").write_text(json.dumps(rows, indent=1))
    print_rows(rows)
    shares = [r for r in rows if r["comm_share"] >= 1 / 3]
    hits = sum(abs(r["error"]) <= TARGET for r in shares)
    print(f"\ntarget |error| <= {TARGET:.0%} where comm >= 1/3 of the step: {hits} of "
          f"{len(shares)} rows; median |error| over all rows "
          f"{median([abs(r['error']) for r in rows]):.1%}")


if __name__ == "__main__":
    main()
