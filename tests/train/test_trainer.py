"""The trainer end to end on a tiny synthetic TFRecord set: loss goes down, checkpoints,
resume after SIGKILL, eval results, restore_model, bad configs."""
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from train import checkpoints, evaluation, models, train_loop, validation
from train import optimizer as optimizer_lib
from train import workdir as workdir_lib
from train.configs import default
from train.configs import demo

SAMPLE_RATE = 16000
NUM_CLASSES = 3
TONES_HZ = (440.0, 1500.0, 4000.0)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _example(audio, labels, example_id):
  pcm = tf.audio.encode_wav(tf.constant(audio[:, None], tf.float32), SAMPLE_RATE).numpy()
  return tf.train.Example(features=tf.train.Features(feature={
      "audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[pcm])),
      "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=labels)),
      "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[example_id.encode()])),
  })).SerializeToString()


def write_dataset(data_dir, num_train=48, num_eval=24, seconds=0.5, seed=0):
  """Tone mixtures: class k present <=> a TONES_HZ[k] sine in the clip (plus noise).

  Writes two shards per split and a dataset_info.json like prepare_data's. Eval clips
  have varying lengths (0.5x to 2.5x `seconds`) to exercise full-clip scoring.
  """
  rng = np.random.default_rng(seed)
  os.makedirs(data_dir, exist_ok=True)
  splits = {}
  for split, count in (("train", num_train), ("eval", num_eval)):
    records = []
    for i in range(count):
      labels = [k for k in range(NUM_CLASSES) if rng.random() < 0.4] or [int(rng.integers(3))]
      length = seconds if split == "train" else seconds * rng.uniform(0.5, 2.5)
      t = np.arange(int(length * SAMPLE_RATE)) / SAMPLE_RATE
      audio = 0.05 * rng.standard_normal(t.shape)
      for k in labels:
        audio += 0.25 * np.sin(2 * np.pi * TONES_HZ[k] * t + rng.uniform(0, 2 * np.pi))
      records.append(_example(np.clip(audio, -1, 1), labels, f"{split}_{i}"))
    files = []
    for shard in range(2):
      name = f"{split}-{shard:05d}-of-00002.tfrecord"
      with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as writer:
        for record in records[shard::2]:
          writer.write(record)
      files.append(name)
    splits[split] = {"num_examples": count, "files": files}
  info = {"sample_rate": SAMPLE_RATE, "splits": splits,
          "classes": [{"index": k, "id": f"/m/tone{k}", "display_name": f"{int(f)} Hz"}
                      for k, f in enumerate(TONES_HZ)]}
  with open(os.path.join(data_dir, "dataset_info.json"), "w") as f:
    json.dump(info, f)
  return data_dir


# The tiny run every trainer test uses, as --config overrides of demo.py:mel: 0.5 s crops,
# 8 filters, a quarter-width ResNet-10; seconds per run on 2 CPU cores.
TINY = {
    "dataset.crop_seconds": 0.5, "frontend.n_filters": 8,
    "model.backbone": "resnet", "model.resnet.model_id": 10, "model.resnet.depth_multiplier": 0.25,
    "model.stochastic_depth": 0.0, "model.dropout": 0.0,
    "model.spec_augment.max_time_width": 5, "model.spec_augment.max_freq_width": 2,
    "batch_size": 8, "eval_batch_size": 8, "num_epochs": 2,
    "optimizer.base_learning_rate": 0.02, "optimizer.warmup_epochs": 0.5,
    "steps_per_loop": 3, "log_every_steps": 3, "checkpoint_every_steps": 3,
}


def tiny_config(data_dir, frontend="mel"):
  config = demo.get_config("mel")
  config.update_from_flattened_dict({**TINY, "dataset.data_dir": data_dir})
  config.frontend = default.frontend_config(frontend, n_filters=TINY["frontend.n_filters"])
  return config


def main_command(data_dir, workdir, overrides=(), mode="train_and_eval"):
  """`python -m train.main` on demo.py:mel with the TINY overrides (+ `overrides`)."""
  flags = {**TINY, "dataset.data_dir": data_dir, **dict(overrides)}
  return [sys.executable, "-m", "train.main", "--config=train/configs/demo.py:mel",
          f"--workdir={workdir}", f"--mode={mode}",
          *[f"--config.{key}={value}" for key, value in flags.items()]]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return write_dataset(str(tmp_path_factory.mktemp("tones")))


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
  script = (
      "import tf_frontends, numpy as np, sys\n"
      "from train import trainer\n"
      f"m, c = checkpoints.restore_model({workdir!r}, 'best')\n"
      f"out = m.compute_outputs(np.load({str(tmp_path / 'wave.npy')!r}))\n"
      "assert c.dataset.crop_seconds == 0.5 and m.multi_label\n"
      f"np.save({str(tmp_path / 'out.npy')!r}, out['logits'].numpy())\n"
      "print({k: tuple(v.shape) for k, v in out.items()})\n")
  proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "'features': (2, 50, 8)" in proc.stdout and "'logits': (2, 3)" in proc.stdout
  np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-5)


def test_restore_without_checkpoint_is_a_clear_error(data_dir, tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json"):
    checkpoints.restore_model(str(tmp_path))
  (tmp_path / "config.json").write_text(tiny_config(data_dir).to_json())
  with pytest.raises(FileNotFoundError, match="run_info.json not found"):
    checkpoints.restore_model(str(tmp_path), "best")
  workdir_lib.write_run_info(str(tmp_path), classes=[], sample_rate=16000, crop_seconds=0.5,
                             multi_label=True, model_fingerprint="f")
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


def _final(output):
  match = re.search(r"final step (\d+) param_checksum (\S+)", output)
  assert match, output[-3000:]
  return int(match.group(1)), float(match.group(2))


@pytest.mark.slow
def test_sigkill_and_restart_continues_to_the_unkilled_result(data_dir, tmp_path):
  """SpecAugment and dropout on (their masks are functions of seed and step), mixup on (a
  function of seed, epoch and batch); stochastic depth off (tf-models' layer draws from TF's
  stateful RNG)."""
  overrides = {"num_epochs": 4, "model.spec_augment.enabled": True,    # 24 steps
               "model.dropout": 0.5, "dataset.mixup_alpha": 0.4}
  reference = subprocess.run(main_command(data_dir, tmp_path / "reference", overrides, "train"),
                             cwd=REPO, capture_output=True, text=True, timeout=400)
  assert reference.returncode == 0, reference.stderr[-3000:]
  reference_step, reference_checksum = _final(reference.stderr)
  assert reference_step == 24

  workdir = tmp_path / "killed"
  command = main_command(data_dir, workdir, overrides, "train")
  log = open(tmp_path / "killed.log", "w")
  proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
  checkpoints = str(workdir / "checkpoints")
  deadline = time.time() + 300
  while (tf.train.latest_checkpoint(checkpoints) is None and proc.poll() is None
         and time.time() < deadline):
    time.sleep(0.05)
  still_running = proc.poll() is None
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  latest = tf.train.latest_checkpoint(checkpoints)
  assert still_running and latest, (tmp_path / "killed.log").read_text()[-3000:]
  killed_at = int(latest.rsplit("-", 1)[1])
  assert 3 <= killed_at < 24

  resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=400)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  match = re.search(r"Resumed from \S+ckpt-(\d+) at step (\d+)", resumed.stderr)
  assert match and int(match.group(1)) == int(match.group(2)) >= killed_at
  # the restarted run trains only the remaining steps
  logged = [int(s) for s in re.findall(r"step (\d+)/24 ", resumed.stderr)]
  assert logged and min(logged) > int(match.group(2)) and max(logged) == 24
  step, checksum = _final(resumed.stderr)
  assert step == 24
  assert checksum == pytest.approx(reference_checksum, rel=1e-6)
