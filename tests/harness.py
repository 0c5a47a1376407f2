"""What many tests share: a tiny synthetic tone data set, the tiny training config, the
command line of the training binary on it, and waiting for a child process's log line.

Plain functions, so that helper scripts run in subprocesses can import them too;
tests/conftest.py wraps them in fixtures.
"""
import json
import os
import re
import sys
import threading

import numpy as np
import tensorflow as tf

from train.configs import default
from train.configs import demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_RATE = 16000
NUM_CLASSES = 3
TONES_HZ = (440.0, 1500.0, 4000.0)


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
    files, shards = [], {}
    for shard in range(2):
      name = f"{split}-{shard:05d}-of-00002.tfrecord"
      with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as writer:
        for record in records[shard::2]:
          writer.write(record)
      files.append(name)
      shards[name] = {"num_examples": len(records[shard::2]),
                      "num_bytes": os.path.getsize(os.path.join(data_dir, name))}
    splits[split] = {"num_examples": count, "files": files, "shards": shards}
  info = {"sample_rate": SAMPLE_RATE, "splits": splits,
          "classes": [{"index": k, "id": f"/m/tone{k}", "display_name": f"{int(f)} Hz"}
                      for k, f in enumerate(TONES_HZ)]}
  with open(os.path.join(data_dir, "dataset_info.json"), "w") as f:
    json.dump(info, f)
  return data_dir


# The tiny run every trainer test uses, as --config overrides of demo.py:mel: 0.5 s crops,
# 8 filters, a quarter-width ResNet-10, SpecAugment on (the demo turns it off; the tests
# exercise it, its seeding included); seconds per run on 2 CPU cores.
TINY = {
    "dataset.eval_split": "eval", "dataset.test_split": "",
    "dataset.crop_seconds": 0.5, "frontend.n_filters": 8,
    "model.backbone": "resnet", "model.resnet.model_id": 10, "model.resnet.depth_multiplier": 0.25,
    "model.stochastic_depth": 0.0, "model.dropout": 0.0,
    "model.spec_augment.enabled": True,
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


def wait_for_line(proc, pattern: str, timeout_s: float) -> str:
  """Reads proc.stdout (a text pipe) line by line until a line matches `pattern`; returns what
  it read. Blocks on the pipe, no polling: the child's own log line is the event. A timer kills
  the child after timeout_s, which ends the pipe and fails here with the log's tail."""
  watchdog = threading.Timer(timeout_s, proc.kill)
  watchdog.start()
  lines = []
  try:
    for line in proc.stdout:
      lines.append(line)
      if re.search(pattern, line):
        return "".join(lines)
  finally:
    watchdog.cancel()
  raise AssertionError(f"{pattern!r} never appeared (exit {proc.poll()}):\n"
                       + "".join(lines)[-3000:])


def final_variables(workdir) -> dict:
  """{checkpoint key: value} of every variable (model, optimizer, step) in WORKDIR's latest
  checkpoint."""
  reader = tf.train.load_checkpoint(os.path.join(str(workdir), "checkpoints"))
  return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
          if "OBJECT_GRAPH" not in key}
