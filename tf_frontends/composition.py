"""A frontend composed of building blocks, and the checks every frontend shares.

    features = Frontend(filterbank, activation, pooling, compression)(waveform)

waveform [batch, time] or [batch, time, 1], float in [-1, 1]
  -> [preemphasis] -> filterbank -> activation -> pooling -> max(., energy_floor)
  -> compression -> [normalization]  -> features [batch, frames, channels], float32.

The named frontends (Leaf, SincNet, ...) are such compositions with fixed
blocks; a variant ("LEAF with log compression") is another composition:

    Frontend(GaborConv1D(40, 401), SquaredModulus(), GaussianLowpass(401, 160),
             LogCompression())

Every frontend, named or composed, implements `FrontendInterface` (sample rate, hop,
window, filter count, output bins, minimum length, filter responses): code outside
this package asks it instead of testing a frontend's type.
"""
import math
import numbers
from typing import Optional

import numpy as np
import tensorflow as tf
import tf_keras

from tf_frontends import tf_ops
from tf_frontends import waveform as waveform_lib

# leaf-audio clips pooled energies here before compression (also the log offset).
ENERGY_FLOOR = 1e-5
# Longest window / hop accepted, in ms: short-time analysis uses ~10-64 ms, and a
# larger value is almost always a sample count given by mistake (401 for 25 ms).
MAX_WINDOW_MS = 100.0


def check_positive(layer_name: str, **values) -> None:
  """Raises ValueError naming the first argument that is not a finite number > 0."""
  for name, value in values.items():
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        math.isfinite(value) and value > 0):
      raise ValueError(f"{layer_name}: {name} must be a number > 0; got {value!r}.")


def check_positive_int(layer_name: str, **values) -> None:
  """Raises ValueError naming the first argument that is not an integer >= 1."""
  for name, value in values.items():
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
      raise ValueError(f"{layer_name}: {name} must be an integer >= 1; got {value!r}.")


def window_samples(sample_rate: int, window_len_ms: float) -> int:
  """leaf-audio's window length: sr * ms // 1000 + 1 (401 for 25 ms at 16 kHz)."""
  return int(sample_rate * window_len_ms // 1000 + 1)


def hop_samples(sample_rate: int, window_stride_ms: float) -> int:
  return int(sample_rate * window_stride_ms // 1000)


def frame_sizes(layer_name: str, n_filters: int, sample_rate: int,
                window_len: float, window_stride: float):
  """Checks the shared sizes and returns (window_samples, hop_samples).

  window_len and window_stride are in milliseconds; a value above
  MAX_WINDOW_MS is refused, since it is almost always a sample count (e.g. 401).
  """
  check_positive_int(layer_name, n_filters=n_filters)
  check_positive(layer_name, sample_rate=sample_rate, window_len=window_len,
                 window_stride=window_stride)
  for name, value_ms in (("window_len", window_len),
                         ("window_stride", window_stride)):
    if value_ms > MAX_WINDOW_MS:
      raise ValueError(
          f"{layer_name}: {name} is in milliseconds; got {value_ms} ms, more than "
          f"{MAX_WINDOW_MS:g} ms (was a sample count given? 25 ms is 401 samples "
          "at 16 kHz).")
  window_size = window_samples(sample_rate, window_len)
  hop = hop_samples(sample_rate, window_stride)
  if window_size <= 1 or hop <= 0:
    raise ValueError(
        f"{layer_name}: window_len={window_len} ms and window_stride="
        f"{window_stride} ms at sample_rate={sample_rate} Hz give a window of "
        f"{window_size} and a hop of {hop} samples; both must be at least 2 and 1.")
  return window_size, hop


def framed_output_shape(input_shape, hop: int, n_filters: int) -> tf.TensorShape:
  """[batch, time(, 1)] -> [batch, ceil(time / hop), n_filters] (time may be unknown)."""
  time = input_shape[1]
  return tf.TensorShape([input_shape[0], None if time is None else -(-time // hop), n_filters])


def check_frequency_range(layer_name, min_freq, max_freq, sample_rate):
  if not 0.0 <= min_freq < max_freq <= sample_rate / 2:
    raise ValueError(
        f"{layer_name}: need 0 <= min_freq < max_freq <= sample_rate / 2; got "
        f"min_freq={min_freq}, max_freq={max_freq}, sample_rate={sample_rate} "
        "(set max_freq when changing sample_rate).")


def check_waveform(layer_name: str, is_float: bool, dtype_name: str, shape) -> None:
  """Raises a clear error unless a waveform batch is float [batch, time] or [batch, time, 1]."""
  if not is_float:
    raise TypeError(
        f"{layer_name} expects a float waveform in [-1, 1], got dtype "
        f"{dtype_name}. {waveform_lib.INTEGER_PCM_HINT}")
  rank = shape.rank if isinstance(shape, tf.TensorShape) else len(shape)
  if rank == 3 and shape[-1] != 1:
    raise ValueError(
        f"{layer_name} expects mono audio [batch, time] or [batch, time, 1]; "
        f"got {shape[-1]} channels (shape {shape}). "
        f"{waveform_lib.CHANNELS_HINT}")
  if rank not in (2, 3):
    raise ValueError(
        f"{layer_name} expects a waveform of shape [batch, time] or "
        f"[batch, time, 1]; got rank {rank} (shape {shape}). "
        f"{waveform_lib.rank_hint(rank)}".rstrip())


def as_mono_waveform(inputs, layer_name: str) -> tf.Tensor:
  """Checks a waveform batch and returns it as float32 [batch, time, 1]."""
  inputs = tf.convert_to_tensor(inputs)
  check_waveform(layer_name, inputs.dtype.is_floating, inputs.dtype.name, inputs.shape)
  if inputs.shape.rank == 2:
    inputs = inputs[:, :, tf.newaxis]
  return tf.cast(inputs, tf.float32)


class FrontendInterface:
  """What every frontend (the six named ones and any `Frontend` composition) tells the code
  around it, so that trainer, hub modules and plots never ask which frontend they hold.

  Attributes, set by each frontend's constructor:
    sample_rate: of the input, in Hz.
    window_size: samples of one analysis window (filter and pooling window; 401 for LEAF's
      25 ms at 16 kHz).
    hop: samples between output frames (160 for 10 ms).
    n_filters: filters (bands) of the filterbank.
  Properties and methods:
    output_bins: features per frame (n_filters unless a frontend appends more).
    min_samples: shortest input the frontend is meant for: one analysis window.
    filter_taps(): the current filters as complex taps [filters, taps] (numpy), or None
      where the frontend has no learnable filters to show (mel).
    frequency_responses(n_fft): (frequencies in Hz, per-filter power responses
      [filters, bins], each normalised to its peak), for plots.
  """
  sample_rate: int
  window_size: int
  hop: int
  n_filters: int

  @property
  def output_bins(self) -> int:
    return self.n_filters

  @property
  def min_samples(self) -> int:
    return self.window_size

  def filter_taps(self) -> Optional[np.ndarray]:
    raise NotImplementedError

  def frequency_responses(self, n_fft: int = 1024):
    """|DFT_{n_fft}(taps)|^2, 0 ... sample_rate / 2 (complex filters respond on one side)."""
    taps = self.filter_taps()
    if taps is None:
      raise TypeError(f"{type(self).__name__} has no filter taps to compute responses from.")
    power = np.abs(np.fft.fft(taps, n=n_fft, axis=1)[:, :n_fft // 2 + 1])**2
    power = np.maximum(power, 1e-30)
    freqs = np.arange(n_fft // 2 + 1) * self.sample_rate / n_fft
    return freqs, power / power.max(axis=1, keepdims=True)


def _window_and_stride(layer) -> tuple:
  """(window, stride) in samples of a filterbank or pooling block: our blocks' kernel_size
  and strides, or Keras pooling's pool_size and strides (1-tuples there)."""
  def samples(value):
    return int(value[0] if isinstance(value, (tuple, list)) else value)
  window = getattr(layer, "kernel_size", getattr(layer, "pool_size", 1))
  return samples(window), samples(getattr(layer, "strides", 1))


def assign_blocks(frontend, filterbank, activation, pooling, compression, preemphasis,
                  normalization, energy_floor: float, sample_rate: Optional[int]) -> None:
  """Checks and sets a composition's (`Frontend`, tf_keras or Keras 3) blocks and sizes."""
  check_positive(type(frontend).__name__, energy_floor=energy_floor)
  frontend.energy_floor = energy_floor
  # Attribute names and their order are those of the first release: they are
  # the checkpoints' object paths and the order of get_weights().
  frontend._preemp = preemphasis
  frontend._instance_norm = normalization
  frontend._filterbank = filterbank
  frontend._activation = activation
  frontend._pooling = pooling
  frontend._compression = compression
  frontend.sample_rate, frontend.window_size, frontend.hop = frontend_sizes(
      type(frontend).__name__, filterbank, pooling, sample_rate)


def frontend_sizes(frontend_name: str, filterbank, pooling, sample_rate: Optional[int]):
  """(sample_rate, window_size, hop) of a composition (see `Frontend`), checked."""
  filterbank_rate = getattr(filterbank, "sample_rate", None)
  if sample_rate is None:
    sample_rate = filterbank_rate or 16000
  elif filterbank_rate is not None and filterbank_rate != sample_rate:
    raise ValueError(f"{frontend_name}: sample_rate={sample_rate} but the filterbank "
                     f"{filterbank.name!r} is made for {filterbank_rate} Hz.")
  check_positive(frontend_name, sample_rate=sample_rate)
  filter_window, filter_stride = _window_and_stride(filterbank)
  pool_window, pool_stride = _window_and_stride(pooling)
  return sample_rate, max(filter_window, pool_window * filter_stride), filter_stride * pool_stride


def squared_modulus(inputs, ops=tf_ops):
  """[B, T, 2N] interleaved (re, im) -> [B, T, N] re^2 + im^2."""
  batch, time, channels = ops.shape(inputs)
  # A reshape, not strided slices: TF's strided-slice gradient is slow here.
  pairs = ops.reshape(inputs, [batch, time, channels // 2, 2])
  return ops.sum(ops.square(pairs), axis=-1)


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class SquaredModulus(tf_keras.layers.Layer):
  """[B, T, 2N] interleaved (re, im) -> [B, T, N] re^2 + im^2."""

  def call(self, inputs):
    return squared_modulus(inputs)

  def compute_output_shape(self, input_shape):
    return tf.TensorShape(input_shape[:-1] + [input_shape[-1] // 2])


class ComposedBlocks:
  """Read access to a composition's blocks (tf_keras `Frontend` and its Keras 3 twin); the
  underscored names are the checkpoints' object paths (`assign_blocks`)."""
  filterbank = property(lambda self: self._filterbank)
  activation = property(lambda self: self._activation)
  pooling = property(lambda self: self._pooling)
  compression = property(lambda self: self._compression)
  preemphasis = property(lambda self: self._preemp)
  normalization = property(lambda self: self._instance_norm)


def run_blocks(frontend, waveform, squared_modulus_class, ops=tf_ops):
  """A `Frontend`'s (tf_keras or Keras 3) blocks applied to a float32 [batch, time, 1] waveform."""
  outputs = waveform
  if frontend.preemphasis is not None:
    outputs = frontend.preemphasis(outputs)
  outputs = frontend.filterbank(outputs)
  if (isinstance(frontend.activation, squared_modulus_class) and
      hasattr(frontend.pooling, "pool_squared_modulus")):
    # LEAF's pair fused (GaussianLowpass): same numbers, fewer passes over memory
    outputs = frontend.pooling.pool_squared_modulus(outputs)
  else:
    outputs = frontend.pooling(frontend.activation(outputs))
  outputs = ops.maximum(outputs, frontend.energy_floor)
  outputs = frontend.compression(outputs)
  if frontend.normalization is not None:
    outputs = frontend.normalization(outputs)
  return outputs


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class Frontend(FrontendInterface, ComposedBlocks, tf_keras.layers.Layer):
  """A learnable frontend composed of four blocks (and two optional ones).

  y = normalization(compression(max(pooling(activation(filterbank(
          preemphasis(x)))), energy_floor)))

  Args:
    filterbank: a layer [batch, time, 1] -> [batch, time, channels], e.g.
      `GaborConv1D`, `SincConv1D`, `FreeConv1D`.
    activation: a layer applied to the filterbank outputs, e.g. `SquaredModulus`
      (complex filters) or `tf_keras.layers.LeakyReLU`.
    pooling: a layer [batch, time, C] -> [batch, frames, C], e.g.
      `GaussianLowpass`, `LearnablePooling1D`, `tf_keras.layers.MaxPool1D`.
    compression: a layer [batch, frames, C] -> same, e.g. `PCEN`,
      `LogCompression`, `tf_keras.layers.LayerNormalization`.
    preemphasis: optional layer run on the waveform first (e.g. a 2-tap conv).
    normalization: optional layer run last (e.g. per-channel GroupNormalization).
    energy_floor: lower bound of the pooled energies before compression
      (leaf-audio's 1e-5).
    sample_rate: of the input, in Hz; None takes the filterbank's (`GaborConv1D`,
      `SincConv1D`), or 16000 for one without (`FreeConv1D`).
    **kwargs: `tf_keras.layers.Layer` arguments (name, trainable, dtype);
      dtype defaults to float32 so the filter math stays float32 under a
      mixed-precision policy.

  The blocks are used as given (not copied): give each frontend its own. The
  `FrontendInterface` sizes follow from the blocks: the hop is the product of the
  filterbank's and the pooling's strides, the window the longer of the filterbank's
  kernel and the pooling window (in input samples), n_filters the channels after the
  activation (the filterbank and activation give them by `compute_output_shape`).
  """

  def __init__(self, filterbank, activation, pooling, compression,
               preemphasis=None, normalization=None,
               energy_floor: float = ENERGY_FLOOR, sample_rate: Optional[int] = None,
               **kwargs):
    # Filter math stays float32 under mixed precision (give the blocks
    # dtype="float32" too: they would otherwise take the global policy).
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    assign_blocks(self, filterbank, activation, pooling, compression, preemphasis,
                  normalization, energy_floor, sample_rate)
    self.n_filters = self._energy_channels()

  def _energy_channels(self):
    """Channels after the activation: what pooling and compression are built for."""
    shape = tf.TensorShape([None, None, 1])
    for layer in (self._filterbank, self._activation):
      shape = tf.TensorShape(layer.compute_output_shape(shape))
    return shape[-1]

  def build(self, input_shape):
    # Build the sub-layers now (not at first call) so that weights exist right
    # after `build`, e.g. for set_weights under a distribution strategy.
    waveform = tf.TensorShape([input_shape[0], None, 1])
    self._build_blocks([self._preemp, self._filterbank], waveform)
    energies = tf.TensorShape([input_shape[0], None, self._energy_channels()])
    self._build_blocks([self._pooling, self._compression, self._instance_norm],
                       energies)
    super().build(input_shape)

  def filter_taps(self):
    """The filterbank's `complex_taps()`; None for a filterbank without them."""
    taps = getattr(self._filterbank, "complex_taps", None)
    return None if taps is None else taps()

  def compute_output_shape(self, input_shape):
    # SAME padding throughout; compression and normalization keep the energies' shape.
    return framed_output_shape(input_shape, self.hop, self.output_bins)

  @staticmethod
  def _build_blocks(layers, input_shape):
    for layer in layers:
      if layer is not None and not layer.built:
        with tf.name_scope(layer.name):  # weights named "<block>/<weight>"
          layer.build(input_shape)

  def call(self, inputs):
    return run_blocks(self, as_mono_waveform(inputs, type(self).__name__), SquaredModulus)

  def get_config(self):
    blocks = {"filterbank": self._filterbank, "activation": self._activation,
              "pooling": self._pooling, "compression": self._compression,
              "preemphasis": self._preemp, "normalization": self._instance_norm}
    return {**super().get_config(), "energy_floor": self.energy_floor,
            "sample_rate": self.sample_rate,
            **{key: None if layer is None else tf_keras.layers.serialize(layer)
               for key, layer in blocks.items()}}

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    for key in ("filterbank", "activation", "pooling", "compression",
                "preemphasis", "normalization"):
      if config.get(key) is not None:
        config[key] = tf_keras.layers.deserialize(config[key])
    return cls(**config)
