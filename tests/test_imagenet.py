"""The ImageNet path through TFDS' imagenet2012 builder, on a tiny manual dir in the real archives' layout.

`vgg_keras.data.testing.write_imagenet_archives` writes ILSVRC2012_img_train.tar (one tar
per class inside) and ILSVRC2012_img_val.tar (labelled by TFDS' own validation list).
"""

import json
import os
import re
import shutil

import pytest
from test_recipes_cli import CONFIGS, assert_one_line_error, run_recipe

from vgg_keras import data
from vgg_keras.data import testing

TRAIN_TAR, VAL_TAR = "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"
# The documented command (README "Training", recipes/configs/a_s256.py) at a tiny size.
_TINY = [
    "--config.model.width_multiplier=0.0625",
    "--config.model.fc_units=32",
    "--config.data.crop_size=32",
    "--config.data.scale_min=40",
    "--config.data.scale_max=40",
    "--config.training.batch_size=4",
    "--config.training.epochs=1",
    "--config.training.verbose=2",
    "--config.after.eval_batch_size=8",
]


def _train_command(tmp_path, *extra):
    return [
        f"--config={os.path.join(CONFIGS, 'a_s256.py')}",
        "--workdir=runs/a_s256",
        f"--config.data.data_dir={tmp_path / 'tfds'}",
        f"--config.data.manual_dir={tmp_path / 'imagenet'}",
        *_TINY,
        *extra,
    ]


def test_missing_archives_are_named_with_the_manual_dir(tmp_path):
    testing.write_imagenet_archives(str(tmp_path / "imagenet"), train=False)
    result = run_recipe("train", *_train_command(tmp_path), cwd=tmp_path)
    line = assert_one_line_error(result, TRAIN_TAR, str(tmp_path / "imagenet"))
    assert VAL_TAR not in line.split("missing")[0]  # only the missing archive is named as missing
    assert not (tmp_path / "tfds").exists() and not (tmp_path / "runs").exists()
    result = run_recipe(
        "evaluate",
        "--model=vgg16",
        "--dataset=imagenet2012",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--manual_dir={tmp_path / 'nowhere'}",
        cwd=tmp_path,
    )
    assert_one_line_error(result, VAL_TAR, f"{tmp_path / 'nowhere'}, which does not exist")
    with pytest.raises(FileNotFoundError, match=re.escape(TRAIN_TAR)):  # the library says the same
        data.get_source("imagenet2012", "train", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "imagenet"))
    assert not (tmp_path / "tfds").exists()


def test_half_prepared_dataset_says_what_to_delete_and_the_retry_works(tmp_path):
    data_dir, manual_dir = str(tmp_path / "tfds"), str(tmp_path / "imagenet")
    testing.write_imagenet_archives(manual_dir, train=False)
    # Evaluating with only the validation archive works (TFDS prepares that split alone) ...
    validation = data.get_source("imagenet2012", "validation", data_dir=data_dir, manual_dir=manual_dir)
    assert (validation.num_examples, validation.num_classes) == (6, 1000)
    # ... but TFDS never adds the train split later, even once its archive is there.
    testing.write_imagenet_archives(manual_dir)
    with pytest.raises(FileNotFoundError, match="prepared without its 'train' split") as error:
        data.get_source("imagenet2012", "train", data_dir=data_dir, manual_dir=manual_dir)
    folder = re.search(r"delete (\S+) and rerun", str(error.value))[1]
    assert folder == os.path.join(data_dir, "imagenet2012", "5.1.0")
    result = run_recipe("train", *_train_command(tmp_path), cwd=tmp_path)
    assert_one_line_error(result, f"delete {folder} and rerun", manual_dir)
    shutil.rmtree(folder)  # as the message says
    train = data.get_source("imagenet2012", "train", data_dir=data_dir, manual_dir=manual_dir)
    validation = data.get_source("imagenet2012", "validation", data_dir=data_dir, manual_dir=manual_dir)
    assert (train.num_examples, validation.num_examples) == (6 * 3, 6)
    labels = sorted(int(example["label"]) for example in train.dataset)
    assert labels == sorted(int(example["label"]) for example in validation.dataset for _ in range(3))


@pytest.mark.slow  # two recipe subprocesses: prepare, train 1 epoch, evaluate (~1 min)
def test_documented_train_and_evaluate_commands(tmp_path):
    testing.write_imagenet_archives(str(tmp_path / "imagenet"))
    result = run_recipe("train", *_train_command(tmp_path, "--config.data.eval_scale=48"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # Quiet by default: no absl/TensorFlow INFO lines (TFDS logs several when it opens a dataset).
    assert not re.search(r"^I\d{4} |INFO:", result.stderr, re.MULTILINE), result.stderr[-3000:]
    workdir = tmp_path / "runs" / "a_s256"
    config = json.loads((workdir / "config.json").read_text())
    # The derived fields followed --config.data.eval_scale=48, and config.json shows them.
    assert (config["data"]["eval_scale"], config["after"]["eval_scales"]) == (48, [48])
    rows = json.loads((workdir / "eval" / "results.json").read_text())["rows"]
    assert [(row["method"], row["scales"], row["num_images"]) for row in rows] == [("dense", [48], 6)]

    result = run_recipe(
        "evaluate",
        f"--model={workdir / 'model.keras'}",
        "--dataset=imagenet2012",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--manual_dir={tmp_path / 'imagenet'}",
        "--methods=center",
        "--scales=40",
        "--crop_size=32",
        "--output_dir=eval",
        "--verbosity=0",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^I\d{4} .*(dataset_info|Reusing dataset|Constructing tf.data)", result.stderr, re.MULTILINE)
    rows = json.loads((tmp_path / "eval" / "results.json").read_text())["rows"]
    assert [(row["method"], row["num_images"]) for row in rows] == [("center", 6)]
