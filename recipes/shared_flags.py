"""Flags shared by evaluate.py and export.py: a model given by name, and the TFDS data directories.

Example:
    import shared_flags    # recipes/ is on sys.path when a recipe runs
    model = load_model(spec, **shared_flags.build_kwargs(classes=source.num_classes))
"""

from absl import flags

WEIGHTS = flags.DEFINE_string("weights", None, "Weights tag or file for models given by name.")
WIDTH = flags.DEFINE_float("width_multiplier", 1.0, "Conv width multiplier for models given by name.")
FC_UNITS = flags.DEFINE_integer("fc_units", 4096, "fc1/fc2 width for models given by name.")
BASE_SIZE = flags.DEFINE_integer("base_size", 224, "Training crop size (head) for models given by name.")
DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data directory (TFDS and built-in sources).")
MANUAL_DIR = flags.DEFINE_string(
    "manual_dir", None, "Where imagenet2012's ILSVRC2012_img_*.tar are (default: <data_dir>/downloads/manual)."
)


def build_kwargs(**extra) -> dict:
    """The `vgg_keras.build` arguments the flags give a model named on the command line.

    Args:
        **extra: More `vgg_keras.build` arguments (classes, include_preprocessing, ...).

    Returns:
        Keyword arguments for `vgg_keras.evaluation.load_model` / `vgg_keras.build`.
    """
    return dict(
        weights=WEIGHTS.value, width_multiplier=WIDTH.value, fc_units=FC_UNITS.value, base_size=BASE_SIZE.value, **extra
    )
