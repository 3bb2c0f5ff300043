"""benchmarks/deployment.py --quick: the table holds each requested format, and a float32 TFLite
file (on XNNPACK, whole graph but the caffe channel flip) agrees with Keras on every image.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


@pytest.fixture(name="deployment")
def fixture_deployment(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)  # the script imports its sibling _timing
    yield importlib.import_module("deployment")
    sys.modules.pop("deployment", None)


def _rows(output: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in output.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [cell.strip() for cell in cells[1:]] for cells in rows[1:]}


def test_quick_run_prints_every_format_and_float32_tflite_agrees(deployment, capsys, tmp_path):
    deployment.main(
        ["--quick", "--formats=tflite_float32", "--batch_sizes=1,2", "--repeats=1", f"--workdir={tmp_path}"]
    )
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == ["keras_float32", "tflite_float32"]  # the reference is always measured
    images_per_s, ratio, _, _, agreement, max_difference, note = rows["tflite_float32"]
    assert float(images_per_s) > 0 and ratio.endswith("x")
    assert float(agreement) == 1.0 and float(max_difference) < 1e-5
    assert "XNNPACK: 1 partition(s), ops outside: REVERSE_V2 x1" in note  # the caffe RGB->BGR flip
    assert "CONV_2D float32 x float32: 8" in note


def test_bad_flags_name_what_is_allowed(deployment, capsys):
    with pytest.raises(SystemExit):
        deployment.parse_args(["--quick", "--formats=tflite_int4"])
    assert "tflite_int4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        deployment.parse_args(["--batch_sizes=1"])  # agreement needs a trained model
    assert "--trained_model is required" in capsys.readouterr().err
