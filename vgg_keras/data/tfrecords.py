"""Writes ImageNet-style TFRecord shards from a folder of class sub-folders.

Records carry the original encoded bytes (no re-encoding) under the feature names the
TF-slim / Model Garden ImageNet shards use, so :func:`vgg_keras.data.sources.tfrecord_source`
reads both::

    image/encoded      bytes   the file's bytes
    image/class/label  int64   0-based label (+ ``label_offset``)
    image/class/text   bytes   class name
    image/filename     bytes   path relative to the folder
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from vgg_keras.data.sources import IMAGE_EXTENSIONS, list_image_folder


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def make_example(encoded: bytes, label: int, class_name: str, filename: str) -> bytes:
    """Serialises one image record (the feature layout in this module's docstring)."""
    features = tf.train.Features(
        feature={
            "image/encoded": _bytes_feature(encoded),
            "image/class/label": _int64_feature(label),
            "image/class/text": _bytes_feature(class_name.encode()),
            "image/filename": _bytes_feature(filename.encode()),
        }
    )
    return tf.train.Example(features=features).SerializeToString()


def write_tfrecords(
    folder: str,
    output_dir: str,
    *,
    num_shards: int = 8,
    prefix: str = "train",
    extensions=IMAGE_EXTENSIONS,
    shuffle: bool = True,
    seed: int = 0,
    label_offset: int = 0,
) -> list[str]:
    """Writes ``folder/<class>/<image>`` into ``num_shards`` TFRecord files.

    Files are shuffled (deterministically with ``seed``) before sharding so every shard
    mixes classes. ``labels.txt`` (one class name per line, in label order) is written to
    ``output_dir`` too; :func:`~vgg_keras.data.sources.tfrecord_source` picks it up.

    Args:
      folder: folder of class sub-folders (classes are the sorted sub-folder names).
      output_dir: where to write; created if missing.
      num_shards: number of shard files, ``<prefix>-00000-of-00008`` ...
      prefix: file name prefix, usually the split name.
      extensions: image file extensions to include, case-insensitive.
      shuffle: shuffle the examples across shards.
      seed: seed of that shuffle.
      label_offset: added to the 0-based label (1 mimics the TF-slim ImageNet shards).

    Returns:
      The shard paths, sorted.

    Raises:
      ValueError: for a bad ``num_shards``/``prefix`` or a folder without images.
    """
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"num_shards={num_shards!r}; allowed: an integer >= 1.")
    if not prefix or "/" in prefix:
        raise ValueError(f"prefix={prefix!r}; allowed: a non-empty file name prefix.")
    paths, labels, class_names = list_image_folder(folder, extensions)
    order = np.arange(len(paths))
    if shuffle:
        np.random.default_rng(seed).shuffle(order)
    tf.io.gfile.makedirs(output_dir)
    shard_paths = [os.path.join(output_dir, f"{prefix}-{i:05d}-of-{num_shards:05d}") for i in range(num_shards)]
    for shard_index, shard_path in enumerate(shard_paths):
        with tf.io.TFRecordWriter(shard_path) as writer:
            for i in order[shard_index::num_shards]:
                with tf.io.gfile.GFile(paths[i], "rb") as f:
                    encoded = f.read()
                writer.write(
                    make_example(
                        encoded, labels[i] + label_offset, class_names[labels[i]], os.path.relpath(paths[i], folder)
                    )
                )
    with tf.io.gfile.GFile(os.path.join(output_dir, "labels.txt"), "w") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    return shard_paths
