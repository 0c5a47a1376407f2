"""The optimizer of a run: AdamW with per-variable learning-rate multipliers, and its schedule.

    create_optimizer(config, model, steps_per_epoch, total_steps) -> (optimizer, schedule)

Learning-rate schedule: linear warmup from 0 to the peak, then cosine decay to `end`.

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


class AdamW(tf_keras.optimizers.AdamW):
  """tf_keras AdamW whose update of some variables is scaled by a learning-rate multiplier,
  optionally in optax's form.

  Scaling a gradient does not scale an Adam step (Adam is invariant to it), so
  the step itself is scaled: v <- v_old + multiplier * (v_adam - v_old). The decoupled
  weight decay (v <- v - lr * wd * v, which the base class applies to every variable before
  any update step) is scaled by the same multiplier, so 0 freezes a variable.

  optax_form=True takes optax.adamw's step (audax's optimizer) instead of tf_keras':

      tf_keras: v <- v - lr * wd * v;  v <- v - lr * m_hat / (sqrt(v_hat) + epsilon * c)
      optax:    v <- v - lr * (m_hat / (sqrt(v_hat) + epsilon) + wd * v)

  with c = sqrt(1 - beta_2^t) < 1 (tf_keras adds epsilon to sqrt(v) before the bias correction),
  the moments updated as optax does (m <- beta_1 m + (1 - beta_1) g), and the decay inside the
  rounded step: tf_keras' separate v * (1 - lr * wd) rounds back to v in float32 whenever
  lr * wd < 2^-25 (the recipe's 2e-3 x 1e-6), so its decay of 1e-6 never moves a weight.
  """

  def __init__(self, *args, lr_multipliers=None, optax_form: bool = False, **kwargs):
    super().__init__(*args, **kwargs)
    self.optax_form = optax_form
    self._lr_multipliers = {}      # var key -> multiplier
    for variable, multiplier in (lr_multipliers or []):
      if multiplier != 1.0:
        self._lr_multipliers[self._var_key(variable)] = float(multiplier)

  def _use_weight_decay(self, variable):
    # the base class's decay before the step; in optax's form, and for variables with a
    # multiplier (scaled), update_step applies it
    return (not self.optax_form and self._var_key(variable) not in self._lr_multipliers
            and super()._use_weight_decay(variable))

  def update_step(self, gradient, variable):
    multiplier = self._lr_multipliers.get(self._var_key(variable))
    old = None if multiplier is None else tf.identity(variable)
    if self.optax_form:
      self._optax_step(gradient, variable)
    else:
      if multiplier is not None and super()._use_weight_decay(variable):
        lr = tf.cast(self.learning_rate, variable.dtype)
        variable.assign_sub(variable * tf.cast(self.weight_decay, variable.dtype) * lr)
      super().update_step(gradient, variable)
    if old is not None:
      variable.assign(old + multiplier * (variable - old))

  def _optax_step(self, gradient, variable):
    """optax 0.1.7's scale_by_adam -> add_decayed_weights -> scale by -lr -> apply_updates, in
    its order of operations (each rounding as there)."""
    dtype = variable.dtype
    count = tf.cast(self.iterations + 1, dtype)
    index = self._index_dict[self._var_key(variable)]
    m, v = self._momentums[index], self._velocities[index]
    m.assign((1 - self.beta_1) * gradient + self.beta_1 * m)
    v.assign((1 - self.beta_2) * tf.square(gradient) + self.beta_2 * v)
    m_hat = m / (1 - tf.pow(tf.cast(self.beta_1, dtype), count))
    v_hat = v / (1 - tf.pow(tf.cast(self.beta_2, dtype), count))
    update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
    if super()._use_weight_decay(variable):
      update = update + tf.cast(self.weight_decay, dtype) * variable
    variable.assign_add(-tf.cast(self.learning_rate, dtype) * update)

  def get_config(self):
    return {**super().get_config(), "optax_form": self.optax_form}


def create_optimizer(config, model, steps_per_epoch: int, total_steps: int):
  opt = config.optimizer
  peak = scaled_learning_rate(opt.base_learning_rate, config.batch_size)
  warmup = min(int(round(opt.warmup_epochs * steps_per_epoch)), total_steps)
  schedule = WarmupCosineDecay(peak, warmup, total_steps, opt.end_learning_rate)
  multipliers = []
  if opt.frontend_lr_multiplier != 1.0:
    multipliers = [(v, opt.frontend_lr_multiplier) for v in model.frontend.trainable_variables]
  optimizer = AdamW(learning_rate=schedule, weight_decay=opt.weight_decay, epsilon=opt.epsilon,
                    optax_form=opt.optax_form, lr_multipliers=multipliers)
  if config.mixed_precision == "float16":
    optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
  return optimizer, schedule
