"""Fine-tune VGG16 (ImageNet weights) on an image folder: the keras.io transfer-learning schedule.

    python recipes/finetune.py --config=recipes/configs/finetune.py --workdir=runs/flowers \
        --data=folder:/data/flowers

Phase 1 trains a new soft-max layer on top of the pretrained fc1/fc2 with everything else
frozen; phase 2 unfreezes block5 and fc1/fc2 at a tenth of the learning rate. 224 px crops
of images rescaled to a smallest side in [256, 320], evaluation at Q=256 (dense and
multi-crop), a confusion matrix and a SavedModel. Without <folder>/validation, 20% of each
class is held out (seeded).
"""

from vgg_keras.training.finetune_config import finetune_config


def get_config():
    config = finetune_config()
    config.experiment = "vgg16_finetune"
    config.model.arch = "vgg16"
    config.finetune.source = "imagenet"
    config.data.name = "folder:/path/to/your/images"  # --data=folder:/your/images
    config.data.crop_size = 224
    config.data.scale_min, config.data.scale_max = 256, 320
    config.data.eval_scale = 256
    config.optimizer.learning_rate = 0.08  # 0.01 at batch 32 (linear scaling from 256)
    config.training.batch_size = 32
    config.finetune.phase1_epochs = 5
    config.finetune.phase2_epochs = 10
    config.finetune.unfreeze = "block5,fc"
    config.after.eval_methods = ("center", "dense", "multicrop", "dense+multicrop")
    config.after.eval_scales = (256,)
    return config
