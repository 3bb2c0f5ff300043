"""benchmarks/serving.py --breakdown: every part of the image signatures is timed, next to the
bare model and the signatures themselves, in one table per batch size.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
PARTS = [
    "bare",
    "bare, input signature",
    "call",
    "decode",
    "decode + crop",
    "crop (uint8 batch)",
    "outputs",
    "serving_default",
    "predict_image_tensor",
    "predict_float",
]


@pytest.fixture(name="serving")
def fixture_serving(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)  # the script imports its sibling _timing
    yield importlib.import_module("serving")
    sys.modules.pop("serving", None)


def test_breakdown_times_every_part_against_the_bare_model(serving, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["serving.py", "--models=quickstart", "--batches=2", "--rounds=1", "--breakdown"])
    serving.main()
    out = capsys.readouterr().out
    assert "quickstart, batch 2:" in out
    rows = [line.strip("|").split("|") for line in out.splitlines() if line.startswith("| ")][1:]
    assert [cells[0].strip() for cells in rows] == PARTS
    assert all(float(cells[1]) > 0 for cells in rows)  # ms per batch
    assert rows[0][2].strip() == "1.00"  # shares are of the bare model's time
