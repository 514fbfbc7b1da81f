"""`tf-multiworker`: MultiWorkerMirroredStrategy over N processes wired by TF_CONFIG.

Command: distbench run --strategy tf-multiworker --workers 2 --dataset fashion-mnist --model mlp-128

distbench's launcher starts N `distbench worker` processes, each with a TF_CONFIG naming every
worker on a free 127.0.0.1 port; started by anything else (docker compose, SLURM) the worker reads
the TF_CONFIG it was given. Each worker is one replica. It reads its own disjoint strided shard
(the PyTorch rows' rule, `distbench.data.sharding`) through `distribute_datasets_from_function`,
so TensorFlow's auto-sharding never splits the data a second time. Gradients are all-reduced by
TensorFlow's ring collectives over gRPC.

Why a custom loop and not `model.fit`: with Keras 3, `model.fit` under this strategy fails with
`ValueError: Attempt to convert a value (PerReplica:{...}) with an unsupported type`
(keras-team/keras#20585, still so with TensorFlow 2.21 / Keras 3.15;
`benchmarks/tf_fit_multiworker_pitfall.py` reproduces it). The `strategy.run` loop shared with
`tf-custom` trains the same model with the same optimizer and works.

Failure handling: TensorFlow's coordination service aborts the collectives when a peer stops
sending heartbeats (about 10 s), and the host-side collectives (barriers, per-epoch sums, the
record's gathers) also time out after `--tf-collective-timeout` seconds, so a dead or stuck
worker makes the others fail instead of hanging; distbench's launcher notices the death at once,
stops the rest and records the run as failed.

Host-side collectives (barrier, timings, evaluation counts) ride on the same TensorFlow
collectives: an object travels as its JSON text, one int32 per byte, through `all_gather`. JSON,
not pickle: what a peer sends is data, never code (the objects are numbers, strings, lists and
dicts; a tuple comes back as a list).

Network exposure: TensorFlow's gRPC server listens on every interface ("0.0.0.0:<port>" is
fixed in its GrpcServer; TF_CONFIG only chooses the port and the addresses peers dial), even
when TF_CONFIG names 127.0.0.1 only. Nothing in TensorFlow's API binds it to loopback.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from distbench.core.errors import DistbenchError
from distbench.strategies.tf_base import TFStrategy


class TFMultiWorkerStrategy(TFStrategy):
    name = "tf-multiworker"
    loop = "custom"
    # One extra cross-process all-reduce per step would be paid for the loss alone; the loss is
    # summed locally instead and reduced once per epoch, outside the step.
    reduce_loss_every_step = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gather: Any = None
        self.host_options: Any = None

    def device_layout(self) -> dict[str, int]:
        if self.cfg.device == "cuda":
            return {"gpus": 1, "gpu_offset": self.env.local_rank}
        return {"gpus": 0}

    def make_distribution(self) -> Any:
        tf = self.tf
        tf_config = os.environ.get("TF_CONFIG")
        if tf_config is None and self.world > 1:
            raise DistbenchError(
                "tf-multiworker needs TF_CONFIG in each worker's environment (distbench run sets "
                "it; external launchers must too)"
            )
        if tf_config is not None:
            spec = json.loads(tf_config)
            workers = len(spec.get("cluster", {}).get("worker", [])) + len(
                spec.get("cluster", {}).get("chief", []))
            if workers != self.world:
                raise DistbenchError(f"TF_CONFIG lists {workers} workers, but this is rank "
                                     f"{self.rank} of {self.world}")
        # No timeout on the training collectives: TensorFlow implements a collective timeout
        # with one waiting thread per collective (about 12,000 live threads per worker for
        # mlp-128 at 60 s; one run with it failed on a timed-out barrier). A dead peer
        # still fails them (connection reset, or the coordination service's heartbeats).
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING)
        self.host_options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=self.cfg.tf_collective_timeout)
        self.cross_device = "tf-collective-ring (gRPC)"
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        if strategy.num_replicas_in_sync != self.world:
            raise DistbenchError(f"MultiWorkerMirroredStrategy has {strategy.num_replicas_in_sync} "
                                 f"replicas, expected one per worker ({self.world})")
        return strategy

    def distribute(self, dataset: Any) -> Any:
        """This worker's own shard, batched per replica: no automatic re-sharding."""
        return self.tf_strategy.distribute_datasets_from_function(lambda _ctx: dataset)

    # ---- host collectives over TensorFlow's
    def _gather_rows(self, row: np.ndarray) -> np.ndarray:
        """Every worker's equally long int32 row, stacked in rank order."""
        if self._gather is None:
            tf, dist = self.tf, self.tf_strategy

            def gather(rows: Any) -> Any:
                replica = dist.run(lambda: tf.distribute.get_replica_context().all_gather(
                    rows + 0, axis=0, options=self.host_options))
                return dist.experimental_local_results(replica)[0]

            # Traced once for every row length: no retracing, no eager collectives.
            self._gather = tf.function(gather,
                                       input_signature=[tf.TensorSpec([1, None], tf.int32)])
        return self._gather(row[None, :].astype(np.int32)).numpy()

    def all_gather(self, obj: Any) -> list[Any]:
        payload = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8).astype(np.int32)
        sizes = self._gather_rows(np.array([payload.size], dtype=np.int32))[:, 0]
        row = np.zeros(int(sizes.max()), dtype=np.int32)
        row[: payload.size] = payload
        rows = self._gather_rows(row)
        return [_decode(rows[i, : sizes[i]], i) for i in range(self.world)]

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return [float(sum(column)) for column in zip(*self.all_gather(list(values)), strict=True)]

    def barrier(self) -> None:
        self._gather_rows(np.zeros(1, dtype=np.int32))


def _decode(row: np.ndarray, rank: int) -> Any:
    """One peer's gathered JSON bytes back into its object."""
    if row.size and (row.min() < 0 or row.max() > 255):
        raise DistbenchError(f"rank {rank} sent a host-collective row that is not bytes")
    try:
        return json.loads(row.astype(np.uint8).tobytes())
    except ValueError as exc:
        raise DistbenchError(f"rank {rank} sent host-collective data that is not JSON ({exc})"
                             ) from None
