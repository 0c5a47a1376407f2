"""A frontend of one's own (a tf_frontends.Frontend composition) in a run config trains,
restores from the workdir alone and exports to both hub modules like a named frontend."""
import json
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from hub_modules import classifier_module
from hub_modules import frontend_module
from tests.harness import TINY, tiny_config
from train import checkpoints, train_loop, validation
from train.configs import default

N_FILTERS = TINY["frontend.n_filters"]


def leaf_with_log_compression():
  return tf_frontends.Frontend(
      tf_frontends.GaborConv1D(N_FILTERS, 401, name="gabor_conv"),
      tf_frontends.SquaredModulus(name="squared_modulus"),
      tf_frontends.GaussianLowpass(401, strides=160, name="gaussian_lowpass"),
      tf_frontends.LogCompression(name="log"), name="leaf_log")


def composed_config(data_dir):
  config = tiny_config(data_dir)
  # What a config file would hold: the serialized composition as JSON data.
  serialized = json.loads(json.dumps(tf_keras.layers.serialize(leaf_with_log_compression())))
  config.frontend = default.composition_config(serialized)
  return config


def test_composition_config_is_validated_and_built(data_dir):
  config = composed_config(data_dir)
  assert config.frontend.name == tf_frontends.COMPOSITION
  validation.validate_config(config)
  frontend = tf_frontends.get(config.frontend.name, config=config.frontend.config.to_dict())
  assert type(frontend) is tf_frontends.Frontend
  assert isinstance(frontend.compression, tf_frontends.LogCompression)
  assert (frontend.sample_rate, frontend.window_size, frontend.hop, frontend.n_filters,
          frontend.output_bins) == (16000, 401, 160, N_FILTERS, N_FILTERS)


def test_a_serialized_layer_that_is_no_frontend_is_refused(data_dir):
  config = tiny_config(data_dir)
  config.frontend = default.composition_config(
      tf_keras.layers.serialize(tf_keras.layers.Dense(3)))
  with pytest.raises(ValueError, match="frontend 'composition' refuses its arguments: "
                     "composition: config describes a Dense, not a frontend"):
    validation.validate_config(config)
  with pytest.raises(ValueError, match="composition_config takes the dict"):
    default.composition_config({"name": "leaf"})


@pytest.mark.slow
def test_composed_frontend_trains_restores_and_exports(data_dir, tmp_path):
  config = composed_config(data_dir)
  config.num_epochs = 1                    # 6 steps
  config.eval_every_epochs = 0
  config.dataset.full_clip_eval = False
  workdir = str(tmp_path / "run")
  results = train_loop.train_and_evaluate(config, workdir)
  assert results["final_step"] == 6

  # From the workdir alone (its config.json holds the serialized composition).
  model, _, _ = checkpoints.restore_run(workdir, "latest")
  assert type(model.frontend) is tf_frontends.Frontend
  initial = leaf_with_log_compression()
  initial.build((None, None))
  # Its initial weights are deterministic (mel-spaced Gabor filters, constant pooling widths).
  moved = [w.name for w, w0 in zip(model.frontend.weights, initial.weights)
           if not np.allclose(w.numpy(), w0.numpy())]
  assert moved, "training left the composed frontend's weights at their initial values"

  x = 0.3 * np.sin(2 * math.pi * 1500.0 * np.arange(8000) / 16000.0)[np.newaxis].astype(
      np.float32)
  expected = classifier_module.classifier_outputs(model, tf.constant(x))
  classifier_dir = str(tmp_path / "classifier")
  classifier_module.save_classifier_module(model, None, classifier_dir, window_samples=8000)
  frontend_dir = str(tmp_path / "frontend")
  frontend_module.save_frontend_module(frontend_module.FrontendModule(model.frontend),
                                       frontend_dir)

  classifier = tf.saved_model.load(classifier_dir)
  got = classifier.signatures["serving_default"](waveform=tf.constant(x))
  np.testing.assert_allclose(got["scores"].numpy(), expected["scores"].numpy(), atol=1e-5)
  metadata = {k: int(v) for k, v in classifier.signatures["metadata"]().items()}
  assert metadata["min_samples"] == 401 and metadata["sample_rate"] == 16000
  features = tf.saved_model.load(frontend_dir)(tf.constant(x))
  np.testing.assert_allclose(features.numpy(), expected["features"].numpy(), rtol=1e-5,
                             atol=1e-5)
  assert features.shape == (1, 50, N_FILTERS)
