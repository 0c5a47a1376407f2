"""Independent float64 numpy versions of the frontends, written from the equations.

Nothing here imports tf_frontends: these are the references the tests compare
the TensorFlow layers with. Conventions (leaf-audio's): cross-correlation, SAME
padding with the extra pad sample at the end, taps t = -(K // 2) ... (K - 1) // 2.
"""
import math

import numpy as np

SQRT_2LN2 = math.sqrt(2.0 * math.log(2.0))


def taps(size):
  return np.arange(-(size // 2), (size + 1) // 2, dtype=np.float64)


def gabor(mu, sigma, size):
  """Complex Gabor taps [filters, size] from mu (rad/sample) and sigma (samples)."""
  t = taps(size)[None, :]
  mu, sigma = np.asarray(mu, np.float64)[:, None], np.asarray(sigma, np.float64)[:, None]
  return (np.exp(-t**2 / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma) *
          np.exp(1j * mu * t))


def gabor_clip(mu, sigma, size):
  return (np.clip(mu, 0, math.pi),
          np.clip(sigma, 4 * SQRT_2LN2 / math.pi, size * SQRT_2LN2 / math.pi))


def sinc_bandpass(low_hz, high_hz, size, sample_rate):
  """[size, filters]: 2 f_h sinc - 2 f_l sinc, normalised by the max tap."""
  t = taps(size)[:, None] / sample_rate
  def lowpass(f):
    f = np.asarray(f, np.float64)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
      out = 2 * f * np.sin(2 * math.pi * f * t) / (2 * math.pi * f * t)
    return np.where(t == 0, 2 * f, out)
  band = lowpass(high_hz) - lowpass(low_hz)
  return band / band.max(axis=0, keepdims=True)


def hamming(size, symmetric=False):
  """leaf-audio's window (denominator K), or numpy's own symmetric one."""
  if symmetric:
    return np.hamming(size)
  n = np.arange(size)
  return 0.54 - 0.46 * np.cos(2 * math.pi * n / size)


def gaussian_window(sigma, size):
  """[size, channels]; sigma clipped to [2 / K, 0.5]."""
  sigma = np.clip(np.asarray(sigma, np.float64), 2.0 / size, 0.5)[None, :]
  n = np.arange(size)[:, None]
  half = 0.5 * (size - 1)
  return np.exp(-0.5 * ((n - half) / (sigma * half))**2)


def same_padding(length, size, stride):
  out = -(-length // stride)
  total = max((out - 1) * stride + size - length, 0)
  return out, total // 2, total - total // 2


def correlate_same(x, kernels):
  """x [B, T], kernels [K, C] (real or complex) -> [B, T, C], stride 1, SAME."""
  size = kernels.shape[0]
  _, left, right = same_padding(x.shape[1], size, 1)
  padded = np.pad(x, [(0, 0), (left, right)])
  frames = np.lib.stride_tricks.sliding_window_view(padded, size, axis=1)
  return np.einsum("btk,kc->btc", frames, kernels)


def pool_same(x, windows, stride):
  """x [B, T, C], windows [K, C] -> [B, ceil(T / s), C] (per-channel weighted sum)."""
  size = windows.shape[0]
  out, left, right = same_padding(x.shape[1], size, stride)
  padded = np.pad(x, [(0, 0), (left, right), (0, 0)])
  starts = np.arange(out) * stride
  frames = np.stack([padded[:, s:s + size, :] for s in starts], axis=1)
  return np.einsum("bokc,kc->boc", frames, windows)


def max_pool_same(x, size, stride):
  out, left, right = same_padding(x.shape[1], size, stride)
  padded = np.pad(x, [(0, 0), (left, right), (0, 0)], constant_values=-np.inf)
  return np.stack([padded[:, s * stride:s * stride + size].max(axis=1)
                   for s in range(out)], axis=1)


def ema(x, smooth):
  """M_t = s x_t + (1 - s) M_{t-1}, M_{-1} = x_0, by the recursion itself."""
  out = np.empty_like(x)
  state = x[:, 0]
  for t in range(x.shape[1]):
    state = smooth * x[:, t] + (1 - smooth) * state
    out[:, t] = state
  return out


def pcen(x, alpha, smooth, delta, root, floor):
  m = ema(x, smooth)
  return (x / (floor + m)**alpha + delta)**(1 / root) - delta**(1 / root)


def mel_params(mel_matrix, n_fft=512):
  """(mu, sigma) from a [filters, bins] mel matrix: sqrt, argmax, FWHM count."""
  root = np.sqrt(mel_matrix.astype(np.float64))
  centre = root.argmax(axis=1)
  fwhm = (root >= root.max(axis=1, keepdims=True) / 2).sum(axis=1)
  return 2 * math.pi * centre / n_fft, SQRT_2LN2 * n_fft / (math.pi * fwhm)


def leaf(x, mu, sigma, pool_sigma, alpha, smooth, delta, root, floor,
         size=401, stride=160):
  mu, sigma = gabor_clip(mu, sigma, size)
  z = correlate_same(x, gabor(mu, sigma, size).T)
  energy = pool_same(np.abs(z)**2, gaussian_window(pool_sigma, size), stride)
  return pcen(np.maximum(energy, 1e-5), alpha, smooth, delta, root, floor)


def sinc_filters(params, size, sample_rate, min_low_hz=50.0, min_band_hz=50.0,
                 symmetric=False):
  low = min_low_hz + np.abs(params[:, 0])
  high = np.clip(low + min_band_hz + np.abs(params[:, 1]), min_low_hz,
                 sample_rate / 2)
  return sinc_bandpass(low, high, size, sample_rate) * hamming(size, symmetric)[:, None]


def leaky_relu(x, slope=0.2):
  return np.where(x >= 0, x, slope * x)


def sincnet(x, params, sample_rate=16000, size=401, stride=160, epsilon=1e-3,
            symmetric=False):
  y = leaky_relu(correlate_same(x, sinc_filters(params, size, sample_rate,
                                                symmetric=symmetric)))
  y = np.maximum(max_pool_same(y, size, stride), 1e-5)
  mean = y.mean(axis=-1, keepdims=True)
  var = y.var(axis=-1, keepdims=True)
  return (y - mean) / np.sqrt(var + epsilon)


def sincnet_plus(x, params, pool_sigma, sample_rate=16000, size=401,
                 stride=160):
  y = leaky_relu(correlate_same(x, sinc_filters(params, size, sample_rate)))
  y = np.maximum(pool_same(y, gaussian_window(pool_sigma, size), stride), 1e-5)
  return pcen(y, 0.96, 0.04, 2.0, 2.0, 1e-6)


def tdfbanks(x, kernel, lowpass, stride=160):
  """kernel [K, 2N] interleaved re/im, lowpass [K] shared."""
  z = correlate_same(x, kernel)
  energy = z[..., 0::2]**2 + z[..., 1::2]**2
  windows = np.repeat(lowpass[:, None], energy.shape[-1], axis=1)
  return np.log(np.maximum(pool_same(energy, windows, stride), 1e-5) + 1e-5)


def mel(x, mel_matrix, size=401, stride=160, n_fft=512, periodic=False, reflect=False,
        floor=0.0, offset=1e-5):
  """log(max(|rfft(hann * frame, n_fft)|^2 @ mel, floor) + offset).

  Hann with denominator size (periodic) or size - 1; frames zero-padded at the end, or
  (reflect) the waveform padded by n_fft // 2 on both sides in numpy's reflect mode and
  only whole frames taken.
  """
  n = np.arange(size)
  window = 0.5 - 0.5 * np.cos(2 * math.pi * n / (size if periodic else size - 1))
  if reflect:
    padded = np.pad(x, [(0, 0), (n_fft // 2, n_fft // 2)], mode="reflect")
    frames_count = 1 + (padded.shape[1] - size) // stride
  else:
    frames_count = -(-x.shape[1] // stride)
    padded = np.pad(x, [(0, 0), (0, (frames_count - 1) * stride + size - x.shape[1])])
  frames = np.stack([padded[:, i * stride:i * stride + size]
                     for i in range(frames_count)], axis=1)
  power = np.abs(np.fft.rfft(frames * window, n=n_fft, axis=-1))**2
  return np.log(np.maximum(power @ mel_matrix.T.astype(np.float64), floor) + offset)


def mel_matrix_hz(n_filters, sample_rate, min_freq, max_freq, n_fft):
  """torchaudio's melscale_fbanks (HTK mel, no norm), [filters, n_fft // 2 + 1]: band m rises
  linearly in Hz from edge m to edge m + 1 and falls to edge m + 2, the M + 2 edges equally
  spaced in mel; sampled at linspace(0, sample_rate // 2, n_fft // 2 + 1)."""
  low, high = (2595.0 * math.log10(1.0 + f / 700.0) for f in (min_freq, max_freq))
  edges = 700.0 * (10.0 ** (np.linspace(low, high, n_filters + 2) / 2595.0) - 1.0)
  freqs = np.linspace(0.0, sample_rate // 2, n_fft // 2 + 1)
  out = np.zeros([n_filters, freqs.size])
  for m in range(n_filters):
    left, centre, right = edges[m:m + 3]
    out[m] = np.clip(np.minimum((freqs - left) / (centre - left),
                                (right - freqs) / (right - centre)), 0.0, None)
  return out
