"""Evaluation cost: dense vs 150-crop multi-crop, and batched multi-crop vs a crop-by-crop loop.

All peers run in one process on the same model and images, timed in alternating rounds
(median reported), after an untimed warm-up that compiles every shape:

1. cost per image of dense evaluation (whole image at Q = 256, 384, 512, with its flip)
   vs multi-crop (5x5 grid x 2 flips x 3 scales = 150 crops), both through the same
   compiled `ModelRunner` (the paper: dense is the cheaper one);
2. the 50 crops of one scale in one batched pass (`crop_posteriors`) vs a naive Python
   loop calling the Keras model once per crop, and vs a loop over the same compiled runner
   (the effect of batching alone).

    python benchmarks/evaluation.py [--width 0.25] [--fc_units 1024] [--images 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import race  # noqa: E402  (benchmarks/ is the script's directory)
from vgg_keras import models  # noqa: E402
from vgg_keras.data import crops as crops_lib  # noqa: E402
from vgg_keras.evaluation import protocol  # noqa: E402
from vgg_keras.evaluation.forward import prepare_model  # noqa: E402

SCALES = (256, 384, 512)
CROP = 224
SHAPES = ((300, 400), (400, 300), (333, 500), (375, 500))


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    images = []
    for height, width in (SHAPES * count)[:count]:
        coarse = rng.uniform(0, 255, (height // 16 + 1, width // 16 + 1, 3)).astype("float32")
        images.append(tf.image.resize(coarse, (height, width)).numpy())  # smooth, photo-like
    return images


def _at_scales(images):
    return [[crops_lib.resize_smallest_side(tf.constant(image), q) for q in SCALES] for image in images]


def _peers(model, runner, resized):
    crops = [[crops_lib.multi_crop(view, CROP) for view in views] for views in resized]

    def dense():
        for views in resized:
            for view in views:
                protocol.dense_posteriors(runner, view[None], flip=True).numpy()

    def multicrop():
        for stacks in crops:
            for stack in stacks:
                protocol.crop_posteriors(runner, stack[None]).numpy()

    def batched_one_scale():
        for stacks in crops:
            protocol.crop_posteriors(runner, stacks[0][None]).numpy()

    def keras_loop_one_scale():
        for stacks in crops:
            np.mean([model(stacks[0][i:i + 1], training=False).numpy() for i in range(stacks[0].shape[0])], 0)

    def runner_loop_one_scale():
        for stacks in crops:
            np.mean([runner.posteriors(stacks[0][i:i + 1]).numpy() for i in range(stacks[0].shape[0])], 0)

    return {"dense (3 scales, flip)": dense, "multi-crop (150 crops)": multicrop,
            "multi-crop, 50 crops batched": batched_one_scale, "naive loop, keras model per crop": keras_loop_one_scale,
            "loop, compiled runner per crop": runner_loop_one_scale}


# (peer, the peer it is compared with): the ratio is peer time / reference time.
_ROWS = (
    ("dense (3 scales, flip)", None),
    ("multi-crop (150 crops)", "dense (3 scales, flip)"),
    ("multi-crop, 50 crops batched", None),
    ("naive loop, keras model per crop", "multi-crop, 50 crops batched"),
    ("loop, compiled runner per crop", "multi-crop, 50 crops batched"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=0.25, help="VGG16 width multiplier")
    parser.add_argument("--fc_units", type=int, default=1024)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model = models.build("D", weights=None, width_multiplier=args.width, fc_units=args.fc_units)
    runner = prepare_model(model)
    seconds = race(_peers(model, runner, _at_scales(_images(args.images))), args.rounds)
    per_image = {name: value / args.images for name, value in seconds.items()}
    print(f"\nVGG16 (config D) width {args.width}, fc {args.fc_units}, {args.images} images "
          f"{[s for s in (SHAPES * args.images)[:args.images]]}, Q={SCALES}, crop {CROP}, "
          f"median of {args.rounds} rounds, TF {tf.__version__}, {os.cpu_count()} CPUs\n")
    print("| peer | s / image | compared with | ratio |\n|---|---|---|---|")
    for name, reference in _ROWS:
        ratio = f"{per_image[name] / per_image[reference]:.2f}x" if reference else "-"
        print(f"| {name} | {per_image[name]:.3f} | {reference or '-'} | {ratio} |")


if __name__ == "__main__":
    main()
