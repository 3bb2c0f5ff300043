"""The fine-tuning config (`vgg_keras.training.finetune`), importable without TensorFlow.

Config files (`recipes/configs/finetune*.py`) import this module only, so a recipe can read
and check its flags before TensorFlow loads.
"""

from __future__ import annotations

import ml_collections

from vgg_keras.training import config as config_lib

__all__ = ["AUGMENTATIONS", "BLOCKS", "HEADS", "finetune_config"]

HEADS = ("predictions", "pooled", "keep")
AUGMENTATIONS = ("paper", "light")
BLOCKS = ("block1", "block2", "block3", "block4", "block5", "fc")


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
    config.finetune = ml_collections.ConfigDict({
        "source": "imagenet",
        "head": "predictions",
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
    })
    config.after.evaluate = True
    config.after.export = True
    return config
