"""Filterbank convolutions: Gabor (LEAF), sinc (SincNet) and free taps (TD-filterbanks).

The parametric layers hold 2 numbers per filter and build their taps in every
forward pass; all three cross-correlate the waveform with K-tap filters,
stride 1, SAME padding as in leaf-audio:
    y[b, t, c] = sum_k x[b, t + k - (K - 1) // 2] h[k, c].
Inputs [batch, time, 1] -> outputs [batch, time, channels].
"""
import logging
import time

import tensorflow as tf
import tf_keras

from tf_frontends import composition
from tf_frontends import impulse_responses
from tf_frontends import initializers


def _same_pad(size):
  return (size - 1) // 2, size // 2


def _correlation_kernel_grad(inputs, output_grad, kernel_size):
  """dL/dh of a stride-1 SAME correlation, as a forward correlation (see `correlate`)."""
  left, right = _same_pad(kernel_size)
  padded = tf.pad(inputs[:, :, 0], [[0, 0], [left, right]])
  kernel_grad = tf.nn.conv1d(
      tf.transpose(padded)[tf.newaxis],  # [1, T + K - 1, B]
      tf.transpose(output_grad, [1, 0, 2]),  # [T, B, C]
      stride=1, padding="VALID")
  return kernel_grad[0, :, tf.newaxis, :]  # [K, 1, C]


def _native_kernel_grad(inputs, output_grad, kernel_size):
  """TensorFlow's own dL/dh of tf.nn.conv1d(stride 1, SAME) (Conv2DBackpropFilter)."""
  kernel_grad = tf.compat.v1.nn.conv2d_backprop_filter(
      inputs[:, tf.newaxis], [1, kernel_size, 1, output_grad.shape[-1]],
      output_grad[:, tf.newaxis], strides=[1, 1, 1, 1], padding="SAME")
  return kernel_grad[0]


# How the filterbank's kernel gradient is computed (the `kernel_gradient` argument):
#   "native":      TensorFlow's own (Conv2DBackpropFilter), the default;
#   "correlation": `_correlation_kernel_grad`;
#   "auto":        whichever is faster here, measured once per process and shape (logged).
# Which formulation is faster depends on the CPU (the correlation was 3x faster on an Intel
# Xeon, 2.2x slower on an AMD EPYC at 8 x 5 s), but the two round differently, so choosing
# by timing makes a seeded run's weights depend on the machine's load: only "auto" times,
# and only when asked for.
KERNEL_GRADIENTS = ("native", "correlation", "auto")

# "auto" takes the correlation only when it beats TensorFlow's own by this much,
# so that a machine near the tie does not flip between runs.
_CORRELATE_MIN_SPEEDUP = 1.3
_kernel_gradient_choice = {}   # (kernel_size, channels, batch, time) -> use `_correlation_kernel_grad`
_MAX_PROBE_BATCH, _MAX_PROBE_SAMPLES = 8, 80000


def check_kernel_gradient(layer_name: str, kernel_gradient: str):
  if kernel_gradient not in KERNEL_GRADIENTS:
    raise ValueError(f"{layer_name}: kernel_gradient must be one of {KERNEL_GRADIENTS}, "
                     f"got {kernel_gradient!r}.")


def _fastest_of_two(fn):
  fn()  # trace and warm up
  times = []
  for _ in range(2):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


@tf.autograph.experimental.do_not_convert
def _correlation_grad_is_faster(kernel_size: int, channels: int, batch, samples) -> bool:
  """kernel_gradient="auto": measures, once per process and shape, which is faster here.

  Times forward + kernel gradient of both formulations at the input's shape
  (capped at 8 x 80000 samples; 8 x 1 s when unknown). Off CPU (GPU, TPU),
  TensorFlow's own gradient is used.
  """
  batch = min(batch or _MAX_PROBE_BATCH, _MAX_PROBE_BATCH)
  samples = min(samples or 16000, _MAX_PROBE_SAMPLES)
  key = (kernel_size, channels, batch, samples)
  if key not in _kernel_gradient_choice:
    with tf.init_scope():   # measure eagerly, even when called while tracing
      if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        _kernel_gradient_choice[key] = False
      else:
        inputs = tf.random.stateless_normal([batch, samples, 1], seed=(0, 1))
        kernel = tf.random.stateless_normal([kernel_size, 1, channels], seed=(0, 2))
        output_grad = tf.nn.conv1d(inputs, kernel, stride=1, padding="SAME")

        def forward_and_kernel_grad(kernel_grad):
          # Explicit gradient ops: no tape records inside tf.init_scope.
          step = tf.function(lambda: (
              tf.nn.conv1d(inputs, kernel, stride=1, padding="SAME")[0, 0, 0],
              kernel_grad(inputs, output_grad, kernel_size)[0, 0, 0]))
          return lambda: [t.numpy() for t in step()]

        native = _fastest_of_two(forward_and_kernel_grad(_native_kernel_grad))
        custom = _fastest_of_two(forward_and_kernel_grad(_correlation_kernel_grad))
        _kernel_gradient_choice[key] = native > _CORRELATE_MIN_SPEEDUP * custom
        logging.getLogger(__name__).info(
            "kernel_gradient='auto' for %d taps x %d channels: %s "
            "(forward + gradient of %d x %d samples: TensorFlow's %.1f ms, "
            "correlation %.1f ms)", kernel_size, channels,
            "correlation" if _kernel_gradient_choice[key] else "TensorFlow's",
            batch, samples, native * 1e3, custom * 1e3)
  return _kernel_gradient_choice[key]


def _correlate_op(kernel_gradient: str):
  """`correlate` for one `kernel_gradient` other than "native", as a custom-gradient op."""

  @tf.custom_gradient
  def correlate_op(inputs, kernel):
    outputs = tf.nn.conv1d(inputs, kernel, stride=1, padding="SAME")

    def grad(output_grad):
      kernel_size = kernel.shape[0]
      if kernel_gradient == "correlation" or _correlation_grad_is_faster(
          kernel_size, kernel.shape[-1], inputs.shape[0], inputs.shape[1]):
        kernel_grad = _correlation_kernel_grad(inputs, output_grad, kernel_size)
      else:
        kernel_grad = _native_kernel_grad(inputs, output_grad, kernel_size)
      inputs_grad = tf.nn.conv1d_transpose(
          output_grad, kernel, tf.shape(inputs), strides=1, padding="SAME")
      return inputs_grad, kernel_grad

    return outputs, grad

  return correlate_op


_CORRELATE_OPS = {name: _correlate_op(name) for name in ("correlation", "auto")}


def correlate(inputs, kernel, kernel_gradient: str = "native"):
  """Stride-1 SAME cross-correlation of [B, T, 1] with [K, 1, C] (tf.nn.conv1d).

  The forward pass is tf.nn.conv1d. The kernel gradient
      dL/dh[k, c] = sum_{b, t} x_pad[b, t + k] g[b, t, c]
  has two exact formulations that round differently: TensorFlow's
  Conv2DBackpropFilter ("native": plain tf.nn.conv1d and its registered gradient),
  or a VALID forward correlation of the padded waveforms (batch as input channels)
  with the output gradients g as a T-tap filter ("correlation",
  `_correlation_kernel_grad`); "auto" measures which is faster on the first
  backward pass (see `KERNEL_GRADIENTS`). The input gradient is the transposed
  convolution.
  """
  check_kernel_gradient("correlate", kernel_gradient)
  if kernel_gradient == "native":
    return tf.nn.conv1d(inputs, kernel, stride=1, padding="SAME")
  return _CORRELATE_OPS[kernel_gradient](inputs, kernel)


def filterbank_conv(inputs, kernel, strides, padding, kernel_gradient="native"):
  """`correlate` where it applies (stride 1, SAME), else plain tf.nn.conv1d."""
  if strides == 1 and padding == "SAME":
    return correlate(inputs, kernel, kernel_gradient)
  return tf.nn.conv1d(inputs, kernel, stride=strides, padding=padding)


def conv_output_shape(input_shape, kernel_size, strides, padding, channels):
  """[batch, time, 1] -> [batch, frames, channels] of a SAME or VALID strided convolution."""
  time = tf.TensorShape(input_shape)[1]
  if time is not None:
    time = -(-time // strides) if padding == "SAME" else (time - kernel_size) // strides + 1
  return tf.TensorShape([input_shape[0], time, channels])


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class GaborConstraint(tf_keras.constraints.Constraint):
  """Clips Gabor parameters: mu in [0, pi], sigma in `impulse_responses.gabor_sigma_bounds`."""

  def __init__(self, kernel_size: int):
    self.kernel_size = kernel_size

  def __call__(self, kernel):
    return tf.stack(impulse_responses.clip_gabor_params(
        kernel[:, 0], kernel[:, 1], *impulse_responses.gabor_sigma_bounds(self.kernel_size)),
        axis=1)

  def get_config(self):
    return {"kernel_size": self.kernel_size}


class _ParametricFilterbank(tf_keras.layers.Layer):
  """Two learnable numbers per filter -> K taps per channel -> `filterbank_conv`.

  Subclasses define `_initializer()`, optionally `_constraint()`, `conv_kernel()`
  ([K, 1, channels] taps built from `self.kernel`), `conv_kernel_channels()` and
  `complex_taps()` (the filters for plots).
  """

  def __init__(self, filters: int, kernel_size: int, strides: int = 1,
               padding: str = "SAME", sample_rate: int = 16000,
               kernel_gradient: str = "native", **kwargs):
    super().__init__(**kwargs)
    composition.check_positive_int(type(self).__name__, filters=filters,
                                   kernel_size=kernel_size, strides=strides)
    composition.check_positive(type(self).__name__, sample_rate=sample_rate)
    check_kernel_gradient(type(self).__name__, kernel_gradient)
    self.kernel_gradient = kernel_gradient
    self.filters = filters
    self.kernel_size = kernel_size
    self.strides = strides
    self.padding = padding.upper()
    self.sample_rate = sample_rate

  def _constraint(self):
    return None

  def build(self, input_shape):
    self.kernel = self.add_weight(
        name="kernel", shape=(self.filters, 2), dtype=tf.float32,
        initializer=self._initializer(), constraint=self._constraint())
    super().build(input_shape)

  def call(self, inputs):
    return filterbank_conv(inputs, self.conv_kernel(), self.strides,
                           self.padding, self.kernel_gradient)

  def compute_output_shape(self, input_shape):
    return conv_output_shape(input_shape, self.kernel_size, self.strides, self.padding,
                             self.conv_kernel_channels())

  def get_config(self):
    return {**super().get_config(), "filters": self.filters,
            "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "sample_rate": self.sample_rate,
            "kernel_gradient": self.kernel_gradient}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class GaborConv1D(_ParametricFilterbank):
  """Complex Gabor filterbank as 2 * filters real channels.

  y_{2n}[t] + i y_{2n+1}[t] = sum_k x[t + k] phi_n(k),   k = -(K // 2) ... (K - 1) // 2
  with phi_n the Gabor impulse response of `impulse_responses.gabor_filters`.
  The learnable weight `kernel` is [filters, 2] = (mu rad/sample, sigma samples),
  clipped by `GaborConstraint` in the forward pass (and, with `project_after_update`,
  projected by it after each update).

  [batch, time, 1] -> [batch, ceil(time / strides), 2 * filters].

  Args:
    filters: number of filters (>= 1).
    kernel_size: taps per filter (>= 1; 401 for 25 ms at 16 kHz).
    strides: output stride in samples (>= 1); 1 in every named frontend.
    padding: "SAME" (leaf-audio's) or "VALID".
    sample_rate: in Hz, for the initialisation.
    min_freq, max_freq: range of the mel-spaced initialisation, in Hz.
    kernel_gradient: "native" (default), "correlation" or "auto" (`KERNEL_GRADIENTS`).
    project_after_update: True (leaf-audio's): `kernel` is a constrained variable, so an
      optimizer step that leaves the range is projected back; False (audax's): `kernel`
      keeps any value and only the forward pass clips it.
    **kwargs: `tf_keras.layers.Layer` arguments (name, trainable, dtype).
  """

  def __init__(self, filters: int, kernel_size: int, strides: int = 1,
               padding: str = "SAME", sample_rate: int = 16000,
               min_freq: float = 60.0, max_freq: float = 7800.0,
               kernel_gradient: str = "native", project_after_update: bool = True,
               **kwargs):
    super().__init__(filters, kernel_size, strides, padding, sample_rate,
                     kernel_gradient, **kwargs)
    self.min_freq = min_freq
    self.max_freq = max_freq
    self.project_after_update = project_after_update

  def _initializer(self):
    return initializers.GaborInit(self.sample_rate, self.min_freq,
                                  self.max_freq)

  def _constraint(self):
    return GaborConstraint(self.kernel_size) if self.project_after_update else None

  def constrained_params(self):
    """(mu, sigma), each [filters], as used in the forward pass."""
    params = GaborConstraint(self.kernel_size)(self.kernel)
    return params[:, 0], params[:, 1]

  def impulse_responses(self):
    """(real, imag) taps, each [filters, kernel_size]."""
    return impulse_responses.gabor_filters(*self.constrained_params(),
                                           self.kernel_size)

  def conv_kernel(self):
    return impulse_responses.interleave_real_imag(*self.impulse_responses())

  def conv_kernel_channels(self):
    return 2 * self.filters

  def complex_taps(self):
    """[filters, kernel_size] complex numpy taps, for plots."""
    real, imag = self.impulse_responses()
    return real.numpy() + 1j * imag.numpy()

  def get_config(self):
    return {**super().get_config(), "min_freq": self.min_freq,
            "max_freq": self.max_freq, "project_after_update": self.project_after_update}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class SincConv1D(_ParametricFilterbank):
  """SincNet band-pass filterbank, windowed, one real channel per filter.

  The weight `kernel` is [filters, 2] = (a, b) in Hz; leaf-audio's band edges are
      f_l = min_low_hz + |a|,
      f_h = clip(f_l + min_band_hz + |b|, min_low_hz, sample_rate / 2),
  and the taps are `sinc_bandpass_filters(f_l, f_h)` times a Hamming window:
  leaf-audio's 0.54 - 0.46 cos(2 pi n / K) by default, numpy's symmetric
  `np.hamming(K)` (audax's) with `symmetric_window=True`
  (`impulse_responses.hamming_window`). With `SincInit` the lower edges start at
  mel-spaced points from min_low_hz, so min_low_hz is counted twice: the first
  band of the default 40 is 100-197 Hz, not 50-147 Hz. Reproduced on purpose.

  [batch, time, 1] -> [batch, ceil(time / strides), filters].

  Args:
    filters: number of filters (>= 1).
    kernel_size: taps per filter (>= 1; 401 for 25 ms at 16 kHz).
    strides: output stride in samples (>= 1); 1 in every named frontend.
    padding: "SAME" (leaf-audio's) or "VALID".
    sample_rate: in Hz, for the initialisation and the band edges.
    min_low_hz, min_band_hz: lowest lower edge and narrowest band, in Hz.
    symmetric_window: numpy's symmetric Hamming window (audax) instead of
      leaf-audio's.
    kernel_gradient: "native" (default), "correlation" or "auto" (`KERNEL_GRADIENTS`).
    **kwargs: `tf_keras.layers.Layer` arguments (name, trainable, dtype).
  """

  def __init__(self, filters: int, kernel_size: int, strides: int = 1,
               padding: str = "SAME", sample_rate: int = 16000,
               min_low_hz: float = 50.0, min_band_hz: float = 50.0,
               symmetric_window: bool = False, kernel_gradient: str = "native",
               **kwargs):
    super().__init__(filters, kernel_size, strides, padding, sample_rate,
                     kernel_gradient, **kwargs)
    self.min_low_hz = min_low_hz
    self.min_band_hz = min_band_hz
    self.symmetric_window = symmetric_window

  def _initializer(self):
    return initializers.SincInit(self.sample_rate, self.min_low_hz,
                                 self.min_band_hz)

  def band_edges_hz(self):
    """(f_l, f_h), each [filters], as used in the forward pass."""
    return impulse_responses.sinc_band_edges(self.kernel, self.min_low_hz, self.min_band_hz,
                                             self.sample_rate)

  def impulse_responses(self):
    """Windowed taps [kernel_size, filters]."""
    return impulse_responses.windowed_sinc_filters(
        *self.band_edges_hz(), self.kernel_size, self.sample_rate, self.symmetric_window)

  def conv_kernel(self):
    return self.impulse_responses()[:, tf.newaxis, :]

  def conv_kernel_channels(self):
    return self.filters

  def complex_taps(self):
    """[filters, kernel_size] taps (real), for plots."""
    return self.impulse_responses().numpy().T

  def get_config(self):
    return {**super().get_config(), "min_low_hz": self.min_low_hz,
            "min_band_hz": self.min_band_hz,
            "symmetric_window": self.symmetric_window}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class FreeConv1D(tf_keras.layers.Layer):
  """A filterbank of free K-tap filters (the time-domain filterbanks' first layer).

  Weight `kernel` [K, 1, channels] from `kernel_initializer`; no bias.
  [batch, time, 1] -> [batch, ceil(time / strides), channels].

  Args:
    channels: output channels (>= 1); 2 per complex filter with `SquaredModulus`.
    kernel_size: taps per filter (>= 1).
    strides: output stride in samples (>= 1).
    padding: "SAME" or "VALID".
    kernel_initializer: a tf_keras initializer (or its name) for [K, 1, channels].
    kernel_gradient: "native" (default), "correlation" or "auto" (`KERNEL_GRADIENTS`).
    **kwargs: `tf_keras.layers.Layer` arguments (name, trainable, dtype).
  """

  def __init__(self, channels: int, kernel_size: int, strides: int = 1,
               padding: str = "SAME", kernel_initializer="glorot_uniform",
               kernel_gradient: str = "native", **kwargs):
    super().__init__(**kwargs)
    composition.check_positive_int("FreeConv1D", channels=channels,
                                   kernel_size=kernel_size, strides=strides)
    check_kernel_gradient("FreeConv1D", kernel_gradient)
    self.kernel_gradient = kernel_gradient
    self.channels = channels
    self.kernel_size = kernel_size
    self.strides = strides
    self.padding = padding.upper()
    self.kernel_initializer = tf_keras.initializers.get(kernel_initializer)

  def build(self, input_shape):
    self.kernel = self.add_weight(
        name="kernel", shape=(self.kernel_size, 1, self.channels),
        dtype=tf.float32, initializer=self.kernel_initializer)
    super().build(input_shape)

  def call(self, inputs):
    return filterbank_conv(inputs, self.kernel, self.strides, self.padding,
                           self.kernel_gradient)

  def compute_output_shape(self, input_shape):
    return conv_output_shape(input_shape, self.kernel_size, self.strides, self.padding,
                             self.channels)

  def complex_taps(self):
    """[channels / 2, kernel_size]: channels 2n, 2n + 1 as the real and imaginary parts."""
    kernel = self.kernel.numpy()[:, 0, :]
    return (kernel[:, 0::2] + 1j * kernel[:, 1::2]).T

  def get_config(self):
    return {**super().get_config(), "channels": self.channels,
            "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding,
            "kernel_initializer": tf_keras.initializers.serialize(
                self.kernel_initializer),
            "kernel_gradient": self.kernel_gradient}
