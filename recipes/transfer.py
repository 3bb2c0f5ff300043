"""Transfer features (Appendix B): descriptors of a dataset and a linear classifier on them.

    python recipes/transfer.py --model=runs/quickstart/model.keras --dataset=builtin \
        --scales=64,80,96 --output_dir=runs/transfer
    python recipes/transfer.py --model=vgg16 --weights=imagenet --preprocessing=caffe \
        --dataset=caltech101 --train_split=train --test_split=test --scales=256,384,512 --aggregation=stack
    python recipes/transfer.py --model=vgg16 --weights=imagenet --preprocessing=caffe --dataset=voc/2007 \
        --multilabel_key=labels --train_split=train+validation --test_split=test --scales=256,384,512

Prints and writes `<output_dir>/transfer.json`: the test accuracy (class-index labels) or
mean average precision (multi-hot labels) of the linear classifier.
"""

import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

import functools
import json

from absl import flags

from vgg_keras import cli, preflight

# vgg_keras.features.AGGREGATIONS / LOSSES (a test keeps them equal), here to check flags before TensorFlow loads.
AGGREGATIONS = ("average", "stack")
LOSSES = ("hinge", "softmax")

_MODEL = flags.DEFINE_string("model", None, "Model file (.keras/.h5) or name (vgg16, D, ...).")
_WEIGHTS = flags.DEFINE_string("weights", None, "Weights tag or file for a model given by name.")
_WIDTH = flags.DEFINE_float("width_multiplier", 1.0, "Conv width multiplier for a model given by name.")
_FC_UNITS = flags.DEFINE_integer("fc_units", 4096, "fc1/fc2 width for a model given by name.")
_BASE_SIZE = flags.DEFINE_integer("base_size", 224, "Training crop size (head) for a model given by name.")
_DATASET = flags.DEFINE_string("dataset", "builtin", "Source: builtin, folder:/path, tfrecord:/glob or a TFDS name.")
_TRAIN_SPLIT = flags.DEFINE_string("train_split", "train", "Split the linear classifier is trained on.")
_TEST_SPLIT = flags.DEFINE_string("test_split", "validation", "Split it is tested on.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data directory.")
_MULTILABEL = flags.DEFINE_string(
    "multilabel_key", None, "Multi-label TFDS dataset (VOC): its label-list feature, e.g. 'labels'; reports mAP."
)
_SCALES = flags.DEFINE_list("scales", ["256"], "Test scales Q of the descriptor.")
_AGGREGATION = flags.DEFINE_enum("aggregation", "average", list(AGGREGATIONS), "How scales combine.")
_PREPROCESSING = flags.DEFINE_string(
    "preprocessing", None, "Normalisation for models without a preprocessing layer: caffe, torch or mean_rgb."
)
_BATCH = flags.DEFINE_integer("batch_size", 16, "Images per batch.")
_MAX = flags.DEFINE_integer("max_examples", None, "Use only the first N images of each split.")
_LOSS = flags.DEFINE_enum("loss", "hinge", list(LOSSES), "Linear SVM (hinge) or soft-max.")
_L2 = flags.DEFINE_float("l2", 1e-4, "L2 penalty of the linear classifier.")
_EPOCHS = flags.DEFINE_integer("epochs", 100, "Epochs of the linear classifier.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where to write transfer.json.")
flags.mark_flags_as_required(["model"])


def check():
    preflight.check_model_spec("--model", _MODEL.value)
    if not _MULTILABEL.value:
        for split in (_TRAIN_SPLIT.value, _TEST_SPLIT.value):
            preflight.check_source(_DATASET.value, split, _DATA_DIR.value)
    cli.integers("scales", _SCALES.value)


def _preprocess():
    from vgg_keras import preprocessing  # pylint: disable=import-outside-toplevel

    mode = _PREPROCESSING.value
    return functools.partial(preprocessing.preprocess_input, mode=mode) if mode else None


def _descriptors(runner, split):
    from vgg_keras import data, features  # pylint: disable=import-outside-toplevel

    if _MULTILABEL.value:
        source = data.multilabel_tfds_source(
            _DATASET.value, split, label_key=_MULTILABEL.value, data_dir=_DATA_DIR.value or None
        )
    else:
        source = data.get_source(_DATASET.value, split, data_dir=_DATA_DIR.value)
    return source, features.extract_descriptors(
        runner,
        source,
        scales=cli.integers("scales", _SCALES.value),
        aggregation=_AGGREGATION.value,
        batch_size=_BATCH.value,
        max_examples=_MAX.value,
    )


def main(argv):
    del argv
    # TensorFlow: after check().  pylint: disable=import-outside-toplevel
    from vgg_keras import features
    from vgg_keras.evaluation import forward

    model = forward.load_model(
        _MODEL.value,
        weights=_WEIGHTS.value,
        width_multiplier=_WIDTH.value,
        fc_units=_FC_UNITS.value,
        base_size=_BASE_SIZE.value,
    )
    runner = features.descriptor_runner(model, _preprocess())
    source, train = _descriptors(runner, _TRAIN_SPLIT.value)
    _, test = _descriptors(runner, _TEST_SPLIT.value)
    classifier = features.train_linear_classifier(
        train.descriptors,
        train.labels,
        num_classes=source.num_classes,
        loss=_LOSS.value,
        l2=_L2.value,
        epochs=_EPOCHS.value,
    )
    multi_label = test.labels.ndim == 2
    metric = "mAP" if multi_label else "accuracy"
    value = (features.mean_average_precision if multi_label else features.classification_accuracy)(
        classifier, test.descriptors, test.labels
    )
    result = {
        "model": _MODEL.value,
        "dataset": _DATASET.value,
        "scales": list(train.scales),
        "aggregation": train.aggregation,
        "descriptor_size": int(train.descriptors.shape[1]),
        "train_images": len(train.labels),
        "test_images": len(test.labels),
        "loss": _LOSS.value,
        metric: value,
    }
    print(json.dumps(result, indent=2))
    if _OUTPUT.value:
        os.makedirs(_OUTPUT.value, exist_ok=True)
        with open(os.path.join(_OUTPUT.value, "transfer.json"), "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    cli.run(main, check=check)
