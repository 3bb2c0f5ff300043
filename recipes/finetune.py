"""Fine-tunes a pretrained VGG on your classes: two phases, then evaluation and export (recipes/README.md).

    python recipes/finetune.py --config=recipes/configs/finetune.py --workdir=runs/flowers \
        --data=folder:/data/flowers --source=imagenet --unfreeze=block5,fc
    python recipes/finetune.py --config=recipes/configs/finetune_shapes.py --workdir=runs/shapes_ft \
        --source=runs/quickstart/best.keras

Rerunning the same command resumes (each phase from its last backup). Any config field can be
overridden: --config.finetune.phase2_epochs=10 --config.training.batch_size=16 ...
"""

from absl import app, flags
from ml_collections import config_flags

from vgg_keras import training
from vgg_keras.training import finetune

_CONFIG = config_flags.DEFINE_config_file("config", None, "Fine-tuning config file (recipes/configs/finetune*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory; rerun with the same one to resume.")
_SOURCE = flags.DEFINE_string("source", None, "Shortcut for --config.finetune.source: a weights tag "
                              "(imagenet, imagenet-keras, imagenet-torchvision), a weights file or a .keras model.")
_DATA = flags.DEFINE_string("data", None, "Shortcut for --config.data.name, e.g. folder:/path/to/train.")
_UNFREEZE = flags.DEFINE_string("unfreeze", None, "Shortcut for --config.finetune.unfreeze: 'all' or "
                                "comma-separated block1 ... block5, fc.")
_HEAD = flags.DEFINE_enum("head", None, list(finetune.HEADS), "Shortcut for --config.finetune.head.")
_STRATEGY = flags.DEFINE_enum("strategy", None, list(training.config.STRATEGIES),
                              "Shortcut for --config.training.strategy.")
_PRECISION = flags.DEFINE_enum("precision", None, list(training.config.PRECISIONS),
                               "Shortcut for --config.training.precision.")
flags.mark_flags_as_required(["config", "workdir"])

_SHORTCUTS = (("finetune", "source", _SOURCE), ("data", "name", _DATA), ("finetune", "unfreeze", _UNFREEZE),
              ("finetune", "head", _HEAD), ("training", "strategy", _STRATEGY), ("training", "precision", _PRECISION))


def main(argv):
    del argv
    config = _CONFIG.value
    for section, field, flag in _SHORTCUTS:
        if flag.value is not None:
            config[section][field] = flag.value
    print(finetune.finetune(config, _WORKDIR.value).summary())


if __name__ == "__main__":
    app.run(main)
