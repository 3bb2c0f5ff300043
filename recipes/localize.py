"""Trains a localisation net (Appendix A) from a classifier and reports its localisation error.

    python recipes/localize.py --config=recipes/configs/localization.py --workdir=runs/localization
    python recipes/localize.py --config=recipes/configs/localization.py --workdir=runs/loc_scr \
        --config.mode=scr --config.classifier=runs/quickstart/model.keras

Writes `<workdir>/localizer.keras`, `localization.md` / `.json` (top-1 / top-5 localisation
error: class right and IoU > 0.5) and `localization_boxes.png` (true vs predicted boxes).
"""

import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

from absl import app, flags
from ml_collections import config_flags

from vgg_keras import cli, preflight

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (recipes/configs/localization.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the localizer and the reports are written.")
flags.mark_flags_as_required(["config", "workdir"])


def check():
    config = _CONFIG.value
    if not os.path.isfile(config.classifier):
        raise app.UsageError(
            f"config.classifier={config.classifier!r} does not exist; train one first "
            "(python recipes/train.py --config=recipes/configs/quickstart.py --workdir=runs/quickstart)."
        )
    for split in (config.data.train_split, config.data.eval_split):
        preflight.check_source(config.data.name, split, config.data.data_dir)


def _source(config, split):
    from vgg_keras import data  # pylint: disable=import-outside-toplevel

    return data.get_source(config.data.name, split, data_dir=config.data.data_dir)


def main(argv):
    del argv
    # TensorFlow: after check().  pylint: disable=import-outside-toplevel
    from vgg_keras import localization
    from vgg_keras.evaluation import forward

    config, workdir = _CONFIG.value, _WORKDIR.value
    classifier = forward.load_model(config.classifier)
    localizer = localization.build_localizer(classifier, config.mode)
    train_source = _source(config, config.data.train_split)
    batches = localization.box_train_dataset(
        train_source,
        batch_size=config.training.batch_size,
        crop_size=config.data.crop_size,
        scale=(config.data.scale_min, config.data.scale_max),
        flip=config.data.flip,
        shuffle_buffer=config.data.shuffle_buffer,
        seed=config.training.seed,
    )
    steps = config.training.steps_per_epoch or max(1, (train_source.num_examples or 0) // config.training.batch_size)
    localization.train_localizer(
        localizer,
        batches,
        epochs=config.training.epochs,
        steps_per_epoch=steps,
        learning_rate=config.training.learning_rate,
        weight_decay=config.training.weight_decay,
        verbose=config.training.verbose,
    )
    os.makedirs(workdir, exist_ok=True)
    localizer.save(os.path.join(workdir, "localizer.keras"))
    report = localization.evaluate_localization(
        localizer,
        _source(config, config.data.eval_split),
        classifier=classifier,
        scale=config.data.eval_scale,
        crop_size=config.data.crop_size,
        batch_size=config.eval.batch_size,
        top_k=config.eval.top_k,
        max_examples=config.eval.max_examples or None,
        output_dir=workdir,
        num_pictures=config.eval.num_pictures,
    )
    print(report.to_markdown())


if __name__ == "__main__":
    cli.run(main, check=check)
