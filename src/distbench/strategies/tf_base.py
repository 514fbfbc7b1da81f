"""The small interface between a TensorFlow strategy and the one Keras-side trainer.

Command: distbench run --strategy tf-single --dataset mnist-5k --model mlp-128 --epochs 1

It mirrors `strategies/base.py` (the attributes and methods `worker.py` and the launcher use) so
TF rows run through the same worker, launcher and records as the PyTorch rows. A TF strategy
only says how replicas are laid out (`make_distribution`), which loop trains (`loop`: Keras'
`model.fit` or the custom `strategy.run` loop) and how a dataset is handed to the replicas
(`distribute`); `distbench.training.keras_trainer.KerasTrainer` does the rest for all four.

TensorFlow is imported in `setup()`, never at module import, so `import distbench` and
`distbench --help` work without it. Threads and logical devices are configured there too, because
TensorFlow fixes both the first time its runtime starts.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from distbench.core.config import RunConfig
from distbench.core.errors import DistbenchError
from distbench.strategies.role import WorkerRole
from distbench.system.cluster import ClusterEnv

REPLICA_CALIBRATION = (
    "replica-calibration: (median step time with all replicas - median step time of one replica "
    "on the same per-replica batch, same step code, no all-reduce) x timed steps; on shared CPU "
    "cores it also includes the replicas' contention for the cores"
)


def import_tensorflow() -> Any:
    """TensorFlow with quiet C++ logs and Keras on its TensorFlow backend."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf

    return tf


def configure_runtime(intra: int, inter: int, logical_cpus: int = 1, gpus: int = 0,
                      gpu_offset: int = 0) -> Any:
    """Thread pools and devices, before the runtime starts; returns the `tensorflow` module.

    `logical_cpus` > 1 splits the CPU into that many logical devices (one per replica);
    `gpus` = 0 hides every GPU so a `--device cpu` row never lands on one by default placement.
    Where the runtime is already running (a second run in one process), the existing settings
    are kept if they suffice, else the error says to run in a fresh process.
    """
    tf = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
        found = tf.config.list_physical_devices("GPU")
        if found:  # a local rank beyond this host's GPUs (TF_CONFIG across hosts) wraps around
            gpu_offset %= len(found)
        if gpus > len(found) - gpu_offset:
            raise DistbenchError(f"asked for {gpus} GPU(s) from index {gpu_offset}, "
                                 f"TensorFlow sees {len(found)}")
        tf.config.set_visible_devices(found[gpu_offset:gpu_offset + gpus], "GPU")
        if logical_cpus > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(logical_cpus)]
            )
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have < logical_cpus:
            raise DistbenchError(
                f"TensorFlow already started in this process with {have} logical CPU device(s), "
                f"{logical_cpus} needed: run each TF row in a fresh process"
            ) from None
    return tf


class TFStrategy(WorkerRole):
    """Base of the TF rows; one process, one replica unless a subclass says otherwise."""

    name: ClassVar[str] = "tf-single"
    comm_method: ClassVar[str] = REPLICA_CALIBRATION
    # "fit": Keras' model.fit distributes the steps; "custom": distbench's strategy.run loop.
    loop: ClassVar[str] = "fit"
    # Custom loop only: reduce the loss across replicas every step (strategy.reduce), or sum it
    # locally and reduce once per epoch (no extra collective in the timed steps).
    reduce_loss_every_step: ClassVar[bool] = True

    def __init__(self, cfg: RunConfig, env: ClusterEnv) -> None:
        super().__init__(cfg, env)
        self.tf_strategy: Any = None  # the tf.distribute.Strategy, set by setup()
        self.cross_device: str | None = None

    @property
    def backend(self) -> str | None:
        """How replicas exchange gradients (stored as the record's `backend`)."""
        return self.cross_device

    @property
    def replicas(self) -> int:
        return int(self.tf_strategy.num_replicas_in_sync)

    # ---- lifecycle
    def setup(self) -> None:
        """Configure TensorFlow (threads from `cfg.threads_per_worker`) and build the strategy."""
        threads = self.cfg.threads_per_worker or 1
        self.tf = configure_runtime(threads, threads, **self.device_layout())
        self.tf_strategy = self.make_distribution()

    def device_layout(self) -> dict[str, int]:
        """Keyword arguments of `configure_runtime` beyond the thread counts."""
        return {"gpus": 1 if self.cfg.device == "cuda" else 0}

    def make_distribution(self) -> Any:
        """The tf.distribute strategy; the base is TensorFlow's default (no distribution)."""
        return self.tf.distribute.get_strategy()

    def distribute(self, dataset: Any) -> Any:
        """The dataset as the replicas consume it, for the custom loop and for inspection."""
        return self.tf_strategy.experimental_distribute_dataset(dataset)

    def teardown(self) -> None:
        """Nothing to leave: TensorFlow's servers stop with the process."""


