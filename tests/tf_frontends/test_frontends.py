"""Whole frontends: numbers vs numpy_reference, shapes, tf.function/XLA, gradients, config, bad input."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from tests.tf_frontends import numpy_reference as ref
from tests.tf_frontends import signals
from tests.tf_frontends.test_efficient_leaf import reference as efficient_leaf_reference
from tf_frontends import initializers

NAMES = sorted(tf_frontends.FRONTENDS)


def output_bins(name, n_filters):
  """Features per frame: EfficientLEAF appends its median-filtered bands (the authors' default)."""
  return 2 * n_filters if name == "efficientleaf" else n_filters


def reference_output(name, frontend, x):
  """float64 numpy output of `frontend` (already built) for waveform x [B, T]."""
  x = x.astype(np.float64)
  weights = {"/".join(w.name.split(":")[0].split("/")[-2:]): w.numpy() for w in frontend.weights}
  if name == "leaf":
    mu, sigma = weights["gabor_conv/kernel"].T
    return ref.leaf(x, mu, sigma, weights["gaussian_lowpass/kernel"], 0.96, 0.04, 2.0, 2.0, 1e-12)
  if name == "sincnet":
    return ref.sincnet(x, weights["sinc_conv/kernel"])
  if name == "sincnet_plus":
    return ref.sincnet_plus(x, weights["sinc_conv/kernel"], weights["gaussian_lowpass/kernel"])
  if name == "tdfbanks":
    return ref.tdfbanks(x, weights["conv/kernel"][:, 0, :], weights["learnable_pooling/kernel"])
  if name == "efficientleaf":
    return efficient_leaf_reference(frontend, x)
  return ref.mel(x, initializers.mel_filters(40, 16000, 60.0, 7800.0))


@pytest.mark.parametrize("name", NAMES)
def test_default_output_matches_numpy_reference(name):
  x = signals.speech_like(2, 2400)
  frontend = tf_frontends.get(name)
  got = frontend(x).numpy()
  expected = reference_output(name, frontend, x)
  assert got.shape == (2, 15, output_bins(name, 40)) and got.dtype == np.float32
  # Log / LayerNorm outputs are O(1..10); PCEN outputs O(0.01..1).
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_sincnet_audax_numerics_match_numpy_reference():
  """symmetric_window + layer_norm_epsilon=1e-6 (audax's SincNet) vs float64 numpy.

  A quiet input keeps the LayerNorm variance near 1e-3, where the epsilon matters.
  """
  x = 0.01 * signals.speech_like(2, 2400)
  frontend = tf_frontends.get("sincnet", symmetric_window=True, layer_norm_epsilon=1e-6)
  got = frontend(x).numpy()
  params = frontend.weights[0].numpy()
  expected = ref.sincnet(x.astype(np.float64), params, epsilon=1e-6, symmetric=True)
  tolerance = 1e-4 * np.abs(expected).max()
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=tolerance)
  for kwargs in ({"epsilon": 1e-3, "symmetric": True}, {"epsilon": 1e-6, "symmetric": False}):
    assert np.abs(ref.sincnet(x.astype(np.float64), params, **kwargs) - expected).max() > 10 * tolerance
  config = type(frontend).from_config(frontend.get_config()).get_config()
  assert config["symmetric_window"] is True and config["layer_norm_epsilon"] == 1e-6
  assert tf_frontends.SincNet().get_config()["layer_norm_epsilon"] == 1e-3   # leaf-audio's


def test_mel_equals_tf_signal_stft_path():
  x = signals.speech_like(2, 3333)
  stft = tf.signal.stft(x, 401, 160, 512, pad_end=True)
  mel = tf.matmul(tf.square(tf.abs(stft)), initializers.mel_filters(40, 16000, 60., 7800.).T)
  np.testing.assert_allclose(tf_frontends.MelFilterbanks()(x).numpy(),
                             np.log(mel.numpy() + 1e-5), atol=2e-4)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("samples", [1, 159, 401, 1601])
def test_frames_are_ceil_of_samples_over_hop(name, samples):
  frontend = tf_frontends.get(name, n_filters=8)
  out = frontend(tf.zeros([3, samples, 1]))
  assert out.shape == (3, -(-samples // 160), output_bins(name, 8))
  assert np.all(np.isfinite(out.numpy()))


@pytest.mark.parametrize("name", NAMES)
def test_tf_function_variable_shapes_and_xla(name):
  frontend = tf_frontends.get(name, n_filters=16)
  spec = tf.TensorSpec([None, None], tf.float32)
  graph_fn = tf.function(frontend, input_signature=[spec])
  xla_fn = tf.function(frontend, input_signature=[spec], jit_compile=True)
  for batch, samples in [(1, 800), (3, 1234)]:
    x = signals.speech_like(batch, samples, seed=batch)
    eager = frontend(x).numpy()
    np.testing.assert_allclose(graph_fn(x).numpy(), eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xla_fn(x).numpy(), eager, rtol=1e-4, atol=1e-4)
  assert len(graph_fn.get_concrete_function().graph.get_operations()) > 0


@pytest.mark.parametrize("name", NAMES)
def test_gradients_finite_and_nonzero(name):
  frontend = tf_frontends.get(name, n_filters=8)
  for x, must_be_nonzero in [(signals.speech_like(2, 1600), True),
                             (np.zeros((2, 1600), np.float32), False)]:
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(frontend(x) - 0.3))
    grads = tape.gradient(loss, frontend.trainable_variables)
    for var, grad in zip(frontend.trainable_variables, grads):
      assert grad is not None and np.all(np.isfinite(grad.numpy())), var.name
      if must_be_nonzero:
        assert np.any(grad.numpy() != 0), var.name
  if name in ("leaf", "sincnet"):  # on silence the normaliser still learns
    assert any(np.any(g.numpy() != 0) for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_large_learning_rate_step_keeps_outputs_finite(name):
  frontend = tf_frontends.get(name, n_filters=8)
  x = signals.speech_like(2, 1600)
  optimizer = tf_keras.optimizers.SGD(learning_rate=1e3)
  for _ in range(2):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(frontend(x) - 1.0))
    grads = tape.gradient(loss, frontend.trainable_variables)
    optimizer.apply_gradients(zip(grads, frontend.trainable_variables))
  assert np.all(np.isfinite(frontend(x).numpy()))
  assert np.all(np.isfinite(frontend(np.zeros_like(x)).numpy()))


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
  frontend = tf_frontends.get(name, n_filters=12, window_len=30.0, window_stride=20.0)
  x = signals.speech_like(1, 999)
  y = frontend(x)
  clone = type(frontend).from_config(frontend.get_config())
  assert clone.get_config() == frontend.get_config()
  clone(x)
  clone.set_weights(frontend.get_weights())
  np.testing.assert_array_equal(clone(x).numpy(), y.numpy())
  assert y.shape == (1, -(-999 // 320), output_bins(name, 12))
  restored = tf_keras.layers.deserialize(tf_keras.layers.serialize(frontend))
  assert type(restored) is type(frontend)


def test_constructor_arguments_are_honoured():
  leaf = tf_frontends.get("leaf", n_filters=24, learn_filters=False, learn_pooling=False,
                          learn_pcen=False, preemp=True, mean_var_norm=True,
                          min_freq=100.0, max_freq=4000.0)
  leaf(tf.zeros([1, 400]))
  assert leaf.trainable_weights
  assert all("instance_norm" in w.name for w in leaf.trainable_weights)
  gabor = [w for w in leaf.weights if "gabor_conv" in w.name][0].numpy()
  assert gabor.shape == (24, 2)
  assert gabor[:, 0].max() * 16000 / (2 * np.pi) < 4000.0
  assert [w.name for w in leaf.weights if "preemp" in w.name]


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_clear_errors(name):
  frontend = tf_frontends.get(name, n_filters=8)  # EfficientLEAF's 8 groups need >= 8
  with pytest.raises(ValueError, match="rank 1"):
    frontend(tf.zeros([400]))
  with pytest.raises(ValueError, match="2 channels"):
    frontend(tf.zeros([1, 400, 2]))
  with pytest.raises(TypeError, match="int16"):
    frontend(tf.zeros([1, 400], tf.int16))


def test_unknown_frontend_name():
  with pytest.raises(ValueError, match="Unknown frontend 'leafy'"):
    tf_frontends.get("leafy")


def test_non_positive_sizes_rejected():
  with pytest.raises(ValueError, match="n_filters"):
    tf_frontends.Leaf(n_filters=0)


@pytest.mark.parametrize("name", ["leaf", "tdfbanks", "mel"])
def test_frequency_range_beyond_nyquist_rejected(name):
  with pytest.raises(ValueError, match="max_freq=7800.0, sample_rate=8000"):
    tf_frontends.get(name, sample_rate=8000)
  assert tf_frontends.get(name, sample_rate=8000, max_freq=3800.0).max_freq == 3800.0


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision_keeps_the_frontend_float32(name, policy):
  x = signals.speech_like(1, 1600)
  reference = tf_frontends.get(name, n_filters=8)
  expected = reference(x).numpy()
  tf_keras.mixed_precision.set_global_policy(policy)
  try:
    frontend = tf_frontends.get(name, n_filters=8)
    frontend(x)
    frontend.set_weights(reference.get_weights())
    got = frontend(tf.cast(x, tf.float16))
  finally:
    tf_keras.mixed_precision.set_global_policy("float32")
  assert got.dtype == tf.float32
  assert all(w.dtype == tf.float32 for w in frontend.weights)
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
