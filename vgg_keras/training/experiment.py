"""Train, then evaluate with the paper's protocol and export for serving: one experiment.

`run_experiment` is what `recipes/train.py` runs: `train`, then (when `config.after`
asks) `vgg_keras.evaluation.evaluate` with dense / multi-crop evaluation on the validation
split and `vgg_keras.export.export_saved_model`, and a summary of where everything went.

The stages after training (`check_stages`, `evaluate_run`, `export_run`, `timed`) are public:
`vgg_keras.training.finetune` runs them on its fine-tuned model too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib
import os
import shutil
import tempfile
import time

import ml_collections

from vgg_keras.training import trainer

__all__ = ["ExperimentResult", "check_stages", "evaluate_run", "export_run", "run_experiment", "timed"]


@dataclasses.dataclass
class ExperimentResult:
    """What `run_experiment` produced.

    Attributes:
        train: The `TrainResult`.
        report: The `EvaluationReport` (None when not evaluated).
        export_dir: The SavedModel version directory (None when not exported).
        seconds: Wall time of each stage, `{"train": s, "evaluate": s, "export": s}`.
    """

    train: trainer.TrainResult
    report: object = None
    export_dir: str | None = None
    seconds: dict = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        """A human-readable list of results and output paths."""
        paths = self.train.paths
        lines = [
            f"Trained {self.train.steps} steps; workdir {paths.workdir}:",
            f"  resolved config  {paths.config}",
            f"  metrics (CSV)    {paths.csv}",
            f"  curves (PNG)     {paths.plot}",
            f"  best checkpoint  {paths.best}",
            f"  final model      {paths.final}",
            f"  backup (resume)  {paths.backup}",
        ]
        if os.path.isdir(paths.tensorboard):
            lines.append(f"  TensorBoard      {paths.tensorboard}")
        if self.report is not None:
            lines += [
                "",
                "Evaluation (validation split):",
                self.report.to_markdown(),
                f"  written to {os.path.join(paths.workdir, 'eval')}",
            ]
        if self.export_dir:
            lines += ["", f"SavedModel for TF Serving: {self.export_dir}"]
        lines += ["", "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())]
        return "\n".join(lines)


@contextlib.contextmanager
def _staged_directory(path: str):
    """Yields a temporary sibling of `path` to fill; on success it replaces `path`.

    A kill while the reports are written leaves the previous `path` (or none) and a
    `.tmp-*` folder; the old folder is moved aside only for the two renames.
    """
    parent, name = os.path.split(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    for stale in glob.glob(os.path.join(parent, f".tmp-*-{name}")):
        shutil.rmtree(stale, ignore_errors=True)
    staging = tempfile.mkdtemp(prefix=".tmp-", suffix=f"-{name}", dir=parent)
    try:
        yield staging
        old = f"{staging}.old"
        if os.path.exists(path):
            os.replace(path, old)
        os.replace(staging, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def evaluate_run(result: trainer.TrainResult, config: ml_collections.ConfigDict):
    """The paper's evaluation of a run's model on its validation data, as `config.after` asks.

    Args:
        result: The run (its model, data and workdir).
        config: Its config (`data` and `after` sections).

    Returns:
        The `EvaluationReport`, also written to `<workdir>/eval/` (swapped into place at once).
    """
    from vgg_keras import evaluation  # pylint: disable=import-outside-toplevel

    d, a = config.data, config.after
    train_scale = d.scale_min if d.scale_min == d.scale_max else (d.scale_min, d.scale_max)
    with _staged_directory(os.path.join(result.paths.workdir, "eval")) as output_dir:
        return evaluation.evaluate(
            result.model,
            result.data.eval_source,
            methods=tuple(a.eval_methods),
            scales=tuple(a.eval_scales),
            crop_size=d.crop_size,
            batch_size=a.eval_batch_size,
            output_dir=output_dir,
            model_names=[config.experiment],
            train_scale=train_scale,
            progress=config.training.verbose == 1,
        )


def export_run(result: trainer.TrainResult, config: ml_collections.ConfigDict) -> str:
    """Exports a run's model as a SavedModel for TF Serving (`config.after.export_root`).

    Args:
        result: The run (its model, class names and workdir).
        config: Its config.

    Returns:
        The SavedModel version directory (default root: `<workdir>/savedmodels`).
    """
    from vgg_keras import export  # pylint: disable=import-outside-toplevel

    root = config.after.export_root or os.path.join(result.paths.workdir, "savedmodels")
    return export.export_saved_model(
        result.model,
        root,
        model_name=config.experiment,
        mode="center",
        image_size=config.data.crop_size,
        resize_size=config.data.eval_scale,
        class_names=list(result.data.class_names),
    )


def timed(seconds: dict, stage: str, fn, *args):
    """`fn(*args)`, its wall time stored in `seconds[stage]`.

    Args:
        seconds: Where the time goes.
        stage: Its key.
        fn: The stage.
        *args: Its arguments.

    Returns:
        What `fn` returned.
    """
    start = time.perf_counter()
    value = fn(*args)
    seconds[stage] = time.perf_counter() - start
    return value


def check_stages(config: ml_collections.ConfigDict) -> None:
    """Fails before training when a stage `config.after` asks for cannot run.

    Args:
        config: A training or fine-tuning config.

    Raises:
        ImportError: If `vgg_keras.evaluation` or `vgg_keras.export` is asked for and cannot be imported.
    """
    for stage, module in (("evaluate", "vgg_keras.evaluation"), ("export", "vgg_keras.export")):
        if not config.after[stage]:
            continue
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ImportError(
                f"config.after.{stage}=True needs {module}, which cannot be imported ({error}); "
                f"set --config.after.{stage}=False to train without it."
            ) from error


def run_experiment(config: ml_collections.ConfigDict, workdir: str) -> ExperimentResult:
    """Trains (resuming if possible), then evaluates and exports as `config.after` asks.

    Args:
        config: An experiment config.
        workdir: The run's directory.

    Returns:
        An `ExperimentResult`; `summary()` lists where everything was written.

    Raises:
        ValueError: Before training, for a bad config.
        FileNotFoundError: Before training, for a missing dataset or warm-start file.
        ImportError: Before training, if a stage `config.after` asks for cannot be imported.
        FloatingPointError: If the loss became NaN/Inf (the last good backup is kept).
    """
    check_stages(config)
    seconds: dict = {}
    result = ExperimentResult(timed(seconds, "train", trainer.train, config, workdir), seconds=seconds)
    if config.after.evaluate:
        result.report = timed(seconds, "evaluate", evaluate_run, result.train, config)
    if config.after.export:
        result.export_dir = timed(seconds, "export", export_run, result.train, config)
    return result
