"""Quick start: a narrow VGG-A on the built-in dataset, trained, evaluated and exported in minutes on a CPU.

    python recipes/train.py --config=recipes/configs/quickstart.py --workdir=runs/quickstart

The paper's protocol at a small size (why each value: recipes/README.md, "Quick start"):
scale-jittered 64 px crops of the 12-class `vgg_shapes` images, SGD + momentum, weight
decay, lr divided on plateaus; then dense + multi-crop evaluation at three scales and a
SavedModel export.
"""

from vgg_keras.training import config as config_lib


def get_config():
    config = config_lib.base_config()
    config.experiment = "vgg_quickstart"
    config.model.arch = "A"
    config.model.batch_norm = True
    config.model.width_multiplier = 1 / 8
    config.model.fc_units = 256
    config.model.dropout = 0.0  # see recipes/README.md: 0.5 stalls a 256-unit head for many epochs
    config.data.name = "builtin"
    config.data.crop_size = 64
    config.data.scale_min, config.data.scale_max = 64, 80
    config.data.eval_scale = 72
    config.data.mean_rgb = ()  # estimated from the training images
    config.data.shuffle_buffer = 3000
    config.optimizer.learning_rate = 0.2  # at batch 256, i.e. 0.05 at batch 64
    config.optimizer.plateau_patience = 3
    config.training.batch_size = 64
    config.training.epochs = 45
    config.training.precision = "float32"
    config.training.backup_every_steps = 100
    config.training.verbose = 2
    config.after.evaluate = True
    config.after.eval_methods = ("center", "dense", "multicrop", "dense+multicrop")
    config.after.eval_scales = (64, 72, 80)
    config.after.export = True
    return config
