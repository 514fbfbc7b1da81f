"""Every named model builds and runs on grayscale and RGB input, at native or resized size.

Command: python -m pytest tests/unit/models/test_models.py

The input shape comes from the dataset, so a model that only works on MNIST-sized images would
break a CIFAR-10 comparison; identical weights from the same seed are what lets every strategy
start from the same point.
"""

from __future__ import annotations

import pytest
import torch

from distbench.core.config import ModelConfig
from distbench.core.errors import DistbenchError, UsageError
from distbench.models import MODEL_NAMES
from distbench.models import torch_models as tm

GRAY, RGB = (1, 28, 28), (3, 32, 32)


def build(name: str, shape: tuple[int, int, int], image_size: int | None = None,
          seed: int = 0, classes: int = 10) -> torch.nn.Module:
    channels = shape[0]
    return tm.build_model(ModelConfig(name, image_size=image_size), shape, classes,
                          [0.5] * channels, [0.25] * channels, seed=seed)


@pytest.mark.parametrize("shape", [GRAY, RGB], ids=["gray-28", "rgb-32"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_shape(name: str, shape: tuple[int, int, int]) -> None:
    model = build(name, shape)
    model.train()  # batch-norm layers need more than one sample per channel in training mode
    out = model(torch.rand(3, *shape))
    assert out.shape == (3, 10)
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(1, *shape)).shape == (1, 10)


@pytest.mark.parametrize("name,shape,size", [
    ("mlp-128", GRAY, 16), ("mlp-512", RGB, 24), ("mlp-25", GRAY, 32),
    ("cnn", GRAY, 32), ("cnn", RGB, 48), ("mobilenet_v2", GRAY, 64),
])
def test_image_size_resizes_input(name: str, shape: tuple[int, int, int], size: int) -> None:
    model = build(name, shape, image_size=size).eval()
    with torch.no_grad():
        assert model(torch.rand(2, *shape)).shape == (2, 10)
    first = next(m for m in model[1].modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d))
    if isinstance(first, torch.nn.Linear):
        assert first.in_features == shape[0] * size * size


def test_mlp_layouts_follow_the_spec() -> None:
    """mlp-128: 784-128-10 with dropout 0.2; mlp-512: 784-512-256-128-10; mlp-25: 784-25-15-10."""
    def widths(name: str) -> list[int]:
        linears = [m for m in build(name, GRAY).modules() if isinstance(m, torch.nn.Linear)]
        return [linears[0].in_features] + [m.out_features for m in linears]

    assert widths("mlp-128") == [784, 128, 10]
    assert widths("mlp-512") == [784, 512, 256, 128, 10]
    assert widths("mlp-25") == [784, 25, 15, 10]
    dropouts = [m.p for m in build("mlp-128", GRAY).modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.2]


def test_class_count_comes_from_the_dataset() -> None:
    assert build("cnn", RGB, classes=4).eval()(torch.rand(2, *RGB)).shape == (2, 4)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_same_seed_same_weights(name: str) -> None:
    a, b = build(name, RGB, seed=7).state_dict(), build(name, RGB, seed=7).state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    c = build(name, RGB, seed=8).state_dict()
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point() and a[k].ndim > 1)


def test_preprocess_normalises_with_dataset_statistics() -> None:
    pre = tm.Preprocess([0.5], [0.25], None)
    assert torch.allclose(pre(torch.full((1, 1, 2, 2), 0.75)), torch.ones(1, 1, 2, 2))
    resized = tm.Preprocess([0.0], [1.0], 8)(torch.rand(2, 1, 28, 28))
    assert resized.shape == (2, 1, 8, 8)


def test_unknown_model_lists_names() -> None:
    with pytest.raises(UsageError) as exc:
        build("resnet-9000", GRAY)
    for name in MODEL_NAMES:
        assert name in str(exc.value)


def test_non_square_input_needs_image_size() -> None:
    with pytest.raises(DistbenchError, match="square"):
        build("mlp-128", (1, 28, 20))
    assert build("mlp-128", (1, 28, 20), image_size=16).eval()(torch.rand(2, 1, 28, 20)).shape \
        == (2, 10)


def test_pretrained_only_for_mobilenet() -> None:
    with pytest.raises(DistbenchError, match="only available for mobilenet_v2"):
        tm.build_model(ModelConfig("cnn", pretrained=True), RGB, 10, [0.5] * 3, [0.25] * 3)


def test_pretrained_offline_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the ImageNet weights cannot be fetched, the user gets one line, not a traceback."""
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(DistbenchError) as exc:
        tm.build_model(ModelConfig("mobilenet_v2", pretrained=True), RGB, 10,
                       [0.5] * 3, [0.25] * 3)
    message = str(exc.value)
    assert "\n" not in message and "--pretrained" in message
    assert tm.MOBILENET_V2_IMAGENET_URL in message


def test_pretrained_weights_load_into_grayscale_mobilenet(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision-named ImageNet weights load; a grayscale first conv gets the summed kernels."""
    reference = tm.MobileNetV2(3, 1000)
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: dict(state))
    model = tm.build_model(ModelConfig("mobilenet_v2", pretrained=True), GRAY, 10, [0.5], [0.25])
    body = model[1]
    first = "features.0.0.weight"
    assert torch.equal(body.state_dict()[first], state[first].sum(dim=1, keepdim=True))
    assert torch.equal(body.state_dict()["features.5.conv.1.0.weight"],
                       state["features.5.conv.1.0.weight"])
    assert body.classifier[1].out_features == 10
