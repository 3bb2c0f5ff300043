"""Saliency / SmoothGrad / Grad-CAM pictures of a classifier, one PNG per image; or the pointing game.

    python recipes/explain.py --model=runs/quickstart/model.keras --images=photos/ --output_dir=runs/explain
    python recipes/explain.py --model=vgg16 --weights=imagenet --images=cat.jpg,dog.png \
        --method=smoothgrad --class_index=281 --output_dir=runs/explain
    python recipes/explain.py --model=runs/quickstart/model.keras --pointing_game --scale=72

Each PNG is the input image (resized to the model's input size when that is fixed) next to
the map drawn over it; the predicted (or given) class and its probability are printed.
A model name is built with its preprocessing inside (`include_preprocessing=True`), so
images are fed as RGB 0..255 and the maps are in their pixels. `--pointing_game` scores the
maps on the built-in dataset's validation boxes (Zhang et al. 2016), next to a random-init
copy of the model and the image-centre baseline. A bad flag or file ends in one `error:` line
(exit code 2) before TensorFlow loads; --debug shows the traceback.
"""

import json
import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

import numpy as np
from absl import app, flags, logging

from vgg_keras import cli

# Literal copies of vgg_keras.explain's (tests/test_explain.py checks they agree), so that the
# flags are checked before TensorFlow loads.
METHODS = ("saliency", "smoothgrad", "gradcam")
DEFAULT_SAMPLES = 50
DEFAULT_NOISE = 0.15
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")

_MODEL = flags.DEFINE_string("model", None, "A .keras/.h5 model file, or a model name (vgg16, vgg11_bn, ...).")
_WEIGHTS = flags.DEFINE_string("weights", None, "For a model name: a weights tag or file (default: random init).")
_IMAGES = flags.DEFINE_list("images", [], "Image files and/or folders (all images directly inside).")
_METHOD = flags.DEFINE_enum("method", "gradcam", METHODS, "The map.")
_LAYER = flags.DEFINE_string("layer", None, "Grad-CAM's conv layer (default: the last conv, e.g. block5_conv3).")
_CLASS_INDEX = flags.DEFINE_integer("class_index", None, "Class to explain (default: each image's predicted class).")
_SAMPLES = flags.DEFINE_integer("samples", DEFAULT_SAMPLES, "SmoothGrad: noisy copies per image.")
_NOISE = flags.DEFINE_float("noise", DEFAULT_NOISE, "SmoothGrad: noise std as a fraction of the range.")
_ALPHA = flags.DEFINE_float("alpha", 0.5, "Weight of the heat map's colours over the image.")
_COLORMAP = flags.DEFINE_string("colormap", "jet", "A matplotlib colormap.")
_SIZE = flags.DEFINE_integer("size", None, "For a model taking any size: resize the smallest side to this.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the PNGs (or pointing_game.json) go.")
_POINTING_GAME = flags.DEFINE_bool("pointing_game", False, "Score the maps on the built-in validation boxes.")
_SCALE = flags.DEFINE_integer("scale", None, "Pointing game: smallest side before the centre crop (default: crop).")
_TOLERANCE = flags.DEFINE_float("tolerance", 0.0, "Pointing game: pixels around the box still counted as a hit.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Pointing game: TFDS data_dir of the built-in dataset.")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", None, "Pointing game: score only the first images.")
flags.mark_flag_as_required("model")


def check() -> None:
    """Flag and file checks that need no TensorFlow."""
    if _MODEL.value.endswith((".keras", ".h5")) and _WEIGHTS.value:
        raise app.UsageError(f"--weights={_WEIGHTS.value!r} is for a model name; {_MODEL.value!r} carries its weights.")
    if _METHOD.value != "gradcam" and _LAYER.value:
        raise app.UsageError(f"--layer={_LAYER.value!r} is for --method=gradcam; --method={_METHOD.value!r}.")
    if not _POINTING_GAME.value:
        if not _OUTPUT_DIR.value:
            raise app.UsageError("--output_dir is required to write the pictures.")
        _image_files(_IMAGES.value)


def _load_model():
    from vgg_keras.evaluation import forward  # pylint: disable=import-outside-toplevel  (TensorFlow)

    spec = _MODEL.value
    if spec.endswith((".keras", ".h5")):
        return forward.load_model(spec)
    try:
        return forward.load_model(spec, weights=_WEIGHTS.value, include_preprocessing=True)
    except ValueError as error:
        raise app.UsageError(f"--model={spec!r}: {error}") from error


def _image_files(entries: list[str]) -> list[str]:
    files = []
    for entry in entries:
        if os.path.isdir(entry):
            found = sorted(
                os.path.join(entry, name) for name in os.listdir(entry) if name.lower().endswith(IMAGE_EXTENSIONS)
            )
            if not found:
                raise app.UsageError(f"--images folder {entry!r} holds no {', '.join(IMAGE_EXTENSIONS)} file.")
            files.extend(found)
        elif os.path.isfile(entry):
            files.append(entry)
        else:
            raise app.UsageError(f"--images entry {entry!r} is neither a file nor a folder.")
    if not files:
        raise app.UsageError("--images is empty; allowed: image files and/or folders (or --pointing_game).")
    return files


def _read_image(path: str, model) -> np.ndarray:
    """RGB float32 0..255 at the model's input size (or `--size` on its smallest side)."""
    from PIL import Image  # pylint: disable=import-outside-toplevel

    with Image.open(path) as image:
        image = image.convert("RGB")
        height, width = model.inputs[0].shape[1:3]
        if height is None or width is None:
            if _SIZE.value:
                factor = _SIZE.value / min(image.size)
                image = image.resize((round(image.width * factor), round(image.height * factor)), Image.BILINEAR)
        else:
            image = image.resize((width, height), Image.BILINEAR)
        return np.asarray(image, np.float32)


def _method_kwargs() -> dict:
    if _METHOD.value == "gradcam":
        return {"layer": _LAYER.value}
    if _METHOD.value == "smoothgrad":
        return {"samples": _SAMPLES.value, "noise": _NOISE.value, "seed": 0}
    return {}


def _probability(model, image: np.ndarray, label: int) -> float:
    import keras  # pylint: disable=import-outside-toplevel

    # The output is a distribution only when the last layer applies a soft-max.
    if getattr(model.layers[-1], "activation", None) is not keras.activations.softmax:
        return float("nan")
    # Called as a one-input model: a saved model's input structure may be a one-element list.
    single_input = keras.Model(model.inputs[0], model.outputs[0])
    return float(keras.ops.convert_to_numpy(single_input(image[None], training=False))[0, label])


def _explain_images(model, files: list[str], output_dir: str) -> None:
    from vgg_keras import explain  # pylint: disable=import-outside-toplevel

    kwargs = _method_kwargs()
    for path in files:
        image = _read_image(path, model)
        label = int(explain.target_classes(model, image[None], _CLASS_INDEX.value)[0])
        heatmap = explain.explain(model, image, _METHOD.value, label, **kwargs)
        picture = np.concatenate(
            [
                np.round(image).astype(np.uint8),
                explain.overlay(image, heatmap, alpha=_ALPHA.value, colormap=_COLORMAP.value),
            ],
            axis=1,
        )
        stem = os.path.splitext(os.path.basename(path))[0]
        written = explain.save_png(picture, os.path.join(output_dir, f"{stem}_{_METHOD.value}.png"))
        print(f"{path}: class {label} (p={_probability(model, image, label):.3f}) -> {written}")


def _pointing_game(model, output_dir: str | None) -> None:
    import keras  # pylint: disable=import-outside-toplevel

    from vgg_keras import data, explain  # pylint: disable=import-outside-toplevel

    source = data.get_source("builtin", "validation", data_dir=_DATA_DIR.value)
    kwargs = {
        "method": _METHOD.value,
        "scale": _SCALE.value,
        "tolerance": _TOLERANCE.value,
        "max_examples": _MAX_EXAMPLES.value,
        **_method_kwargs(),
    }
    keras.utils.set_random_seed(0)
    results = {
        "trained": explain.pointing_game(model, source, **kwargs),
        "random init": explain.pointing_game(keras.models.clone_model(model), source, **kwargs),
    }
    print("| model | method | layer | pointing accuracy | centre baseline | images |\n|---|---|---|---|---|---|")
    for name, result in results.items():
        print(
            f"| {name} | {result.method} | {result.layer or '-'} | {result.accuracy:.3f} | "
            f"{result.center_accuracy:.3f} | {result.num_images} |"
        )
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "pointing_game.json"), "w", encoding="utf-8") as file:
            json.dump({name: result.summary() for name, result in results.items()}, file, indent=2)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
    model = _load_model()
    if _POINTING_GAME.value:
        _pointing_game(model, _OUTPUT_DIR.value)
    else:  # a bad --layer / --class_index: the library's ValueError is the one-line error
        _explain_images(model, _image_files(_IMAGES.value), _OUTPUT_DIR.value)
    logging.info("done")


if __name__ == "__main__":
    cli.run(main, check=check)
