"""Serving overhead: each exported SavedModel signature against the bare compiled model.

The model is exported with `vgg_keras.export.export_saved_model` and reloaded; each
signature (`serving_default` on JPEG bytes, `predict_image_tensor` on uint8 pixels,
`predict_float` on ready crops) is timed side by side with the bare model compiled by
`tf.function` on the same images already decoded, resized, cropped (what the signatures
add: decoding, resizing, cropping, top-k), at batch 1 and 8, for VGG16 at 224 and for the
quick start's model (recipes/configs/quickstart.py, built with the trainer's own
`build_model`). Random weights: only speed is measured. The table reports each
signature's time as a multiple of the bare model's (targets: <= 1.10 for VGG16 and
<= 1.25 for the quick start's model at batch 8, bytes and uint8), also against the
SavedModel's own model call (`predict_float`), and the bare model compiled with XLA.
`--breakdown` times instead each part of the image signatures as its own `tf.function`
(input signatures as the SavedModel's) on the same images: where the overhead goes.

    python benchmarks/serving.py [--models quickstart,vgg16] [--batches 1,8] [--rounds 7] [--breakdown]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import race  # noqa: E402  (benchmarks/ is the script's directory)

import vgg_keras  # noqa: E402
from vgg_keras.data import crops, testing  # noqa: E402
from vgg_keras.export import saved_model, signatures  # noqa: E402

# Images as clients send them: VGG16 gets ImageNet's typical 375x500 photo, the quick
# start's model an image of its dataset's size (vgg_shapes: sides of 100-200 pixels).
IMAGE_SHAPES = {"vgg16": (375, 500), "quickstart": (150, 200)}
TARGETS = {"vgg16": 1.10, "quickstart": 1.25}
BYTES, TENSOR, FLOAT = signatures.SIGNATURE_BYTES, signatures.SIGNATURE_TENSOR, signatures.SIGNATURE_FLOAT
XLA = "bare, jit_compile"  # whether XLA would pay off (the signatures' dynamic image sizes rule it out there)


def _quickstart_model():
    """The quick start's model, built as its training run builds it (mean RGB: a stand-in)."""
    from recipes.configs import quickstart  # pylint: disable=import-outside-toplevel
    from vgg_keras.training import trainer  # pylint: disable=import-outside-toplevel

    config = quickstart.get_config()
    model = trainer.build_model(config, num_classes=12, mean_rgb=(124.0, 117.0, 104.0))
    return model, config.data.eval_scale


def build(name: str):
    """`(model, resize_size)`: the model and the smallest side its export resizes to."""
    if name == "vgg16":
        return vgg_keras.VGG16(weights=None, include_preprocessing=True, preprocessing="caffe"), None
    if name == "quickstart":
        return _quickstart_model()
    raise ValueError(f"model={name!r}; allowed: {', '.join(IMAGE_SHAPES)}.")


def _photos(batch: int, shape: tuple[int, int]) -> np.ndarray:
    """`batch` smooth RGB images of one shape (they compress like photos, unlike white noise)."""
    return np.stack([testing.smooth_image(*shape, seed=seed) for seed in range(batch)])


def steps(loaded, model, resize_size: int, image_size: int, pixels: np.ndarray) -> dict:
    """Peer name -> one call: the bare model and each signature on the same images."""
    encoded = tf.constant([testing.encode(p, "JPEG") for p in pixels])
    tensor = tf.constant(pixels)
    crop = [crops.center_crop(crops.resize_smallest_side(p, resize_size), image_size) for p in pixels]
    ready = tf.stack(crop)
    bare = tf.function(lambda x: model(x, training=False))
    xla = tf.function(lambda x: model(x, training=False), jit_compile=True)
    fns = loaded.signatures
    return {
        "bare": lambda: bare(ready).numpy(),
        XLA: lambda: xla(ready).numpy(),
        BYTES: lambda: fns[BYTES](images=encoded)["probabilities"].numpy(),
        TENSOR: lambda: fns[TENSOR](images=tensor)["probabilities"].numpy(),
        FLOAT: lambda: fns[FLOAT](inputs=ready)["probabilities"].numpy(),
    }


def parts(model, resize_size: int, image_size: int, pixels: np.ndarray, class_names: list[str]) -> dict:
    """Peer name -> one call: each part of the bytes and uint8 signatures alone, on the same images.

    The parts are the signatures' own ops (`vgg_keras.data.crops`), each in a `tf.function`
    with the SavedModel's input signature (any batch, any image size): "call" is what any
    call costs (Python to graph and back), "decode" the per-image JPEG decoding in `tf.map_fn`,
    "decode + crop" the bytes signature's whole loop, "crop" the uint8 signature's batched
    antialiased crop, "outputs" top-k and the class-name gather.
    """
    spec = tf.TensorSpec
    crop = functools.partial(crops.resize_center_crop, size=resize_size, crop_size=image_size)
    crop_spec = spec([image_size, image_size, 3], tf.float32)
    names = tf.constant(class_names)

    def outputs(probabilities):
        scores, indices = tf.math.top_k(probabilities, k=min(5, len(class_names)))
        return scores, tf.gather(names, indices)

    functions = {
        "bare, input signature": (lambda x: model(x, training=False), spec([None, image_size, image_size, 3])),
        "call": (tf.identity, spec([None, image_size, image_size, 3])),
        "decode": (
            lambda e: tf.map_fn(crops.decode_image, e, fn_output_signature=spec([None, None, 3], tf.uint8)),
            spec([None], tf.string),
        ),
        "decode + crop": (
            lambda e: tf.map_fn(lambda x: crop(crops.decode_image(x)), e, fn_output_signature=crop_spec),
            spec([None], tf.string),
        ),
        "crop (uint8 batch)": (crop, spec([None, None, None, 3], tf.uint8)),
        "outputs": (outputs, spec([None, len(class_names)])),
    }
    functions = {name: tf.function(fn, input_signature=[s]) for name, (fn, s) in functions.items()}
    tensor = tf.constant(pixels)
    ready = crop(tensor)
    inputs = {
        "decode": tf.constant([testing.encode(p, "JPEG") for p in pixels]),
        "crop (uint8 batch)": tensor,
        "outputs": tf.nn.softmax(model(ready, training=False), axis=-1),
    }
    inputs["decode + crop"] = inputs["decode"]
    return {name: functools.partial(_fetch, fn, inputs.get(name, ready)) for name, fn in functions.items()}


def _fetch(fn, inputs) -> None:
    """Runs `fn` and copies every output to NumPy, as a client would."""
    tf.nest.map_structure(lambda t: t.numpy(), fn(inputs))


def run(name: str, batches: list[int], rounds: int, breakdown: bool = False) -> list[tuple]:
    """Exports the model once and times every peer (or part) at each batch size; table rows."""
    model, resize_size = build(name)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        path = saved_model.export_saved_model(model, root, "bench", resize_size=resize_size, update_config=False)
        loaded = tf.saved_model.load(path)
        with open(os.path.join(path, saved_model.EXPORT_INFO), encoding="utf-8") as f:
            info = json.load(f)
        for batch in batches:
            pixels = _photos(batch, IMAGE_SHAPES[name])
            peers = steps(loaded, model, info["resize_size"], info["image_size"], pixels)
            if breakdown:
                peers = {
                    "bare": peers["bare"],
                    **parts(model, info["resize_size"], info["image_size"], pixels, info["class_names"]),
                    BYTES: peers[BYTES],
                    TENSOR: peers[TENSOR],
                    FLOAT: peers[FLOAT],
                }
            seconds = race(peers, rounds)
            rows.append((name, batch, seconds))
    return rows


def print_breakdown(rows: list[tuple], rounds: int) -> None:
    """One table per model and batch: each part's ms per batch and its share of the bare model's time."""
    for name, batch, seconds in rows:
        bare = seconds["bare"]
        print(f"\n{name}, batch {batch}: ms per batch (median of {rounds} rounds) and share of the bare model's time")
        print("| part | ms | / bare |\n|---|---|---|")
        for part, value in seconds.items():
            print(f"| {part} | {value * 1e3:.2f} | {value / bare:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="quickstart,vgg16", help="comma-separated: quickstart, vgg16")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=7, help="timed calls per peer (median reported)")
    parser.add_argument("--breakdown", action="store_true", help="time each part of the signatures instead")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    rows = [row for name in args.models.split(",") for row in run(name, batches, args.rounds, args.breakdown)]
    if args.breakdown:
        print_breakdown(rows, args.rounds)
        return
    print(
        f"\nTime / bare compiled model's time (same images, already cropped), median of {args.rounds} rounds;"
        " the last two columns against the SavedModel's own model call (predict_float)"
    )
    print(
        f"| model | batch | bare ms | bare img/s | {XLA} | {BYTES} (bytes) | {TENSOR} (uint8) | {FLOAT} (float) "
        f"| bytes / float | uint8 / float | target (bytes, uint8) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, batch, seconds in rows:
        bare, own = seconds["bare"], seconds[FLOAT]
        ratios = " | ".join(f"{seconds[key] / bare:.2f}" for key in (XLA, BYTES, TENSOR, FLOAT))
        own_ratios = " | ".join(f"{seconds[key] / own:.2f}" for key in (BYTES, TENSOR))
        target = f"<= {TARGETS[name]:.2f} at batch 8" if batch == 8 else ""
        print(f"| {name} | {batch} | {bare * 1e3:.1f} | {batch / bare:.1f} | {ratios} | {own_ratios} | {target} |")


if __name__ == "__main__":
    main()
