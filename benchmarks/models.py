"""Forward and training-step throughput: vgg_keras.VGG16 vs keras.applications.VGG16.

Both models are built in the same process and timed in rounds of alternating order
(A B, B A, ...), so machine noise hits both alike; the table reports the median images/s
of each and their ratio, in float32 and with the `mixed_bfloat16` policy.

    python benchmarks/models.py [--batch 8] [--rounds 4] [--train_batch 4]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _timing import race  # noqa: E402  (benchmarks/ is the script's directory)

import vgg_keras  # noqa: E402


def _builders():
    return {
        "keras.applications.VGG16": lambda: keras.applications.VGG16(weights=None),
        "vgg_keras.VGG16": lambda: vgg_keras.VGG16(weights=None),
    }


def _forward_step(model, images):
    return lambda: model.predict_on_batch(images)


def _train_step(model, images, labels):
    model.compile(
        optimizer=keras.optimizers.SGD(1e-3, momentum=0.9), loss="sparse_categorical_crossentropy", jit_compile=False
    )
    return lambda: model.train_on_batch(images, labels)


def run(policy: str, batch: int, train_batch: int, rounds: int) -> list[tuple]:
    """Times both models under one dtype policy; returns table rows."""
    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, 224, 224, 3)).astype("float32")
    train_images = images[:train_batch]
    labels = rng.integers(0, 1000, train_batch)
    models = {name: build() for name, build in _builders().items()}
    forward = race({n: _forward_step(m, images) for n, m in models.items()}, rounds, items=batch)
    train = race({n: _train_step(m, train_images, labels) for n, m in models.items()}, rounds, items=train_batch)
    keras.mixed_precision.set_global_policy("float32")
    return [(policy, "forward", forward), (policy, "train step", train)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--train_batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    rows = []
    for policy in ("float32", "mixed_bfloat16"):
        rows += run(policy, args.batch, args.train_batch, args.rounds)
    ref, ours = _builders()
    print(f"\nVGG16 at 224x224, forward batch {args.batch}, train batch {args.train_batch}, median of {args.rounds}")
    print(f"| policy | pass | {ref} img/s | {ours} img/s | ratio ours/ref |")
    print("|---|---|---|---|---|")
    for policy, kind, rates in rows:
        print(f"| {policy} | {kind} | {rates[ref]:.2f} | {rates[ours]:.2f} | {rates[ours] / rates[ref]:.3f} |")
    by_key = {(p, k): r[ours] for p, k, r in rows}
    for kind in ("forward", "train step"):
        speedup = by_key[("mixed_bfloat16", kind)] / by_key[("float32", kind)]
        print(f"vgg_keras mixed_bfloat16 / float32 ({kind}): {speedup:.2f}x")


if __name__ == "__main__":
    main()
