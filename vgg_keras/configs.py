"""Table 1 of Simonyan & Zisserman (2015) as data.

Every VGG configuration is a tuple of five blocks; each block is a tuple of
convolution specs. Nothing here imports TensorFlow or Keras, so the table can be
read (for docs, CLIs, configs) without loading a backend.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = [
    "ConvSpec",
    "VGGConfig",
    "CONFIGS",
    "MODEL_NAMES",
    "resolve_model_name",
    "canonical_name",
    "STAGES",
    "PREDICTIONS",
]

# The parts of a VGG that a user names in a config (`finetune.unfreeze`, `finetune.head`): the
# five conv blocks, the hidden classifier layers ("fc") and the class-score layer. vgg_keras.models
# names its layers after them (`block{b}_*`, `fc1`, `fc2`, `predictions`); they live here so that
# configs read them without loading TensorFlow.
STAGES = ("block1", "block2", "block3", "block4", "block5", "fc")
PREDICTIONS = "predictions"


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """One convolution of Table 1 (stride 1, "same" padding, ReLU).

    Attributes:
        filters: Output channels at width multiplier 1.
        kernel_size: Square kernel size: 3, or 1 for the 1x1 convs of config C.
    """

    filters: int
    kernel_size: int = 3


@dataclasses.dataclass(frozen=True)
class VGGConfig:
    """One column of Table 1.

    Attributes:
        letter: The paper's name ("A", "A-LRN", "B", "C", "D" or "E").
        name: The common name ("vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19").
        blocks: Five tuples of `ConvSpec`, each block followed by a 2x2/2 max-pool.
        lrn: Whether Local Response Normalisation follows the first conv (A-LRN).
    """

    letter: str
    name: str
    blocks: tuple[tuple[ConvSpec, ...], ...]
    lrn: bool = False

    @property
    def weight_layers(self) -> int:
        """Number of weight layers (convs + three FC), as in the paper's column titles."""
        return sum(len(block) for block in self.blocks) + 3


def _block(*filters: int | tuple[int, int]) -> tuple[ConvSpec, ...]:
    """A block from filter counts; `(filters, kernel)` pairs give other kernel sizes."""
    return tuple(ConvSpec(*f) if isinstance(f, tuple) else ConvSpec(f) for f in filters)


_A = (_block(64), _block(128), _block(256, 256), _block(512, 512), _block(512, 512))
_B = (_block(64, 64), _block(128, 128), _block(256, 256), _block(512, 512), _block(512, 512))
_C = (
    _block(64, 64),
    _block(128, 128),
    _block(256, 256, (256, 1)),
    _block(512, 512, (512, 1)),
    _block(512, 512, (512, 1)),
)
_D = (_block(64, 64), _block(128, 128), _block(256, 256, 256), _block(512, 512, 512), _block(512, 512, 512))
_E = (
    _block(64, 64),
    _block(128, 128),
    _block(256, 256, 256, 256),
    _block(512, 512, 512, 512),
    _block(512, 512, 512, 512),
)

CONFIGS: dict[str, VGGConfig] = {
    "A": VGGConfig("A", "vgg11", _A),
    "A-LRN": VGGConfig("A-LRN", "vgg11_lrn", _A, lrn=True),
    "B": VGGConfig("B", "vgg13", _B),
    "C": VGGConfig("C", "vgg16_c", _C),
    "D": VGGConfig("D", "vgg16", _D),
    "E": VGGConfig("E", "vgg19", _E),
}

_BY_NAME = {config.name: letter for letter, config in CONFIGS.items()}

MODEL_NAMES: tuple[str, ...] = tuple(name for config in CONFIGS.values() for name in (config.name, config.name + "_bn"))


def resolve_model_name(name: str) -> tuple[VGGConfig, bool]:
    """Maps a model name to its configuration and whether it uses BatchNorm.

    Args:
        name: A paper letter ("A", "A-LRN", "B", "C", "D", "E", case-insensitive) or a
            common name ("vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19"),
            optionally with a "_bn" suffix ("vgg16_bn", "D_bn").

    Returns:
        `(config, batch_norm)`.

    Raises:
        TypeError: If `name` is not a string.
        ValueError: If `name` names no configuration.
    """
    if not isinstance(name, str):
        raise TypeError(f"Model name must be a string; received name={name!r} of type {type(name).__name__}.")
    key = name.strip()
    batch_norm = bool(re.search(r"[_-]bn$", key, flags=re.IGNORECASE))
    if batch_norm:
        key = key[:-3]
    letter = key.upper().replace("_", "-")
    if letter in CONFIGS:
        return CONFIGS[letter], batch_norm
    common = key.lower().replace("-", "_")
    if common in _BY_NAME:
        return CONFIGS[_BY_NAME[common]], batch_norm
    allowed = ", ".join(list(CONFIGS) + list(_BY_NAME))
    raise ValueError(
        f"Unknown VGG configuration name={name!r}. Allowed: {allowed}, each optionally with a '_bn' suffix."
    )


def canonical_name(config: VGGConfig, batch_norm: bool) -> str:
    """The common name of a configuration, e.g. `vgg16_bn`."""
    return config.name + ("_bn" if batch_norm else "")
