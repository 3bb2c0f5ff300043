"""Table 3 row: net D trained at S in [256, 512] on ImageNet; paper: top-1 / top-5 error 25.6 / 8.1 % at Q=384.

Initialisation: fine-tuning the same net trained at S=384, lr 1e-3.

    python recipes/train.py --config=recipes/configs/d_s256_512.py --workdir=runs/d_s256_512 \
        --config.data.data_dir=/data/tfds --config.data.manual_dir=/data/imagenet
"""

from vgg_keras.training import config as config_lib


def get_config():
    return config_lib.paper_config("D", 256, 512)
