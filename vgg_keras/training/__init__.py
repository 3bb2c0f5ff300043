"""Training: the paper's protocol (section 3.1) with tf.distribute, resumable.

    from vgg_keras import training
    config = training.base_config()          # or a file of recipes/configs/
    result = training.train(config, "runs/my_run")
    result = training.finetune.finetune(config, "runs/my_finetune")   # a pretrained VGG on your classes
"""

from vgg_keras.training.callbacks import BestCheckpoint, CurvePlot, NaNGuard, ResumableBackup, plot_history
from vgg_keras.training.config import base_config, paper_config, validate_config
from vgg_keras.training import finetune
from vgg_keras.training.data import (
    TrainingData,
    arrays_training_data,
    estimate_mean_rgb,
    load_sources,
    synthetic_training_data,
    training_data,
)
from vgg_keras.training.experiment import ExperimentResult, run_experiment
from vgg_keras.training.optimization import PlateauSchedule, apply_weight_decay, make_optimizer, scaled_learning_rate
from vgg_keras.training.strategy import is_chief, make_strategy, task_name
from vgg_keras.training.trainer import RunPaths, TrainResult, build_model, compile_model, train, train_with_data, warm_start

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
