"""MirroredStrategy over 2 logical CPUs == one device; 2-process MultiWorkerMirroredStrategy.

Logical devices must be configured before TensorFlow initialises its devices, and a
multi-worker strategy owns its process, so each case runs in fresh subprocesses.
"""
import json
import os
import re
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.train import test_trainer

REPO = test_trainer.REPO

MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tf_frontends
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tf_keras
    from train import evaluation, models, train_loop
    from train import optimizer as optimizer_lib
    from train.data import input_pipeline
    from tests.train.test_trainer import TONES_HZ, tiny_config

    data_dir, workdir = sys.argv[1], sys.argv[2]
    config = tiny_config(data_dir)
    config.model.spec_augment.enabled = False      # random per replica: not comparable
    config.model.num_classes = len(TONES_HZ)

    def run(strategy, initial=None):
      tf_keras.utils.set_random_seed(0)
      with strategy.scope():
        model = models.build_model(config)
        if initial is not None:
          model.set_weights(initial)
        optimizer, _ = optimizer_lib.create_optimizer(config, model, 6, 12)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64)
      initial = model.get_weights()
      loop = train_loop.make_train_loop(model, optimizer, strategy, step, config)
      ds = input_pipeline.make_dataset(data_dir, "train", batch_size=8, crop_seconds=0.5,
                                       mode="train", seed=0)
      ds = ds.map(lambda b: {"audio": b["audio"], "labels": b["labels"]})
      iterator = iter(strategy.experimental_distribute_dataset(ds))   # global batch 8
      losses = [float(loop(iterator, tf.constant(2))) for _ in range(2)]
      return initial, losses, model.get_weights(), int(step.numpy())

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    initial, losses_1, weights_1, steps_1 = run(tf.distribute.get_strategy())
    _, losses_2, weights_2, steps_2 = run(mirrored, initial)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(weights_1, weights_2))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights_1, initial))

    # the trainer's own loop (distribute_datasets_from_function) under "mirrored"
    config.strategy = "mirrored"
    config.num_train_steps = 6
    results = train_loop.train_and_evaluate(config, workdir, mode="train")
    print("RESULT " + json.dumps({"losses_1": losses_1, "losses_2": losses_2, "diff": diff,
                                  "moved": moved, "steps": [steps_1, steps_2],
                                  "trainer_steps": results["final_step"]}))
""")


@pytest.mark.slow
def test_mirrored_two_logical_cpus_matches_one_device(tmp_path):
  data_dir = test_trainer.write_dataset(str(tmp_path / "data"))
  proc = subprocess.run(
      [sys.executable, "-c", MIRRORED_SCRIPT, data_dir, str(tmp_path / "work")],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(re.search(r"^RESULT (.*)$", proc.stdout, re.M).group(1))
  assert result["steps"] == [4, 4]
  assert result["moved"] > 1e-3                      # training did change the weights
  assert result["diff"] < 1e-4, result               # ... the same way on both
  for a, b in zip(result["losses_1"], result["losses_2"]):
    assert abs(a - b) < 1e-5, result
  assert result["trainer_steps"] == 6


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


@pytest.mark.slow
def test_multi_worker_two_processes_agree(tmp_path):
  data_dir = test_trainer.write_dataset(str(tmp_path / "data"))
  workdir = str(tmp_path / "work")
  ports = _free_ports(2)
  cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
  procs, logs = [], []
  for index in range(2):
    env = dict(os.environ, TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": index}}))
    command = test_trainer.main_command(data_dir, workdir, {
        "num_train_steps": 6, "eval_every_epochs": 0})     # one eval, at the end
    # files, not pipes: a worker blocked on a full pipe would stall the other's collectives
    logs.append(tmp_path / f"worker_{index}.log")
    with open(logs[-1], "w") as log:
      procs.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                    stderr=subprocess.STDOUT))
  try:
    for proc in procs:
      proc.wait(timeout=420)
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  outputs = [log.read_text() for log in logs]
  for proc, out in zip(procs, outputs):
    assert proc.returncode == 0, out[-4000:]
  finals = [re.search(r"final step (\d+) param_checksum (\S+)", out) for out in outputs]
  assert all(finals), [out[-2000:] for out in outputs]
  assert "CollectiveAllReduceStrategy, 2 replicas" in outputs[0]   # = MultiWorkerMirrored
  assert [int(f.group(1)) for f in finals] == [6, 6]
  assert float(finals[0].group(2)) == float(finals[1].group(2))    # identical weights
  # only the chief writes the run's checkpoints; the other worker's scratch is gone
  assert os.path.exists(os.path.join(workdir, "checkpoints", "ckpt-6.index"))
  assert not os.path.exists(os.path.join(workdir, "tmp_workers"))
  assert os.path.exists(os.path.join(workdir, "best", "ckpt-6.index"))
  results = json.load(open(os.path.join(workdir, "eval_results.json")))
  assert results["step"] == 6 and results["centre_crop"]["num_examples"] == 24
