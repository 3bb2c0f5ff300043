"""Trains a VGG with the paper's protocol, then evaluates and exports it (see recipes/README.md).

    python recipes/train.py --config=recipes/configs/quickstart.py --workdir=runs/quickstart
    python recipes/train.py --config=recipes/configs/d_s256.py --workdir=runs/d_s256 \
        --config.data.data_dir=/data/tfds --strategy=mirrored
    python recipes/train.py --config=recipes/configs/quickstart.py --workdir=runs/q2 --cpu_devices=2  # 2 replicas

Rerunning the same command resumes from the last backup. Any config field can be
overridden: --config.training.batch_size=128 --config.optimizer.learning_rate=0.005 ...
"""

from absl import app, flags
from ml_collections import config_flags

from vgg_keras import training

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (recipes/configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory; rerun with the same one to resume.")
_STRATEGY = flags.DEFINE_enum("strategy", None, list(training.config.STRATEGIES),
                              "Shortcut for --config.training.strategy.")
_TPU = flags.DEFINE_string("tpu_address", None, "Shortcut for --config.training.tpu_address.")
_BACKUP = flags.DEFINE_integer("backup_every_steps", None, "Shortcut for --config.training.backup_every_steps.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", None, "Split the CPU into N logical devices: without GPUs, the mirrored strategy then runs "
    "N replicas (reproduce a multi-replica run on any machine).", lower_bound=1)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    if _CPU_DEVICES.value:
        training.strategy.split_cpu(_CPU_DEVICES.value)
    config = _CONFIG.value
    for field, flag in (("strategy", _STRATEGY), ("tpu_address", _TPU), ("backup_every_steps", _BACKUP)):
        if flag.value is not None:
            config.training[field] = flag.value
    result = training.run_experiment(config, _WORKDIR.value)
    print(result.summary())


if __name__ == "__main__":
    app.run(main)
