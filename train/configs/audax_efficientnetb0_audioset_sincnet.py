r"""The seed recipe with audax's numerics (SincNet): fine-tune imported audax checkpoints.

python -m train.main --config=train/configs/audax_efficientnetb0_audioset_sincnet.py \
    --workdir=DIR --config.dataset.data_dir=AUDIOSET_TFRECORDS

As audax_efficientnetb0_audioset_leaf.py (the backbone), and audax's SincNet: numpy's
symmetric Hamming window on the sinc taps and LayerNorm epsilon 1e-6 (leaf-audio: its
own asymmetric window and 1e-3).
"""
from train.configs import audax_efficientnetb0_audioset_leaf
from train.configs import efficientnetb0_audioset_sincnet


def get_config():
  config = audax_efficientnetb0_audioset_leaf.audax_backbone(
      efficientnetb0_audioset_sincnet.get_config())
  config.frontend.symmetric_window = True
  config.frontend.layer_norm_epsilon = 1e-6
  return config
