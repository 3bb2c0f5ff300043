"""Reference forward passes of the torchvision VGG layout, independent of Keras.

Used to check converted weights: `torch_model` builds the torchvision module layout in
PyTorch (optional dependency), `numpy_forward` runs a torchvision-layout state dict with
NumPy only (NCHW, OIHW kernels, C,H,W flatten), so a conversion can be checked with no
deep-learning framework but NumPy. Both take RGB images in [0, 255], channels-last, and
apply torchvision's own normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vgg_keras import configs as configs_lib
from vgg_keras import preprocessing as preprocessing_lib
from vgg_keras import weights as weights_lib

__all__ = ["torch_model", "torch_forward", "numpy_forward"]


def _torch_images(images: np.ndarray) -> np.ndarray:
    """RGB [0, 255] NHWC -> torchvision-normalised NCHW float32."""
    norm = preprocessing_lib.PREPROCESSING_MODES["torch"]
    x = np.asarray(images, dtype="float32") / 255.0
    x = (x - np.asarray(norm.mean, "float32")) / np.asarray(norm.std, "float32")
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def torch_model(
    arch: str,
    *,
    width_multiplier: float = 1.0,
    fc_units: int = 4096,
    classes: int = 1000,
    pool_size: int = 7,
    timm_head: bool = False,
):
    """A PyTorch VGG with torchvision's module layout (or timm's conv-shaped head), random init.

    Args:
        arch: Model name, e.g. "vgg16_bn".
        width_multiplier: Scales conv widths (as in `vgg_keras.build`).
        fc_units: Width of the two hidden FC layers.
        classes: Number of classes.
        pool_size: Side of the adaptive average pool before the classifier (7 at 224 input;
            base_size / 32 in general).
        timm_head: timm's layout: `pre_logits.fc1|fc2` convs and `head.fc`.

    Returns:
        A `torch.nn.Module` in eval mode whose `state_dict()` has the torchvision keys.
    """
    import torch
    from torch import nn

    config, batch_norm = configs_lib.resolve_model_name(arch)
    layers, channels = [], 3
    for block, convs in enumerate(config.blocks, start=1):
        for index, spec in enumerate(convs, start=1):
            filters = max(1, int(round(spec.filters * width_multiplier)))
            layers.append(nn.Conv2d(channels, filters, spec.kernel_size, padding=spec.kernel_size // 2))
            layers += [nn.BatchNorm2d(filters)] if batch_norm else []
            layers.append(nn.ReLU(inplace=True))
            if config.lrn and block == 1 and index == 1:
                layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))  # alpha * n = paper's 1e-4 * 5
            channels = filters
        layers.append(nn.MaxPool2d(2, 2))

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
            if timm_head:
                self.pre_logits = nn.Module()
                self.pre_logits.fc1 = nn.Conv2d(channels, fc_units, pool_size)
                self.pre_logits.fc2 = nn.Conv2d(fc_units, fc_units, 1)
                self.head = nn.Module()
                self.head.fc = nn.Linear(fc_units, classes)
            else:
                self.classifier = nn.Sequential(
                    nn.Linear(channels * pool_size * pool_size, fc_units),
                    nn.ReLU(True),
                    nn.Dropout(),
                    nn.Linear(fc_units, fc_units),
                    nn.ReLU(True),
                    nn.Dropout(),
                    nn.Linear(fc_units, classes),
                )

        def forward(self, x):
            x = self.avgpool(self.features(x))
            if timm_head:
                x = torch.relu(self.pre_logits.fc2(torch.relu(self.pre_logits.fc1(x))))
                return self.head.fc(torch.flatten(x, 1))
            return self.classifier(torch.flatten(x, 1))

    model = VGG().eval()
    for module in model.modules():  # non-trivial BN statistics, so the test can see them
        if isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


def torch_forward(model, images: np.ndarray) -> np.ndarray:
    """Logits of a PyTorch model on RGB [0, 255] NHWC images with torchvision's normalisation."""
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(_torch_images(images))).numpy()


def _conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """NCHW 'same' convolution with an OIHW kernel (cross-correlation, as in torch)."""
    pad = weight.shape[-1] // 2
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(x, weight.shape[-2:], axis=(2, 3))  # N,C,H,W,kh,kw
    return np.einsum("nchwij,ocij->nohw", windows, weight, optimize=True) + bias[None, :, None, None]


def _max_pool(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def numpy_forward(state: Mapping[str, np.ndarray], arch: str, images: np.ndarray) -> np.ndarray:
    """Logits of a torchvision-layout VGG state dict, computed with NumPy.

    Only the case without the adaptive pool's resampling is supported: the last feature
    map must already have the classifier's spatial size (224 input for 7x7, or the
    input size = base_size in general).

    Args:
        state: torchvision state dict (`features.<i>`, `classifier.0|3|6`) as arrays.
        arch: Model name (its Table 1 column gives the `features` numbering).
        images: RGB in [0, 255], `(N, H, W, 3)`.

    Returns:
        Logits `(N, classes)` in float64.
    """
    if configs_lib.resolve_model_name(arch)[0].lrn:
        raise ValueError(f"numpy_forward does not implement LRN; arch={arch!r} is not supported.")
    state = {k: np.asarray(v, dtype="float64") for k, v in state.items()}
    x = _torch_images(images).astype("float64")
    layout = weights_lib.torchvision_layout(arch)
    for block in range(1, 6):
        convs = sorted(n for n in layout if n.startswith(f"block{block}_conv"))
        for conv in convs:
            prefix = f"features.{layout[conv]}"
            x = _conv(x, state[f"{prefix}.weight"], state[f"{prefix}.bias"])
            bn = conv.replace("_conv", "_bn")
            if bn in layout:
                p = f"features.{layout[bn]}"
                x = (x - state[f"{p}.running_mean"][:, None, None]) / np.sqrt(
                    state[f"{p}.running_var"][:, None, None] + 1e-5
                )
                x = x * state[f"{p}.weight"][:, None, None] + state[f"{p}.bias"][:, None, None]
            x = np.maximum(x, 0)
        x = _max_pool(x)
    x = x.reshape(x.shape[0], -1)  # C,H,W order, as torch.flatten
    for index in (0, 3, 6):
        x = x @ state[f"classifier.{index}.weight"].T + state[f"classifier.{index}.bias"]
        x = np.maximum(x, 0) if index < 6 else x
    return x
