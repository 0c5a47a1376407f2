"""export.tflite on each frontend: constant folding, built-in ops only, LiteRT parity."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from export import tflite

NUM_SAMPLES = 3200


def clips(count=3):
  rng = np.random.default_rng(1)
  t = np.arange(NUM_SAMPLES) / 16000
  quiet = 1e-3 * rng.standard_normal(NUM_SAMPLES)
  quiet[NUM_SAMPLES // 2:] += 0.5 * np.sin(2 * np.pi * 880 * t[NUM_SAMPLES // 2:])  # onset
  return [np.float32(0.2 * rng.standard_normal(NUM_SAMPLES)), np.float32(quiet),
          np.float32(0.4 * np.sin(2 * np.pi * 300 * t))][:count]


@pytest.mark.parametrize("name", sorted(tf_frontends.FRONTENDS))
def test_frontend_converts_with_builtins_and_matches(name):
  tf_keras.utils.set_random_seed(0)
  frontend = tf_frontends.get(name, n_filters=8)
  outputs_fn = lambda w: {"features": frontend(w), "scores": tf.reduce_mean(frontend(w), 1)}
  models = tflite.convert(outputs_fn, NUM_SAMPLES, ["float", "int8"],
                          representative_waveforms=clips(), float_scope=frontend.name)
  for clip in clips():
    expected = frontend(clip[np.newaxis]).numpy()
    got = tflite.TFLiteRunner(models["float"])(clip)["features"]
    np.testing.assert_allclose(got, expected, atol=1e-4)
  runner = tflite.TFLiteRunner(models["float"])
  assert not [op for op in runner.op_names() if op.lower().startswith("flex")]
  # folded: no filter computation (COS / SIN / EXP from parameters) left at run time
  assert not {"COS", "SIN", "EXP"} & set(runner.op_names())
  int8 = tflite.TFLiteRunner(models["int8"])
  for clip in clips():                     # runs (no int8 DIV-by-zero-point, no conv refusal)
    assert np.all(np.isfinite(int8(clip)["features"]))


def test_runner_refuses_the_wrong_length():
  frontend = tf_frontends.get("mel", n_filters=8)
  models = tflite.convert(lambda w: {"features": frontend(w)}, NUM_SAMPLES, ["float"])
  with pytest.raises(ValueError, match=f"exactly {NUM_SAMPLES} samples"):
    tflite.TFLiteRunner(models["float"])(np.zeros(NUM_SAMPLES + 1, np.float32))


def test_fit_length_centre_crops_and_pads():
  x = np.arange(10, dtype=np.float32)
  np.testing.assert_array_equal(tflite.fit_length(x, 4), [3, 4, 5, 6])
  np.testing.assert_array_equal(tflite.fit_length(x[:2], 4), [0, 1, 0, 0])
