"""Classifier shapes and contract, backbones, SpecAugment, schedule, optimizer multiplier."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.vision.modeling.layers import nn_layers

import tf_frontends
from tests import harness
from train import models, spec_augment, train_loop
from train import optimizer as optimizer_lib
from train.configs import default
from train.configs import demo
from train.configs import audioset
from train.configs import speechcommands


def _config(backbone="efficientnet", frontend="mel", n_filters=8):
  config = demo.get_config("leaf")
  config.frontend = default.frontend_config(frontend, n_filters=n_filters)
  config.model.num_classes = 5
  config.model.backbone = backbone
  config.model.resnet = dict(model_id=10, depth_multiplier=0.25)
  config.model.mobilenet = dict(model_id="MobileNetV3Small", filter_size_scale=0.25)
  return config


def test_efficientnet_b0_classifier_contract():
  model = models.create_model(_config("efficientnet", "leaf"))
  waveform = tf.random.uniform([2, 8000], -0.5, 0.5)
  outputs = model.compute_outputs(waveform)
  assert outputs["features"].shape == (2, 50, 8)
  assert outputs["embedding"].shape == (2, 1280)          # B0's head width
  assert outputs["logits"].shape == (2, 5)
  assert isinstance(model.frontend, tf_frontends.Leaf)
  assert model.multi_label
  np.testing.assert_allclose(model(waveform).numpy(), outputs["logits"].numpy(), atol=1e-5)
  # 1 input channel: the stem conv sees [3, 3, 1, 32]
  stem = [v for v in model.backbone.variables if v.shape.rank == 4][0]
  assert stem.shape == (3, 3, 1, 32)
  # dropout and stochastic depth only in training: eval is deterministic
  np.testing.assert_array_equal(model(waveform).numpy(), model(waveform).numpy())


def test_seed_recipe_parameter_count():
  config = audioset.get_config("leaf")
  model = models.create_model(config)
  model(tf.zeros([1, 1600]))
  head = model.head.count_params()
  assert head == 1280 * 527 + 527
  # EfficientNet-B0 without its ImageNet head is ~4.0M parameters (SE blocks included)
  assert 3.9e6 < model.backbone.count_params() < 4.2e6
  assert model.frontend.count_params() < 1000             # LEAF: a few hundred


@pytest.mark.parametrize("backbone,width", [("resnet", 128), ("mobilenet", 1024)])
def test_other_backbones(backbone, width):
  model = models.create_model(_config(backbone))
  outputs = model.compute_outputs(tf.zeros([3, 4000]), training=True)
  assert outputs["embedding"].shape[0] == 3 and outputs["logits"].shape == (3, 5)
  assert outputs["embedding"].shape[1] == width


def test_training_flag_reaches_the_efficient_leaf_batch_norm():
  """The classifier does not pass `training` to its frontend: Keras's call context must."""
  model = models.create_model(_config("mobilenet", "efficientleaf"))
  waveform = tf.random.uniform([2, 4000], -0.5, 0.5)
  model(waveform)
  moving_mean = [v for v in model.frontend.variables if "moving_mean" in v.name][0]
  assert np.all(moving_mean.numpy() == 0.0)
  model(waveform, training=True)
  assert np.all(moving_mean.numpy() != 0.0)


def test_norm_momentum_reaches_the_backbone():
  config = _config("resnet")
  config.model.norm_momentum = 0.9
  model = models.create_model(config)
  norms = [l for l in model.backbone.submodules
           if isinstance(l, tf_keras.layers.BatchNormalization)]
  assert norms and all(l.momentum == 0.9 for l in norms)


def test_audax_variant_squeeze_excitation_has_no_bias():
  counts = {}
  for se_bias in (True, False):
    config = _config("efficientnet", "leaf")
    config.model.efficientnet.se_bias = se_bias
    model = models.build_model(config)
    convs = [conv for layer in model.backbone.submodules
             if isinstance(layer, nn_layers.SqueezeExcitation)
             for conv in (layer._se_reduce, layer._se_expand)]   # pylint: disable=protected-access
    assert len(convs) == 2 * 16 and all(conv.kernel is not None for conv in convs)
    assert all((conv.bias is not None) is se_bias for conv in convs)
    counts[se_bias] = len(model.trainable_variables)
  assert counts[True] - counts[False] == 2 * 16
  assert audioset.get_config("leaf,audax").model.efficientnet.se_bias is False


def test_unfused_norm_averages_the_biased_batch_variance():
  """fused_norm=False (audax's flax BatchNorm): moving variance <- m var + (1 - m) biased batch
  variance; the fused kernel's carries n / (n - 1)."""
  x = np.random.default_rng(0).normal(size=(2, 6, 4, 1)).astype(np.float32)
  for fused in (True, False):
    backbone = models.create_backbone("resnet", 4, model_id=10, depth_multiplier=0.25,
                                      norm_momentum=0.9, fused_norm=fused)
    stem_norm = [l for l in backbone.layers if isinstance(l, tf_keras.layers.BatchNormalization)][0]
    stem_conv = [l for l in backbone.layers if isinstance(l, tf_keras.layers.Conv2D)][0]
    backbone(x, training=True)
    conv_out = stem_conv(x).numpy().astype(np.float64)
    conv_out = conv_out.reshape(-1, conv_out.shape[-1])
    n = len(conv_out)                                      # batch x height x width
    expected = 0.9 + 0.1 * (n / (n - 1) if fused else 1.0) * conv_out.var(0)
    np.testing.assert_allclose(stem_norm.moving_variance.numpy(), expected, rtol=1e-5)
  assert audioset.get_config("sincnet,audax").model.fused_norm is False


def test_unknown_backbone():
  with pytest.raises(ValueError, match="Unknown backbone 'vgg'"):
    models.create_backbone("vgg", 40)


def test_mixed_precision_keeps_frontend_and_logits_float32():
  tf_keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    model = models.create_model(_config("resnet", "leaf"))
    outputs = model.compute_outputs(tf.zeros([2, 4000]), training=True)
  finally:
    tf_keras.mixed_precision.set_global_policy("float32")
  assert outputs["features"].dtype == tf.float32
  assert outputs["logits"].dtype == tf.float32
  assert model.backbone.compute_dtype == "bfloat16"
  assert all(v.dtype == tf.float32 for v in model.frontend.variables)


def test_spec_augment_masks():
  layer = spec_augment.SpecAugment(num_freq_masks=2, max_freq_width=3,
                                   num_time_masks=2, max_time_width=10)
  x = tf.ones([16, 100, 40])
  assert layer(x, training=False) is x
  seed = tf.constant([1, 2])
  y = layer(x, training=True, seed=seed).numpy()
  np.testing.assert_array_equal(y, layer(x, training=True, seed=seed).numpy())
  assert not np.array_equal(y, layer(x, training=True, seed=tf.constant([1, 3])).numpy())
  assert set(np.unique(y)) <= {0.0, 1.0}
  for example in y:
    zero_bins = np.all(example == 0, axis=0).sum()
    zero_frames = np.all(example == 0, axis=1).sum()
    assert zero_bins <= 2 * 3 and zero_frames <= 2 * 10
    # the masks are full bands: everything zeroed lies in a masked row or column
    masked = (example == 0)
    rows, cols = np.all(masked, axis=1), np.all(masked, axis=0)
    np.testing.assert_array_equal(masked, rows[:, None] | cols[None, :])
  assert (y == 0).any()
  config = layer.get_config()
  assert spec_augment.SpecAugment.from_config(config).get_config() == config


def test_spec_augment_in_tf_data_and_tf_function():
  layer = spec_augment.SpecAugment(max_time_width=5)
  ds = tf.data.Dataset.from_tensors(tf.ones([2, 30, 16])).map(
      lambda x: layer(x, training=True, seed=tf.constant([0, 1])))
  eager = layer(tf.ones([2, 30, 16]), training=True, seed=tf.constant([0, 1]))
  np.testing.assert_array_equal(next(iter(ds)).numpy(), eager.numpy())
  fn = tf.function(lambda x: layer(x, training=True), input_signature=[
      tf.TensorSpec([None, None, 16])])
  assert fn(tf.ones([3, 7, 16])).shape == (3, 7, 16)


def test_spec_augment_rejects_negative():
  with pytest.raises(ValueError, match="max_time_width must be >= 0"):
    spec_augment.SpecAugment(max_time_width=-1)


def test_warmup_cosine_schedule():
  schedule = optimizer_lib.WarmupCosineDecay(1e-3, warmup_steps=10, total_steps=110,
                                         end_learning_rate=1e-5)
  lr = np.array([float(schedule(s)) for s in range(0, 121)])
  np.testing.assert_allclose(lr[:11], np.arange(11) * 1e-4, rtol=1e-5, atol=1e-9)
  assert lr[10] == pytest.approx(1e-3)
  assert lr[60] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5, rel=1e-5)   # half way: cos = 0
  assert np.all(np.diff(lr[10:111]) <= 1e-9)
  np.testing.assert_allclose(lr[110:], 1e-5, rtol=1e-5)
  again = optimizer_lib.WarmupCosineDecay.from_config(schedule.get_config())
  assert float(again(37)) == float(schedule(37))
  assert optimizer_lib.scaled_learning_rate(5e-4, 1024) == pytest.approx(2e-3)
  with pytest.raises(ValueError, match="warmup_steps"):
    optimizer_lib.WarmupCosineDecay(1e-3, 20, 10)


def test_frontend_learning_rate_multiplier_scales_the_adam_step():
  def step_size(multiplier):
    frontend_var = tf.Variable([1.0, -2.0])
    other_var = tf.Variable([3.0])
    opt = optimizer_lib.AdamW(learning_rate=0.1, weight_decay=0.0,
                        lr_multipliers=[(frontend_var, multiplier)])
    grads = [tf.constant([0.5, 0.25]), tf.constant([1.0])]
    opt.apply_gradients(zip(grads, [frontend_var, other_var]))
    return frontend_var.numpy() - [1.0, -2.0], other_var.numpy() - [3.0]
  full, other_full = step_size(1.0)
  tenth, other_tenth = step_size(0.1)
  frozen, _ = step_size(0.0)
  np.testing.assert_allclose(full, [-0.1, -0.1], rtol=1e-4)    # Adam's first step: -lr * sign
  np.testing.assert_allclose(tenth, 0.1 * full, rtol=1e-4)
  np.testing.assert_array_equal(frozen, [0.0, 0.0])
  np.testing.assert_allclose(other_tenth, other_full, rtol=1e-6)


def test_weight_decay_follows_the_multiplier_and_zero_freezes():
  """With zero gradients Adam's step is 0, so what moves a variable is the decoupled decay."""
  def after_steps(multiplier, num_steps=3):
    frontend_var, other_var = tf.Variable([1.0, -2.0]), tf.Variable([3.0])
    opt = optimizer_lib.AdamW(learning_rate=0.1, weight_decay=0.5,
                        lr_multipliers=[(frontend_var, multiplier)])
    for _ in range(num_steps):
      opt.apply_gradients(zip([tf.zeros([2]), tf.zeros([1])], [frontend_var, other_var]))
    return frontend_var.numpy(), other_var.numpy()
  frozen, other = after_steps(0.0)
  np.testing.assert_array_equal(frozen, [1.0, -2.0])
  np.testing.assert_allclose(other, [3.0 * (1 - 0.1 * 0.5) ** 3], rtol=1e-6)   # v <- v(1 - lr wd)
  half, _ = after_steps(0.5)
  np.testing.assert_allclose(half, np.array([1.0, -2.0]) * (1 - 0.5 * 0.1 * 0.5) ** 3, rtol=1e-6)
  full, _ = after_steps(1.0)
  np.testing.assert_allclose(full, np.array([1.0, -2.0]) * (1 - 0.1 * 0.5) ** 3, rtol=1e-6)


def test_single_label_softmax_loss():
  labels = tf.constant([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
  logits = tf.constant([[0.1, 2.0, -1.0], [0.5, 0.3, 0.0]])
  loss = train_loop.per_example_loss(labels, logits, multi_label=False).numpy()
  log_p = logits.numpy() - np.log(np.exp(logits.numpy()).sum(-1, keepdims=True))
  np.testing.assert_allclose(loss, [-log_p[0, 1], -0.5 * (log_p[1, 0] + log_p[1, 1])], rtol=1e-6)
  bce = train_loop.per_example_loss(labels, logits, multi_label=True).numpy()
  p = 1 / (1 + np.exp(-logits.numpy()))
  ref = -(labels.numpy() * np.log(p) + (1 - labels.numpy()) * np.log(1 - p)).mean(-1)
  np.testing.assert_allclose(bce, ref, rtol=1e-5)


def test_standardize_waveform_is_audaxs_normalize_waveform():
  """Speech Commands: each clip (x - mean) / (std + 1e-8) before the frontend, inside the
  model (so exports do it too); against the formula in float64 (tolerance: float32 rounding
  of unit-variance values)."""
  rng = np.random.default_rng(0)
  waveform = (0.3 * rng.standard_normal((3, 4000)) + 0.05).astype(np.float32)
  waveform[2] = 0.0                                   # silence stays finite (0 / 1e-8)
  x = waveform.astype(np.float64)
  expected = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-8)
  np.testing.assert_allclose(models.standardized(tf.constant(waveform)).numpy(), expected,
                             atol=2e-6, rtol=0)
  assert speechcommands.get_config("mel").model.standardize_waveform
  config = harness.tiny_config("unused")
  assert not config.model.standardize_waveform         # every other recipe: as stored
  config.model.num_classes = 2
  config.model.standardize_waveform = True
  model = models.build_model(config)
  features = model.compute_outputs(tf.constant(waveform))["features"].numpy()
  np.testing.assert_allclose(features, model.frontend(expected.astype(np.float32)).numpy(),
                             rtol=1e-5, atol=1e-6)
