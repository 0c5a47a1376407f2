"""The audio classifier: frontend -> SpecAugment -> tf-models backbone -> pool -> dropout -> Dense.

    waveform [batch, time] float32
      -> frontend (tf_frontends, always float32)       features  [batch, frames, F]
      -> SpecAugment (training only)                  [batch, frames, F]
      -> backbone on [batch, frames, F, 1] (EfficientNet / ResNet / MobileNet from
         tf-models-official, or audax's ConvNeXt (train/convnext.py), one input channel,
         no pretrained weights)
      -> global average pool (float32)                embedding [batch, D]
      -> dropout -> Dense(num_classes, float32)       logits    [batch, C]

`create_model(config)` builds it from a run's ConfigDict (see configs/default.py), whose
model.num_classes the trainer has resolved (from the data or the workdir; this module reads no
files); `build_model(config, sample_rate)` also creates its variables, under the config's
mixed-precision policy, leaving the process's global policy as it was. Export rebuilds the same
way from the workdir's config.json.
"""
from __future__ import annotations  # `X | None` annotations on Python 3.9

import contextlib

import tensorflow as tf
import tf_keras
from official.vision.modeling.backbones import efficientnet
from official.vision.modeling.backbones import mobilenet
from official.vision.modeling.backbones import resnet
from official.vision.modeling.layers import nn_blocks
from official.vision.modeling.layers import nn_layers

import tf_frontends
from train import convnext
from train import spec_augment as spec_augment_lib
from train.data import input_pipeline

# config.model.type: the model types and the loss / scores each means (see configs/default.py)
MODEL_TYPES = ("multilabel", "multiclass")

# config.mixed_precision -> the Keras policy its model's layers are built with
PRECISION_POLICIES = {"": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def _efficientnet(input_specs, stochastic_depth, use_sync_bn, se_bias=True, **kwargs):
  """tf-models' EfficientNet with the drop path of the seed (audax) and of keras.applications.

  tf-models gives every residual block the full `stochastic_depth`; audax's EfficientNet (the
  seed's runs) and keras.applications' (the LEAF paper's) drop block i of n (counted over all
  blocks, from 0) with stochastic_depth * i / n: for B0 at 0.2, nine residual blocks at 0.025 to
  0.175, about one dropped per forward pass instead of 1.8. The rates have no variables, so
  checkpoints are unaffected; the blocks' get_config reports each block's own rate.
  """
  backbone = efficientnet.EfficientNet(
      input_specs=input_specs, stochastic_depth_drop_rate=stochastic_depth,
      use_sync_bn=use_sync_bn, **kwargs)
  blocks = [layer for layer in backbone.layers
            if isinstance(layer, nn_blocks.InvertedBottleneckBlock)]
  # The blocks are built (the functional model traced them); their call reads these two.
  # pylint: disable=protected-access
  for i, block in enumerate(blocks):
    rate = stochastic_depth * i / len(blocks)
    block._stochastic_depth_drop_rate = rate
    block._stochastic_depth = nn_layers.StochasticDepth(rate) if rate else None
  # pylint: enable=protected-access
  if not se_bias:
    _drop_squeeze_excitation_biases(backbone)
  return backbone


def _drop_squeeze_excitation_biases(backbone):
  """Gives the squeeze-excitation layers 1x1 convs without bias, as audax's are (tf-models'
  have one and no option to leave it out). The replacements create their kernels on the
  backbone's next call, under the same attribute names (so checkpoints keep their paths)."""
  # pylint: disable=protected-access
  for layer in backbone.submodules:
    if isinstance(layer, nn_layers.SqueezeExcitation):
      for name in ("_se_reduce", "_se_expand"):
        conv = getattr(layer, name)
        setattr(layer, name, type(conv).from_config({**conv.get_config(), "use_bias": False}))


def _resnet(input_specs, stochastic_depth, use_sync_bn, **kwargs):
  return resnet.ResNet(
      input_specs=input_specs, init_stochastic_depth_rate=stochastic_depth,
      use_sync_bn=use_sync_bn, **kwargs)


def _mobilenet(input_specs, stochastic_depth, use_sync_bn, **kwargs):
  return mobilenet.MobileNet(
      input_specs=input_specs, stochastic_depth_drop_rate=stochastic_depth,
      use_sync_bn=use_sync_bn, **kwargs)


def _convnext(input_specs, stochastic_depth, use_sync_bn, norm_momentum, **kwargs):
  del use_sync_bn, norm_momentum           # LayerNorm only: no batch statistics to sync or average
  return convnext.ConvNeXt(input_specs.shape[2], stochastic_depth=stochastic_depth, **kwargs)


# name -> builder(input_specs, stochastic_depth, use_sync_bn, **config.model.<name>)
BACKBONES = {"efficientnet": _efficientnet, "resnet": _resnet, "mobilenet": _mobilenet,
             "convnext": _convnext}


def create_backbone(name: str, num_bins: int, *, stochastic_depth: float = 0.0,
                    use_sync_bn: bool = False, norm_momentum: float = 0.99,
                    fused_norm: bool = True, **kwargs) -> tf_keras.Model:
  """A backbone on [batch, frames, num_bins, 1]; outputs a dict of endpoints {level: map}.

  fused_norm=False runs every BatchNormalization on plain TF ops, as synchronized ones always
  do: its moving variance then averages the batch's biased variance (flax's), where the fused
  kernel's carries Bessel's factor n / (n - 1), n = batch x height x width.
  """
  if name not in BACKBONES:
    raise ValueError(f"Unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
  input_specs = tf_keras.layers.InputSpec(shape=[None, None, num_bins, 1])
  backbone = BACKBONES[name](input_specs, stochastic_depth, use_sync_bn,
                             norm_momentum=norm_momentum, **kwargs)
  if not fused_norm:
    for layer in backbone.submodules:
      if isinstance(layer, tf_keras.layers.BatchNormalization):
        layer.fused = False        # read on each call; the variables are the same
  return backbone


def standardized(waveform: tf.Tensor, epsilon: float = 1e-8) -> tf.Tensor:
  """Each clip (a row of [batch, time]) as (x - mean) / (std + epsilon): audax's
  `normalize_waveform` (its Speech Commands recipe). In the model, so exports do it too."""
  mean, variance = tf.nn.moments(waveform, axes=[1], keepdims=True)
  return (waveform - mean) / (tf.sqrt(variance) + epsilon)


class AudioClassifier(tf_keras.Model):
  """waveform [batch, time] -> logits [batch, num_classes]."""

  def __init__(self, frontend: tf_keras.layers.Layer, backbone: tf_keras.Model,
               num_classes: int, *, dropout: float = 0.0,
               spec_augment: spec_augment_lib.SpecAugment | None = None,
               multi_label: bool = True, standardize_waveform: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.standardize_waveform = standardize_waveform
    self.frontend = frontend
    self.spec_augment = spec_augment
    self.backbone = backbone
    self.num_classes = num_classes
    self.multi_label = multi_label
    # Everything after the backbone stays float32 under mixed precision: the
    # logits feed a sigmoid / softmax and the loss.
    self.pool = tf_keras.layers.GlobalAveragePooling2D(dtype="float32", name="pool")
    self.dropout = tf_keras.layers.Dropout(dropout, dtype="float32", name="dropout")
    self.head = tf_keras.layers.Dense(num_classes, dtype="float32", name="head")

  def compute_outputs(self, waveform, training=False, augment_seed=None):
    """{'features': [B, frames, F], 'embedding': [B, D], 'logits': [B, C]}.

    `embedding` is the pooled backbone output before dropout. `augment_seed`
    ([2] int32) makes the SpecAugment masks and the dropout mask functions of the seed, so a
    run resumed from a checkpoint draws what an unkilled run draws (the trainer derives the
    seed from the step); without it, dropout draws from TF's stateful RNG.
    """
    if self.standardize_waveform:
      waveform = standardized(waveform)
    features = self.frontend(waveform)
    x = features
    if training and self.spec_augment is not None:
      x = self.spec_augment(x, training=True, seed=augment_seed)
    endpoints = self.backbone(x[..., tf.newaxis], training=training)
    last = endpoints[max(endpoints, key=int)]
    embedding = self.pool(last)
    if training and augment_seed is not None and self.dropout.rate > 0:
      dropout_seed = tf.random.experimental.stateless_fold_in(augment_seed, 1)
      dropped = tf.nn.experimental.stateless_dropout(embedding, self.dropout.rate, dropout_seed)
    else:
      dropped = self.dropout(embedding, training=training)
    logits = self.head(dropped)
    return {"features": features, "embedding": embedding, "logits": logits}

  def call(self, waveform, training=False, augment_seed=None):
    return self.compute_outputs(waveform, training=training,
                                augment_seed=augment_seed)["logits"]

  def scores(self, logits):
    """Class scores: sigmoid for multi-label, softmax for single-label."""
    return tf.sigmoid(logits) if self.multi_label else tf.nn.softmax(logits)


def frontend_kwargs(config) -> dict:
  kwargs = config.frontend.to_dict()
  kwargs.pop("name")
  return kwargs


def create_frontend(config) -> tf_keras.layers.Layer:
  """tf_frontends.get(name, **kwargs); frontends stay float32 under mixed precision."""
  return tf_frontends.get(config.frontend.name, **frontend_kwargs(config))


def create_model(config) -> AudioClassifier:
  """Builds (without weights) the classifier a run's config describes."""
  if config.model.num_classes < 1:
    raise ValueError(f"config.model.num_classes={config.model.num_classes}: the caller resolves "
                     "it (from the data's dataset_info.json or the workdir) before building")
  if config.model.type not in MODEL_TYPES:
    raise ValueError(f"config.model.type={config.model.type!r} is not one of {MODEL_TYPES}")
  frontend = create_frontend(config)
  num_bins = frontend.output_bins  # EfficientLeaf: 2 x n_filters
  model_config = config.model
  backbone = create_backbone(
      model_config.backbone, num_bins,
      stochastic_depth=model_config.stochastic_depth,
      use_sync_bn=model_config.use_sync_bn,
      norm_momentum=model_config.norm_momentum,
      fused_norm=model_config.fused_norm,
      **model_config[model_config.backbone].to_dict())
  augment = None
  if model_config.spec_augment.enabled:
    kwargs = model_config.spec_augment.to_dict()
    kwargs.pop("enabled")
    augment = spec_augment_lib.SpecAugment(dtype="float32", **kwargs)
  return AudioClassifier(
      frontend, backbone, model_config.num_classes,
      dropout=model_config.dropout, spec_augment=augment,
      multi_label=model_config.type == "multilabel",
      standardize_waveform=model_config.standardize_waveform, name="audio_classifier")


@contextlib.contextmanager
def precision_policy(mixed_precision: str):
  """Layers built inside take the policy of config.mixed_precision; the global one is restored
  on exit (layers keep the policy they were built with)."""
  previous = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy(PRECISION_POLICIES[mixed_precision])
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


def build_model(config, sample_rate: int = 16000) -> AudioClassifier:
  """create_model under the config's precision policy + one call on silence, so that every
  variable exists (for restore)."""
  with precision_policy(config.mixed_precision):
    model = create_model(config)
    model(tf.zeros([1, input_pipeline.crop_length_samples(config.dataset.crop_seconds, sample_rate)]),
          training=False)
  return model
