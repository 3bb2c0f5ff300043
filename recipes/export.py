"""Exports a VGG classifier for TF Serving (SavedModel), TFLite and ONNX; see recipes/README.md.

    python recipes/export.py --model=runs/quickstart/model.keras --model_name=quickstart \
        --tflite=float32,float16,dynamic_int8,int8 --dataset=builtin
    python recipes/export.py --model=runs/quickstart/model.keras --formats=savedmodel,tflite,onnx --dataset=builtin
    python recipes/export.py --model=vgg16 --weights=imagenet --mode=dense     # ImageNet VGG16
    python recipes/export.py --model=d.keras --preprocessing=mean_rgb --version=3
    python recipes/export.py --model=A --width_multiplier=0.125 --fc_units=256 --base_size=64 \
        --weights=a.weights.h5 --dataset=builtin --data_dir=/tmp/tfds        # a narrow net by name

--formats picks the exports (default: savedmodel). savedmodel writes savedmodels/<name>/<version>/
(next free version unless --version) and updates savedmodels/models.config and the batching
parameters file. tflite writes <tflite_dir>/<name>_<mode>.tflite for each --tflite mode (default
float32; giving --tflite alone also selects the format, as before --formats existed). onnx writes
<onnx_dir>/<name>.onnx (needs pip install "vgg_keras[onnx]"; --onnx_converter=torch, the default
when torch is installed, converts in a subprocess with far less memory than tf2onnx). Each TFLite and ONNX file gets a
parity report (<file>.parity.json) computed on held-out images of --dataset (calibration images
for int8 come from its --calibration_split).
A model given by name gets its weights' normalisation as a layer (--preprocessing overrides
it); --resize_size defaults to the validation scale of the training run that saved --model
(its workdir's config.json), else 256/224 of the crop.
"""

import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

import shared_flags
from absl import app, flags

from vgg_keras import cli, preflight, validation

# vgg_keras.export.signatures.SERVING_MODES (a test keeps them equal), here to check --mode before TensorFlow loads.
SERVING_MODES = ("center", "dense")
FORMATS = ("savedmodel", "tflite", "onnx")

_MODEL = flags.DEFINE_string("model", None, "Model file (.keras) or name (vgg16, D, ...).")
_EXPORT_ROOT = flags.DEFINE_string("export_root", "savedmodels", "TF Serving model repository.")
_NAME = flags.DEFINE_string("model_name", None, "Serving name and directory (default: the model's name).")
_VERSION = flags.DEFINE_integer("version", None, "Version number (default: next free; never overwritten).")
_MODE = flags.DEFINE_enum("mode", "center", list(SERVING_MODES), "center crop or dense (whole image) evaluation.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "Centre-crop side (default: the head's base size).")
_RESIZE = flags.DEFINE_integer(
    "resize_size",
    None,
    "Smallest side before cropping (default: the training run's "
    "eval_scale from config.json beside --model, else 256/224 of the crop).",
)
_TOP_K = flags.DEFINE_integer("top_k", None, "Classes in the top-k outputs (default: 5, fewer for fewer classes).")
_PREPROCESSING = flags.DEFINE_string(
    "preprocessing",
    None,
    "Normalisation: caffe, torch, mean_rgb or none; needed for model files without a "
    "preprocessing layer (a model given by name takes its weights' mode by default).",
)
_FLOAT_SIGNATURE = flags.DEFINE_bool("float_signature", True, "Add the predict_float signature.")
_FORMATS = flags.DEFINE_list(
    "formats", ["savedmodel"], "Exports to write, any of: savedmodel (TF Serving), tflite, onnx."
)
_TFLITE = flags.DEFINE_list(
    "tflite",
    [],
    "TFLite modes to convert: any of vgg_keras.export.tflite.QUANTIZATIONS "
    "(default with --formats=...,tflite: float32); giving it selects the tflite format.",
)
_TFLITE_DIR = flags.DEFINE_string("tflite_dir", "savedmodels/tflite", "Where to write .tflite files and reports.")
_ONNX_DIR = flags.DEFINE_string("onnx_dir", "savedmodels/onnx", "Where to write the .onnx file and its report.")
_ONNX_OPSET = flags.DEFINE_integer("onnx_opset", None, "ONNX opset version (default: the converter's).")
# vgg_keras.export.onnx.CONVERTERS (a test keeps them equal), here to check the flag before TensorFlow loads.
ONNX_CONVERTERS = ("auto", "torch", "tf2onnx")
_ONNX_CONVERTER = flags.DEFINE_enum(
    "onnx_converter",
    "auto",
    list(ONNX_CONVERTERS),
    "torch: a subprocess on Keras' torch backend (~5x the weights "
    "in memory); tf2onnx: in this process (~40-50x); auto: torch when installed.",
)
_DATASET = flags.DEFINE_string(
    "dataset",
    None,
    "Source for class names, calibration and parity images (builtin, folder:/path, tfrecord:/glob or a TFDS name).",
)
_SPLIT = flags.DEFINE_string("split", "validation", "Held-out split for the parity reports.")
_CALIBRATION_SPLIT = flags.DEFINE_string("calibration_split", "train", "Split for int8 calibration images.")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 100, "Images for calibration and for each parity report.")
flags.mark_flags_as_required(["model"])


def _formats() -> tuple[str, ...]:
    """The exports to write: --formats, plus tflite when --tflite names modes (its meaning before --formats)."""
    return tuple(dict.fromkeys([*_FORMATS.value, *(["tflite"] if _TFLITE.value else [])]))


def _tflite_modes() -> list[str]:
    return _TFLITE.value or ["float32"]


def check():
    preflight.check_model_spec("--model", _MODEL.value)
    for name in _FORMATS.value:
        validation.check_choice("--formats", name, FORMATS)
    if not _FORMATS.value:
        raise app.UsageError(f"--formats is empty; allowed: any of {', '.join(FORMATS)}.")
    converted = [name for name in _formats() if name != "savedmodel"]
    if converted and not _DATASET.value:
        given = "--tflite" if converted == ["tflite"] and _TFLITE.value else f"--formats={','.join(converted)}"
        raise app.UsageError(f"{given} needs --dataset (held-out images for the parity reports).")
    if _DATASET.value:
        preflight.check_source(_DATASET.value, _SPLIT.value, shared_flags.DATA_DIR.value, shared_flags.MANUAL_DIR.value)


def _held_out(model, source_fn, resize_size, split: str):
    from vgg_keras.export import saved_model, tflite  # pylint: disable=import-outside-toplevel

    size = _IMAGE_SIZE.value or saved_model.base_size(model)
    return tflite.representative_images(
        source_fn(split), image_size=size, resize_size=resize_size, num_images=_NUM_IMAGES.value
    )


def _export_tflite(model, source_fn, resize_size, preprocessing) -> None:
    from vgg_keras.export import tflite  # pylint: disable=import-outside-toplevel

    modes = _tflite_modes()
    held_out = _held_out(model, source_fn, resize_size, _SPLIT.value)
    calibration = _held_out(model, source_fn, resize_size, _CALIBRATION_SPLIT.value) if "int8" in modes else None
    name = _NAME.value or model.name
    for quantization in modes:
        path = os.path.join(_TFLITE_DIR.value, f"{name}_{quantization}.tflite")
        print(f"--- {quantization}: {path}")
        tflite.export_tflite(
            model,
            path,
            quantization=quantization,
            representative_dataset=calibration,
            preprocessing=preprocessing,
            image_size=_IMAGE_SIZE.value,
            overwrite=True,
        )
        tflite.tflite_parity_report(model, path, held_out, preprocessing=preprocessing)


def _export_onnx(model, source_fn, resize_size, preprocessing) -> None:
    from vgg_keras.export import onnx  # pylint: disable=import-outside-toplevel

    path = os.path.join(_ONNX_DIR.value, f"{_NAME.value or model.name}.onnx")
    print(f"--- onnx: {path}")
    onnx.export_onnx(
        model,
        path,
        preprocessing=preprocessing,
        image_size=_IMAGE_SIZE.value,
        opset=_ONNX_OPSET.value,
        overwrite=True,
        converter=_ONNX_CONVERTER.value,
    )
    onnx.onnx_parity_report(
        model, path, _held_out(model, source_fn, resize_size, _SPLIT.value), preprocessing=preprocessing
    )


def main(argv):
    del argv
    # TensorFlow: after check().  pylint: disable=import-outside-toplevel
    from vgg_keras import data
    from vgg_keras.export import onnx, saved_model

    formats = _formats()
    if "onnx" in formats:  # before any export is written
        packages, install_hint = onnx.CONVERTER_PACKAGES[onnx.resolve_converter(_ONNX_CONVERTER.value)]
        onnx.require_packages(packages, "--formats=onnx", install_hint)
    source_fn = (
        (
            lambda split: data.get_source(
                _DATASET.value, split, data_dir=shared_flags.DATA_DIR.value, manual_dir=shared_flags.MANUAL_DIR.value
            )
        )
        if _DATASET.value
        else None
    )
    source = source_fn(_SPLIT.value) if source_fn else None
    build_kwargs = shared_flags.build_kwargs(classes=source.num_classes if source else 1000)
    model, preprocessing = saved_model.load_for_export(_MODEL.value, _PREPROCESSING.value, **build_kwargs)
    resize_size = _RESIZE.value or saved_model.run_resize_size(_MODEL.value, _IMAGE_SIZE.value)
    if "savedmodel" in formats:
        version_dir = saved_model.export_saved_model(
            model,
            _EXPORT_ROOT.value,
            _NAME.value,
            _VERSION.value,
            mode=_MODE.value,
            image_size=_IMAGE_SIZE.value,
            resize_size=resize_size,
            top_k=_TOP_K.value,
            class_names=source.class_names if source else None,
            preprocessing=preprocessing,
            include_float_signature=_FLOAT_SIGNATURE.value,
        )
        print(f"SavedModel: {version_dir}")
    if "tflite" in formats:
        _export_tflite(model, source_fn, resize_size, preprocessing)
    if "onnx" in formats:
        _export_onnx(model, source_fn, resize_size, preprocessing)


if __name__ == "__main__":
    cli.run(main, check=check)
