"""Learning-rate schedule: linear warmup from 0 to the peak, then cosine decay to `end`.

    lr(s) = peak * s / warmup                                     s < warmup
    lr(s) = end + (peak - end) * 0.5 * (1 + cos(pi * (s - warmup) / (total - warmup)))
    lr(s) = end                                                   s >= total
"""
import math

import tensorflow as tf
import tf_keras


def scaled_learning_rate(base_learning_rate: float, global_batch_size: int) -> float:
  """The linear scaling rule of the recipe: base * global_batch / 256."""
  return base_learning_rate * global_batch_size / 256.0


@tf_keras.utils.register_keras_serializable(package="train")
class WarmupCosineDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
  """step -> learning rate (float32), see the module docstring."""

  def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int,
               end_learning_rate: float = 0.0):
    if total_steps <= 0:
      raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
      raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], "
                       f"got {warmup_steps}")
    self.peak_learning_rate = peak_learning_rate
    self.warmup_steps = warmup_steps
    self.total_steps = total_steps
    self.end_learning_rate = end_learning_rate

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    peak = tf.constant(self.peak_learning_rate, tf.float32)
    end = tf.constant(self.end_learning_rate, tf.float32)
    warmup = float(self.warmup_steps)
    warm = peak * step / max(warmup, 1.0)
    progress = tf.clip_by_value(
        (step - warmup) / max(float(self.total_steps) - warmup, 1.0), 0.0, 1.0)
    cosine = end + (peak - end) * 0.5 * (1.0 + tf.cos(math.pi * progress))
    return tf.where(step < warmup, warm, cosine)

  def get_config(self):
    return {"peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
            "end_learning_rate": self.end_learning_rate}
