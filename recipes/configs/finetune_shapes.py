"""Built-in demonstration: the quick start's model fine-tuned on 6 new classes, 10 images each.

    python recipes/train.py --config=recipes/configs/quickstart.py --workdir=runs/quickstart
    python recipes/finetune.py --config=recipes/configs/finetune_shapes.py --workdir=runs/shapes_ft \
        --source=runs/quickstart/best.keras

`vgg_shapes/novel` (generated, no download) holds pentagons, octagons, diamonds, crescents,
trapezoids and dotted squares: none of the quick start's 12 classes, and only 60 training
images. The same net trained from scratch on the same 60 images
(recipes/configs/finetune_shapes_scratch.py) is the baseline; README shows both.
"""

from vgg_keras.training.finetune_config import finetune_config


def get_config():
    config = finetune_config()
    config.experiment = "vgg_shapes_finetune"
    config.finetune.source = "runs/quickstart/best.keras"
    config.finetune.head = "predictions"  # keep the quick start's fc1/fc2, new 6-way soft-max
    config.finetune.phase1_epochs = 20
    config.finetune.phase2_epochs = 20
    config.finetune.unfreeze = "block4,block5,fc"
    config.data.name = "vgg_shapes/novel"
    config.data.crop_size = 64  # the quick start's input size (its dense fc1 needs it)
    config.data.scale_min, config.data.scale_max = 64, 80
    config.data.eval_scale = 72
    config.data.shuffle_buffer = 1000
    config.optimizer.learning_rate = 0.2  # at batch 256: 0.0125 at batch 16, as the quick start
    config.optimizer.plateau_patience = 5
    config.training.batch_size = 16
    config.training.precision = "float32"
    config.training.backup_every_steps = 30
    config.training.verbose = 2
    config.after.eval_methods = ("center", "dense", "multicrop", "dense+multicrop")
    config.after.eval_scales = (64, 72, 80)
    return config
