"""Helper of test_distributed.py: one model evaluated under a strategy and on one device;
prints RESULT {json}. "mirrored": MirroredStrategy over two logical CPUs (configured before
TensorFlow initialises its devices, hence a fresh process); "multi_worker": this process is
one worker of a MultiWorkerMirroredStrategy cluster (TF_CONFIG).

Before evaluating, each replica's copy of the BatchNorm moving statistics is shifted by
0.5 x its replica id, as training leaves them (each replica updates its own copy): the one
device gets the replicas' mean, the value a checkpoint holds.

python tests/train/distributed_evaluation.py mirrored|multi_worker DATA_DIR
"""
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if sys.argv[1] == "mirrored":
  CPU = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import tf_keras  # noqa: E402

from tests.harness import tiny_config  # noqa: E402
from train import evaluation, models  # noqa: E402

METRICS = ("mAP", "mAUC", "dprime", "num_examples")


def _replica_spread(strategy, statistics):
  """max |local replica copy - replicas' mean| over the statistics (a collective read)."""
  return max(float(np.max(np.abs(local.numpy() - variable.numpy())))
             for variable in statistics for local in strategy.experimental_local_results(variable))


def _evaluation(model, config, strategy):
  results = evaluation.evaluate(model, config, strategy=strategy)
  summary = {name: {key: results[name][key] for key in METRICS}
             for name in ("centre_crop", "full_clip")}
  for mode in ("eval", "full_clip"):     # every clip's scores, as a multiset per class
    _, scores = evaluation.score_clips(model, config, "eval", mode, strategy)
    summary[f"sorted_scores_{mode}"] = np.sort(scores, axis=0).tolist()
  return summary


def main(mode, data_dir):
  if mode == "mirrored":
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  else:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  assert strategy.num_replicas_in_sync == 2
  config = tiny_config(data_dir)
  config.model.num_classes = 3
  config.eval_batch_size = 22            # 23 clips: the second step is one clip and padding
  tf_keras.utils.set_random_seed(0)
  with strategy.scope():
    model = models.build_model(config)
  statistics = [v for v in model.variables
                if v.synchronization == tf.VariableSynchronization.ON_READ]

  @tf.function
  def shift_by_replica():
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    for variable in statistics:
      variable.assign_add(tf.fill(variable.shape, 0.5 * tf.cast(replica, tf.float32)))

  strategy.run(shift_by_replica)
  spread_before = _replica_spread(strategy, statistics)
  distributed = _evaluation(model, config, strategy)
  spread_after = _replica_spread(strategy, statistics)

  one_device = models.build_model(config)              # outside the scope: the default strategy
  one_device.set_weights(model.get_weights())
  print("RESULT " + json.dumps({
      "distributed": distributed,
      "one_device": _evaluation(one_device, config, tf.distribute.get_strategy()),
      "num_statistics": len(statistics), "spread_before": spread_before,
      "spread_after": spread_after}), flush=True)


if __name__ == "__main__":
  main(*sys.argv[1:])
