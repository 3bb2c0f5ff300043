"""Every recipe reports bad input in one `error:` line, exit code 2, before TensorFlow loads.

Each case runs the recipe in a subprocess inside an empty folder and checks what a user
sees (stderr is one line, no traceback), that TensorFlow was never imported (the error
costs a second, not the TensorFlow import), and that nothing was created on disk.
"""

import ast
import os
import subprocess
import sys

import ml_collections
import pytest

from vgg_keras import preflight
from vgg_keras.training import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "recipes", "configs")
# Runs a recipe as `python recipes/<name>.py ...` would, then says whether TensorFlow was imported.
_LAUNCHER = (
    "import os, runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))  # as `python script.py` does\n"
    "try:\n"
    "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "finally:\n"
    "    print('tensorflow imported:', 'tensorflow' in sys.modules)\n"
)


def run_recipe(recipe: str, *args: str, cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python recipes/<recipe>.py args` in `cwd`, through the launcher above."""
    environment = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    command = [sys.executable, "-c", _LAUNCHER, os.path.join(ROOT, "recipes", f"{recipe}.py"), *args]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, stderr exactly one `error:` line holding every fragment, no TensorFlow."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "tensorflow imported: False" in result.stdout
    return lines[0]


def _tree(path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, n), path) for d, dirs, files in os.walk(path) for n in dirs + files)


_TRAIN = ["--config=" + os.path.join(CONFIGS, "quickstart.py"), "--workdir=runs/w", "--config.data.data_dir=tfds"]
CASES = {
    "train-unknown-override": (
        "train",
        [*_TRAIN, "--config.training.batch_sise=16"],
        ["--config.training.batch_sise", "'batch_size'"],
    ),
    "train-invalid-value": (
        "train",
        [*_TRAIN, "--config.training.batch_size=-16"],
        ["config.training.batch_size=-16", ">= 1"],
    ),
    "train-bad-type": ("train", [*_TRAIN, "--config.training.batch_size=abc"], ["batch_size=abc"]),
    "train-bad-flag": ("train", [*_TRAIN, "--workdri=x"], ["workdri"]),
    "train-bad-shortcut": ("train", [*_TRAIN, "--backup_every_steps=-3"], ["config.training.backup_every_steps=-3"]),
    "train-missing-config-file": ("train", ["--config=configs/nope.py", "--workdir=w"], ["configs/nope.py"]),
    "train-missing-folder-dataset": (
        "train",
        [*_TRAIN, "--config.data.name=folder:images"],
        ["folder:images", "no such folder"],
    ),
    "train-missing-imagenet-archives": (
        "train",
        [*_TRAIN, "--config.data.name=imagenet2012", "--config.data.manual_dir=archives"],
        ["ILSVRC2012_img_train.tar", "archives"],
    ),
    "evaluate-missing-model": (
        "evaluate",
        ["--model=runs/q/model.keras", "--dataset=builtin"],
        ["--model='runs/q/model.keras'", "no such file"],
    ),
    "evaluate-bad-scales": ("evaluate", ["--model=vgg16", "--scales=256,big"], ["--scales=256,big"]),
    "export-missing-model": ("export", ["--model=model.keras"], ["--model='model.keras'"]),
    "export-tflite-without-dataset": ("export", ["--model=vgg16", "--tflite=float32"], ["--tflite needs --dataset"]),
    "export-onnx-without-dataset": (
        "export",
        ["--model=vgg16", "--formats=savedmodel,onnx"],
        ["--formats=onnx needs --dataset"],
    ),
    "export-unknown-format": (
        "export",
        ["--model=vgg16", "--formats=savedmodel,torchscript"],
        ["--formats='torchscript'", "'onnx'"],
    ),
    "localize-missing-classifier": (
        "localize",
        ["--config=" + os.path.join(CONFIGS, "localization.py"), "--workdir=runs/loc"],
        ["config.classifier="],
    ),
    "transfer-missing-dataset": ("transfer", ["--model=vgg16", "--dataset=folder:pets"], ["folder:pets"]),
    "convert_weights-missing-source": (
        "convert_weights",
        ["--source=vgg16.pth", "--arch=vgg16", "--output=out/v"],
        ["--source='vgg16.pth'", "no such file"],
    ),
    "make_tfrecords-missing-folder": (
        "make_tfrecords",
        ["--folder=images", "--output_dir=records"],
        ["--folder='images'", "no such folder"],
    ),
    "explain-missing-image": ("explain", ["--model=vgg16", "--images=cat.jpg", "--output_dir=out"], ["cat.jpg"]),
    "finetune-missing-folder": (
        "finetune",
        ["--config=" + os.path.join(CONFIGS, "finetune.py"), "--workdir=runs/f", "--data=folder:flowers"],
        ["config.data.name='flowers'", "no such folder"],
    ),
    "finetune-bad-unfreeze": (
        "finetune",
        ["--config=" + os.path.join(CONFIGS, "finetune.py"), "--workdir=runs/f", "--unfreeze=block9"],
        ["config.finetune.unfreeze='block9'"],
    ),
    "style_transfer-missing-image": (
        "style_transfer",
        ["--content=photo.jpg", "--style=art.jpg", "--output_dir=out"],
        ["--content='photo.jpg'", "not a file"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_recipe_error_is_one_line_before_tensorflow_and_creates_nothing(case, tmp_path):
    recipe, args, fragments = CASES[case]
    result = run_recipe(recipe, *args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert _tree(tmp_path) == []


def test_debug_shows_the_traceback(tmp_path):
    result = run_recipe("train", *_TRAIN, "--config.training.batch_size=-16", "--debug", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ValueError: config.training.batch_size=-16; allowed" in result.stderr


def _assigned_tuple(path: str, name: str) -> tuple:
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not assigned in {path}")


def test_recipe_flag_choices_match_the_library():
    # The recipes list these to check flags before TensorFlow loads; they must not drift.
    from vgg_keras import features
    from vgg_keras.export import onnx, signatures

    recipes = os.path.join(ROOT, "recipes")
    assert _assigned_tuple(os.path.join(recipes, "export.py"), "SERVING_MODES") == signatures.SERVING_MODES
    assert _assigned_tuple(os.path.join(recipes, "export.py"), "ONNX_CONVERTERS") == onnx.CONVERTERS
    assert _assigned_tuple(os.path.join(recipes, "transfer.py"), "AGGREGATIONS") == features.AGGREGATIONS
    assert _assigned_tuple(os.path.join(recipes, "transfer.py"), "LOSSES") == features.LOSSES


# --------------------------------------------------------------------------- derived config fields


def test_derived_fields_follow_overrides():
    config = config_lib.paper_config("A", 256)
    config.data.eval_scale = 320  # what --config.data.eval_scale=320 does after the file is loaded
    config_lib.validate_config(config)
    assert config.after.eval_scales == (320,)
    jitter = config_lib.validate_config(config_lib.paper_config("E", 256, 512))
    assert (jitter.data.eval_scale, jitter.after.eval_scales) == (384, (384,))
    moved = config_lib.paper_config("C", 256)
    moved.data.scale_min = moved.data.scale_max = 384
    config_lib.validate_config(moved)
    assert (moved.data.eval_scale, moved.after.eval_scales) == (384, (384,))
    explicit = config_lib.paper_config("A", 256)
    explicit.after.eval_scales = (256, 384)
    assert config_lib.validate_config(explicit).after.eval_scales == (256, 384)


def test_derived_fields_are_checked():
    config = config_lib.base_config()
    config.after.eval_scales = (100,)
    with pytest.raises(ValueError, match=r"after.eval_scales=\(100,\).*>= data.crop_size=224"):
        config_lib.validate_config(config)
    assert isinstance(config_lib.base_config(), ml_collections.ConfigDict)


def test_split_names_of_a_split_spec():
    assert preflight.split_names("train[:10%]+validation") == ("train", "validation")
    with pytest.raises(ValueError, match="no split 'val'"):
        preflight.check_imagenet("val")


def test_no_message_is_lost_in_the_cleanup():
    # The unknown-override rewrite keeps the suggestion; anything else is kept whole on one line.
    from absl import app

    from vgg_keras import cli

    error = AttributeError(KeyError('\'batch_sise\'\nDid you mean "batch_size" instead of "batch_sise"?'))
    argv = ["train.py", "--config.training.batch_sise=3"]
    assert cli._message(error, argv) == (
        "--config.training.batch_sise: no such config field 'batch_sise'; did you mean 'batch_size'?"
    )
    assert cli._message(ValueError("two\n  lines"), argv) == "two lines"
    with pytest.raises(app.UsageError, match=r"^--scales=1,x: allowed: comma-separated integers\.$"):
        cli.integers("scales", ["1", "x"])


def test_unknown_tfds_name_is_one_short_line_and_creates_nothing(tmp_path):
    from vgg_keras import data

    with pytest.raises(ValueError, match=r"^TFDS has no dataset 'imagenet2021'; did you mean 'imagenet2012'\?$"):
        data.get_source("imagenet2021", "train", data_dir=str(tmp_path / "tfds"))
    assert _tree(tmp_path) == []
