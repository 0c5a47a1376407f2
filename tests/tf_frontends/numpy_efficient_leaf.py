"""Float64 numpy EfficientLEAF, written from the paper (Schlueter & Gutenbrunner, EUSIPCO 2022).

Independent of tf_frontends: each group's Gabor responses are computed at every
sample (a stride-1 SAME correlation) and then read at the group's coarse grid, so
neither the strided convolution nor the block pooling of the layer is reused.
pooling="authors" follows CPJKU/EfficientLEAF (frames centred on m * hop, their pooling
window, no gain); pooling="leaf" LEAF's frame centres and window, times the stride.
"""
import math

import numpy as np

from tests.tf_frontends import numpy_reference as ref


SIGMA_FLOOR = 2 * ref.SQRT_2LN2 / math.pi  # a FWHM of 2 samples


def authors_init(n_filters, min_freq=60.0, max_freq=7800.0, sample_rate=16000):
  """(mu, sigma): n_filters + 2 mel-spaced frequencies, centres inside, sigma from neighbours."""
  mels = np.linspace(1127 * np.log(1 + min_freq / 700), 1127 * np.log(1 + max_freq / 700),
                     n_filters + 2)
  hz = 700 * (np.exp(mels / 1127) - 1)
  return 2 * math.pi * hz[1:-1] / sample_rate, sample_rate / 2 / (hz[2:] - hz[:-2])


def groups(mu, sigma, num_groups=8, conv_win_factor=6.0, stride_factor=16.0,
           pool_size=401, hop=160):
  """[(start, stop, stride, kernel taps, pooling taps)] from the initial (clipped) filters."""
  out = []
  n_filters = len(mu)
  for g in range(num_groups):
    start, stop = g * n_filters // num_groups, (g + 1) * n_filters // num_groups
    top = mu[start:stop].max()
    limit = hop if top == 0 else max(1.0, stride_factor * math.pi / top)
    stride = max(d for d in range(1, hop + 1) if hop % d == 0 and d <= limit)
    kernel = int(sigma[start:stop].max() * conv_win_factor) // 2 * 2 + 1
    pool = int(pool_size / stride + 0.5) // 2 * 2 + 1
    out.append((start, stop, stride, kernel, pool))
  return out


def energies(x, mu, sigma, pool_sigma, structure, conv_win_factor=6.0, stride_factor=16.0,
             pool_size=401, hop=160, pooling="authors"):
  """x [B, T] -> [B, ceil(T / hop), filters] pooled squared Gabor responses."""
  length = x.shape[1]
  frames, left, _ = ref.same_padding(length, pool_size, hop)
  centres = np.arange(frames) * hop
  if pooling == "leaf":
    centres += (pool_size - 1) // 2 - left
  out = []
  for start, stop, stride, kernel, pool in structure:
    mu_top = math.pi if stride == 1 else min(math.pi, stride_factor * math.pi / stride)
    g_mu = np.clip(mu[start:stop], 0, mu_top)
    g_sigma = np.clip(sigma[start:stop], SIGMA_FLOOR,
                      min(pool_size * ref.SQRT_2LN2 / math.pi, (kernel + 1) / conv_win_factor))
    power = np.abs(ref.correlate_same(x, ref.gabor(g_mu, g_sigma, kernel).T))**2  # [B, T, C]
    widths = np.clip(pool_sigma[start:stop], 2 / pool_size, 0.5)
    group = np.zeros((x.shape[0], frames, stop - start))
    for i in range(-(pool - 1) // 2, (pool - 1) // 2 + 1):
      where = centres + i * stride
      inside = (where >= 0) & (where < length)
      if pooling == "leaf":
        weight = stride * np.exp(-0.5 * (i * stride / (0.5 * (pool_size - 1) * widths))**2)
      else:  # their window: taps 0 .. W-1 mapped to [-1, 1], sigma rescaled to the grid
        weight = np.exp(-0.5 * (2 * i / max(pool - 1, 1) / (widths * pool_size / (stride * pool)))**2)
      group[:, inside] += weight * power[:, where[inside]]
    out.append(group)
  return np.concatenate(out, axis=-1)


def log_tbn(e, log_gain, training, gamma=1.0, beta=0.0, moving_mean=0.0, moving_var=1.0,
            epsilon=1e-5, median_bands="append"):
  """log1p(10^a e), the lower median over time subtracted (appended as more bands, in place
  or not at all), then batch norm over (batch, time)."""
  y = np.log1p(10.0**np.clip(log_gain, -10, 10) * e)
  filtered = y - np.sort(y, axis=1)[:, (y.shape[1] - 1) // 2][:, None]
  y = {"append": np.concatenate([y, filtered], axis=-1), "subtract": filtered,
       "off": y}[median_bands]
  if training:
    mean, var = y.mean(axis=(0, 1)), y.var(axis=(0, 1))
  else:
    mean, var = moving_mean, moving_var
  return gamma * (y - mean) / np.sqrt(var + epsilon) + beta


def efficient_leaf(x, mu, sigma, pool_sigma, structure, compression="logtbn", training=False,
                   log_gain=5.0, median_bands="append", **kwargs):
  e = energies(x, mu, sigma, pool_sigma, structure, **kwargs)
  if compression == "pcen":
    return ref.pcen(np.maximum(e, 1e-5), 0.96, 0.04, 2.0, 2.0, 1e-12)
  return log_tbn(e, log_gain, training, median_bands=median_bands)
