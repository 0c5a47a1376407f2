"""EfficientLeaf as a frontend hub module: signatures, gradients, fine-tuning from a fresh process."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from hub_modules import frontend_module
from tests.hub_modules.test_frontend_module import assert_gradients_close
from tests.hub_modules.test_frontend_module import make_signals, run_hub_checks


@pytest.fixture(scope="module", params=["logtbn", "pcen"])
def saved(request, tmp_path_factory):
  tf_keras.utils.set_random_seed(0)
  frontend = tf_frontends.get("efficientleaf", n_filters=8, compression=request.param)
  x = make_signals()
  reference = frontend(x).numpy()
  path = tmp_path_factory.mktemp("efficient_leaf_module") / request.param
  frontend_module.save_frontend_module(frontend_module.FrontendModule(frontend), str(path))
  return path, frontend, x, reference


def test_signatures_and_gradients_in_process(saved):
  path, frontend, x, reference = saved
  loaded = tf.saved_model.load(str(path))
  batch = loaded.signatures["serving_default"](waveform=tf.constant(x))["features"]
  np.testing.assert_allclose(batch.numpy(), reference, atol=1e-6)
  assert int(loaded.signatures["metadata"]()["min_samples"]) == 401

  # Not a plain sum of squares: after batch norm that is nearly constant, its gradient roundoff.
  target = np.random.default_rng(0).standard_normal(reference.shape).astype(np.float32)

  def grads(fn, variables):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(fn(tf.constant(x)) - target))
    return tape.gradient(loss, variables)

  expected = grads(lambda w: frontend(w, training=True), frontend.trainable_variables)
  got = grads(lambda w: loaded(w, training=True), loaded.trainable_variables)
  assert len(got) == len(expected) == len(frontend.trainable_variables) >= 5
  assert_gradients_close(got, expected, num_summed_terms=x.size * frontend.n_filters)


@pytest.mark.slow
def test_hub_keras_layer_loads_and_fine_tunes_in_a_fresh_process(saved, tmp_path):
  path, frontend, x, reference = saved
  result = run_hub_checks(path, x, reference, tmp_path)
  assert result["inference_max_abs_diff"] <= 1e-6
  assert result["num_trainable_variables"] == len(frontend.trainable_variables)
  assert result["missing_gradients"] == [] and result["losses"][-1] < result["losses"][0]
  assert max(v for name, v in result["changed"].items() if "kernel" in name) > 0
