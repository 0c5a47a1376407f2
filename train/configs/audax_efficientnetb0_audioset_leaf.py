r"""The seed recipe with audax's numerics (LEAF): fine-tune imported audax checkpoints.

export.import_audax writes this config (plus the checkpoint's sizes) into the workdir
it creates; pass it to fine-tune or retrain with the model audax's checkpoints need:

python -m export.import_audax --checkpoint=best_ckpt_XXXX --label_map=class_labels_indices.csv \
    --workdir=DIR
python -m train.main --config=train/configs/audax_efficientnetb0_audioset_leaf.py --workdir=DIR \
    --config.dataset.data_dir=AUDIOSET_TFRECORDS --mode=train_and_eval

Differences from efficientnetb0_audioset_leaf.py (SarthakYadav/audax, read against
tf-models-official): swish inside the squeeze-excitation (tf-models: relu), BatchNorm
epsilon 1e-5 and momentum 0.9 (flax's BatchNorm as audax configures it). The LEAF
frontend is leaf-audio's in both.
"""
from train.configs import efficientnetb0_audioset_leaf


def audax_backbone(config):
  """EfficientNet-B0 as audax builds it: same blocks, swish SE, BN epsilon 1e-5, momentum 0.9."""
  config.model.efficientnet = dict(model_id="b0", se_ratio=0.25, activation="swish",
                                   se_inner_activation="swish", norm_epsilon=1e-5)
  config.model.norm_momentum = 0.9
  return config


def get_config():
  return audax_backbone(efficientnetb0_audioset_leaf.get_config())
