"""Baseline of the fine-tuning demonstration: the quick start's net from scratch on `vgg_shapes/novel`.

    python recipes/train.py --config=recipes/configs/finetune_shapes_scratch.py --workdir=runs/shapes_scratch

The same architecture, crops, batch, learning rate, epochs (phase 1 + phase 2 of
finetune_shapes.py) and evaluation as the fine-tuning, from Glorot init instead of the quick
start's weights.
"""

import importlib.util
import os


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config():
    config = _load("quickstart")
    finetuned = _load("finetune_shapes")
    config.experiment = "vgg_shapes_scratch"
    config.data.name = finetuned.data.name
    config.data.shuffle_buffer = finetuned.data.shuffle_buffer
    config.training.batch_size = finetuned.training.batch_size
    config.training.epochs = finetuned.finetune.phase1_epochs + finetuned.finetune.phase2_epochs
    config.training.backup_every_steps = finetuned.training.backup_every_steps
    config.optimizer.learning_rate = finetuned.optimizer.learning_rate
    config.optimizer.plateau_patience = finetuned.optimizer.plateau_patience
    return config
