"""Evaluation cost: dense vs 150-crop multi-crop against their FLOP shares, and the CPU's matmul roof.

All peers run in one process on the same model and images, timed in alternating rounds
(median reported), after an untimed warm-up that compiles every shape:

1. dense evaluation (whole image at Q = 256, 384, 512, with its flip) vs multi-crop
   (5x5 grid x 2 flips x 3 scales = 150 crops of 224), both through the same compiled
   `ModelRunner`, one image per pass and all images per pass (a padded batch of mixed
   orientations, as `evaluate` builds it). Next to each measured ratio: the
   FLOP-proportional ideal for the same images (conv FLOPs of the crops / conv FLOPs of
   dense, flips included, each layer counted as 2 x H x W x k x k x Cin x Cout at its output
   size) and the achieved fraction of it (measured / ideal);
2. achieved GFLOP/s of dense, multi-crop and the plain 224 forward pass (batch 1 and a batch of
   50 crops) against the CPU's measured float32 matmul roof (a large `tf.matmul`, timed in the same rounds);
3. with `--loops`: the 50 crops of one scale in one batched pass vs a naive Python loop
   calling the Keras model once per crop, and vs a loop over the compiled runner.

    python benchmarks/evaluation.py [--width 0.25] [--fc_units 1024] [--images 4] [--rounds 3] [--loops]
                                    [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import race  # noqa: E402  (benchmarks/ is the script's directory)

from vgg_keras import models  # noqa: E402
from vgg_keras.data import crops as crops_lib  # noqa: E402
from vgg_keras.evaluation import protocol  # noqa: E402
from vgg_keras.evaluation.forward import prepare_model  # noqa: E402

SCALES = (256, 384, 512)
CROP = 224
GRID = 5
# Mixed orientations and aspect ratios, like ImageNet's validation images.
SHAPES = ((300, 400), (400, 300), (333, 500), (375, 500))
MATMUL = 2048
ROOF = f"float32 matmul {MATMUL}x{MATMUL}"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    images = []
    for height, width in (SHAPES * count)[:count]:
        coarse = rng.uniform(0, 255, (height // 16 + 1, width // 16 + 1, 3)).astype("float32")
        images.append(tf.image.resize(coarse, (height, width)).numpy())  # smooth, photo-like
    return images


def _at_scales(images):
    return [[crops_lib.resize_smallest_side(tf.constant(image), q) for q in SCALES] for image in images]


def conv_flops(layers, height: int, width: int) -> int:
    """Multiply-add FLOPs of a chain's convolutions on one `height` x `width` input.

    Each conv counts 2 x H x W x k x k x Cin x Cout at its output size; pooling and
    activations are not counted (a few per cent of one conv).
    """
    total, channels = 0, 3
    for layer in layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D)):
            continue
        window = layer.kernel_size if isinstance(layer, keras.layers.Conv2D) else layer.pool_size
        if layer.padding == "same":
            height, width = -(-height // layer.strides[0]), -(-width // layer.strides[1])
        else:
            height = (height - window[0]) // layer.strides[0] + 1
            width = (width - window[1]) // layer.strides[1] + 1
        if isinstance(layer, keras.layers.Conv2D):
            total += 2 * height * width * window[0] * window[1] * channels * layer.filters
            channels = layer.filters
    return total


def _padded(views):
    """One padded batch of views of different sizes (bottom/right zeros), as `evaluate` builds it."""
    height, width = max(int(v.shape[0]) for v in views), max(int(v.shape[1]) for v in views)
    batch = tf.stack([tf.pad(v, [[0, height - v.shape[0]], [0, width - v.shape[1]], [0, 0]]) for v in views])
    return batch, np.array([v.shape[:2] for v in views], "int32")


def _peers(runner, resized, crops):
    batches = [_padded([views[index] for views in resized]) for index in range(len(SCALES))]
    stacks = [tf.stack([image_crops[index] for image_crops in crops]) for index in range(len(SCALES))]
    single = crops[0][0][:1]

    def dense():
        for views in resized:
            for view in views:
                protocol.dense_posteriors(runner, view[None], flip=True).numpy()

    def dense_batched():
        for batch, sizes in batches:
            protocol.dense_posteriors(runner, batch, sizes, flip=True).numpy()

    def multicrop():
        for image_crops in crops:
            for stack in image_crops:
                protocol.crop_posteriors(runner, stack[None]).numpy()

    def multicrop_batched():
        for stack in stacks:
            protocol.crop_posteriors(runner, stack).numpy()

    def forward_224():
        runner.posteriors(single).numpy()

    def forward_224_x50():
        runner.posteriors(crops[0][0]).numpy()

    # The roof: a large float32 matmul, timed in the same rounds as the peers.
    left, right = tf.random.normal([MATMUL, MATMUL]), tf.random.normal([MATMUL, MATMUL])

    def matmul():
        tf.matmul(left, right).numpy()

    return {
        "dense, 1 image / pass": dense,
        "dense, all images / pass": dense_batched,
        "multi-crop, 1 image / pass": multicrop,
        "multi-crop, all images / pass": multicrop_batched,
        "224 forward, batch 1": forward_224,
        "224 forward, batch 50": forward_224_x50,
        ROOF: matmul,
    }


def _loop_peers(model, runner, crops):
    def batched_one_scale():
        for stacks in crops:
            protocol.crop_posteriors(runner, stacks[0][None]).numpy()

    def keras_loop_one_scale():
        for stacks in crops:
            np.mean([model(stacks[0][i : i + 1], training=False).numpy() for i in range(stacks[0].shape[0])], 0)

    def runner_loop_one_scale():
        for stacks in crops:
            np.mean([runner.posteriors(stacks[0][i : i + 1]).numpy() for i in range(stacks[0].shape[0])], 0)

    return {
        "multi-crop, 50 crops batched": batched_one_scale,
        "naive loop, keras model per crop": keras_loop_one_scale,
        "loop, compiled runner per crop": runner_loop_one_scale,
    }


def _flops(runner, resized, count: int) -> dict[str, float]:
    """Conv FLOPs of one call of each peer."""
    dense = sum(2 * conv_flops(runner.layers, int(v.shape[0]), int(v.shape[1])) for views in resized for v in views)
    crop = conv_flops(runner.layers, CROP, CROP)
    multicrop = count * len(SCALES) * 2 * GRID * GRID * crop
    return {
        "dense, 1 image / pass": dense,
        "dense, all images / pass": dense,
        "multi-crop, 1 image / pass": multicrop,
        "multi-crop, all images / pass": multicrop,
        "224 forward, batch 1": crop,
        "224 forward, batch 50": 2 * GRID * GRID * crop,
        ROOF: 2 * MATMUL**3,
    }


def _print_tables(seconds, flops, count: int) -> None:
    roof = flops[ROOF] / seconds[ROOF]
    print("| peer | s / call | GFLOP / call | GFLOP/s | share of the matmul roof |\n|---|---|---|---|---|")
    for name, value in seconds.items():
        rate = flops[name] / value
        print(f"| {name} | {value:.3f} | {flops[name] / 1e9:.1f} | {rate / 1e9:.1f} | {100 * rate / roof:.0f} % |")
    print()
    ideal = flops["multi-crop, 1 image / pass"] / flops["dense, 1 image / pass"]
    print(
        "| images per pass | multi-crop / dense, measured | FLOP-proportional ideal | achieved fraction |\n"
        "|---|---|---|---|"
    )
    for label, suffix in (("1", "1 image / pass"), (str(count), "all images / pass")):
        measured = seconds[f"multi-crop, {suffix}"] / seconds[f"dense, {suffix}"]
        print(f"| {label} | {measured:.2f}x | {ideal:.2f}x | {measured / ideal:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=0.25, help="VGG16 width multiplier")
    parser.add_argument("--fc_units", type=int, default=1024)
    parser.add_argument("--images", type=int, default=4, help="images (cycling through 4 shapes, both orientations)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loops", action="store_true", help="also time crop-by-crop loops (slow)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or this process's CPU seconds (steadier on a loaded machine)",
    )
    args = parser.parse_args()
    model = models.build("D", weights=None, width_multiplier=args.width, fc_units=args.fc_units)
    runner = prepare_model(model)
    resized = _at_scales(_images(args.images))
    crops = [[crops_lib.multi_crop(view, CROP, GRID) for view in views] for views in resized]
    seconds = race(_peers(runner, resized, crops), args.rounds, clock=CLOCKS[args.clock])
    print(
        f"\nVGG16 (config D) width {args.width}, fc {args.fc_units}, {args.images} images "
        f"{list((SHAPES * args.images)[: args.images])}, Q={SCALES}, crop {CROP}, "
        f"{args.clock} clock, median of {args.rounds} rounds, TF {tf.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    _print_tables(seconds, _flops(runner, resized, args.images), args.images)
    if args.loops:
        loops = race(_loop_peers(model, runner, crops), args.rounds, clock=CLOCKS[args.clock])
        reference = loops["multi-crop, 50 crops batched"]
        print("\n| peer | s / image | vs 50 crops batched |\n|---|---|---|")
        for name, value in loops.items():
            print(f"| {name} | {value / args.images:.3f} | {value / reference:.2f}x |")


if __name__ == "__main__":
    main()
