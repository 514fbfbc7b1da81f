"""Can the whole training step be one compiled graph, and would it beat distbench's eager step?

Command: DISTBENCH_DATA=../shared/data python benchmarks/one_graph_step.py [--rounds 8]

Workload: mlp-128 on Fashion-MNIST, Adam, all cores, at batch 32 and 128. `--compile` compiles
the model (forward and backward) and the optimizer's `step` separately; this script asks
torch.compile for the step as one function (forward, loss, `backward()` traced through
`torch._dynamo.config.trace_autograd_ops`, a foreach Adam update, the gradients cleared) and
times it against distbench's own eager step (`Trainer.step`, fused Adam called directly), both
on the same batches in one process, in rounds that alternate which goes first.
Prints, per batch size:
  the graphs torch.compile made and why it split them (torch.optim graph-breaks around every
  `step` on purpose: pytorch/pytorch#104053)
  one_graph_ratio=<compiled step / eager step, median of the rounds' paired ratios>
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from typing import Any

from distbench.system.threads import apply_wait_defaults

apply_wait_defaults()  # libgomp reads it when torch loads it, as in distbench's workers

import torch  # noqa: E402
import torch._dynamo  # noqa: E402
import torch._dynamo.utils  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from distbench.core.config import DataConfig, ModelConfig, RunConfig  # noqa: E402
from distbench.data import load_dataset  # noqa: E402
from distbench.data.datasets import Dataset  # noqa: E402
from distbench.models.torch_models import build_model  # noqa: E402
from distbench.strategies.single import SingleStrategy  # noqa: E402
from distbench.system.cluster import ClusterEnv  # noqa: E402
from distbench.system.threads import usable_cores  # noqa: E402
from distbench.system.timing import clock, median  # noqa: E402
from distbench.training.torch_trainer import Trainer  # noqa: E402

WARMUP, STEPS = 20, 200  # steps before the clock, and per round and variant


def one_graph_step(data: Dataset, seed: int) -> Callable[[torch.Tensor, torch.Tensor], Any]:
    """The step as one function for torch.compile, on a model of its own (same init)."""
    model = build_model(ModelConfig("mlp-128"), data.input_shape, 10, data.mean, data.std, seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        for p in model.parameters():
            p.grad = None
        return loss.detach()

    return torch.compile(step, dynamic=False)


def measure(data: Dataset, batch: int, rounds: int, seed: int = 0) -> None:
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    cfg = RunConfig(epochs=1, batch_size=batch, seed=seed, optimizer_impl="fused",
                    threads_per_worker=usable_cores(), data=DataConfig("fashion-mnist"),
                    model=ModelConfig("mlp-128"))
    trainer = Trainer(cfg, SingleStrategy(cfg, ClusterEnv()), data)
    batches = [b for _, b in zip(range(WARMUP + STEPS), trainer.batches(epoch=0), strict=False)]
    timed = batches[WARMUP:]
    compiled = one_graph_step(data, seed)

    def graph(x: torch.Tensor, y: torch.Tensor, count: int, step: int) -> Any:
        return compiled(x, y)

    variants = [("eager", trainer.step), ("one graph", graph)]
    for _, variant in variants:  # warm-up, compilation included
        for i, b in enumerate(batches[:WARMUP]):
            variant(*b, i)
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    for r in range(rounds):
        for name, variant in variants if r % 2 == 0 else variants[::-1]:
            start = clock()
            for i, b in enumerate(timed):
                variant(*b, i)
            times[name].append((clock() - start) / len(timed))
    counters = torch._dynamo.utils.counters
    breaks: Counter[str] = Counter()
    for reason, count in counters["graph_break"].items():
        breaks[reason.splitlines()[0]] += count
    print(f"\nbatch {batch}: torch.compile made {counters['stats']['unique_graphs']} graphs")
    for reason, count in breaks.most_common():
        print(f"  graph break x{count}: {reason}")
    for name, samples in times.items():
        print(f"  {name:9s} {median(samples) * 1e3:.3f} ms per step "
              f"[{min(samples) * 1e3:.3f}–{max(samples) * 1e3:.3f}] ({rounds} rounds)")
    ratios = [g / e for g, e in zip(times["one graph"], times["eager"], strict=True)]
    print(f"  one_graph_ratio={median(ratios):.2f}  (paired ratios "
          f"{min(ratios):.2f}–{max(ratios):.2f}; below 1: the one-graph step is faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    torch._dynamo.config.trace_autograd_ops = True
    torch.set_num_threads(usable_cores())
    data = load_dataset("fashion-mnist")
    for batch in (32, 128):
        measure(data, batch, args.rounds)


if __name__ == "__main__":
    main()
