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


def strided_window_sums(inputs, windows, strides, frames):
  """y[b, f, c] = sum_k x[b, f * strides + k, c] w[k, c], f < frames (VALID).

  Strided windowed sums as a few shifted block products (no im2col): with
  n = ceil(K / strides), the input is cut into stride-long blocks b_m and the
  window into n stride-long pieces w_i; then y_f = sum_i <b_{f+i}, w_i>: n
  multiply-reduce passes over the input. Samples past the end of the input
  count as zeros. Its gradient is the same pattern, whereas TensorFlow's
  strided depthwise convolution backward pass costs about as much as a
  stride-1 convolution. (EfficientLeaf pools each filter group with it.)
  """
  taps = windows.shape[0]
  pieces = -(-taps // strides)
  blocks = frames + pieces - 1
  inputs = inputs[:, :blocks * strides]
  inputs = tf.pad(inputs, [[0, 0], [0, blocks * strides - tf.shape(inputs)[1]], [0, 0]])
  inputs = tf.reshape(inputs, [tf.shape(inputs)[0], blocks, strides, -1])
  windows = tf.pad(windows, [[0, pieces * strides - taps], [0, 0]])
  outputs = 0.0
  for i in range(pieces):
    piece = windows[i * strides:(i + 1) * strides]
    # Slice after reducing: slicing the big block tensor makes TF's gradient slow.
    outputs += tf.reduce_sum(inputs * piece, axis=2)[:, i:i + frames]
  return outputs


def _block_pool(inputs, windows, strides):
  """`strided_window_sums` of the SAME-padded input (TF's split of the padding)."""
  frames, left = _same_padding(tf.shape(inputs)[1], windows.shape[0], strides)
  return strided_window_sums(tf.pad(inputs, [[0, 0], [left, 0], [0, 0]]), windows, strides,
                             frames)


def _depthwise_conv(inputs, windows, strides):
  """[B, T, C] pooled SAME with windows [K, C] at `strides`, one window per channel."""
  return tf.nn.depthwise_conv2d(
      inputs[:, tf.newaxis, :, :], windows[tf.newaxis, :, :, tf.newaxis],
      # equal strides: CPU depthwise_conv2d rejects (1, s); height is 1 anyway.
      strides=(1, strides, strides, 1), padding="SAME")[:, 0, :, :]


def depthwise_pool(inputs: tf.Tensor, windows: tf.Tensor, strides: int):
  """Pools each channel c of [B, T, C] with its own window windows[:, c], SAME."""
  if -(-windows.shape[0] // strides) <= _MAX_SUB_WINDOWS:
    return _block_pool(inputs, windows, strides)
  return _depthwise_conv(inputs, windows, strides)


def _pair_sum(inputs):
  """[..., 2N] -> [..., N]: sums channels 2n and 2n + 1."""
  pairs = tf.reshape(inputs, tf.concat([tf.shape(inputs)[:-1], [-1, 2]], axis=0))
  return tf.reduce_sum(pairs, axis=-1)


def _gaussian_pool(inputs, sigma, size, strides, squared_modulus):
  """`gaussian_pool` / `gaussian_pool_squared_modulus` (one custom gradient)."""

  @tf.custom_gradient
  def pool(inputs, sigma):
    with tf.autodiff.ForwardAccumulator(sigma, tf.ones_like(sigma)) as forward:
      windows = impulse_responses.gaussian_window(sigma, size)
    window_derivatives = forward.jvp(windows)  # [K, C]: dw[:, c] / dsigma_c
    energies = inputs
    if squared_modulus:         # pool(re^2 + im^2) = pool(re^2) + pool(im^2)
      energies = tf.square(inputs)
      windows = tf.repeat(windows, 2, axis=1)
      window_derivatives = tf.repeat(window_derivatives, 2, axis=1)
    outputs = _depthwise_conv(energies, windows, strides)

    def grad(output_grad):
      if squared_modulus:
        output_grad = tf.repeat(output_grad, 2, axis=2)
      energies_grad = tf.compat.v1.nn.depthwise_conv2d_native_backprop_input(
          tf.shape(energies[:, tf.newaxis]), windows[tf.newaxis, :, :, tf.newaxis],
          (2.0 * output_grad if squared_modulus else output_grad)[:, tf.newaxis],
          strides=(1, strides, strides, 1), padding="SAME")[:, 0]
      sigma_grad = tf.reduce_sum(
          output_grad * _depthwise_conv(energies, window_derivatives, strides),
          axis=(0, 1))
      if squared_modulus:       # d(x^2) = 2 x dx; the 2 went into output_grad
        return energies_grad * inputs, _pair_sum(sigma_grad)
      return energies_grad, sigma_grad

    return (_pair_sum(outputs) if squared_modulus else outputs), grad

  return pool(inputs, sigma)


def gaussian_pool(inputs: tf.Tensor, sigma: tf.Tensor, size: int, strides: int):
  """`depthwise_pool` with `gaussian_window(sigma, size)`, differentiated cheaply.

  Same outputs as `depthwise_pool`; the gradients are computed differently, for
  speed. TensorFlow's gradient of a strided depthwise convolution with respect to
  its K x C window (DepthwiseConv2dNativeBackpropFilter) costs ~50 times the
  forward pass. Each window depends on its channel's sigma_c alone, so instead
      dL/dsigma_c = sum_{b, m} g[b, m, c] * pool(x, dw / dsigma)[b, m, c]
  with dw / dsigma the forward-mode derivative of the windows: one more forward
  pooling. The input gradient is the transposed depthwise convolution
  (DepthwiseConv2dNativeBackpropInput), as cheap as the forward pass.
  """
  return _gaussian_pool(inputs, sigma, size, strides, squared_modulus=False)


def gaussian_pool_squared_modulus(inputs: tf.Tensor, sigma: tf.Tensor, size: int,
                                  strides: int):
  """`gaussian_pool` of the squared modulus of interleaved (re, im) channels, fused.

  [B, T, 2N] -> [B, ceil(T / strides), N]:  pool_n(re_n^2 + im_n^2). Squaring and
  pooling the 2N channels and summing pairs afterwards saves two passes over the
  [B, T, N] energies forward and two backward, where dL/dre = 2 re G (G the
  transposed pooling of dL/dy) is one product.
  """
  return _gaussian_pool(inputs, sigma, size, strides, squared_modulus=True)


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
    return gaussian_pool(inputs, tf.convert_to_tensor(self.kernel),
                         self.kernel_size, self.strides)

  def pool_squared_modulus(self, inputs):
    """call(re^2 + im^2) of interleaved (re, im) channels [B, T, 2C], fused.

    See `gaussian_pool_squared_modulus`: same numbers, fewer passes over memory.
    """
    return gaussian_pool_squared_modulus(inputs, tf.convert_to_tensor(self.kernel),
                                         self.kernel_size, self.strides)

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
