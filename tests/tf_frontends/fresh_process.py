"""Runs in a fresh interpreter for the tests: loads SavedModels / runs MirroredStrategy.

python -m tests.tf_frontends.fresh_process load SAVED_DIR INPUT.npy OUTPUT_PREFIX
python -m tests.tf_frontends.fresh_process mirrored INPUT.npy OUTPUT.npz
"""
import sys

import tf_frontends  # noqa: F401  (registers the layers; tf.keras left as TensorFlow chose)
import numpy as np
import tensorflow as tf
import tf_keras


def load(saved_dir, input_path, output_prefix):
  x = np.load(input_path)
  keras_model = tf_keras.models.load_model(saved_dir)
  np.save(output_prefix + "_keras.npy", keras_model(x).numpy())
  serving = tf.saved_model.load(saved_dir).signatures["serving_default"]
  (output,) = serving(tf.constant(x)).values()
  np.save(output_prefix + "_signature.npy", output.numpy())


def mirrored(input_path, output_path):
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  x = np.load(input_path)
  results = {}
  for name in sorted(tf_frontends.FRONTENDS):
    tf_keras.utils.set_random_seed(0)
    single = tf_frontends.get(name, n_filters=8)
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(single(x)))
    single_grads = tape.gradient(loss, single.trainable_variables)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
      replica = tf_frontends.get(name, n_filters=8)
      replica.build((None, None))
    replica.set_weights(single.get_weights())
    halves = strategy.experimental_distribute_values_from_function(
        lambda ctx: x[ctx.replica_id_in_sync_group::2])

    @tf.function
    def step(batch):
      def replica_fn(inputs):
        with tf.GradientTape() as tape:
          outputs = replica(inputs)
          loss = tf.reduce_sum(tf.square(outputs))
        return outputs, tape.gradient(loss, replica.trainable_variables)
      outputs, grads = strategy.run(replica_fn, args=(batch,))
      summed = [strategy.reduce("SUM", g, axis=None) for g in grads]
      return strategy.experimental_local_results(outputs), summed

    (even, odd), grads = step(halves)
    merged = np.empty((x.shape[0],) + tuple(even.shape[1:]), np.float32)
    merged[0::2], merged[1::2] = even.numpy(), odd.numpy()
    results[name + "_single"] = single(x).numpy()
    results[name + "_mirrored"] = merged
    for i, (g1, g2) in enumerate(zip(single_grads, grads)):
      results[f"{name}_grad{i}_single"] = g1.numpy()
      results[f"{name}_grad{i}_mirrored"] = g2.numpy()
  np.savez(output_path, **results)


if __name__ == "__main__":
  {"load": load, "mirrored": mirrored}[sys.argv[1]](*sys.argv[2:])
