"""The trainer end to end on a tiny synthetic TFRecord set: loss goes down, checkpoints,
resume after SIGKILL, eval results, restore_model, bad configs."""
import json
import math
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from tests.harness import REPO, main_command, tiny_config, wait_for_line
from train import checkpoints, train_loop
from train import workdir as workdir_lib


def _summaries(workdir, subdir):
  """(tag, step, value tensor) of every summary in the TensorBoard events of WORKDIR/SUBDIR."""
  for path in tf.io.gfile.glob(os.path.join(workdir, subdir, "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        yield value.tag, event.step, tf.make_ndarray(value.tensor)


def _loss_curve(workdir):
  """(step, loss) pairs from the TensorBoard events of WORKDIR/train."""
  return sorted((step, float(value)) for tag, step, value in _summaries(workdir, "train")
                if tag == "loss")


@pytest.mark.slow
@pytest.mark.parametrize("frontend", ["leaf", "sincnet", "sincnet_plus", "tdfbanks", "mel"])
def test_short_training_per_frontend(frontend, data_dir, tmp_path):
  config = tiny_config(data_dir, frontend)
  config.num_epochs = 3                    # 18 steps
  config.eval_every_epochs = 0             # one eval, at the end
  config.dataset.full_clip_eval = frontend == "mel"    # whole clips once is enough
  workdir = str(tmp_path / frontend)
  results = train_loop.train_and_evaluate(config, workdir)
  losses = [loss for _, loss in _loss_curve(workdir)]
  assert len(losses) == 6 and all(math.isfinite(x) for x in losses)
  assert np.mean(losses[-2:]) < losses[0], losses
  assert results["final_step"] == 18
  assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("-18")
  assert tf.train.latest_checkpoint(os.path.join(workdir, "best")).endswith("-18")
  saved = json.load(open(os.path.join(workdir, "eval_results.json")))
  assert saved["step"] == 18
  for name in ("centre_crop", "full_clip") if frontend == "mel" else ("centre_crop",):
    assert saved[name]["num_examples"] == 24
    assert 0.0 <= saved[name]["mAP"] <= 1.0
  images = {tag: value for tag, _, value in _summaries(workdir, "eval") if "frontend" in tag}
  expected = {"frontend_output"} | ({"frontend_filters"} if frontend != "mel" else set())
  assert set(images) == expected
  assert all(value[2][:4] == b"\x89PNG" for value in images.values())  # [width, height, png]


@pytest.mark.slow
def test_restore_model_rebuilds_in_a_fresh_process(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  config = tiny_config(data_dir)
  config.num_epochs = 1
  train_loop.train_and_evaluate(config, workdir, mode="train")
  waveform = np.random.default_rng(0).uniform(-0.5, 0.5, [2, 8000]).astype(np.float32)
  model, _ = checkpoints.restore_model(workdir, "latest")
  expected = model(waveform).numpy()
  np.save(tmp_path / "wave.npy", waveform)
  proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "train", "restore_fresh.py"),
                         workdir, str(tmp_path / "wave.npy"), str(tmp_path / "out.npy")],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "'features': (2, 50, 8)" in proc.stdout and "'logits': (2, 3)" in proc.stdout
  np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-5)


def test_restore_without_checkpoint_is_a_clear_error(data_dir, tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json"):
    checkpoints.restore_model(str(tmp_path))
  (tmp_path / "config.json").write_text(tiny_config(data_dir).to_json())
  with pytest.raises(FileNotFoundError, match="run_info.json not found"):
    checkpoints.restore_model(str(tmp_path), "best")
  workdir_lib.Workdir(str(tmp_path)).describe(
      tiny_config(data_dir), classes=[], sample_rate=16000, crop_seconds=0.5, multi_label=True,
      model_fingerprint="f")
  with pytest.raises(FileNotFoundError, match="No checkpoint in .* Train first"):
    checkpoints.restore_model(str(tmp_path), "best")


@pytest.mark.parametrize("key,value,message", [
    ("frontend.name", "leap", "frontend.name='leap' is not one of"),
    ("batch_size", -8, "batch_size must be >= 1"),
    ("model.backbone", "vgg", "model.backbone='vgg'"),
    ("mixed_precision", "fp8", "mixed_precision='fp8'"),
    ("dataset.data_dir", "", "dataset.data_dir is empty"),
])
def test_bad_config_is_rejected_before_any_work(key, value, message, data_dir, tmp_path):
  config = tiny_config(data_dir)
  parent, _, leaf = key.rpartition(".")
  (config[parent] if parent else config)[leaf] = value
  workdir = tmp_path / "never"
  with pytest.raises(ValueError, match=message):
    train_loop.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


def _model_checksum(workdir) -> float:
  """The sum of |w| over the model's variables in WORKDIR's latest checkpoint (float64)."""
  return float(sum(np.sum(np.abs(value.astype(np.float64)))
                   for key, value in harness.final_variables(workdir).items()
                   if key.startswith("model/")))


def _final_step(output):
  match = re.search(r"final step (\d+)", output)
  assert match, output[-3000:]
  return int(match.group(1))


@pytest.mark.slow
@pytest.mark.timeout(1500)              # three trainings
def test_sigkill_and_restart_continues_to_the_unkilled_result(data_dir, tmp_path):
  """SpecAugment and dropout on (their masks are functions of seed and step), mixup on (a
  function of seed, epoch and batch); stochastic depth off (tf-models' layer draws from TF's
  stateful RNG)."""
  overrides = {"num_epochs": 4, "model.spec_augment.enabled": True,    # 24 steps
               "model.dropout": 0.5, "dataset.mixup_alpha": 0.4}
  reference = subprocess.run(main_command(data_dir, tmp_path / "reference", overrides, "train"),
                             cwd=REPO, capture_output=True, text=True, timeout=400)
  assert reference.returncode == 0, reference.stderr[-3000:]
  assert _final_step(reference.stderr) == 24

  workdir = tmp_path / "killed"
  command = main_command(data_dir, workdir, overrides, "train")
  proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  # ckpt-3 is saved before the loop goes on to log step 6
  output = wait_for_line(proc, r"step 6/24 ", timeout_s=300)
  still_running = proc.poll() is None
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  latest = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
  assert still_running and latest, output[-3000:]
  killed_at = int(latest.rsplit("-", 1)[1])
  assert 3 <= killed_at < 24

  resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=400)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  match = re.search(r"Resumed from \S+ckpt-(\d+) at step (\d+)", resumed.stderr)
  assert match and int(match.group(1)) == int(match.group(2)) >= killed_at
  # the restarted run trains only the remaining steps
  logged = [int(s) for s in re.findall(r"step (\d+)/24 ", resumed.stderr)]
  assert logged and min(logged) > int(match.group(2)) and max(logged) == 24
  assert _final_step(resumed.stderr) == 24
  assert _model_checksum(workdir) == pytest.approx(
      _model_checksum(tmp_path / "reference"), rel=1e-6)


def test_eval_mode_does_not_go_through_the_trainer(tiny_config, tmp_path):
  """--mode=eval is evaluation.evaluate_run (train/main.py dispatches); the trainer refuses it
  before anything is read or written."""
  with pytest.raises(ValueError, match="evaluation.evaluate_run"):
    train_loop.train_and_evaluate(tiny_config, str(tmp_path / "run"), mode="eval")
  assert not (tmp_path / "run").exists()
