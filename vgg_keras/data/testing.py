"""Helpers to write small image files and folders, for tests, benchmarks and demos.

Also :func:`run_eager_and_in_dataset`, which runs an op both eagerly and inside a
``tf.data`` map (graph mode), the two places every data op must work.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from PIL import Image


def smooth_image(height: int, width: int, seed: int = 0, cycles: float = 2.5) -> np.ndarray:
    """A smooth, low-frequency uint8 RGB image (one random sinusoid per channel).

    Smooth content makes resize-order differences small, so two resampling paths can be
    compared with a tight tolerance.

    Args:
      height: image height.
      width: image width.
      seed: random seed of the frequencies and phases.
      cycles: largest number of periods across the image per axis.

    Returns:
      ``uint8 [height, width, 3]`` array.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fy, fx = rng.uniform(0.2, 1.0, 2) * cycles * 2 * np.pi
        phase = rng.uniform(0, 2 * np.pi)
        channels.append(np.sin(fy * yy / height + fx * xx / width + phase))
    image = 127.5 + 100 * np.stack(channels, axis=-1)
    return np.clip(image, 0, 255).astype(np.uint8)


def encode(image: np.ndarray, fmt: str = "JPEG", mode: str | None = None, quality: int = 90) -> bytes:
    """Encodes an ``[H, W, 3]`` uint8 array with PIL.

    Args:
      image: RGB uint8 array.
      fmt: PIL format name: "JPEG", "PNG", "GIF", "BMP".
      mode: convert to this PIL mode first ("L" grayscale, "CMYK", "P", "RGBA"...).
      quality: JPEG quality.

    Returns:
      The encoded bytes.
    """
    pil = Image.fromarray(image)
    if mode is not None:
        pil = pil.convert(mode)
    buffer = io.BytesIO()
    kwargs = {"quality": quality} if fmt == "JPEG" else {}
    pil.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def write_image_folder(
    root: str,
    num_classes: int = 3,
    per_class: int = 4,
    size: tuple[int, int] = (48, 64),
    fmt: str = "JPEG",
    seed: int = 0,
) -> list[str]:
    """Writes ``root/class_<k>/img_<i>.<ext>`` with distinct smooth images.

    Args:
      root: output folder (created).
      num_classes: number of class sub-folders.
      per_class: images per class.
      size: ``(height, width)`` of every image.
      fmt: PIL format ("JPEG" -> .jpg, "PNG" -> .png).
      seed: base seed; every image differs.

    Returns:
      The written paths, in the order ``folder_source`` lists them.
    """
    extension = {"JPEG": ".jpg"}.get(fmt, "." + fmt.lower())
    paths = []
    for k in range(num_classes):
        folder = os.path.join(root, f"class_{k}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            path = os.path.join(folder, f"img_{i:03d}{extension}")
            image = smooth_image(*size, seed=seed + 1000 * k + i)
            with open(path, "wb") as f:
                f.write(encode(image, fmt))
            paths.append(path)
    return paths


def _add_to_tar(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_imagenet_archives(
    manual_dir: str,
    num_validation: int = 6,
    per_class: int = 3,
    size: tuple[int, int] = (48, 64),
    train: bool = True,
    seed: int = 0,
) -> list[str]:
    """Writes a tiny ImageNet in the real archives' layout, for TFDS' ``imagenet2012`` builder.

    ``ILSVRC2012_img_val.tar`` holds ``ILSVRC2012_val_00000001.JPEG`` ...; TFDS labels them
    with the first lines of its own validation label list. ``ILSVRC2012_img_train.tar``
    holds one ``<synset>.tar`` per class of those validation images, each with
    ``<synset>_<i>.JPEG`` files. The prepared dataset has ImageNet's 1000 classes.

    Args:
      manual_dir: the folder to write the archives to (created).
      num_validation: validation images.
      per_class: training images per class.
      size: ``(height, width)`` of every image.
      train: also write the training archive.
      seed: base seed; every image differs.

    Returns:
      The archive paths written.
    """
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    labels_file = os.path.join(os.path.dirname(tfds.__file__), "datasets", "imagenet2012", "validation_labels.txt")
    with open(labels_file, encoding="utf-8") as f:
        synsets = f.read().split()[:num_validation]
    os.makedirs(manual_dir, exist_ok=True)
    paths = [os.path.join(manual_dir, "ILSVRC2012_img_val.tar")]
    with tarfile.open(paths[0], "w") as tar:
        for i in range(num_validation):
            _add_to_tar(tar, f"ILSVRC2012_val_{i + 1:08d}.JPEG", encode(smooth_image(*size, seed=seed + i)))
    if train:
        paths.append(os.path.join(manual_dir, "ILSVRC2012_img_train.tar"))
        with tarfile.open(paths[1], "w") as tar:
            for k, synset in enumerate(sorted(set(synsets))):
                inner = io.BytesIO()
                with tarfile.open(fileobj=inner, mode="w") as class_tar:
                    for i in range(per_class):
                        image = smooth_image(*size, seed=seed + 1000 * (k + 1) + i)
                        _add_to_tar(class_tar, f"{synset}_{i}.JPEG", encode(image))
                _add_to_tar(tar, f"{synset}.tar", inner.getvalue())
    return paths


def run_eager_and_in_dataset(fn: Callable, *inputs) -> tuple:
    """Runs ``fn(*inputs)`` eagerly and as a ``tf.data`` map; returns both results (numpy).

    ``tf.data`` traces ``fn`` into a graph with unknown static shapes, which catches ops
    that only work on eager tensors or known shapes.
    """
    eager = tf.nest.map_structure(lambda t: np.asarray(t), fn(*inputs))

    def unknown_shape(x):
        return tf.compat.v1.placeholder_with_default(x, shape=[None] * x.shape.rank)

    dataset = tf.data.Dataset.from_tensors(tuple(inputs)).map(lambda *xs: fn(*[unknown_shape(x) for x in xs]))
    in_dataset = tf.nest.map_structure(lambda t: np.asarray(t), next(iter(dataset)))
    return eager, in_dataset
