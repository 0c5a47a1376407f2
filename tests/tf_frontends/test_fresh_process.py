"""SavedModel reload and MirroredStrategy, each in a fresh Python process."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_frontends
from tests.tf_frontends import signals

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_fresh(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_USE_LEGACY_KERAS", None)  # the library must not need it
  subprocess.run([sys.executable, "-m", "tests.tf_frontends.fresh_process", *args],
                 cwd=ROOT, env=env, check=True, timeout=600)


@pytest.mark.slow
def test_saved_model_reloads_in_fresh_process_with_equal_outputs(tmp_path):
  x = signals.speech_like(2, 1999)
  np.save(tmp_path / "x.npy", x)
  for name in sorted(tf_frontends.FRONTENDS):
    frontend = tf_frontends.get(name, n_filters=10)
    inputs = tf_keras.Input(shape=(None,), dtype=tf.float32)
    model = tf_keras.Model(inputs, frontend(inputs))
    # Move the weights away from their initial values: reload must restore them.
    for weight in frontend.trainable_weights:
      weight.assign(weight * 1.01)
    expected = model(x).numpy()
    model.save(tmp_path / name)
    run_fresh("load", str(tmp_path / name), str(tmp_path / "x.npy"), str(tmp_path / name))
    for suffix in ("keras", "signature"):
      np.testing.assert_allclose(np.load(tmp_path / f"{name}_{suffix}.npy"), expected,
                                 rtol=1e-5, atol=1e-5, err_msg=f"{name} {suffix}")


@pytest.mark.slow
def test_mirrored_strategy_over_two_cpus_equals_single_device(tmp_path):
  x = signals.speech_like(4, 1700)
  np.save(tmp_path / "x.npy", x)
  run_fresh("mirrored", str(tmp_path / "x.npy"), str(tmp_path / "out.npz"))
  results = np.load(tmp_path / "out.npz")
  names = {key.rsplit("_", 1)[0] for key in results.files}
  assert len(names) >= 5 + 5  # outputs and at least one gradient per frontend
  for key in sorted(names):
    single, mirrored = results[key + "_single"], results[key + "_mirrored"]
    scale = max(np.abs(single).max(), 1e-6)
    np.testing.assert_allclose(mirrored, single, rtol=1e-4, atol=1e-4 * scale, err_msg=key)
