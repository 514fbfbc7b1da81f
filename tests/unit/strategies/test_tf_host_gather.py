"""tf-multiworker's host gather carries JSON, so a peer's bytes are read as data, never run.

Command: python -m pytest tests/unit/strategies/test_tf_host_gather.py

The TensorFlow collective is replaced by a stand-in that stacks what each simulated rank sends;
the encoding and decoding around it are the real ones, and TensorFlow is not imported.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distbench.core.config import RunConfig
from distbench.core.errors import DistbenchError
from distbench.strategies.tf_multiworker import TFMultiWorkerStrategy
from distbench.system.cluster import ClusterEnv


def as_row(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).astype(np.int32)


class TwoRanks(TFMultiWorkerStrategy):
    """Rank 0 of two. Rank 1 sends `peer` (the same as rank 0 when None); each `all_gather` is
    two gathers, the lengths and then the rows padded to the longest."""

    def __init__(self, peer: np.ndarray | None = None) -> None:
        super().__init__(RunConfig(strategy="tf-multiworker", workers=2),
                         ClusterEnv(rank=0, world_size=2))
        self.peer = peer
        self.lengths_next = True

    def _gather_rows(self, row: np.ndarray) -> np.ndarray:
        peer = row if self.peer is None else self.peer
        if self.lengths_next:
            self.lengths_next = False
            return np.stack([row, np.array([row[0] if self.peer is None else peer.size])])
        self.lengths_next = True
        return np.stack([row, np.pad(peer, (0, row.size - peer.size))])


def test_objects_come_back_as_sent_in_json_terms() -> None:
    row = {"rank": 0, "pid": 12, "host": "box", "threads": 1, "train_s": 1.5,
           "epoch_s": [0.5, 1.0], "comm_s": None, "peak_rss_mb": 100.25,
           "per_replica_batch": [32]}
    assert TwoRanks().all_gather(row) == [row, row]
    assert TwoRanks().all_gather((1.25, 0.5)) == [[1.25, 0.5], [1.25, 0.5]]
    assert TwoRanks().all_reduce_sum([1.0, 2.0, 3.0]) == [2.0, 4.0, 6.0]


class Marker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.path}",)


def test_a_pickled_payload_from_a_peer_is_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    strategy = TwoRanks(peer=as_row(pickle.dumps(Marker(marker))))
    with pytest.raises(DistbenchError, match="rank 1 sent host-collective data that is not JSON"):
        strategy.all_gather({"rank": 0})
    assert not marker.exists()


def test_a_row_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(DistbenchError, match="rank 1 sent a host-collective row"):
        TwoRanks(peer=np.array([91, 300, 93], np.int32)).all_gather([1])
