"""Test-wide setup and shared fixtures.

tf.keras must resolve to tf_keras before TensorFlow loads (the entry points' rule; the library
sets nothing). Every test starts from seed 0 and the float32 Keras policy and leaves them so,
whatever it changed: no test depends on the order the suite runs in.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import legacy_keras  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS)
import pytest  # noqa: E402
import tf_keras  # noqa: E402

from tests import harness  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_global_state():
  """Seeds (Python, numpy, TF) at 0 before each test; the global mixed-precision policy put
  back after it."""
  policy = tf_keras.mixed_precision.global_policy()
  tf_keras.utils.set_random_seed(0)
  yield
  tf_keras.mixed_precision.set_global_policy(policy)
  tf_keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """The tone data set (harness.write_dataset): 3 classes, 48 train / 24 eval clips. Read only."""
  return harness.write_dataset(str(tmp_path_factory.mktemp("tones")))


@pytest.fixture
def tiny_config(data_dir):
  """A fresh tiny training config (harness.TINY) on the tone data set."""
  return harness.tiny_config(data_dir)
