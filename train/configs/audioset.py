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
squeeze-excitation (tf-models: relu) and no bias in its convs (`se_bias`), BatchNorm epsilon
1e-5 and momentum 0.9 (flax's BatchNorm as audax configures it). audax's LEAF is leaf-audio's
except that its Gabor mu / sigma are clipped in the forward pass only
(`project_filters_after_update`; ours projects the variables after each update); audax's
SincNet uses numpy's symmetric Hamming window on the sinc taps and LayerNorm epsilon 1e-6
(leaf-audio: its own asymmetric window and 1e-3). Training: optax.adamw's step
(`optimizer.optax_form`: epsilon 1e-8 added after the bias correction, the decay lr x 1e-6 x
weight inside the rounded step; ours: tf_keras AdamW, epsilon 1e-7 added before the bias
correction, and a separate decay that rounds away in float32 at these rates); BatchNorm on
plain TF ops (`model.fused_norm`), whose moving variance averages the biased batch variance as
flax's does (TF's fused kernel: times n / (n - 1)); BatchNorm statistics of each replica's
batch, as audax's pmapped flax BatchNorm without an axis name (ours: of the global batch), the
moving averages still averaged over replicas (audax averages them before each evaluation and
checkpoint: the same numbers, an EMA being linear). Already the
same in both: the loss (sigmoid cross-entropy, mean over batch and classes), gradients
averaged over replicas, AdamW (0.9, 0.999) with decay on every weight, the k-th update at
lr(k). Measured in tests/train/test_train_step_audax.py: from one imported checkpoint, six
steps of LEAF + B0 and of SincNet + B0 give audax's losses and parameters (see there and
docs/audax.md for the tolerances).

python -m train.main --config=train/configs/audioset.py:sincnet,audax --workdir=DIR \
    --config.dataset.data_dir=AUDIOSET_TFRECORDS --mode=train_and_eval

`mel`: audax's own baseline, recipes/audioset_classification/configs/efficientnet_b0.py: mAP
0.3832, mAUC 0.9718, d' 2.700 at ~7250 samples/s (TPU v3-8), better than its LEAF row. Its
log-mel is audax's (64 bins, n_fft 1024, 400-sample window = 24.9375 ms by leaf-audio's rule,
hop 160, 60-7800 Hz, numpy's symmetric Hann window, reflect padding by n_fft / 2, torchaudio's
mel matrix, log(max(., 1e-8)): 504 frames for a 5 s crop); batch 256 x 8 = 2048 (lr 5e-4 x 8),
10 warm-up epochs, mixup alpha 0.8, otherwise the recipe above. Differences left: audax mixes the
log-mel features of the batch (partner drawn by a permutation), ours mixes waveforms (partner:
the batch rolled by one), so a mixed clip's features are the log of mixed energies, not mixed
logs; audax applies SpecAugment to the features before the model, ours in the model right after
the frontend (the same place in the computation).

All rows: the learning rate at step s is audax's `create_learning_rate_fn` (0.0.3, the code of
these runs) to float32 rounding: linear from 0 over warmup_epochs x steps_per_epoch steps, then
cosine to 0 at num_epochs x steps_per_epoch, steps_per_epoch = 1,785,920 // batch_size, both
evaluated at the number of steps already taken. (audax's later releases read `opt.schedule`,
and give its recipes' "cosine" a constant learning rate.)
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
  if frontend == "mel":
    config.frontend = default.frontend_config(
        "mel", n_filters=64, n_fft=1024, window_len=24.9375, window_stride=10.0,
        min_freq=60.0, max_freq=7800.0, symmetric_window=True, frame_padding="reflect",
        mel_weights="torchaudio", log_floor=1e-8, log_offset=0.0)
    config.batch_size = 256 * 8
    config.optimizer.warmup_epochs = 10.0
    config.dataset.mixup_alpha = 0.8
  if variant == "audax":
    config.model.efficientnet = dict(model_id="b0", se_ratio=0.25, activation="swish",
                                     se_inner_activation="swish", norm_epsilon=1e-5,
                                     se_bias=False)
    config.model.norm_momentum = 0.9
    config.model.use_sync_bn = False      # audax's BatchNorm: statistics of each replica's batch
    config.model.spec_augment.sampling = "audax"   # its bands' law (train/spec_augment.py)
    config.model.fused_norm = False       # flax's moving variance: no Bessel correction
    config.optimizer.optax_form = True    # optax.adamw, its default epsilon
    config.optimizer.epsilon = 1e-8
    if frontend == "leaf":
      config.frontend.project_filters_after_update = False
    if frontend == "sincnet":
      config.frontend.symmetric_window = True
      config.frontend.layer_norm_epsilon = 1e-6
  return config
