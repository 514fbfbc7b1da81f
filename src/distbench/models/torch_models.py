"""The PyTorch versions of the named models.

Every model starts with the dataset's per-channel normalisation (and an optional resize), so
callers feed raw [0, 1] pixels in training, evaluation and inference alike.

MobileNetV2 is written out here rather than imported from torchvision: PyPI's torchvision wheels
do not load beside the CPU build of torch. The layer layout and parameter names follow
torchvision's `mobilenet_v2`, so its ImageNet weights load unchanged with `--pretrained`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from distbench.core.config import ModelConfig
from distbench.core.errors import DistbenchError, unknown_name
from distbench.models import MLP_LAYOUTS, MODEL_NAMES
from distbench.models.user import (
    ModelSpec,
    call_factory,
    check_dummy_batch,
    is_user_model,
    parse_spec,
)

MOBILENET_V2_IMAGENET_URL = "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"


class Preprocess(nn.Module):
    """Normalise with the training set's statistics, then resize if asked.

    Takes float pixels in [0, 1] or uint8 ones: user datasets stay uint8 in their shared cache,
    and scaling here, per batch, is bit-identical to the float copies of the built-in sets."""

    def __init__(self, mean: list[float], std: list[float], image_size: int | None) -> None:
        super().__init__()
        # float32 whatever the numbers' type: integer statistics would make integer buffers.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.image_size = image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:  # a user dataset's memory-mapped cache, scaled per batch
            x = x.float() / 255.0
        x = (x - self.mean) / self.std
        if self.image_size is not None and x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear")
        return x


def mlp(widths: list[int], dropout: float) -> nn.Sequential:
    """Flatten, then Linear+ReLU(+Dropout) per hidden width, then the output layer."""
    layers: list[nn.Module] = [nn.Flatten()]
    for fan_in, fan_out in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


def cnn(channels: int, size: int, classes: int) -> nn.Sequential:
    """Two conv blocks and two dense layers: compute-heavier per byte of gradient than the MLPs."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (size // 4) ** 2, 128),
        nn.ReLU(),
        nn.Linear(128, classes),
    )


class ConvBNReLU6(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBNReLU6(cin, hidden, kernel=1)] if expand != 1 else []
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    # (expansion, output channels, repeats, first stride), as in the paper and torchvision.
    SETTINGS = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        features: list[nn.Module] = [ConvBNReLU6(channels, 32, stride=2)]
        cin = 32
        for expand, cout, repeats, stride in self.SETTINGS:
            for i in range(repeats):
                features.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        features.append(ConvBNReLU6(cin, 1280, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)

    def load_imagenet(self) -> None:
        """ImageNet weights for all but the 10-class head; grayscale sums the RGB kernels."""
        try:
            state = torch.hub.load_state_dict_from_url(
                MOBILENET_V2_IMAGENET_URL, progress=False, check_hash=True
            )
        except Exception as exc:  # noqa: BLE001 - any fetch failure means "not available here"
            raise DistbenchError(
                f"--pretrained: cannot load ImageNet weights from {MOBILENET_V2_IMAGENET_URL} "
                f"({type(exc).__name__}: offline?); run without --pretrained"
            ) from None
        first = "features.0.0.weight"
        if self.features[0][0].in_channels == 1:
            state[first] = state[first].sum(dim=1, keepdim=True)
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        self.load_state_dict(state, strict=False)


def _mlp_builder(hidden: tuple[int, ...], dropout: float) -> Callable[[int, int, int], nn.Module]:
    return lambda c, s, k: mlp([c * s * s, *hidden, k], dropout=dropout)


BUILDERS: dict[str, Callable[[int, int, int], nn.Module]] = {
    **{name: _mlp_builder(*layout) for name, layout in MLP_LAYOUTS.items()},
    "cnn": cnn,
    "mobilenet_v2": lambda c, s, k: MobileNetV2(c, k),
}
assert tuple(BUILDERS) == MODEL_NAMES


def build_model(
    cfg: ModelConfig,
    input_shape: tuple[int, int, int],
    num_classes: int,
    mean: list[float],
    std: list[float],
    seed: int = 0,
) -> nn.Sequential:
    """A freshly initialised model; the same seed gives the same weights in every process."""
    if is_user_model(cfg.name):
        return _user_model(parse_spec(cfg.name), cfg, input_shape, num_classes, mean, std, seed)
    if cfg.name not in BUILDERS:
        raise unknown_name("model", cfg.name, MODEL_NAMES)
    channels, height, width = input_shape
    size = cfg.image_size or height
    if cfg.image_size is None and height != width:
        raise DistbenchError(f"model {cfg.name} needs square images, got {height}x{width}")
    if cfg.name == "cnn" and size < 4:
        raise DistbenchError(f"cnn pools twice by 2 and needs images of at least 4x4, got {size}")
    if cfg.pretrained and cfg.name != "mobilenet_v2":
        raise DistbenchError(f"--pretrained is only available for mobilenet_v2, not {cfg.name}")
    torch.manual_seed(seed)
    body = BUILDERS[cfg.name](channels, size, num_classes)
    if cfg.pretrained:
        body.load_imagenet()  # type: ignore[operator]
    return nn.Sequential(Preprocess(mean, std, cfg.image_size), body)


def _user_model(spec: ModelSpec, cfg: ModelConfig, input_shape: tuple[int, int, int],
                num_classes: int, mean: list[float], std: list[float], seed: int) -> nn.Sequential:
    """The user's network behind the same preprocessing as the named models, checked on one
    dummy batch (in eval mode and without gradients: no statistics or RNG state move)."""
    channels, height, width = input_shape
    shape = (channels, cfg.image_size, cfg.image_size) if cfg.image_size else input_shape
    torch.manual_seed(seed)
    body = call_factory(spec, shape, num_classes, "torch", nn.Module, "torch.nn.Module")
    body.eval()
    with torch.no_grad():
        check_dummy_batch(spec, lambda: body(torch.zeros(2, *shape)), (2, *shape), num_classes)
    body.train()
    return nn.Sequential(Preprocess(mean, std, cfg.image_size), body)
