"""Data sources: every source yields encoded images and labels in one format.

Elements of ``Source.dataset`` are dicts::

    {"image": tf.string scalar (encoded JPEG/PNG/GIF/BMP bytes),
     "label": tf.int64 scalar (multi-hot [num_classes] from multilabel_tfds_source),
     "bbox":  tf.float32 [4] (ymin, xmin, ymax, xmax), normalised -- only when known}

Images stay encoded so the training pipeline can decode a JPEG only inside its crop
window. Under ``tf.distribute``, pass the ``tf.distribute.InputContext`` to the source: it
then reads only its worker's share (whole files when there are enough, else every
``num_input_pipelines``-th example), and the shards of all workers are disjoint and cover
the data.
"""

from __future__ import annotations

import dataclasses
import os
import re

import tensorflow as tf
import tensorflow_datasets as tfds

from vgg_keras import preflight

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
BUILTIN_NAMES = ("builtin", "vgg_shapes")


@dataclasses.dataclass(frozen=True)
class Source:
    """A dataset of encoded examples plus what the pipelines need to know about it.

    Attributes:
      dataset: elements ``{"image": tf.string, "label": tf.int64[, "bbox": tf.float32[4]]}``.
      num_classes: number of classes; labels are in ``[0, num_classes)``.
      class_names: one name per class, in label order.
      num_examples: examples in the split before sharding, or ``None`` when unknown.
      shard: ``(num_shards, index)`` when ``dataset`` already holds one worker's shard.
    """

    dataset: tf.data.Dataset
    num_classes: int
    class_names: tuple[str, ...]
    num_examples: int | None
    shard: tuple[int, int] | None = None


def _shard_of(input_context) -> tuple[int, int] | None:
    if input_context is None or input_context.num_input_pipelines == 1:
        return None
    return input_context.num_input_pipelines, input_context.input_pipeline_id


def shard_dataset(dataset: tf.data.Dataset, input_context) -> tf.data.Dataset:
    """Keeps every ``num_input_pipelines``-th element, starting at this pipeline's id.

    Args:
      dataset: any ``tf.data.Dataset``.
      input_context: ``tf.distribute.InputContext`` or ``None``.

    Returns:
      This pipeline's shard, or ``dataset`` itself without a context or with one pipeline.
    """
    shard = _shard_of(input_context)
    return dataset if shard is None else dataset.shard(*shard)


def _check_classes(num_classes, class_names) -> tuple[str, ...]:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r}; allowed: an integer >= 1.")
    if class_names is None:
        return tuple(f"class_{i}" for i in range(num_classes))
    class_names = tuple(str(n) for n in class_names)
    if len(class_names) != num_classes:
        raise ValueError(f"`class_names` has {len(class_names)} names but `num_classes` is {num_classes}.")
    return class_names


# --------------------------------------------------------------------------- TFDS


def _tfds_num_files(builder, split: str) -> int:
    try:
        return len(builder.info.splits[split].file_instructions)
    except Exception:  # pylint: disable=broad-except  # unknown layout: shard by example
        return 0


def _split_size(info, split: str) -> int | None:
    try:
        return info.splits[split].num_examples
    except Exception:  # pylint: disable=broad-except  # e.g. split not prepared or not known
        return None


def _builder(name: str, data_dir: str | None):
    """`tfds.builder`, with an unknown name in one line instead of TFDS' list of every dataset."""
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        guess = re.search(r"Did you mean: \S+ -> (\S+) \?", str(error))
        hint = f"did you mean {guess[1]!r}?" if guess else "see https://www.tensorflow.org/datasets/catalog."
        raise ValueError(f"TFDS has no dataset {name!r}; {hint}") from None


def tfds_source(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    download: bool = True,
    input_context=None,
    shuffle_files: bool = False,
    seed: int | None = None,
) -> Source:
    """Any TFDS image-classification dataset, images left encoded.

    Args:
      name: TFDS name, optionally with config/version, e.g. ``"imagenette/320px-v2"``,
        ``"imagenet2012"``, ``"cifar10"``.
      split: TFDS split spec, e.g. ``"train"``, ``"validation"``, ``"train[:10%]"``.
      data_dir: TFDS data directory; ``None`` uses TFDS' default
        (``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``).
      manual_dir: where manually downloaded archives are (``imagenet2012`` needs its tar
        files there, see :func:`vgg_keras.preflight.check_imagenet`); ``None`` uses
        ``<data_dir>/downloads/manual``.
      download: download and prepare the dataset if it is not there yet.
      input_context: ``tf.distribute.InputContext`` to read only this worker's shard.
      shuffle_files: shuffle the order of the files (training).
      seed: seed for the file shuffle.

    Returns:
      A :class:`Source`; ``bbox`` is included when the dataset has a top-level
      ``"bbox"`` feature.

    Raises:
      ValueError: if the dataset has no image/label features.
      FileNotFoundError: for ``imagenet2012``, naming a missing archive and ``manual_dir``,
        or a dataset prepared without ``split`` and the folder to delete (checked before
        anything is written).
    """
    if download and name.split(":", 1)[0] == "imagenet2012":
        preflight.check_imagenet(split, data_dir, manual_dir)
    builder = _builder(name, data_dir)
    if download:
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        builder.download_and_prepare(download_config=config)
    info = builder.info
    image_key, label_key = info.supervised_keys or ("image", "label")
    features = info.features
    if (
        image_key not in features
        or label_key not in features
        or not isinstance(features[image_key], tfds.features.Image)
    ):
        raise ValueError(
            f"TFDS dataset {name!r} has no image/label features to classify (features: {list(features.keys())})."
        )
    shard = _shard_of(input_context)
    file_sharded = shard is not None and _tfds_num_files(builder, split) >= shard[0]
    read_config = tfds.ReadConfig(shuffle_seed=seed, input_context=input_context if file_sharded else None)
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=shuffle_files,
        read_config=read_config,
        decoders={image_key: tfds.decode.SkipDecoding()},
    )
    if shard is not None and not file_sharded:
        dataset = dataset.shard(*shard)
    has_bbox = "bbox" in features.keys() and isinstance(features["bbox"], tfds.features.BBoxFeature)

    def to_example(example):
        out = {"image": example[image_key], "label": tf.cast(example[label_key], tf.int64)}
        if has_bbox:
            out["bbox"] = tf.cast(example["bbox"], tf.float32)
        return out

    label_feature = features[label_key]
    class_names = tuple(label_feature.names)
    return Source(
        dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE),
        num_classes=label_feature.num_classes,
        class_names=class_names,
        num_examples=_split_size(info, split),
        shard=shard,
    )


def multilabel_tfds_source(
    name: str = "voc/2007",
    split: str = "train",
    *,
    label_key: str = "labels",
    data_dir: str | None = None,
    download: bool = True,
) -> Source:
    """A multi-label TFDS dataset (e.g. PASCAL VOC) with multi-hot labels, images left encoded.

    Args:
      name: TFDS name, e.g. ``"voc/2007"`` (the paper trains on ``"train+validation"`` and
        tests on ``"test"``).
      split: TFDS split spec.
      label_key: a ``Sequence(ClassLabel)`` feature: VOC's ``"labels"`` or
        ``"labels_no_difficult"``.
      data_dir: TFDS data directory; ``None`` uses TFDS' default.
      download: download and prepare the dataset if it is not there yet.

    Returns:
      A :class:`Source` whose ``label`` is an int64 multi-hot vector ``[num_classes]``.

    Raises:
      ValueError: if ``label_key`` is not a sequence of class labels of the dataset.
    """
    builder = _builder(name, data_dir)
    features = builder.info.features
    labels = features[label_key] if label_key in features else None
    if not (isinstance(labels, tfds.features.Sequence) and isinstance(labels.feature, tfds.features.ClassLabel)):
        candidates = [key for key, value in features.items() if isinstance(value, tfds.features.Sequence)]
        raise ValueError(
            f"label_key={label_key!r} is not a sequence of class labels of {name!r}; allowed: {candidates}."
        )
    if download:
        builder.download_and_prepare()
    num_classes = labels.feature.num_classes

    def to_example(example):
        hot = tf.reduce_sum(tf.one_hot(example[label_key], num_classes, dtype=tf.int64), axis=0)
        return {"image": example["image"], "label": tf.minimum(hot, 1)}

    dataset = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    return Source(
        dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE),
        num_classes,
        tuple(labels.feature.names),
        _split_size(builder.info, split),
    )


def builtin_source(
    split: str,
    *,
    data_dir: str | None = None,
    input_context=None,
    config: str = "default",
    shuffle_files: bool = False,
    seed: int | None = None,
) -> Source:
    """The built-in ``vgg_shapes`` dataset, generated on first use (seconds, no download).

    Args:
      split: ``"train"`` or ``"validation"`` (TFDS slicing such as ``"train[:50%]"`` works).
      data_dir: where to generate/read it; ``None`` uses TFDS' default
        (``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``).
      input_context: ``tf.distribute.InputContext`` to read only this worker's shard.
      config: builder config, ``"default"`` (3000/500 images), ``"tiny"`` (48/24) or
        ``"novel"`` (6 other classes, 60/300: the fine-tuning demonstration).
      shuffle_files: shuffle the order of the files.
      seed: seed for the file shuffle.

    Returns:
      A :class:`Source` with bounding boxes (12 classes; 6 for ``"novel"``).
    """
    from vgg_keras.data import shapes  # pylint: disable=import-outside-toplevel

    names = [c.name for c in shapes.VggShapes.BUILDER_CONFIGS]
    if config not in names:
        raise ValueError(f"config={config!r}; allowed: {', '.join(repr(n) for n in names)}.")
    return tfds_source(
        f"vgg_shapes/{config}",
        split,
        data_dir=data_dir,
        input_context=input_context,
        shuffle_files=shuffle_files,
        seed=seed,
    )


# ------------------------------------------------------------------------- folders


def list_image_folder(root: str, extensions=IMAGE_EXTENSIONS) -> tuple[list[str], list[int], tuple[str, ...]]:
    """Lists ``root/<class>/<image>`` files in a stable (sorted) order.

    Args:
      root: folder with one sub-folder per class (local path or any ``tf.io.gfile`` URL).
      extensions: file extensions to keep, case-insensitive.

    Returns:
      ``(paths, labels, class_names)``; classes are the sorted sub-folder names, label i
      is ``class_names[i]``; paths are sorted within each class.

    Raises:
      ValueError: if ``root`` is not a directory or holds no class folders with images.
    """
    if not tf.io.gfile.isdir(root):
        raise ValueError(f"root={root!r}; allowed: a directory of class sub-folders.")
    extensions = tuple(e.lower() for e in extensions)
    class_names = sorted(d.rstrip("/") for d in tf.io.gfile.listdir(root) if tf.io.gfile.isdir(os.path.join(root, d)))
    paths, labels = [], []
    for label, class_name in enumerate(class_names):
        folder = os.path.join(root, class_name)
        files = sorted(f for f in tf.io.gfile.listdir(folder) if f.lower().endswith(extensions))
        paths.extend(os.path.join(folder, f) for f in files)
        labels.extend([label] * len(files))
    if not paths:
        raise ValueError(f"`root` {root!r} has no class sub-folders with files ending in {extensions}.")
    return paths, labels, tuple(class_names)


def folder_source(root: str, *, extensions=IMAGE_EXTENSIONS, input_context=None) -> Source:
    """A folder of class sub-folders (``root/<class>/<image>``), the Keras/torchvision layout.

    Classes are the sorted sub-folder names (label 0 is the first), so the class order is
    stable across machines. Files are read lazily inside ``tf.data``.

    Args:
      root: the folder (local path or any ``tf.io.gfile`` URL).
      extensions: file extensions to include, case-insensitive.
      input_context: ``tf.distribute.InputContext`` to read only this worker's shard.

    Returns:
      A :class:`Source` (no bounding boxes).

    Raises:
      ValueError: if ``root`` is not a directory or holds no images.
    """
    paths, labels, class_names = list_image_folder(root, extensions)
    return files_source(paths, labels, class_names, input_context=input_context)


def files_source(paths, labels, class_names, *, input_context=None) -> Source:
    """Image files with their labels (e.g. a validation split carved out of a folder).

    Args:
      paths: image files (local paths or any ``tf.io.gfile`` URL), read lazily.
      labels: one class index per file.
      class_names: one name per class, in label order.
      input_context: ``tf.distribute.InputContext`` to read only this worker's shard.

    Returns:
      A :class:`Source` (no bounding boxes).
    """
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(paths), tf.string), tf.constant(list(labels), tf.int64))
    )
    dataset = shard_dataset(dataset, input_context)
    dataset = dataset.map(
        lambda path, label: {"image": tf.io.read_file(path), "label": label}, num_parallel_calls=tf.data.AUTOTUNE
    )
    return Source(
        dataset,
        num_classes=len(class_names),
        class_names=tuple(class_names),
        num_examples=len(paths),
        shard=_shard_of(input_context),
    )


# ----------------------------------------------------------------------- TFRecords

_TFRECORD_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
}


def tfrecord_source(
    pattern: str,
    *,
    num_classes: int,
    class_names=None,
    input_context=None,
    label_offset: int = 0,
    num_examples: int | None = None,
) -> Source:
    """ImageNet-style TFRecord shards (``image/encoded``, ``image/class/label``).

    Args:
      pattern: glob of the shard files, e.g. ``"/data/train-*"``.
      num_classes: number of classes.
      class_names: names in label order; ``None`` reads ``labels.txt`` next to the shards
        when present (as :func:`vgg_keras.data.tfrecords.write_tfrecords` writes it), else
        uses ``class_0 ...``.
      input_context: ``tf.distribute.InputContext``; shards whole files when there are at
        least as many files as input pipelines, else every n-th record.
      label_offset: subtracted from stored labels (1 for the TF-slim ImageNet shards,
        whose labels start at 1).
      num_examples: number of records if known (not counted, to avoid a full pass).

    Returns:
      A :class:`Source`.

    Raises:
      ValueError: if no file matches ``pattern`` or the class arguments disagree.
    """
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"`pattern` {pattern!r} matches no files.")
    if class_names is None:
        labels_file = os.path.join(os.path.dirname(files[0]), "labels.txt")
        if tf.io.gfile.exists(labels_file):
            with tf.io.gfile.GFile(labels_file) as f:
                names = [line.strip() for line in f if line.strip()]
            class_names = names if len(names) == num_classes else None
    class_names = _check_classes(num_classes, class_names)
    shard = _shard_of(input_context)
    file_sharded = shard is not None and len(files) >= shard[0]
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if file_sharded:
        dataset = dataset.shard(*shard)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 16),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shard is not None and not file_sharded:
        dataset = dataset.shard(*shard)

    def parse(record):
        parsed = tf.io.parse_single_example(record, _TFRECORD_FEATURES)
        return {"image": parsed["image/encoded"], "label": parsed["image/class/label"] - label_offset}

    return Source(
        dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE),
        num_classes=num_classes,
        class_names=class_names,
        num_examples=num_examples,
        shard=shard,
    )


# -------------------------------------------------------------------------- by name


def get_source(
    name: str, split: str, *, data_dir: str | None = None, manual_dir: str | None = None, **kwargs
) -> Source:
    """Resolves a source by name, the form recipes take on the command line.

    Args:
      name: ``"builtin"`` or ``"vgg_shapes"`` (the built-in dataset), ``"folder:/path"``
        (the split is appended as a sub-folder when ``/path/<split>`` exists),
        ``"tfrecord:/glob"`` (needs ``num_classes=``; ``{split}`` in the glob is replaced
        by the split), or any TFDS name.
      split: split name passed to the source.
      data_dir: TFDS data directory of TFDS names and the built-in dataset (``None`` or
        ``""``: TFDS' default). Folder and TFRecord names carry their own path, so the
        recipes' ``--data_dir`` does not apply to them.
      manual_dir: TFDS manual-download directory (e.g. ``imagenet2012``'s tars); TFDS names only.
      **kwargs: forwarded to the source function.

    Returns:
      A :class:`Source`.

    Raises:
      ValueError: if ``name`` is empty or a prefixed name has no path.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r}; allowed: a non-empty string.")
    if name in BUILTIN_NAMES or name.startswith("vgg_shapes/"):
        if "/" in name:
            kwargs.setdefault("config", name.split("/", 1)[1])
        return builtin_source(split, data_dir=data_dir or None, **kwargs)
    for prefix in ("folder:", "tfrecord:"):
        if name.startswith(prefix) and not name[len(prefix) :]:
            raise ValueError(f"`name` {name!r} needs a path after {prefix!r}.")
    if name.startswith("folder:"):
        root = name[len("folder:") :]
        split_root = os.path.join(root, split)
        return folder_source(split_root if tf.io.gfile.isdir(split_root) else root, **kwargs)
    if name.startswith("tfrecord:"):
        return tfrecord_source(name[len("tfrecord:") :].replace("{split}", split), **kwargs)
    return tfds_source(name, split, data_dir=data_dir or None, manual_dir=manual_dir or None, **kwargs)
