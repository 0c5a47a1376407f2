"""EfficientLEAF's alternative to PCEN: log1p, median subtraction, temporal batch norm.

    l = log(1 + 10^a_c x),  y = TBN([l, l - median_t l])  (append_filtered)
                            y = TBN(l - median_t l)        (median subtracted in place)

[batch, time, channels] -> [batch, time, 2 x channels] with append_filtered (the authors'
EfficientLEAF: the filtered bands after the unfiltered ones), else the same shape. `a_c` is
learnable per channel; the median is taken over the whole clip's time axis, per example and
channel; temporal batch normalisation normalises each output channel over batch and time
(Schlueter & Gutenbrunner, EUSIPCO 2022).
"""
import tensorflow as tf
import tf_keras

from tf_frontends import tf_ops

MAX_LOG_GAIN = 10.0  # |a| bound: 10^10 times any energy stays far from float32's 3e38


def lower_median_over_time(inputs, ops=tf_ops):
  """[B, T, C] -> [B, 1, C]: the lower median (sorted index (T - 1) // 2) over time.

  The lower one of the two middle values for even T, as torch.median. Uses top_k
  (built-in in TFLite and XLA; no sort op there), which needs time last.
  """
  length = ops.shape(inputs)[1]
  # Descending index T // 2 is ascending index (T - 1) // 2.
  largest, _ = ops.top_k(ops.transpose(inputs, [0, 2, 1]), k=length // 2 + 1)
  return ops.transpose(largest[:, :, -1:], [0, 2, 1])


def log_tbn_features(inputs, log_gain, median_filter: bool, append_filtered: bool,
                     ops=tf_ops):
  """log(1 + 10^a x), then the median subtracted or appended (the module doc), before the TBN."""
  # Clipped so that no training step can make 10^a overflow float32 (inf - inf = NaN).
  log_gain = ops.clip(log_gain, -MAX_LOG_GAIN, MAX_LOG_GAIN)
  outputs = ops.log1p(ops.power(10.0, log_gain) * inputs)
  if append_filtered:
    return ops.concatenate([outputs, outputs - lower_median_over_time(outputs, ops)], axis=-1)
  if median_filter:
    return outputs - lower_median_over_time(outputs, ops)
  return outputs


def check_args(momentum: float, epsilon: float, median_filter: bool,
               append_filtered: bool) -> None:
  if not 0.0 <= momentum < 1.0 or epsilon <= 0.0:
    raise ValueError(f"LogTBN: need 0 <= momentum < 1 and epsilon > 0; got "
                     f"momentum={momentum}, epsilon={epsilon}.")
  if append_filtered and not median_filter:
    raise ValueError("LogTBN: append_filtered needs median_filter=True.")


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class LogTBN(tf_keras.layers.Layer):
  """log1p compression with learnable gain, median subtraction, temporal batch norm.

  Args:
    log_gain_init: initial a_c (the paper's a = 5: gain 10^5 before log1p).
    learn_log_gain: train a_c.
    median_filter: subtract the per-example, per-channel median over time.
    append_filtered: with median_filter, append the median-subtracted channels to the
      unfiltered ones instead of replacing them (each output channel has its own batch norm).
    momentum, epsilon: of the batch normalisation over batch and time (torch's
      BatchNorm1d defaults: running averages updated by 10 % per step, eps 1e-5).
  a_c is clipped to [-10, 10] in the forward pass.
  Weights: `log_gain` [C]; the batch norm's gamma, beta and moving statistics [C].
  """

  def __init__(self, log_gain_init: float = 5.0, learn_log_gain: bool = True,
               median_filter: bool = True, append_filtered: bool = False,
               momentum: float = 0.9, epsilon: float = 1e-5, **kwargs):
    super().__init__(**kwargs)
    check_args(momentum, epsilon, median_filter, append_filtered)
    self.log_gain_init = log_gain_init
    self.learn_log_gain = learn_log_gain
    self.median_filter = median_filter
    self.append_filtered = append_filtered
    self.momentum = momentum
    self.epsilon = epsilon
    self._batch_norm = tf_keras.layers.BatchNormalization(
        axis=-1, momentum=momentum, epsilon=epsilon, name="temporal_batch_norm",
        dtype="float32")

  def build(self, input_shape):
    self.log_gain = self.add_weight(
        name="log_gain", shape=(input_shape[-1],), dtype=tf.float32,
        trainable=self.learn_log_gain,
        initializer=tf_keras.initializers.Constant(self.log_gain_init))
    output_shape = tf.TensorShape(input_shape)
    if self.append_filtered:
      output_shape = output_shape[:-1].concatenate([2 * output_shape[-1]])
    with tf.name_scope(self._batch_norm.name):
      self._batch_norm.build(output_shape)
    super().build(input_shape)

  def call(self, inputs, training=None):
    outputs = log_tbn_features(inputs, self.log_gain, self.median_filter,
                               self.append_filtered)
    return self._batch_norm(outputs, training=training)

  def get_config(self):
    return {**super().get_config(), "log_gain_init": self.log_gain_init,
            "learn_log_gain": self.learn_log_gain,
            "median_filter": self.median_filter, "append_filtered": self.append_filtered,
            "momentum": self.momentum,
            "epsilon": self.epsilon}
