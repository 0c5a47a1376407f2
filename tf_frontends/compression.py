"""Compression of filterbank energies: (s)PCEN and log.

PCEN (Wang et al. 2017; learnable "sPCEN" in LEAF), per channel c:
    M_t = s x_t + (1 - s) M_{t-1},  M_{-1} = x_0   (so M_0 = x_0)
    y_t = (x_t / (floor + M_t)^alpha + delta)^(1 / r) - delta^(1 / r)
with alpha clipped to [0, 1], r >= 1 and s in [0, 1]. leaf-audio only bounds
alpha <= 1 and leaves delta free; a negative delta (or alpha) makes the power
NaN, so delta is kept >= `MIN_DELTA` and alpha >= 0. The defaults are unchanged.
"""
import tensorflow as tf
import tf_keras

from tf_frontends import tf_ops

MIN_DELTA = 1e-4
EMA_BLOCK_FRAMES = 64
EMA_IMPLEMENTATIONS = ("parallel", "scan")


def ema_scan(inputs, smooth, ops=tf_ops):
  """The EMA above as a sequential scan over time (the straightforward form).

  Args:
    inputs: [batch, time, channels].
    smooth: s, broadcastable to [channels], already in [0, 1].
    ops: the array namespace (`tf_ops` or keras.ops).
  """
  def step(state, x):
    state = smooth * x + (1.0 - smooth) * state
    return state, state

  time_major = ops.transpose(inputs, (1, 0, 2))
  _, smoothed = ops.scan(step, time_major[0], time_major)
  return ops.transpose(smoothed, (1, 0, 2))


def _decay_powers(decay, exponents, ops):
  """decay^n for integer n >= 0 (n = 0 gives 1 even when decay = 0)."""
  log_decay = ops.log(ops.maximum(decay, 1e-30))
  return ops.exp(exponents[..., None] * log_decay)


def ema_parallel(inputs, smooth, block: int = EMA_BLOCK_FRAMES, ops=tf_ops):
  """The same EMA in two levels of matrix products instead of a T-step scan.

  Time is cut into blocks of `block` frames. Inside block j, with a = 1 - s,
      L_{j,i} = sum_{k <= i} s a^(i - k) x_{j,k}         (zero initial state)
  and the state entering block j is
      S_j = a^(jP) x_0 + sum_{m < j} a^((j - 1 - m) P) L_{m,P-1},
  so M_{j,i} = L_{j,i} + a^(i + 1) S_j. Both sums are matmuls with
  lower-triangular decay matrices: O(T P C + (T / P)^2 C) work, no sequential
  loop, so it is fast to differentiate, compiles under XLA and converts to TFLite.
  """
  batch, frames, channels = ops.shape(inputs)
  smooth = ops.broadcast_to(smooth, [channels])
  decay = 1.0 - smooth
  num_blocks = (frames + block - 1) // block
  padded = ops.pad(inputs, [[0, 0], [0, num_blocks * block - frames], [0, 0]])
  blocks = ops.reshape(padded, [batch, num_blocks, block, channels])

  steps = ops.arange(block, dtype="float32")
  lag = steps[:, None] - steps[None, :]  # i - k
  causal = ops.cast(lag >= 0, "float32")[..., None]
  local_weights = smooth * _decay_powers(decay, ops.maximum(lag, 0.0), ops) * causal
  local = ops.einsum("bjkc,ikc->bjic", blocks, local_weights)

  block_ids = ops.arange(num_blocks, dtype="float32")
  block_lag = block_ids[:, None] - block_ids[None, :] - 1.0
  strictly_before = ops.cast(block_lag >= 0, "float32")[..., None]
  carry_weights = _decay_powers(decay, ops.maximum(block_lag, 0.0) * block,
                                ops) * strictly_before
  block_ends = local[:, :, block - 1, :]
  states = (ops.einsum("bmc,jmc->bjc", block_ends, carry_weights) +
            _decay_powers(decay, block_ids * block, ops) * inputs[:, :1, :])
  smoothed = local + _decay_powers(decay, steps + 1.0, ops) * states[:, :, None]
  smoothed = ops.reshape(smoothed, [batch, num_blocks * block, channels])
  return smoothed[:, :frames, :]


def pcen(inputs, alpha, delta, root, smooth, floor: float,
         ema_implementation: str = "parallel", ops=tf_ops):
  """The module doc's PCEN of [batch, time, channels] energies with its (unclipped) weights."""
  smooth = ops.clip(smooth, 0.0, 1.0)
  ema = ema_parallel if ema_implementation == "parallel" else ema_scan
  smoothed = ema(inputs, smooth, ops=ops)
  alpha = ops.clip(alpha, 0.0, 1.0)
  delta = ops.maximum(delta, MIN_DELTA)
  one_over_root = 1.0 / ops.maximum(root, 1.0)
  normalised = inputs / ops.power(floor + smoothed, alpha)
  return (ops.power(normalised + delta, one_over_root) -
          ops.power(delta, one_over_root))


def check_ema_implementation(ema_implementation: str) -> None:
  if ema_implementation not in EMA_IMPLEMENTATIONS:
    raise ValueError(f"ema_implementation must be 'parallel' or 'scan', got "
                     f"{ema_implementation!r}.")


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class PCEN(tf_keras.layers.Layer):
  """Per-channel energy normalisation; learnable ("sPCEN") or fixed.

  Weights [channels] each: alpha, delta, root and the smoothing coefficient s
  (shared by all channels when `per_channel_smooth_coef` is False).
  [batch, time, channels] -> same shape.

  Args:
    alpha, smooth_coef, delta, root: initial values of the weights (the
      equation in the module doc; smooth_coef is s).
    floor: added to the smoothed energy before the power (1e-6; LEAF's 1e-12).
    learn_params: train alpha, delta and root.
    learn_smooth_coef: train s.
    per_channel_smooth_coef: one s per channel (LEAF's) or one for all.
    ema_implementation: "parallel" (`ema_parallel`) or "scan" (`ema_scan`).
    **kwargs: `tf_keras.layers.Layer` arguments (name, trainable, dtype).
  """

  def __init__(self, alpha: float = 0.96, smooth_coef: float = 0.04,
               delta: float = 2.0, root: float = 2.0, floor: float = 1e-6,
               learn_params: bool = False, learn_smooth_coef: bool = False,
               per_channel_smooth_coef: bool = True,
               ema_implementation: str = "parallel", **kwargs):
    super().__init__(**kwargs)
    check_ema_implementation(ema_implementation)
    self.alpha_init = alpha
    self.smooth_coef = smooth_coef
    self.delta_init = delta
    self.root_init = root
    self.floor = floor
    self.learn_params = learn_params
    self.learn_smooth_coef = learn_smooth_coef
    self.per_channel_smooth_coef = per_channel_smooth_coef
    self.ema_implementation = ema_implementation

  def build(self, input_shape):
    channels = input_shape[-1]

    def weight(name, value, trainable, shape=(channels,)):
      return self.add_weight(
          name=name, shape=shape, dtype=tf.float32, trainable=trainable,
          initializer=tf_keras.initializers.Constant(value))

    self.alpha = weight("alpha", self.alpha_init, self.learn_params)
    self.delta = weight("delta", self.delta_init, self.learn_params)
    self.root = weight("root", self.root_init, self.learn_params)
    self.smooth = weight(
        "smooth", self.smooth_coef, self.learn_smooth_coef,
        shape=(channels,) if self.per_channel_smooth_coef else (1,))
    super().build(input_shape)

  def call(self, inputs):
    return pcen(inputs, self.alpha, self.delta, self.root, self.smooth, self.floor,
                self.ema_implementation)

  def get_config(self):
    return {**super().get_config(), "alpha": self.alpha_init,
            "smooth_coef": self.smooth_coef, "delta": self.delta_init,
            "root": self.root_init, "floor": self.floor,
            "learn_params": self.learn_params,
            "learn_smooth_coef": self.learn_smooth_coef,
            "per_channel_smooth_coef": self.per_channel_smooth_coef,
            "ema_implementation": self.ema_implementation}


def log_compression(inputs, offset: float, ops=tf_ops):
  return ops.log(inputs + offset)


@tf_keras.utils.register_keras_serializable(package="tf_frontends")
class LogCompression(tf_keras.layers.Layer):
  """y = log(x + offset), elementwise (offset: leaf-audio's 1e-5).

  Args:
    offset: added before the log, keeps silence finite.
    **kwargs: `tf_keras.layers.Layer` arguments (name, trainable, dtype).
  """

  def __init__(self, offset: float = 1e-5, **kwargs):
    super().__init__(**kwargs)
    self.offset = offset

  def call(self, inputs):
    return log_compression(inputs, self.offset)

  def get_config(self):
    return {**super().get_config(), "offset": self.offset}
