"""Flags shared by train.py and finetune.py: the config file, the run directory, shortcut flags.

import run_flags    # recipes/ is on sys.path when a recipe runs
_CONFIG, _WORKDIR = run_flags.define_run_flags("Experiment config file (recipes/configs/*.py).")
config = run_flags.with_shortcuts(_CONFIG.value, (("training", "strategy", run_flags.STRATEGY),))
"""

from absl import flags
from ml_collections import config_flags

from vgg_keras.training import config as config_lib

STRATEGY = flags.DEFINE_enum("strategy", None, list(config_lib.STRATEGIES), "Shortcut for --config.training.strategy.")


def define_run_flags(config_help: str):
    """Defines the required --config (a config file, overridable field by field) and --workdir.

    Args:
        config_help: The help text of --config (which config files it takes).

    Returns:
        `(config_flag, workdir_flag)`.
    """
    config = config_flags.DEFINE_config_file("config", None, config_help)
    workdir = flags.DEFINE_string("workdir", None, "Run directory; rerun with the same one to resume.")
    flags.mark_flags_as_required(["config", "workdir"])
    return config, workdir


def with_shortcuts(config, shortcuts):
    """`config` with the value of every shortcut flag that was given written into its field.

    Args:
        config: The config from --config.
        shortcuts: `(section, field, flag)` triples, e.g. `("training", "strategy", STRATEGY)`.

    Returns:
        The same config.
    """
    for section, field, flag in shortcuts:
        if flag.value is not None:
            config[section][field] = flag.value
    return config
