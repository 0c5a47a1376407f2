"""The frontend hub module, checked from a fresh Python process (as a user would load it)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from hub_modules import frontend_module


# Runs in a fresh interpreter: nothing of this project is imported, as for a
# user who only has the module directory.
# argv: module_dir inputs.npy reference.npy output_key tune_key num_outputs ("" = no key)
HUB_CHECKS = r'''
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, tensorflow as tf, tf_keras, tensorflow_hub as hub

path, inputs_path, reference_path, output_key, tune_key, num_outputs = sys.argv[1:7]
output_key, tune_key = output_key or None, tune_key or None
x, reference = np.load(inputs_path), np.load(reference_path)
result = {}
layer = hub.KerasLayer(path, output_key=output_key)
result["inference_max_abs_diff"] = float(np.max(np.abs(layer(x).numpy() - reference)))
loaded = tf.saved_model.load(path)
result["signatures"] = sorted(loaded.signatures)
result["num_variables"] = len(loaded.variables)
result["num_trainable_variables"] = len(loaded.trainable_variables)
result["num_regularization_losses"] = len(loaded.regularization_losses)
if "class_names" in loaded.signatures:
  names = loaded.signatures["class_names"]()
  result["class_names"] = {k: [v.decode() if isinstance(v, bytes) else int(v)
                               for v in names[k].numpy()] for k in names}

errors = {}
bad_inputs = {"int16": np.round(x * 32767).astype(np.int16), "float64": x.astype(np.float64),
              "rank1": x[0], "rank3": x[..., np.newaxis], "too_short": x[:, :100]}
calls = [(name, loaded, bad) for name, bad in bad_inputs.items()]
# through Keras too (hub.KerasLayer autocasts float64, so only int16 is wrong there)
calls.append(("int16_keras_layer", layer, bad_inputs["int16"]))
for name, fn, bad in calls:
  try:
    fn(tf.constant(bad))
    errors[name] = None
  except Exception as e:  # the message is what the test checks
    errors[name] = f"{type(e).__name__}: {e}"
result["errors"] = errors

tf_keras.utils.set_random_seed(0)
tuned = hub.KerasLayer(path, trainable=True, output_key=tune_key)
inputs = tf_keras.Input([x.shape[1]])
hidden = tuned(inputs)
if len(hidden.shape) == 3:
  hidden = tf_keras.layers.GlobalAveragePooling1D()(hidden)
model = tf_keras.Model(inputs, tf_keras.layers.Dense(int(num_outputs))(hidden))
labels = np.arange(len(x)) % int(num_outputs)
optimizer = tf_keras.optimizers.Adam(1e-3)
before = {v.name: v.numpy().copy() for v in tuned.trainable_variables}

def loss_fn():
  logits = model(x, training=True)
  loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
      labels, logits, from_logits=True))
  return loss + tf.add_n(model.losses) if model.losses else loss

losses, missing = [], set()
for _ in range(3):
  with tf.GradientTape() as tape:
    loss = loss_fn()
  grads = tape.gradient(loss, model.trainable_variables)
  missing |= {v.name for g, v in zip(grads, model.trainable_variables) if g is None}
  optimizer.apply_gradients(zip(grads, model.trainable_variables))
  losses.append(float(loss))
losses.append(float(loss_fn()))
result["losses"] = losses
result["missing_gradients"] = sorted(missing)
result["num_model_losses"] = len(model.losses)
result["changed"] = {v.name: float(np.max(np.abs(v.numpy() - before[v.name])))
                     for v in tuned.trainable_variables}
print("RESULT " + json.dumps(result))
'''


def run_hub_checks(module_dir, inputs, reference, tmp_path, output_key="", tune_key="",
                   num_outputs=2):
  """Runs HUB_CHECKS on module_dir in a fresh interpreter; returns its result dict."""
  np.save(tmp_path / "inputs.npy", inputs)
  np.save(tmp_path / "reference.npy", reference)
  script = tmp_path / "hub_checks.py"
  script.write_text(HUB_CHECKS)
  proc = subprocess.run(
      [sys.executable, str(script), str(module_dir), str(tmp_path / "inputs.npy"),
       str(tmp_path / "reference.npy"), output_key, tune_key, str(num_outputs)],
      capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stderr[-4000:]
  return json.loads(lines[-1][len("RESULT "):])


def make_signals(num_samples=4000):
  t = np.arange(num_samples) / 16000
  rng = np.random.default_rng(0)
  return np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 3000 * t),
                   0.1 * rng.standard_normal(num_samples),
                   0.2 * rng.standard_normal(num_samples) * np.sin(2 * np.pi * 3 * t)]
                  ).astype(np.float32)


@pytest.fixture(scope="module")
def leaf_module(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("frontend_module")
  tf_keras.utils.set_random_seed(0)
  frontend = tf_frontends.get("leaf", n_filters=8)
  x = make_signals()
  reference = frontend(x).numpy()
  frontend_module.save_frontend_module(frontend_module.FrontendModule(frontend), str(tmp / "leaf"))
  return tmp / "leaf", x, reference


@pytest.fixture(scope="module")
def fresh_process_result(leaf_module, tmp_path_factory):
  path, x, reference = leaf_module
  return run_hub_checks(path, x, reference, tmp_path_factory.mktemp("frontend_checks"))


@pytest.mark.slow
def test_hub_keras_layer_inference_equals_the_layer(fresh_process_result):
  assert fresh_process_result["inference_max_abs_diff"] <= 1e-6


@pytest.mark.slow
def test_reusable_savedmodel_attributes_and_signatures(fresh_process_result):
  assert fresh_process_result["signatures"] == ["features_clip", "metadata", "serving_default"]
  # LEAF: Gabor kernel, pooling widths, PCEN alpha / delta / root / smoothing
  assert fresh_process_result["num_trainable_variables"] == 6
  assert fresh_process_result["num_variables"] == 6


@pytest.mark.slow
def test_fine_tuning_reaches_gabor_pooling_and_pcen(fresh_process_result):
  result = fresh_process_result
  assert result["missing_gradients"] == []
  assert result["losses"][-1] < result["losses"][0]
  changed = result["changed"]
  for part in ("gabor_conv", "gaussian_lowpass", "pcen"):
    moved = [v for name, v in changed.items() if part in name]
    assert moved and max(moved) > 0, (part, changed)


@pytest.mark.slow
@pytest.mark.parametrize("case,expected", [
    ("int16", "got dtype int16"), ("float64", "got dtype float64"),
    ("int16_keras_layer", "got dtype int16"),
    ("rank1", "got rank 1"), ("rank3", "got rank 3"), ("too_short", "shorter than 401 samples")])
def test_bad_input_gives_a_clear_error(fresh_process_result, case, expected):
  message = fresh_process_result["errors"][case]
  assert message is not None, f"{case} was accepted"
  assert expected in message and "float32 waveform of shape [batch, samples]" in message


def test_signatures_in_process(leaf_module):
  path, x, reference = leaf_module
  loaded = tf.saved_model.load(str(path))
  batch = loaded.signatures["serving_default"](waveform=tf.constant(x))["features"]
  clip = loaded.signatures["features_clip"](waveform=tf.constant(x[1]))["features"]
  np.testing.assert_allclose(batch.numpy(), reference, atol=1e-6)
  np.testing.assert_allclose(clip.numpy(), reference[1], atol=1e-6)
  assert int(loaded.signatures["metadata"]()["min_samples"]) == 401
  with pytest.raises(tf.errors.InvalidArgumentError, match="shorter than 401 samples"):
    loaded.signatures["serving_default"](waveform=tf.constant(x[:, :400]))


def assert_gradients_close(got, expected, num_summed_terms):
  """Gradients of the reloaded module against the layer's, both float32.

  Each gradient element is a sum over the batch's samples and bands; the SavedModel's graph
  (grappler's fusions, oneDNN's kernel for that graph) sums in another order than the eager
  layer, and which order a kernel takes differs between CPUs. Summing N float32 terms in two
  orders differs by about eps32 * sqrt(N) of the terms' scale; the largest element stands for
  that scale. Measured on AMD EPYC (EfficientLEAF, 4 x 4000 samples, 8 bands): eager against
  the SavedModel up to 7.5e-6 of the largest element, eager against tf.function of the same
  layer 8.4e-6, while the bound below is 2.1e-5. A wrong gradient (a variable mapped to
  another, batch norm in inference mode, a dropped term) is off by percents, not 1e-5.
  """
  atol_fraction = np.finfo(np.float32).eps / 2 * np.sqrt(num_summed_terms)
  for g, e in zip(got, expected):
    np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-4,
                               atol=atol_fraction * np.abs(e).max())


def test_gradients_through_the_reloaded_module_equal_the_layers(leaf_module, tmp_path):
  path, x, _ = leaf_module
  tf_keras.utils.set_random_seed(0)
  frontend = tf_frontends.get("leaf", n_filters=8)
  frontend(x)
  frontend_module.save_frontend_module(frontend_module.FrontendModule(frontend),
                                       str(tmp_path / "m"))
  loaded = tf.saved_model.load(str(tmp_path / "m"))

  def grads(fn, variables):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(fn(tf.constant(x))))
    return tape.gradient(loss, variables)

  expected = grads(frontend, frontend.trainable_variables)
  got = grads(lambda w: loaded(w, training=True), loaded.trainable_variables)
  assert len(got) == len(expected) == 6
  assert_gradients_close(got, expected, num_summed_terms=x.size * frontend.n_filters)


def run_keras3_check(module_dir, inputs, tmp_path) -> dict:
  """tests/hub_modules/keras3_check.py in a fresh process without TF_USE_LEGACY_KERAS."""
  np.save(tmp_path / "inputs.npy", inputs)
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  proc = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "keras3_check.py"),
                         str(module_dir), str(tmp_path / "inputs.npy")],
                        capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stderr[-4000:]
  result = json.loads(lines[-1][len("RESULT "):])
  assert result["keras_version"].startswith("3.") and result["tf_keras_is_keras"]
  return result


@pytest.mark.slow
def test_keras3_tfsmlayer_loads_the_frontend(leaf_module, tmp_path):
  path, x, _ = leaf_module
  result = run_keras3_check(path, x, tmp_path)
  assert result["keys"] == ["features"]
  assert max(result["direct"].values()) <= 1e-6 and max(result["in_model"].values()) <= 1e-6
