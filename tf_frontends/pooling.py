"""Learnable lowpass pooling over time, applied channel by channel.

y_c[m] = sum_k x_c[m s + k - p] w_c[k],  k = 0 ... K - 1, SAME padding (TF's split:
p = floor((K - s') / 2) with the extra pad sample at the end), stride s.
[batch, time, channels] -> [batch, ceil(time / s), channels].
"""
import tensorflow as tf
import tf_keras

from tf_frontends import composition
from tf_frontends import impulse_responses
from tf_frontends import initializers


# Above this many hop-sized sub-windows per window, pool with a plain
# depthwise convolution (stride 1 pooling, e.g.); below, use `_block_pool`.
_MAX_SUB_WINDOWS = 8


def _same_padding(length, size, strides):
  """(frames, left pad) of TF's SAME padding: extra pad sample at the end."""
  frames = (length + strides - 1) // strides
  total = tf.maximum((frames - 1) * strides + size - length, 0)
  return frames, total // 2


def _block_pool(inputs, windows, strides):
  """Strided windowed sums as a few shifted block products (no im2col).

  With hop H and n = ceil(K / H), split the SAME-padded input into blocks
  b_m = x[m H : (m + 1) H] and the window into n hop-long pieces w_i; then
  y_f = sum_i <b_{f+i}, w_i>: n multiply-reduce passes over the input. Its
  gradient is the same pattern, whereas TensorFlow's strided depthwise
  convolution backward pass costs about as much as a stride-1 convolution.
  """
  size = windows.shape[0]
  pieces = -(-size // strides)
  length = tf.shape(inputs)[1]
  frames, left = _same_padding(length, size, strides)
  right = (frames + pieces - 1) * strides - length - left
  padded = tf.pad(inputs, [[0, 0], [left, right], [0, 0]])
  blocks = tf.reshape(
      padded, [tf.shape(inputs)[0], frames + pieces - 1, strides, -1])
  windows = tf.pad(windows, [[0, pieces * strides - size], [0, 0]])
  outputs = 0.0
  for i in range(pieces):
    piece = windows[i * strides:(i + 1) * strides]
    # Slice after reducing: slicing the big block tensor makes TF's gradient slow.
    outputs += tf.reduce_sum(blocks * piece, axis=2)[:, i:i + frames]
  return outputs


def depthwise_pool(inputs: tf.Tensor, windows: tf.Tensor, strides: int):
  """Pools each channel c of [B, T, C] with its own window windows[:, c], SAME."""
  if -(-windows.shape[0] // strides) <= _MAX_SUB_WINDOWS:
    return _block_pool(inputs, windows, strides)
  kernel = windows[tf.newaxis, :, :, tf.newaxis]  # [1, K, C, 1]
  outputs = tf.nn.depthwise_conv2d(
      inputs[:, tf.newaxis, :, :], kernel,
      # equal strides: CPU depthwise_conv2d rejects (1, s); height is 1 anyway.
      strides=(1, strides, strides, 1), padding="SAME")
  return outputs[:, 0, :, :]


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class GaussianLowpass(tf_keras.layers.Layer):
  """LEAF's pooling: one Gaussian window per channel with learnable width.

  w_c[n] = exp(-0.5 ((n - (K - 1) / 2) / (sigma_c (K - 1) / 2))^2), sigma_c
  clipped to [2 / K, 0.5], not normalised (leaf-audio). Weight `kernel` [C],
  initialised to `init_sigma` (0.4 approximates a Hann window).

  Args:
    kernel_size: window length in samples (>= 1; 401 for 25 ms at 16 kHz).
    strides: hop in samples (>= 1; 160 for 10 ms at 16 kHz).
    init_sigma: initial relative width (> 0), the same for every channel.
    **kwargs: `tf_keras.layers.Layer` arguments (name, trainable, dtype).
  """

  def __init__(self, kernel_size: int, strides: int = 1,
               init_sigma: float = 0.4, **kwargs):
    super().__init__(**kwargs)
    composition.check_positive_int("GaussianLowpass", kernel_size=kernel_size,
                                   strides=strides)
    composition.check_positive("GaussianLowpass", init_sigma=init_sigma)
    self.kernel_size = kernel_size
    self.strides = strides
    self.init_sigma = init_sigma

  def build(self, input_shape):
    self.kernel = self.add_weight(
        name="kernel", shape=(input_shape[-1],), dtype=tf.float32,
        initializer=tf_keras.initializers.Constant(self.init_sigma))
    super().build(input_shape)

  def windows(self):
    """[kernel_size, channels] pooling windows."""
    return impulse_responses.gaussian_window(self.kernel, self.kernel_size)

  def call(self, inputs):
    return depthwise_pool(inputs, self.windows(), self.strides)

  def get_config(self):
    return {**super().get_config(), "kernel_size": self.kernel_size,
            "strides": self.strides, "init_sigma": self.init_sigma}


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class LearnablePooling1D(tf_keras.layers.Layer):
  """The time-domain filterbanks' pooling: one free K-tap window shared by all channels.

  Weight `kernel` [K], initialised with leaf-audio's squared Hann window. Unlike
  leaf-audio (which ignores the padding it is given and pools VALID), this pools
  SAME so every frontend yields ceil(time / stride) frames.

  Args:
    kernel_size: window length in samples (>= 1).
    strides: hop in samples (>= 1).
    **kwargs: `tf_keras.layers.Layer` arguments (name, trainable, dtype).
  """

  def __init__(self, kernel_size: int, strides: int = 1, **kwargs):
    super().__init__(**kwargs)
    composition.check_positive_int("LearnablePooling1D", kernel_size=kernel_size,
                                   strides=strides)
    self.kernel_size = kernel_size
    self.strides = strides

  def build(self, input_shape):
    self.kernel = self.add_weight(
        name="kernel", shape=(self.kernel_size,), dtype=tf.float32,
        initializer=initializers.SquaredHannInit())
    super().build(input_shape)

  def windows(self, channels):
    return tf.tile(self.kernel[:, tf.newaxis], [1, channels])

  def call(self, inputs):
    channels = inputs.shape[-1] or tf.shape(inputs)[-1]
    return depthwise_pool(inputs, self.windows(channels), self.strides)

  def get_config(self):
    return {**super().get_config(), "kernel_size": self.kernel_size,
            "strides": self.strides}
