"""Helper of test_input_pipeline.py: the first distributed batch of the train and eval pipelines
under MirroredStrategy over two logical CPUs; prints RESULT {json}. Logical devices must be
configured before TensorFlow initialises its devices, hence a fresh process.

python tests/train/data/mirrored_pipeline.py DATA_DIR
"""
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))

import tensorflow as tf  # noqa: E402

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

from train.data import input_pipeline  # noqa: E402


def first_batch(strategy, data_dir, mode, split):
  def dataset_fn(ctx):
    return input_pipeline.make_dataset(data_dir, split, mode=mode, crop_seconds=1.0, seed=0,
                                       batch_size=ctx.get_per_replica_batch_size(8),
                                       input_context=ctx)
  batch = next(iter(strategy.distribute_datasets_from_function(dataset_fn)))
  local = strategy.experimental_local_results(batch["audio"])
  total = strategy.reduce("SUM", strategy.run(lambda b: tf.reduce_sum(b["labels"]), (batch,)),
                          axis=None)
  return {"replicas": len(local), "shapes": [list(t.shape) for t in local],
          "labels_sum": float(total)}


def main(data_dir):
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  out = {mode: first_batch(strategy, data_dir, mode, split)
         for mode, split in (("train", "train"), ("eval", "eval"))}
  print("RESULT" + json.dumps(out))


if __name__ == "__main__":
  main(*sys.argv[1:])
