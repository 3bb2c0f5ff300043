"""The fine-tuning config (`vgg_keras.training.finetune`), importable without TensorFlow.

Config files (`recipes/configs/finetune*.py`) import this module only, so a recipe can read
and check its flags before TensorFlow loads.
"""

from __future__ import annotations

import ml_collections

from vgg_keras import configs as configs_lib
from vgg_keras.training import config as config_lib

__all__ = ["AUGMENTATIONS", "BLOCKS", "HEADS", "check_finetune_config", "finetune_config", "invalid", "unfreeze_groups"]

# The first head replaces the predictions layer: its name is the model's (vgg_keras.configs, TensorFlow-free).
HEADS = (configs_lib.PREDICTIONS, "pooled", "keep")
AUGMENTATIONS = ("paper", "light")
BLOCKS = configs_lib.STAGES


def finetune_config() -> ml_collections.ConfigDict:
    """The training config plus a `finetune` section (defaults: VGG16 ImageNet weights, 224 px).

    Returns:
        A `ConfigDict`: `base_config()`'s sections (the optimiser's learning rate is phase
        1's; `training.epochs` is set per phase from `finetune.phase{1,2}_epochs`) and
        `finetune` (see `vgg_keras.training.finetune`).
    """
    config = config_lib.base_config()
    config.experiment = "vgg_finetune"
    config.model.arch = "vgg16"  # the architecture of a weights tag or file (not of a .keras source)
    config.data.name = ""
    config.data.mean_rgb = ()  # unused: the source's preprocessing is kept
    config.data.shuffle_buffer = 2000
    config.training.batch_size = 32
    config.optimizer.plateau_patience = 3
    config.finetune = ml_collections.ConfigDict(
        {
            "source": "imagenet",
            "head": HEADS[0],
            "preprocessing": "",  # only for a .keras source without a preprocessing layer
            "head_dropout": 0.5,  # head="pooled": dropout before the new soft-max layer
            "phase1_epochs": 5,
            "phase2_epochs": 5,  # 0: phase 1 only
            "phase2_lr_factor": 0.1,  # keras.io: 10-100x lower in phase 2
            "unfreeze": "block5,fc",  # comma-separated BLOCKS, or "all"
            "class_weights": False,  # weight classes by N / (classes * count): imbalanced folders
            "label_smoothing": 0.0,
            "augmentation": "paper",  # "paper": scale jitter + flip + colour shift; "light": flip only
            "validation_fraction": 0.2,  # held out of an image folder without a validation folder
            "validation_seed": 0,
        }
    )
    config.after.evaluate = True
    config.after.export = True
    return config


def invalid(field: str, value, allowed: str):
    """Raises the error of an invalid `config.finetune.<field>` (also for the checks in `finetune`).

    Raises:
        ValueError: Naming the field, its value and what is allowed.
    """
    raise ValueError(f"Invalid config.finetune.{field}={value!r}; allowed: {allowed}.")


def unfreeze_groups(value: str) -> tuple[str, ...]:
    """The `BLOCKS` a `finetune.unfreeze` value names ("all" means all of them).

    Args:
        value: E.g. "block5,fc" or "all".

    Returns:
        The names, in the order given.

    Raises:
        ValueError: For a name that is not in `BLOCKS`.
    """
    tokens = tuple(t.strip() for t in str(value).split(",") if t.strip())
    if tokens == ("all",):
        return BLOCKS
    unknown = [t for t in tokens if t not in BLOCKS]
    if unknown:
        invalid("unfreeze", value, f"'all' or a comma-separated list of {', '.join(BLOCKS)} (e.g. 'block5,fc')")
    return tokens


def _check_range(field: str, low, high, integer=False, open_low=False, open_high=False) -> None:
    def check(config):
        value = config.finetune[field]
        kind = int if integer else (int, float)
        below = value <= low if open_low else value < low
        above = value >= high if open_high else value > high
        if isinstance(value, bool) or not isinstance(value, kind) or below or above:
            left, right = "(" if open_low else "[", ")" if open_high else "]"
            invalid(field, value, f"{'an integer' if integer else 'a number'} in {left}{low}, {high}{right}")

    return check


_RANGES = (
    _check_range("phase1_epochs", 0, 10**6, integer=True),
    _check_range("phase2_epochs", 0, 10**6, integer=True),
    _check_range("phase2_lr_factor", 0, 1, open_low=True),
    _check_range("label_smoothing", 0, 1, open_high=True),
    _check_range("head_dropout", 0, 1, open_high=True),
    _check_range("validation_fraction", 0, 1, open_low=True, open_high=True),
    _check_range("validation_seed", 0, 2**31, integer=True),
)


def check_finetune_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The checks of `finetune.validate_finetune_config` that need no TensorFlow.

    `validate_config` on the training sections, then every `finetune` field but `source` and
    `preprocessing` (checked against the weights registry once TensorFlow is loaded).

    Args:
        config: A config from `finetune_config` (possibly overridden).

    Returns:
        The same config.

    Raises:
        ValueError: Naming the first invalid field, its value and what is allowed.
    """
    config_lib.validate_config(config)
    if "finetune" not in config:
        raise ValueError(
            "config lacks the section 'finetune'; start from vgg_keras.training.finetune.finetune_config()."
        )
    f = config.finetune
    for field, allowed in (("head", HEADS), ("augmentation", AUGMENTATIONS)):
        if f[field] not in allowed:
            invalid(field, f[field], ", ".join(repr(a) for a in allowed))
    for check in _RANGES:
        check(config)
    if f.phase1_epochs + f.phase2_epochs < 1:
        invalid("phase1_epochs", f.phase1_epochs, "phase1_epochs + phase2_epochs >= 1")
    if f.phase1_epochs < 1 and f.head != "keep":
        invalid("phase1_epochs", f.phase1_epochs, ">= 1: the new classifier must train before the base is unfrozen")
    if f.phase2_epochs and not unfreeze_groups(f.unfreeze):
        invalid("unfreeze", f.unfreeze, "at least one block with phase2_epochs > 0 (or set phase2_epochs=0)")
    return config
