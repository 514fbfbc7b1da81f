"""What the harness costs: `single` against a minimal hand-written PyTorch loop.

Command: DISTBENCH_DATA=../shared/data python benchmarks/overhead.py [--repeats 7]

Workload: mlp-128 on Fashion-MNIST, Adam, all cores, one epoch, at batch 32 and 128. Both loops
use the same model object layout, data tensors, sample order, optimizer and threads; they run
interleaved in this one process (which goes first alternates between repeats) and the medians
are compared; the per-step split into forward+backward and the Adam update says what the step is
made of.
Prints, per batch size:
  overhead_ratio=<distbench epoch / minimal epoch>      (target <= 1.05)
  keras_ratio=<distbench epoch / Keras model.fit epoch> (where TensorFlow is installed; the
              Keras epoch is `tf-single`'s, in its own process)
  the compute-bound limit (training FLOPs / measured matmul FLOP/s) and the eager and
  --compile epoch times as multiples of it (aim: --compile within 3x at batch 32).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.data import load_dataset
from distbench.models.torch_models import build_model
from distbench.results.records import load_records
from distbench.strategies.single import SingleStrategy
from distbench.system.cluster import ClusterEnv
from distbench.system.fingerprint import usable_cores
from distbench.system.timing import clock, median
from distbench.training.torch_trainer import Trainer


def minimal_epoch(data, batch: int, seed: int) -> float:
    """The loop a careful user would write by hand: index in-memory tensors, step, repeat."""
    model = build_model(ModelConfig("mlp-128"), data.input_shape, 10, data.mean, data.std, seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all, y_all = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    perm = torch.from_numpy(np.random.default_rng([seed, 0]).permutation(len(y_all)))
    for k in range(5):  # the same warm-up distbench does
        idx = perm[k * batch : (k + 1) * batch]
        F.cross_entropy(model(x_all[idx]), y_all[idx]).backward()
    opt.zero_grad(set_to_none=True)
    start = clock()
    for k in range(0, len(perm), batch):
        idx = perm[k : k + batch]
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return clock() - start


def distbench_epoch(data, batch: int, seed: int, compile: bool = False) -> float:
    cfg = RunConfig(epochs=1, batch_size=batch, seed=seed,
                    data=DataConfig("fashion-mnist"), model=ModelConfig("mlp-128", compile=compile))
    with contextlib.redirect_stdout(io.StringIO()):  # the progress bar runs, unseen
        return Trainer(cfg, SingleStrategy(cfg, ClusterEnv()), data).run()["train_s"]


KERAS_REPEATS = 3  # each is a whole tf-single process: a few are enough for a coarse ratio


def keras_epoch(batch: int, seed: int) -> float | None:
    """One `model.fit` epoch of the Keras mlp-128 as `tf-single` runs it: its own process (so
    TensorFlow's thread pools never share this one with torch), all cores, the same sample
    order, optimizer settings and warm-up; None without TensorFlow."""
    if importlib.util.find_spec("tensorflow") is None:
        return None
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, "-m", "distbench", "run", "--strategy", "tf-single", "--dataset",
             "fashion-mnist", "--model", "mlp-128", "--epochs", "1", "--batch-size", str(batch),
             "--seed", str(seed), "--calibration-steps", "0", "--no-progress", "--out", out],
            capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"tf-single failed: {proc.stderr.strip()}")
        return load_records(out)[-1]["train_s"]


def step_breakdown(data, batch: int, steps: int = 400) -> tuple[float, float]:
    """Median seconds of forward+backward and of the Adam update, in the minimal loop: what the
    step is made of, so the distance to the compute-bound limit can be read, not guessed."""
    model = build_model(ModelConfig("mlp-128"), data.input_shape, 10, data.mean, data.std, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all, y_all = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    fb, update = [], []
    for k in range(steps):
        idx = torch.arange(k * batch, (k + 1) * batch) % len(y_all)
        start = clock()
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        mid = clock()
        opt.step()
        fb.append(mid - start)
        update.append(clock() - mid)
    return median(fb[steps // 4 :]), median(update[steps // 4 :])


def matmul_flops() -> float:
    """Sustained float32 matmul FLOP/s with all threads: the machine's practical peak."""
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        start = clock()
        a @ b
        times.append(clock() - start)
    return 2 * 2048**3 / median(times)


def training_flops_per_sample(model: nn.Module) -> float:
    """Forward multiply-adds of the dense layers x2 FLOPs, x3 for forward + backward."""
    return 3 * sum(2 * m.in_features * m.out_features for m in model.modules()
                   if isinstance(m, nn.Linear))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(usable_cores())
    data = load_dataset("fashion-mnist")
    peak = matmul_flops()
    flops = training_flops_per_sample(
        build_model(ModelConfig("mlp-128"), data.input_shape, 10, data.mean, data.std)
    ) * len(data.train_y)
    limit = flops / peak
    print(f"machine: {usable_cores()} threads, matmul {peak / 1e9:.1f} GFLOP/s; "
          f"mlp-128 epoch = {flops / 1e9:.2f} GFLOP -> compute-bound limit {limit * 1e3:.1f} ms")
    for batch in (32, 128):
        minimal, ours = [], []
        for r in range(args.repeats):
            # Alternate which loop goes first, so an order effect cannot favour either.
            for loop in ("minimal", "distbench") if r % 2 == 0 else ("distbench", "minimal"):
                if loop == "minimal":
                    minimal.append(minimal_epoch(data, batch, seed=r))
                else:
                    ours.append(distbench_epoch(data, batch, seed=r))
        m, d = median(minimal), median(ours)
        print(f"\nbatch {batch}: minimal {m:.3f} s [{min(minimal):.3f}–{max(minimal):.3f}], "
              f"distbench {d:.3f} s [{min(ours):.3f}–{max(ours):.3f}] per epoch "
              f"(median [range] of {args.repeats})")
        print(f"  overhead_ratio={d / m:.3f}  (target <= 1.05; fastest run against fastest run: "
              f"{min(ours) / min(minimal):.3f})")
        breakdown = step_breakdown(data, batch)
        print(f"  per step: forward+backward {breakdown[0] * 1e3:.3f} ms, Adam update "
              f"{breakdown[1] * 1e3:.3f} ms (compute-bound limit "
              f"{limit / -(-len(data.train_y) // batch) * 1e3:.3f} ms)")
        fits = [keras_epoch(batch, seed=r) for r in range(KERAS_REPEATS)]
        if None not in fits:
            keras = median(fits)
            print(f"  keras_ratio={d / keras:.3f}  (Keras model.fit epoch {keras:.3f} s, "
                  f"tf-single in its own process, median of {KERAS_REPEATS})")
        else:
            print("  keras_ratio: skipped (TensorFlow not installed)")
        print(f"  eager epoch = {d / limit:.1f} x compute-bound limit")
        if not args.no_compile:
            compiled = median([distbench_epoch(data, batch, seed=r, compile=True)
                               for r in range(args.repeats)])
            print(f"  --compile epoch {compiled:.3f} s = {compiled / limit:.1f} x limit"
                  + ("  (aim <= 3x)" if batch == 32 else ""))


if __name__ == "__main__":
    main()
