"""EfficientLEAF (Schlueter & Gutenbrunner, EUSIPCO 2022): LEAF at a fraction of the cost.

waveform [batch, time] or [batch, time, 1], float, 16 kHz -> [batch, ceil(time / hop), C],
C = `output_bins`: 2 x n_filters by default (the log-compressed bands, then the same bands
with their median over time subtracted), n_filters with the median subtracted in place,
without median filter, or with PCEN.

The defaults are the authors' recommended "Gabor 8G-opt" (CPJKU/EfficientLEAF README):
8 groups, conv_win_factor 6, stride_factor 16, their analytic mel initialisation, LogTBN
with a = 5 per band, median filter, the median-filtered bands appended. Given the same
parameters the layer gives their PyTorch `EfficientLeaf`'s outputs (tests/fixtures/
efficientleaf). LEAF convolves the waveform with 2 x n_filters Gabor filters of 401 taps at
stride 1, then pools the squared modulus with 401-tap Gaussians at stride 160.
EfficientLEAF splits the filters (sorted by centre frequency, so also by bandwidth) into
`num_groups` groups and gives each group
  * a kernel cut to its own support: K_g = int(conv_win_factor * max sigma_n), made odd;
  * its own stride s_g: the largest divisor of the hop <= max(1, stride_factor * pi / max mu_n);
  * the Gaussian pooling window on that coarser grid, W_g = int(P / s_g + 0.5) made odd taps,
    pooled at stride hop / s_g.
pooling="authors" (default) samples the window as their code does (its width rescaled by
P / W_g, energies 1 / s_g of LEAF's, frame m centred on sample m * hop); pooling="leaf"
samples LEAF's Gaussian exactly at i * s_g, scales the energies by s_g and centres the frames
where LEAF's SAME pooling does, so that the energies approximate LEAF's (the tests report
how closely).

One difference from the authors' code remains, by necessity: the groups' kernel sizes and
strides are fixed when the layer is built, from the initial filters (a static graph: XLA,
TFLite); theirs are chosen again at every step from the current filters. The forward pass
clips each group's sigma to (K_g + 1) / conv_win_factor and mu to stride_factor * pi / s_g, the
region where their per-step choice would give a kernel no longer and a stride no finer
than ours.
Options for our earlier choices: initializer="leaf" (leaf-audio's mel-matrix measurement,
as `Leaf`), pooling="leaf", median_bands="subtract", compression="pcen" (LEAF's sPCEN).
"""
import math

import numpy as np
import tensorflow as tf
import tf_keras

from tf_frontends import composition
from tf_frontends import compression as compression_module
from tf_frontends import impulse_responses
from tf_frontends import initializers
from tf_frontends import log_tbn
from tf_frontends import pooling as pooling_lib
from tf_frontends import tf_ops

COMPRESSIONS = ("logtbn", "pcen")
INITIALIZERS = ("authors", "leaf")
POOLINGS = ("authors", "leaf")
MEDIAN_BANDS = ("append", "subtract", "off")
# Narrowest Gabor filter FWHM, in samples: the authors' EfficientLeaf allows 2 (LEAF 4).
_MIN_FWHM = 2.0


def authors_gabor_params(n_filters, sample_rate, min_freq, max_freq):
  """[n_filters, 2] (mu rad/sample, sigma samples): the authors' analytic mel initialisation.

  Centres at the inner points of n_filters + 2 mel-spaced (HTK) frequencies; sigma from the
  bandwidth between each centre's neighbours, sigma = (sample_rate / 2) / bandwidth_hz.
  """
  mels = np.linspace(1127.0 * np.log1p(min_freq / 700.0), 1127.0 * np.log1p(max_freq / 700.0),
                     n_filters + 2)
  hz = 700.0 * np.expm1(mels / 1127.0)
  return np.stack([hz[1:-1] * 2.0 * math.pi / sample_rate,
                   0.5 * sample_rate / (hz[2:] - hz[:-2])], axis=1)


def sigma_bounds(window_size):
  """The authors' sigma range: FWHM from 2 samples to the pooling window."""
  return impulse_responses.gabor_sigma_bounds(window_size, min_fwhm=_MIN_FWHM)


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class Bounds(tf_keras.constraints.Constraint):
  """Clips a weight to [lower, upper] after each update (bounds broadcast over its last axis).

  As the authors' code clamps the parameters in place before each step: a parameter pushed
  past a bound sits on it and its next gradient can bring it back (a clip in the forward pass
  alone would leave it outside, with zero gradient).
  """

  def __init__(self, lower, upper):
    self.lower, self.upper = lower, upper

  def __call__(self, weight):
    return tf.clip_by_value(weight, tf.cast(self.lower, weight.dtype),
                            tf.cast(self.upper, weight.dtype))

  def get_config(self):
    return {"lower": self.lower, "upper": self.upper}


def group_structure(mu, sigma, num_groups, conv_win_factor, stride_factor,
                    pool_size, hop):
  """[(start, stop, stride, kernel_size, pool_taps)] per group, from [F] mu and sigma."""
  divisors = [d for d in range(1, hop + 1) if hop % d == 0]
  splits = np.arange(num_groups + 1) * len(mu) // num_groups
  groups = []
  for start, stop in zip(splits[:-1], splits[1:]):
    mu_max = float(np.max(mu[start:stop]))
    coarsest = math.inf if mu_max <= 0.0 else max(1.0, stride_factor * math.pi / mu_max)
    stride = max(d for d in divisors if d <= coarsest)
    kernel_size = int(conv_win_factor * float(np.max(sigma[start:stop])))
    kernel_size += 1 - kernel_size % 2
    pool_taps = int(pool_size / stride + 0.5)
    pool_taps += 1 - pool_taps % 2
    groups.append((int(start), int(stop), stride, kernel_size, pool_taps))
  return groups


# Outputs per polyphase step of `strided_correlation`: 4 was 1.3-3x faster than a strided
# conv1d for strides 2 to 10, fwd + kernel gradient, on our shared (loaded) 2-core Xeon.
_OUTPUTS_PER_STEP = 4


def strided_correlation(signal, taps, stride, ops=tf_ops, outputs_per_step=_OUTPUTS_PER_STEP):
  """y[b, j, c] = sum_k x[b, j * stride + k] h[k, c] (zeros past the end), j < ceil(L / stride).

  A strided 1-channel convolution run as a polyphase one: with P = stride * R,
  the signal becomes [B, L / P, P] (P input channels) and the taps a
  [ceil((K + (R - 1) stride) / P), P, R * C] kernel holding R shifted copies,
  so one stride-1 convolution yields R outputs per step. Same arithmetic (up to
  the zeros of the shifted copies), but few taps and many channels, the shape
  CPU convolution kernels (and the kernel gradient) run well; a 1-channel
  input with hundreds of taps is their slowest case. R is `outputs_per_step`.
  """
  size, channels = taps.shape
  steps = outputs_per_step
  phases = stride * steps
  kernel_taps = -(-(size + (steps - 1) * stride) // phases)
  q, p, r = np.meshgrid(np.arange(kernel_taps), np.arange(phases), np.arange(steps),
                        indexing="ij")
  index = q * phases + p - r * stride  # kernel[q, p, r] = h[q P + p - r s], zero outside 0..K-1
  index = np.where((index >= 0) & (index < size), index, size)
  kernel = ops.take(ops.pad(taps, [[0, 1], [0, 0]]), index, axis=0)
  kernel = ops.reshape(kernel, [kernel_taps, phases, steps * channels])
  batch, length = ops.shape(signal)
  blocks = -(-length // phases)
  signal = ops.pad(signal, [[0, 0], [0, (blocks + kernel_taps - 1) * phases - length]])
  outputs = ops.conv(ops.reshape(signal, [batch, -1, phases]), kernel, 1, "valid")
  return ops.reshape(outputs, [batch, -1, channels])[:, :-(-length // stride)]


def group_params(kernel, group, window_size, conv_win_factor, stride_factor, ops=tf_ops):
  """Gabor (mu, sigma) of one group, clipped to what its kernel and stride can hold."""
  start, stop, stride, kernel_size, _ = group
  sigma_min, sigma_max = sigma_bounds(window_size)
  mu_max = math.pi if stride == 1 else min(math.pi, stride_factor * math.pi / stride)
  # int(conv_win_factor * sigma) made odd is kernel_size up to sigma = (K + 1) / factor.
  return impulse_responses.clip_gabor_params(
      kernel[start:stop, 0], kernel[start:stop, 1], sigma_min,
      min(sigma_max, (kernel_size + 1) / conv_win_factor), mu_max=mu_max, ops=ops)


def pool_windows(pooling_sigma, group, window_size, pooling, ops=tf_ops):
  """[pool_taps, group filters]: a Gaussian over taps i = -(W - 1) / 2 ... (W - 1) / 2.

  "leaf": LEAF's Gaussian (width sigma (P - 1) / 2 samples) at samples i * stride, times
  stride. "authors": their window, exp(-0.5 (2 i / ((W - 1) sigma'))^2) with
  sigma' = sigma P / (stride W): a width of sigma (W - 1) P / (2 W) samples.
  """
  start, stop, stride, _, pool_taps = group
  if pooling == "leaf":
    span_samples, gain = window_size - 1, float(stride)
  else:
    span_samples, gain = max(pool_taps - 1, 1) * window_size / pool_taps, 1.0
  offsets = stride * (ops.arange(pool_taps, dtype="float32")[:, None] - (pool_taps - 1) // 2)
  return gain * impulse_responses.sampled_gaussian_window(
      pooling_sigma[start:stop], window_size, offsets, span_samples, ops)


def grouped_energies(waveform, kernel, pooling_sigma, groups, window_size: int, hop: int,
                     conv_win_factor: float, stride_factor: float, pooling: str,
                     window_sums=pooling_lib.strided_window_sums, ops=tf_ops):
  """Pooled squared Gabor responses [batch, frames, n_filters] of a [batch, time, 1] waveform.

  `window_sums(inputs, windows, strides, frames)` is `pooling.strided_window_sums` or an
  equal strided sum.
  """
  length = ops.shape(waveform)[1]
  frames = -(-length // hop)
  # Frame m is centred on sample m * hop + centre_offset: 0 in the authors' code, where
  # LEAF's SAME pooling centres it with "leaf".
  centre_offset = 0
  if pooling == "leaf":
    pad_total = ops.maximum((frames - 1) * hop + window_size - length, 0)
    centre_offset = (window_size - 1) // 2 - pad_total // 2
  reach = [k // 2 + (w - 1) // 2 * s for _, _, s, k, w in groups]
  padded = ops.pad(waveform, [[0, 0], [max(reach), max(reach) + (window_size - 1) // 2],
                              [0, 0]])
  outputs = []
  for group, group_reach in zip(groups, reach):
    _, _, stride, kernel_size, pool_taps = group
    real, imag = impulse_responses.gabor_filters(
        *group_params(kernel, group, window_size, conv_win_factor, stride_factor, ops),
        kernel_size, ops)
    taps = ops.transpose(ops.concatenate([real, imag], axis=0))
    # Output j of the group's convolution is centred on sample
    # centre_offset + (j - (pool_taps - 1) / 2) * stride.
    first = max(reach) - group_reach + centre_offset
    num_outputs = (frames - 1) * (hop // stride) + pool_taps
    segment = padded[:, first:first + (num_outputs - 1) * stride + kernel_size, 0]
    if stride == 1:  # nothing to gain from phases: a plain convolution (measured)
      responses = ops.conv(segment[:, :, None], taps[:, None, :], 1, "valid")
    else:
      responses = strided_correlation(segment, taps, stride, ops)[:, :num_outputs]
    real, imag = ops.split(responses, 2, axis=-1)
    # LEAF pools zeros, not filter tails, outside the waveform.
    centre = centre_offset + (ops.arange(num_outputs, dtype="int32") -
                              (pool_taps - 1) // 2) * stride
    inside = ops.cast((centre >= 0) & (centre < length), "float32")[:, None]
    outputs.append(window_sums(
        (ops.square(real) + ops.square(imag)) * inside,
        pool_windows(pooling_sigma, group, window_size, pooling, ops), hop // stride, frames))
  return ops.concatenate(outputs, axis=-1)


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class EfficientLeaf(composition.FrontendInterface, tf_keras.layers.Layer):
  """Grouped, strided Gabor filterbank + resampled Gaussian pooling + LogTBN or PCEN.

  Args:
    n_filters: number of output bands (>= 1).
    sample_rate: in Hz.
    window_len: pooling window in ms (LEAF's 25 ms = 401 taps at 16 kHz).
    window_stride: hop in ms (10 ms = 160 samples).
    min_freq, max_freq: range of the mel initialisation, in Hz.
    num_groups: filter groups, 1 ... n_filters (8, "Gabor 8G-opt").
    conv_win_factor: kernel taps per sigma of the widest filter in a group (> 0; 6 cuts
      the envelope at 4.4 % of its peak; 4.77, the class default of their code, at 6 %).
    stride_factor: scales the strides (> 0; 1 samples the fastest filter of a group at
      its centre frequency's Nyquist rate; 16, their recommendation, aliases on purpose:
      the squared modulus and the pooling are smooth).
    pooling_init: initial relative width of the Gaussian pooling windows.
    learn_filters, learn_pooling: train the Gabor / pooling parameters.
    compression: "logtbn" (default, as the authors' code) or "pcen".
    log_gain_init: LogTBN's initial a (log1p(10^a x)); unused with "pcen".
    median_bands: with "logtbn": "append" the median-subtracted bands to the compressed
      ones (the authors'; 2 x n_filters outputs), "subtract" the median in place, or "off".
    initializer: "authors" (analytic mel centres and bandwidths) or "leaf" (leaf-audio's,
      measured on a mel matrix, as `Leaf`).
    pooling: "authors" or "leaf" (LEAF's window, scale and frame centres; see above).
  Weights: `kernel` [n_filters, 2] (mu rad/sample, sigma samples), `pooling_sigma`
  [n_filters], and the compression's.
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               window_len: float = 25.0, window_stride: float = 10.0,
               min_freq: float = 60.0, max_freq: float = 7800.0,
               num_groups: int = 8, conv_win_factor: float = 6.0,
               stride_factor: float = 16.0, pooling_init: float = 0.4,
               learn_filters: bool = True, learn_pooling: bool = True,
               compression: str = "logtbn", log_gain_init: float = 5.0,
               median_bands: str = "append", initializer: str = "authors",
               pooling: str = "authors", **kwargs):
    kwargs.setdefault("dtype", "float32")  # filter math stays float32 under mixed precision
    super().__init__(**kwargs)
    self.window_size, self.hop = composition.frame_sizes(
        "EfficientLeaf", n_filters, sample_rate, window_len, window_stride)
    composition.check_frequency_range("EfficientLeaf", min_freq, max_freq, sample_rate)
    if not 1 <= num_groups <= n_filters:
      raise ValueError(f"EfficientLeaf: num_groups must be in [1, n_filters={n_filters}], "
                       f"got {num_groups}.")
    if conv_win_factor <= 0 or stride_factor <= 0 or not 0 < pooling_init <= 0.5:
      raise ValueError(
          "EfficientLeaf: need conv_win_factor > 0, stride_factor > 0 and "
          f"0 < pooling_init <= 0.5; got {conv_win_factor}, {stride_factor}, {pooling_init}.")
    for name, value, choices in (("compression", compression, COMPRESSIONS),
                                 ("median_bands", median_bands, MEDIAN_BANDS),
                                 ("initializer", initializer, INITIALIZERS),
                                 ("pooling", pooling, POOLINGS)):
      if value not in choices:
        raise ValueError(f"EfficientLeaf: {name} must be one of {choices}, got {value!r}.")
    self.n_filters = n_filters
    self.sample_rate = sample_rate
    self.window_len = window_len
    self.window_stride = window_stride
    self.min_freq = min_freq
    self.max_freq = max_freq
    self.num_groups = num_groups
    self.conv_win_factor = conv_win_factor
    self.stride_factor = stride_factor
    self.pooling_init = pooling_init
    self.learn_filters = learn_filters
    self.learn_pooling = learn_pooling
    self.compression = compression
    self.log_gain_init = log_gain_init
    self.median_bands = median_bands
    self.initializer = initializer
    self.pooling = pooling
    if compression == "pcen":  # LEAF's sPCEN
      self._compression = compression_module.PCEN(
          floor=1e-12, learn_params=True, learn_smooth_coef=True, name="pcen",
          dtype="float32")
    else:
      self._compression = log_tbn.LogTBN(
          log_gain_init, median_filter=median_bands != "off",
          append_filtered=median_bands == "append", name="log_tbn", dtype="float32")

  @property
  def output_bins(self) -> int:
    """Features per frame: 2 x n_filters with the median-filtered bands appended."""
    appended = self.compression == "logtbn" and self.median_bands == "append"
    return 2 * self.n_filters if appended else self.n_filters

  def build(self, input_shape):
    if self.initializer == "leaf":
      init = initializers.GaborInit(self.sample_rate, self.min_freq, self.max_freq)
    else:
      init = tf_keras.initializers.Constant(authors_gabor_params(
          self.n_filters, self.sample_rate, self.min_freq, self.max_freq).astype(np.float32))
    sigma_min, sigma_max = sigma_bounds(self.window_size)
    self.kernel = self.add_weight(
        name="kernel", shape=(self.n_filters, 2), dtype=tf.float32,
        initializer=init, trainable=self.learn_filters,
        constraint=Bounds([0.0, sigma_min], [math.pi, sigma_max]))
    self.pooling_sigma = self.add_weight(
        name="pooling_sigma", shape=(self.n_filters,), dtype=tf.float32,
        initializer=tf_keras.initializers.Constant(self.pooling_init),
        trainable=self.learn_pooling,
        constraint=Bounds(2.0 / self.window_size, 0.5))
    # The structure depends on the config only (the initial filters), so a
    # reloaded or retrained layer runs the same graph.
    with tf.init_scope():
      params = init((self.n_filters, 2), dtype=tf.float32)
      mu, sigma = (p.numpy() for p in impulse_responses.clip_gabor_params(
          params[:, 0], params[:, 1], sigma_min, sigma_max))
    self.groups = tuple(group_structure(mu, sigma, self.num_groups,
                                  self.conv_win_factor, self.stride_factor,
                                  self.window_size, self.hop))
    with tf.name_scope(self._compression.name):
      self._compression.build(tf.TensorShape([input_shape[0], None, self.n_filters]))
    super().build(input_shape)

  def impulse_responses(self):
    """(real, imag) taps [n_filters, longest kernel] as used, each group's centred and zero-padded."""
    longest = max(k for _, _, _, k, _ in self.groups)
    parts = []
    for group in self.groups:
      kernel_size = group[3]
      taps = impulse_responses.gabor_filters(
          *group_params(self.kernel, group, self.window_size, self.conv_win_factor,
                        self.stride_factor), kernel_size)
      pad = (longest - kernel_size) // 2
      parts.append([tf.pad(t, [[0, 0], [pad, pad]]) for t in taps])
    return tuple(tf.concat(part, axis=0) for part in zip(*parts))

  def filter_taps(self):
    """`impulse_responses()` as complex numpy [n_filters, taps], for plots."""
    real, imag = self.impulse_responses()
    return real.numpy() + 1j * imag.numpy()

  def energies(self, inputs):
    """Pooled squared Gabor responses [batch, frames, n_filters], before compression."""
    return grouped_energies(
        composition.as_mono_waveform(inputs, "EfficientLeaf"), self.kernel, self.pooling_sigma,
        self.groups, self.window_size, self.hop, self.conv_win_factor, self.stride_factor,
        self.pooling)

  def call(self, inputs, training=None):
    outputs = self.energies(inputs)
    if self.compression == "pcen":
      return self._compression(tf.maximum(outputs, composition.ENERGY_FLOOR))
    return self._compression(outputs, training=training)

  def compute_output_shape(self, input_shape):
    return composition.framed_output_shape(input_shape, self.hop, self.output_bins)

  def get_config(self):
    return {**super().get_config(), "n_filters": self.n_filters,
            "sample_rate": self.sample_rate, "window_len": self.window_len,
            "window_stride": self.window_stride, "min_freq": self.min_freq,
            "max_freq": self.max_freq, "num_groups": self.num_groups,
            "conv_win_factor": self.conv_win_factor, "stride_factor": self.stride_factor,
            "pooling_init": self.pooling_init, "learn_filters": self.learn_filters,
            "learn_pooling": self.learn_pooling, "compression": self.compression,
            "log_gain_init": self.log_gain_init, "median_bands": self.median_bands,
            "initializer": self.initializer, "pooling": self.pooling}
