"""Trains a VGG with the paper's protocol, then evaluates and exports it (see recipes/README.md).

    python recipes/train.py --config=recipes/configs/quickstart.py --workdir=runs/quickstart
    python recipes/train.py --config=recipes/configs/d_s256.py --workdir=runs/d_s256 \
        --config.data.data_dir=/data/tfds --config.data.manual_dir=/data/imagenet --strategy=mirrored
    python recipes/train.py --config=recipes/configs/quickstart.py --workdir=runs/q2 --cpu_devices=2  # 2 replicas

Rerunning the same command resumes from the last backup. Any config field can be
overridden: --config.training.batch_size=128 --config.optimizer.learning_rate=0.005 ...
A bad flag, override or dataset ends in one `error:` line (exit code 2) before TensorFlow
loads; --debug shows the traceback, --verbosity=0 the TensorFlow/absl INFO logs.
"""

import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

import run_flags
from absl import flags

from vgg_keras import cli, preflight
from vgg_keras.training import config as config_lib

_CONFIG, _WORKDIR = run_flags.define_run_flags("Experiment config file (recipes/configs/*.py).")
_TPU = flags.DEFINE_string("tpu_address", None, "Shortcut for --config.training.tpu_address.")
_BACKUP = flags.DEFINE_integer("backup_every_steps", None, "Shortcut for --config.training.backup_every_steps.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices",
    None,
    "Split the CPU into N logical devices: without GPUs, the mirrored strategy then runs "
    "N replicas (reproduce a multi-replica run on any machine).",
    lower_bound=1,
)
_SHORTCUTS = tuple(
    ("training", field, flag)
    for field, flag in (("strategy", run_flags.STRATEGY), ("tpu_address", _TPU), ("backup_every_steps", _BACKUP))
)


def _config():
    """The config with the shortcut flags applied and derived fields filled (validated)."""
    return config_lib.validate_config(run_flags.with_shortcuts(_CONFIG.value, _SHORTCUTS))


def check():
    d = _config().data
    for split in (d.train_split, d.eval_split):
        preflight.check_source(d.name, split, d.data_dir, d.manual_dir)


def main(argv):
    del argv
    from vgg_keras import training  # pylint: disable=import-outside-toplevel  # TensorFlow: after check()

    if _CPU_DEVICES.value:
        training.strategy.split_cpu(_CPU_DEVICES.value)  # before any TensorFlow op runs
    result = training.run_experiment(_config(), _WORKDIR.value)
    print(result.summary())


if __name__ == "__main__":
    cli.run(main, check=check)
