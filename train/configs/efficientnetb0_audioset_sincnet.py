r"""sincnet (64 filters) + EfficientNet-B0 on AudioSet, the seed recipe of efficientnetb0_audioset_leaf.py.

Reference: mAP 0.364, mAUC 0.967, d' 2.60 (same recipe as LEAF).

python -m train.main --config=train/configs/efficientnetb0_audioset_sincnet.py --workdir=DIR \
    --config.dataset.data_dir=AUDIOSET_TFRECORDS [--tpu=NAME]
"""
from train.configs import default
from train.configs import efficientnetb0_audioset_leaf


def get_config():
  config = efficientnetb0_audioset_leaf.get_config()
  config.frontend = default.frontend_config("sincnet", n_filters=config.frontend.n_filters)
  return config
