"""Both TF loops with several steps per execution, checked where TensorFlow may load: a
subprocess of tests/unit/training/test_tf_steps_per_execution.py.

Command: python tests/unit/training/tf_execution_probe.py   (prints one RESULT JSON line)

90 samples in global batches of 16 are six steps, the last of 10 samples; at four steps per
execution `model.fit` runs steps 0-3 and 4-5, the custom loop 0-3, 4 and 5 (a call's steps share
one sample count). For each loop: the step indices its progress hook receives with the mean loss
it shows last and the epoch's summed loss, and the per-step times of 7 steps after 1 untimed one
(more than the epoch holds, so its batches are used again); and how many iterators `model.fit`
has had kept alive after the epoch and after the timed steps.
"""

from __future__ import annotations

import json
from typing import Any

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.data import load_dataset
from distbench.strategies.tf_base import TFStrategy
from distbench.strategies.tf_custom import TFCustomStrategy
from distbench.strategies.tf_single import TFSingleStrategy
from distbench.system.cluster import ClusterEnv
from distbench.training.keras_trainer import KerasTrainer

STEPS_PER_EXECUTION = 4


def config(strategy: str, workers: int) -> RunConfig:
    return RunConfig(strategy=strategy, workers=workers, threads_per_worker=1,
                     data=DataConfig("synthetic", synthetic_samples=90,
                                     synthetic_shape=(1, 8, 8)),
                     model=ModelConfig("mlp-25"), epochs=1, batch_size=16,
                     tf_steps_per_execution=STEPS_PER_EXECUTION, progress=False)


def facts(strategy_class: type[TFStrategy], workers: int) -> dict[str, Any]:
    cfg = config(strategy_class.name, workers)
    strategy = strategy_class(cfg, ClusterEnv())
    strategy.setup()
    trainer = KerasTrainer(cfg, strategy, load_dataset(cfg.data))
    pipeline, loop = trainer.pipeline, trainer.loop
    shown: list[tuple[int, float]] = []
    total = loop.train_epoch(loop.epoch_inputs(pipeline, 1)(0), pipeline.counts(),
                             lambda step, mean_loss: shown.append((step, mean_loss())))
    kept_after_epoch = len(getattr(loop, "kept", []))
    return {
        "steps": [step for step, _ in shown],
        "last_mean_loss": shown[-1][1],
        "epoch_mean_loss": total / sum(pipeline.counts()),
        "times": loop.step_times(pipeline.dataset(0), pipeline.counts(), 7, skip=1),
        "kept": [kept_after_epoch, len(getattr(loop, "kept", []))],
    }


def main() -> None:
    # The mirrored replicas' logical CPU devices first: TensorFlow fixes its devices once.
    result = {"custom": facts(TFCustomStrategy, 2), "fit": facts(TFSingleStrategy, 1)}
    print("RESULT" + json.dumps(result))


if __name__ == "__main__":
    main()
