"""Typed run configuration.

One `RunConfig` describes a run completely; `asdict(config)` is stored with every result, and the
local launcher hands it to workers as JSON, so a worker never re-derives a setting on its own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from distbench.core.errors import UsageError

# The largest --image-size (and checkpoint input side) accepted: four times ImageNet's 224 and
# more than any built-in model is meant for; one 3x1024x1024 float sample is already 12 MB, and
# an MLP's first layer grows with the square of it.
MAX_IMAGE_SIZE = 1024
# The largest --seed: what NumPy's legacy seeding accepts (Keras' set_random_seed calls it), and
# torch's manual_seed takes it plus any rank. NumPy's generators take any seed >= 0.
MAX_SEED = 2**32 - 1
# Lossy gradient compression (--compression); the first is exact.
COMPRESSIONS = ("none", "fp16", "bf16", "powersgd")


OPTIMIZER_IMPLS = ("auto", "default", "foreach", "fused")
# What --optimizer-impl auto runs, per optimizer: fused Adam, one kernel over all parameters, the
# fastest measured on CPU (docs/measurements.md) and run by every strategy; foreach SGD, as
# torch's fused SGD has no sharding rule for fsdp's DTensors. The same for every row of a study.
AUTO_OPTIMIZER_IMPL = {"adam": "fused", "sgd": "foreach"}
# The default of --tf-steps-per-execution: training steps per call into TensorFlow's graph, the
# same for every TF row (32: measured in docs/measurements.md, "TensorFlow at its best").
TF_STEPS_PER_EXECUTION = 32


@dataclass
class DataConfig:
    name: str = "mnist-5k"
    # Root holding per-dataset folders; None means: DISTBENCH_DATA, then the user cache.
    data_dir: str | None = None
    # CIFAR-10 with missing training batches is refused unless this is set (then recorded).
    allow_partial: bool = False
    # folder:PATH without train/ and test/: the share of images held out for testing.
    test_fraction: float = 0.2
    # Only for the `synthetic` dataset.
    synthetic_samples: int = 2048
    synthetic_shape: tuple[int, int, int] = (1, 28, 28)
    synthetic_classes: int = 10


@dataclass
class ModelConfig:
    name: str = "mlp-128"
    pretrained: bool = False
    # None keeps the dataset's native size.
    image_size: int | None = None
    compile: bool = False


@dataclass
class RunConfig:
    strategy: str = "single"
    workers: int = 1
    # None: cores // workers for distributed strategies, all cores for the baseline.
    threads_per_worker: int | None = None
    backend: str | None = None  # None: gloo on CPU, nccl on CUDA
    device: str = "cpu"  # cpu | cuda
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 3
    batch_size: int = 64  # global batch under strong scaling, per worker under weak scaling
    scaling: str = "strong"  # strong | weak
    optimizer: str = "adam"  # adam | sgd
    # torch's implementation of that optimizer: auto | default (torch picks) | foreach | fused.
    # The same for every PyTorch row of a study; recorded with the config, and the one that ran
    # as the record's `optimizer_impl`.
    optimizer_impl: str = "auto"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    seed: int = 0
    warmup_steps: int = 5  # run, then undone, before the clock starts
    calibration_steps: int = 10  # for strategies whose sync time is measured by difference
    target_accuracy: float | None = None
    # A run whose timed region saw other processes use more than this share of the cores is
    # recorded as `contended` (distbench.system.contention).
    contention_threshold: float = 0.10
    # Strategy-specific knobs.
    bucket_mb: float = 25.0  # ddp and custom gradient buckets
    overlap: bool = False  # custom: all_reduce each bucket from backward hooks
    sync_every: int | None = None  # param-avg: steps between averages; None = once per epoch
    average_optimizer_state: bool = False  # param-avg
    # Lossy gradient compression: none | fp16 | bf16 | powersgd (which strategy implements which
    # is its registry line's `compressions`); a compressed run is recorded as not exact.
    compression: str = "none"
    powersgd_rank: int = 1  # --compression powersgd: the rank of the low-rank factors
    # TensorFlow rows' tf.data pipeline (docs/tensorflow.md). None: the shared per-epoch
    # permutation (the PyTorch rows' order); N: tf.data's shuffle with an N-sample buffer.
    tf_shuffle_buffer: int | None = None
    tf_prefetch: int | None = None  # batches prefetched; None: tf.data.AUTOTUNE, 0: none
    # Training steps per call from Python into the compiled step (docs/tensorflow.md).
    tf_steps_per_execution: int = TF_STEPS_PER_EXECUTION
    tf_collective_timeout: float = 60.0  # tf-multiworker: seconds before a barrier/gather fails
    # Output and control.
    out: str | None = None
    save_model: bool = False
    timeout: float | None = None  # seconds for the whole run
    progress: bool = True

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.workers if self.scaling == "weak" else self.batch_size

    @property
    def optimizer_kernel(self) -> str:
        """The --optimizer-impl that runs: `auto` resolved for this optimizer."""
        return AUTO_OPTIMIZER_IMPL.get(self.optimizer, "default") \
            if self.optimizer_impl == "auto" else self.optimizer_impl

    def validate(self) -> None:
        """Reject impossible settings before any process starts."""
        checks = [
            (self.workers >= 1, f"--workers must be >= 1, got {self.workers}"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (0 < self.lr < math.inf, f"--lr must be a finite number > 0, got {self.lr}"),
            (self.warmup_steps >= 0, f"--warmup-steps must be >= 0, got {self.warmup_steps}"),
            (
                0 <= self.seed <= MAX_SEED,
                f"--seed must be in [0, {MAX_SEED}], got {self.seed}",
            ),
            (
                self.calibration_steps >= 0,
                f"--calibration-steps must be >= 0, got {self.calibration_steps}",
            ),
            (
                0 <= self.momentum < math.inf,
                f"--momentum must be a finite number >= 0, got {self.momentum}",
            ),
            (
                0 <= self.weight_decay < math.inf,
                f"--weight-decay must be a finite number >= 0, got {self.weight_decay}",
            ),
            # The smallest size every model accepts: cnn pools twice by 2.
            (
                self.model.image_size is None or 4 <= self.model.image_size <= MAX_IMAGE_SIZE,
                f"--image-size must be in [4, {MAX_IMAGE_SIZE}], got {self.model.image_size}",
            ),
            (
                self.scaling in ("strong", "weak"),
                f"--scaling must be strong or weak, got {self.scaling}",
            ),
            (
                self.optimizer in ("adam", "sgd"),
                f"--optimizer must be adam or sgd, got {self.optimizer}",
            ),
            (
                self.optimizer_impl in OPTIMIZER_IMPLS,
                f"--optimizer-impl must be one of {', '.join(OPTIMIZER_IMPLS)}, got "
                f"{self.optimizer_impl}",
            ),
            (self.device in ("cpu", "cuda"), f"--device must be cpu or cuda, got {self.device}"),
            (
                self.backend in (None, "gloo", "nccl"),
                f"--backend must be gloo or nccl, got {self.backend}",
            ),
            (
                self.backend != "nccl" or self.device == "cuda",
                "--backend nccl needs --device cuda (NCCL only moves GPU tensors)",
            ),
            (
                self.compression in COMPRESSIONS,
                f"--compression must be one of {', '.join(COMPRESSIONS)}, got {self.compression}",
            ),
            (self.powersgd_rank >= 1, f"--powersgd-rank must be >= 1, got {self.powersgd_rank}"),
            (
                0 < self.bucket_mb < math.inf,
                f"--bucket-mb must be a finite number > 0, got {self.bucket_mb}",
            ),
            (
                self.threads_per_worker is None or self.threads_per_worker >= 1,
                f"--threads-per-worker must be >= 1, got {self.threads_per_worker}",
            ),
            (
                self.sync_every is None or self.sync_every >= 1,
                f"--sync-every must be >= 1, got {self.sync_every}",
            ),
            (
                self.tf_shuffle_buffer is None or self.tf_shuffle_buffer >= 1,
                f"--tf-shuffle-buffer must be >= 1, got {self.tf_shuffle_buffer}",
            ),
            (
                self.tf_prefetch is None or self.tf_prefetch >= 0,
                f"--tf-prefetch must be >= 0, got {self.tf_prefetch}",
            ),
            (
                1 <= self.tf_steps_per_execution < 2**31,  # Keras counts them in an int32
                f"--tf-steps-per-execution must be in [1, {2**31 - 1}], got "
                f"{self.tf_steps_per_execution}",
            ),
            (
                0 < self.tf_collective_timeout < math.inf,
                f"--tf-collective-timeout must be a finite number > 0, got "
                f"{self.tf_collective_timeout}",
            ),
            (
                self.target_accuracy is None or 0 < self.target_accuracy <= 1,
                f"--target-accuracy must be in (0, 1], got {self.target_accuracy}",
            ),
            (
                0 < self.contention_threshold <= 1,
                f"--contention-threshold must be in (0, 1], got {self.contention_threshold}",
            ),
            (
                self.timeout is None or 0 < self.timeout < math.inf,
                f"--timeout must be a finite number > 0, got {self.timeout}",
            ),
            (
                0 < self.data.test_fraction < 1,
                f"--test-fraction must be in (0, 1), got {self.data.test_fraction}",
            ),
            (
                self.data.synthetic_samples >= 1,
                f"--synthetic-samples must be >= 1, got {self.data.synthetic_samples}",
            ),
            (
                self.data.synthetic_classes >= 2,
                f"--synthetic-classes must be >= 2, got {self.data.synthetic_classes}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if self.scaling == "strong" and self.batch_size % self.workers:
            raise UsageError(
                f"--batch-size {self.batch_size} is the global batch and must be a positive "
                f"multiple of --workers {self.workers} (or use --scaling weak)"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        data = dict(values.pop("data", {}))
        if "synthetic_shape" in data:
            data["synthetic_shape"] = tuple(data["synthetic_shape"])
        values["data"] = DataConfig(**data)
        values["model"] = ModelConfig(**values.pop("model", {}))
        return cls(**values)
