"""The frontends of the LEAF paper, as tf_keras layers.

waveform [batch, time] or [batch, time, 1], float, 16 kHz in [-1, 1]
    -> features [batch, ceil(time / hop), n_filters], float32.

    Leaf                  = GaborConv1D -> |.|^2 -> GaussianLowpass -> max(., 1e-5) -> sPCEN
    SincNet               = SincConv1D -> LeakyReLU(0.2) -> max-pool -> max(., 1e-5) -> LayerNorm
    SincNetPlus           = SincConv1D -> LeakyReLU(0.2) -> GaussianLowpass -> max(., 1e-5) -> PCEN
    TimeDomainFilterbanks = FreeConv1D (Gabor init) -> |.|^2 -> LearnablePooling1D -> max(., 1e-5) -> log
    MelFilterbanks        = |DFT|^2 of Hann-windowed frames -> mel matrix -> log(. + 1e-5)

Defaults and numerics are those of google-research/leaf-audio (40 filters,
25 ms windows = 401 taps, 10 ms hop = 160, SAME padding, mel init 60-7800 Hz).
The one deliberate difference: TimeDomainFilterbanks pools SAME, not VALID.
"""
import numpy as np
import tensorflow as tf
import tf_keras

from tf_frontends import compression
from tf_frontends import convolution
from tf_frontends import efficient_leaf  # imports this module back; uses it only at run time
from tf_frontends import initializers
from tf_frontends import pooling

ENERGY_FLOOR = 1e-5


def window_samples(sample_rate: int, window_len_ms: float) -> int:
  """leaf-audio's window length: sr * ms // 1000 + 1 (401 for 25 ms at 16 kHz)."""
  return int(sample_rate * window_len_ms // 1000 + 1)


def hop_samples(sample_rate: int, window_stride_ms: float) -> int:
  return int(sample_rate * window_stride_ms // 1000)


def as_mono_waveform(inputs, layer_name: str) -> tf.Tensor:
  """Checks a waveform batch and returns it as float32 [batch, time, 1]."""
  inputs = tf.convert_to_tensor(inputs)
  if not inputs.dtype.is_floating:
    raise TypeError(
        f"{layer_name} expects a float waveform in [-1, 1], got dtype "
        f"{inputs.dtype.name}; convert integer PCM with x / 32768.0 first.")
  rank = inputs.shape.rank
  if rank == 2:
    inputs = inputs[:, :, tf.newaxis]
  elif rank == 3:
    if inputs.shape[-1] != 1:
      raise ValueError(
          f"{layer_name} expects mono audio [batch, time] or [batch, time, 1]; "
          f"got {inputs.shape[-1]} channels (shape {inputs.shape}). Downmix first.")
  else:
    raise ValueError(
        f"{layer_name} expects a waveform of shape [batch, time] or "
        f"[batch, time, 1]; got rank {rank} (shape {inputs.shape}).")
  return tf.cast(inputs, tf.float32)


def check_frequency_range(layer_name, min_freq, max_freq, sample_rate):
  if not 0.0 <= min_freq < max_freq <= sample_rate / 2:
    raise ValueError(
        f"{layer_name}: need 0 <= min_freq < max_freq <= sample_rate / 2; got "
        f"min_freq={min_freq}, max_freq={max_freq}, sample_rate={sample_rate} "
        "(set max_freq when changing sample_rate).")


class _FramedFrontend(tf_keras.layers.Layer):
  """What every frontend shares: sizes, frame arithmetic, float32 dtype, config."""

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               window_len: float = 25.0, window_stride: float = 10.0, **kwargs):
    # Filter math stays float32 under mixed precision (the sub-layers too: they
    # would otherwise take the global policy and build taps in float16).
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.n_filters = n_filters
    self.sample_rate = sample_rate
    self.window_len = window_len
    self.window_stride = window_stride
    self.window_size = window_samples(sample_rate, window_len)
    self.hop = hop_samples(sample_rate, window_stride)
    if n_filters <= 0 or self.window_size <= 1 or self.hop <= 0:
      raise ValueError(
          f"{type(self).__name__}: n_filters, window_len and window_stride must "
          f"be positive; got n_filters={n_filters}, window_len={window_len} ms, "
          f"window_stride={window_stride} ms at {sample_rate} Hz.")

  def num_frames(self, num_samples):
    return -(-num_samples // self.hop)

  def compute_output_shape(self, input_shape):
    time = input_shape[1]
    return tf.TensorShape(
        [input_shape[0], None if time is None else self.num_frames(time),
         self.n_filters])

  def get_config(self):
    return {**super().get_config(), "n_filters": self.n_filters,
            "sample_rate": self.sample_rate, "window_len": self.window_len,
            "window_stride": self.window_stride}


class _Frontend(_FramedFrontend):
  """Shared arguments, input checks and the LEAF-family signal chain.

  Subclasses create `self._filterbank`, `self._activation`, `self._pooling` and
  `self._compression` in `__init__`; `call` runs
  [pre-emphasis] -> filterbank -> activation -> pooling -> max(., 1e-5)
  -> compression -> [per-channel mean/variance normalisation].
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               window_len: float = 25.0, window_stride: float = 10.0,
               learn_filters: bool = True, learn_pooling: bool = True,
               preemp: bool = False, mean_var_norm: bool = False, **kwargs):
    super().__init__(n_filters=n_filters, sample_rate=sample_rate,
                     window_len=window_len, window_stride=window_stride,
                     **kwargs)
    self.learn_filters = learn_filters
    self.learn_pooling = learn_pooling
    self.preemp = preemp
    self.mean_var_norm = mean_var_norm
    self._preemp = None
    if preemp:
      self._preemp = tf_keras.layers.Conv1D(
          1, 2, padding="same", use_bias=False, trainable=learn_filters,
          kernel_initializer=initializers.PreempInit(), name="preemp", dtype="float32")
    self._instance_norm = None
    if mean_var_norm:
      self._instance_norm = tf_keras.layers.GroupNormalization(
          groups=n_filters, epsilon=1e-6, name="instance_norm", dtype="float32")

  def build(self, input_shape):
    # Build the sub-layers now (not at first call) so that weights exist right
    # after `build`, e.g. for set_weights under a distribution strategy.
    waveform = tf.TensorShape([input_shape[0], None, 1])
    energies = tf.TensorShape([input_shape[0], None, self.n_filters])
    for layer, shape in [(self._preemp, waveform), (self._filterbank, waveform),
                         (self._pooling, energies), (self._compression, energies),
                         (self._instance_norm, energies)]:
      if layer is not None and not layer.built:
        with tf.name_scope(layer.name):
          layer.build(shape)
    super().build(input_shape)

  def call(self, inputs):
    outputs = as_mono_waveform(inputs, type(self).__name__)
    if self._preemp is not None:
      outputs = self._preemp(outputs)
    outputs = self._filterbank(outputs)
    outputs = self._activation(outputs)
    outputs = self._pooling(outputs)
    outputs = tf.maximum(outputs, ENERGY_FLOOR)
    outputs = self._compression(outputs)
    if self._instance_norm is not None:
      outputs = self._instance_norm(outputs)
    return outputs

  def get_config(self):
    return {**super().get_config(), "learn_filters": self.learn_filters,
            "learn_pooling": self.learn_pooling, "preemp": self.preemp,
            "mean_var_norm": self.mean_var_norm}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class SquaredModulus(tf_keras.layers.Layer):
  """[B, T, 2N] interleaved (re, im) -> [B, T, N] re^2 + im^2."""

  def call(self, inputs):
    # A reshape, not strided slices: TF's strided-slice gradient is slow here.
    pairs = tf.reshape(inputs, tf.concat(
        [tf.shape(inputs)[:-1], [inputs.shape[-1] // 2, 2]], axis=0))
    return tf.reduce_sum(tf.square(pairs), axis=-1)

  def compute_output_shape(self, input_shape):
    return tf.TensorShape(input_shape[:-1] + [input_shape[-1] // 2])


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class Leaf(_Frontend):
  """LEAF: Gabor filterbank, Gaussian lowpass pooling, sPCEN (Zeghidour et al. 2021).

  Args:
    n_filters, sample_rate, window_len (ms), window_stride (ms): as leaf-audio.
    min_freq, max_freq: range of the mel initialisation, in Hz.
    learn_filters, learn_pooling: train the Gabor / pooling parameters.
    pooling_init: initial relative width of the Gaussian pooling windows.
    pcen_alpha, pcen_smooth_coef, pcen_delta, pcen_root, pcen_floor: sPCEN init.
    learn_pcen: train the sPCEN parameters (including the smoothing).
    preemp: learnable pre-emphasis (2-tap conv, init [-0.97, 1]) first.
    mean_var_norm: per-channel mean/variance normalisation of the output.
    ema_implementation: "parallel" (default) or "scan" (the straightforward form).
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               window_len: float = 25.0, window_stride: float = 10.0,
               min_freq: float = 60.0, max_freq: float = 7800.0,
               learn_filters: bool = True, learn_pooling: bool = True,
               pooling_init: float = 0.4, pcen_alpha: float = 0.96,
               pcen_smooth_coef: float = 0.04, pcen_delta: float = 2.0,
               pcen_root: float = 2.0, pcen_floor: float = 1e-12,
               learn_pcen: bool = True, preemp: bool = False,
               mean_var_norm: bool = False,
               ema_implementation: str = "parallel", **kwargs):
    super().__init__(n_filters=n_filters, sample_rate=sample_rate,
                     window_len=window_len, window_stride=window_stride,
                     learn_filters=learn_filters, learn_pooling=learn_pooling,
                     preemp=preemp, mean_var_norm=mean_var_norm, **kwargs)
    check_frequency_range("Leaf", min_freq, max_freq, sample_rate)
    self.min_freq = min_freq
    self.max_freq = max_freq
    self.pooling_init = pooling_init
    self.pcen_alpha = pcen_alpha
    self.pcen_smooth_coef = pcen_smooth_coef
    self.pcen_delta = pcen_delta
    self.pcen_root = pcen_root
    self.pcen_floor = pcen_floor
    self.learn_pcen = learn_pcen
    self.ema_implementation = ema_implementation
    self._filterbank = convolution.GaborConv1D(
        n_filters, self.window_size, sample_rate=sample_rate,
        min_freq=min_freq, max_freq=max_freq, trainable=learn_filters,
        name="gabor_conv", dtype="float32")
    self._activation = SquaredModulus(name="squared_modulus", dtype="float32")
    self._pooling = pooling.GaussianLowpass(
        self.window_size, self.hop, init_sigma=pooling_init,
        trainable=learn_pooling, name="gaussian_lowpass", dtype="float32")
    self._compression = compression.PCEN(
        alpha=pcen_alpha, smooth_coef=pcen_smooth_coef, delta=pcen_delta,
        root=pcen_root, floor=pcen_floor, learn_params=learn_pcen,
        learn_smooth_coef=learn_pcen, per_channel_smooth_coef=True,
        ema_implementation=ema_implementation, name="pcen", dtype="float32")

  def get_config(self):
    return {**super().get_config(), "min_freq": self.min_freq,
            "max_freq": self.max_freq, "pooling_init": self.pooling_init,
            "pcen_alpha": self.pcen_alpha,
            "pcen_smooth_coef": self.pcen_smooth_coef,
            "pcen_delta": self.pcen_delta, "pcen_root": self.pcen_root,
            "pcen_floor": self.pcen_floor, "learn_pcen": self.learn_pcen,
            "ema_implementation": self.ema_implementation}


class _SincFrontend(_Frontend):
  """SincConv1D + LeakyReLU(0.2), shared by SincNet and SincNetPlus.

  symmetric_window: False (default) windows the sinc taps with leaf-audio's
  Hamming window, True with numpy's symmetric `np.hamming` as audax does
  (see `convolution.SincConv1D`).
  """

  def __init__(self, min_low_hz: float = 50.0, min_band_hz: float = 50.0,
               symmetric_window: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.min_low_hz = min_low_hz
    self.min_band_hz = min_band_hz
    self.symmetric_window = symmetric_window
    self._filterbank = convolution.SincConv1D(
        self.n_filters, self.window_size, sample_rate=self.sample_rate,
        min_low_hz=min_low_hz, min_band_hz=min_band_hz,
        symmetric_window=symmetric_window,
        trainable=self.learn_filters, name="sinc_conv", dtype="float32")
    self._activation = tf_keras.layers.LeakyReLU(alpha=0.2, name="leaky_relu", dtype="float32")

  def get_config(self):
    return {**super().get_config(), "min_low_hz": self.min_low_hz,
            "min_band_hz": self.min_band_hz,
            "symmetric_window": self.symmetric_window}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class SincNet(_SincFrontend):
  """SincNet (Ravanelli & Bengio 2018) as in leaf-audio: max-pooling and LayerNorm.

  layer_norm_epsilon: 1e-3 (leaf-audio's, the Keras default); audax's flax
  LayerNorm uses 1e-6. With `symmetric_window=True` and 1e-6 the frontend
  computes what audax's SincNet does.
  `learn_pooling` has no effect (max-pooling has no parameters); it is accepted
  so every frontend takes the same arguments.
  """

  def __init__(self, layer_norm_epsilon: float = 1e-3, **kwargs):
    super().__init__(**kwargs)
    self.layer_norm_epsilon = layer_norm_epsilon
    self._pooling = tf_keras.layers.MaxPool1D(
        self.window_size, self.hop, padding="same", name="max_pool", dtype="float32")
    self._compression = tf_keras.layers.LayerNormalization(
        epsilon=layer_norm_epsilon, name="layer_norm", dtype="float32")

  def get_config(self):
    return {**super().get_config(), "layer_norm_epsilon": self.layer_norm_epsilon}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class SincNetPlus(_SincFrontend):
  """SincNet+ of the LEAF paper: Gaussian lowpass pooling and fixed PCEN (floor 1e-6)."""

  def __init__(self, pooling_init: float = 0.4,
               ema_implementation: str = "parallel", **kwargs):
    super().__init__(**kwargs)
    self.pooling_init = pooling_init
    self.ema_implementation = ema_implementation
    self._pooling = pooling.GaussianLowpass(
        self.window_size, self.hop, init_sigma=pooling_init,
        trainable=self.learn_pooling, name="gaussian_lowpass", dtype="float32")
    self._compression = compression.PCEN(
        floor=1e-6, learn_params=False, learn_smooth_coef=False,
        ema_implementation=ema_implementation, name="pcen", dtype="float32")

  def get_config(self):
    return {**super().get_config(), "pooling_init": self.pooling_init,
            "ema_implementation": self.ema_implementation}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class TimeDomainFilterbanks(_Frontend):
  """Time-domain filterbanks (Zeghidour et al. 2018) as in leaf-audio.

  A free 1-D convolution of 2 * n_filters channels initialised with energy-normalised
  Gabor filters, squared modulus, one shared learnable lowpass (squared Hann
  init), log(x + 1e-5). Pools SAME (leaf-audio: VALID), see the module doc.
  """

  def __init__(self, min_freq: float = 60.0, max_freq: float = 7800.0,
               **kwargs):
    super().__init__(**kwargs)
    check_frequency_range("TimeDomainFilterbanks", min_freq, max_freq,
                          self.sample_rate)
    self.min_freq = min_freq
    self.max_freq = max_freq
    self._filterbank = convolution.FreeConv1D(
        2 * self.n_filters, self.window_size,
        kernel_initializer=initializers.TimeDomainGaborInit(
            self.sample_rate, min_freq, max_freq),
        trainable=self.learn_filters, name="conv", dtype="float32")
    self._activation = SquaredModulus(name="squared_modulus", dtype="float32")
    self._pooling = pooling.LearnablePooling1D(
        self.window_size, self.hop, trainable=self.learn_pooling,
        name="learnable_pooling", dtype="float32")
    self._compression = compression.LogCompression(ENERGY_FLOOR, name="log", dtype="float32")

  def get_config(self):
    return {**super().get_config(), "min_freq": self.min_freq,
            "max_freq": self.max_freq}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class MelFilterbanks(_FramedFrontend):
  """Log mel filterbanks, computed with a real DFT as a matrix product.

  X_m[k] = sum_{n < L} w[n] x[m H + n] e^{-2 pi i k n / n_fft},  k = 0 ... n_fft / 2
  y_m = log(|X_m|^2 @ mel + 1e-5),  w = tf.signal.hann_window(L) (symmetric for
  odd L), frames padded at the end like tf.signal.stft(pad_end=True), so the
  output equals leaf-audio's STFT-based MelFilterbanks while converting to TFLite
  with built-in ops only (no FFT, no complex).
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               n_fft: int = 512, window_len: float = 25.0,
               window_stride: float = 10.0, min_freq: float = 60.0,
               max_freq: float = 7800.0, **kwargs):
    super().__init__(n_filters=n_filters, sample_rate=sample_rate,
                     window_len=window_len, window_stride=window_stride,
                     **kwargs)
    check_frequency_range("MelFilterbanks", min_freq, max_freq, sample_rate)
    self.n_fft = n_fft
    self.min_freq = min_freq
    self.max_freq = max_freq
    if self.window_size > n_fft:
      raise ValueError(f"MelFilterbanks: window of {self.window_size} samples "
                       f"is longer than n_fft={n_fft}.")

  def build(self, input_shape):
    # Constants, made here rather than in __init__: constructing a layer must not start TF's
    # runtime (a multi-worker strategy has to be created first).
    with tf.init_scope():  # numpy constants, even if first built inside a graph
      n = np.arange(self.window_size)[:, np.newaxis]
      k = np.arange(self.n_fft // 2 + 1)[np.newaxis, :]
      angle = 2.0 * np.pi * n * k / self.n_fft
      window = tf.signal.hann_window(self.window_size, dtype=tf.float64).numpy()
      dft = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
      self._windowed_dft = (dft * window[:, np.newaxis]).astype(np.float32)
      self._mel_matrix = initializers.mel_filters(
          self.n_filters, self.sample_rate, self.min_freq, self.max_freq, self.n_fft).T
    super().build(input_shape)

  def call(self, inputs):
    waveform = as_mono_waveform(inputs, "MelFilterbanks")[:, :, 0]
    frames = tf.signal.frame(waveform, self.window_size, self.hop,
                             pad_end=True)
    spectrum = tf.matmul(frames, self._windowed_dft)
    real, imag = tf.split(spectrum, 2, axis=-1)
    power = tf.square(real) + tf.square(imag)
    return tf.math.log(tf.matmul(power, self._mel_matrix) + ENERGY_FLOOR)

  def get_config(self):
    return {**super().get_config(), "n_fft": self.n_fft,
            "min_freq": self.min_freq, "max_freq": self.max_freq}


FRONTENDS = {
    "leaf": Leaf,
    "sincnet": SincNet,
    "sincnet_plus": SincNetPlus,
    "tdfbanks": TimeDomainFilterbanks,
    "mel": MelFilterbanks,
    "efficientleaf": efficient_leaf.EfficientLeaf,
}


def get(name: str, **kwargs) -> tf_keras.layers.Layer:
  """Builds a frontend by name: one of `FRONTENDS`, with its constructor kwargs."""
  if name not in FRONTENDS:
    raise ValueError(f"Unknown frontend {name!r}; choose one of "
                     f"{sorted(FRONTENDS)}.")
  return FRONTENDS[name](**kwargs)
