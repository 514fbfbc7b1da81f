"""What the harness costs: `single` against a minimal hand-written PyTorch loop.

Command: DISTBENCH_DATA=../shared/data python benchmarks/overhead.py [--repeats 11] [--profile]

Workload: mlp-128 on Fashion-MNIST, Adam, all cores, one epoch, at batch 32 and 128. Both loops
use the same model object layout, data tensors, sample order, optimizer and threads (and the
OpenMP wait setting distbench's workers get); they run back to back in this one process, which
goes first alternating between repeats. This VM's speed drifts by tens of percent over seconds,
so each pair's ratio is taken and the median of those ratios is the result (the ratio of the
medians is printed beside it). The per-step split into forward+backward and the Adam update says
what the step is made of.
Prints, per batch size:
  overhead_ratio=<distbench epoch / minimal epoch, median of paired ratios>  (target <= 1.03)
  keras_ratio=<distbench epoch / Keras model.fit epoch> (where TensorFlow is installed; the
              Keras epoch is `tf-single`'s, in its own process)
  the compute-bound limit (training FLOPs / measured matmul FLOP/s), the step's matrix products
  alone at its own shapes (the floor of any step that calls the same BLAS), and the epoch of
  each setting as a multiple of the limit: eager with --optimizer-impl default|foreach|fused,
  eager fused with --threads-per-worker 1, eager fused as `distbench run` runs it in a process
  of its own with the default OpenMP wait and with `OMP_WAIT_POLICY=active` (threads that spin
  between regions instead of sleeping: README, Threads), and --compile with the fused optimizer
  (forward and backward compiled, the update one fused kernel) and with foreach (the whole step
  compiled, update included); each epoch is taken against the limit measured right before it
  (targets: best within 5x at batch 32, 2x at batch 128).
The OpenMP wait setting is distbench's default (`GOMP_SPINCOUNT=3000`) unless the environment
  sets one, as in distbench's workers; the first line says which this run used.
--profile adds torch.profiler's tables of the step at both batch sizes, eager and compiled: where
  its time goes, by operator.
Also prints, once: the fused Adam update through `Adam.step` and through the direct kernel call
  PyTorch rows make; and at the end, what other processes and the hypervisor (steal) took of the
  cores during the run: a run where they took much measured its neighbours too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from distbench.system.threads import WAIT_VARS, apply_wait_defaults, wait_settings

apply_wait_defaults()  # libgomp reads it when torch loads it, as in distbench's workers

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from distbench.core.config import DataConfig, ModelConfig, RunConfig  # noqa: E402
from distbench.data import load_dataset  # noqa: E402
from distbench.models.torch_models import build_model  # noqa: E402
from distbench.results.records import load_records  # noqa: E402
from distbench.strategies.single import SingleStrategy  # noqa: E402
from distbench.system.cluster import ClusterEnv  # noqa: E402
from distbench.system.contention import Sample, process_tree_cpu_s, window_note  # noqa: E402
from distbench.system.threads import usable_cores  # noqa: E402
from distbench.system.timing import clock, median  # noqa: E402
from distbench.training.fused_update import adam_update, kernel_calls  # noqa: E402
from distbench.training.torch_trainer import Trainer  # noqa: E402

TARGET = 1.03
LIMIT_AIM = {32: 5.0, 128: 2.0}  # best epoch / compute-bound limit
IMPLS = ("default", "foreach", "fused")


def minimal_epoch(data, batch: int, seed: int) -> float:
    """The loop a careful user would write by hand: index in-memory tensors, step, repeat. It
    clears gradients with `zero_grad(set_to_none=True)`, as users do; distbench's loop sets them
    to None itself, which saves that call's profiler record (about 13 us a step here)."""
    torch.set_num_threads(usable_cores())
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


def distbench_epoch(data, batch: int, seed: int, compile: bool = False,
                    impl: str = "default", threads: int | None = None) -> float:
    """One epoch of `single`; torch's own Adam unless `impl` says otherwise, as in the minimal
    loop; all cores unless `threads` says otherwise."""
    if compile:
        # Each epoch builds a new optimizer: without a reset its compiled step would recompile
        # every epoch, and past Dynamo's limit of 8 run eager.
        torch._dynamo.reset()
    cfg = RunConfig(epochs=1, batch_size=batch, seed=seed, optimizer_impl=impl,
                    threads_per_worker=threads or usable_cores(),
                    data=DataConfig("fashion-mnist"), model=ModelConfig("mlp-128", compile=compile))
    with contextlib.redirect_stdout(io.StringIO()):  # the progress bar runs, unseen
        return Trainer(cfg, SingleStrategy(cfg, ClusterEnv()), data).run()["train_s"]


KERAS_REPEATS = 3  # each is a whole tf-single process: a few are enough for a coarse ratio
ACTIVE_WAIT = {"OMP_WAIT_POLICY": "active"}  # OpenMP threads spin between regions, never sleep


def cli_epoch(strategy: str, batch: int, seed: int, args: Sequence[str] = (),
              wait: Mapping[str, str] | None = None) -> float:
    """One epoch of `distbench run --strategy <strategy>` in its own process, as a user runs it:
    mlp-128 on Fashion-MNIST, the record's train_s. `wait` replaces the OpenMP wait setting this
    process runs with: libgomp reads it once, when it loads, so another needs another process."""
    env = dict(os.environ)
    if wait is not None:
        env = {k: v for k, v in env.items() if k not in WAIT_VARS} | dict(wait)
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, "-m", "distbench", "run", "--strategy", strategy, "--dataset",
             "fashion-mnist", "--model", "mlp-128", "--epochs", "1", "--batch-size", str(batch),
             "--seed", str(seed), "--calibration-steps", "0", "--no-progress", "--out", out,
             *args],
            capture_output=True, text=True, env=env)
        if proc.returncode:
            raise SystemExit(f"{strategy} failed: {proc.stderr.strip()}")
        return load_records(out)[-1]["train_s"]


def keras_epoch(batch: int, seed: int) -> float | None:
    """One `model.fit` epoch of the Keras mlp-128 as `tf-single` runs it: its own process (so
    TensorFlow's thread pools never share this one with torch), all cores, the same sample
    order, optimizer settings and warm-up; None without TensorFlow."""
    if importlib.util.find_spec("tensorflow") is None:
        return None
    return cli_epoch("tf-single", batch, seed)


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


def fused_trainer(data, batch: int, compile: bool = False) -> Trainer:
    """`single`'s Trainer on all cores with the fused Adam PyTorch rows use by default: what the
    step breakdowns (here and in step_kernels.py) look inside."""
    cfg = RunConfig(epochs=1, batch_size=batch, data=DataConfig("fashion-mnist"),
                    threads_per_worker=usable_cores(), progress=False,
                    model=ModelConfig("mlp-128", compile=compile), optimizer_impl="fused")
    return Trainer(cfg, SingleStrategy(cfg, ClusterEnv()), data)


def profile_step(data, batch: int, compile: bool, steps: int = 300) -> None:
    """torch.profiler over `steps` steps of distbench's own loop with the fused Adam PyTorch
    rows use by default (its kernel called directly where eager), eager or compiled (so the
    compiled regions' own costs show); the operators' self CPU time, and the Python around them
    as the rest of the wall time."""
    from torch.profiler import ProfilerActivity, profile

    torch._dynamo.reset()
    trainer = fused_trainer(data, batch, compile)
    if compile:
        trainer.try_compiled_step()
    batches = trainer.batches(epoch=0)
    for i in range(20):
        trainer.step(*next(batches), i)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = clock()
        for i in range(steps):
            trainer.step(*next(batches), i)
        wall = clock() - start
    events = prof.key_averages()
    ops = sum(e.self_cpu_time_total for e in events) / 1e6
    kind = "compiled" if compile else "eager"
    print(f"\nprofile, {kind}, batch {batch}, {steps} steps: {wall / steps * 1e3:.3f} ms per "
          f"step under the profiler, operators' self time {ops / steps * 1e3:.3f} ms per step")
    print(events.table(sort_by="self_cpu_time_total", row_limit=18))


def fused_update_times(model: nn.Module, rounds: int = 9, calls: int = 300) -> tuple[float, float]:
    """Median seconds of one fused Adam update through `Adam.step` and through the direct kernel
    call distbench's PyTorch rows make (`training.fused_update`), on the same gradients, in
    rounds that alternate which goes first: what skipping `Adam.step`'s per-call Python saves."""
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    opt.step()  # creates the state; later calls take the direct path
    assert kernel_calls(opt) is not None, "the direct path would defer to Adam.step"
    updates: list[tuple[Callable[[], object], list[float]]] = [(opt.step, []),
                                                                (adam_update(opt), [])]
    for r in range(rounds):
        for update, samples in updates if r % 2 == 0 else updates[::-1]:
            start = clock()
            for _ in range(calls):
                update()
            samples.append((clock() - start) / calls)
    return median(updates[0][1]), median(updates[1][1])


def matmul_flops(samples: int = 10) -> float:
    """Sustained float32 matmul FLOP/s with all threads: the machine's practical peak."""
    torch.set_num_threads(usable_cores())
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(samples):
        start = clock()
        a @ b
        times.append(clock() - start)
    return 2 * 2048**3 / median(times)


def matmul_floor(model: nn.Module, batch: int, repeats: int = 2000) -> float:
    """Median seconds of the step's matrix products alone, at their own shapes, back to back:
    each dense layer's forward (addmm) and its weight and input gradients (the first layer's
    input needs none). No step that calls the same BLAS can be faster."""
    torch.set_num_threads(usable_cores())
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    calls = []
    for i, layer in enumerate(layers):
        x = torch.rand(batch, layer.in_features)
        w, b = layer.weight.detach().clone(), layer.bias.detach().clone()
        g = torch.rand(batch, layer.out_features)
        calls += [lambda b=b, x=x, w=w: torch.addmm(b, x, w.t()), lambda g=g, x=x: g.t().mm(x)]
        if i:
            calls.append(lambda g=g, w=w: g.mm(w))

    def all_calls() -> None:
        for call in calls:
            call()

    for _ in range(50):
        all_calls()
    times = []
    for _ in range(7):
        start = clock()
        for _ in range(repeats // 7):
            all_calls()
        times.append((clock() - start) / (repeats // 7))
    return median(times)


def training_flops_per_sample(model: nn.Module) -> float:
    """Forward multiply-adds of the dense layers x2 FLOPs, x3 for forward + backward: the usual
    count, which includes the first layer's input gradient that no step computes (a third of
    mlp-128's count). The limit is that much more generous than the work a step does, which is
    why the matrix products' floor can come out below it."""
    return 3 * sum(2 * m.in_features * m.out_features for m in model.modules()
                   if isinstance(m, nn.Linear))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    start, start_cpu = Sample.now(), process_tree_cpu_s()
    torch.set_num_threads(usable_cores())
    data = load_dataset("fashion-mnist")
    peak = matmul_flops()
    model = build_model(ModelConfig("mlp-128"), data.input_shape, 10, data.mean, data.std)
    flops = training_flops_per_sample(model) * len(data.train_y)
    limit = flops / peak
    wait = ", ".join(f"{k}={v}" for k, v in wait_settings().items() if v is not None)
    print(f"machine: {usable_cores()} threads, matmul {peak / 1e9:.1f} GFLOP/s; "
          f"mlp-128 epoch = {flops / 1e9:.2f} GFLOP -> compute-bound limit {limit * 1e3:.1f} ms; "
          f"OpenMP wait {wait}")
    step, direct = fused_update_times(build_model(ModelConfig("mlp-128"), data.input_shape, 10,
                                                  data.mean, data.std))
    print(f"fused Adam update, mlp-128: Adam.step {step * 1e3:.3f} ms, the kernel called directly "
          f"(as PyTorch rows do) {direct * 1e3:.3f} ms, {direct / step:.2f}x")
    for batch in (32, 128):
        minimal, ours, pairs = [], [], []
        for r in range(args.repeats):
            # Alternate which loop goes first, so an order effect cannot favour either.
            for loop in ("minimal", "distbench") if r % 2 == 0 else ("distbench", "minimal"):
                if loop == "minimal":
                    minimal.append(minimal_epoch(data, batch, seed=r))
                else:
                    ours.append(distbench_epoch(data, batch, seed=r))
            pairs.append(ours[-1] / minimal[-1])
        m, d, ratio = median(minimal), median(ours), median(pairs)
        print(f"\nbatch {batch}: minimal {m:.3f} s [{min(minimal):.3f}–{max(minimal):.3f}], "
              f"distbench {d:.3f} s [{min(ours):.3f}–{max(ours):.3f}] per epoch "
              f"(median [range] of {args.repeats})")
        print(f"  overhead_ratio={ratio:.3f}  ({'met' if ratio <= TARGET else 'missed'}, "
              f"target <= {TARGET}; ratio of the medians {d / m:.3f}, paired ratios "
              f"{min(pairs):.3f}–{max(pairs):.3f})")
        breakdown = step_breakdown(data, batch)
        # The floor against a limit measured right before it, as each epoch is below.
        step_limit = flops / matmul_flops(samples=5) / -(-len(data.train_y) // batch)
        floor = matmul_floor(model, batch)
        print(f"  per step: forward+backward {breakdown[0] * 1e3:.3f} ms, Adam update "
              f"{breakdown[1] * 1e3:.3f} ms (compute-bound limit {step_limit * 1e3:.3f} ms; the "
              f"matrix products alone {floor * 1e3:.3f} ms = {floor / step_limit:.1f} x limit)")
        fits = [keras_epoch(batch, seed=r) for r in range(KERAS_REPEATS)]
        if None not in fits:
            keras = median(fits)
            print(f"  keras_ratio={d / keras:.3f}  (Keras model.fit epoch {keras:.3f} s, "
                  f"tf-single in its own process, median of {KERAS_REPEATS})")
        else:
            print("  keras_ratio: skipped (TensorFlow not installed)")
        settings: dict[str, Callable[..., float]] = {
            f"eager, --optimizer-impl {impl}": partial(distbench_epoch, data, batch, impl=impl)
            for impl in IMPLS}
        settings["eager, fused, --threads-per-worker 1"] = partial(
            distbench_epoch, data, batch, impl="fused", threads=1)
        # The same row from the CLI, with the default wait and with the threads never sleeping:
        # the pair separates the wait setting from running in a process of its own.
        own = ("--optimizer-impl", "fused", "--threads-per-worker", str(usable_cores()))
        settings["eager, fused, own process"] = partial(cli_epoch, "single", batch, args=own)
        settings["eager, fused, own process, active wait"] = partial(
            cli_epoch, "single", batch, args=own, wait=ACTIVE_WAIT)
        if not args.no_compile:
            settings["--compile, --optimizer-impl fused"] = partial(
                distbench_epoch, data, batch, compile=True, impl="fused")
            settings["--compile, --optimizer-impl foreach"] = partial(
                distbench_epoch, data, batch, compile=True, impl="foreach")
        epochs: dict[str, list[float]] = {name: [] for name in settings}
        ratios: dict[str, list[float]] = {name: [] for name in settings}
        for r in range(args.repeats):  # interleaved, like the pairs above
            for name, epoch in settings.items():
                # The limit is measured again right before each epoch, and each epoch taken
                # against its own: this VM's speed drifts by tens of percent within a run, and
                # one calibration minutes earlier would move every ratio with it.
                epoch_limit = flops / matmul_flops(samples=5)
                epochs[name].append(epoch(seed=r))
                ratios[name].append(epochs[name][-1] / epoch_limit)
        for name, times in epochs.items():
            print(f"  {name:40} epoch {median(times):.3f} s = {median(ratios[name]):5.1f} x limit "
                  f"(each epoch against the limit measured before it; median, range "
                  f"{min(ratios[name]):.1f}–{max(ratios[name]):.1f})")
        best = min(median(r) for r in ratios.values())
        print(f"  best_vs_limit={best:.2f}  ({'met' if best <= LIMIT_AIM[batch] else 'missed'}, "
              f"target <= {LIMIT_AIM[batch]:g}x)")
    print(f"\n{window_note(start, start_cpu, usable_cores())}")
    if args.profile:
        for batch in (32, 128):
            profile_step(data, batch, compile=False)
            if not args.no_compile:
                profile_step(data, batch, compile=True)


if __name__ == "__main__":
    main()
