"""Writes ImageNet-style TFRecord shards from a folder of class sub-folders.

    python recipes/make_tfrecords.py --folder=/data/images/train \
        --output_dir=/data/records --num_shards=64 --prefix=train

Read them back with ``vgg_keras.data.tfrecord_source("/data/records/train-*", num_classes=N)``
or ``--dataset=tfrecord:/data/records/{split}-*`` in the other recipes.
"""

import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

from absl import flags

from vgg_keras import cli, preflight

_FOLDER = flags.DEFINE_string("folder", None, "Folder with one sub-folder per class.", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where to write the shards.", required=True)
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 8, "Number of shard files.")
_PREFIX = flags.DEFINE_string("prefix", "train", "Shard file name prefix (the split).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the shuffle across shards.")
_LABEL_OFFSET = flags.DEFINE_integer(
    "label_offset", 0, "Added to the 0-based labels (1 mimics TF-slim ImageNet shards)."
)


def check():
    preflight.check_folder("--folder", _FOLDER.value)


def main(argv):
    del argv
    from vgg_keras.data import tfrecords  # pylint: disable=import-outside-toplevel  # TensorFlow: after check()

    paths = tfrecords.write_tfrecords(
        _FOLDER.value,
        _OUTPUT_DIR.value,
        num_shards=_NUM_SHARDS.value,
        prefix=_PREFIX.value,
        seed=_SEED.value,
        label_offset=_LABEL_OFFSET.value,
    )
    print(f"Wrote {len(paths)} shards to {_OUTPUT_DIR.value}")


if __name__ == "__main__":
    cli.run(main, check=check)
