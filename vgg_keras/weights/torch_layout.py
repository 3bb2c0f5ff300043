"""torchvision / timm VGG state dicts -> Keras layer names and kernel layouts (Table 1 order)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from vgg_keras import configs as configs_lib
from vgg_keras.validation import first_few


def torchvision_layout(arch: str) -> dict[str, int]:
    """Maps Keras layer names to torchvision `features.<i>` indices, derived from Table 1.

    torchvision's `features` is Conv2d, [BatchNorm2d], ReLU per conv and a MaxPool2d per
    block (an LRN after the first ReLU for A-LRN), numbered in that order.

    Args:
        arch: A model name, e.g. "vgg16_bn".

    Returns:
        `{"block1_conv1": 0, "block1_bn1": 1, ...}`.
    """
    config, batch_norm = configs_lib.resolve_model_name(arch)
    layout, index = {}, 0
    for block, convs in enumerate(config.blocks, start=1):
        for i in range(1, len(convs) + 1):
            layout[f"block{block}_conv{i}"] = index
            if batch_norm:
                layout[f"block{block}_bn{i}"] = index + 1
            index += 3 if batch_norm else 2
            index += 1 if (config.lrn and block == 1 and i == 1) else 0
        index += 1  # max-pool
    return layout


def _conv_kernel(weight: np.ndarray) -> np.ndarray:
    return np.transpose(weight, (2, 3, 1, 0))  # OIHW -> HWIO


def _take(state: dict[str, np.ndarray], prefix: str, suffixes: Iterable[str]) -> list[np.ndarray] | None:
    keys = [f"{prefix}.{s}" for s in suffixes]
    if not all(k in state for k in keys):
        return None
    return [state.pop(k) for k in keys]


def _fc1_kernel(weight: np.ndarray, channels: int, name: str) -> np.ndarray:
    """classifier.0 [out, C*h*w] (C,H,W flatten order) or timm's conv [out, C, h, w] -> HWIO."""
    if weight.ndim == 2:
        side = int(round((weight.shape[1] / max(channels, 1)) ** 0.5))
        if channels * side * side != weight.shape[1]:
            raise ValueError(
                f"{name} has shape {weight.shape}: {weight.shape[1]} inputs are not {channels} channels x a square map."
            )
        weight = weight.reshape(weight.shape[0], channels, side, side)
    return _conv_kernel(weight)


def _head_keys(state: Mapping[str, np.ndarray]) -> dict[str, tuple[str, bool]]:
    """Keras fc name -> (state-dict prefix, is conv-shaped) for the torchvision or timm head."""
    if any(k.startswith("pre_logits.") for k in state):
        return {"fc1": ("pre_logits.fc1", True), "fc2": ("pre_logits.fc2", True), "predictions": ("head.fc", False)}
    return {"fc1": ("classifier.0", False), "fc2": ("classifier.3", False), "predictions": ("classifier.6", False)}


def from_torch_layout(
    state: Mapping[str, np.ndarray], arch: str, source: str = "The state dict"
) -> dict[str, list[np.ndarray]]:
    """Converts a torchvision (or timm) VGG state dict to `{keras_layer_name: [arrays]}`.

    Conv kernels go OIHW -> HWIO; BatchNorm keeps weight, bias, running mean and variance
    (Keras' gamma, beta, moving mean, moving variance); classifier.0's C,H,W-flattened
    kernel (or timm's conv-shaped pre_logits.fc1) becomes a channels-last conv kernel;
    Linear kernels are transposed.

    Args:
        state: The state dict as NumPy arrays.
        arch: The model name whose `features.<i>` numbering applies.
        source: Names the origin in error messages.

    Returns:
        Arrays per Keras layer name.

    Raises:
        ValueError: If keys are missing or left over; the message lists the first ones.
    """
    state = {k: np.asarray(v) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    tensors, missing = {}, []
    for name, index in torchvision_layout(arch).items():
        suffixes = ("weight", "bias", "running_mean", "running_var") if "_bn" in name else ("weight", "bias")
        values = _take(state, f"features.{index}", suffixes)
        if values is None:
            missing.append(f"features.{index} ({name})")
            continue
        tensors[name] = [_conv_kernel(values[0]), values[1]] if "_conv" in name else values
    head = _head_keys(state)
    has_head = any(k.startswith(prefix) for prefix, _ in head.values() for k in state)
    last_conv = [v[0].shape[-1] for k, v in tensors.items() if "_conv" in k][-1:] or [0]
    for name, (prefix, conv_shaped) in head.items() if has_head else ():
        values = _take(state, prefix, ("weight", "bias"))
        if values is None:
            missing.append(f"{prefix} ({name})")
            continue
        kernel = values[0]
        if name == "fc1":
            kernel = _fc1_kernel(kernel, last_conv[0], f"{prefix}.weight")
        else:
            kernel = _conv_kernel(kernel) if conv_shaped else kernel.T
        tensors[name] = [kernel, values[1]]
    if missing or state:
        extra = [f"{k} {tuple(v.shape)}" for k, v in state.items()]
        raise ValueError(f"{source} does not fit {arch}: missing {first_few(missing)}; unexpected {first_few(extra)}.")
    return tensors
