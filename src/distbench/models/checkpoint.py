"""Checkpoints: weights in safetensors plus a JSON sidecar that says how to use them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import nn

from distbench.core.config import RunConfig
from distbench.data import Dataset

WEIGHTS, SIDECAR = "model.safetensors", "model.json"


def save_checkpoint(net: nn.Module, cfg: RunConfig, data: Dataset, record: dict[str, Any]) -> Path:
    """Write `<out>/model.safetensors` and `<out>/model.json`; returns the weights path."""
    out = Path(cfg.out or ".")
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    weights = out / WEIGHTS
    save_file(state, str(weights) + ".tmp")
    os.replace(str(weights) + ".tmp", weights)
    meta = {
        "framework": "pytorch",
        "model": cfg.model.name,
        "image_size": cfg.model.image_size,
        "dataset": cfg.data.name,
        "classes": data.classes,
        "input_shape": list(data.input_shape),
        "normalisation": {
            "mean": data.mean,
            "std": data.std,
            "pixels": "[0, 1] before normalising",
        },
        "run_id": record["run_id"],
        "strategy": cfg.strategy,
        "workers": cfg.workers,
        "test_accuracy": record["test_accuracy"],
        "tensors": sorted(state),
    }
    (out / SIDECAR).write_text(json.dumps(meta, indent=2) + "\n")
    return weights
