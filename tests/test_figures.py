"""The one figure helper (vgg_keras._figures): no backend switch, no pyplot state, atomic PNG files."""

import os
import sys

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from vgg_keras import _figures
from vgg_keras.evaluation import plots
from vgg_keras.training import callbacks

HISTORY = {
    "epoch": [0, 1, 2],
    "loss": [2.0, 1.5, 1.2],
    "val_loss": [2.1, 1.7, 1.4],
    "accuracy": [0.1, 0.3, 0.5],
    "val_accuracy": [0.1, 0.2, 0.4],
    "learning_rate": [0.01, 0.01, 0.001],
}


@pytest.fixture
def svg_backend():
    """A backend that is not Agg, as a notebook's would be; restored afterwards."""
    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    yield "svg"
    matplotlib.use(previous)


def _open_figures() -> list:
    pyplot = sys.modules.get("matplotlib.pyplot")  # plotting must not import it either
    return pyplot.get_fignums() if pyplot is not None else []


@pytest.mark.parametrize(
    "draw, size",
    [
        (lambda path: callbacks.plot_history(HISTORY, path), (1170, 324)),  # 13 x 3.6 inches at 90 dpi
        (lambda path: plots.confusion_figure(np.array([[3, 1], [0, 4]]), ["cat", "dog"], path, title="A"), None),
    ],
)
def test_plotting_keeps_the_callers_backend_and_writes_a_png(svg_backend, tmp_path, draw, size):
    open_before = _open_figures()
    path = str(tmp_path / "picture.png")
    assert draw(path) == path
    assert matplotlib.get_backend() == svg_backend
    assert _open_figures() == open_before
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG" and (size is None or image.size == size)
    assert os.listdir(tmp_path) == ["picture.png"], "no temporary file is left behind"


def test_save_figure_replaces_the_file_atomically(tmp_path, monkeypatch):
    path = str(tmp_path / "curves.png")
    callbacks.plot_history(HISTORY, path)
    with open(path, "rb") as handle:
        first = handle.read()

    def killed_while_saving(figure, filename, **kwargs):
        with open(filename, "wb") as handle:
            handle.write(b"\x89PNG half a picture")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", killed_while_saving)
    with pytest.raises(KeyboardInterrupt):
        _figures.save_figure(Figure(), path)
    with open(path, "rb") as handle:
        assert handle.read() == first, "the previous picture survives an interrupted save"
    assert os.listdir(tmp_path) == ["curves.png"]
