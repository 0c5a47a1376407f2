"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", 2022) as audax builds it, in tf_keras.

The backbone of audax's `convnext_tiny` (SarthakYadav/audax, audax/models/convnext.py) on the
frontend's output image, laid out as audax's `Classifier` feeds it: [batch, frames, bins, 1]
(time is the height, filters the width, one channel; no transpose).

    stem:    x = LN(Conv_{4x4, stride 4, VALID}(image))          [B, frames/4, bins/4, d_0]
             (under 32 frames, zeros are appended first: see `ConvNeXt`)
    stage s: x = Conv_{2x2, stride 2, VALID}(LN(x))  (s > 0)      [B, ., ., d_s]
             x = block_{s,j}(x), j = 0 .. depths[s] - 1
    block:   y = LN(DWConv_{7x7, SAME}(x))                        depthwise, with bias
             y = W_2 gelu(W_1 y + b_1) + b_2                      W_1: d -> 4d, W_2: 4d -> d
             x = x + droppath_k(gamma * y)                        gamma [d], initially 1e-6

    endpoints {"2": stage 0, "3": stage 1, "4": stage 2, "5": stage 3}: the key is
    log2 of the stage's stride, as tf-models' backbones name theirs; the classifier
    pools the last one (global average over time and frequency -> dropout -> Dense:
    audax's Classifier builds the encoder with num_classes=None, which leaves out
    ConvNeXt's own head, the `fc_norm` LayerNorm included).

ConvNeXt-Tiny: depths (3, 3, 9, 3), dims (96, 192, 384, 768), 27.8 M parameters.
What audax's code fixes, and this file follows:
  - LN is flax's LayerNorm over channels: epsilon 1e-6 (Keras's default is 1e-3),
    with scale and offset;
  - gelu is flax's default, the tanh approximation
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
  - convolution and dense kernels start truncated normal (std 0.02, cut at 2 std), biases 0;
  - a stage whose width equals the previous stage's is not downsampled in audax (it only
    downsamples when the channel count changes); ConvNeXt's widths always change, and
    `ConvNeXt` refuses equal consecutive widths rather than copy that.
Drop path (stochastic depth): block k of the N in the network (k = 0 .. N-1) drops its residual
branch per example with probability rate * k / (N - 1) in training, scaling kept branches by
1 / (1 - p) (the paper's linear rule, tf-models' StochasticDepth layer). audax's
`convnext_tiny` sets drop_path_rate=0.1 but never hands the per-block rates to its stages
(`ConvNeXtStage.dp_rates` stays None, so every block's rate is 0): audax's ConvNeXt trains
without drop path, which rate 0 here reproduces.
"""
from __future__ import annotations  # `X | None` annotations on Python 3.9

import tensorflow as tf
import tf_keras
from official.vision.modeling.layers import nn_layers

LAYER_NORM_EPSILON = 1e-6          # flax.linen.LayerNorm's default, which audax keeps
MLP_RATIO = 4
PATCH_SIZE = 4                     # the stem's kernel and stride
DOWNSAMPLE = 2                     # each later stage's kernel and stride
TINY_DEPTHS = (3, 3, 9, 3)
TINY_DIMS = (96, 192, 384, 768)


def _kernel_initializer():
  # One instance per layer: Keras refuses to share a seeded initializer, and a fresh one keeps
  # each layer's draws independent.
  return tf_keras.initializers.TruncatedNormal(stddev=0.02)


def _layer_norm(name: str) -> tf_keras.layers.LayerNormalization:
  return tf_keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


def drop_path_rates(rate: float, num_blocks: int) -> list[float]:
  """rate * k / (num_blocks - 1) for block k: 0 at the first block, `rate` at the last."""
  if num_blocks == 1:
    return [0.0]
  return [rate * k / (num_blocks - 1) for k in range(num_blocks)]


@tf_keras.utils.register_keras_serializable(package="train")
class PadFrames(tf_keras.layers.Layer):
  """Zeros after the last frame up to `min_frames`.  [B, T, F, C] -> [B, max(T, min), F, C]."""

  def __init__(self, min_frames: int, **kwargs):
    super().__init__(**kwargs)
    self.min_frames = min_frames

  def call(self, inputs):
    missing = tf.maximum(self.min_frames - tf.shape(inputs)[1], 0)
    return tf.pad(inputs, [[0, 0], [0, missing], [0, 0], [0, 0]])

  def get_config(self):
    return {**super().get_config(), "min_frames": self.min_frames}


@tf_keras.utils.register_keras_serializable(package="train")
class ConvNeXtBlock(tf_keras.layers.Layer):
  """x + droppath(gamma * MLP(LN(DWConv7x7(x)))).  [B, H, W, dim] -> [B, H, W, dim]."""

  def __init__(self, dim: int, *, drop_path_rate: float = 0.0, layer_scale_init: float = 1e-6,
               **kwargs):
    super().__init__(**kwargs)
    if not 0.0 <= drop_path_rate < 1.0:
      raise ValueError(f"ConvNeXtBlock: drop_path_rate={drop_path_rate} is not in [0, 1)")
    self.dim = dim
    self.drop_path_rate = drop_path_rate
    self.layer_scale_init = layer_scale_init
    self._depthwise = tf_keras.layers.DepthwiseConv2D(
        7, padding="same", depthwise_initializer=_kernel_initializer(), name="depthwise")
    self._norm = _layer_norm("norm")
    self._expand = tf_keras.layers.Dense(MLP_RATIO * dim, kernel_initializer=_kernel_initializer(),
                                         name="expand")
    self._project = tf_keras.layers.Dense(dim, kernel_initializer=_kernel_initializer(),
                                          name="project")
    self._drop_path = nn_layers.StochasticDepth(drop_path_rate, name="drop_path")

  def build(self, input_shape):
    if input_shape[-1] != self.dim:
      raise ValueError(f"ConvNeXtBlock {self.name}: input has {input_shape[-1]} channels, "
                       f"the block {self.dim}")
    self.layer_scale = self.add_weight(
        name="layer_scale", shape=[self.dim],
        initializer=tf_keras.initializers.Constant(self.layer_scale_init))
    super().build(input_shape)

  def call(self, inputs, training=None):
    x = self._norm(self._depthwise(inputs))
    x = tf.nn.gelu(self._expand(x), approximate=True)
    x = self._project(x) * self.layer_scale
    return inputs + self._drop_path(x, training=training)

  def get_config(self):
    return {**super().get_config(), "dim": self.dim, "drop_path_rate": self.drop_path_rate,
            "layer_scale_init": self.layer_scale_init}


@tf_keras.utils.register_keras_serializable(package="train")
class ConvNeXt(tf_keras.Model):
  """[batch, frames, num_bins, 1] -> {"2": .., "5": [batch, frames/32, num_bins/32, dims[-1]]}.

  Frames and bins shrink by 4 in the stem and by 2 in each later stage (VALID: remainders
  are dropped), so both must be at least min_frames = 4 * 2^(stages - 1) (32 for four
  stages). Fewer bins is refused; fewer frames (clips under 0.31 s at a 10 ms hop, which
  the hub modules and TFLite models accept) are zero-padded at the end to min_frames, where
  audax's model would return an empty map and NaN logits. Longer inputs are untouched.
  """

  def __init__(self, num_bins: int, *, depths=TINY_DEPTHS, dims=TINY_DIMS,
               stochastic_depth: float = 0.0, layer_scale_init: float = 1e-6, **kwargs):
    depths, dims = tuple(int(d) for d in depths), tuple(int(d) for d in dims)
    if not depths or len(depths) != len(dims) or min(depths) < 1 or min(dims) < 1:
      raise ValueError(f"ConvNeXt: depths {depths} and dims {dims} must be positive and of "
                       "the same (non-zero) length, one entry per stage")
    if any(a == b for a, b in zip(dims, dims[1:])):
      raise ValueError(f"ConvNeXt: dims {dims} has equal consecutive widths; audax skips the "
                       "downsampling there, which this model does not reproduce")
    min_size = PATCH_SIZE * DOWNSAMPLE ** (len(depths) - 1)
    if num_bins < min_size:
      raise ValueError(f"ConvNeXt: {num_bins} frequency bins is fewer than the {min_size} its "
                       f"{len(depths)} stages downsample by (frontend n_filters >= {min_size})")
    inputs = tf_keras.Input(shape=[None, num_bins, 1])
    x = PadFrames(min_size, name="pad_frames")(inputs)
    x = tf_keras.layers.Conv2D(dims[0], PATCH_SIZE, strides=PATCH_SIZE, padding="valid",
                               kernel_initializer=_kernel_initializer(), name="stem")(x)
    x = _layer_norm("stem_norm")(x)
    rates = iter(drop_path_rates(stochastic_depth, sum(depths)))
    endpoints = {}
    for stage, (depth, dim) in enumerate(zip(depths, dims)):
      if stage > 0:
        x = _layer_norm(f"stage{stage}_downsample_norm")(x)
        x = tf_keras.layers.Conv2D(dim, DOWNSAMPLE, strides=DOWNSAMPLE, padding="valid",
                                   kernel_initializer=_kernel_initializer(),
                                   name=f"stage{stage}_downsample")(x)
      for j in range(depth):
        x = ConvNeXtBlock(dim, drop_path_rate=next(rates), layer_scale_init=layer_scale_init,
                          name=f"stage{stage}_block{j}")(x)
      endpoints[str(stage + 2)] = x          # stride 4 * 2^stage = 2^(stage + 2)
    super().__init__(inputs=inputs, outputs=endpoints, **kwargs)
    self._config = {"num_bins": num_bins, "depths": depths, "dims": dims,
                    "stochastic_depth": stochastic_depth, "layer_scale_init": layer_scale_init}
    self._output_specs = {level: tensor.get_shape() for level, tensor in endpoints.items()}

  @property
  def output_specs(self):
    """{level: TensorShape} of the endpoints, as tf-models' backbones give it."""
    return self._output_specs

  @property
  def blocks(self) -> list[list[ConvNeXtBlock]]:
    """The blocks, stage by stage, in order."""
    return [[self.get_layer(f"stage{s}_block{j}") for j in range(depth)]
            for s, depth in enumerate(self._config["depths"])]

  def get_config(self):
    return {"name": self.name, **self._config}

  @classmethod
  def from_config(cls, config, custom_objects=None):
    del custom_objects
    return cls(**config)
