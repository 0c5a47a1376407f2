"""`import tf_frontends` routes tf.keras to tf_keras whatever the caller did first."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code):
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_import_after_tensorflow_still_gets_tf_keras():
  result = run_python(
      "import tensorflow as tf\n"
      "import tf_frontends\n"
      "import tensorflow_hub\n"
      "print(tf.keras.layers.Dense.__module__)\n"
      "print(isinstance(tf_frontends.Leaf(), tf.keras.layers.Layer))\n")
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ["tf_keras.src.layers.core.dense", "True"]


@pytest.mark.slow
def test_import_after_keras3_resolved_fails_clearly():
  result = run_python(
      "import tensorflow as tf\n"
      "tf.keras.layers\n"
      "import tf_frontends\n")
  assert result.returncode != 0
  assert "TF_USE_LEGACY_KERAS=1" in result.stderr and "Keras 3" in result.stderr
