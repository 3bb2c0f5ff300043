r"""Deployment on this CPU: every format a vgg_keras classifier ships in, timed side by side.

Rows: Keras float32, Keras mixed bfloat16 (a second model with the policy and the same
weights), the exported SavedModel's `predict_float` signature, TFLite float32 / float16 /
dynamic int8 / int8 (`vgg_keras.export.tflite`; XNNPACK, threads = cores) and ONNX Runtime
(`vgg_keras.export.onnx`). Every format is converted from the same model by the library's
own exporters and takes RGB [0, 255], returning probabilities.

- Speed: images/s at each batch size, the median of `--repeats` rounds in which the
  formats run in alternating order (`_timing.race`), and the ratio to Keras float32 in the
  same race. On VGG16 at 224 (random init: speed does not depend on the weights) and on
  the trained model.
- Agreement: top-1 agreement with Keras float32 and the largest |difference| of the
  probabilities, on held-out validation images of a trained model (random weights make
  agreement meaningless); VGG16 at 224 cannot be trained here, so this is the quick
  start's model (`--trained_model`, a run's `model.keras`).
- Checks printed per TFLite row: the XNNPACK partitions and the ops left outside them, and
  the conv / dense kernels' operand types (float32, hybrid float x int8, or int8 x int8).
  `--tflite_probe` also times the TFLite files at batch 1 with 1 thread, without XNNPACK
  and with its latest features.

    python benchmarks/deployment.py --trained_model=runs/quickstart/model.keras \\
        [--batch_sizes 1,8] [--repeats 5] [--formats keras_float32,tflite_int8,...] [--tflite_probe]
        [--workdir DIR] [--quick]

Memory: VGG16's ONNX export needs about 5 GB with the torch converter (`export_onnx`'s
default when torch is installed) and above 20 GB with tf2onnx; leave "onnx" out of
`--formats` for VGG16 on a machine with less.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import race  # noqa: E402  (benchmarks/ is the script's directory)

import vgg_keras  # noqa: E402
from vgg_keras.export import saved_model as saved_model_lib  # noqa: E402
from vgg_keras.export import signatures as signatures_lib  # noqa: E402
from vgg_keras.export import tflite as tflite_lib  # noqa: E402

REFERENCE = "keras_float32"
FORMATS = (REFERENCE, "keras_mixed_bfloat16", "saved_model", *(f"tflite_{q}" for q in tflite_lib.QUANTIZATIONS), "onnx")
FLOAT32_LAYERS = ("preprocessing", "predictions", "score_average", "predictions_activation", "probabilities")
Predict = Callable[[np.ndarray], np.ndarray]
Loader = Callable[[], "Deployment"]


@dataclasses.dataclass
class Target:
    """A model and what its exports need.

    Attributes:
        model: The classifier, RGB [0, 255] in (normalisation inside), probabilities out.
        workdir: Where the exported files go.
        calibration: int8 calibration images (not the held-out ones).
    """

    model: keras.Model
    workdir: str
    calibration: np.ndarray


@dataclasses.dataclass
class Deployment:
    """One format of one model: `predict(images [B, H, W, 3]) -> probabilities [B, classes]`."""

    predict: Predict
    note: str = ""


# --------------------------------------------------------------------------- formats


def mixed_bfloat16_copy(model: keras.Model) -> keras.Model:
    """A second model computing in bfloat16 with `model`'s weights (normalisation and soft-max in float32).

    Built layer by layer under the "mixed_bfloat16" policy, as `keras.mixed_precision` intends;
    the head's last layer stays float32 as the trainer keeps it (a stable soft-max), and so does
    the normalisation (RGB [0, 255] minus a mean loses bits in bfloat16).
    """

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if layer.name not in FLOAT32_LAYERS:
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def _keras(model: keras.Model) -> Deployment:
    return Deployment(lambda images: np.asarray(model.predict_on_batch(images), dtype=np.float32))


# Each format exports its file, then returns the loader that opens it: every file is written
# before any runtime holds a copy of the weights (VGG16's ONNX conversion alone needs GBs).


def _keras_float32(target: Target) -> Loader:
    return lambda: _keras(target.model)


def _keras_mixed_bfloat16(target: Target) -> Loader:
    return lambda: _keras(mixed_bfloat16_copy(target.model))


def _saved_model(target: Target) -> Loader:
    version_dir = saved_model_lib.export_saved_model(
        target.model, os.path.join(target.workdir, "savedmodels"), "deployment", update_config=False
    )

    def load() -> Deployment:
        signature = tf.saved_model.load(version_dir).signatures[signatures_lib.SIGNATURE_FLOAT]

        def predict(images: np.ndarray) -> np.ndarray:
            return signature(**{signatures_lib.INPUT_FLOAT: tf.constant(images)})["probabilities"].numpy()

        return Deployment(predict, f"signature {signatures_lib.SIGNATURE_FLOAT!r} (float RGB in, top-k out too)")

    return load


def kernel_types(tflite_path: str) -> str:
    """The operand types of the conv and dense kernels, counted: e.g. "CONV_2D int8 x int8: 13".

    Read from the graph without delegates, so the kernels are the converter's choice
    (XNNPACK then runs them with the same operand types).
    """
    interpreter = tf.lite.Interpreter(
        model_path=tflite_path,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    dtypes = {tensor["index"]: np.dtype(tensor["dtype"]).name for tensor in interpreter.get_tensor_details()}
    counts = collections.Counter(
        f"{op['op_name']} {dtypes.get(op['inputs'][0], '?')} x {dtypes.get(op['inputs'][1], '?')}"
        for op in interpreter._get_ops_details()  # pylint: disable=protected-access  (no public op listing)
        if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")
    )
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items()))


class TFLiteRunner:
    """A `.tflite` classifier on XNNPACK with one thread per core.

    `export_tflite` fixes the batch at 1 (the dense head's Flatten becomes a reshape to
    `[1, features]`, which XNNPACK cannot resize), so a batch runs image by image, as
    `tflite.run_tflite` does.
    """

    def __init__(self, tflite_path: str, **options):
        """Loads `tflite_path`; `options` go to `tf.lite.Interpreter` (default num_threads: the cores)."""
        options.setdefault("num_threads", os.cpu_count())
        self.interpreter = tf.lite.Interpreter(model_path=tflite_path, **options)
        self.interpreter.allocate_tensors()  # the default XNNPACK delegate is applied here
        self.xnnpack = xnnpack_coverage(self.interpreter)
        self.source = self.interpreter.get_input_details()[0]
        self.target = self.interpreter.get_output_details()[0]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        outputs = []
        for image in images:
            self.interpreter.set_tensor(self.source["index"], tflite_lib.quantize(image[np.newaxis], self.source))
            self.interpreter.invoke()
            outputs.append(tflite_lib.dequantize(self.interpreter.get_tensor(self.target["index"]), self.target))
        return np.concatenate(outputs)


def xnnpack_coverage(interpreter: tf.lite.Interpreter) -> str:
    """Which part of the graph the XNNPACK delegate took, e.g. "XNNPACK: 1 partition(s), ops outside: SOFTMAX x1".

    The delegate replaces the nodes it takes by DELEGATE nodes (the replaced ones stay listed);
    a partition's nodes are those its outputs depend on, back to its inputs.
    """
    ops = interpreter._get_ops_details()  # pylint: disable=protected-access  (no public op listing)
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    if not delegates:
        return "no XNNPACK"
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    inside: set[int] = set()
    for delegate in delegates:
        boundary, seen, stack = {int(t) for t in delegate["inputs"]}, set(), [int(t) for t in delegate["outputs"]]
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor in seen or tensor not in producer:
                continue
            seen.add(tensor)
            inside.add(producer[tensor]["index"])
            stack.extend(int(t) for t in producer[tensor]["inputs"])
    outside = collections.Counter(
        op["op_name"] for op in ops if op["op_name"] != "DELEGATE" and op["index"] not in inside
    )
    left = ", ".join(f"{name} x{count}" for name, count in sorted(outside.items())) or "none"
    return f"XNNPACK: {len(delegates)} partition(s), ops outside: {left}"


def _tflite(quantization: str) -> Callable[[Target], Loader]:
    def make(target: Target) -> Loader:
        path = os.path.join(target.workdir, f"{target.model.name}_{quantization}.tflite")
        tflite_lib.export_tflite(
            target.model,
            path,
            quantization=quantization,
            overwrite=True,
            representative_dataset=target.calibration if quantization == "int8" else None,
            calibration_images=len(target.calibration),
        )

        def load() -> Deployment:
            runner = TFLiteRunner(path)
            return Deployment(runner, f"{runner.xnnpack}; {kernel_types(path)}")

        return load

    return make


def _onnx(target: Target) -> Loader:
    import onnxruntime  # pylint: disable=import-outside-toplevel

    from vgg_keras.export import onnx as onnx_lib  # pylint: disable=import-outside-toplevel

    path = os.path.join(target.workdir, f"{target.model.name}.onnx")
    onnx_lib.export_onnx(target.model, path, overwrite=True)

    def load() -> Deployment:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count()
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return Deployment(
            lambda images: session.run(None, {name: images})[0],
            f"onnxruntime {onnxruntime.__version__}, CPUExecutionProvider, dynamic batch",
        )

    return load


BUILDERS: dict[str, Callable[[Target], Loader]] = {
    REFERENCE: _keras_float32,
    "keras_mixed_bfloat16": _keras_mixed_bfloat16,
    "saved_model": _saved_model,
    **{f"tflite_{q}": _tflite(q) for q in tflite_lib.QUANTIZATIONS},
    "onnx": _onnx,
}


# --------------------------------------------------------------------------- measuring


def deploy(target: Target, formats: Sequence[str]) -> dict[str, Deployment]:
    """Every format of `target`, each converted by the library's exporter (all files first, then loaded)."""
    loaders = {}
    for name in formats:
        print(f"--- {target.model.name}: {name}", flush=True)
        loaders[name] = BUILDERS[name](target)
    return {name: load() for name, load in loaders.items()}


def speed(
    deployments: dict[str, Deployment], images: np.ndarray, batch_sizes: Sequence[int], repeats: int
) -> dict[int, dict[str, float]]:
    """Batch size -> format -> images/s, every format in one race per batch size."""
    rates = {}
    for batch in batch_sizes:
        x = images[:batch]
        rates[batch] = race(
            {name: (lambda d=d, x=x: d.predict(x)) for name, d in deployments.items()}, repeats, items=batch
        )
    return rates


def agreement(deployments: dict[str, Deployment], images: np.ndarray, batch: int) -> dict[str, tuple[float, float]]:
    """Format -> (top-1 agreement, max |difference of probabilities|) with Keras float32."""

    def probabilities(deployment: Deployment) -> np.ndarray:
        return np.concatenate([deployment.predict(images[i : i + batch]) for i in range(0, len(images), batch)])

    expected = probabilities(deployments[REFERENCE])
    results = {}
    for name, deployment in deployments.items():
        actual = probabilities(deployment)
        results[name] = (
            float(np.mean(actual.argmax(-1) == expected.argmax(-1))),
            float(np.abs(actual - expected).max()),
        )
    return results


def tflite_probe(workdir: str, model_name: str, repeats: int) -> str:
    """Why the int8 model runs as fast as it does: the TFLite files at batch 1 under other runtimes.

    XNNPACK with threads = cores and with 1 thread, XNNPACK with its latest features, and
    the builtin kernels without XNNPACK (for int8: ruy's), all in one race; ratios against
    float32 on XNNPACK with threads = cores. Needs the float32, dynamic_int8 and int8 files.
    """
    without = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    variants = {
        "XNNPACK": {},
        "XNNPACK 1 thread": {"num_threads": 1},
        "XNNPACK latest features": {"experimental_default_delegate_latest_features": True},
        "builtin kernels, no XNNPACK": {"experimental_op_resolver_type": without},
    }
    # Not every pair: each interpreter holds its own packed copy of VGG16's weights.
    pairs = {
        "float32": ("XNNPACK", "XNNPACK 1 thread"),
        "dynamic_int8": ("XNNPACK", "XNNPACK latest features"),
        "int8": tuple(variants),
    }
    runners = {
        f"{quantization}, {variant}": TFLiteRunner(
            os.path.join(workdir, f"{model_name}_{quantization}.tflite"), **variants[variant]
        )
        for quantization, names in pairs.items()
        for variant in names
    }
    size = runners["float32, XNNPACK"].source["shape"][1]
    image = np.random.default_rng(2).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    rates = race({name: (lambda r=runner: r(image)) for name, runner in runners.items()}, repeats, items=1)
    lines = [
        f"{model_name}: TFLite at batch 1 under other runtimes (median of {repeats}, one race)",
        "",
        "| file, runtime | img/s | vs float32 XNNPACK | graph |",
        "|---|---|---|---|",
    ]
    for name, runner in runners.items():
        ratio = rates[name] / rates["float32, XNNPACK"]
        lines.append(f"| {name} | {rates[name]:.2f} | {ratio:.2f}x | {runner.xnnpack} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- models


def trained_target(model_path: str, workdir: str, num_images: int, data_config: str) -> tuple[Target, np.ndarray]:
    """The trained model, int8 calibration images (train split) and held-out images (validation split)."""
    from vgg_keras import data  # pylint: disable=import-outside-toplevel

    model, preprocessing = saved_model_lib.load_for_export(model_path)
    model = tflite_lib.with_normalizer(model, preprocessing)
    size = saved_model_lib.base_size(model)
    resize = saved_model_lib.run_resize_size(model_path, size)

    def images(split: str) -> np.ndarray:
        return tflite_lib.representative_images(
            data.get_source("builtin", split, config=data_config),
            image_size=size,
            resize_size=resize,
            num_images=num_images,
        )

    return Target(model, workdir, images("train")), images("validation")


def speed_target(workdir: str, quick: bool) -> Target:
    """VGG16 at 224 with random weights (its normalisation inside), or a tiny VGG-A for --quick."""
    if quick:
        model = vgg_keras.build(
            "A",
            input_shape=(32, 32, 3),
            base_size=32,
            width_multiplier=1 / 16,
            fc_units=32,
            classes=12,
            include_preprocessing=True,
            name="vgg_a_tiny",
        )
    else:
        model = vgg_keras.build("vgg16", include_preprocessing=True)
    size = model.input_shape[1]
    calibration = np.random.default_rng(0).uniform(0, 255, (8, size, size, 3)).astype(np.float32)
    return Target(model, workdir, calibration)


# --------------------------------------------------------------------------- report


def _ratio(rates: dict[str, float], name: str) -> str:
    return f"{rates[name] / rates[REFERENCE]:.2f}x" if REFERENCE in rates else "n/a"


def table(
    title: str,
    rates: dict[int, dict[str, float]],
    agreed: dict[str, tuple[float, float]] | None,
    deployments: dict[str, Deployment],
) -> str:
    """A markdown table: images/s and ratio per batch size, agreement, notes."""
    batches = list(rates)
    header = [f"img/s b{b} | vs f32 b{b}" for b in batches]
    lines = [
        title,
        "",
        f"| format | {' | '.join(header)} | top-1 agree | max abs dp | notes |",
        "|---|" + "---|---|" * len(batches) + "---|---|---|",
    ]
    for name, deployment in deployments.items():
        cells = [f"{rates[b][name]:.2f} | {_ratio(rates[b], name)}" for b in batches]
        agree, diff = agreed[name] if agreed else (float("nan"), float("nan"))
        lines.append(f"| {name} | {' | '.join(cells)} | {agree:.4f} | {diff:.2g} | {deployment.note} |")
    return "\n".join(lines)


def _int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--batch_sizes={text!r}; allowed: comma-separated ints >= 1.")
    return values


def _formats(text: str) -> list[str]:
    names = [v for v in text.split(",") if v]
    unknown = sorted(set(names) - set(FORMATS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"--formats={text!r}; allowed: comma-separated from {', '.join(FORMATS)}.")
    # Keras float32 is every ratio's and every agreement's reference: always measured.
    return [REFERENCE] + [n for n in FORMATS if n in names and n != REFERENCE]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_sizes", type=_int_list, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per format and batch size")
    parser.add_argument("--formats", type=_formats, default=list(FORMATS), help=", ".join(FORMATS))
    parser.add_argument(
        "--trained_model",
        default="",
        help="a trained run's model.keras (the quick start's) for agreement; --quick without it "
        "measures agreement on the random tiny model (a smoke run only)",
    )
    parser.add_argument("--held_out", type=int, default=500, help="held-out validation images for agreement")
    parser.add_argument("--quick", action="store_true", help="tiny model, 32 px, few images: a smoke run")
    parser.add_argument(
        "--tflite_probe",
        action="store_true",
        help="also time each TFLite file at batch 1 with 1 thread, without XNNPACK, with its latest features",
    )
    parser.add_argument("--workdir", default="", help="keep the exported files here (default: a temporary directory)")
    args = parser.parse_args(argv)
    if not args.trained_model and not args.quick:
        parser.error("--trained_model is required (e.g. runs/quickstart/model.keras), unless --quick.")
    needed = {f"tflite_{q}" for q in ("float32", "dynamic_int8", "int8")}
    if args.tflite_probe and not needed <= set(args.formats):
        parser.error(f"--tflite_probe needs --formats to include {', '.join(sorted(needed))}.")
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats}; allowed: an int >= 1.")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    held_out = min(args.held_out, 24) if args.quick else args.held_out
    agree_batch = max(args.batch_sizes)
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or stack.enter_context(tempfile.TemporaryDirectory())
        speed_model = speed_target(os.path.join(workdir, "speed"), args.quick)
        if args.trained_model:
            trained, images = trained_target(
                args.trained_model, os.path.join(workdir, "trained"), held_out, "tiny" if args.quick else "default"
            )
            deployments = deploy(trained, args.formats)
            agreed = agreement(deployments, images, agree_batch)
            trained_rates = speed(deployments, images, args.batch_sizes, args.repeats)
            trained_title = (
                f"Trained model {trained.model.name!r} ({args.trained_model}), "
                f"{images.shape[1]} px: speed and agreement on {len(images)} held-out images"
            )
            # Printed at once: VGG16's conversions that follow need GBs of memory (ONNX: 12+ GB).
            print(f"\n{table(trained_title, trained_rates, agreed, deployments)}\n", flush=True)
            del deployments
        else:  # --quick smoke run: agreement of the random tiny model itself (says nothing about accuracy)
            agreed = None
        deployments = deploy(speed_model, args.formats)
        size = speed_model.model.input_shape[1]
        images_speed = np.random.default_rng(1).uniform(0, 255, (max(args.batch_sizes), size, size, 3))
        rates = speed(deployments, images_speed.astype(np.float32), args.batch_sizes, args.repeats)
        if agreed is None:
            agreed = agreement(deployments, images_speed.astype(np.float32), agree_batch)
        source = "random tiny model (smoke run)" if not args.trained_model else "the trained model above"
        title = (
            f"{speed_model.model.name} at {size}x{size}, random init: images/s (median of {args.repeats}), "
            f"ratio vs Keras float32 in the same race; agreement from {source}; {os.cpu_count()} CPU cores"
        )
        speed_table = table(title, rates, agreed, deployments)
        del deployments
        probe = tflite_probe(speed_model.workdir, speed_model.model.name, args.repeats) if args.tflite_probe else ""
    for text in (speed_table, probe):
        if text:
            print(f"\n{text}")


if __name__ == "__main__":
    main()
