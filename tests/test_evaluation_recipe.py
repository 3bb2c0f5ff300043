"""recipes/evaluate.py end to end on the built-in dataset with tiny models."""

import json
import os
import subprocess
import sys

from helpers import ROOT

from vgg_keras import models


def test_evaluate_recipe_on_builtin_dataset(tmp_path):
    model_path = str(tmp_path / "tiny.keras")
    models.build(
        "A",
        weights=None,
        width_multiplier=1 / 16,
        fc_units=32,
        base_size=64,
        classes=12,
        input_shape=(64, 64, 3),
        name="tiny_a",
    ).save(model_path)
    output_dir = tmp_path / "eval"
    command = [
        sys.executable,
        os.path.join(ROOT, "recipes", "evaluate.py"),
        f"--model={model_path}",
        "--model=B",
        "--width_multiplier=0.0625",
        "--fc_units=32",
        "--base_size=64",
        "--dataset=vgg_shapes/tiny",
        f"--data_dir={tmp_path / 'tfds'}",
        "--split=validation",
        "--methods=center,dense,multicrop,dense+multicrop",
        "--scales=64,80",
        "--crop_size=64",
        "--max_examples=10",
        "--batch_size=4",
        f"--output_dir={output_dir}",
        "--train_scale=64",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((output_dir / "results.json").read_text())
    names = [row["model"] for row in saved["rows"]]
    assert names == ["tiny_a"] * 4 + ["vgg13"] * 4 + ["tiny_a+vgg13"] * 4
    assert all(row["num_images"] == 10 for row in saved["rows"])
    assert [row["crops_per_image"] for row in saved["rows"][:4]] == [4, 4, 100, 104]
    assert all(0.0 <= row["top5_error"] <= row["top1_error"] <= 1.0 for row in saved["rows"])
    assert "| tiny_a+vgg13 | 64 | 64,80 | multi-crop & dense | 104 |" in result.stdout
    assert {"results.md", "confusion.md", "crop_grid.png", "predictions.png"} <= set(os.listdir(output_dir))
