"""Every config file loads through the binary's flag, takes --config overrides, validates."""
import glob
import os
import subprocess
import sys

from absl import flags
import pytest
from ml_collections import config_flags

from train import models, trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(p for p in glob.glob(os.path.join(REPO, "train", "configs", "*.py"))
                 if not p.endswith("__init__.py"))
FRONTEND_OF = {"leaf": "leaf", "sincnet": "sincnet", "sincnet_plus": "sincnet_plus",
               "tdfbanks": "tdfbanks", "mel": "mel", "efficientleaf": "efficientleaf"}


def _parse(path, *overrides):
  """What `python -m train.main --config=path --config.x=y` sees."""
  argv = ["main", f"--config={path}", *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  return values.config


def test_all_expected_configs_exist():
  names = {os.path.basename(p)[:-3] for p in CONFIGS}
  for frontend in FRONTEND_OF:
    assert f"efficientnetb0_audioset_{frontend}" in names
    assert f"demo_{frontend}" in names
  assert "default" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.basename(p))
def test_config_loads_and_validates(path):
  config = _parse(path, "--config.dataset.data_dir=/data/x")
  trainer.validate_config(config)
  name = os.path.basename(path)[:-3]
  suffix = name.split("_audioset_")[-1] if "_audioset_" in name else name[len("demo_"):]
  if name != "default":
    assert config.frontend.name == FRONTEND_OF[suffix]
  assert config.model.backbone == "efficientnet" and config.model.efficientnet.model_id == "b0"


@pytest.mark.parametrize("frontend", ["leaf", "sincnet"])
def test_seed_recipe(frontend):
  config = _parse(os.path.join(REPO, "train", "configs", f"efficientnetb0_audioset_{frontend}.py"))
  assert config.num_epochs == 50 and config.batch_size == 128 * 8
  assert config.optimizer.base_learning_rate == 5e-4 and config.optimizer.weight_decay == 1e-6
  assert config.optimizer.warmup_epochs == 5
  assert config.dataset.crop_seconds == 5.0 and config.model.num_classes == 527
  assert config.model.dropout == 0.4 and config.model.stochastic_depth == 0.2
  assert config.frontend.n_filters == 64 and config.model.spec_augment.enabled
  assert config.model.spec_augment.num_freq_masks == 2 and config.model.spec_augment.max_freq_width == 8
  assert config.model.spec_augment.num_time_masks == 2 and config.model.spec_augment.max_time_width == 50
  assert config.model.multi_label


def test_overrides():
  path = os.path.join(REPO, "train", "configs", "demo_leaf.py")
  config = _parse(path, "--config.batch_size=4", "--config.frontend.n_filters=16",
                  "--config.model.backbone=mobilenet", "--config.model.mobilenet.filter_size_scale=0.5",
                  "--config.optimizer.frontend_lr_multiplier=0.1", "--config.mixed_precision=bfloat16")
  assert config.batch_size == 4 and config.frontend.n_filters == 16
  assert config.model.backbone == "mobilenet" and config.model.mobilenet.filter_size_scale == 0.5
  assert config.optimizer.frontend_lr_multiplier == 0.1 and config.mixed_precision == "bfloat16"
  with pytest.raises(flags.Error):
    _parse(path, "--config.batch_size=four")            # type-checked
  with pytest.raises((flags.Error, AttributeError), match="no_such_field"):
    _parse(path, "--config.no_such_field=1")            # locked


def test_every_frontend_argument_can_be_set_from_the_command_line():
  leaf = _parse(os.path.join(REPO, "train", "configs", "demo_leaf.py"),
                "--config.frontend.learn_pcen=False", "--config.frontend.pcen_alpha=0.5",
                "--config.frontend.window_len=20.0")
  assert not leaf.frontend.learn_pcen and leaf.frontend.pcen_alpha == 0.5
  trainer.validate_config(leaf.unlock().copy_and_resolve_references())
  frontend = models.create_frontend(leaf)
  assert not frontend.learn_pcen and frontend.pcen_alpha == 0.5 and frontend.window_len == 20.0
  mel = _parse(os.path.join(REPO, "train", "configs", "demo_mel.py"),
               "--config.frontend.n_fft=1024")
  assert models.create_frontend(mel).n_fft == 1024
  with pytest.raises((flags.Error, AttributeError), match="learn_pcn"):
    _parse(os.path.join(REPO, "train", "configs", "demo_leaf.py"), "--config.frontend.learn_pcn=0")


def test_arguments_of_another_frontend_are_refused_by_name():
  config = _parse(os.path.join(REPO, "train", "configs", "demo_leaf.py"),
                  "--config.frontend.name=mel", "--config.dataset.data_dir=/data/x")
  with pytest.raises(ValueError, match="frontend 'mel' refuses its arguments.*(pcen|ema_implementation)"):
    trainer.validate_config(config)


@pytest.mark.parametrize("override,message", [
    ("--config.frontend.name=leap", "frontend.name='leap'"),
    ("--config.batch_size=-32", "batch_size must be >= 1"),
    ("--config.strategy=gpu_pod", "strategy='gpu_pod'"),
    ("--config.model.dropout=1.5", "model.dropout must be in"),
])
def test_bad_values_fail_validation(override, message):
  config = _parse(os.path.join(REPO, "train", "configs", "demo_mel.py"), override)
  with pytest.raises(ValueError, match=message):
    trainer.validate_config(config)


def test_binary_rejects_bad_config_before_work(tmp_path):
  workdir = tmp_path / "w"
  proc = subprocess.run(
      [sys.executable, "-m", "train.main", "--config=train/configs/demo_mel.py",
       f"--workdir={workdir}", "--config.batch_size=-1", "--config.frontend.name=nope"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert "batch_size must be >= 1" in proc.stderr and "frontend.name='nope'" in proc.stderr
  assert not workdir.exists()
