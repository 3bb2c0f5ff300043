"""Converts a VGG weights file to a Keras `.weights.h5` and a `.keras` model; see recipes/README.md.

    python recipes/convert_weights.py --source=vgg16_bn-6c64b313.pth --arch=vgg16_bn \
        --output=converted/vgg16_bn
    python recipes/convert_weights.py --source=model.safetensors --arch=vgg19 --head=conv \
        --output=converted/vgg19_timm_conv

Accepts every format `vgg_keras.build(weights=path)` reads (torchvision .pth, timm or
torchvision .safetensors, legacy Keras HDF5, Keras 3 files). The `.keras` model has the
weights' preprocessing built in (RGB in [0, 255]); the `.weights.h5` records it. Prints
the largest output difference against the source model when its framework is installed.
"""

import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

from absl import flags

from vgg_keras import cli, preflight

_SOURCE = flags.DEFINE_string("source", None, "The weights file to convert.")
_ARCH = flags.DEFINE_string("arch", None, "Model name or paper letter: vgg11 ... vgg19_bn, A ... E.")
_OUTPUT = flags.DEFINE_string("output", None, "Output path prefix: writes <output>.weights.h5 and <output>.keras.")
_HEAD = flags.DEFINE_enum("head", "dense", ["dense", "conv"], "Classifier form of the saved model.")
_ACTIVATION = flags.DEFINE_enum("classifier_activation", "softmax", ["softmax", "none"], "Top-layer activation.")
_PREPROCESSING = flags.DEFINE_enum(
    "preprocessing",
    None,
    ["caffe", "torch", "mean_rgb"],
    "The weights' normalisation (default: detected from the file).",
)
_COMPARE = flags.DEFINE_bool("compare", True, "Compare with the source model when its framework is installed.")
_WIDTH = flags.DEFINE_float("width_multiplier", None, "Conv width multiplier for non-standard files.")
_FC_UNITS = flags.DEFINE_integer("fc_units", None, "fc1/fc2 width for non-standard files.")
_CLASSES = flags.DEFINE_integer("classes", None, "Number of classes for non-standard files.")
_BASE_SIZE = flags.DEFINE_integer("base_size", None, "Classifier input size for non-standard files.")
flags.mark_flags_as_required(["source", "arch", "output"])


def check():
    preflight.check_file("--source", _SOURCE.value)


def main(argv):
    del argv
    from vgg_keras.tools import convert  # pylint: disable=import-outside-toplevel  # TensorFlow: after check()

    extra = {
        "width_multiplier": _WIDTH.value,
        "fc_units": _FC_UNITS.value,
        "classes": _CLASSES.value,
        "base_size": _BASE_SIZE.value,
    }
    result = convert.convert_weights(
        _SOURCE.value,
        _ARCH.value,
        _OUTPUT.value,
        head=_HEAD.value,
        classifier_activation=None if _ACTIVATION.value == "none" else _ACTIVATION.value,
        preprocessing=_PREPROCESSING.value,
        compare=_COMPARE.value,
        **{key: value for key, value in extra.items() if value is not None},
    )
    print(f"weights: {result.weights_path}")
    print(f"model:   {result.model_path} (takes RGB in [0, 255]; preprocessing {result.preprocessing!r} inside)")
    if result.reference is None:
        print("max output difference: not measured (source framework not installed or no reference for this format)")
    else:
        print(f"max output difference vs {result.reference}: {result.max_abs_diff:.3g}")


if __name__ == "__main__":
    cli.run(main, check=check)
