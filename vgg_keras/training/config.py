"""Experiment configurations (ml_collections) and their validation.

One base config describes the paper's protocol (section 3.1); every experiment file under
`recipes/configs/` starts from `base_config()` or `paper_config()` and changes a few
fields. `validate_config` checks every field before anything is built or trained, so a
typo on the command line fails in a second with a message naming the field.
"""

from __future__ import annotations

import ml_collections

from vgg_keras import configs as configs_lib
from vgg_keras.normalization import IMAGENET_MEAN_RGB
from vgg_keras.validation import check_choice, reject

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "WEIGHT_DECAY_MODES",
    "base_config",
    "paper_config",
    "validate_config",
]

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
WEIGHT_DECAY_MODES = ("l2", "decoupled", "none")
PAPER_BATCH_SIZE = 256


def _model_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {
            "arch": "A",  # Table 1 letter or model name (vgg11 ... vgg19_bn)
            "batch_norm": False,
            "width_multiplier": 1.0,
            "fc_units": 4096,
            "dropout": 0.5,
            "kernel_initializer": "glorot_uniform",  # or "paper": N(0, 0.01^2)
        }
    )


def _data_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {
            "name": "imagenet2012",  # "builtin", "folder:/path", "tfrecord:/glob" or a TFDS name
            "train_split": "train",
            "eval_split": "validation",
            "data_dir": "",  # "" = TFDS default
            "manual_dir": "",  # where imagenet2012's ILSVRC2012_img_*.tar were put by hand
            "crop_size": 224,
            "scale_min": 256,  # training scale S; S_min < S_max is scale jittering
            "scale_max": 256,
            # Q of the per-epoch validation (centre crop); 0 = derived at run time:
            # (scale_min + scale_max) // 2, i.e. Q = S, or 384 for S in [256, 512] (Table 3).
            "eval_scale": 0,
            "flip": True,
            "color_shift_std": 0.1,
            # Mean RGB subtracted inside the model; empty = estimated from training images.
            "mean_rgb": IMAGENET_MEAN_RGB,
            "mean_rgb_images": 1024,
            "shuffle_buffer": 10_000,
            "max_eval_examples": 0,  # 0 = the whole validation split
        }
    )


def _optimizer_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {
            "learning_rate": 1e-2,  # for `base_batch_size`; scaled linearly to the global batch
            "base_batch_size": PAPER_BATCH_SIZE,
            "scale_learning_rate": True,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "weight_decay_mode": "l2",  # "l2": the paper's (through momentum); "decoupled"; "none"
            "plateau_monitor": "val_accuracy",
            "plateau_factor": 0.1,
            "plateau_patience": 2,  # epochs without improvement before dividing the lr
            "plateau_min_delta": 1e-3,
            "plateau_max_reductions": 3,
        }
    )


def _training_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {
            "batch_size": PAPER_BATCH_SIZE,  # global batch, split over replicas
            "epochs": 74,
            "steps_per_epoch": 0,  # 0 = train examples // batch_size
            "strategy": "auto",
            "tpu_address": "",
            "precision": "float32",
            "jit_compile": False,
            "steps_per_execution": 1,
            "backup_every_steps": 500,
            "seed": 0,
            "verbose": 1,  # Keras progress bars: 0 silent, 1 bar, 2 one line per epoch
        }
    )


def _init_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {
            # The paper's init of deeper nets: a trained net A (.keras) whose first four convs
            # and three FC layers are copied; "" = Glorot (or `kernel_initializer`) init.
            "from_shallower": "",
            "num_conv_layers": 4,
            # Start from any checkpoint (.keras model or .weights.h5 of the same architecture).
            "checkpoint": "",
        }
    )


def _after_training_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {
            "evaluate": False,
            "eval_methods": ("dense", "multicrop", "dense+multicrop"),
            "eval_scales": (),  # () = derived at run time: (data.eval_scale,)
            "eval_batch_size": 32,
            "export": False,
            "export_root": "",  # "" = <workdir>/savedmodels
        }
    )


def base_config() -> ml_collections.ConfigDict:
    """The paper's training protocol (section 3.1) on ImageNet, net A at S=256.

    Returns:
        A `ConfigDict` with sections `model`, `data`, `optimizer`, `training`, `init`,
        `after` and the field `experiment`.
    """
    config = ml_collections.ConfigDict()
    config.experiment = "vgg"
    config.model = _model_config()
    config.data = _data_config()
    config.optimizer = _optimizer_config()
    config.training = _training_config()
    config.init = _init_config()
    config.after = _after_training_config()
    return config


def _row_name(arch: str, scale_min: int, scale_max: int) -> str:
    scale = f"s{scale_min}" if scale_min == scale_max else f"s{scale_min}_{scale_max}"
    return f"{arch.lower().replace('-', '_')}_{scale}"


def paper_config(
    arch: str, scale_min: int = 256, scale_max: int | None = None, runs_dir: str = "runs"
) -> ml_collections.ConfigDict:
    """A row of Table 3: configuration `arch` trained at S (or S in [S_min, S_max]).

    Follows section 3.1: at S=256, A trains from random init and the deeper nets start from
    the trained A (`runs/a_s256/model.keras`); S=384 starts from the same net at S=256 with
    lr 1e-3; scale jittering [256, 512] fine-tunes the S=384 net (lr 1e-3). Validation
    uses Q=S for fixed S and Q=384 for jittered S (Table 3's single test scale); both that
    and the after-training evaluation scale stay derived (filled by `validate_config`), so
    command-line overrides of the scales carry over.

    Args:
        arch: "A", "A-LRN", "B", "C", "D" or "E".
        scale_min: S, or the lower end of the jitter range.
        scale_max: Upper end of the jitter range (default: `scale_min`, fixed scale).
        runs_dir: Where the runs this one starts from live.

    Returns:
        The experiment's `ConfigDict`.
    """
    scale_max = scale_min if scale_max is None else scale_max
    config = base_config()
    config.experiment = _row_name(arch, scale_min, scale_max)
    config.model.arch = arch
    config.data.scale_min, config.data.scale_max = scale_min, scale_max
    # Table 3 is dense evaluation at one test scale: Q = data.eval_scale, derived at run time
    # from S so that overriding --config.data.scale_* or --config.data.eval_scale follows.
    config.after.evaluate = True
    config.after.eval_methods = ("dense",)
    if scale_min != scale_max:
        config.init.checkpoint = f"{runs_dir}/{_row_name(arch, 384, 384)}/model.keras"
        config.optimizer.learning_rate = 1e-3
    elif scale_min != 256:
        config.init.checkpoint = f"{runs_dir}/{_row_name(arch, 256, 256)}/model.keras"
        config.optimizer.learning_rate = 1e-3
    elif arch.upper() not in ("A", "A-LRN"):
        config.init.from_shallower = f"{runs_dir}/a_s256/model.keras"
    return config


# --------------------------------------------------------------------------- validation


def _fail(field: str, value, allowed: str) -> None:
    raise reject(f"config.{field}", value, allowed)


def _check_choice(config, field: str, allowed) -> None:
    check_choice(f"config.{field}", _get(config, field), allowed)


def _get(config, field: str):
    value = config
    for part in field.split("."):
        value = value[part]
    return value


def _check_number(config, field: str, minimum=None, maximum=None, integer=False, open_min=False) -> None:
    value = _get(config, field)
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int,) if integer else (int, float)):
        _fail(field, value, kind)
    too_small = minimum is not None and (value <= minimum if open_min else value < minimum)
    if too_small or (maximum is not None and value > maximum):
        low = "" if minimum is None else (f" > {minimum}" if open_min else f" >= {minimum}")
        high = "" if maximum is None else f" <= {maximum}"
        _fail(field, value, f"{kind}{low}{high}")


def _check_model(config) -> None:
    try:
        configs_lib.resolve_model_name(config.model.arch)
    except (ValueError, KeyError):
        _fail("model.arch", config.model.arch, f"a Table 1 letter or one of {list(configs_lib.MODEL_NAMES)}")
    _check_number(config, "model.width_multiplier", 0, open_min=True)
    _check_number(config, "model.fc_units", 1, integer=True)
    _check_number(config, "model.dropout", 0, 0.999)


def _check_data(config) -> None:
    if not isinstance(config.data.name, str) or not config.data.name:
        _fail("data.name", config.data.name, "a non-empty dataset name")
    _check_number(config, "data.crop_size", 32, integer=True)
    if config.data.crop_size % 32:
        _fail("data.crop_size", config.data.crop_size, "a multiple of 32 (five 2x2 pools)")
    for field in ("data.scale_min", "data.scale_max"):
        _check_number(config, field, config.data.crop_size, integer=True)
    if config.data.scale_max < config.data.scale_min:
        _fail("data.scale_max", config.data.scale_max, f">= data.scale_min={config.data.scale_min}")
    if config.data.eval_scale == 0:  # derived: Q = S, or the middle of the jitter range (Table 3)
        config.data.eval_scale = (config.data.scale_min + config.data.scale_max) // 2
    _check_number(config, "data.eval_scale", config.data.crop_size, integer=True)
    _check_number(config, "data.color_shift_std", 0)
    mean = config.data.mean_rgb
    if mean and (len(mean) != 3 or not all(isinstance(m, (int, float)) for m in mean)):
        _fail("data.mean_rgb", mean, "three numbers (R, G, B) or () to estimate it")
    _check_number(config, "data.mean_rgb_images", 1, integer=True)
    _check_number(config, "data.shuffle_buffer", 0, integer=True)
    _check_number(config, "data.max_eval_examples", 0, integer=True)


def _check_optimizer(config) -> None:
    _check_number(config, "optimizer.learning_rate", 0, open_min=True)
    _check_number(config, "optimizer.base_batch_size", 1, integer=True)
    _check_number(config, "optimizer.momentum", 0, 0.999)
    _check_number(config, "optimizer.weight_decay", 0)
    _check_choice(config, "optimizer.weight_decay_mode", WEIGHT_DECAY_MODES)
    if not config.optimizer.plateau_monitor:
        _fail("optimizer.plateau_monitor", config.optimizer.plateau_monitor, "a metric name such as 'val_accuracy'")
    _check_number(config, "optimizer.plateau_factor", 0, 0.999, open_min=True)
    _check_number(config, "optimizer.plateau_patience", 0, integer=True)
    _check_number(config, "optimizer.plateau_min_delta", 0)
    _check_number(config, "optimizer.plateau_max_reductions", 0, integer=True)


def _check_training(config) -> None:
    _check_number(config, "training.batch_size", 1, integer=True)
    _check_number(config, "training.epochs", 1, integer=True)
    _check_number(config, "training.steps_per_epoch", 0, integer=True)
    _check_choice(config, "training.strategy", STRATEGIES)
    _check_choice(config, "training.precision", PRECISIONS)
    _check_number(config, "training.steps_per_execution", 1, integer=True)
    _check_number(config, "training.backup_every_steps", 1, integer=True)
    _check_choice(config, "training.verbose", (0, 1, 2))
    if config.training.strategy == "tpu" and not config.training.tpu_address:
        _fail(
            "training.tpu_address", config.training.tpu_address, "the TPU's name or grpc:// address with strategy='tpu'"
        )


def _check_after(config) -> None:
    if not config.after.eval_scales:  # derived: the validation scale
        config.after.eval_scales = (config.data.eval_scale,)
    scales = config.after.eval_scales
    if not isinstance(scales, (tuple, list)) or not all(
        isinstance(q, int) and not isinstance(q, bool) and q >= config.data.crop_size for q in scales
    ):
        _fail(
            "after.eval_scales",
            scales,
            f"integers >= data.crop_size={config.data.crop_size}, or () for (data.eval_scale,)",
        )
    _check_number(config, "after.eval_batch_size", 1, integer=True)


def _check_init(config) -> None:
    if config.init.from_shallower and config.init.checkpoint:
        raise ValueError(
            f"config.init.from_shallower={config.init.from_shallower!r} and config.init.checkpoint="
            f"{config.init.checkpoint!r} are both set; allowed: at most one warm start."
        )
    _check_number(config, "init.num_conv_layers", 0, integer=True)


def validate_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Checks every field of a training config and fills its derived fields; nothing is built or read.

    Derived fields are left at 0 / () in the configs and filled here, in place, from the
    fields they follow, so that command-line overrides carry over and `config.json` records
    the values used: `data.eval_scale` (0: `(scale_min + scale_max) // 2`) and
    `after.eval_scales` (`()`: `(data.eval_scale,)`).

    Args:
        config: A config made by `base_config` / `paper_config` (possibly overridden).

    Returns:
        The same config, for chaining.

    Raises:
        ValueError: Naming the first invalid field, its value and what is allowed.
        TypeError: If `config` is not a `ConfigDict`.
    """
    if not isinstance(config, ml_collections.ConfigDict):
        raise TypeError(f"config must be an ml_collections.ConfigDict; received {type(config).__name__}.")
    missing = [s for s in ("model", "data", "optimizer", "training", "init", "after") if s not in config]
    if missing:
        raise ValueError(f"config lacks the sections {missing}; start from vgg_keras.training.base_config().")
    _check_model(config)
    _check_data(config)
    _check_optimizer(config)
    _check_training(config)
    _check_after(config)
    _check_init(config)
    return config
