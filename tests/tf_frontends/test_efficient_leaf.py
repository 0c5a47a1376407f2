"""EfficientLeaf vs a float64 numpy EfficientLEAF, vs exact LEAF, gradients, saving, XLA."""
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from tests.tf_frontends import numpy_efficient_leaf as ref_eleaf
from tests.tf_frontends import numpy_reference as ref
from tests.tf_frontends import signals
from tf_frontends import efficient_leaf
from tf_frontends import initializers
from tf_frontends import log_tbn


def initial_params(n_filters, min_freq=60.0, max_freq=7800.0):
  mu, sigma = ref.mel_params(initializers.mel_filters(n_filters, 16000, min_freq, max_freq))
  return ref.gabor_clip(mu, sigma, 401)


def reference(frontend, x, training=False):
  """The numpy EfficientLEAF with the layer's current weights and arguments."""
  mu, sigma = initial_params(frontend.n_filters, frontend.min_freq, frontend.max_freq)
  structure = ref_eleaf.groups(mu, sigma, frontend.num_groups, frontend.conv_win_factor,
                               frontend.stride_factor)
  mu, sigma = frontend.kernel.numpy().astype(np.float64).T
  args = dict(conv_win_factor=frontend.conv_win_factor, stride_factor=frontend.stride_factor)
  pool_sigma = frontend.pooling_sigma.numpy().astype(np.float64)
  x = x.astype(np.float64)
  if frontend.compression == "pcen":
    return ref_eleaf.efficient_leaf(x, mu, sigma, pool_sigma, structure, "pcen", **args)
  log_gain = frontend._compression.log_gain.numpy().astype(np.float64)  # pylint: disable=protected-access
  return ref_eleaf.efficient_leaf(x, mu, sigma, pool_sigma, structure, "logtbn", training,
                                  log_gain, **args)


def test_group_structure_matches_the_reference_and_saves_work():
  mu, sigma = initial_params(40)
  structure = efficient_leaf.group_structure(mu, sigma, 4, 4.77, 1.0, 401, 160)
  assert structure == ref_eleaf.groups(mu, sigma)
  strides = [s for _, _, s, _, _ in structure]
  assert strides == sorted(strides, reverse=True) and strides[-1] == 1 and strides[0] > 1
  # multiply-adds per input sample of the filterbank: all of LEAF's 80 x 401 taps vs grouped
  grouped = sum(2 * (b - a) * k / s for a, b, s, k, _ in structure)
  assert grouped < 80 * 401 / 7  # 4509 vs 32080 for 40 filters


@pytest.mark.parametrize("kwargs,samples,training", [
    ({"compression": "pcen"}, 2400, False),
    ({"compression": "logtbn"}, 2405, False),
    ({"compression": "logtbn"}, 2400, True),
    ({"compression": "pcen", "n_filters": 24, "num_groups": 3, "stride_factor": 0.5,
      "conv_win_factor": 3.0, "min_freq": 100.0, "max_freq": 7000.0}, 1999, False),
])
def test_matches_numpy_reference(kwargs, samples, training):
  """Energies and outputs vs float64; tolerances: float32 sums over <= 457 taps."""
  x = signals.speech_like(2, samples)
  frontend = tf_frontends.EfficientLeaf(**kwargs)
  frontend(x)
  # Move the weights off the init so the per-group clipping and pooling width matter.
  frontend.pooling_sigma.assign(frontend.pooling_sigma * np.linspace(0.6, 1.2, frontend.n_filters))
  frontend.kernel.assign(frontend.kernel * [1.02, 0.9])
  mu, sigma = frontend.kernel.numpy().astype(np.float64).T
  got_energies = frontend.energies(x).numpy()
  expected_energies = ref_eleaf.energies(
      x.astype(np.float64), mu, sigma, frontend.pooling_sigma.numpy().astype(np.float64),
      ref_eleaf.groups(*initial_params(frontend.n_filters, frontend.min_freq, frontend.max_freq),
                       frontend.num_groups, frontend.conv_win_factor, frontend.stride_factor),
      conv_win_factor=frontend.conv_win_factor, stride_factor=frontend.stride_factor)
  np.testing.assert_allclose(got_energies, expected_energies, rtol=1e-4,
                             atol=1e-5 * np.abs(expected_energies).max())
  got = frontend(x, training=training).numpy()
  expected = reference(frontend, x, training)
  assert got.shape == (2, -(-samples // 160), frontend.n_filters) and got.dtype == np.float32
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_distance_to_exact_leaf_is_reported_and_small():
  """Pre-compression energies of EfficientLeaf vs Leaf, same init, 1 s of speech-like audio.

  EfficientLEAF approximates: the widest filter of each group is cut at
  +-2.4 sigma (LEAF keeps 401 taps), the lowest filter is cut less than LEAF cuts it,
  and pooling sums the energies on each group's coarser grid.
  """
  x = signals.speech_like(2, 16000)
  fast, exact = tf_frontends.EfficientLeaf(compression="pcen"), tf_frontends.Leaf()
  fast(x), exact(x)
  got = fast.energies(x).numpy()
  # pylint: disable=protected-access
  expected = exact._pooling(exact._activation(exact._filterbank(x[:, :, None]))).numpy()
  overall = np.linalg.norm(got - expected) / np.linalg.norm(expected)
  per_band = np.linalg.norm(got - expected, axis=(0, 1)) / np.linalg.norm(expected, axis=(0, 1))
  log_distance = np.abs(np.log(got + 1e-5) - np.log(expected + 1e-5)).max()
  print(f"\nEfficientLeaf vs Leaf energies: relative L2 distance {overall:.4f}, "
        f"median band {np.median(per_band):.4f}, worst band {per_band.max():.4f} "
        f"(band {per_band.argmax()}), max |log(e + 1e-5) difference| {log_distance:.3f}")
  assert overall < 0.01
  assert np.median(per_band) < 0.01 and per_band.max() < 0.2


@pytest.mark.parametrize("compression", ["pcen", "logtbn"])
def test_gradients_reach_every_trainable_weight(compression):
  frontend = tf_frontends.EfficientLeaf(n_filters=8, num_groups=2, compression=compression)
  x = signals.speech_like(2, 1600)
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(frontend(x, training=True) - 0.3) * tf.range(8.0))
  variables = frontend.trainable_variables
  names = sorted(v.name.split("/")[-1].split(":")[0] for v in variables)
  expected = ["alpha", "delta", "kernel", "pooling_sigma", "root", "smooth"] if (
      compression == "pcen") else ["beta", "gamma", "kernel", "log_gain", "pooling_sigma"]
  assert names == expected
  for var, grad in zip(variables, tape.gradient(loss, variables)):
    assert grad is not None and np.all(np.isfinite(grad.numpy())), var.name
    assert np.any(grad.numpy() != 0), var.name


def test_saved_model_round_trip_and_xla(tmp_path):
  frontend = tf_frontends.EfficientLeaf(n_filters=16)
  x = signals.speech_like(2, 3200)
  frontend(x, training=True)  # moves the batch norm's moving statistics off their init
  expected = frontend(x).numpy()
  xla = tf.function(lambda w: frontend(w), jit_compile=True)
  np.testing.assert_allclose(xla(x).numpy(), expected, rtol=1e-4, atol=1e-4)
  module = tf.Module()
  module.frontend = frontend
  module.serve = tf.function(lambda w: frontend(w, training=False),
                             input_signature=[tf.TensorSpec([None, None], tf.float32)])
  tf.saved_model.save(module, str(tmp_path / "eleaf"))
  restored = tf.saved_model.load(str(tmp_path / "eleaf"))
  np.testing.assert_allclose(restored.serve(x).numpy(), expected, rtol=1e-6, atol=1e-6)
  clone = tf_frontends.EfficientLeaf.from_config(frontend.get_config())
  clone(x)
  clone.set_weights(frontend.get_weights())
  np.testing.assert_array_equal(clone(x).numpy(), expected)


@pytest.mark.parametrize("length", [1, 2, 7, 8])
def test_lower_median_over_time(length):
  x = np.random.default_rng(length).standard_normal((2, length, 3)).astype(np.float32)
  got = log_tbn.lower_median_over_time(tf.constant(x)).numpy()
  np.testing.assert_array_equal(got[:, 0], np.sort(x, axis=1)[:, (length - 1) // 2])


@pytest.mark.parametrize("kwargs,message", [
    ({"num_groups": 0}, "num_groups must be in"),
    ({"n_filters": 4, "num_groups": 5}, r"num_groups must be in \[1, n_filters=4\]"),
    ({"conv_win_factor": 0.0}, "conv_win_factor > 0"),
    ({"stride_factor": -1.0}, "stride_factor > 0"),
    ({"pooling_init": 0.7}, "pooling_init <= 0.5"),
    ({"compression": "log"}, "compression must be one of"),
    ({"n_filters": 0}, "n_filters"),
    ({"max_freq": 9000.0}, "max_freq=9000.0"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
  with pytest.raises(ValueError, match=message):
    tf_frontends.EfficientLeaf(**kwargs)
  with pytest.raises(ValueError, match="momentum"):
    log_tbn.LogTBN(momentum=1.0)


def test_config_holds_every_argument():
  frontend = tf_frontends.get("efficientleaf", n_filters=12, num_groups=3, compression="pcen",
                              conv_win_factor=3.5, stride_factor=2.0, log_gain_init=4.0)
  config = frontend.get_config()
  assert type(frontend).from_config(config).get_config() == config
  assert tf_keras.layers.deserialize(tf_keras.layers.serialize(frontend)).num_groups == 3
  layer = log_tbn.LogTBN(3.0, learn_log_gain=False, median_filter=False, momentum=0.5)
  assert log_tbn.LogTBN.from_config(layer.get_config()).get_config() == layer.get_config()
  assert math.isclose(config["conv_win_factor"], 3.5)
