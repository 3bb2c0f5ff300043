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

    python benchmarks/serving.py [--models quickstart,vgg16] [--batches 1,8] [--rounds 7]
"""

from __future__ import annotations

import argparse
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


def run(name: str, batches: list[int], rounds: int) -> list[tuple]:
    """Exports the model once and times every peer at each batch size; table rows."""
    model, resize_size = build(name)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        path = saved_model.export_saved_model(model, root, "bench", resize_size=resize_size, update_config=False)
        loaded = tf.saved_model.load(path)
        with open(os.path.join(path, saved_model.EXPORT_INFO), encoding="utf-8") as f:
            info = json.load(f)
        for batch in batches:
            pixels = _photos(batch, IMAGE_SHAPES[name])
            seconds = race(steps(loaded, model, info["resize_size"], info["image_size"], pixels), rounds)
            rows.append((name, batch, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="quickstart,vgg16", help="comma-separated: quickstart, vgg16")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=7, help="timed calls per peer (median reported)")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    rows = [row for name in args.models.split(",") for row in run(name, batches, args.rounds)]
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
