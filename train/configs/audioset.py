r"""A frontend (64 filters) + EfficientNet-B0 on AudioSet: the seed recipe.

The argument is `FRONTEND` or `FRONTEND,audax` (default leaf): FRONTEND is any name
tf_frontends.get knows; its other constructor arguments stay open
(`--config.frontend.<arg>=...`).

Reference (leaf): mAP 0.380, mAUC 0.970, d' 2.65 (50 epochs, 8 replicas x 128 = global batch
1024, AdamW lr 5e-4 x 1024/256 with 5 warmup epochs then cosine, weight decay 1e-6, random 5 s
crops, SpecAugment after the frontend, dropout 0.4, stochastic depth 0.2, 527 classes, no
balancing). Days on a TPU v3-8 / 8 GPUs; not runnable on a CPU in useful time.

python -m train.main --config=train/configs/audioset.py:leaf --workdir=DIR \
    --config.dataset.data_dir=AUDIOSET_TFRECORDS [--tpu=NAME]

`,audax`: the seed recipe with audax's numerics, to fine-tune imported audax checkpoints
(export.import_audax writes this config, plus the checkpoint's sizes, into the workdir it
creates). Differences (SarthakYadav/audax, read against tf-models-official): swish inside the
squeeze-excitation (tf-models: relu), BatchNorm epsilon 1e-5 and momentum 0.9 (flax's
BatchNorm as audax configures it). audax's LEAF is leaf-audio's; audax's SincNet uses numpy's
symmetric Hamming window on the sinc taps and LayerNorm epsilon 1e-6 (leaf-audio: its own
asymmetric window and 1e-3).

python -m train.main --config=train/configs/audioset.py:sincnet,audax --workdir=DIR \
    --config.dataset.data_dir=AUDIOSET_TFRECORDS --mode=train_and_eval
"""
from __future__ import annotations  # `str | None` annotations on Python 3.9

from train.configs import default

VARIANTS = ("audax",)


def parse_arg(arg: str | None) -> tuple:
  """"FRONTEND[,VARIANT]" -> (frontend, variant or "")."""
  parts = (arg or "leaf").split(",")
  if len(parts) > 2 or (len(parts) == 2 and parts[1] not in VARIANTS):
    raise ValueError(f"Config argument {arg!r}: expected FRONTEND or FRONTEND,audax")
  return parts[0] or "leaf", parts[1] if len(parts) == 2 else ""


def get_config(arg: str | None = None):
  frontend, variant = parse_arg(arg)
  config = default.get_config()
  config.frontend = default.frontend_config(frontend, n_filters=64)
  config.model.num_classes = 527
  config.batch_size = 128 * 8
  if variant == "audax":
    config.model.efficientnet = dict(model_id="b0", se_ratio=0.25, activation="swish",
                                     se_inner_activation="swish", norm_epsilon=1e-5)
    config.model.norm_momentum = 0.9
    if frontend == "sincnet":
      config.frontend.symmetric_window = True
      config.frontend.layer_norm_epsilon = 1e-6
  return config
