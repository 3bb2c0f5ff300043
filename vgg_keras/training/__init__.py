"""Training: the paper's protocol (section 3.1) with tf.distribute, resumable.

Example:
    from vgg_keras import training
    config = training.base_config()          # or a file of recipes/configs/
    result = training.train(config, "runs/my_run")
    result = training.finetune.finetune(config, "runs/my_finetune")   # a pretrained VGG on your classes
"""

import importlib

# Loaded on first use, so that a recipe's config (which imports `training.config`) can be
# read and checked before TensorFlow is imported: module -> its public names.
_MODULE_NAMES = {
    "callbacks": ("BestCheckpoint", "CurvePlot", "NaNGuard", "ResumableBackup", "plot_history"),
    "config": ("base_config", "paper_config", "validate_config"),
    "data": (
        "TrainingData",
        "arrays_training_data",
        "estimate_mean_rgb",
        "load_sources",
        "synthetic_training_data",
        "training_data",
    ),
    "experiment": ("ExperimentResult", "run_experiment"),
    "finetune": (),
    "optimization": ("PlateauSchedule", "apply_weight_decay", "make_optimizer", "scaled_learning_rate"),
    "strategy": ("is_chief", "make_strategy", "task_name"),
    "trainer": ("RunPaths", "TrainResult", "build_model", "compile_model", "train", "train_with_data", "warm_start"),
}
_NAMES = {name: module for module, names in _MODULE_NAMES.items() for name in names}


def __getattr__(name):
    if name in _MODULE_NAMES:
        return importlib.import_module(f"vgg_keras.training.{name}")
    if name in _NAMES:
        value = getattr(importlib.import_module(f"vgg_keras.training.{_NAMES[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'vgg_keras.training' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MODULE_NAMES) | set(_NAMES))


__all__ = [
    "BestCheckpoint",
    "CurvePlot",
    "ExperimentResult",
    "NaNGuard",
    "PlateauSchedule",
    "ResumableBackup",
    "RunPaths",
    "TrainResult",
    "TrainingData",
    "apply_weight_decay",
    "arrays_training_data",
    "base_config",
    "build_model",
    "compile_model",
    "estimate_mean_rgb",
    "finetune",
    "is_chief",
    "load_sources",
    "make_optimizer",
    "make_strategy",
    "paper_config",
    "plot_history",
    "run_experiment",
    "scaled_learning_rate",
    "train",
    "train_with_data",
    "synthetic_training_data",
    "task_name",
    "training_data",
    "validate_config",
    "warm_start",
]
