"""Log mel filterbanks as a tf_keras layer (a fixed frontend, no learnable weights)."""
import contextlib
import threading

import numpy as np
import tensorflow as tf
import tf_keras

from tf_frontends import composition
from tf_frontends import initializers

FRAME_PADDINGS = ("end", "reflect")
MEL_WEIGHTS = ("tensorflow", "torchaudio")

_graph_target = threading.local()


@contextlib.contextmanager
def builtin_ops_only():
  """While open, MelFilterbanks traces its DFT as a matrix product (for TFLite).

  Training, evaluation and SavedModels use an FFT (tf.signal.rfft, as tf.signal.stft does):
  1.8-2.1x faster than the matrix product on an AMD EPYC (benchmarks/README.md), for a
  reason that holds anywhere (n log n against n^2 operations per frame). TFLite maps an
  RFFT only onto its RFFT2D kernel, which takes power-of-two lengths only and is not one of
  XNNPACK's ops, while the matrix product is a plain FULLY_CONNECTED for any n_fft. So
  whatever builds a TFLite graph (`export.tflite.convert`; do the same when converting
  yourself) traces the model inside this context; it acts while a graph is traced (a
  function traced earlier keeps its form) and in this thread only. The choice depends only
  on where the graph goes, never on timing; both forms give the same numbers (to float32
  rounding) and the layer has no weights, so a model can switch between them.
  """
  previous = getattr(_graph_target, "builtin_ops_only", False)
  _graph_target.builtin_ops_only = True
  try:
    yield
  finally:
    _graph_target.builtin_ops_only = previous


def dft_as_matmul() -> bool:
  """True inside `builtin_ops_only()` (read when a graph is traced)."""
  return getattr(_graph_target, "builtin_ops_only", False)


def torchaudio_mel_filters(n_filters: int, sample_rate: int, min_freq: float,
                           max_freq: float, n_fft: int) -> np.ndarray:
  """torchaudio's `melscale_fbanks` (HTK mel, norm=None) as float32 [n_filters, n_fft // 2 + 1].

  Band edges f_0 < ... < f_{M+1} equally spaced on 2595 log10(1 + f / 700) from min_freq to
  max_freq; band m is the triangle on f_m, f_{m+1}, f_{m+2} linear in Hz, sampled at the bin
  frequencies linspace(0, sample_rate // 2, n_fft // 2 + 1). (TF's matrix draws the triangles
  linear in mel and leaves the DC bin out.)
  """
  def to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)
  edges_mel = np.linspace(to_mel(min_freq), to_mel(max_freq), n_filters + 2)
  edges_hz = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
  bins_hz = np.linspace(0.0, sample_rate // 2, n_fft // 2 + 1)
  rising = (bins_hz[np.newaxis, :] - edges_hz[:-2, np.newaxis]) / np.diff(edges_hz)[:-1, None]
  falling = (edges_hz[2:, np.newaxis] - bins_hz[np.newaxis, :]) / np.diff(edges_hz)[1:, None]
  return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def reflect_indices(length: tf.Tensor, pad: int) -> tf.Tensor:
  """Indices of x padded by `pad` on both sides in numpy's "reflect" mode, any pad >= 0.

  That padding is the signal mirrored about its end samples and repeated with period
  2 (length - 1), so it is defined for every length >= 1 (numpy repeats the reflection
  while pad >= length; tf.pad's REFLECT refuses it).
  """
  period = tf.maximum(2 * (length - 1), 1)
  offset = tf.math.floormod(tf.range(-pad, length + pad), period)
  return tf.where(offset < length, offset, period - offset)


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class MelFilterbanks(composition.FrontendInterface, tf_keras.layers.Layer):
  """Log mel filterbanks of a real DFT.

  X_m[k] = sum_{n < L} w[n] x[m H + n] e^{-2 pi i k n / n_fft},  k = 0 ... n_fft / 2
  y_m = log(max(|X_m|^2 @ mel, log_floor) + log_offset)
  X is an FFT (tf.signal.rfft, as tf.signal.stft computes it), or a matrix product with
  the windowed DFT matrix when traced inside `builtin_ops_only()` (TFLite; see there).

  The defaults are leaf-audio's STFT-based MelFilterbanks: w = tf.signal.hann_window(L)
  (periodic; symmetric for odd L such as the default 401), frames zero-padded at the end like
  tf.signal.stft(pad_end=True), TF's mel matrix, log(. + 1e-5):
  [batch, time] or [batch, time, 1] -> [batch, ceil(time / hop), n_filters].

  audax's log-mel (its recipe: n_fft 1024, 400-sample window, hop 160, 64 bins, 60-7800 Hz)
  is `symmetric_window=True, frame_padding="reflect", mel_weights="torchaudio",
  log_floor=1e-8, log_offset=0.0`: numpy's Hann window, the waveform reflect-padded by
  n_fft // 2 on both sides and cut into windows of L from its start (frame m covers input
  samples m H - n_fft // 2 ... m H - n_fft // 2 + L - 1), torchaudio's mel matrix, and
  log(max(., 1e-8)): [batch, time] -> [batch, 1 + (time + 2 (n_fft // 2) - L) // hop,
  n_filters]. audax also clips at 1e8 before the log, which a waveform in [-1, 1] cannot
  reach: a band's energy is at most (sum w)^2 times the largest mel-row sum, 7.8e5 there.

  Args:
    n_filters: number of mel bands (>= 1).
    sample_rate: of the input, in Hz.
    n_fft: DFT size; at least the window length in samples.
    window_len: frame length in milliseconds, at most 100 (25 ms = 401 samples
      at 16 kHz; leaf-audio's rule sample_rate * ms // 1000 + 1, so 24.9375 ms = 400).
    window_stride: hop in milliseconds, at most 100 (10 ms = 160 samples).
    min_freq, max_freq: range of the mel bands in Hz, max_freq <= sample_rate / 2.
    learn_filters, learn_pooling: must be False (the default): the mel frontend
      has nothing to learn. Accepted so `tf_frontends.get(name, ...)` takes the
      same switches for every frontend.
    symmetric_window: numpy's Hann window 0.5 - 0.5 cos(2 pi n / (L - 1)) for every L;
      False: tf.signal.hann_window (denominator L for even L).
    frame_padding: "end" (zeros after the waveform, ceil(time / hop) frames) or "reflect"
      (numpy's reflect padding by n_fft // 2 on both sides, then only whole frames).
    mel_weights: "tensorflow" (tf.signal.linear_to_mel_weight_matrix) or "torchaudio"
      (`torchaudio_mel_filters`).
    log_floor: band energies are raised to at least this (>= 0) before the log.
    log_offset: added to the band energies before the log (>= 0); log_floor + log_offset
      must be > 0 so that silence gives a finite log.
    **kwargs: `tf_keras.layers.Layer` arguments (name, dtype: float32 default).
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               n_fft: int = 512, window_len: float = 25.0,
               window_stride: float = 10.0, min_freq: float = 60.0,
               max_freq: float = 7800.0, learn_filters: bool = False,
               learn_pooling: bool = False, symmetric_window: bool = False,
               frame_padding: str = "end", mel_weights: str = "tensorflow",
               log_floor: float = 0.0, log_offset: float = composition.ENERGY_FLOOR,
               **kwargs):
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.window_size, self.hop = composition.frame_sizes(
        "MelFilterbanks", n_filters, sample_rate, window_len, window_stride)
    composition.check_frequency_range("MelFilterbanks", min_freq, max_freq,
                                      sample_rate)
    composition.check_positive_int("MelFilterbanks", n_fft=n_fft)
    if self.window_size > n_fft:
      raise ValueError(f"MelFilterbanks: window of {self.window_size} samples "
                       f"is longer than n_fft={n_fft}.")
    for name, value in (("learn_filters", learn_filters),
                        ("learn_pooling", learn_pooling)):
      if value:
        raise ValueError(f"MelFilterbanks: {name}=True, but the mel frontend has "
                         "fixed filters and pooling; use 'leaf' or 'tdfbanks' to "
                         "learn them.")
    for name, value, choices in (("frame_padding", frame_padding, FRAME_PADDINGS),
                                 ("mel_weights", mel_weights, MEL_WEIGHTS)):
      if value not in choices:
        raise ValueError(f"MelFilterbanks: {name} must be one of {choices}; got {value!r}.")
    for name, value in (("log_floor", log_floor), ("log_offset", log_offset)):
      if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
          0.0 <= value < float("inf")):
        raise ValueError(f"MelFilterbanks: {name} must be a finite number >= 0; got {value!r}.")
    if log_floor + log_offset <= 0:
      raise ValueError("MelFilterbanks: log_floor and log_offset are both 0, so silence "
                       "would give log(0) = -inf; set one of them > 0.")
    self.n_filters = n_filters
    self.sample_rate = sample_rate
    self.n_fft = n_fft
    self.window_len = window_len
    self.window_stride = window_stride
    self.min_freq = min_freq
    self.max_freq = max_freq
    self.learn_filters = learn_filters
    self.learn_pooling = learn_pooling
    self.symmetric_window = bool(symmetric_window)
    self.frame_padding = frame_padding
    self.mel_weights = mel_weights
    self.log_floor = float(log_floor)
    self.log_offset = float(log_offset)

  def build(self, input_shape):
    # Constants, made here rather than in __init__: constructing a layer must not start TF's
    # runtime (a multi-worker strategy has to be created first).
    with tf.init_scope():  # numpy constants, even if first built inside a graph
      n = np.arange(self.window_size)[:, np.newaxis]
      k = np.arange(self.n_fft // 2 + 1)[np.newaxis, :]
      angle = 2.0 * np.pi * n * k / self.n_fft
      if self.symmetric_window:
        window = np.hanning(self.window_size)
      else:
        window = tf.signal.hann_window(self.window_size, dtype=tf.float64).numpy()
      dft = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
      self._window = window.astype(np.float32)
      self._windowed_dft = (dft * window[:, np.newaxis]).astype(np.float32)
      self._mel_matrix = self.mel_matrix().T
    super().build(input_shape)

  def mel_matrix(self) -> np.ndarray:
    """[n_filters, n_fft // 2 + 1] float32: each band's weight of each DFT bin."""
    if self.mel_weights == "torchaudio":
      return torchaudio_mel_filters(self.n_filters, self.sample_rate, self.min_freq,
                                    self.max_freq, self.n_fft)
    return initializers.mel_filters(self.n_filters, self.sample_rate, self.min_freq,
                                    self.max_freq, self.n_fft)

  def filter_taps(self):
    """None: the mel filters are fixed (there is nothing learnt to show)."""
    return None

  def frequency_responses(self, n_fft: int = 1024):
    """The mel weights (peak-normalised) on this layer's own DFT bins; n_fft is unused."""
    del n_fft
    weights = np.maximum(self.mel_matrix(), 1e-30)
    freqs = np.linspace(0, self.sample_rate / 2, weights.shape[1])
    return freqs, weights / weights.max(axis=1, keepdims=True)

  def call(self, inputs):
    waveform = composition.as_mono_waveform(inputs, "MelFilterbanks")[:, :, 0]
    if self.frame_padding == "reflect":
      indices = reflect_indices(tf.shape(waveform)[1], self.n_fft // 2)
      frames = tf.signal.frame(tf.gather(waveform, indices, axis=1), self.window_size,
                               self.hop)
    else:
      frames = tf.signal.frame(waveform, self.window_size, self.hop, pad_end=True)
    if dft_as_matmul():
      real, imag = tf.split(tf.matmul(frames, self._windowed_dft), 2, axis=-1)
    else:
      spectrum = tf.signal.rfft(frames * self._window, [self.n_fft])
      real, imag = tf.math.real(spectrum), tf.math.imag(spectrum)
    power = tf.square(real) + tf.square(imag)
    energy = tf.matmul(power, self._mel_matrix)
    if self.log_floor > 0:
      energy = tf.maximum(energy, self.log_floor)
    if self.log_offset > 0:
      energy = energy + self.log_offset
    return tf.math.log(energy)

  def compute_output_shape(self, input_shape):
    if self.frame_padding == "end":
      return composition.framed_output_shape(input_shape, self.hop, self.n_filters)
    time = input_shape[1]
    if time is not None:
      time = 1 + (time + 2 * (self.n_fft // 2) - self.window_size) // self.hop
    return tf.TensorShape([input_shape[0], time, self.n_filters])

  def get_config(self):
    return {**super().get_config(), "n_filters": self.n_filters,
            "sample_rate": self.sample_rate, "window_len": self.window_len,
            "window_stride": self.window_stride, "n_fft": self.n_fft,
            "min_freq": self.min_freq, "max_freq": self.max_freq,
            "learn_filters": self.learn_filters, "learn_pooling": self.learn_pooling,
            "symmetric_window": self.symmetric_window, "frame_padding": self.frame_padding,
            "mel_weights": self.mel_weights, "log_floor": self.log_floor,
            "log_offset": self.log_offset}
