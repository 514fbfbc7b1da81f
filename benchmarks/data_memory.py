"""Resident memory per worker on a user dataset: one shared copy, not one per worker.

Command: DISTBENCH_DATA=../shared/data python benchmarks/data_memory.py \
             --dataset folder:data/cifar10-folder [--workers 1,2] [--strategy ddp]
             [--model examples/resnet_small.py:build] [--epochs 1]

A `folder:` or `npz:` dataset is decoded once into a uint8 array cache that every worker
memory-maps. This runs `distbench run` at each worker count and samples every worker process's
/proc/PID/smaps (Linux) every 0.1 s, keeping each one's peak of:
- RSS: resident pages, shared ones counted in full in every process;
- PSS: resident pages with each shared page split between the processes that map it;
- the cache's own pages (the mapped .npy files): RSS and PSS.
If each worker held its own decoded copy, its private memory would grow by the arrays' size
(float32: four times the cache); with the shared cache the mapped pages appear once, split by
PSS. Run on a quiet machine; the numbers are memory, not time, so they are stable anyway.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE_S = 0.1
MB = 2**20


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def is_worker(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"worker" in argv and any(a.endswith(b"distbench") for a in argv)


def smaps(pid: int, cache: str) -> dict[str, int]:
    """kB totals of the process, and of its mappings of files under `cache`."""
    totals = {"rss": 0, "pss": 0, "cache_rss": 0, "cache_pss": 0}
    in_cache = False
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return totals
    for line in lines:
        head = line.split()
        if not head:
            continue
        if not head[0].endswith(":") or "-" in head[0]:  # a mapping's header line
            in_cache = len(head) >= 6 and head[5].startswith(cache)
            continue
        key = {"Rss:": "rss", "Pss:": "pss"}.get(head[0])
        if key:
            totals[key] += int(head[1])
            if in_cache:
                totals["cache_" + key] += int(head[1])
    return totals


def measure(args: argparse.Namespace, workers: int, cache: str, out: Path) -> dict[int, dict]:
    cmd = [sys.executable, "-m", "distbench", "run", "--strategy", args.strategy, "--workers",
           str(workers), "--model", args.model, "--dataset", args.dataset, "--epochs",
           str(args.epochs), "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, dict[str, int]] = {}
    while proc.poll() is None:
        for pid in filter(is_worker, descendants(proc.pid)):
            now = smaps(pid, cache)
            peak = peaks.setdefault(pid, dict.fromkeys(now, 0))
            for key, value in now.items():
                peak[key] = max(peak[key], value)
        time.sleep(SAMPLE_S)
    if proc.returncode:
        sys.exit(f"{args.strategy} x{workers} failed: {proc.stderr.read().strip()[-400:]}")
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="folder:PATH or npz:PATH")
    parser.add_argument("--model", default="examples/resnet_small.py:build")
    parser.add_argument("--strategy", default="ddp")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    from distbench.core.config import DataConfig
    from distbench.data.user_data import prepare

    prepared = prepare(DataConfig(name=args.dataset))  # decoded now, outside the measurement
    arrays = sum(f.stat().st_size for f in prepared.folder.glob("x_*.npy"))
    print(f"cache {prepared.folder}: images {arrays / MB:.1f} MB as "
          f"{prepared.meta['dtype']} ({4 * arrays / MB:.1f} MB as float32)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(w) for w in args.workers.split(",")]:
            peaks = measure(args, n, str(prepared.folder), Path(tmp) / f"w{n}")
            for pid, peak in sorted(peaks.items()):
                rows.append({"workers": n, "pid": pid, **{k: v / 1024 for k, v in peak.items()}})
    print(f"{'workers':>7} {'pid':>8} {'RSS MB':>8} {'PSS MB':>8} {'cache RSS':>10} "
          f"{'cache PSS':>10}")
    for r in rows:
        print(f"{r['workers']:>7} {r['pid']:>8} {r['rss']:>8.1f} {r['pss']:>8.1f} "
              f"{r['cache_rss']:>10.1f} {r['cache_pss']:>10.1f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
