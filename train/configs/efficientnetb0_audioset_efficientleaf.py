r"""EfficientLEAF (64 filters, LogTBN) + EfficientNet-B0 on AudioSet: the seed recipe, fast frontend.

The LEAF recipe (efficientnetb0_audioset_leaf.py) with `tf_frontends.EfficientLeaf` in place of
`Leaf`: Gabor filters in 4 groups, each at its own kernel length and stride
(Schlueter & Gutenbrunner, EUSIPCO 2022). Not trained here: no AudioSet result of ours yet.
Days on a TPU v3-8 / 8 GPUs; not runnable on a CPU in useful time.

python -m train.main --config=train/configs/efficientnetb0_audioset_efficientleaf.py --workdir=DIR \
    --config.dataset.data_dir=AUDIOSET_TFRECORDS [--tpu=NAME]
"""
from train.configs import default
from train.configs import efficientnetb0_audioset_leaf


def get_config():
  config = efficientnetb0_audioset_leaf.get_config()
  config.frontend = default.frontend_config("efficientleaf", n_filters=64)
  return config
