"""Training input throughput: vgg_keras's scale-jitter pipeline vs two peers.

Writes ImageNet-sized JPEGs (500x375, photo-like file sizes) to a temp dir and times, in
the same process and alternating rounds, three pipelines that all produce batches of
224x224 crops with the smallest side jittered in [256, 512] and a random flip:

- vgg_keras: ``train_dataset`` -- crop window computed in original coordinates and the
  JPEG decoded only in its columns, from its top row to the last one (``decode_and_crop_jpeg``;
  reading to the end makes truncated files fail as a full decode does), plus PCA colour shift;
- naive: decode the whole JPEG -> resize smallest side to S -> random crop -> flip ->
  colour shift (the same ops otherwise), with the antialiased resize the evaluation
  pipeline uses and with a plain bilinear one;
- keras-cv: decode whole -> ``keras_cv.layers.JitteredResize`` -> ``RandomFlip``.

Each pipeline runs with a private thread pool of 1 and of 2 threads; the table shows the
best images/s of the rounds (other processes only ever slow a round down), images/s per
thread, the 1 -> 2 scaling, and the ratio against vgg_keras.

    python benchmarks/input_pipeline.py [--images 96] [--batches 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vgg_keras.data import augment, crops, pipeline, sources  # noqa: E402
from vgg_keras.data.testing import encode, smooth_image  # noqa: E402

CROP, S_MIN, S_MAX, BATCH = 224, 256, 512, 32


def write_jpegs(root: str, count: int) -> None:
    """``count`` 500x375 JPEGs (smooth content + noise: ~photo-sized files) in 2 classes."""
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = os.path.join(root, f"class_{i % 2}")
        os.makedirs(folder, exist_ok=True)
        image = smooth_image(375, 500, seed=i).astype(np.float32)
        image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        with open(os.path.join(folder, f"{i:04d}.jpg"), "wb") as f:
            f.write(encode(image, "JPEG", quality=90))


def _finish(dataset: tf.data.Dataset, threads: int) -> tf.data.Dataset:
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.deterministic = False
    dataset = dataset.batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(options)


def ours(source: sources.Source, threads: int) -> tf.data.Dataset:
    return pipeline.train_dataset(
        source, batch_size=BATCH, crop_size=CROP, scale=(S_MIN, S_MAX), shuffle_buffer=0, num_threads=threads
    )


def naive(source: sources.Source, threads: int, antialias: bool = True) -> tf.data.Dataset:
    def example(ex):
        image = crops.decode_image(ex["image"])
        scale = augment.sample_scale(S_MIN, S_MAX)
        if antialias:
            image = crops.resize_smallest_side(image, scale)
        else:
            size = tf.cast(tf.shape(image)[:2], tf.float32) * tf.cast(scale, tf.float32)
            size = tf.cast(tf.round(size / tf.reduce_min(tf.cast(tf.shape(image)[:2], tf.float32))), tf.int32)
            image = tf.image.resize(tf.cast(image, tf.float32), tf.maximum(size, scale))
        image = tf.image.random_crop(image, [CROP, CROP, 3])
        image = augment.pca_color_shift(augment.random_flip(image))
        return image, ex["label"]

    return _finish(source.dataset.repeat().map(example, num_parallel_calls=tf.data.AUTOTUNE), threads)


def keras_cv_pipeline(source: sources.Source, threads: int) -> tf.data.Dataset:
    import keras_cv  # pylint: disable=import-outside-toplevel

    jitter = keras_cv.layers.JitteredResize(target_size=(CROP, CROP), scale_factor=(S_MIN / CROP, S_MAX / CROP))
    flip = keras_cv.layers.RandomFlip("horizontal")

    def example(ex):
        image = tf.cast(crops.decode_image(ex["image"]), tf.float32)
        return flip(jitter(image)), ex["label"]

    return _finish(source.dataset.repeat().map(example, num_parallel_calls=tf.data.AUTOTUNE), threads)


def images_per_second(dataset: tf.data.Dataset, batches: int) -> float:
    iterator = iter(dataset)
    for _ in range(2):  # warm up: tracing, thread pools, autotune
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96, help="JPEGs to write")
    parser.add_argument("--batches", type=int, default=30, help="timed batches per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        write_jpegs(root, args.images)
        folder = sources.folder_source(root)
        # cached bytes: time decoding and augmentation, not the file system
        source = dataclasses.replace(folder, dataset=folder.dataset.cache())
        list(source.dataset)
        builders = {
            "vgg_keras (decode_and_crop)": ours,
            "naive decode->resize->crop": naive,
            "naive, resize without antialias": lambda src, t: naive(src, t, False),
            "keras-cv JitteredResize": keras_cv_pipeline,
        }
        best = {(name, t): 0.0 for name in builders for t in (1, 2)}
        for _ in range(args.rounds):
            for threads in (1, 2):
                for name, build in builders.items():
                    rate = images_per_second(build(source, threads), args.batches)
                    best[name, threads] = max(best[name, threads], rate)
    print(
        f"\n{args.images} JPEGs 500x375, crop {CROP}, S in [{S_MIN}, {S_MAX}], batch {BATCH}, "
        f"best of {args.rounds} rounds x {args.batches} batches\n"
    )
    header = (
        "pipeline",
        "1 thread img/s",
        "2 threads img/s",
        "img/s per thread (2)",
        "1->2 scaling",
        "vgg_keras / this (2 threads)",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    reference = best["vgg_keras (decode_and_crop)", 2]
    for name in builders:
        one, two = best[name, 1], best[name, 2]
        print(f"| {name} | {one:.0f} | {two:.0f} | {two / 2:.0f} | {two / one:.2f}x | {reference / two:.2f}x |")


if __name__ == "__main__":
    main()
