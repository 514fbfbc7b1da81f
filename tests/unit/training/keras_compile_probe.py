"""The Keras `--compile` (XLA) fallback, checked where TensorFlow may load: a subprocess.

Command: python tests/unit/training/keras_compile_probe.py   (prints one RESULT JSON line)

Two tf-mirrored replicas on logical CPU devices, where XLA really cannot compile the step
(variables on other devices), and the same trainer with a trial step that fails with a peer's
error instead; plus how errors are classified.
"""

from __future__ import annotations

import json
from typing import Any

import tensorflow as tf

from distbench.core.config import DataConfig, ModelConfig, RunConfig
from distbench.data import load_dataset
from distbench.strategies.tf_mirrored import TFMirroredStrategy
from distbench.system.cluster import ClusterEnv
from distbench.training.keras_trainer import KerasTrainer, xla_failure

CFG = RunConfig(strategy="tf-mirrored", workers=2, threads_per_worker=1,
                data=DataConfig("synthetic", synthetic_samples=64, synthetic_shape=(1, 8, 8)),
                model=ModelConfig("mlp-25", compile=True), epochs=1, batch_size=16,
                warmup_steps=1, calibration_steps=0, progress=False)
TF2XLA = ("Graph execution error:\n\nDetected at node torch_adam/CollectiveReduceV2 defined at "
          "(most recent call last):\n<stack traces unavailable>\nOnly compiling NCCL/auto "
          "collective is supported, got: ring\n\ttf2xla conversion failed while converting "
          "__inference_replica_step_903[].")
CASES = {
    "tf2xla": tf.errors.InvalidArgumentError(None, None, TF2XLA),
    "peer gone": tf.errors.UnavailableError(None, None, "Connection reset by peer"),
    "bad input": tf.errors.InvalidArgumentError(None, None, "logits and labels must have the "
                                                "same first dimension"),
    "not tf": RuntimeError("XLA compilation failed"),
}


def make_trainer() -> KerasTrainer:
    strategy = TFMirroredStrategy(CFG, ClusterEnv())
    strategy.setup()
    return KerasTrainer(CFG, strategy, load_dataset(CFG.data))


def warm_up(trainer: KerasTrainer) -> dict[str, Any]:
    try:
        trainer.warm_up()
    except Exception as exc:  # noqa: BLE001 - the probe reports what propagated
        return {"raised": type(exc).__name__}
    return {"note": trainer.compile_note, "xla": trainer.loop.xla}


def peer_gone_in_trial(trainer: KerasTrainer) -> KerasTrainer:
    """The compiled trial step meets a dead peer instead of compiling."""
    steps = trainer.loop.step_times

    def step_times(*args: Any) -> list[float]:
        if trainer.loop.xla:
            raise CASES["peer gone"]
        return steps(*args)

    trainer.loop.step_times = step_times  # type: ignore[method-assign]
    return trainer


def main() -> None:
    result = {
        "classified": {name: xla_failure(exc) for name, exc in CASES.items()},
        "real": warm_up(make_trainer()),
        "peer gone": warm_up(peer_gone_in_trial(make_trainer())),
    }
    print("RESULT" + json.dumps(result))


if __name__ == "__main__":
    main()
