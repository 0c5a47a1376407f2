"""The Keras 3 checks, run on one backend in a fresh interpreter (KERAS_BACKEND is read when
keras is first imported, so each backend needs its own process).

KERAS_BACKEND=jax python -m tests.keras3.backend_checks RESULTS.json

Writes {check name: "ok" or the failure's traceback}; test_keras3.py runs this per backend
and turns every entry into a test. Sizes are small (2 x 4000 samples, 8 filters) so that all
backends together stay within the suite's budget.
"""
import json
import os
import sys
import tempfile
import time
import traceback

import keras  # first: torch's triton crashes when imported after TensorFlow (docs/keras3.md)
import numpy as np
import tensorflow as tf
import tf_keras

import tf_frontends
from tf_frontends import initializers

# `import tf_frontends` leaves Keras 3 alone; importing tf_frontends.keras3 leaves tf_keras'
# global state alone (checked by check_import_side_effects).
KERAS3_IMPORTED_BY_TF_FRONTENDS = "tf_frontends.keras3" in sys.modules
TF_KERAS_POLICY = tf_keras.mixed_precision.global_policy().name

from tf_frontends import keras3  # noqa: E402
from tf_frontends.keras3 import weights as weights_lib  # noqa: E402

BACKEND = keras.backend.backend()
NAMES = sorted(tf_frontends.FRONTENDS)
N_FILTERS = 8
# Outputs: the Keras 3 layer's equal the tf_keras layer's to this, relative to the largest
# output (the issue's bound). Measured: 0 on TensorFlow (the same graph) except SincNet's
# LayerNorm (3.4e-7); up to 3e-6 on JAX (SincNet's LayerNorm, a different reduction order).
OUTPUT_RTOL = 1e-5
# Parameter gradients, relative to each weight's largest gradient (the issue's bound).
GRADIENT_RTOL = 1e-4


def waveform(seed=0, batch=2, samples=4000):
  """Noise plus two tones: every band gets energy and the gradients are not degenerate."""
  rng = np.random.RandomState(seed)
  t = np.arange(samples) / 16000.0
  tones = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 3100.0 * t)
  return (tones + 0.1 * rng.standard_normal((batch, samples))).astype(np.float32)


# Fewer EfficientLEAF groups than its default 8 where outputs are computed: each group is its
# own convolution, and JAX compiles them all (the group code is the same for any count).
SMALL = {"efficientleaf": {"num_groups": 2}}


def build_pair(name, seed=0):
  """(tf_keras frontend with perturbed weights, its Keras 3 twin holding the same weights).

  The twin is made from another twin's config (so every check also runs from_config).
  """
  kwargs = SMALL.get(name, {})
  reference = tf_frontends.get(name, n_filters=N_FILTERS, **kwargs)
  reference.build((None, None))
  rng = np.random.RandomState(seed)
  for weight in reference.trainable_weights:   # away from the initial values' symmetries
    weight.assign(weight.numpy() * (1.0 + 0.05 * rng.uniform(-1, 1, weight.shape)))
  config = keras3.get(name, n_filters=N_FILTERS, **kwargs).get_config()
  twin = keras3.FRONTENDS[name].from_config(config)
  assert twin.get_config() == config
  twin.build((None, None))
  keras3.transfer_weights(reference, twin)
  return reference, twin


def to_numpy(x):
  return keras.ops.convert_to_numpy(x)


def apply(layer, x):
  """layer(x) as numpy; compiled on JAX (op-by-op JAX compiles every op for every shape)."""
  if BACKEND != "jax":
    return to_numpy(layer(x))
  import jax
  trainable = [v.value for v in layer.trainable_variables]
  non_trainable = [v.value for v in layer.non_trainable_variables]
  run = jax.jit(lambda t, n, x: layer.stateless_call(t, n, x)[0])
  return np.asarray(run(trainable, non_trainable, x))


def assert_close(got, expected, rtol, what):
  got, expected = np.asarray(got), np.asarray(expected)
  assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
  scale = np.abs(expected).max()
  error = np.abs(got - expected).max() / scale
  assert np.isfinite(got).all(), f"{what}: not finite"
  assert error <= rtol, f"{what}: relative error {error:.2e} > {rtol:.0e}"


def reference_outputs_and_gradients(reference, x, projection):
  with tf.GradientTape() as tape:
    outputs = reference(x)
    loss = tf.reduce_sum(outputs * projection)
  grads = tape.gradient(loss, reference.trainable_variables)
  return outputs.numpy(), {weights_lib._relative_path(reference, v): g.numpy()
                           for v, g in zip(reference.trainable_variables, grads)}


def outputs_and_gradients_fn(layer):
  """f(x, projection) -> (layer(x), d sum(layer(x) * projection) / d weights by path), on this
  backend (compiled once per input shape on JAX)."""
  variables = layer.trainable_variables
  paths = [weights_lib._relative_path(layer, v) for v in variables]
  if BACKEND == "tensorflow":
    def run(x, projection):
      with tf.GradientTape() as tape:
        outputs = layer(x)
        loss = tf.reduce_sum(outputs * projection)
      return outputs.numpy(), [g.numpy() for g in tape.gradient(loss, variables)]
  elif BACKEND == "jax":
    import jax
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss_fn(trainable, x, projection):
      outputs, _ = layer.stateless_call(trainable, non_trainable, x)
      return (outputs * projection).sum(), outputs

    compiled = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))

    def run(x, projection):
      (_, outputs), grads = compiled([v.value for v in variables], x, projection)
      return np.asarray(outputs), [np.asarray(g) for g in grads]
  else:
    import torch

    def run(x, projection):
      outputs = layer(torch.as_tensor(x))
      loss = (outputs * torch.as_tensor(projection, device=outputs.device)).sum()
      grads = torch.autograd.grad(loss, [v.value for v in variables]) if variables else []
      return to_numpy(outputs), [g.cpu().numpy() for g in grads]

  def outputs_and_gradients(x, projection):
    outputs, grads = run(x, projection)
    return outputs, dict(zip(paths, grads))

  return outputs_and_gradients


def check_parity(name):
  """Outputs (<= OUTPUT_RTOL) and parameter gradients (<= GRADIENT_RTOL) equal the tf_keras
  frontend's; on silence both are finite."""
  reference, twin = build_pair(name)
  x = waveform(seed=1, samples=3999)     # a length that is not a multiple of the hop
  projection = np.random.RandomState(3).standard_normal(
      reference(x).shape).astype(np.float32)
  expected_outputs, expected_grads = reference_outputs_and_gradients(reference, x, projection)
  run = outputs_and_gradients_fn(twin)
  outputs, grads = run(x, projection)
  assert_close(outputs, expected_outputs, OUTPUT_RTOL, name)
  assert sorted(grads) == sorted(expected_grads), f"{sorted(grads)} != {sorted(expected_grads)}"
  for path in expected_grads:
    assert_close(grads[path], expected_grads[path], GRADIENT_RTOL, f"{name} d/d {path}")
  outputs, grads = run(np.zeros_like(x), np.ones_like(projection))
  assert np.isfinite(outputs).all(), f"{name}: non-finite output on silence"
  for path, grad in grads.items():
    assert np.isfinite(grad).all(), f"{name}: non-finite gradient of {path} on silence"


def check_defaults(name):
  """Default construction: the same initial weights (by path), config values and sizes."""
  reference = tf_frontends.get(name)
  twin = keras3.get(name)
  reference.build((None, None))
  twin.build((None, None))
  expected = {weights_lib._relative_path(reference, w): w.numpy() for w in reference.weights}
  got = {weights_lib._relative_path(twin, w): to_numpy(w) for w in twin.weights}
  assert sorted(got) == sorted(expected), f"{sorted(got)} != {sorted(expected)}"
  for path, value in expected.items():
    np.testing.assert_array_equal(got[path], value, err_msg=f"{name}: {path}")
  own = {key: value for key, value in twin.get_config().items()
         if key not in ("name", "trainable", "dtype")}
  assert own == {key: value for key, value in reference.get_config().items()
                 if key not in ("name", "trainable", "dtype")}
  assert (twin.sample_rate, twin.window_size, twin.hop, twin.n_filters, twin.output_bins) == (
      reference.sample_rate, reference.window_size, reference.hop, reference.n_filters,
      reference.output_bins)


def check_transfer_back():
  """Keras 3 -> tf_keras moves the weights too; a mismatched pair is refused by name."""
  reference, twin = build_pair("leaf")
  fresh = tf_frontends.Leaf(n_filters=N_FILTERS)
  fresh.build((None, None))
  keras3.transfer_weights(twin, fresh)
  x = waveform()
  np.testing.assert_array_equal(fresh(x).numpy(), reference(x).numpy())
  other = tf_frontends.SincNet(n_filters=N_FILTERS)
  other.build((None, None))
  try:
    keras3.transfer_weights(twin, other)
  except ValueError as error:
    assert "gabor_conv/kernel" in str(error) and "sinc_conv/kernel" in str(error), error
  else:
    raise AssertionError("transfer_weights accepted a SincNet for a Leaf")


def check_composition():
  """A composed tf_keras frontend (LEAF with log compression, pre-emphasis, instance norm)."""
  reference = tf_frontends.Frontend(
      tf_frontends.GaborConv1D(N_FILTERS, 401, name="gabor"),
      tf_frontends.SquaredModulus(name="modulus"),
      tf_frontends.GaussianLowpass(401, strides=160, name="lowpass"),
      tf_frontends.LogCompression(name="log"),
      preemphasis=tf_keras.layers.Conv1D(1, 2, padding="same", use_bias=False, name="preemp",
                                         kernel_initializer=initializers.PreempInit()),
      normalization=tf_keras.layers.GroupNormalization(
          groups=N_FILTERS, epsilon=1e-6, name="instance_norm"), name="leaf_log")
  x = waveform()
  reference.build((None, None))
  twin = keras3.from_tf_keras(reference)
  twin.build((None, None))
  keras3.transfer_weights(reference, twin)
  assert_close(apply(twin, x), reference(x).numpy(), OUTPUT_RTOL, "composition")
  clone = keras3.Frontend.from_config(twin.get_config())
  clone.build((None, None))
  keras3.transfer_weights(twin, clone)
  np.testing.assert_array_equal(apply(clone, x), apply(twin, x))


def small_model(name):
  model = keras.Sequential([
      keras.Input((4000,)), keras3.get(name, n_filters=N_FILTERS, **SMALL.get(name, {})),
      keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)])
  return model


def check_save_load(name):
  model = small_model(name)
  x = waveform()
  expected = apply(model, x)
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
  np.testing.assert_array_equal(apply(loaded, x), expected)


def check_fit(name):
  """Two training steps: finite loss, every trainable weight of the frontend moves."""
  model = small_model(name)
  model.compile(optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  frontend = model.layers[0]
  before = [to_numpy(w).copy() for w in frontend.trainable_weights]
  x = waveform(batch=4)
  history = model.fit(x, np.array([0, 1, 2, 0]), batch_size=4, epochs=2, verbose=0)
  assert np.isfinite(history.history["loss"]).all(), history.history
  for weight, old in zip(frontend.trainable_weights, before):
    assert not np.array_equal(to_numpy(weight), old), f"{weight.path} did not change"


def check_jit(name):
  """XLA on TensorFlow and JAX (jit_compile=True): the same outputs as eager."""
  model = small_model(name)
  x = waveform()
  eager = to_numpy(model(x))    # op by op (JAX: each op compiled alone)
  model.compile(jit_compile=True)
  assert_close(model.predict_on_batch(x), eager, OUTPUT_RTOL, f"{name} jit")


def check_mixed_precision(name):
  """Under mixed_float16 the frontend computes in float32 and equals the tf_keras frontend."""
  reference, _ = build_pair(name)
  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    model = small_model(name)
  finally:
    keras.mixed_precision.set_global_policy("float32")
  frontend = model.layers[0]
  assert frontend.compute_dtype == "float32", frontend.compute_dtype
  assert model.layers[-1].compute_dtype == "float16", model.layers[-1].compute_dtype
  keras3.transfer_weights(reference, frontend)
  x = waveform()
  features = apply(frontend, x)
  assert features.dtype == np.float32, features.dtype
  assert_close(features, reference(x).numpy(), OUTPUT_RTOL, f"{name} under mixed precision")


def check_export():
  """model.export() writes a SavedModel whose serving function gives the model's outputs."""
  model = small_model("leaf")
  x = waveform()
  with tempfile.TemporaryDirectory() as folder:
    model.export(folder, verbose=False)
    exported = tf.saved_model.load(folder)
    np.testing.assert_allclose(exported.serve(tf.constant(x)).numpy(), to_numpy(model(x)),
                               rtol=1e-6, atol=1e-6)


def check_import_side_effects():
  assert not KERAS3_IMPORTED_BY_TF_FRONTENDS, "import tf_frontends imported tf_frontends.keras3"
  assert tf_keras.mixed_precision.global_policy().name == TF_KERAS_POLICY
  assert type(tf_frontends.Leaf().filterbank).__module__ == "tf_frontends.convolution"


def check_bad_input():
  try:
    keras3.Leaf(n_filters=N_FILTERS)(np.zeros((2, 4000), np.int16))
  except TypeError as error:
    assert "float waveform" in str(error), error
  else:
    raise AssertionError("an int16 waveform was accepted")
  try:
    keras3.Leaf(window_len=401)
  except ValueError as error:
    assert "milliseconds" in str(error), error
  else:
    raise AssertionError("window_len=401 was accepted")


def checks():
  """{name: callable} of every check on this backend."""
  table = {"transfer_back": check_transfer_back, "composition": check_composition,
           "bad_input": check_bad_input, "fit[leaf]": lambda: check_fit("leaf"),
           "import_side_effects": check_import_side_effects}
  for name in NAMES:
    table[f"parity[{name}]"] = lambda name=name: check_parity(name)
    table[f"defaults[{name}]"] = lambda name=name: check_defaults(name)
  for name in ("leaf", "efficientleaf"):   # the model-level conventions, on the two kinds
    table[f"save_load[{name}]"] = lambda name=name: check_save_load(name)
    table[f"mixed_precision[{name}]"] = lambda name=name: check_mixed_precision(name)
  if BACKEND == "tensorflow":
    # XLA; on JAX every check above already runs compiled (jax.jit, the trainer's jit).
    table["jit[leaf]"] = lambda: check_jit("leaf")
    table["export"] = check_export
  return table


def main(output_path):
  results, seconds = {}, {}
  for name, check in checks().items():
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    try:
      check()
      results[name] = "ok"
    except Exception:  # noqa: BLE001  (every failure is reported, by name, to the test)
      results[name] = traceback.format_exc()
    seconds[name] = round(time.perf_counter() - start, 2)
  with open(output_path, "w") as f:
    json.dump({"backend": BACKEND, "results": results, "seconds": seconds}, f)


if __name__ == "__main__":
  main(sys.argv[1])
