"""EfficientLeaf vs the authors' PyTorch outputs, a float64 numpy EfficientLEAF, exact LEAF; gradients,
saving, XLA."""
import math
import os

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

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures",
                        "efficientleaf")
# The old defaults, LEAF-aligned: 4 groups, the paper's factors, leaf-audio's init.
OURS_BEFORE = dict(num_groups=4, conv_win_factor=4.77, stride_factor=1.0, initializer="leaf",
                   pooling="leaf")


def initial_params(frontend):
  """(mu, sigma) the layer starts from, clipped as its structure sees them, in float64."""
  if frontend.initializer == "leaf":
    mu, sigma = ref.mel_params(initializers.mel_filters(
        frontend.n_filters, 16000, frontend.min_freq, frontend.max_freq))
  else:
    mu, sigma = ref_eleaf.authors_init(frontend.n_filters, frontend.min_freq, frontend.max_freq)
  return (np.clip(mu, 0, math.pi),
          np.clip(sigma, ref_eleaf.SIGMA_FLOOR, 401 * ref.SQRT_2LN2 / math.pi))


def reference_energies(frontend, x):
  mu, sigma = frontend.kernel.numpy().astype(np.float64).T
  structure = ref_eleaf.groups(*initial_params(frontend), frontend.num_groups,
                               frontend.conv_win_factor, frontend.stride_factor)
  return ref_eleaf.energies(x.astype(np.float64), mu, sigma,
                            frontend.pooling_sigma.numpy().astype(np.float64), structure,
                            conv_win_factor=frontend.conv_win_factor,
                            stride_factor=frontend.stride_factor, pooling=frontend.pooling)


def reference(frontend, x, training=False):
  """The numpy EfficientLEAF with the layer's current weights and arguments."""
  energies = reference_energies(frontend, x)
  if frontend.compression == "pcen":
    return ref.pcen(np.maximum(energies, 1e-5), 0.96, 0.04, 2.0, 2.0, 1e-12)
  log_gain = frontend._compression.log_gain.numpy().astype(np.float64)  # pylint: disable=protected-access
  return ref_eleaf.log_tbn(energies, log_gain, training, median_bands=frontend.median_bands)


def test_default_structure_is_gabor_8g_opt_and_saves_work():
  frontend = tf_frontends.EfficientLeaf()
  frontend(tf.zeros([1, 401]))
  mu, sigma = initial_params(frontend)
  assert list(frontend.groups) == ref_eleaf.groups(mu, sigma, 8, 6.0, 16.0)
  strides = [s for _, _, s, _, _ in frontend.groups]
  assert strides == sorted(strides, reverse=True) and strides[-1] > 1
  # multiply-adds per input sample of the filterbank: all of LEAF's 80 x 401 taps vs grouped
  grouped = sum(2 * (b - a) * k / s for a, b, s, k, _ in frontend.groups)
  assert grouped < 80 * 401 / 100  # 172 vs 32080 for 40 filters
  before = efficient_leaf.group_structure(*ref.gabor_clip(*ref.mel_params(
      initializers.mel_filters(40, 16000, 60.0, 7800.0)), 401), 4, 4.77, 1.0, 401, 160)
  assert [s for _, _, s, _, _ in before][-1] == 1  # the old default ran its top group at stride 1


def load_fixture(name):
  with np.load(os.path.join(FIXTURES, f"{name}.npz")) as data:
    return dict(data)


# fixture -> our arguments for the configuration the authors' code ran (see its generator)
PARITY = {"gabor_8g_opt": {},
          "paper_4g_subtract": dict(n_filters=64, num_groups=4, conv_win_factor=4.77,
                                    stride_factor=1.0, median_bands="subtract")}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_matches_the_authors_pytorch_efficientleaf(name):
  """Outputs of CPJKU/EfficientLEAF's `EfficientLeaf` (float32, CPU) given the same parameters.

  Relative to the largest output: <= 1e-4 for energies and outputs (measured 2e-7 ... 1e-6;
  float32 sums of <= 651 taps in another order), <= 1e-3 for the gradients of a probe-weighted
  sum of the outputs (measured <= 2e-5).
  """
  data = load_fixture(name)
  frontend = tf_frontends.EfficientLeaf(**PARITY[name])
  x = data["waveform"]
  frontend(x)
  assert [s for _, _, s, _, _ in frontend.groups] == data["group_strides"].tolist()
  assert [k for _, _, _, k, _ in frontend.groups] == data["group_kernel_sizes"].tolist()
  frontend.kernel.assign(np.stack([data["center_freqs"], data["bandwidths"]], axis=1))
  frontend.pooling_sigma.assign(data["pooling_widths"])
  compression = frontend._compression  # pylint: disable=protected-access
  compression.log_gain.assign(data["log1p_a"])
  norm = compression._batch_norm  # pylint: disable=protected-access
  for variable, key in ((norm.gamma, "bn_weight"), (norm.beta, "bn_bias"),
                        (norm.moving_mean, "bn_running_mean"),
                        (norm.moving_variance, "bn_running_var")):
    variable.assign(data[key])

  def assert_close(got, expected, tolerance, what):
    error = np.abs(got - expected).max() / np.abs(expected).max()
    assert got.shape == expected.shape and error <= tolerance, f"{what}: {error:.2e}"

  assert_close(frontend.energies(x).numpy(), data["energies"], 1e-4, "energies")
  assert_close(frontend(x, training=False).numpy(), data["outputs_eval"], 1e-4, "eval")
  with tf.GradientTape() as tape:
    outputs = frontend(x, training=True)
    loss = tf.reduce_sum(outputs * data["probe"])
  assert_close(outputs.numpy(), data["outputs_train"], 1e-4, "training")
  kernel, pooling, log_gain = tape.gradient(
      loss, [frontend.kernel, frontend.pooling_sigma, compression.log_gain])
  for got, key in ((kernel[:, 0], "center_freqs"), (kernel[:, 1], "bandwidths"),
                   (pooling, "pooling_widths"), (log_gain, "log1p_a")):
    assert_close(got.numpy(), data[f"grad_{key}"], 1e-3, f"gradient of {key}")


def test_default_outputs_append_the_median_filtered_bands():
  frontend = tf_frontends.EfficientLeaf(n_filters=16)
  x = signals.speech_like(2, 1600)
  out = frontend(x).numpy()
  assert frontend.output_bins == 32 and out.shape == (2, 10, 32)
  assert frontend.compute_output_shape([2, 1600]) == (2, 10, 32)
  subtracted = tf_frontends.EfficientLeaf(n_filters=16, median_bands="subtract")
  subtracted(x)
  subtracted.set_weights([w[:16] if w.shape == (32,) else w for w in frontend.get_weights()])
  # At its initial statistics the batch norm is a fixed affine map, so the second half is
  # exactly what subtracting in place gives.
  np.testing.assert_allclose(out[..., 16:], subtracted(x).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs,samples,training", [
    ({}, 2405, False),
    ({}, 2400, True),
    ({"compression": "pcen"}, 2400, False),
    ({"median_bands": "subtract", "pooling": "leaf"}, 2400, True),
    ({"median_bands": "off", "initializer": "leaf"}, 2000, False),
    ({**OURS_BEFORE, "compression": "pcen"}, 2400, False),
    ({**OURS_BEFORE, "median_bands": "subtract"}, 2405, False),
    ({"compression": "pcen", "n_filters": 24, "num_groups": 3, "stride_factor": 0.5,
      "conv_win_factor": 3.0, "min_freq": 100.0, "max_freq": 7000.0, "pooling": "leaf"},
     1999, False),
])
def test_matches_numpy_reference(kwargs, samples, training):
  """Energies and outputs vs float64; tolerances: float32 sums over <= 651 taps."""
  x = signals.speech_like(2, samples)
  frontend = tf_frontends.EfficientLeaf(**kwargs)
  frontend(x)
  # Move the weights off the init so the per-group clipping and pooling width matter.
  frontend.pooling_sigma.assign(frontend.pooling_sigma * np.linspace(0.6, 1.2, frontend.n_filters))
  frontend.kernel.assign(frontend.kernel * [1.02, 0.9])
  expected_energies = reference_energies(frontend, x)
  np.testing.assert_allclose(frontend.energies(x).numpy(), expected_energies, rtol=1e-4,
                             atol=1e-5 * np.abs(expected_energies).max())
  got = frontend(x, training=training).numpy()
  expected = reference(frontend, x, training)
  assert got.shape == (2, -(-samples // 160), frontend.output_bins) and got.dtype == np.float32
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_distance_to_exact_leaf_is_reported_and_small():
  """Pre-compression energies of EfficientLeaf vs Leaf, same init, 1 s of speech-like audio.

  Only with pooling="leaf" (LEAF's frame centres, window and scale), so with our former
  defaults (4 groups, factors 4.77 and 1, leaf-audio's init). EfficientLEAF approximates:
  the widest filter of each group is cut at +-2.4 sigma (LEAF keeps 401 taps), the lowest
  filter is cut less than LEAF cuts it, and pooling sums the energies on each group's
  coarser grid.
  """
  x = signals.speech_like(2, 16000)
  fast = tf_frontends.EfficientLeaf(compression="pcen", **OURS_BEFORE)
  exact = tf_frontends.Leaf()
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
    loss = tf.reduce_mean(tf.square(frontend(x, training=True) - 0.3) *
                          tf.range(float(frontend.output_bins)))
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


def test_an_update_past_the_bounds_is_clamped_back_as_the_authors_do():
  frontend = tf_frontends.EfficientLeaf(n_filters=8)
  x = signals.speech_like(2, 1600)
  frontend(x)
  optimizer = tf_keras.optimizers.SGD(learning_rate=1.0)
  # SGD steps against the gradient: the first four filters down, the last four up
  push = [tf.constant([[10.0, 1e3]] * 4 + [[-10.0, -1e3]] * 4), tf.constant([1.0] * 4 + [-1.0] * 4)]
  optimizer.apply_gradients(zip(push, [frontend.kernel, frontend.pooling_sigma]))
  mu, sigma = frontend.kernel.numpy().T
  z = math.sqrt(2 * math.log(2)) / math.pi
  np.testing.assert_allclose(mu, [0.0] * 4 + [math.pi] * 4, rtol=1e-6)
  np.testing.assert_allclose(sigma, [2 * z] * 4 + [401 * z] * 4, rtol=1e-6)
  np.testing.assert_allclose(frontend.pooling_sigma.numpy(), [2 / 401] * 4 + [0.5] * 4,
                             rtol=1e-6)
  with tf.GradientTape() as tape:  # on the bound the gradient is alive: it can come back
    outputs = frontend(x, training=True)
    # Not constant per band: batch-normalised bands sum to zero over batch and time.
    loss = tf.reduce_sum(outputs * np.random.default_rng(0).standard_normal(outputs.shape))
  assert np.all(np.abs(tape.gradient(loss, frontend.kernel).numpy()[:4, 1]) > 1e-3)


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
    ({"median_bands": "append_all"}, "median_bands must be one of"),
    ({"initializer": "mel"}, "initializer must be one of"),
    ({"pooling": "max"}, "pooling must be one of"),
    ({"n_filters": 0}, "n_filters"),
    ({"max_freq": 9000.0}, "max_freq=9000.0"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
  with pytest.raises(ValueError, match=message):
    tf_frontends.EfficientLeaf(**kwargs)
  with pytest.raises(ValueError, match="momentum"):
    log_tbn.LogTBN(momentum=1.0)
  with pytest.raises(ValueError, match="append_filtered needs median_filter"):
    log_tbn.LogTBN(median_filter=False, append_filtered=True)


def test_config_holds_every_argument():
  frontend = tf_frontends.get("efficientleaf", n_filters=12, num_groups=3, compression="pcen",
                              conv_win_factor=3.5, stride_factor=2.0, log_gain_init=4.0,
                              median_bands="off", initializer="leaf", pooling="leaf")
  config = frontend.get_config()
  assert type(frontend).from_config(config).get_config() == config
  clone = tf_keras.layers.deserialize(tf_keras.layers.serialize(frontend))
  assert (clone.num_groups, clone.median_bands, clone.initializer, clone.pooling) == (
      3, "off", "leaf", "leaf")
  for kwargs in ({"median_filter": False}, {"append_filtered": True}):
    layer = log_tbn.LogTBN(3.0, learn_log_gain=False, momentum=0.5, **kwargs)
    assert log_tbn.LogTBN.from_config(layer.get_config()).get_config() == layer.get_config()
  assert math.isclose(config["conv_win_factor"], 3.5)
