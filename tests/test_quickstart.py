"""The README's main command, end to end, shrunk to a tiny dataset and one epoch."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_readme_main_command_trains_evaluates_and_exports(tmp_path):
    workdir = tmp_path / "quickstart"
    command = [
        sys.executable, "recipes/train.py", "--config=recipes/configs/quickstart.py", f"--workdir={workdir}",
        # Shrink the run: the tiny built-in config, one epoch, one test scale.
        "--config.data.name=vgg_shapes/tiny", f"--config.data.data_dir={tmp_path / 'tfds'}",
        "--config.training.epochs=1", "--config.data.mean_rgb_images=32", "--config.after.eval_scales=(64,)",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (workdir / "model.keras").is_file()
    assert list((workdir / "savedmodels").glob("*/1/saved_model.pb")), "no SavedModel was exported"
    evaluation_tables = list(workdir.rglob("results.md"))
    assert evaluation_tables and "multi-crop" in evaluation_tables[0].read_text().lower()
    assert str(workdir) in result.stdout  # the summary says where everything was written
