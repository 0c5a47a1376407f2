"""audax parameter paths -> our AudioClassifier's variables (LEAF / SincNet + EfficientNet-B0
or ConvNeXt).

audax's `Classifier` holds (flax auto-names submodules <Class>_<n> in creation order):

    params/frontend/...                      LEAF: complex_conv/gabor_kernel [F, 2],
                                             pooling/kernel [1, 1, F, 1], compression/
                                             {alpha, delta, root} [F],
                                             compression/ExponentialMovingAverage_0/smooth [F]
                                             SincNet: complex_conv/sinc_kernel [F, 2],
                                             compression/{scale, bias} [F] (LayerNorm)
    params/encoder/ConvNormActivation_0      stem: Conv_0/kernel, BatchNorm_0/{scale, bias}
    params/encoder/MBConv_<i>, i = 0..15     [ConvNormActivation expand], ConvNormActivation
                                             depthwise, SqueezeAndExcitation_0/{reduce,
                                             expand}/kernel (no bias), ConvNormActivation project
    params/encoder/ConvNormActivation_1      the 1x1 head conv to 1280 channels
    params/encoder/...  (ConvNeXt instead)   stem: Conv_0/{kernel, bias}, LayerNorm_0/{scale,
                                             bias}; ConvNeXtStage_<s>: [LayerNorm_0, Conv_0]
                                             downsampling (s > 0), ConvNeXtBlock_<j>/{Conv_0
                                             depthwise, LayerNorm_0, Mlp_0/Dense_{0,1}, gamma}
    params/fc/{kernel, bias}                 the classifier
    batch_stats/<same module>/BatchNorm_0/{mean, var}

Kernels are HWIO in both frameworks, except depthwise ones: flax [k, k, 1, C],
Keras [k, k, C, 1]. tf-models' squeeze-excitation convs have biases, audax's have none:
where our model has them (model.efficientnet.se_bias, train/models.py) they are set to
zero. ConvNeXt maps one to one (train/convnext.py builds audax's structure), no zeros.
"""
import numpy as np
from official.vision.modeling.layers import nn_blocks
import tf_keras

import tf_frontends
from train import convnext


class CheckpointMismatch(ValueError):
  """The checkpoint's parameters do not fit the model its config describes."""


class _Entry:
  """One checkpoint array -> one variable: the array's shape in the checkpoint and the
  transform to the variable's layout."""

  def __init__(self, variable, checkpoint_shape=None, to_variable=None):
    self.variable = variable
    self.checkpoint_shape = tuple(checkpoint_shape or variable.shape.as_list())
    self.to_variable = to_variable or (lambda a: a)


def _depthwise(variable):
  k_h, k_w, channels, _ = variable.shape.as_list()
  return _Entry(variable, (k_h, k_w, 1, channels), lambda a: np.transpose(a, (0, 1, 3, 2)))


def _conv_norm(prefix, conv, norm, depthwise=False):
  kernel = conv.depthwise_kernel if depthwise else conv.kernel
  return {
      f"params/{prefix}/Conv_0/kernel": _depthwise(kernel) if depthwise else _Entry(kernel),
      f"params/{prefix}/BatchNorm_0/scale": _Entry(norm.gamma),
      f"params/{prefix}/BatchNorm_0/bias": _Entry(norm.beta),
      f"batch_stats/{prefix}/BatchNorm_0/mean": _Entry(norm.moving_mean),
      f"batch_stats/{prefix}/BatchNorm_0/var": _Entry(norm.moving_variance),
  }


def _frontend_entries(frontend):
  # The frontends' sub-layers are private attributes; the importer is their one outside user.
  # pylint: disable=protected-access
  if isinstance(frontend, tf_frontends.Leaf):
    pcen = frontend._compression
    pooling = frontend._pooling.kernel
    channels = pooling.shape[0]
    return {
        "params/frontend/complex_conv/gabor_kernel": _Entry(frontend._filterbank.kernel),
        "params/frontend/pooling/kernel": _Entry(pooling, (1, 1, channels, 1),
                                                 lambda a: a.reshape(-1)),
        "params/frontend/compression/alpha": _Entry(pcen.alpha),
        "params/frontend/compression/delta": _Entry(pcen.delta),
        "params/frontend/compression/root": _Entry(pcen.root),
        "params/frontend/compression/ExponentialMovingAverage_0/smooth": _Entry(pcen.smooth),
    }
  if isinstance(frontend, tf_frontends.SincNet):
    return {
        "params/frontend/complex_conv/sinc_kernel": _Entry(frontend._filterbank.kernel),
        "params/frontend/compression/scale": _Entry(frontend._compression.gamma),
        "params/frontend/compression/bias": _Entry(frontend._compression.beta),
    }
  raise CheckpointMismatch(f"no audax mapping for frontend {type(frontend).__name__}")


def _top_level(backbone, layer_type):
  return [layer for layer in backbone.layers if isinstance(layer, layer_type)]


def _backbone_entries(backbone):
  """Entries of tf-models' EfficientNet-B0 in audax's order, and the SE biases to zero."""
  # pylint: disable=protected-access
  convs = _top_level(backbone, tf_keras.layers.Conv2D)
  norms = _top_level(backbone, tf_keras.layers.BatchNormalization)
  blocks = _top_level(backbone, nn_blocks.InvertedBottleneckBlock)
  if len(convs) != 2 or len(norms) != 2 or len(blocks) != 16:
    raise CheckpointMismatch(
        f"the backbone is not EfficientNet-B0 (stem + 16 blocks + head); found "
        f"{len(convs)} convs, {len(norms)} norms, {len(blocks)} blocks at the top level")
  entries = _conv_norm("encoder/ConvNormActivation_0", convs[0], norms[0])
  entries.update(_conv_norm("encoder/ConvNormActivation_1", convs[1], norms[1]))
  zeros = []
  for i, block in enumerate(blocks):
    prefix = f"encoder/MBConv_{i}"
    stages = []
    if block._expand_ratio > 1:
      stages.append((block._conv0, block._norm0, False))
    stages += [(block._conv1, block._norm1, True), (block._conv2, block._norm2, False)]
    for n, (conv, norm, depthwise) in enumerate(stages):
      entries.update(_conv_norm(f"{prefix}/ConvNormActivation_{n}", conv, norm, depthwise))
    se = block._squeeze_excitation
    entries[f"params/{prefix}/SqueezeAndExcitation_0/reduce/kernel"] = _Entry(se._se_reduce.kernel)
    entries[f"params/{prefix}/SqueezeAndExcitation_0/expand/kernel"] = _Entry(se._se_expand.kernel)
    zeros += [b for b in (se._se_reduce.bias, se._se_expand.bias) if b is not None]
  return entries, zeros


def _layer_norm(prefix, norm):
  return {f"{prefix}/LayerNorm_0/scale": _Entry(norm.gamma),
          f"{prefix}/LayerNorm_0/bias": _Entry(norm.beta)}


def _conv(prefix, conv):
  return {f"{prefix}/Conv_0/kernel": _Entry(conv.kernel),
          f"{prefix}/Conv_0/bias": _Entry(conv.bias)}


def _convnext_entries(backbone):
  """Entries of our ConvNeXt in audax's names: stem, then stage by stage, block by block."""
  # pylint: disable=protected-access
  entries = {**_conv("params/encoder", backbone.get_layer("stem")),
             **_layer_norm("params/encoder", backbone.get_layer("stem_norm"))}
  for s, blocks in enumerate(backbone.blocks):
    stage = f"params/encoder/ConvNeXtStage_{s}"
    if s > 0:
      entries.update(_layer_norm(stage, backbone.get_layer(f"stage{s}_downsample_norm")))
      entries.update(_conv(stage, backbone.get_layer(f"stage{s}_downsample")))
    for j, block in enumerate(blocks):
      prefix = f"{stage}/ConvNeXtBlock_{j}"
      entries.update(_layer_norm(prefix, block._norm))
      entries[f"{prefix}/Conv_0/kernel"] = _depthwise(block._depthwise.depthwise_kernel)
      entries[f"{prefix}/Conv_0/bias"] = _Entry(block._depthwise.bias)
      for n, dense in enumerate((block._expand, block._project)):
        entries[f"{prefix}/Mlp_0/Dense_{n}/kernel"] = _Entry(dense.kernel)
        entries[f"{prefix}/Mlp_0/Dense_{n}/bias"] = _Entry(dense.bias)
      entries[f"{prefix}/gamma"] = _Entry(block.layer_scale)
  return entries, []


def convnext_arguments(params: dict) -> dict:
  """{"depths": (...), "dims": (...)} of the audax ConvNeXt a checkpoint's params tree holds
  (config.model.convnext of the model it maps onto)."""
  encoder = params.get("encoder") if isinstance(params.get("encoder"), dict) else {}
  depths, dims = [], []
  while isinstance(encoder.get(f"ConvNeXtStage_{len(depths)}"), dict):
    stage = encoder[f"ConvNeXtStage_{len(depths)}"]
    gamma = (stage.get("ConvNeXtBlock_0") or {}).get("gamma")
    if gamma is None:
      raise CheckpointMismatch(f"params/encoder/ConvNeXtStage_{len(depths)}/ConvNeXtBlock_0/"
                               "gamma is missing: not an audax ConvNeXt stage")
    dims.append(int(np.shape(gamma)[0]))
    depths.append(sum(1 for key in stage if key.startswith("ConvNeXtBlock_")))
  if not depths:
    raise CheckpointMismatch("params/encoder has no ConvNeXtStage_0: not an audax ConvNeXt")
  return {"depths": tuple(depths), "dims": tuple(dims)}


def weight_map(model):
  """({checkpoint path: _Entry}, [variables set to zero]) for a built AudioClassifier."""
  entries = _frontend_entries(model.frontend)
  if isinstance(model.backbone, convnext.ConvNeXt):
    backbone, zeros = _convnext_entries(model.backbone)
  else:
    backbone, zeros = _backbone_entries(model.backbone)
  entries.update(backbone)
  entries["params/fc/kernel"] = _Entry(model.head.kernel)
  entries["params/fc/bias"] = _Entry(model.head.bias)
  covered = {id(e.variable) for e in entries.values()} | {id(v) for v in zeros}
  uncovered = [v.name for v in model.variables if id(v) not in covered]
  if uncovered:
    raise CheckpointMismatch(f"variables without an audax counterpart: {uncovered[:5]}")
  return entries, zeros


def _listing(paths, limit=6):
  paths = sorted(paths)
  more = f" (and {len(paths) - limit} more)" if len(paths) > limit else ""
  return ", ".join(paths[:limit]) + more


def check(entries, arrays: dict, what: str) -> None:
  """Raises CheckpointMismatch naming missing, unexpected and mis-shaped parameters."""
  missing = set(entries) - set(arrays)
  extra = set(arrays) - set(entries)
  problems = []
  if missing:
    problems.append(f"missing parameters: {_listing(missing)}")
  if extra:
    problems.append(f"unexpected parameters: {_listing(extra)}")
  for path in sorted(set(entries) & set(arrays)):
    got, want = tuple(np.shape(arrays[path])), entries[path].checkpoint_shape
    if got != want:
      problems.append(f"{path} has shape {got} in the checkpoint, the model expects {want}")
  if problems:
    raise CheckpointMismatch(f"the checkpoint does not fit {what}:\n  " + "\n  ".join(problems))


def assign(model, arrays: dict, what: str) -> None:
  """Checks `arrays` ({checkpoint path: array}) against `model`, then sets every variable."""
  entries, zeros = weight_map(model)
  check(entries, arrays, what)
  for path, entry in entries.items():
    value = np.asarray(arrays[path], dtype=np.float32)
    entry.variable.assign(entry.to_variable(value))
  for variable in zeros:
    variable.assign(np.zeros(variable.shape, np.float32))
