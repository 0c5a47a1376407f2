"""The building blocks as Keras 3 layers: the tf_keras blocks' twins on `keras.ops`.

Each block takes exactly the arguments of its tf_keras namesake (a tf_keras instance of it,
`template`, checks them and holds the defaults; it has no weights and is not tracked), and
computes with the same formula functions (`impulse_responses`, `compression`, `log_tbn`):
on the TensorFlow backend with TensorFlow's ops (`tf_ops`) and the TensorFlow fast paths of
`convolution` and `pooling` (custom gradients), on JAX and PyTorch with `keras.ops`.
Initial values come from the tf_keras initializers (`TfKerasInitializer`), so both kinds of
layer start from the same numbers.
"""
import keras
import numpy as np
import tensorflow as tf
import tf_keras

from tf_frontends import composition
from tf_frontends import compression
from tf_frontends import convolution
from tf_frontends import efficient_leaf
from tf_frontends import impulse_responses
from tf_frontends import initializers
from tf_frontends import log_tbn
from tf_frontends import pooling
from tf_frontends import tf_ops

PACKAGE = "tf_frontends.keras3"
# Keras 3 Layer arguments (everything else is the block's own).
_LAYER_ARGUMENTS = ("name", "dtype", "trainable", "autocast", "input_shape", "input_dim")
_SIZES = ("filters", "channels", "kernel_size", "strides", "padding", "sample_rate")
# What tf_keras' Layer.get_config adds to a block's own arguments.
_TF_KERAS_LAYER_KEYS = ("name", "trainable", "dtype", "batch_input_shape")


def on_tensorflow() -> bool:
  return keras.backend.backend() == "tensorflow"


def array_ops():
  """The formulas' namespace here: TensorFlow's ops on its backend (the tf_keras graph), else keras.ops."""
  return tf_ops if on_tensorflow() else keras.ops


@keras.saving.register_keras_serializable(package=PACKAGE)
class TfKerasInitializer(keras.initializers.Initializer):
  """A tf_frontends (tf_keras) initializer's values as a Keras 3 initializer.

  Args:
    config: `tf_keras.initializers.serialize(initializer)` (plain data).
  """

  def __init__(self, config):
    self.config = config

  def __call__(self, shape, dtype=None):
    initializer = tf_keras.initializers.deserialize(self.config)
    with tf.init_scope():  # eager numbers, even when the layer is built inside a graph
      value = np.asarray(initializer(tuple(shape), dtype=tf.float32))
    return keras.ops.convert_to_tensor(value, dtype=dtype or "float32")

  def get_config(self):
    return {"config": self.config}


def from_tf_keras_initializer(initializer):
  return TfKerasInitializer(tf_keras.initializers.serialize(initializer))


def split_layer_arguments(kwargs: dict):
  """(Keras 3 Layer arguments, the rest); dtype defaults to float32 (the filter math's)."""
  layer_kwargs = {key: kwargs.pop(key) for key in _LAYER_ARGUMENTS if key in kwargs}
  layer_kwargs.setdefault("dtype", "float32")
  return layer_kwargs, kwargs


def own_arguments(tf_keras_layer) -> dict:
  """A tf_keras layer's config without tf_keras' Layer keys: its constructor arguments."""
  return {key: value for key, value in tf_keras_layer.get_config().items()
          if key not in _TF_KERAS_LAYER_KEYS}


class Twin(keras.layers.Layer):
  """A Keras 3 layer with the arguments, defaults and checks of `tf_keras_class`.

  `template` is a tf_keras instance made from the same arguments (not tracked; built only by
  the mel and EfficientLEAF twins, for their constants and initial values); the config is its
  arguments plus the Keras 3 Layer's own.
  """
  tf_keras_class = None

  def __init__(self, *args, **kwargs):
    layer_kwargs, arguments = split_layer_arguments(dict(kwargs))
    super().__init__(**layer_kwargs)
    template = self.tf_keras_class(*args, **arguments)
    object.__setattr__(self, "_template", template)   # plain attribute: not tracked
    self._arguments = own_arguments(template)
    for key in _SIZES:   # what a composition reads off its blocks (`composition.frontend_sizes`)
      if hasattr(template, key):
        setattr(self, key, getattr(template, key))

  @property
  def template(self):
    return self._template

  def get_config(self):
    return {**super().get_config(), **self._arguments}


def weight_value(weight):
  """A weight's current value as a backend tensor (tf.Tensor on TensorFlow: a read, not the
  variable, which TensorFlow's fast paths need)."""
  return tf.convert_to_tensor(weight.value) if on_tensorflow() else weight.value


# Outputs per step of the polyphase filterbank convolution off TensorFlow (see
# `efficient_leaf.strided_correlation`): XLA's CPU convolution of 1 input channel with 401
# taps, and its kernel gradient, run 3x slower than the polyphase form with 16 (JAX, AMD
# EPYC, 2 x 0.5 s); 4, 32 and 64 were slower than 16.
_POLYPHASE_OUTPUTS = 16


def _filterbank_conv(inputs, kernel, template):
  """[B, T, 1] x [K, 1, C]: TensorFlow's `filterbank_conv` (its kernel gradients); elsewhere
  the same SAME cross-correlation as a polyphase convolution (stride 1) or keras.ops.conv."""
  if on_tensorflow():
    return convolution.filterbank_conv(inputs, kernel, template.strides, template.padding,
                                       template.kernel_gradient)
  if template.strides != 1 or template.padding != "SAME":
    return keras.ops.conv(inputs, kernel, strides=template.strides,
                          padding=template.padding.lower())
  size = kernel.shape[0]
  signal = keras.ops.pad(inputs[:, :, 0], [[0, 0], [(size - 1) // 2, size // 2]])
  outputs = efficient_leaf.strided_correlation(signal, kernel[:, 0, :], 1, keras.ops,
                                               _POLYPHASE_OUTPUTS)
  return outputs[:, :inputs.shape[1]]


def _conv_output_shape(input_shape, template, channels):
  return tuple(convolution.conv_output_shape(
      input_shape, template.kernel_size, template.strides, template.padding,
      channels).as_list())


@keras.saving.register_keras_serializable(package=PACKAGE)
class GaborConstraint(keras.constraints.Constraint):
  """`convolution.GaborConstraint` on keras.ops: clips (mu, sigma) after each update."""

  def __init__(self, kernel_size: int):
    self.kernel_size = kernel_size

  def __call__(self, kernel):
    return keras.ops.stack(impulse_responses.clip_gabor_params(
        kernel[:, 0], kernel[:, 1], *impulse_responses.gabor_sigma_bounds(self.kernel_size),
        ops=keras.ops), axis=1)

  def get_config(self):
    return {"kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Bounds(keras.constraints.Constraint):
  """`efficient_leaf.Bounds` on keras.ops: clips a weight to [lower, upper] after each update."""

  def __init__(self, lower, upper):
    self.lower, self.upper = lower, upper

  def __call__(self, weight):
    return keras.ops.clip(weight, keras.ops.cast(self.lower, weight.dtype),
                          keras.ops.cast(self.upper, weight.dtype))

  def get_config(self):
    return {"lower": self.lower, "upper": self.upper}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GaborConv1D(Twin):
  """`tf_frontends.GaborConv1D` (same arguments): complex Gabor filters, 2 * filters channels."""
  tf_keras_class = convolution.GaborConv1D

  def build(self, input_shape):
    self.kernel = self.add_weight(
        name="kernel", shape=(self.template.filters, 2), dtype="float32",
        initializer=from_tf_keras_initializer(self.template._initializer()),
        constraint=GaborConstraint(self.template.kernel_size))

  def constrained_params(self, ops):
    kernel = weight_value(self.kernel)
    return impulse_responses.clip_gabor_params(
        kernel[:, 0], kernel[:, 1], *impulse_responses.gabor_sigma_bounds(
            self.template.kernel_size), ops=ops)

  def impulse_responses(self, ops=keras.ops):
    """(real, imag) taps, each [filters, kernel_size]."""
    return impulse_responses.gabor_filters(*self.constrained_params(ops),
                                           self.template.kernel_size, ops)

  def call(self, inputs):
    ops = array_ops()
    kernel = impulse_responses.interleave_real_imag(*self.impulse_responses(ops), ops)
    return _filterbank_conv(inputs, kernel, self.template)

  def complex_taps(self):
    real, imag = (keras.ops.convert_to_numpy(t) for t in self.impulse_responses())
    return real + 1j * imag

  def compute_output_shape(self, input_shape):
    return _conv_output_shape(input_shape, self.template, 2 * self.template.filters)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SincConv1D(Twin):
  """`tf_frontends.SincConv1D` (same arguments): windowed sinc band-passes, one channel each."""
  tf_keras_class = convolution.SincConv1D

  def build(self, input_shape):
    self.kernel = self.add_weight(
        name="kernel", shape=(self.template.filters, 2), dtype="float32",
        initializer=from_tf_keras_initializer(self.template._initializer()))

  def impulse_responses(self, ops=keras.ops):
    """Windowed taps [kernel_size, filters]."""
    t = self.template
    edges = impulse_responses.sinc_band_edges(weight_value(self.kernel), t.min_low_hz,
                                              t.min_band_hz, t.sample_rate, ops)
    return impulse_responses.windowed_sinc_filters(*edges, t.kernel_size, t.sample_rate,
                                                   t.symmetric_window, ops)

  def call(self, inputs):
    return _filterbank_conv(inputs, self.impulse_responses(array_ops())[:, None, :],
                            self.template)

  def complex_taps(self):
    return keras.ops.convert_to_numpy(self.impulse_responses()).T

  def compute_output_shape(self, input_shape):
    return _conv_output_shape(input_shape, self.template, self.template.filters)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FreeConv1D(Twin):
  """`tf_frontends.FreeConv1D` (same arguments; its kernel_initializer a tf_keras one)."""
  tf_keras_class = convolution.FreeConv1D

  def build(self, input_shape):
    t = self.template
    self.kernel = self.add_weight(
        name="kernel", shape=(t.kernel_size, 1, t.channels), dtype="float32",
        initializer=from_tf_keras_initializer(t.kernel_initializer))

  def call(self, inputs):
    return _filterbank_conv(inputs, weight_value(self.kernel), self.template)

  def complex_taps(self):
    kernel = keras.ops.convert_to_numpy(self.kernel)[:, 0, :]
    return (kernel[:, 0::2] + 1j * kernel[:, 1::2]).T

  def compute_output_shape(self, input_shape):
    return _conv_output_shape(input_shape, self.template, self.template.channels)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SquaredModulus(Twin):
  """[B, T, 2N] interleaved (re, im) -> [B, T, N] re^2 + im^2."""
  tf_keras_class = composition.SquaredModulus

  def call(self, inputs):
    return composition.squared_modulus(inputs, array_ops())

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (input_shape[-1] // 2,)


def window_sums(inputs, windows, strides, frames):
  """y[b, f, c] = sum_k x[b, f * strides + k, c] w[k, c], f < frames, zeros past the end.

  `pooling.strided_window_sums` off TensorFlow, as one einsum: each stride-long block of
  the input against each stride-long piece of the window, then the pieces' sums shifted into
  place. XLA's strided depthwise convolution is no substitute: its input gradient took 4.4 s
  where this takes 12 ms (JAX, 2 x 0.5 s x 80 channels, 401 taps, stride 160).
  """
  taps = windows.shape[0]
  pieces = -(-taps // strides)
  blocks = frames + pieces - 1
  length = inputs.shape[1]
  if length >= blocks * strides:
    inputs = inputs[:, :blocks * strides]
  else:
    inputs = keras.ops.pad(inputs, [[0, 0], [0, blocks * strides - length], [0, 0]])
  inputs = keras.ops.reshape(inputs, (-1, blocks, strides, inputs.shape[-1]))
  windows = keras.ops.pad(windows, [[0, pieces * strides - taps], [0, 0]])
  windows = keras.ops.reshape(windows, (pieces, strides, -1))
  products = keras.ops.einsum("bmsc,psc->bmpc", inputs, windows)
  return sum(products[:, p:p + frames, p, :] for p in range(pieces))


def _same_pool(inputs, windows, strides):
  """Each channel of [B, T, C] pooled with its window [K, C] at `strides`, TF's SAME padding
  (the extra pad sample at the end)."""
  length = inputs.shape[1]
  frames = -(-length // strides)
  left = max((frames - 1) * strides + windows.shape[0] - length, 0) // 2
  return window_sums(keras.ops.pad(inputs, [[0, 0], [left, 0], [0, 0]]), windows, strides,
                     frames)


def _pooled_shape(input_shape, strides):
  time = input_shape[1]
  return (input_shape[0], None if time is None else -(-time // strides), input_shape[-1])


@keras.saving.register_keras_serializable(package=PACKAGE)
class GaussianLowpass(Twin):
  """`tf_frontends.GaussianLowpass` (same arguments): a learnable-width Gaussian per channel."""
  tf_keras_class = pooling.GaussianLowpass

  def build(self, input_shape):
    self.kernel = self.add_weight(
        name="kernel", shape=(input_shape[-1],), dtype="float32",
        initializer=keras.initializers.Constant(self.template.init_sigma))

  def windows(self, ops=keras.ops):
    """[kernel_size, channels] pooling windows."""
    return impulse_responses.gaussian_window(weight_value(self.kernel), self.template.kernel_size,
                                             ops)

  def call(self, inputs):
    if on_tensorflow():
      return pooling.gaussian_pool(inputs, weight_value(self.kernel), self.template.kernel_size,
                                   self.template.strides)
    return _same_pool(inputs, self.windows(), self.template.strides)

  def pool_squared_modulus(self, inputs):
    """call(re^2 + im^2) of interleaved (re, im) channels [B, T, 2C]: TensorFlow's fused op;
    elsewhere the plain composition (pooling the squared modulus, not the 2C squares, was 3x
    faster to differentiate on JAX)."""
    if on_tensorflow():
      return pooling.gaussian_pool_squared_modulus(
          inputs, weight_value(self.kernel), self.template.kernel_size, self.template.strides)
    return self.call(composition.squared_modulus(inputs, keras.ops))

  def compute_output_shape(self, input_shape):
    return _pooled_shape(input_shape, self.template.strides)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LearnablePooling1D(Twin):
  """`tf_frontends.LearnablePooling1D` (same arguments): one free window for all channels."""
  tf_keras_class = pooling.LearnablePooling1D

  def build(self, input_shape):
    self.kernel = self.add_weight(
        name="kernel", shape=(self.template.kernel_size,), dtype="float32",
        initializer=from_tf_keras_initializer(initializers.SquaredHannInit()))

  def call(self, inputs):
    channels = inputs.shape[-1]
    windows = keras.ops.tile(weight_value(self.kernel)[:, None], (1, channels))
    if on_tensorflow():
      return pooling.depthwise_pool(inputs, windows, self.template.strides)
    return _same_pool(inputs, windows, self.template.strides)

  def compute_output_shape(self, input_shape):
    return _pooled_shape(input_shape, self.template.strides)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PCEN(Twin):
  """`tf_frontends.PCEN` (same arguments): per-channel energy normalisation, (s)PCEN."""
  tf_keras_class = compression.PCEN

  def build(self, input_shape):
    t = self.template
    channels = input_shape[-1]

    def weight(name, value, trainable, shape=(channels,)):
      return self.add_weight(name=name, shape=shape, dtype="float32", trainable=trainable,
                             initializer=keras.initializers.Constant(value))

    self.alpha = weight("alpha", t.alpha_init, t.learn_params)
    self.delta = weight("delta", t.delta_init, t.learn_params)
    self.root = weight("root", t.root_init, t.learn_params)
    self.smooth = weight("smooth", t.smooth_coef, t.learn_smooth_coef,
                         shape=(channels,) if t.per_channel_smooth_coef else (1,))

  def call(self, inputs):
    return compression.pcen(inputs, weight_value(self.alpha), weight_value(self.delta),
                            weight_value(self.root), weight_value(self.smooth), self.template.floor,
                            self.template.ema_implementation, array_ops())

  def compute_output_shape(self, input_shape):
    return tuple(input_shape)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LogCompression(Twin):
  """`tf_frontends.LogCompression` (same arguments): log(x + offset)."""
  tf_keras_class = compression.LogCompression

  def call(self, inputs):
    return compression.log_compression(inputs, self.template.offset, array_ops())

  def compute_output_shape(self, input_shape):
    return tuple(input_shape)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupNormalization(keras.layers.GroupNormalization):
  """keras.layers.GroupNormalization of inputs centred per group first (the normalisation
  does not change): Keras 3's PyTorch backend takes the variance as E[x^2] - E[x]^2, which
  lost 2e-5 of the output's scale on log energies, whose mean is large against their spread.
  """

  def _apply_normalization(self, reshaped_inputs, input_shape):
    axes = list(range(1, len(reshaped_inputs.shape)))
    axes.pop(-2 if self.axis == -1 else self.axis - 1)   # as the parent reduces
    centred = reshaped_inputs - keras.ops.mean(reshaped_inputs, axis=axes, keepdims=True)
    return super()._apply_normalization(centred, input_shape)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LogTBN(Twin):
  """`tf_frontends.log_tbn.LogTBN` (same arguments): log1p with gain, median, temporal BN."""
  tf_keras_class = log_tbn.LogTBN

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._batch_norm = keras.layers.BatchNormalization(
        axis=-1, momentum=self.template.momentum, epsilon=self.template.epsilon,
        name="temporal_batch_norm", dtype="float32")

  def build(self, input_shape):
    self.log_gain = self.add_weight(
        name="log_gain", shape=(input_shape[-1],), dtype="float32",
        trainable=self.template.learn_log_gain,
        initializer=keras.initializers.Constant(self.template.log_gain_init))
    self._batch_norm.build(self.compute_output_shape(input_shape))

  def call(self, inputs, training=None):
    outputs = log_tbn.log_tbn_features(inputs, weight_value(self.log_gain),
                                       self.template.median_filter,
                                       self.template.append_filtered, array_ops())
    return self._batch_norm(outputs, training=training)

  def compute_output_shape(self, input_shape):
    channels = input_shape[-1] * (2 if self.template.append_filtered else 1)
    return tuple(input_shape[:-1]) + (channels,)
