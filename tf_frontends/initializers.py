"""Initialisers that make the learnable frontends start as mel filterbanks.

All follow google-research/leaf-audio (2022), including its quirks:

* Gabor parameters from mel filters: for each filter of
  `tf.signal.linear_to_mel_weight_matrix(N, n_fft // 2 + 1, sr, f_min, f_max)`
  take the square root, the centre bin c = argmax and the full width at half
  maximum FWHM = #bins >= peak / 2; then
      mu = 2 pi c / n_fft            (radians per sample)
      sigma = sqrt(2 ln 2) n_fft / (pi FWHM)   (samples).
* Time-domain filterbanks: the Gabor filters above, each scaled by
  sqrt(area_n * 2 sqrt(pi) * sigma_n) with area_n = peak_n (#bins > 0 + 2) pi / n_fft.
* SincNet: lower edges mel-spaced (2595 log10(1 + f / 700)) from `min_low_hz` to
  sr / 2 - (min_low_hz + min_band_hz) in N + 1 points; the parameters are
  (lower edge, width). The layer adds `min_low_hz` to the lower edge again.
"""
import math

import numpy as np
import tensorflow as tf
import tf_keras

from tf_frontends import impulse_responses


def hz_to_mel(hz):
  return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
  return 700.0 * (np.power(10.0, np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filters(n_filters: int, sample_rate: int, min_freq: float,
                max_freq: float, n_fft: int = 512) -> np.ndarray:
  """TF's mel weight matrix as float32 numpy, [n_filters, n_fft // 2 + 1]."""
  matrix = tf.signal.linear_to_mel_weight_matrix(
      num_mel_bins=n_filters,
      num_spectrogram_bins=n_fft // 2 + 1,
      sample_rate=sample_rate,
      lower_edge_hertz=min_freq,
      upper_edge_hertz=max_freq)
  return np.transpose(matrix.numpy())


def gabor_params_from_mels(n_filters: int, sample_rate: int, min_freq: float,
                           max_freq: float, n_fft: int = 512) -> np.ndarray:
  """(mu, sigma) per filter, float32 [n_filters, 2]; equations in the module doc."""
  sqrt_filters = np.sqrt(
      mel_filters(n_filters, sample_rate, min_freq, max_freq, n_fft))
  centre_bins = np.argmax(sqrt_filters, axis=1).astype(np.float32)
  peaks = sqrt_filters.max(axis=1, keepdims=True)
  fwhm_bins = np.sum(sqrt_filters >= peaks / 2.0, axis=1).astype(np.float32)
  coeff = np.float32(math.sqrt(2.0 * math.log(2.0)) * n_fft)
  mu = centre_bins * np.float32(2.0 * math.pi / n_fft)
  sigma = coeff / (np.float32(math.pi) * fwhm_bins)
  return np.stack([mu, sigma], axis=1).astype(np.float32)


def _check_shape(name, shape, rank):
  if len(shape) != rank:
    raise ValueError(f"{name} initialises rank-{rank} weights, got shape {shape}.")


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class GaborInit(tf_keras.initializers.Initializer):
  """Gabor (mu, sigma) matching a mel filterbank; weight shape [filters, 2]."""

  def __init__(self, sample_rate=16000, min_freq=60.0, max_freq=7800.0,
               n_fft=512):
    self.sample_rate = sample_rate
    self.min_freq = min_freq
    self.max_freq = max_freq
    self.n_fft = n_fft

  def __call__(self, shape, dtype=None, **kwargs):
    _check_shape("GaborInit", shape, 2)
    params = gabor_params_from_mels(shape[0], self.sample_rate, self.min_freq,
                                    self.max_freq, self.n_fft)
    return tf.constant(params, dtype=dtype or tf.float32)

  def get_config(self):
    return {"sample_rate": self.sample_rate, "min_freq": self.min_freq,
            "max_freq": self.max_freq, "n_fft": self.n_fft}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class TimeDomainGaborInit(GaborInit):
  """Energy-scaled Gabor filters as a plain conv kernel [K, 1, 2 * filters].

  Channels interleave real and imaginary parts: re0, im0, re1, im1, ...
  """

  def __call__(self, shape, dtype=None, **kwargs):
    _check_shape("TimeDomainGaborInit", shape, 3)
    size, _, channels = shape
    n_filters = channels // 2
    params = gabor_params_from_mels(n_filters, self.sample_rate, self.min_freq,
                                    self.max_freq, self.n_fft)
    filters = mel_filters(n_filters, self.sample_rate, self.min_freq,
                          self.max_freq, self.n_fft)
    areas = (filters.max(axis=1) * (np.sum(filters > 0, axis=1) + 2) * math.pi /
             self.n_fft)
    scale = np.sqrt(areas * 2.0 * math.sqrt(math.pi) * params[:, 1])
    real, imag = impulse_responses.gabor_filters(
        tf.constant(params[:, 0]), tf.constant(params[:, 1]), size)
    scale = tf.constant(scale[:, np.newaxis], tf.float32)
    kernel = impulse_responses.interleave_real_imag(real * scale, imag * scale)
    return tf.cast(kernel, dtype or tf.float32)


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class SincInit(tf_keras.initializers.Initializer):
  """SincNet's (lower edge, width) in Hz, mel-spaced; weight shape [filters, 2]."""

  def __init__(self, sample_rate=16000, min_low_hz=50.0, min_band_hz=50.0):
    self.sample_rate = sample_rate
    self.min_low_hz = min_low_hz
    self.min_band_hz = min_band_hz

  def __call__(self, shape, dtype=None, **kwargs):
    _check_shape("SincInit", shape, 2)
    high_hz = 0.5 * self.sample_rate - (self.min_low_hz + self.min_band_hz)
    edges_hz = mel_to_hz(
        np.linspace(hz_to_mel(self.min_low_hz), hz_to_mel(high_hz),
                    shape[0] + 1))
    params = np.stack([edges_hz[:-1], np.diff(edges_hz)], axis=1)
    return tf.constant(params, dtype=dtype or tf.float32)

  def get_config(self):
    return {"sample_rate": self.sample_rate, "min_low_hz": self.min_low_hz,
            "min_band_hz": self.min_band_hz}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class PreempInit(tf_keras.initializers.Initializer):
  """Pre-emphasis y[n] = x[n] - alpha x[n-1] as a 2-tap kernel [2, 1, 1]."""

  def __init__(self, alpha=0.97):
    self.alpha = alpha

  def __call__(self, shape, dtype=None, **kwargs):
    if tuple(shape) != (2, 1, 1):
      raise ValueError(f"PreempInit initialises a [2, 1, 1] kernel, got {shape}.")
    return tf.constant([[[-self.alpha]], [[1.0]]], dtype=dtype or tf.float32)

  def get_config(self):
    return {"alpha": self.alpha}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class SquaredHannInit(tf_keras.initializers.Initializer):
  """leaf-audio's squared Hann lowpass (see impulse_responses) for shape [K]."""

  def __call__(self, shape, dtype=None, **kwargs):
    _check_shape("SquaredHannInit", shape, 1)
    return tf.constant(impulse_responses.squared_hann_window(shape[0]),
                       dtype=dtype or tf.float32)

  def get_config(self):
    return {}
