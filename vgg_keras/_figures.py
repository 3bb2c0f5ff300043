"""Saving matplotlib figures as PNG files without pyplot: the one figure helper of the package.

Training curves (`training.callbacks.plot_history`) and evaluation pictures
(`evaluation.plots`) are drawn on a `matplotlib.figure.Figure` and rendered by the Agg
canvas directly. No pyplot global state and no `matplotlib.use`, so plotting never switches
the backend of the caller's notebook, keeps no figure open, and needs no display.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vgg_keras.training.callbacks import write_atomically

__all__ = ["save_figure"]


def save_figure(figure: Figure, path: str, *, dpi: int = 100, tight: bool = True) -> str:
    """Saves a figure as a PNG through the Agg canvas, atomically (the user's backend is untouched).

    The PNG is written to a temporary name and renamed into place
    (`training.callbacks.write_atomically`), so a kill while saving, or a viewer reading the
    file while it is redrawn each epoch, never sees a partial picture.

    Args:
        figure: A figure made with `matplotlib.figure.Figure`, not pyplot.
        path: Output path (a ".png" file).
        dpi: Resolution.
        tight: Crop the saved picture to what is drawn (`bbox_inches="tight"`).

    Returns:
        `path`.
    """
    FigureCanvasAgg(figure)
    bbox_inches = "tight" if tight else None
    return write_atomically(
        path, lambda temporary: figure.savefig(temporary, dpi=dpi, format="png", bbox_inches=bbox_inches), fsync=False
    )
