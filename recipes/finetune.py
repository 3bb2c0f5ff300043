"""Fine-tunes a pretrained VGG on your classes: two phases, then evaluation and export (recipes/README.md).

    python recipes/finetune.py --config=recipes/configs/finetune.py --workdir=runs/flowers \
        --data=folder:/data/flowers --source=imagenet --unfreeze=block5,fc
    python recipes/finetune.py --config=recipes/configs/finetune_shapes.py --workdir=runs/shapes_ft \
        --source=runs/quickstart/best.keras

Rerunning the same command resumes (each phase from its last backup). Any config field can be
overridden: --config.finetune.phase2_epochs=10 --config.training.batch_size=16 ...
A bad flag, override or dataset ends in one `error:` line (exit code 2) before TensorFlow
loads; --debug shows the traceback, --verbosity=0 the TensorFlow/absl INFO logs.
"""

import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

import run_flags
from absl import flags

from vgg_keras import cli, preflight
from vgg_keras.training import config as config_lib
from vgg_keras.training import finetune_config as finetune_config_lib

_CONFIG, _WORKDIR = run_flags.define_run_flags("Fine-tuning config file (recipes/configs/finetune*.py).")
_SOURCE = flags.DEFINE_string(
    "source",
    None,
    "Shortcut for --config.finetune.source: a weights tag "
    "(imagenet, imagenet-keras, imagenet-torchvision), a weights file or a .keras model.",
)
_DATA = flags.DEFINE_string("data", None, "Shortcut for --config.data.name, e.g. folder:/path/to/train.")
_UNFREEZE = flags.DEFINE_string(
    "unfreeze", None, "Shortcut for --config.finetune.unfreeze: 'all' or comma-separated block1 ... block5, fc."
)
_HEAD = flags.DEFINE_enum("head", None, list(finetune_config_lib.HEADS), "Shortcut for --config.finetune.head.")
_PRECISION = flags.DEFINE_enum(
    "precision", None, list(config_lib.PRECISIONS), "Shortcut for --config.training.precision."
)
_SHORTCUTS = (
    ("finetune", "source", _SOURCE),
    ("data", "name", _DATA),
    ("finetune", "unfreeze", _UNFREEZE),
    ("finetune", "head", _HEAD),
    ("training", "strategy", run_flags.STRATEGY),
    ("training", "precision", _PRECISION),
)


def _config():
    """The config with the shortcut flags applied, checked as far as it can be without TensorFlow."""
    return finetune_config_lib.check_finetune_config(run_flags.with_shortcuts(_CONFIG.value, _SHORTCUTS))


def check():
    config = _config()
    source = config.finetune.source
    if source.endswith((".keras", ".h5", ".pth", ".safetensors")):
        preflight.check_file("config.finetune.source", source)
    d = config.data
    if d.name.startswith("folder:"):
        preflight.check_folder("config.data.name", d.name[len("folder:") :])


def main(argv):
    del argv
    from vgg_keras.training import finetune  # TensorFlow: after check().  pylint: disable=import-outside-toplevel

    print(finetune.finetune(_config(), _WORKDIR.value).summary())


if __name__ == "__main__":
    cli.run(main, check=check)
