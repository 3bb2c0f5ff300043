"""README's Quick start: its two command lines, `.ci/run` (CI) and the main command, end to end
shrunk to a tiny dataset and one epoch, then `recipes/export.py` on the same model.
"""

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
INSTALL = "pip install -e . && "
# What tf.saved_model.save logs at INFO level unless the export lowers it.
EXPORT_CHATTER = re.compile(r"input_1\b|Assets written|Writing fingerprint|Sharding callback")


def readme_quick_start() -> list[str]:
    """The command lines of README's Quick start code block (comments stripped)."""
    section = (ROOT / "README.md").read_text().split("\n## Quick start\n", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = (line.split("#", 1)[0].strip() for line in block.splitlines())
    return [line for line in lines if line]


def test_readme_quick_start_is_two_commands_and_the_second_is_ci():
    commands = readme_quick_start()
    assert len(commands) == 2, commands
    install_and_train, tests = commands
    assert install_and_train.startswith(INSTALL + "python recipes/train.py ")
    assert tests == "bash .ci/run"
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'python -m pip install --quiet -e ".[test]"' in ci
    assert "python -m pytest" in ci


def _run_ci(tmp_path, pytest_summary: str, pytest_status: int = 0) -> subprocess.CompletedProcess:
    """`bash .ci/run` with a stand-in `python` that installs nothing and prints `pytest_summary`."""
    shim = tmp_path / "bin" / "python"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text('#!/usr/bin/env bash\nif [ "$2" = pytest ]; then echo "$SUMMARY"; exit "$STATUS"; fi\n')
    shim.chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
        SUMMARY=pytest_summary,
        STATUS=str(pytest_status),
    )
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_ci_fails_when_a_test_is_skipped_or_none_ran(tmp_path):
    assert _run_ci(tmp_path, "==== 12 passed in 3.10s ====").returncode == 0
    skipped = _run_ci(tmp_path, "==== 11 passed, 1 skipped in 3.10s ====")
    assert skipped.returncode == 1 and "skipped" in skipped.stderr
    assert _run_ci(tmp_path, "==== 1 failed, 11 passed in 3.10s ====", 1).returncode == 1
    assert _run_ci(tmp_path, "==== no tests ran in 0.01s ====", 5).returncode == 1


def _main_command(workdir: pathlib.Path) -> list[str]:
    """README's main command (without its install), with this test's workdir."""
    command = shlex.split(readme_quick_start()[0][len(INSTALL) :])
    assert command[:2] == ["python", "recipes/train.py"] and "--workdir=runs/quickstart" in command
    return [sys.executable, *(f"--workdir={workdir}" if arg.startswith("--workdir=") else arg for arg in command[1:])]


@pytest.mark.slow
def test_readme_main_command_trains_evaluates_and_exports(tmp_path):
    workdir = tmp_path / "quickstart"
    command = _main_command(workdir) + [
        # Shrink the run: the tiny built-in config, one epoch, one test scale.
        "--config.data.name=vgg_shapes/tiny",
        f"--config.data.data_dir={tmp_path / 'tfds'}",
        "--config.training.epochs=1",
        "--config.data.mean_rgb_images=32",
        "--config.after.eval_scales=(64,)",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (workdir / "model.keras").is_file()
    exported = list((workdir / "savedmodels").glob("*/1/vgg_keras_export.json"))
    assert exported, "no SavedModel was exported"
    evaluation_tables = list(workdir.rglob("results.md"))
    assert evaluation_tables and "multi-crop" in evaluation_tables[0].read_text().lower()
    assert str(workdir) in result.stdout  # the summary says where everything was written
    assert not EXPORT_CHATTER.findall(result.stdout + result.stderr)

    # recipes/export.py on the same model serves the same crops as the quick start's export.
    again = subprocess.run(
        [
            sys.executable,
            "recipes/export.py",
            f"--model={workdir / 'model.keras'}",
            f"--export_root={tmp_path / 'savedmodels'}",
            "--model_name=again",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    assert not EXPORT_CHATTER.findall(again.stdout + again.stderr)
    first = json.loads(exported[0].read_text())
    second = json.loads((tmp_path / "savedmodels" / "again" / "1" / "vgg_keras_export.json").read_text())
    assert (second["image_size"], second["resize_size"]) == (first["image_size"], first["resize_size"]) == (64, 72)
