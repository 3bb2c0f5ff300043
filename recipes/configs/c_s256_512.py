"""Table 3 row: net C trained at S in [256, 512] on ImageNet; paper: top-1 / top-5 error 27.3 / 8.8 % at Q=384.

Initialisation: fine-tuning the same net trained at S=384, lr 1e-3.

    python recipes/train.py --config=recipes/configs/c_s256_512.py --workdir=runs/c_s256_512 \
        --config.data.data_dir=/data/tfds --config.data.manual_dir=/data/imagenet
"""

from vgg_keras.training import config as config_lib


def get_config():
    return config_lib.paper_config("C", 256, 512)
