"""train/convnext.py: numbers against a float64 numpy reference, shapes, drop path, config
round trip, ConvNeXt-Tiny's size; the classifier with it under mixed precision, XLA,
MirroredStrategy, as a hub module and as a TFLite model (built-in ops only)."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.special
import tensorflow as tf
import tf_keras

from export import tflite
from hub_modules import classifier_module
from tests import harness
from train import convnext, models
from train.configs import default
from train.configs import demo

DEPTHS, DIMS = (1, 2, 1, 1), (8, 12, 16, 20)   # every structural case, a few thousand weights
TOLERANCE = 2e-6                                 # max |ours - reference| / max |reference|


def relative_error(got, want):
  return float(np.abs(got - want).max() / np.abs(want).max())


def randomize(model, seed=0):
  """Weights where every block matters: layer scales 0.25..0.75 (not 1e-6), LayerNorm
  scales 1 +- 0.25 and offsets +- 0.25, kernels with He variance."""
  rng = np.random.default_rng(seed)
  for v in model.variables:
    shape = v.shape.as_list()
    if "layer_scale" in v.name:
      value = rng.uniform(0.25, 0.75, shape)
    elif "gamma" in v.name:
      value = 1 + rng.uniform(-0.25, 0.25, shape)
    elif len(shape) == 1:
      value = rng.uniform(-0.25, 0.25, shape)
    else:
      fan_in = np.prod(shape[:-1]) if "depthwise" not in v.name else np.prod(shape[:2])
      value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    v.assign(value.astype(np.float32))


# ---------------------------------------------------------------- float64 reference

def _gelu_tanh(x):
  return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def _gelu_erf(x):
  return 0.5 * x * (1 + scipy.special.erf(x / np.sqrt(2)))


def _np(v):
  return v.numpy().astype(np.float64)


def _layer_norm(x, layer):
  mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + 1e-6) * _np(layer.gamma) + _np(layer.beta)


def _patch_conv(x, layer, size):
  """VALID convolution with kernel = stride = size, as patches times the kernel."""
  b, h, w, c = x.shape
  h, w = h // size, w // size
  patches = x[:, :h * size, :w * size].reshape(b, h, size, w, size, c)
  return np.einsum("bhiwjc,ijco->bhwo", patches, _np(layer.kernel)) + _np(layer.bias)


def _depthwise_same(x, layer):
  kernel = _np(layer.depthwise_kernel)[..., 0]            # [7, 7, C]
  k = kernel.shape[0]
  _, h, w, _ = x.shape
  padded = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  out = sum(padded[:, i:i + h, j:j + w] * kernel[i, j] for i in range(k) for j in range(k))
  return out + _np(layer.bias)


def reference(model, image, gelu=_gelu_tanh):
  """The backbone's last endpoint in float64 numpy, from its weights."""
  # pylint: disable=protected-access
  x = _layer_norm(_patch_conv(image, model.get_layer("stem"), 4), model.get_layer("stem_norm"))
  for s, blocks in enumerate(model.blocks):
    if s > 0:
      x = _layer_norm(x, model.get_layer(f"stage{s}_downsample_norm"))
      x = _patch_conv(x, model.get_layer(f"stage{s}_downsample"), 2)
    for block in blocks:
      y = _layer_norm(_depthwise_same(x, block._depthwise), block._norm)
      y = gelu(y @ _np(block._expand.kernel) + _np(block._expand.bias))
      y = y @ _np(block._project.kernel) + _np(block._project.bias)
      x = x + _np(block.layer_scale) * y
  return x


def tiny_backbone(num_bins=40, stochastic_depth=0.0):
  return convnext.ConvNeXt(num_bins, depths=DEPTHS, dims=DIMS, stochastic_depth=stochastic_depth)


def test_forward_equals_the_float64_reference():
  model = tiny_backbone()
  randomize(model)
  image = np.random.default_rng(1).standard_normal([2, 75, 40, 1])
  got = model(image.astype(np.float32))["5"].numpy()
  want = reference(model, image)
  error = relative_error(got, want)
  print(f"ConvNeXt vs float64 reference: {error:.1e}")
  assert error <= TOLERANCE
  # the tolerance tells flax's tanh GELU from the exact one
  assert relative_error(got, reference(model, image, gelu=_gelu_erf)) > 10 * TOLERANCE


def test_endpoints_shapes_and_config_round_trip():
  model = tiny_backbone(num_bins=70)
  endpoints = model(tf.zeros([3, 100, 70, 1]))
  # VALID: 100 -> 25 -> 12 -> 6 -> 3 frames, 70 -> 17 -> 8 -> 4 -> 2 bins
  assert {k: tuple(v.shape) for k, v in endpoints.items()} == {
      "2": (3, 25, 17, 8), "3": (3, 12, 8, 12), "4": (3, 6, 4, 16), "5": (3, 3, 2, 20)}
  assert {k: v.as_list() for k, v in model.output_specs.items()} == {
      "2": [None, None, 17, 8], "3": [None, None, 8, 12], "4": [None, None, 4, 16],
      "5": [None, None, 2, 20]}
  # under 32 frames: zeros appended up to 32, where VALID convolutions would leave nothing
  short = tf.random.stateless_normal([2, 10, 70, 1], seed=[4, 5])
  padded = tf.concat([short, tf.zeros([2, 22, 70, 1])], axis=1)
  assert model(short)["5"].shape == (2, 1, 2, 20)
  np.testing.assert_array_equal(model(short)["5"].numpy(), model(padded)["5"].numpy())
  copy = convnext.ConvNeXt.from_config(model.get_config())
  assert copy.get_config() == model.get_config()
  assert [v.shape for v in copy.variables] == [v.shape for v in model.variables]
  block = model.blocks[1][1]
  assert type(block).from_config(block.get_config()).get_config() == block.get_config()


def test_convnext_tiny_parameter_count():
  """Counted from the architecture: stem, per block dw 7x7 + LN + 4x MLP + layer scale,
  per later stage LN + 2x2 conv."""
  dims = convnext.TINY_DIMS
  expected = 4 * 4 * 1 * dims[0] + dims[0] + 2 * dims[0]
  for s, (depth, d) in enumerate(zip(convnext.TINY_DEPTHS, dims)):
    if s > 0:
      expected += 2 * dims[s - 1] + 2 * 2 * dims[s - 1] * d + d
    expected += depth * (49 * d + d + 2 * d + d * 4 * d + 4 * d + 4 * d * d + d + d)
  model = convnext.ConvNeXt(64)
  assert model.count_params() == expected == 27_815_520


def test_drop_path_rates_rise_linearly_and_act_only_in_training():
  model = tiny_backbone(stochastic_depth=0.3)
  rates = [block.drop_path_rate for stage in model.blocks for block in stage]
  np.testing.assert_allclose(rates, [0.0, 0.075, 0.15, 0.225, 0.3])
  block = convnext.ConvNeXtBlock(8, drop_path_rate=0.5)
  x = tf.random.stateless_normal([400, 6, 5, 8], seed=[1, 2])
  block(x)
  randomize(block)
  branch = block(x, training=False) - x                     # eval: always the whole branch
  assert float(tf.reduce_min(tf.reduce_max(tf.abs(branch), axis=(1, 2, 3)))) > 0.1
  tf.random.set_seed(3)
  trained = (block(x, training=True) - x).numpy()
  dropped = np.all(np.abs(trained) < 1e-6, axis=(1, 2, 3))
  kept = np.all(np.abs(trained - 2 * branch.numpy()) < 1e-4, axis=(1, 2, 3))  # / (1 - 0.5)
  assert np.all(dropped ^ kept)                             # per example: all or nothing
  assert 0.4 < dropped.mean() < 0.6


@pytest.mark.parametrize("kwargs,message", [
    ({"num_bins": 31}, r"31 frequency bins is fewer than the 32"),
    ({"num_bins": 40, "dims": (8, 8, 16, 20)}, r"equal consecutive widths"),
    ({"num_bins": 40, "depths": (1, 1, 1)}, r"same \(non-zero\) length"),
    ({"num_bins": 40, "depths": (1, 0, 1, 1)}, r"must be positive"),
])
def test_bad_arguments_are_refused(kwargs, message):
  kwargs = {"depths": DEPTHS, "dims": DIMS, **kwargs}
  with pytest.raises(ValueError, match=message):
    convnext.ConvNeXt(**kwargs)


# ---------------------------------------------------------------- in the classifier

def classifier_config(frontend="mel", n_filters=32):
  config = demo.get_config(frontend)
  config.frontend = default.frontend_config(frontend, n_filters=n_filters)
  config.model.backbone = "convnext"
  config.model.convnext.update(depths=DEPTHS, dims=DIMS)
  config.model.stochastic_depth = 0.0
  config.model.dropout = 0.0
  config.model.num_classes = 5
  config.dataset.crop_seconds = 0.5
  return config


def test_classifier_from_config():
  config = default.get_config()
  assert config.model.convnext.depths == (3, 3, 9, 3) and config.model.convnext.dims == (
      96, 192, 384, 768)
  config = classifier_config()
  config.model.stochastic_depth = 0.1
  model = models.create_model(config)
  outputs = model.compute_outputs(tf.random.uniform([2, 8000], -0.5, 0.5), training=True)
  assert outputs["features"].shape == (2, 50, 32)
  assert outputs["embedding"].shape == (2, DIMS[-1]) and outputs["logits"].shape == (2, 5)
  assert isinstance(model.backbone, convnext.ConvNeXt)
  assert model.backbone.blocks[-1][-1].drop_path_rate == pytest.approx(0.1)
  with pytest.raises(ValueError, match="8 frequency bins is fewer than the 32"):
    models.create_model(classifier_config(n_filters=8))


def test_mixed_bfloat16_follows_float32():
  config = classifier_config()
  reference_model = models.build_model(config)
  randomize(reference_model.backbone)
  config.mixed_precision = "bfloat16"
  model = models.build_model(config)
  model.set_weights(reference_model.get_weights())
  waveform = tf.random.stateless_uniform([2, 8000], [0, 1], -0.5, 0.5)
  outputs = model.compute_outputs(waveform)
  assert model.backbone.compute_dtype == "bfloat16"
  assert outputs["logits"].dtype == tf.float32
  assert all(v.dtype == tf.float32 for v in model.variables)
  error = relative_error(outputs["embedding"].numpy(),
                         reference_model.compute_outputs(waveform)["embedding"].numpy())
  print(f"bfloat16 vs float32 embedding: {error:.1e}")
  assert error < 0.05                                    # bfloat16: 8 significant bits


def _loss_and_gradients(model, waveform, labels):
  with tf.GradientTape() as tape:
    logits = model(waveform, training=True)
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
  return loss, tape.gradient(loss, model.trainable_variables)


def test_xla_forward_and_gradients_equal_eager():
  model = models.build_model(classifier_config())
  randomize(model.backbone)
  waveform = tf.random.stateless_uniform([2, 8000], [0, 2], -0.5, 0.5)
  labels = tf.constant([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1]])
  eager_loss, eager_grads = _loss_and_gradients(model, waveform, labels)
  xla_loss, xla_grads = tf.function(_loss_and_gradients, jit_compile=True)(
      model, waveform, labels)
  assert abs(float(xla_loss) - float(eager_loss)) <= 1e-5 * abs(float(eager_loss))
  assert len(xla_grads) == len(model.trainable_variables)
  for eager, xla, v in zip(eager_grads, xla_grads, model.trainable_variables):
    scale = float(tf.reduce_max(tf.abs(eager))) + 1e-12
    assert float(tf.reduce_max(tf.abs(xla - eager))) <= 1e-3 * scale, v.name
  assert all(np.all(np.isfinite(g)) and np.any(g != 0) for g in eager_grads)


@pytest.mark.slow
def test_mirrored_two_logical_cpus_match_one_device(data_dir):
  """tests/train/mirrored_training.py's comparison, on a classifier with the tiny ConvNeXt."""
  code = (
      "import json, sys\n"
      "import numpy as np\n"
      "import tensorflow as tf\n"
      "from tests.train import mirrored_training as m\n"   # configures two logical CPUs
      "from tests.train import test_convnext as t\n"
      "config = t.classifier_config()\n"
      "config.model.num_classes = 3\n"
      "data_dir = sys.argv[1]\n"
      "initial, l1, w1, _ = m.run(config, data_dir, tf.distribute.get_strategy())\n"
      "mirrored = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])\n"
      "_, l2, w2, _ = m.run(config, data_dir, mirrored, initial)\n"
      "diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))\n"
      "moved = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, initial))\n"
      "print('RESULT ' + json.dumps({'l1': l1, 'l2': l2, 'diff': diff, 'moved': moved}))\n")
  proc = subprocess.run([sys.executable, "-c", code, data_dir], cwd=harness.REPO,
                        capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, TF_USE_LEGACY_KERAS="1"))
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(re.search(r"^RESULT (.*)$", proc.stdout, re.M).group(1))
  print(result)
  assert result["moved"] > 1e-3
  assert result["diff"] < 1e-4
  np.testing.assert_allclose(result["l1"], result["l2"], atol=1e-5)


def test_hub_module_and_tflite_equal_the_keras_model(tmp_path):
  tf_keras.utils.set_random_seed(0)
  model = models.build_model(classifier_config())
  randomize(model.backbone)
  rng = np.random.default_rng(2)
  waveform = (0.3 * rng.standard_normal([3, 8000])).astype(np.float32)
  expected = {key: value.numpy() for key, value
              in classifier_module.classifier_outputs(model, waveform).items()}

  classifier_module.save_classifier_module(model, None, str(tmp_path / "module"),
                                           window_samples=8000)
  loaded = tf.saved_model.load(str(tmp_path / "module"))
  served = loaded.signatures["serving_default"](waveform=tf.constant(waveform))
  for key in ("scores", "logits", "embedding"):
    np.testing.assert_allclose(served[key].numpy(), expected[key], atol=1e-5)
  assert len(loaded.trainable_variables) == len(model.trainable_variables)

  converted = tflite.convert(lambda w: classifier_module.classifier_outputs(model, w), 8000,
                             ["float"], float_scope=model.frontend.name)
  runner = tflite.TFLiteRunner(converted["float"])
  assert not [op for op in runner.op_names() if op.lower().startswith("flex")]
  for clip, want in zip(waveform, expected["logits"]):
    np.testing.assert_allclose(runner(clip)["logits"][0], want, atol=1e-4)


@pytest.mark.slow
def test_trains_and_exports_from_the_command_line(data_dir, tmp_path):
  """train.main with --config.model.backbone=convnext (tuple overrides included), then
  export.main on its workdir: SavedModel, float and int8 TFLite, verified against the Keras model
  by export's own report."""
  overrides = {"model.backbone": "convnext", "frontend.n_filters": 32,
               "model.convnext.depths": str(DEPTHS), "model.convnext.dims": str(DIMS),
               "model.stochastic_depth": 0.1, "num_epochs": 1}
  workdir = tmp_path / "work"
  train = subprocess.run(harness.main_command(data_dir, workdir, overrides), cwd=harness.REPO,
                         capture_output=True, text=True, timeout=600)
  assert train.returncode == 0, train.stderr[-4000:]
  with open(workdir / "config.json", encoding="utf-8") as f:
    saved = json.load(f)["model"]
  assert saved["backbone"] == "convnext" and saved["convnext"]["dims"] == list(DIMS)
  export = subprocess.run(
      [sys.executable, "-m", "export.main", f"--workdir={workdir}",
       f"--output_dir={tmp_path / 'export'}", "--formats=saved_model,tflite,tflite_int8",
       f"--data_dir={data_dir}", "--num_verify_clips=8", "--latency_repeats=1"],
      cwd=harness.REPO, capture_output=True, text=True, timeout=600)
  assert export.returncode == 0, export.stderr[-4000:]
  report = json.loads((tmp_path / "export" / "verification.json").read_text())
  for name, entry in report["savedmodel"].items():
    assert max(entry["max_abs_diff"].values()) <= 1e-5, name
  for q, entry in report["tflite"].items():
    assert entry["builtin_ops_only"], q
  flt = report["tflite"]["float"]
  assert flt["within_goal"] and flt["max_abs_diff"]["logits"] <= 1e-4
  assert np.all(np.isfinite(list(report["tflite"]["int8"]["max_abs_diff"].values())))
  assert all(s["ok"] for tests in report["smoke_tests"].values() for s in tests.values())
