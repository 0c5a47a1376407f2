r"""Speech Commands v0.02 keyword spotting (35 words, one per clip): audax's recipe.

The argument is the frontend (any name tf_frontends.get knows; default mel, audax's row), with
64 filters (mel: audax's log-mel, as train/configs/audioset.py:mel); its other constructor
arguments stay open (`--config.frontend.<arg>=...`). Backbone EfficientNet-B0
(`--config.model.backbone=resnet` for ResNet-18).

audax's recipe (SarthakYadav/audax recipes/speechcommands/configs/{efficientnetb0,resnet18}.py):
multiclass (softmax cross-entropy, best checkpoint by validation accuracy), 1 s clips (shorter
ones zero-padded), batch 1024, 50 epochs, AdamW ("Adam" in audax's config; optax.adamw in its
code) lr 5e-4 x batch / 256 with weight decay 1e-4, 5 linear warm-up epochs then cosine to 0,
SpecAugment 2 frequency masks up to 8 bins and 2 time masks up to 10 frames, dropout 0.4 before
the head, stochastic depth (EfficientNet), no mixup, no label balancing.
Reference test accuracy (audax README, log-mel 64 bins, one TPU v3 core): EfficientNet-B0
0.9344, ResNet-18 0.9562.

Waveforms: audax standardises every 1 s waveform, (x - mean) / (std + 1e-8), before the
features (`normalize_waveform`); so does this model (`model.standardize_waveform`, inside the
model, so that its exports standardise too). What differs: audax's steps per epoch come from
its count of 84,864 train clips; here from dataset_info.json (84,843 in the release's train split).

python -m train.data.prepare_data --speech_commands=/data/speech_commands_v0.02 \
    --output_dir=/data/speech_commands
python -m train.main --config=train/configs/speechcommands.py:mel --workdir=DIR \
    --config.dataset.data_dir=/data/speech_commands
python -m train.main --config=train/configs/speechcommands.py:mel --workdir=DIR \
    --config.dataset.data_dir=/data/speech_commands --mode=eval     # + the test split
"""
from train.configs import audioset
from train.configs import default


def get_config(frontend: str = "mel"):
  config = default.get_config()
  config.frontend = audioset.get_config(frontend or "mel").frontend   # 64 filters; audax's mel
  config.dataset.eval_split = "validation"   # chooses the best checkpoint
  config.dataset.test_split = "test"         # scored by --mode=eval
  config.dataset.crop_seconds = 1.0
  config.dataset.full_clip_eval = False      # clips are at most 1 s: one window, the centre crop
  config.model.type = "multiclass"
  config.model.standardize_waveform = True
  config.model.num_classes = 35
  config.model.spec_augment = dict(enabled=True, num_freq_masks=2, max_freq_width=8,
                                   num_time_masks=2, max_time_width=10,
                                   sampling="independent")  # train/spec_augment.py: the laws
  config.batch_size = 1024
  config.num_epochs = 50
  config.optimizer.base_learning_rate = 5e-4
  config.optimizer.weight_decay = 1e-4
  config.optimizer.warmup_epochs = 5.0
  return config
