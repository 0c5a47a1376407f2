r"""LEAF (64 filters) + EfficientNet-B0 on AudioSet: the seed recipe.

Reference: mAP 0.380, mAUC 0.970, d' 2.65 (50 epochs, 8 replicas x 128 = global batch 1024,
AdamW lr 5e-4 x 1024/256 with 5 warmup epochs then cosine, weight decay 1e-6, random 5 s crops,
SpecAugment after the frontend, dropout 0.4, stochastic depth 0.2, 527 classes, no balancing).
Days on a TPU v3-8 / 8 GPUs; not runnable on a CPU in useful time.

python -m train.main --config=train/configs/efficientnetb0_audioset_leaf.py --workdir=DIR \
    --config.dataset.data_dir=AUDIOSET_TFRECORDS [--tpu=NAME]
"""
from train.configs import default


def get_config():
  config = default.get_config()
  config.frontend = default.frontend_config("leaf", n_filters=64)
  config.model.num_classes = 527
  config.batch_size = 128 * 8
  return config
