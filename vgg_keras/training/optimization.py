"""The paper's optimisation: SGD + momentum, weight decay, lr divided on plateaus.

Weight decay, two ways (`weight_decay_mode`):

- "l2" (default, the paper's): the penalty `wd/2 * ||w||^2` on every conv and dense kernel,
  so `wd * w` is added to the gradient *before* momentum, as in Caffe / cuda-convnet
  where the 5e-4 comes from. Biases and BatchNorm parameters are not decayed.
- "decoupled": Keras' `SGD(weight_decay=wd)`, which shrinks `w -= lr * wd * w` outside
  the momentum buffer. With momentum 0.9 the "l2" form's decay is amplified about
  1 / (1 - 0.9) = 10 times in steady state, so the decoupled value matching the paper is
  about 10x larger (5e-3); the reported loss then excludes the penalty.
"""

from __future__ import annotations

import keras

from vgg_keras import surgery
from vgg_keras.training.config import WEIGHT_DECAY_MODES

__all__ = [
    "PlateauSchedule",
    "apply_weight_decay",
    "learning_rate_variable",
    "make_optimizer",
    "scaled_learning_rate",
]


def scaled_learning_rate(
    learning_rate: float, global_batch_size: int, base_batch_size: int = 256, scale: bool = True
) -> float:
    """The linear scaling rule: lr grows with the global batch (Goyal et al., 2017).

    The paper used lr 1e-2 at batch 256; with batch 64 the same per-example step is 2.5e-3.

    Args:
        learning_rate: The learning rate at `base_batch_size`.
        global_batch_size: The batch summed over all replicas.
        base_batch_size: The batch `learning_rate` is meant for.
        scale: False returns `learning_rate` unchanged.

    Returns:
        The learning rate for `global_batch_size`.

    Raises:
        ValueError: If a batch size is not a positive integer or the lr not positive.
    """
    for name, value in (("global_batch_size", global_batch_size), ("base_batch_size", base_batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}; allowed: a positive integer.")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate={learning_rate!r}; allowed: a number > 0.")
    return learning_rate * global_batch_size / base_batch_size if scale else learning_rate


def _decayed_kernels(model: keras.Model):
    for layer in surgery.nested_layers(model):
        kernel = getattr(layer, "kernel", None)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and kernel is not None:
            yield kernel


def apply_weight_decay(model: keras.Model, weight_decay: float) -> int:
    """Adds the paper's L2 penalty `weight_decay / 2 * ||w||^2` to every conv/dense kernel.

    The gradient of the penalty is `weight_decay * w`, Caffe's definition of weight decay.
    Sets the variables' regularizers, so it works on an already built model.

    Args:
        model: The model to regularise (in place).
        weight_decay: The decay coefficient (5e-4 in the paper); 0 removes the penalty.

    Returns:
        The number of kernels regularised.

    Raises:
        ValueError: If `weight_decay` is negative.
    """
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay={weight_decay!r}; allowed: a number >= 0.")
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    count = 0
    for kernel in _decayed_kernels(model):
        kernel.regularizer = regularizer
        count += 1
    return count


def make_optimizer(
    learning_rate: float,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    weight_decay_mode: str = "l2",
    loss_scale: bool = False,
) -> keras.optimizers.Optimizer:
    """SGD with momentum; decoupled weight decay when asked (see the module docstring).

    Args:
        learning_rate: Initial learning rate (a float: the plateau schedule changes it).
        momentum: Momentum (0.9 in the paper).
        weight_decay: Decay coefficient, used here only for `weight_decay_mode="decoupled"`.
        weight_decay_mode: "l2", "decoupled" or "none".
        loss_scale: Wrap in a `LossScaleOptimizer` (float16 mixed precision).

    Returns:
        A Keras optimizer.

    Raises:
        ValueError: For an unknown `weight_decay_mode`.
    """
    if weight_decay_mode not in WEIGHT_DECAY_MODES:
        allowed = ", ".join(map(repr, WEIGHT_DECAY_MODES))
        raise ValueError(f"weight_decay_mode={weight_decay_mode!r}; allowed: {allowed}.")
    decoupled = weight_decay if weight_decay_mode == "decoupled" and weight_decay else None
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, weight_decay=decoupled)
    if decoupled:
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scale else optimizer


def learning_rate_variable(optimizer: keras.optimizers.Optimizer):
    """The variable holding `optimizer`'s current learning rate (inside a `LossScaleOptimizer` too)."""
    return getattr(optimizer, "inner_optimizer", optimizer).learning_rate


class PlateauSchedule(keras.callbacks.Callback):
    """Divides the learning rate when a validation metric stops improving, a bounded number of times.

    The paper's schedule: lr / 10 whenever validation accuracy stopped improving, 3 times in
    all. Unlike `keras.callbacks.ReduceLROnPlateau` it counts its reductions and exposes its
    state (`get_state` / `set_state`) so a resumed run continues the same schedule. It also
    writes the current rate into the epoch logs as `learning_rate`.

    Args:
        monitor: Metric in the epoch logs, e.g. "val_accuracy" (higher is better) or "val_loss".
        factor: Multiplier of the learning rate at each reduction.
        patience: Epochs without improvement tolerated before a reduction.
        min_delta: Smallest change that counts as an improvement.
        max_reductions: How many times the rate may be reduced.
        mode: "max", "min" or "auto" (max for accuracy-like names).
    """

    def __init__(
        self,
        monitor: str = "val_accuracy",
        factor: float = 0.1,
        patience: int = 2,
        min_delta: float = 1e-3,
        max_reductions: int = 3,
        mode: str = "auto",
    ):
        super().__init__()
        if not 0 < factor < 1:
            raise ValueError(f"factor={factor!r}; allowed: a number in (0, 1).")
        if mode not in ("auto", "max", "min"):
            raise ValueError(f"mode={mode!r}; allowed: 'auto', 'max', 'min'.")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.min_delta, self.max_reductions, self.mode = min_delta, max_reductions, mode
        self.best, self.wait, self.reductions = None, 0, 0

    def get_state(self) -> dict:
        """The schedule's progress: best value so far, epochs waited, reductions made."""
        return {"best": self.best, "wait": self.wait, "reductions": self.reductions}

    def set_state(self, state: dict) -> None:
        """Restores what `get_state` returned."""
        self.best, self.wait, self.reductions = state["best"], state["wait"], state["reductions"]

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(
                f"PlateauSchedule monitors {self.monitor!r}, which is not in the epoch logs "
                f"{sorted(logs)}; give fit validation data or change the monitor."
            )
        if self._improved(float(value)):
            self.best, self.wait = float(value), 0
        else:
            self.wait += 1
            if self.wait > self.patience - 1 and self.reductions < self.max_reductions:
                learning_rate = learning_rate_variable(self.model.optimizer)
                learning_rate.assign(learning_rate * self.factor)
                self.reductions += 1
                self.wait = 0
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(learning_rate_variable(self.model.optimizer)))
