"""Helper of test_distributed.py: a few steps on one device and under MirroredStrategy over two
logical CPUs from the same initial weights, then the trainer's own loop under "mirrored"; prints
RESULT {json}. Logical devices must be configured before TensorFlow initialises its devices,
hence a fresh process.

python tests/train/mirrored_training.py DATA_DIR WORKDIR
"""
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import tf_keras  # noqa: E402

from tests.harness import TONES_HZ, tiny_config  # noqa: E402
from train import models, train_loop  # noqa: E402
from train import optimizer as optimizer_lib  # noqa: E402
from train.data import input_pipeline  # noqa: E402


def run(config, data_dir, strategy, initial=None):
  """(initial weights, losses of two 2-step loops, final weights, steps) under strategy."""
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


def main(data_dir, workdir):
  config = tiny_config(data_dir)
  config.model.spec_augment.enabled = False      # random per replica: not comparable
  config.model.num_classes = len(TONES_HZ)
  mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  assert mirrored.num_replicas_in_sync == 2
  initial, losses_1, weights_1, steps_1 = run(config, data_dir, tf.distribute.get_strategy())
  _, losses_2, weights_2, steps_2 = run(config, data_dir, mirrored, initial)
  diff = max(float(np.max(np.abs(a - b))) for a, b in zip(weights_1, weights_2))
  moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights_1, initial))

  # the trainer's own loop (distribute_datasets_from_function) under "mirrored"
  config.strategy = "mirrored"
  config.num_train_steps = 6
  results = train_loop.train_and_evaluate(config, workdir, mode="train")
  print("RESULT " + json.dumps({"losses_1": losses_1, "losses_2": losses_2, "diff": diff,
                                "moved": moved, "steps": [steps_1, steps_2],
                                "trainer_steps": results["final_step"]}))


if __name__ == "__main__":
  main(*sys.argv[1:])
