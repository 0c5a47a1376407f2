"""Learnable lowpass pooling over time, applied channel by channel.

y_c[m] = sum_k x_c[m s + k - p] w_c[k],  k = 0 ... K - 1, SAME padding (TF's split:
p = floor((K - s') / 2) with the extra pad sample at the end), stride s.
[batch, time, channels] -> [batch, ceil(time / s), channels].
"""
import tensorflow as tf
import tf_keras

from tf_frontends import impulse_responses
from tf_frontends import initializers


def depthwise_pool(inputs: tf.Tensor, windows: tf.Tensor, strides: int):
  """Pools each channel c of [B, T, C] with its own window windows[:, c], SAME."""
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
  """

  def __init__(self, kernel_size: int, strides: int = 1,
               init_sigma: float = 0.4, **kwargs):
    super().__init__(**kwargs)
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
  """

  def __init__(self, kernel_size: int, strides: int = 1, **kwargs):
    super().__init__(**kwargs)
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
