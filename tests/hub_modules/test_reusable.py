"""The shared pieces of the hub modules: class-name CSV, regularisation losses, input checks."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from hub_modules import frontend_module
from hub_modules import reusable


def test_class_names_csv_round_trip_with_quotes_commas_and_unicode(tmp_path):
  classes = [{"index": 1, "id": "/m/b", "display_name": 'Say "hi", twice'},
             {"index": 0, "id": "/m/a", "display_name": "Café, été"},
             {"index": 2, "id": "x,y", "display_name": "plain"}]
  path = reusable.write_class_names_csv(classes, str(tmp_path))
  names = reusable.read_class_names_csv(tf.constant(path))
  assert names["index"].numpy().tolist() == [0, 1, 2]            # sorted by index
  assert [s.decode() for s in names["id"].numpy()] == ["/m/a", "/m/b", "x,y"]
  assert [s.decode() for s in names["display_name"].numpy()] == [
      "Café, été", 'Say "hi", twice', "plain"]


def test_regularization_losses_cover_nested_layers():
  inner = tf_keras.layers.Dense(3, kernel_regularizer=tf_keras.regularizers.l2(0.1))
  model = tf_keras.Sequential([tf_keras.layers.Dense(
      4, kernel_regularizer=tf_keras.regularizers.l1(0.01)), inner])
  model.build([None, 5])
  losses = reusable.make_regularization_losses(model)
  assert len(losses) == 2
  np.testing.assert_allclose(sum(float(f()) for f in losses),
                             float(tf.add_n(model.losses)), rtol=1e-6)


@pytest.mark.parametrize("bad,expected", [
    (np.zeros([2, 800], np.int32), "got dtype int32. Integer PCM"),
    (np.zeros([2, 800], np.float16), "got dtype float16. Cast"),
    (np.zeros([800], np.float32), "got rank 1. For a single clip"),
    (np.zeros([2, 800, 1, 1], np.float32), "got rank 4"),
    (np.zeros([2, 400], np.float32), "shorter than 401 samples")])
def test_module_refuses_bad_input_before_saving(bad, expected):
  module = frontend_module.FrontendModule(tf_frontends.get("mel", n_filters=8))
  with pytest.raises(tf.errors.InvalidArgumentError, match=expected.replace(".", r"\.")):
    module(tf.constant(bad))
  assert module(tf.zeros([2, 401])).shape == (2, 3, 8)
