"""Log mel filterbanks as a tf_keras layer (a fixed frontend, no learnable weights)."""
import numpy as np
import tensorflow as tf
import tf_keras

from tf_frontends import composition
from tf_frontends import initializers


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class MelFilterbanks(tf_keras.layers.Layer):
  """Log mel filterbanks, computed with a real DFT as a matrix product.

  X_m[k] = sum_{n < L} w[n] x[m H + n] e^{-2 pi i k n / n_fft},  k = 0 ... n_fft / 2
  y_m = log(|X_m|^2 @ mel + 1e-5),  w = tf.signal.hann_window(L) (symmetric for
  odd L), frames padded at the end like tf.signal.stft(pad_end=True), so the
  output equals leaf-audio's STFT-based MelFilterbanks while converting to TFLite
  with built-in ops only (no FFT, no complex).
  [batch, time] or [batch, time, 1] -> [batch, ceil(time / hop), n_filters].

  Args:
    n_filters: number of mel bands (>= 1).
    sample_rate: of the input, in Hz.
    n_fft: DFT size; at least the window length in samples.
    window_len: frame length in milliseconds, at most 100 (25 ms = 401 samples
      at 16 kHz).
    window_stride: hop in milliseconds, at most 100 (10 ms = 160 samples).
    min_freq, max_freq: range of the mel bands in Hz, max_freq <= sample_rate / 2.
    learn_filters, learn_pooling: must be False (the default): the mel frontend
      has nothing to learn. Accepted so `tf_frontends.get(name, ...)` takes the
      same switches for every frontend.
    **kwargs: `tf_keras.layers.Layer` arguments (name, dtype: float32 default).
  """

  def __init__(self, n_filters: int = 40, sample_rate: int = 16000,
               n_fft: int = 512, window_len: float = 25.0,
               window_stride: float = 10.0, min_freq: float = 60.0,
               max_freq: float = 7800.0, learn_filters: bool = False,
               learn_pooling: bool = False, **kwargs):
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
    self.n_filters = n_filters
    self.sample_rate = sample_rate
    self.n_fft = n_fft
    self.window_len = window_len
    self.window_stride = window_stride
    self.min_freq = min_freq
    self.max_freq = max_freq
    self.learn_filters = learn_filters
    self.learn_pooling = learn_pooling

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
    waveform = composition.as_mono_waveform(inputs, "MelFilterbanks")[:, :, 0]
    frames = tf.signal.frame(waveform, self.window_size, self.hop,
                             pad_end=True)
    spectrum = tf.matmul(frames, self._windowed_dft)
    real, imag = tf.split(spectrum, 2, axis=-1)
    power = tf.square(real) + tf.square(imag)
    return tf.math.log(tf.matmul(power, self._mel_matrix) + composition.ENERGY_FLOOR)

  def compute_output_shape(self, input_shape):
    return composition.framed_output_shape(input_shape, self.hop, self.n_filters)

  def get_config(self):
    return {**super().get_config(), "n_filters": self.n_filters,
            "sample_rate": self.sample_rate, "window_len": self.window_len,
            "window_stride": self.window_stride, "n_fft": self.n_fft,
            "min_freq": self.min_freq, "max_freq": self.max_freq,
            "learn_filters": self.learn_filters, "learn_pooling": self.learn_pooling}
