"""Loads a SavedModel with Keras 3's TFSMLayer; run in a fresh process WITHOUT TF_USE_LEGACY_KERAS.

python keras3_check.py MODULE_DIR INPUTS.npy

Prints "RESULT <json>": the Keras version, the output keys, and the max |difference| per
output between TFSMLayer (called directly and inside a keras.Model) and tf.saved_model.load.
"""
import json
import os
import sys

if os.environ.get("TF_USE_LEGACY_KERAS"):
  sys.exit("keras3_check.py must run without TF_USE_LEGACY_KERAS")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main():
  path, inputs_path = sys.argv[1:3]
  x = np.load(inputs_path)
  reference = tf.saved_model.load(path).signatures["serving_default"](waveform=tf.constant(x))
  layer = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
  direct = layer(x)
  inputs = keras.Input(shape=(x.shape[1],))
  model = keras.Model(inputs, layer(inputs))
  in_model = model(x)
  result = {"keras_version": keras.__version__, "tf_keras_is_keras": tf.keras.layers.Layer is keras.layers.Layer,
            "keys": sorted(direct), "direct": {}, "in_model": {}}
  for key, value in reference.items():
    result["direct"][key] = float(np.max(np.abs(np.asarray(direct[key]) - value.numpy())))
    result["in_model"][key] = float(np.max(np.abs(np.asarray(in_model[key]) - value.numpy())))
  print("RESULT " + json.dumps(result))


if __name__ == "__main__":
  main()
