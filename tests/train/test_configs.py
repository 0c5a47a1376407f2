"""Every config file loads through the binary's flag, takes --config overrides, validates."""
import os
import subprocess
import sys

from absl import flags
import numpy as np
import pytest
from ml_collections import config_flags

import tf_frontends
from train import models, validation
from train.configs import audioset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(REPO, "train", "configs")
# Every frontend the library names, on each task config: a frontend added to tf_frontends is
# selectable with no new config file.
TASKS = [(task, frontend) for task in ("demo", "audioset")
         for frontend in sorted(tf_frontends.FRONTENDS)]


def _parse(path, *overrides):
  """What `python -m train.main --config=path --config.x=y` sees."""
  argv = ["main", f"--config={path}", *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  return values.config


def _config(task, arg=None):
  path = os.path.join(CONFIG_DIR, f"{task}.py")
  return path if arg is None else f"{path}:{arg}"


@pytest.mark.parametrize("task,frontend", TASKS, ids=lambda v: str(v))
def test_config_loads_and_validates(task, frontend):
  config = _parse(_config(task, frontend), "--config.dataset.data_dir=/data/x")
  validation.validate_config(config)
  assert config.frontend.name == frontend
  assert config.frontend.n_filters == {"demo": 40, "audioset": 64}[task]
  # the seed recipe's B0 on AudioSet; on the demo a half-width ResNet-18 (see configs/demo.py)
  backbone = {"demo": ("resnet", {"model_id": 18, "depth_multiplier": 0.5}),
              "audioset": ("efficientnet", {"model_id": "b0"})}[task]
  assert config.model.backbone == backbone[0]
  assert backbone[1].items() <= dict(config.model[backbone[0]]).items()


@pytest.mark.parametrize("task", ["demo", "audioset", "default"])
def test_without_an_argument_the_frontend_is_leaf(task):
  config = _parse(_config(task), "--config.dataset.data_dir=/data/x")
  validation.validate_config(config)
  assert config.frontend.name == "leaf"


def test_an_unknown_frontend_or_variant_is_refused_by_name():
  with pytest.raises(Exception, match="leap"):
    _parse(_config("demo", "leap"))
  with pytest.raises(ValueError, match="'leaf,audaks'"):
    audioset.get_config("leaf,audaks")


def test_audax_variant_changes_only_the_backbone_optimizer_and_frontend_numerics():
  for frontend in ("leaf", "sincnet", "mel"):
    seed, audax = audioset.get_config(frontend), audioset.get_config(f"{frontend},audax")
    assert audax.model.efficientnet["se_inner_activation"] == "swish"
    assert audax.model.efficientnet["norm_epsilon"] == 1e-5 and audax.model.norm_momentum == 0.9
    assert seed.model.use_sync_bn and not audax.model.use_sync_bn   # audax: per-replica stats
    assert seed.model.efficientnet["se_bias"] and not audax.model.efficientnet["se_bias"]
    assert seed.model.fused_norm and not audax.model.fused_norm
    assert not seed.optimizer.optax_form and audax.optimizer.optax_form
    assert (seed.optimizer.epsilon, audax.optimizer.epsilon) == (1e-7, 1e-8)
    audax.optimizer.optax_form, audax.optimizer.epsilon = False, 1e-7
    seed.model, audax.model = None, None
    if frontend == "sincnet":
      assert audax.frontend.symmetric_window and audax.frontend.layer_norm_epsilon == 1e-6
      seed.frontend, audax.frontend = None, None
    if frontend == "leaf":
      assert seed.frontend.project_filters_after_update
      assert not audax.frontend.project_filters_after_update
      seed.frontend, audax.frontend = None, None
    assert seed.to_dict() == audax.to_dict()


@pytest.mark.parametrize("frontend", ["leaf", "sincnet"])
def test_seed_recipe(frontend):
  config = _parse(_config("audioset", frontend))
  assert config.num_epochs == 50 and config.batch_size == 128 * 8
  assert config.optimizer.base_learning_rate == 5e-4 and config.optimizer.weight_decay == 1e-6
  assert config.optimizer.warmup_epochs == 5
  assert config.dataset.crop_seconds == 5.0 and config.model.num_classes == 527
  assert config.model.dropout == 0.4 and config.model.stochastic_depth == 0.2
  assert config.frontend.n_filters == 64 and config.model.spec_augment.enabled
  assert config.model.spec_augment.num_freq_masks == 2 and config.model.spec_augment.max_freq_width == 8
  assert config.model.spec_augment.num_time_masks == 2 and config.model.spec_augment.max_time_width == 50
  assert config.model.type == "multilabel"


def test_mel_is_audaxs_mel_recipe():
  """recipes/audioset_classification/configs/efficientnet_b0.py: only these fields differ
  from the LEAF recipe (the frontend's are checked against audax's numbers below)."""
  leaf = _parse(_config("audioset", "leaf"), "--config.dataset.data_dir=/data/x")
  mel = _parse(_config("audioset", "mel"), "--config.dataset.data_dir=/data/x")
  validation.validate_config(mel)
  assert mel.batch_size == 256 * 8 and mel.optimizer.warmup_epochs == 10
  assert mel.dataset.mixup_alpha == 0.8 and leaf.dataset.mixup_alpha == 0.0
  frontend = dict(mel.frontend)
  assert {k: frontend[k] for k in ("n_filters", "n_fft", "min_freq", "max_freq")} == {
      "n_filters": 64, "n_fft": 1024, "min_freq": 60.0, "max_freq": 7800.0}
  layer = models.create_frontend(mel)
  assert (layer.window_size, layer.hop) == (400, 160)
  leaf, mel = leaf.to_dict(), mel.to_dict()
  for config in (leaf, mel):
    del config["frontend"], config["batch_size"]
    del config["optimizer"]["warmup_epochs"], config["dataset"]["mixup_alpha"]
  assert leaf == mel


def test_mel_features_equal_audaxs_log_mel():
  """audax's log-mel (its own code, tests/fixtures/audax/make_audax_recipe_fixtures.py) on a
  noisy chord, a chirp and tones with digital silence.

  Band energies E = exp(features) agree to 1e-4 relative, plus 1e-5 of the strongest band of
  the frame: audax's float32 FFT and float32 mel matrix alone are that far (6.7e-6) from a
  float64 computation in bands 60+ dB below the frame's peak. Every band within 60 dB of it
  agrees to 1e-4 relative (measured 7.5e-5: audax's float32 band edges), silence exactly.
  """
  fixture = np.load(os.path.join(REPO, "tests", "fixtures", "audax", "log_mel.npz"))
  config = _parse(_config("audioset", "mel"), "--config.dataset.data_dir=/data/x")
  expected = fixture["features"][..., 0].astype(np.float64)
  energy = np.exp(expected)
  peak = energy.max(axis=-1, keepdims=True)

  def agrees(frontend_kwargs):
    got = np.float64(tf_frontends.get("mel", **frontend_kwargs)(fixture["waveform"]).numpy())
    return got.shape == expected.shape and np.all(
        np.abs(np.exp(got) - energy) <= 1e-4 * energy + 1e-5 * peak), got

  kwargs = models.frontend_kwargs(config)
  ok, got = agrees(kwargs)
  assert ok
  loud = energy >= 1e-6 * peak
  assert np.abs(got - expected)[loud].max() <= 1e-4 and loud.mean() > 0.6
  silent = expected == np.log(np.float32(1e-8))
  assert silent.sum() > 100 and np.all(got[silent] == expected[silent])
  assert models.create_frontend(config).compute_output_shape((1, 80000))[1] == fixture["frames_5s"]
  for option, other in (("symmetric_window", False), ("mel_weights", "tensorflow"),
                        ("log_floor", 0.0), ("frame_padding", "end")):   # each one matters
    changed = dict(kwargs, **{option: other})
    if option == "log_floor":
      changed["log_offset"] = 1e-5
    assert not agrees(changed)[0], option


def test_overrides():
  path = _config("demo", "leaf")
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
  leaf = _parse(_config("demo", "leaf"),
                "--config.frontend.learn_pcen=False", "--config.frontend.pcen_alpha=0.5",
                "--config.frontend.window_len=20.0")
  assert not leaf.frontend.learn_pcen and leaf.frontend.pcen_alpha == 0.5
  validation.validate_config(leaf.unlock().copy_and_resolve_references())
  frontend = models.create_frontend(leaf)
  assert not frontend.learn_pcen and frontend.pcen_alpha == 0.5 and frontend.window_len == 20.0
  mel = _parse(_config("demo", "mel"),
               "--config.frontend.n_fft=1024")
  assert models.create_frontend(mel).n_fft == 1024
  with pytest.raises((flags.Error, AttributeError), match="learn_pcn"):
    _parse(_config("demo", "leaf"), "--config.frontend.learn_pcn=0")


def test_arguments_of_another_frontend_are_refused_by_name():
  config = _parse(_config("demo", "leaf"),
                  "--config.frontend.name=mel", "--config.dataset.data_dir=/data/x")
  with pytest.raises(ValueError, match="frontend 'mel' refuses its arguments.*(pcen|ema_implementation)"):
    validation.validate_config(config)


@pytest.mark.parametrize("override,message", [
    ("--config.frontend.name=leap", "frontend.name='leap'"),
    ("--config.batch_size=-32", "batch_size must be >= 1"),
    ("--config.strategy=gpu_pod", "strategy='gpu_pod'"),
    ("--config.model.dropout=1.5", "model.dropout must be in"),
])
def test_bad_values_fail_validation(override, message):
  config = _parse(_config("demo", "mel"), override)
  with pytest.raises(ValueError, match=message):
    validation.validate_config(config)


@pytest.mark.slow
def test_binary_rejects_bad_config_before_work(tmp_path):
  workdir = tmp_path / "w"
  proc = subprocess.run(
      [sys.executable, "-m", "train.main", "--config=train/configs/demo.py:mel",
       f"--workdir={workdir}", "--config.batch_size=-1", "--config.frontend.name=nope"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert "batch_size must be >= 1" in proc.stderr and "frontend.name='nope'" in proc.stderr
  assert not workdir.exists()
