"""Impulse responses and windows against numpy_reference (float64), atol 1e-6 on O(1) taps."""
import numpy as np
import pytest
import tensorflow as tf

from tests.tf_frontends import numpy_reference as ref
from tf_frontends import impulse_responses


@pytest.mark.parametrize("size", [401, 400, 25])
def test_gabor_filters_match_formula(size):
  mu = np.array([0.0, 0.3, 1.7, np.pi], np.float32)
  sigma = np.array([1.5, 10.0, 60.0, 150.0], np.float32)
  real, imag = impulse_responses.gabor_filters(tf.constant(mu), tf.constant(sigma), size)
  expected = ref.gabor(mu, sigma, size)
  assert real.shape == (4, size)
  np.testing.assert_allclose(real.numpy(), expected.real, atol=1e-6)
  np.testing.assert_allclose(imag.numpy(), expected.imag, atol=1e-6)


def test_interleave_orders_real_then_imag_per_filter():
  real = tf.constant([[1.0, 2.0], [3.0, 4.0]])
  imag = -real
  kernel = impulse_responses.interleave_real_imag(real, imag).numpy()
  assert kernel.shape == (2, 1, 4)
  np.testing.assert_array_equal(kernel[:, 0, :], [[1, -1, 3, -3], [2, -2, 4, -4]])


@pytest.mark.parametrize("size", [401, 101])
def test_sinc_bandpass_matches_formula_and_peaks_at_one(size):
  low = np.array([100.0, 1000.0, 5000.0], np.float32)
  high = np.array([197.0, 1400.0, 8000.0], np.float32)
  taps = impulse_responses.sinc_bandpass_filters(
      tf.constant(low), tf.constant(high), size, 16000).numpy()
  np.testing.assert_allclose(taps, ref.sinc_bandpass(low, high, size, 16000), atol=2e-6)
  np.testing.assert_allclose(taps.max(axis=0), 1.0, rtol=1e-6)


def test_sinc_centre_tap_has_finite_gradient():
  low, high = tf.Variable([100.0]), tf.Variable([300.0])
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(impulse_responses.sinc_bandpass_filters(low, high, 401, 16000))
  grads = tape.gradient(loss, [low, high])
  assert all(np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0) for g in grads)


def test_gaussian_window_matches_formula_and_clips_sigma():
  sigma = np.array([0.001, 0.1, 0.4, 0.9], np.float32)
  window = impulse_responses.gaussian_window(tf.constant(sigma), 401).numpy()
  np.testing.assert_allclose(window, ref.gaussian_window(sigma, 401), atol=1e-6)
  np.testing.assert_allclose(window[:, 3], ref.gaussian_window([0.5], 401)[:, 0], atol=1e-6)
  assert window[200, 2] == pytest.approx(1.0)


def test_reference_windows():
  n = np.arange(401)
  np.testing.assert_allclose(impulse_responses.hamming_window(401),
                             0.54 - 0.46 * np.cos(2 * np.pi * n / 401))
  hann = impulse_responses.squared_hann_window(401)
  # leaf-audio's (n - 1) shift: the peak sits one tap right of centre.
  assert np.argmax(hann) == 201
  np.testing.assert_allclose(hann, (0.5 - 0.5 * np.cos(2 * np.pi * (n - 1) / 400))**2)


def test_symmetric_hamming_is_numpys():
  # audax's SincNet windows with np.hamming; leaf-audio's window differs from it.
  np.testing.assert_allclose(impulse_responses.hamming_window(401, symmetric=True),
                             np.hamming(401), atol=1e-15)
  assert np.abs(impulse_responses.hamming_window(401) - np.hamming(401)).max() > 1e-3
