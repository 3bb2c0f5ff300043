"""Input pipelines: sources, the paper's augmentation, evaluation crops, built-in dataset.

Typical use::

    from vgg_keras import data
    source = data.get_source("builtin", "train")        # or "imagenette", "folder:/x", ...
    ds = data.train_dataset(source, batch_size=64, crop_size=224, scale=(256, 512), seed=0)
"""

from vgg_keras.data.augment import (
    PCA_EIGVAL,
    PCA_EIGVEC,
    crop_window,
    pca_color_shift,
    random_flip,
    sample_scale,
)
from vgg_keras.data.crops import center_crop, decode_image, multi_crop, resize_center_crop, resize_smallest_side
from vgg_keras.data.pipeline import (
    decode_and_random_crop,
    decode_and_random_crop_window,
    decode_resize,
    dense_eval_examples,
    eval_dataset,
    find_undecodable,
    multicrop_eval_examples,
    train_dataset,
)
from vgg_keras.data.sources import (
    Source,
    builtin_source,
    folder_source,
    get_source,
    multilabel_tfds_source,
    tfds_source,
    tfrecord_source,
)
from vgg_keras.data.tfrecords import write_tfrecords

__all__ = [
    "PCA_EIGVAL",
    "PCA_EIGVEC",
    "Source",
    "builtin_source",
    "center_crop",
    "crop_window",
    "decode_and_random_crop",
    "decode_and_random_crop_window",
    "decode_image",
    "decode_resize",
    "dense_eval_examples",
    "eval_dataset",
    "find_undecodable",
    "folder_source",
    "get_source",
    "multi_crop",
    "multicrop_eval_examples",
    "multilabel_tfds_source",
    "pca_color_shift",
    "random_flip",
    "resize_center_crop",
    "resize_smallest_side",
    "sample_scale",
    "tfds_source",
    "tfrecord_source",
    "train_dataset",
    "write_tfrecords",
]
