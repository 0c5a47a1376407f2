"""Every frontend converts to TFLite with built-in ops only and matches through LiteRT."""
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert

import tf_frontends
from tests.tf_frontends import signals
from tf_frontends import mel

CASES = [(name, {}) for name in sorted(tf_frontends.FRONTENDS)] + [
    ("leaf", {"ema_implementation": "scan"}), ("efficientleaf", {"compression": "pcen"})]


def tflite_builtins_output(layer, x):
  """layer(x) through a TFLite model of built-in ops only (conversion fails otherwise)."""
  serving = tf.function(layer, input_signature=[tf.TensorSpec(x.shape, tf.float32)])
  with mel.builtin_ops_only():   # as export.tflite.convert traces
    concrete = serving.get_concrete_function()
  converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], layer)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  interpreter = litert.Interpreter(model_content=converter.convert())
  interpreter.allocate_tensors()
  interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
  interpreter.invoke()
  return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("name,kwargs", CASES)
def test_tflite_builtins_parity(name, kwargs):
  frontend = tf_frontends.get(name, n_filters=16, **kwargs)
  x = signals.speech_like(1, 4000)
  expected = frontend(x).numpy()
  got = tflite_builtins_output(frontend, x)
  # 16 bands; EfficientLEAF with LogTBN appends its median-filtered bands: 32 features
  appended = name == "efficientleaf" and kwargs.get("compression", "logtbn") == "logtbn"
  assert got.shape == expected.shape == (1, 25, 32 if appended else 16)
  np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max(), rtol=1e-4)
