"""`import tf_frontends` changes no environment and works whatever tf.keras is;
the entry points' `legacy_keras` module routes tf.keras to tf_keras."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow and tf_keras set a few variables of their own when imported
# (TF2_BEHAVIOR, ...): the snapshot is taken after them.
_LIBRARY_IMPORT = (
    "import os\n"
    "import numpy, tensorflow as tf, tf_keras\n"
    "before = dict(os.environ)\n"
    "import tf_frontends\n"
    "from tf_frontends import plotting\n"
    "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))\n"
    "assert not changed, changed\n"
    "features = tf_frontends.Leaf(n_filters=4)(numpy.zeros([1, 800], 'float32'))\n"
    "print(tuple(features.shape), isinstance(tf_frontends.Leaf(), tf_keras.layers.Layer))\n")


def run_python(code, legacy_keras=None):
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  if legacy_keras is not None:
    env["TF_USE_LEGACY_KERAS"] = legacy_keras
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("legacy_keras", [None, "1"])
def test_import_changes_no_environment_variable(legacy_keras):
  result = run_python(_LIBRARY_IMPORT + "print(os.environ.get('TF_USE_LEGACY_KERAS'))\n",
                      legacy_keras)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.splitlines() == ["(1, 5, 4) True", str(legacy_keras)]


@pytest.mark.slow
def test_works_after_tf_keras_resolved_to_keras_3():
  result = run_python("import tensorflow as tf\n"
                      "print(tf.keras.layers.Dense.__module__.split('.')[0])\n"
                      + _LIBRARY_IMPORT)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.splitlines() == ["keras", "(1, 5, 4) True"]


@pytest.mark.slow
def test_entry_point_module_routes_tf_keras_even_after_tensorflow_import():
  result = run_python(
      "import tensorflow as tf\n"
      "import legacy_keras\n"
      "import tensorflow_hub\n"
      "import os\n"
      "print(tf.keras.layers.Dense.__module__, os.environ['TF_USE_LEGACY_KERAS'])\n")
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ["tf_keras.src.layers.core.dense", "1"]


@pytest.mark.slow
def test_entry_point_module_after_keras3_resolved_fails_clearly():
  result = run_python(
      "import tensorflow as tf\n"
      "tf.keras.layers\n"
      "import legacy_keras\n")
  assert result.returncode != 0
  assert "TF_USE_LEGACY_KERAS=1" in result.stderr and "Keras 3" in result.stderr
