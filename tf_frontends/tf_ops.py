"""TensorFlow under numpy's (and keras.ops') names: the `ops` of the shared formulas.

The formulas of the frontends (impulse_responses, compression, log_tbn, efficient_leaf) are
written once against this small numpy-like API and take the namespace as their `ops`
argument: `keras.ops` in the Keras 3 layers (`tf_frontends.keras3`, any backend), this module
in the tf_keras layers, which therefore run the TensorFlow ops they always ran and never
import Keras 3.
"""
import tensorflow as tf

abs = tf.abs  # noqa: A001  (numpy's names, on purpose)
cos = tf.cos
einsum = tf.einsum
equal = tf.equal
exp = tf.exp
expand_dims = tf.expand_dims
log = tf.math.log
log1p = tf.math.log1p
maximum = tf.maximum
minimum = tf.minimum
ones_like = tf.ones_like
power = tf.pow
reshape = tf.reshape
sin = tf.sin
sqrt = tf.sqrt
square = tf.square
stack = tf.stack
where = tf.where
broadcast_to = tf.broadcast_to
convert_to_tensor = tf.convert_to_tensor


def arange(start, stop=None, dtype="float32"):
  return tf.range(start, stop, dtype=dtype)


def cast(x, dtype):
  return tf.cast(x, dtype)


def clip(x, x_min, x_max):
  return tf.clip_by_value(x, x_min, x_max)


def concatenate(xs, axis=0):
  return tf.concat(xs, axis=axis)


def max(x, axis=None, keepdims=False):  # noqa: A001
  return tf.reduce_max(x, axis=axis, keepdims=keepdims)


def sum(x, axis=None, keepdims=False):  # noqa: A001
  return tf.reduce_sum(x, axis=axis, keepdims=keepdims)


def pad(x, pad_width):
  return tf.pad(x, pad_width)


def transpose(x, axes=None):
  return tf.transpose(x, axes)


def take(x, indices, axis=None):
  return tf.gather(x, indices, axis=axis)


def split(x, indices_or_sections, axis=0):
  return tf.split(x, indices_or_sections, axis=axis)


def top_k(x, k, sorted=True):  # noqa: A002
  return tf.math.top_k(x, k=k, sorted=sorted)


def conv(inputs, kernel, strides=1, padding="valid"):
  """keras.ops.conv for 1-D channels-last inputs: tf.nn.conv1d (a cross-correlation)."""
  return tf.nn.conv1d(inputs, kernel, stride=strides, padding=padding.upper())


def shape(x):
  """Static sizes where known, else dynamic ones (as keras.ops.shape gives in a graph)."""
  dynamic = tf.shape(x)
  return [dynamic[i] if size is None else size for i, size in enumerate(x.shape.as_list())]


def scan(f, init, xs):
  """keras.ops.scan for a step whose output is its new carry: f(c, x) -> (c', c')."""
  carries = tf.scan(lambda carry, x: f(carry, x)[0], xs, initializer=init)
  return carries[-1], carries
