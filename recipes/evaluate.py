"""Evaluates VGG models with the paper's test protocol (section 3.2); see recipes/README.md.

    python recipes/evaluate.py --model=runs/quickstart/model.keras --dataset=builtin \
        --methods=dense,multicrop,dense+multicrop --scales=64,96,128 --crop_size=64 \
        --output_dir=runs/quickstart/eval
    python recipes/evaluate.py --model=vgg16 --weights=imagenet --preprocessing=caffe \
        --dataset=imagenet2012 --data_dir=/data/tfds --manual_dir=/data/imagenet \
        --methods=dense --scales=256,384,512                                # Table 4 protocol
    python recipes/evaluate.py --model=d.keras --model=e.keras ...         # ensemble (Table 6)

Writes results.md (paper-style table), results.json, confusion.md, crop_grid.png and
predictions.png to --output_dir. A bad flag, a missing model file or dataset ends in one
`error:` line (exit code 2) before TensorFlow loads; --debug shows the traceback.
"""

import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

import functools

import shared_flags
from absl import flags

from vgg_keras import cli, preflight

_MODEL = flags.DEFINE_multi_string(
    "model", None, "Model file (.keras/.h5) or name (vgg16, D, ...); repeat for an ensemble."
)
_DATASET = flags.DEFINE_string(
    "dataset", "builtin", "Source: builtin, vgg_shapes/tiny, folder:/path, tfrecord:/glob or a TFDS name."
)
_SPLIT = flags.DEFINE_string("split", "validation", "Split to evaluate.")
_METHODS = flags.DEFINE_list(
    "methods", ["dense", "multicrop", "dense+multicrop"], "Any of center, dense, multicrop, dense+multicrop."
)
_SCALES = flags.DEFINE_list("scales", ["256", "384", "512"], "Test scales Q (smallest image side).")
_CROP = flags.DEFINE_integer("crop_size", 224, "Crop size for centre and multi-crop evaluation.")
_GRID = flags.DEFINE_integer("grid", 5, "Multi-crop grid side (5 in the paper).")
_FLIP = flags.DEFINE_bool("flip", True, "Average with horizontal flips.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Images per batch.")
_MAX = flags.DEFINE_integer("max_examples", None, "Evaluate only the first N images.")
_PREPROCESSING = flags.DEFINE_string(
    "preprocessing", None, "Normalisation for models without a preprocessing layer: caffe, torch or mean_rgb."
)
_TRAIN_SCALE = flags.DEFINE_string("train_scale", None, "Training scale S for the table, e.g. 256 or 256,512.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where to write the reports.")
flags.mark_flags_as_required(["model"])


def check():
    for spec in _MODEL.value:
        preflight.check_model_spec("--model", spec)
    preflight.check_source(_DATASET.value, _SPLIT.value, shared_flags.DATA_DIR.value, shared_flags.MANUAL_DIR.value)
    cli.integers("scales", _SCALES.value)
    _train_scale()


def _train_scale():
    scales = cli.integers("train_scale", _TRAIN_SCALE.value.split(",")) if _TRAIN_SCALE.value else None
    return scales[0] if scales and len(scales) == 1 else scales


def _preprocess():
    from vgg_keras import preprocessing  # pylint: disable=import-outside-toplevel

    mode = _PREPROCESSING.value
    return functools.partial(preprocessing.preprocess_input, mode=mode) if mode else None


def main(argv):
    del argv
    # TensorFlow: after check().  pylint: disable=import-outside-toplevel
    from vgg_keras import data, evaluation
    from vgg_keras.evaluation import load_model

    source = data.get_source(
        _DATASET.value, _SPLIT.value, data_dir=shared_flags.DATA_DIR.value, manual_dir=shared_flags.MANUAL_DIR.value
    )
    build_kwargs = shared_flags.build_kwargs(classes=source.num_classes)
    models = [load_model(spec, **build_kwargs) for spec in _MODEL.value]
    report = evaluation.evaluate(
        models,
        source,
        methods=_METHODS.value,
        scales=cli.integers("scales", _SCALES.value),
        crop_size=_CROP.value,
        flip=_FLIP.value,
        grid=_GRID.value,
        batch_size=_BATCH.value,
        preprocess=_preprocess(),
        max_examples=_MAX.value,
        output_dir=_OUTPUT.value,
        train_scale=_train_scale(),
    )
    print(report.to_markdown())


if __name__ == "__main__":
    cli.run(main, check=check)
