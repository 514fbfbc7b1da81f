"""The user's model and data through every layer: real runs, parity, the report's workload line,
predict's trust rule, and bad input refused in one line before a record is written.

Command: python -m pytest tests/multiproc/test_user_workloads.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from distbench.results.records import load_records
from distbench.strategies import missing_framework

from helpers import SGD, assert_one_line, assert_same_weights, run_cli

TINY_NET = Path(__file__).resolve().parents[1] / "user_models" / "tiny_net.py"
BROKEN = TINY_NET.with_name("broken_import.py")
RUN = ["--batch-size", "16", "--epochs", "1", "--warmup-steps", "1", "--no-progress", *SGD]


@pytest.fixture(scope="module")
def arrays(tmp_path_factory) -> Path:
    """A small uint8 npz dataset, channels-last, 4 classes told apart by brightness."""
    rng = np.random.default_rng(0)
    y = np.arange(96) % 4
    x = (rng.integers(0, 40, (96, 8, 8, 3)) + 60 * y[:, None, None, None]).astype(np.uint8)
    path = tmp_path_factory.mktemp("data") / "arrays.npz"
    np.savez(path, x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:],
             class_names=np.array(["a", "b", "c", "d"]))
    return path


def train(out: Path, arrays: Path, *flags: str) -> tuple[dict, dict[str, np.ndarray]]:
    from helpers import train_and_load

    return train_and_load(out, "--model", f"{TINY_NET}:build", "--dataset", f"npz:{arrays}",
                          *RUN, *flags)


@pytest.mark.parametrize("strategy,baseline", [("ddp", "single"), ("mpi", "single"),
                                               ("tf-mirrored", "tf-single")])
def test_a_user_model_on_user_data_matches_its_baseline(tmp_path, arrays, strategy, baseline):
    hint = missing_framework(strategy)
    if hint:
        pytest.skip(hint)
    base_record, expected = train(tmp_path / "base", arrays, "--strategy", baseline)
    record, weights = train(tmp_path / "run", arrays, "--strategy", strategy, "--workers", "2")
    assert_same_weights(weights, expected, f"{strategy} on a user model")
    for r in (base_record, record):
        assert r["model"] == f"{TINY_NET}:build"
        assert r["model_sha256"] and len(r["model_sha256"]) == 64
        assert r["model_params"] > 0 and r["input_shape"] == [3, 8, 8]
        assert (r["train_samples"], r["test_samples"], r["classes"]) == (64, 32, 4)
        assert "NHWC" in r["data_source"]
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["model_sha256"] == record["model_sha256"]
    assert meta["model_file"] == str(TINY_NET)


def test_predict_runs_user_code_only_when_trusted(tmp_path, arrays):
    from PIL import Image

    model = tmp_path / "net.py"
    model.write_text(TINY_NET.read_text())
    out = tmp_path / "run"
    proc = run_cli("run", "--strategy", "single", "--model", f"{model}:build", "--dataset",
                   f"npz:{arrays}", *RUN, "--out", str(out), "--save-model")
    assert proc.returncode == 0, proc.stderr
    image = tmp_path / "x.png"
    Image.new("RGB", (8, 8), (200, 200, 200)).save(image)
    refused = run_cli("predict", str(out), str(image))
    assert refused.returncode == 2
    assert str(model) in assert_one_line(refused.stderr) and "--trust-code" in refused.stderr
    trusted = run_cli("predict", str(out), str(image), "--trust-code", "--json")
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["predictions"][0]["top"][0]["class"] in "abcd"
    model.write_text(model.read_text() + "\n# edited after training\n")
    changed = run_cli("predict", str(out), str(image), "--trust-code")
    assert changed.returncode == 2 and "changed since training" in assert_one_line(changed.stderr)


@pytest.mark.parametrize("flags,expected", [
    (["--model", "nope.py:build"], "no such file nope.py"),
    (["--model", f"{TINY_NET}:nope"], "defines no function nope"),
    (["--model", "no_such_pkg.nets:build"], "cannot find module"),
    (["--model", f"{BROKEN}:build"], "broken_import.py:5: ValueError: math domain error"),
    (["--model", f"{TINY_NET}:wrong_type"], "expected a torch.nn.Module"),
    (["--model", f"{TINY_NET}:wrong_logits", "--workers", "2", "--strategy", "ddp"],
     "expected (batch, 4) logits"),
    (["--model", f"{TINY_NET}:torch_only", "--strategy", "tf-single"],
     "this model is PyTorch only, not tf"),
    (["--model", f"{TINY_NET}:no_weights_until_called", "--strategy", "tf-single"],
     "returned a keras.Model with no trainable parameters"),
    (["--dataset", "folder:/no/such/folder"], "no such folder"),
    (["--dataset", "npz:/no/such.npz"], "no such file"),
], ids=["missing-file", "missing-function", "missing-module", "import-error", "wrong-type",
        "wrong-logits", "one-framework", "keras-no-weights", "missing-folder", "missing-npz"])
def test_bad_user_input_is_one_line_and_leaves_no_results(tmp_path, arrays, flags, expected):
    if "tf-single" in flags and missing_framework("tf-single"):
        pytest.skip(missing_framework("tf-single"))
    base = ["--model", f"{TINY_NET}:build", "--dataset", f"npz:{arrays}"]
    out = tmp_path / "out"
    proc = run_cli("run", *base, *RUN, *flags, "--out", str(out))
    assert proc.returncode == 2
    assert expected in assert_one_line(proc.stderr)
    assert not out.exists()


def test_a_bad_data_folder_is_refused_before_any_worker(tmp_path):
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    (tmp_path / "imgs" / "cat" / "0.png").write_bytes(b"not a png")
    (tmp_path / "imgs" / "dog").mkdir()
    (tmp_path / "imgs" / "dog" / "0.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    proc = run_cli("compare", "--strategies", "single,ddp", "--workers", "1,2", "--dataset",
                   f"folder:{tmp_path / 'imgs'}", "--out", str(out))
    assert proc.returncode == 2
    assert "0.png" in assert_one_line(proc.stderr)
    assert not out.exists()


def test_compare_shows_the_workload(tmp_path, arrays):
    out = tmp_path / "study"
    proc = run_cli("compare", "--strategies", "single,ddp", "--workers", "1,2", "--model",
                   f"{TINY_NET}:build", "--dataset", f"npz:{arrays}", *RUN, "--out", str(out),
                   timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert all(r["status"] == "ok" for r in load_records(out))
    text = (out / "summary.md").read_text()
    assert "Workload: model" in text and "64 training and 32 test samples of 3x8x8" in text
