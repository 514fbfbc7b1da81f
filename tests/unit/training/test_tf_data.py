"""The TensorFlow rows' input pipeline shards exactly like the PyTorch rows.

Command: python -m pytest tests/unit/training/test_tf_data.py
(TensorFlow runs in a subprocess; see `keras_side` in tests/conftest.py.)
"""

from __future__ import annotations

from distbench.data import step_batches


def test_tf_input_pipeline_shards_like_the_pytorch_rows(keras_side):
    """9 samples, global batch 4, 2 ranks: the shared order gives exactly `step_batches`, rank 1's
    empty last slice is padded to an empty batch, and the tf.data shuffle buffer covers every
    sample once per epoch, differently each epoch, the same in another process."""
    shared, buffer = keras_side["shared"], keras_side["buffer"]
    for rank in range(2):
        for epoch in range(2):
            expected = [idx.tolist() for idx, _ in step_batches(9, 3, epoch, rank, 2, 4)]
            assert shared[f"{rank} {epoch}"] == expected
    assert [len(b) for b in shared["1 0"]] == [2, 2, 0]
    for epoch in range(2):
        assert [len(b) for b in buffer[f"1 {epoch}"]] == [2, 2, 0]
        samples = [i for rank in range(2) for b in buffer[f"{rank} {epoch}"] for i in b]
        assert sorted(samples) == list(range(9))
    assert buffer["0 0"] != buffer["0 1"]
    assert keras_side["buffer_again"] == buffer


def test_one_dataset_serves_every_timed_epoch_in_order(keras_side):
    """The custom loop's one iterator (`epochs_dataset`, three epochs joined pairwise) yields
    epoch 0's batches, then epoch 1's, then epoch 2's, each exactly as the epoch's own dataset
    would, empty padding batch included: an epoch of `steps` batches starts where the last one
    ended."""
    for kind in ("shared", "buffer"):
        for rank in range(2):
            facts = keras_side[kind]
            epochs = [facts[f"{rank} {epoch}"] for epoch in range(3)]
            assert facts[f"{rank} all"] == epochs[0] + epochs[1] + epochs[2]
