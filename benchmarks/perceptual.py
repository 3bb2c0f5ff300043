"""LPIPS pairs/s vs the reference `lpips` PyTorch package; the perceptual loss's training cost.

1. LPIPS (VGG, v0.1) at 256x256: `vgg_keras.perceptual.LPIPS` (eager, and its call in a
   `tf.function`) vs `lpips.LPIPS(net="vgg")` under `torch.no_grad()`, on the same image
   pairs, with the same trunk and linear weights (the reference's random trunk saved and
   loaded, so the distances are compared too) and the same number of threads.
2. A small image-to-image model's training step (`train_on_batch`) with an MSE loss vs the
   `PerceptualLoss` (relu2_2, and relu1_2 ... relu4_3), so the table shows what the VGG costs.

Timed in rounds of alternating order; the table reports medians and ratios. lpips and
torchvision are imported before TensorFlow (the other order segfaults here).

    python benchmarks/perceptual.py [--pairs 4] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# lpips imports torchvision, which segfaults when imported after TensorFlow (keras imports it).
import lpips  # noqa: E402
import torch  # noqa: E402

# isort: split

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import race  # noqa: E402  (benchmarks/ is the script's directory)

from vgg_keras import perceptual  # noqa: E402


def _reference_and_ours(directory: str):
    torch.manual_seed(0)
    reference = lpips.LPIPS(net="vgg", version="0.1", pnet_rand=True, verbose=False).eval()
    trunk = {}
    for key, value in reference.state_dict().items():
        if key.startswith("net.slice"):
            _, _, index, name = key.split(".")
            trunk[f"features.{index}.{name}"] = value
    path = os.path.join(directory, "trunk.pth")
    torch.save(trunk, path)
    return reference, perceptual.LPIPS(trunk_weights=path)


def lpips_table(pairs: int, rounds: int) -> list[tuple[str, float]]:
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, (pairs, 256, 256, 3)).astype("float32")
    x1 = np.clip(x0 + rng.normal(0, 0.2, x0.shape), -1, 1).astype("float32")
    t0, t1 = (torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() for x in (x0, x1))
    with tempfile.TemporaryDirectory() as directory:
        reference, ours = _reference_and_ours(directory)
    compiled = tf.function(ours)

    def run_reference():
        with torch.no_grad():
            return reference(t0, t1).numpy().reshape(-1)

    steps = {
        "lpips (PyTorch)": run_reference,
        "vgg_keras LPIPS, eager": lambda: ours(x0, x1).numpy(),
        "vgg_keras LPIPS, tf.function": lambda: compiled(tf.constant(x0), tf.constant(x1)).numpy(),
    }
    difference = np.abs(steps["vgg_keras LPIPS, eager"]() - run_reference()).max()
    print(f"max |distance difference| vs lpips: {difference:.2e}")
    return list(race(steps, rounds, items=pairs).items())


def _image_model() -> keras.Model:
    inputs = keras.Input((128, 128, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def loss_table(batch: int, rounds: int) -> list[tuple[str, float]]:
    rng = np.random.default_rng(1)
    x, y = (rng.uniform(0, 1, (batch, 128, 128, 3)).astype("float32") for _ in range(2))
    losses = {
        "MSE": "mse",
        "PerceptualLoss relu2_2": perceptual.PerceptualLoss(weights=None, value_range=(0, 1)),
        "PerceptualLoss relu1_2..relu4_3": perceptual.PerceptualLoss(
            ["relu1_2", "relu2_2", "relu3_3", "relu4_3"], weights=None, value_range=(0, 1)
        ),
    }
    steps = {}
    for name, loss in losses.items():
        model = _image_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=False)
        steps[name] = lambda model=model: model.train_on_batch(x, y)
    return list(race(steps, rounds, items=batch).items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="Image pairs per LPIPS call (256x256).")
    parser.add_argument("--batch", type=int, default=4, help="Images per training step (128x128).")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="Threads for PyTorch and TensorFlow.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    print(f"{args.threads} threads; {args.rounds} rounds; torch {torch.__version__}, tensorflow {tf.__version__}")
    rows = lpips_table(args.pairs, args.rounds)
    base = rows[0][1]
    print(f"\n| LPIPS, {args.pairs} pairs of 256x256 | pairs/s | vs lpips |\n|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:.2f} | {rate / base:.2f}x |")
    rows = loss_table(args.batch, args.rounds)
    base = rows[0][1]
    print(f"\n| training step, batch {args.batch} of 128x128 | ms/step | cost vs MSE |\n|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {1000 * args.batch / rate:.1f} | {base / rate:.2f}x |")


if __name__ == "__main__":
    main()
