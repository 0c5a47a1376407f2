"""Impulse responses and windows of the frontends' filters, in real arithmetic.

Everything here is a pure function of the (learnable) filter parameters and
returns float32 tensors, so the same code runs eagerly, inside tf.function, under
XLA and in TFLite (no tf.complex anywhere: complex Gabor filters are returned as
their real and imaginary parts). Each formula is written once for any numpy-like
namespace `ops`: TensorFlow's (`tf_ops`, the default: the tf_keras layers) or
`keras.ops` (the Keras 3 layers of `tf_frontends.keras3`, on any backend).

Tap grids follow google-research/leaf-audio: a K-tap filter is evaluated at
t = -(K // 2), ..., (K + 1) // 2 - 1, i.e. centred for odd K.
"""
import math

import numpy as np

from tf_frontends import tf_ops


def centred_taps(size: int, ops=tf_ops):
  """t = -(size // 2) ... (size + 1) // 2 - 1 as float32, shape [size]."""
  return ops.arange(-(size // 2), (size + 1) // 2, dtype="float32")


def gabor_filters(center_rad, sigma, size: int, ops=tf_ops):
  """Complex Gabor filters as (real, imaginary) parts.

  phi_n(t) = 1 / (sqrt(2 pi) sigma_n) * exp(-t^2 / (2 sigma_n^2))
             * (cos(mu_n t) + i sin(mu_n t))

  Args:
    center_rad: [filters] centre frequencies mu_n in radians per sample.
    sigma: [filters] standard deviations sigma_n of the envelope, in samples.
    size: number of taps K.

  Returns:
    (real, imag), each float32 [filters, size].
  """
  t = centred_taps(size, ops)[None, :]
  sigma = sigma[:, None]
  envelope = ops.exp(-0.5 * ops.square(t / sigma)) / (math.sqrt(2.0 * math.pi) *
                                                     sigma)
  phase = center_rad[:, None] * t
  return envelope * ops.cos(phase), envelope * ops.sin(phase)


def gabor_sigma_bounds(kernel_size: int, min_fwhm: float = 4.0):
  """sigma range that keeps a Gabor filter's FWHM between min_fwhm samples and the kernel.

  sigma in [min_fwhm sqrt(2 ln 2) / pi, K sqrt(2 ln 2) / pi]: 1.499 to 150.29 for LEAF's
  K = 401 and min_fwhm = 4 (leaf-audio's); EfficientLEAF's authors allow min_fwhm = 2.
  """
  coeff = math.sqrt(2.0 * math.log(2.0)) / math.pi
  return min_fwhm * coeff, kernel_size * coeff


def clip_gabor_params(mu, sigma, sigma_min: float, sigma_max: float,
                      mu_max: float = math.pi, ops=tf_ops):
  """(mu clipped to [0, mu_max], sigma clipped to [sigma_min, sigma_max])."""
  return ops.clip(mu, 0.0, mu_max), ops.clip(sigma, sigma_min, sigma_max)


def interleave_real_imag(real, imag, ops=tf_ops):
  """[filters, K] x 2 -> conv kernel [K, 1, 2 * filters] ordered re0, im0, re1, ..."""
  stacked = ops.stack([real, imag], axis=1)  # [filters, 2, K]
  kernel = ops.reshape(stacked, [-1, real.shape[-1]])  # [2 * filters, K]
  return ops.transpose(kernel)[:, None, :]


def sinc_bandpass_filters(low_hz, high_hz, size: int, sample_rate: float, ops=tf_ops):
  """Band-pass filters as a difference of two windowless sinc low-passes.

  h_n(t) = 2 f_h sinc(2 pi f_h t / sr) - 2 f_l sinc(2 pi f_l t / sr),
  sinc(x) = sin(x) / x, centre tap 2 f_h - 2 f_l, then each filter is divided by
  its largest tap (as leaf-audio and SincNet do). Frequencies are in Hz; the
  taps carry the Hz scale, which the division by the maximum removes.

  Args:
    low_hz: [filters] lower cut-offs f_l.
    high_hz: [filters] upper cut-offs f_h.
    size: number of taps K (odd K gives an exact centre tap).
    sample_rate: in Hz.

  Returns:
    float32 [size, filters].
  """
  t_sec = centred_taps(size, ops)[:, None] / float(sample_rate)
  is_centre = ops.equal(t_sec, 0.0)
  # The centre tap is the limit 2f; a safe non-zero t keeps its gradient finite.
  safe_t = ops.where(is_centre, ops.ones_like(t_sec), t_sec)

  def lowpass(cutoff_hz):
    two_f = 2.0 * cutoff_hz[None, :]
    arg = math.pi * two_f * safe_t
    return ops.where(is_centre, two_f, two_f * ops.sin(arg) / arg)

  band_pass = lowpass(high_hz) - lowpass(low_hz)
  return band_pass / ops.max(band_pass, axis=0, keepdims=True)


def sinc_band_edges(params, min_low_hz: float, min_band_hz: float, sample_rate: float,
                    ops=tf_ops):
  """SincNet's (f_l, f_h), each [filters], from its weight [filters, 2] = (a, b) in Hz.

  f_l = min_low_hz + |a|,  f_h = clip(f_l + min_band_hz + |b|, min_low_hz, sample_rate / 2).
  """
  low = min_low_hz + ops.abs(params[:, 0])
  high = ops.clip(low + min_band_hz + ops.abs(params[:, 1]), min_low_hz, sample_rate / 2)
  return low, high


def windowed_sinc_filters(low_hz, high_hz, size: int, sample_rate: float,
                          symmetric_window: bool, ops=tf_ops):
  """`sinc_bandpass_filters` times `hamming_window(size, symmetric_window)`: [size, filters]."""
  window = ops.convert_to_tensor(hamming_window(size, symmetric_window).astype(np.float32))
  return sinc_bandpass_filters(low_hz, high_hz, size, sample_rate, ops) * window[:, None]


def gaussian_window(sigma, size: int, ops=tf_ops):
  """Gaussian pooling windows, one per channel, unnormalised.

  w_c[n] = exp(-0.5 * ((n - (K - 1) / 2) / (sigma_c (K - 1) / 2))^2),
  n = 0 ... K - 1, with sigma_c clipped to [2 / K, 0.5] as in leaf-audio.

  Args:
    sigma: [channels] width relative to half the window.
    size: number of taps K.

  Returns:
    float32 [size, channels].
  """
  offsets = ops.arange(size, dtype="float32")[:, None] - 0.5 * (size - 1)
  return sampled_gaussian_window(sigma, size, offsets, size - 1, ops)


def sampled_gaussian_window(sigma, size: int, offsets, span_samples: float, ops=tf_ops):
  """LEAF's Gaussian pooling window at any sample offsets from its centre.

  w_c(t) = exp(-0.5 * (t / (sigma_c * span_samples / 2))^2), sigma_c clipped to
  [2 / size, 0.5] (leaf-audio's bounds for a window of `size` taps).

  Args:
    sigma: [channels] width relative to half the span.
    size: the window's length in taps, for the clipping bounds.
    offsets: [taps, 1] offsets t from the centre, in samples.
    span_samples: the span the relative width refers to (K - 1 for LEAF's K taps).

  Returns:
    float32 [taps, channels].
  """
  sigma = ops.clip(sigma, 2.0 / size, 0.5)
  half_width = 0.5 * span_samples * sigma[None, :]
  return ops.exp(-0.5 * ops.square(offsets / half_width))


def hamming_window(size: int, symmetric: bool = False) -> np.ndarray:
  """Hamming window 0.54 - 0.46 cos(2 pi n / D), n = 0 ... K - 1.

  symmetric=False (leaf-audio's, the default): D = K. The window is not
  symmetric, which is why SincNet's cross-correlation and convolution differ.
  Kept for parity with leaf-audio.
  symmetric=True: D = K - 1, the textbook window (numpy's `np.hamming(K)`),
  which audax's SincNet uses; needed to run audax checkpoints exactly.
  """
  n = np.arange(size, dtype=np.float64)
  return 0.54 - 0.46 * np.cos(2.0 * np.pi * n / (size - 1 if symmetric else size))


def squared_hann_window(size: int) -> np.ndarray:
  """leaf-audio's squared Hann: (0.5 (1 - cos(2 pi (n - 1) / (K - 1))))^2.

  The (n - 1) shifts the window one tap to the right of centre (a quirk of the
  reference, kept for parity of the time-domain filterbanks' initial lowpass).
  """
  n = np.arange(size, dtype=np.float64)
  return (0.5 * (1.0 - np.cos(2.0 * np.pi * (n - 1) / (size - 1))))**2
