"""Float64 numpy EfficientLEAF, written from the paper (Schlueter & Gutenbrunner, EUSIPCO 2022).

Independent of tf_frontends: each group's Gabor responses are computed at every
sample (a stride-1 SAME correlation) and then read at the group's coarse grid, so
neither the strided convolution nor the block pooling of the layer is reused.
"""
import math

import numpy as np

from tests.tf_frontends import numpy_reference as ref


def groups(mu, sigma, num_groups=4, conv_win_factor=4.77, stride_factor=1.0,
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


def energies(x, mu, sigma, pool_sigma, structure, conv_win_factor=4.77, stride_factor=1.0,
             pool_size=401, hop=160):
  """x [B, T] -> [B, ceil(T / hop), filters] pooled squared Gabor responses."""
  length = x.shape[1]
  frames, left, _ = ref.same_padding(length, pool_size, hop)
  centres = np.arange(frames) * hop - left + (pool_size - 1) // 2   # LEAF's frame centres
  sigma_floor = 4 * ref.SQRT_2LN2 / math.pi
  out = []
  for start, stop, stride, kernel, pool in structure:
    mu_top = math.pi if stride == 1 else min(math.pi, stride_factor * math.pi / stride)
    g_mu = np.clip(mu[start:stop], 0, mu_top)
    g_sigma = np.clip(sigma[start:stop], sigma_floor,
                      min(pool_size * ref.SQRT_2LN2 / math.pi, kernel / conv_win_factor))
    power = np.abs(ref.correlate_same(x, ref.gabor(g_mu, g_sigma, kernel).T))**2  # [B, T, C]
    half = 0.5 * (pool_size - 1) * np.clip(pool_sigma[start:stop], 2 / pool_size, 0.5)
    group = np.zeros((x.shape[0], frames, stop - start))
    for i in range(-(pool - 1) // 2, (pool - 1) // 2 + 1):
      where = centres + i * stride
      inside = (where >= 0) & (where < length)
      weight = stride * np.exp(-0.5 * (i * stride / half)**2)
      group[:, inside] += weight * power[:, where[inside]]
    out.append(group)
  return np.concatenate(out, axis=-1)


def log_tbn(e, log_gain, training, gamma=1.0, beta=0.0, moving_mean=0.0, moving_var=1.0,
            epsilon=1e-5):
  """log1p(10^a e) minus the lower median over time, then batch norm over (batch, time)."""
  y = np.log1p(10.0**np.clip(log_gain, -10, 10) * e)
  y = y - np.sort(y, axis=1)[:, (y.shape[1] - 1) // 2][:, None]
  if training:
    mean, var = y.mean(axis=(0, 1)), y.var(axis=(0, 1))
  else:
    mean, var = moving_mean, moving_var
  return gamma * (y - mean) / np.sqrt(var + epsilon) + beta


def efficient_leaf(x, mu, sigma, pool_sigma, structure, compression="logtbn", training=False,
                   log_gain=5.0, **kwargs):
  e = energies(x, mu, sigma, pool_sigma, structure, **kwargs)
  if compression == "pcen":
    return ref.pcen(np.maximum(e, 1e-5), 0.96, 0.04, 2.0, 2.0, 1e-12)
  return log_tbn(e, log_gain, training)
